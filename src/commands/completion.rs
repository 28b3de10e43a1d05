//! `box completion SHELL`, and the completions themselves.
//!
//! The script `box completion` prints (the same the packages install and `completions/`
//! holds) is clap_complete's registration for the shell: on each TAB the shell runs
//! `BOX_COMPLETE=SHELL box -- WORDS...`, and box answers from [`command`], the clap tree
//! `--help` and the man pages come from, with the names of boxes and images read from the
//! store wherever a verb takes them ([`BOX_NAMES`], [`IMAGE_NAMES`]). So subcommands, flags
//! and names are always those of the installed binary, in bash, zsh and fish alike, and
//! no shell code is kept by hand. (Static scripts generated ahead of time cannot know the
//! boxes of the moment; adding shell code per shell to ask box for them would be three
//! hand-written scripts to keep in step with clap's.)
//!
//! Invariants: answering a completion reads directory listings and box records of the
//! store, takes no lock, writes nothing and never touches the network; outside a
//! completion the only cost is one `getenv` at the start of `main` ([`complete_from_env`]).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

use crate::cli::{CompletionArgs, CompletionShell};
use crate::context::Context;

/// The variable that turns a run of box into a completion (clap_complete's protocol, under
/// a name of box's own: a stray `COMPLETE` in someone's environment must not do it).
pub const ENV: &str = "BOX_COMPLETE";

/// The program the scripts call: `box` from `PATH`, as the user types it (the packages
/// and the install script put it there).
const COMPLETER: &str = "box";

/// (verb, argument id) of every argument that takes the name of an existing box.
pub const BOX_NAMES: &[(&str, &str)] = &[
    ("enter", "name"),
    ("run", "name"),
    ("stop", "names"),
    ("rm", "names"),
    ("export", "name"),
    ("generate-entry", "name"),
    ("upgrade", "names"),
    ("create", "clone"),
    ("commit", "name"),
    ("edit", "name"),
];

/// (verb, argument id) of every argument that takes an image of the store.
pub const IMAGE_NAMES: &[(&str, &str)] = &[
    ("rmi", "references"),
    ("create", "image"),
    ("ephemeral", "image"),
    ("pull", "reference"),
    ("push", "image"),
    ("save", "images"),
];

/// When `BOX_COMPLETE` is set, answer the shell's completion request and exit.
pub fn complete_from_env() {
    if crate::sys::env::os(ENV).is_none() {
        return;
    }
    clap_complete::CompleteEnv::with_factory(command)
        .var(ENV)
        .completer(COMPLETER)
        .complete();
}

/// The command tree with the name completers attached.
pub fn command() -> clap::Command {
    let mut root = crate::cli::command();
    type Candidates = fn() -> Vec<CompletionCandidate>;
    let tables: [(&[(&str, &str)], Candidates); 2] =
        [(BOX_NAMES, box_names), (IMAGE_NAMES, image_names)];
    for (table, candidates) in tables {
        for &(verb, id) in table {
            // In place: `mut_arg` would move the argument last, and a positional's place
            // is what the completion engine finds it by.
            root = root.mut_subcommand(verb, |c| {
                assert!(
                    c.get_arguments().any(|a| a.get_id() == id),
                    "box {verb} has no argument `{id}`"
                );
                c.mut_args(|a| {
                    if a.get_id() == id {
                        a.add(ArgValueCandidates::new(candidates))
                    } else {
                        a
                    }
                })
            });
        }
    }
    root
}

/// The registration script of `shell`.
pub fn script(shell: CompletionShell) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let shell: &dyn clap_complete::env::EnvCompleter = match shell {
        CompletionShell::Bash => &clap_complete::env::Bash,
        CompletionShell::Zsh => &clap_complete::env::Zsh,
        CompletionShell::Fish => &clap_complete::env::Fish,
    };
    shell
        .write_registration(ENV, "box", "box", COMPLETER, &mut out)
        .context("writing the completion script")?;
    if shell.name() == "zsh" {
        out = zsh_autoloadable(&out);
    }
    Ok(out)
}

/// clap_complete's zsh script registers its function with `compdef` when run, which suits
/// `source <(box completion zsh)` but not the file in `fpath` the packages install:
/// compinit autoloads `_box` and runs it at each TAB, so the first TAB would only
/// register. Run as `_box`, the script completes at once; sourced, it registers.
fn zsh_autoloadable(script: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    let register = "compdef _clap_dynamic_completer_box box";
    let both = "if [[ \"${funcstack[1]}\" == _box ]]; then\n    _clap_dynamic_completer_box \"$@\"\nelse\n    compdef _clap_dynamic_completer_box box\nfi";
    text.replacen(register, both, 1).into_bytes()
}

pub fn exec(args: CompletionArgs) -> Result<ExitCode> {
    crate::sys::default_sigpipe();
    let script = script(args.shell)?;
    std::io::stdout()
        .lock()
        .write_all(&script)
        .context("writing the completion script to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Every box, with its image as the description (zsh and fish show it).
fn box_names() -> Vec<CompletionCandidate> {
    let Some(listings) = Context::from_env()
        .ok()
        .and_then(|ctx| crate::ops::list::names_and_images(&ctx).ok())
    else {
        return Vec::new();
    };
    listings
        .into_iter()
        .map(|(name, image)| CompletionCandidate::new(name).help(image.map(Into::into)))
        .collect()
}

/// Every image reference in the store.
fn image_names() -> Vec<CompletionCandidate> {
    Context::from_env()
        .ok()
        .and_then(|ctx| crate::ops::list::image_references(&ctx).ok())
        .unwrap_or_default()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_argument_completes_and_the_table_names_real_arguments() {
        // mut_arg panics on an argument that does not exist: a renamed one fails here.
        let mut root = command();
        root.build();
        for verb in root.get_subcommands() {
            for arg in verb.get_arguments() {
                let id = arg.get_id().as_str();
                let takes_box = arg.is_positional() && (id == "name" || id == "names");
                let listed = BOX_NAMES.contains(&(verb.get_name(), id))
                    || IMAGE_NAMES.contains(&(verb.get_name(), id));
                assert_eq!(
                    arg.get::<ArgValueCandidates>().is_some(),
                    listed,
                    "box {} {id}",
                    verb.get_name()
                );
                assert!(
                    !takes_box || listed,
                    "box {} takes a box name in `{id}` but does not complete it: add it to BOX_NAMES",
                    verb.get_name()
                );
            }
        }
    }

    #[test]
    fn completers_leave_every_positional_in_its_place() {
        let mut plain = crate::cli::command();
        plain.build();
        let mut completing = command();
        completing.build();
        for verb in plain.get_subcommands() {
            let order = |c: &clap::Command| -> Vec<(String, Option<usize>)> {
                c.get_positionals()
                    .map(|p| (p.get_id().to_string(), p.get_index()))
                    .collect()
            };
            let other = completing.find_subcommand(verb.get_name()).unwrap();
            assert_eq!(order(verb), order(other), "box {}", verb.get_name());
        }
    }

    #[test]
    fn each_script_calls_box_under_its_own_variable() {
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let text = String::from_utf8(script(shell).unwrap()).unwrap();
            assert!(text.contains(ENV), "{shell:?}: {text}");
            if shell == CompletionShell::Zsh {
                assert!(text.contains("== _box ]]; then"), "{text}");
            }
        }
    }
}
