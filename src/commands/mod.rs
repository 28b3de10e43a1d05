//! One module per verb. Each `exec` turns parsed arguments into calls into the library
//! and returns the exit status; none of them prints an error (that is `error::report`).

mod assemble;
pub mod completion;
mod create;
mod doctor;
mod enter;
mod ephemeral;
mod export;
mod generate_entry;
mod host_exec;
mod images;
mod list;
mod pull;
mod rm;
mod rmi;
mod run;
mod stop;
mod upgrade;

use std::process::ExitCode;

pub use host_exec::{exec_linked, linked_command};

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
            Some((verb, args)) if verb == "sudo" => crate::fakeroot::sudo::main(args),
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
        Command::Images(args) => images::exec(&ctx, args),
        Command::Rmi(args) => rmi::exec(&ctx, args),
        Command::Create(args) => create::exec(&ctx, args),
        Command::Enter(args) => enter::exec(&ctx, args),
        Command::Run(args) => run::exec(&ctx, args),
        Command::List(args) => list::exec(&ctx, args),
        Command::Stop(args) => stop::exec(&ctx, args),
        Command::Rm(args) => rm::exec(&ctx, args),
        Command::Export(args) => export::exec(&ctx, args),
        Command::GenerateEntry(args) => generate_entry::exec(&ctx, args),
        Command::Assemble(args) => assemble::exec(&ctx, args),
        Command::Ephemeral(args) => ephemeral::exec(&ctx, args),
        Command::Upgrade(args) => upgrade::exec(&ctx, args),
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
        Command::Ephemeral(_) => Some(("", "create temporary boxes".into())),
        Command::Rmi(_) => Some(("", "remove images".into())),
        Command::Create(args) if !args.dry_run => Some(("", "create boxes".into())),
        Command::Stop(args) => Some(boxes("stop", &args.names)),
        Command::Rm(args) => Some(boxes("remove", &args.names)),
        Command::Assemble(args) if !matches!(args.action, crate::cli::AssembleAction::List(_)) => {
            Some(("", "assemble boxes".into()))
        }
        Command::Upgrade(args) => Some(boxes("upgrade", &args.names)),
        _ => None,
    }
}
