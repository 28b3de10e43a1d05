//! One module per verb. Each `exec` turns parsed arguments into calls into the library
//! and returns the exit status; none of them prints an error (that is `error::report`).

mod assemble;
mod commit;
pub mod completion;
mod create;
pub mod distrobox;
mod distrobox_export;
mod doctor;
mod edit;
mod enter;
mod ephemeral;
mod export;
mod generate_entry;
mod host_exec;
mod images;
mod install_names;
mod list;
mod load;
mod podman;
mod pull;
mod push;
mod rm;
mod rmi;
mod run;
mod save;
mod stop;
mod upgrade;

use std::process::ExitCode;

pub use host_exec::{exec_linked, linked_command};

/// What box is, by the name it was run as (argv[0]'s file name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// `box` itself (and box's re-executions through `/proc/self/exe`, and any name box
    /// does not answer to on the host).
    Box,
    /// In a box, another command's name linked to box: run on the host (symlink mode).
    Linked(std::ffi::OsString),
    /// `distrobox`, or `distrobox-VERB` with its verb.
    Distrobox(Option<&'static str>),
    /// `distrobox-export` (in a box: export from it).
    DistroboxExport,
    /// `distrobox-host-exec` (in a box: run on the host).
    DistroboxHostExec,
    /// `podman` on the host: the read-only window onto boxes.
    Podman,
}

/// What box is when run as `argv0`. `box` costs one comparison (the hot path); other
/// names read the box's `/run/.containerenv` once: in a box, every name but
/// distrobox's two in-box commands runs on the host, as distrobox's names do there too.
pub fn program(argv0: &std::ffi::OsStr) -> Program {
    let Some(name) = std::path::Path::new(argv0).file_name() else {
        return Program::Box;
    };
    if name == "box" || name == "exe" {
        return Program::Box;
    }
    match name.to_str() {
        Some("distrobox-export") => return Program::DistroboxExport,
        Some("distrobox-host-exec") => return Program::DistroboxHostExec,
        _ => {}
    }
    if let Some(command) = linked_command(argv0) {
        return Program::Linked(command);
    }
    match name.to_str() {
        Some("distrobox") => Program::Distrobox(None),
        Some("podman") => Program::Podman,
        Some(other) => other
            .strip_prefix("distrobox-")
            .and_then(|verb| {
                crate::ops::front_door::DISTROBOX_VERBS
                    .iter()
                    .find(|v| **v == verb)
            })
            .map_or(Program::Box, |verb| Program::Distrobox(Some(verb))),
        None => Program::Box,
    }
}

/// Run box as `program` (not [`Program::Box`]) with `args` (argv[1..]).
pub fn run_as(program: Program, args: Vec<std::ffi::OsString>) -> Result<ExitCode> {
    match program {
        Program::Box => unreachable!("box's own command line is main's"),
        Program::Linked(command) => exec_linked(command, args.into_iter()),
        Program::Distrobox(verb) => distrobox::run(verb, args),
        Program::DistroboxExport => distrobox_export::export(args),
        Program::DistroboxHostExec => distrobox_export::host_exec(args),
        Program::Podman => podman::run(args),
    }
}

use anyhow::Result;

use crate::cli::Command;
use crate::context::Context;

/// The internal entry points box re-executes itself with (`/proc/self/exe NAME ...`):
/// the holder of a running box, the store helper in the user namespace, and box's
/// `sudo` in a box without subordinate ids. They are not
/// part of the command line users see (help, man pages, completions), and they skip clap.
pub fn internal(args: &[String]) -> Option<Result<ExitCode>> {
    let (first, rest) = args.split_first()?;
    match first.as_str() {
        "__holder" => Some(crate::runtime::holder::main(rest)),
        "__holder-adopt" => Some(crate::runtime::holder::adopt_main(rest)),
        "__store-helper" => Some(crate::image::helper::main(rest)),
        crate::host_exec::server::SUBCOMMAND => Some(crate::host_exec::server::main(rest)),
        crate::ops::ephemeral::GUARD => Some(crate::ops::ephemeral::guard_main(rest)),
        crate::ops::doctor::PROBE => Some(crate::ops::doctor::probe_main(rest)),
        // From the `sudo` shim inside a box without subordinate ids.
        "__fakeroot" => Some(match rest.split_first() {
            Some((verb, args)) if verb == "sudo" => {
                crate::fakeroot::sudo::main(args).map(|answer| {
                    print!("{}", answer.0);
                    ExitCode::SUCCESS
                })
            }
            _ => Err(anyhow::anyhow!("usage: box __fakeroot sudo [ARGS...]")),
        }),
        _ => None,
    }
}

