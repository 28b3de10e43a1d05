//! box answering as `distrobox` (and `distrobox-VERB`): distrobox's verbs and flags,
//! parsed by [`crate::cli::distrobox`], each run by the operation `box` runs, with the
//! output the tools written for distrobox parse (`list`'s table, `create -C`'s lines,
//! `version`'s line).
//!
//! Invariants: an option box lacks is refused by name with what to do instead (exit 2),
//! never with clap's guess at a similar one; nothing here is a second implementation of
//! an operation: the verbs map onto `ops` (and onto box's own commands where the output
//! is the same).

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::distrobox::{self as dcli, Distrobox, Verb};
use crate::context::Context;
use crate::error::{Exit, failure};
use crate::ops::front_door::{self, FlagsOf};
use crate::ops::list::Status;
use crate::ops::session::{self, Command, Join, Missing, Session};

/// The line `distrobox version` prints: distrobox's `distrobox: VERSION` (what tools
/// split on `:`), saying it is box.
pub fn version_line() -> String {
    format!(
        "distrobox: {} (box {})",
        dcli::DISTROBOX_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

/// A usage error (exit status 2, as clap's).
pub(super) fn usage_error(
    message: impl std::fmt::Display,
    hint: impl Into<String>,
) -> anyhow::Error {
    failure(message, hint).context(Exit(2))
}

/// Parse `argv` (program name first) with the tree of `T`, turning clap's errors into
/// box's: help and version are printed; an unknown option or verb is box's error, named,
/// without clap's guesses; the rest is clap's own message.
pub(super) fn parse<T: clap::Parser>(
    argv: Vec<OsString>,
    what: &str,
    other_verbs: &str,
) -> Result<Result<T, ExitCode>> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match T::try_parse_from(argv) {
        Ok(parsed) => Ok(Ok(parsed)),
        Err(err) => {
            let value = |kind| match err.get(kind) {
                Some(ContextValue::String(s)) => s.clone(),
                Some(ContextValue::Strings(s)) => s.join(" "),
                _ => String::new(),
            };
            match err.kind() {
                ErrorKind::UnknownArgument => Err(usage_error(
                    format!(
                        "{what} has no option `{}` in box",
                        value(ContextKind::InvalidArg)
                    ),
                    format!(
                        "`{what} --help` lists what box takes; docs/distrobox-compatibility.md maps distrobox's and podman's flags to box's"
                    ),
                )),
                ErrorKind::InvalidSubcommand => Err(usage_error(
                    format!(
                        "box does not answer `{what} {}`",
                        value(ContextKind::InvalidSubcommand)
                    ),
                    format!("`{what} --help` lists what it answers; {other_verbs}"),
                )),
                _ => {
                    let _ = err.print();
                    Ok(Err(ExitCode::from(err.exit_code() as u8)))
                }
            }
        }
    }
}

/// Run `distrobox ARGS` (or, with `verb`, `distrobox-VERB ARGS`).
pub fn run(verb: Option<&str>, args: Vec<OsString>) -> Result<ExitCode> {
    // distrobox's global flags may come before the verb.
    let (globals, verb, rest) = match verb {
        Some(verb) => (Vec::new(), Some(verb.to_owned()), args),
        None => {
            let at = args
                .iter()
                .position(|a| !a.to_string_lossy().starts_with('-'))
                .unwrap_or(args.len());
            let verb = args.get(at).map(|v| v.to_string_lossy().into_owned());
            let rest = args.get(at + 1..).map(<[_]>::to_vec).unwrap_or_default();
            (args[..at].to_vec(), verb, rest)
        }
    };
    let known = verb
        .as_deref()
        .map(|v| if v == "ls" { "list" } else { v })
        .filter(|v| front_door::DISTROBOX_VERBS.contains(v));
    let rest = match known {
        Some(known) => dcli::prepare(Some(known), &rest).map_err(refusal)?,
        None => rest,
    };
    let what = match known {
        Some(verb) => format!("distrobox {verb}"),
        None => "distrobox".to_owned(),
    };
    let mut argv: Vec<OsString> = vec!["distrobox".into()];
    argv.extend(globals);
    argv.extend(verb.map(OsString::from));
    argv.extend(rest);
    let parsed: Distrobox = match parse(argv, &what, "`box --help` shows box's own commands")? {
        Ok(parsed) => parsed,
        Err(code) => return Ok(code),
    };
    let verb = match parsed.verb {
        _ if parsed.version => Verb::Version,
        Some(verb) => verb,
        None => {
            return Err(usage_error(
                "which verb? distrobox needs one",
                "`distrobox --help` lists them: create, enter, list, rm, stop, upgrade, ephemeral, generate-entry, assemble, version",
            ));
        }
    };
    if let Verb::Version = verb {
        println!("{}", version_line());
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = Context::from_env()?;
    match verb {
        Verb::Create(args) => create(&ctx, args),
        Verb::Enter(args) => enter(&ctx, args),
        Verb::List(args) => list(&ctx, args),
        Verb::Rm(args) => rm(&ctx, args),
        Verb::Stop(args) => super::stop::exec(
            &ctx,
            crate::cli::StopArgs {
                names: args.names,
                all: args.all,
                yes: args.yes,
                time: crate::ops::stop::DEFAULT_GRACE,
            },
        ),
        Verb::Upgrade(args) => super::upgrade::exec(
            &ctx,
            crate::cli::UpgradeArgs {
                names: args.names,
                all: args.all,
                running: args.running,
            },
        ),
        Verb::Ephemeral(args) => ephemeral(&ctx, args),
        Verb::GenerateEntry(args) => generate_entry(&ctx, args),
        Verb::Assemble(args) => assemble(&ctx, args),
        Verb::Version => unreachable!("answered above"),
    }
}

/// A distrobox option box lacks, as box's error.
pub(super) fn refusal(refusal: dcli::Refusal) -> anyhow::Error {
    usage_error(
        format!(
            "distrobox's {} is not something box has: {}",
            refusal.option, refusal.why
        ),
        refusal.instead,
    )
}

/// The options of a new box from distrobox's flags.
fn create_options(
    name: String,
    image: String,
    shape: &dcli::Shape,
) -> Result<crate::ops::create::CreateOptions> {
    let extra = front_door::additional(&shape.additional_flags, FlagsOf::Create)?;
    Ok(crate::ops::create::CreateOptions {
        name,
        image,
        pull: shape.pull,
        hostname: extra.hostname.or(shape.hostname.clone()),
        home: shape.home.clone(),
        volumes: shape.volume.iter().cloned().chain(extra.volumes).collect(),
        devices: extra.devices,
        // distrobox without --nvidia: box's default (the GPUs whenever the host has their spec).
        nvidia: shape.nvidia.then_some(true),
        platform: shape.platform.clone(),
        entry: false,
        dry_run: shape.dry_run,
        clone: shape.clone.clone(),
        additional_packages: shape.additional_packages.clone(),
        pre_init_hooks: shape.pre_init_hooks.clone(),
        init_hooks: shape.init_hooks.clone(),
        no_provision: false,
        provision_set: None,
        env: extra
            .env
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        entry_file: crate::ops::export::EntryFile::Distrobox,
    })
}

/// Whether questions are answered yes: `--yes`, `--pull` (distrobox: implies yes), or
/// box's `non-interactive` setting.
fn ask(ctx: &Context, yes: bool) -> &'static dyn crate::ui::prompt::Ask {
    crate::ui::prompt::yes_or_terminal(super::assume_yes(ctx, yes))
}

fn create(ctx: &Context, args: dcli::Create) -> Result<ExitCode> {
    if args.compatibility {
        return compatibility(ctx);
    }
    let shape = &args.shape;
    let (image, name) = match &shape.clone {
        Some(source) => (
            String::new(),
            args.name
                .clone()
                .or(args.positional_name.clone())
                .ok_or_else(|| {
                    usage_error(
                        format!("--clone {source} needs the new box's name"),
                        format!("e.g. `distrobox create --clone {source} --name {source}-copy`"),
                    )
                })?,
        ),
        None => crate::ops::create::resolve_target(
            ctx,
            shape.image.as_deref(),
            args.name.as_deref(),
            args.positional_name.as_deref(),
        )?,
    };
    let options = crate::ops::create::CreateOptions {
        entry: !args.no_entry,
        ..create_options(name, image, shape)?
    };
    let created = crate::ops::create::create(ctx, &options, ask(ctx, shape.yes || shape.pull))?;
    match created.plan {
        Some(plan) => print!("{plan}"),
        None => {
            println!("Created box {} from {}.", created.name, created.image);
            println!("Enter it with: distrobox enter {}", created.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `create --compatibility`: the images box knows by name, one per line (each
/// distribution's default image, then its other names' images), as tools list them.
fn compatibility(ctx: &Context) -> Result<ExitCode> {
    let catalogue = crate::ops::create::catalogue(ctx)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = String::new();
    for distro in &catalogue.distros {
        for image in std::iter::once(&distro.image).chain(distro.aliases.values()) {
            if seen.insert(image.clone()) {
                out.push_str(image);
                out.push('\n');
            }
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn enter(ctx: &Context, args: dcli::Enter) -> Result<ExitCode> {
    let name = session::target(
        ctx,
        args.name.as_deref().or(args.positional_name.as_deref()),
    )?
    .name;
    if args.name.is_some() && args.positional_name.is_some() {
        return Err(usage_error(
            "the box is named twice: by --name and by a word before the command",
            "give the name once; the command starts after `--` (or `-e`)",
        ));
    }
    if args.dry_run {
        print!("{}", session::plan(ctx, &name)?);
        return Ok(ExitCode::SUCCESS);
    }
    let extra = front_door::additional(&args.additional_flags, FlagsOf::Enter)?;
    let mut env = extra.env;
    if args.clean_path {
        env.push(("PATH".into(), crate::ops::session::STANDARD_PATH.join(":")));
    }
    let command = if args.command.is_empty() {
        Command::LoginShell
    } else {
        Command::Exec(&args.command)
    };
    let session = Session {
        name: &name,
        join: Join {
            no_workdir: args.no_workdir,
            user: extra.user.as_deref(),
            env: &env,
            ..Join::new(command)
        },
        missing: Missing::OfferToCreate,
    };
    match session::exec(ctx, &session, ask(ctx, args.yes))? {}
}

/// `list`: distrobox's table, `ID | NAME | STATUS | IMAGE` in its widths (printf's
/// `%-12s | %-20s | %-18s | %-30s`), sorted by name; green running and yellow other
/// boxes on a terminal unless `--no-color`.
fn list(ctx: &Context, args: dcli::List) -> Result<ExitCode> {
    crate::sys::default_sigpipe();
    let rows = crate::ops::list::boxes(ctx)?;
    let color = !args.no_color && ctx.color_stdout();
    let now = crate::ops::list::now();
    let mut table = table_line("ID", "NAME", "STATUS", "IMAGE");
    for row in &rows {
        let id = row.id();
        let image = if row.image.is_empty() {
            "-"
        } else {
            row.image.as_str()
        };
        let line = table_line(&id[..12], &row.name, &row.status_text(now), image);
        if color {
            let paint = if row.status == Status::Running {
                "\x1b[32m"
            } else {
                "\x1b[33m"
            };
            table.push_str(&format!("{paint}{}\x1b[0m\n", line.trim_end_matches('\n')));
        } else {
            table.push_str(&line);
        }
    }
    std::io::stdout().lock().write_all(table.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// One line of `list`'s table.
pub fn table_line(id: &str, name: &str, status: &str, image: &str) -> String {
    format!("{id:<12} | {name:<20} | {status:<18} | {image:<30}\n")
}

fn rm(ctx: &Context, args: dcli::Rm) -> Result<ExitCode> {
    if args.names.is_empty() && !args.all {
        return Err(usage_error(
            "which boxes? name them, or give --all",
            "e.g. `distrobox rm dev`; `distrobox list` shows your boxes",
        ));
    }
    let options = crate::ops::rm::RmOptions {
        force: args.force,
        require_question: false,
        grace: crate::ops::stop::DEFAULT_GRACE,
        remove_home: args.rm_home,
    };
    let done = crate::ops::rm::rm(
        ctx,
        args.all,
        &args.names,
        options,
        ask(ctx, args.yes),
        &mut |name| println!("Removed box {name}."),
    )?;
    if !done {
        crate::ui::report::line("Nothing removed.");
    }
    Ok(ExitCode::SUCCESS)
}

fn ephemeral(ctx: &Context, args: dcli::Ephemeral) -> Result<ExitCode> {
    let name = match args.name {
        Some(name) => name,
        None => crate::ops::ephemeral::fresh_name()?,
    };
    let (image, name) = match &args.shape.clone {
        Some(_) => (String::new(), name),
        None => {
            crate::ops::create::resolve_target(ctx, args.shape.image.as_deref(), Some(&name), None)?
        }
    };
    let options = create_options(name, image, &args.shape)?;
    let status = crate::ops::ephemeral::ephemeral(
        ctx,
        &options,
        &args.command,
        false,
        ask(ctx, args.shape.yes || args.shape.pull),
    )?;
    Ok(ExitCode::from(status))
}

fn generate_entry(ctx: &Context, args: dcli::GenerateEntry) -> Result<ExitCode> {
    let names = match (&args.name, args.all) {
        (Some(name), _) => vec![name.clone()],
        (None, _) => crate::ops::list::box_names(ctx, true, &[])?,
    };
    for name in &names {
        if args.delete {
            crate::ops::export::remove_entry(ctx, name)?;
        } else {
            crate::ops::export::add_entry_as(
                ctx,
                name,
                false,
                crate::ops::export::EntryFile::Distrobox,
                args.icon.as_deref(),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn assemble(ctx: &Context, args: dcli::Assemble) -> Result<ExitCode> {
    use crate::cli::{
        AssembleAction, AssembleArgs, AssembleCreateArgs, AssembleFileArgs, AssembleRmArgs,
    };
    let file_args = |a: &dcli::AssembleArgs| AssembleFileArgs {
        file: a.file.clone(),
        name: a.name.clone(),
        dry_run: a.dry_run,
    };
    let action = match &args.action {
        dcli::AssembleAction::Create(a) => AssembleAction::Create(AssembleCreateArgs {
            common: file_args(a),
            replace: a.replace,
            locked: false,
        }),
        // distrobox's `assemble rm` removes running boxes too, without asking.
        dcli::AssembleAction::Rm(a) => AssembleAction::Rm(AssembleRmArgs {
            common: file_args(a),
            force: true,
            yes: true,
        }),
    };
    super::assemble::exec(ctx, AssembleArgs { action })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_have_distrobox_s_widths_and_four_fields() {
        let line = table_line(
            "0123456789ab",
            "dev",
            "Up 5 minutes",
            "docker.io/library/debian:trixie",
        );
        assert_eq!(
            line,
            "0123456789ab | dev                  | Up 5 minutes       | docker.io/library/debian:trixie\n"
        );
        assert_eq!(
            table_line("ID", "NAME", "STATUS", "IMAGE"),
            "ID           | NAME                 | STATUS             | IMAGE                         \n"
        );
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(fields.len(), 4);
        assert!(fields.iter().all(|f| !f.is_empty()));
    }

    #[test]
    fn the_version_line_splits_as_distroshelf_splits_it() {
        let line = version_line();
        let version = line.split(':').nth(1).unwrap().trim();
        assert!(version.starts_with(dcli::DISTROBOX_VERSION), "{line}");
        assert!(line.contains("box"));
    }
}
