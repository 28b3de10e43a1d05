//! `box`: parse the command line, run the command, turn the outcome into an exit status.
//!
//! The exit status policy lives here and in `error.rs` only: 0 on success, the command's
//! own status for `run`/`enter` (they exec in place), 1 when `box doctor` finds the host
//! lacking, 2 for usage errors (clap's, and arguments clap cannot check, such as an invalid
//! box name: `error::EXIT_USAGE`), 125 for a failure of box itself, 126/127 for a command
//! that cannot be executed or found.

use std::process::ExitCode;

fn main() -> ExitCode {
    box_cli::sys::static_nss();
    // A shell asking for the words of a completion (`BOX_COMPLETE=bash box -- ...`).
    box_cli::commands::completion::complete_from_env();
    // Called by another name (a link to box): distrobox's, podman's, or in a box another
    // command's, run on the host. `box` itself costs one comparison.
    let program = std::env::args_os()
        .next()
        .map_or(box_cli::commands::Program::Box, |argv0| {
            box_cli::commands::program(&argv0)
        });
    let outcome = match program {
        box_cli::commands::Program::Box => run(),
        other => box_cli::commands::run_as(other, std::env::args_os().skip(1).collect()),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            box_cli::error::report(&err);
            ExitCode::from(box_cli::error::exit_code(&err))
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    // Internal re-executions of box (holder, store helper) skip the public command line.
    let internal = std::env::args_os()
        .nth(1)
        .is_some_and(|first| first.to_str().is_some_and(|f| f.starts_with("__")));
    internal
        .then(|| box_cli::commands::internal(&std::env::args().skip(1).collect::<Vec<_>>()))
        .flatten()
        .unwrap_or_else(|| {
            // The hot path's own form skips building clap's command tree.
            let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
            let command = match box_cli::cli::parse_plain_run(&args)
                .or_else(|| box_cli::cli::parse_plain_host_exec(&args))
            {
                Some(command) => command,
                None => {
                    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
                    match box_cli::cli::try_parse(argv.clone()) {
                        Ok(command) => command,
                        // distrobox's flags for what box does otherwise: box's answer.
                        Err(err) => match box_cli::cli::distrobox_only(&err, &argv) {
                            Some(flag) => return Err(box_cli::commands::distrobox_only(flag)),
                            None => err.exit(),
                        },
                    }
                }
            };
            box_cli::commands::dispatch(command)
        })
}