/// Whether questions are answered yes: `--yes`, or the `non-interactive` setting
/// (BOX_NON_INTERACTIVE), as distrobox's non-interactive mode.
fn assume_yes(ctx: &Context, yes: bool) -> bool {
    yes || ctx.config().is_ok_and(|c| c.non_interactive)
}

/// [`assume_yes`] or the terminal, with the settings read only when a question is
/// asked: `box enter` of a box that exists reads no settings file.
struct Asker<'a> {
    ctx: &'a Context,
    yes: bool,
}

impl Asker<'_> {
    fn settled(&self) -> &'static dyn crate::ui::prompt::Ask {
        crate::ui::prompt::yes_or_terminal(assume_yes(self.ctx, self.yes))
    }
}

impl crate::ui::prompt::Ask for Asker<'_> {
    fn ask(&self, question: &str) -> Result<Option<bool>> {
        self.settled().ask(question)
    }

    fn preset(&self) -> Option<Option<bool>> {
        self.settled().preset()
    }
}

/// box's answer to a distrobox option it does not take (see
/// [`crate::cli::DistroboxOnly`]): what box does instead, as a usage error (exit status
/// 2).
pub fn distrobox_only(flag: crate::cli::DistroboxOnly) -> anyhow::Error {
    use crate::cli::DistroboxOnly;
    let (message, hint) = match flag {
        DistroboxOnly::Init => (
            "--init: boxes with systemd as their init are not supported yet",
            "box --init is coming; until then a box runs your commands without an init (start a service by hand as root: `box enter NAME --user root`)",
        ),
        DistroboxOnly::Root => (
            "--root: box has no rootful boxes; every box is rootless",
            "root in a box is `box enter NAME --user root` (or `sudo` inside it): the box's own root, with no more rights than you have on the host",
        ),
        DistroboxOnly::AdditionalFlags => (
            "--additional-flags: box has no container engine to pass flags to",
            "box's own flags do what they did: `--volume SRC:DST`, `--device VENDOR/CLASS=NAME`, `--hostname` and `--home` at `box create` (`box edit` changes them later); a variable for one command goes with the command: `box enter NAME -- env KEY=VALUE CMD`",
        ),
    };
    crate::error::failure(message, hint).context(crate::error::Exit(crate::error::EXIT_USAGE))
}

/// The options of a new box from the flags `create` and `ephemeral` share (the box's
/// shape and its provisioning), for a box `name` of `image`.
fn create_options(
    name: String,
    image: String,
    pull: bool,
    shape: crate::cli::BoxShapeArgs,
    provision: crate::cli::ProvisionArgs,
) -> crate::ops::create::CreateOptions {
    crate::ops::create::CreateOptions {
        nvidia: shape.nvidia_choice(),
        name,
        image,
        pull,
        hostname: shape.hostname,
        home: shape.home,
        devices: shape.device,
        volumes: shape.volume,
        platform: shape.platform,
        entry: false,
        dry_run: false,
        clone: None,
        additional_packages: provision.additional_packages,
        pre_init_hooks: provision.pre_init_hooks,
        init_hooks: provision.init_hooks,
        no_provision: provision.no_provision,
        provision_set: provision.provision_set.map(|set| match set {
            crate::cli::ProvisionSet::Full => crate::settings::config::NeedSet::Full,
            crate::cli::ProvisionSet::Base => crate::settings::config::NeedSet::Base,
        }),
        env: Vec::new(),
        entry_file: Default::default(),
    }
}

/// Run a parsed command.
pub fn dispatch(command: Command) -> Result<ExitCode> {
    if let Some((name, what)) = host_only(&command)
        && let Some(current) = crate::host::inside_box()
    {
        return Err(crate::runtime::from_host_only(&current, name, &what));
    }
    // From inside a box, to the host: nothing of the store or the settings is needed.
    let command = match command {
        Command::HostExec(args) => return host_exec::exec(args),
        Command::Completion(args) => return completion::exec(args),
        other => other,
    };
    let ctx = Context::from_env()?;
    match command {
        Command::Pull(args) => pull::exec(&ctx, args),
        Command::Push(args) => push::exec(&ctx, args),
        Command::Images(args) => images::exec(&ctx, args),
        Command::Rmi(args) => rmi::exec(&ctx, args),
        Command::Save(args) => save::exec(&ctx, args),
        Command::Load(args) => load::exec(&ctx, args),
        Command::Commit(args) => commit::exec(&ctx, args),
        Command::Create(args) => create::exec(&ctx, args),
        Command::Enter(args) => enter::exec(&ctx, args),
        Command::Run(args) => run::exec(&ctx, args),
        Command::Edit(args) => edit::exec(&ctx, args),
        Command::List(args) => list::exec(&ctx, args),
        Command::Stop(args) => stop::exec(&ctx, args),
        Command::Rm(args) => rm::exec(&ctx, args),
        Command::Export(args) => export::exec(&ctx, args),
        Command::GenerateEntry(args) => generate_entry::exec(&ctx, args),
        Command::Assemble(args) => assemble::exec(&ctx, args),
        Command::Ephemeral(args) => ephemeral::exec(&ctx, args),
        Command::Upgrade(args) => upgrade::exec(&ctx, args),
        Command::InstallDistroboxNames(args) => install_names::exec(&ctx, args),
        Command::Doctor(args) => doctor::exec(&ctx, args),
        Command::HostExec(_) | Command::Completion(_) => unreachable!("handled above"),
    }
}

/// What `command` would do, when it is a job for the host only: a box's name it is about
/// (or "") and a phrase for the error. From inside a box, store changes would be made
/// with the box's id mapping (box would see a changed mapping and refuse, with a hint to
/// start over), and holders can be neither started nor stopped: each box is a user
/// namespace of its own. `run` and `enter` decide for themselves (their own box is fine).
fn host_only(command: &Command) -> Option<(&str, String)> {
    fn boxes<'a>(verb: &str, names: &'a [String]) -> (&'a str, String) {
        let what = match names {
            [] => format!("{verb} boxes"),
            [one] => format!("{verb} box `{one}`"),
            many => format!("{verb} boxes `{}`", many.join("`, `")),
        };
        (names.first().map_or("", String::as_str), what)
    }
    match command {
        Command::Pull(_) => Some(("", "pull images".into())),
        Command::Push(_) => Some(("", "push images".into())),
        Command::Ephemeral(_) => Some(("", "create temporary boxes".into())),
        Command::Rmi(_) => Some(("", "remove images".into())),
        Command::Load(_) => Some(("", "load images".into())),
        Command::Commit(args) => Some((args.name.as_str(), format!("commit box `{}`", args.name))),
        Command::Create(args) if !args.dry_run => Some(("", "create boxes".into())),
        Command::Stop(args) => Some(boxes("stop", &args.names)),
        Command::Edit(args) if !args.dry_run => {
            Some(boxes("change", std::slice::from_ref(&args.name)))
        }
        Command::Rm(args) => Some(boxes("remove", &args.names)),
        Command::Assemble(args) if !matches!(args.action, crate::cli::AssembleAction::List(_)) => {
            Some(("", "assemble boxes".into()))
        }
        Command::Upgrade(args) => Some(boxes("upgrade", &args.names)),
        Command::InstallDistroboxNames(_) => Some(("", "install distrobox's names".into())),
        _ => None,
    }
}
