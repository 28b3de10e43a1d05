//! `box`: parse the command line, run the command, turn the outcome into an exit status.
//!
//! The exit status policy lives here and in `error.rs` only: 0 on success, the command's
//! own status for `run`/`enter` (they exec in place), 1 when `box doctor` finds the host
//! lacking, 2 for usage errors (clap), 125 for a failure of box itself, 126/127 for a
//! command that cannot be executed or found.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    box_cli::sys::static_nss();
    // A shell asking for the words of a completion (`BOX_COMPLETE=bash box -- ...`).
    box_cli::commands::completion::complete_from_env();
    let outcome = match std::env::args_os()
        .next()
        .and_then(|argv0| box_cli::commands::linked_command(&argv0))
    {
        // Symlink mode: box linked as another command's name in a box runs it on the host.
        Some(command) => box_cli::commands::exec_linked(command, std::env::args_os().skip(1)),
        None => run(),
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
            let command = box_cli::cli::parse_plain_run(&args)
                .or_else(|| box_cli::cli::parse_plain_host_exec(&args))
                .unwrap_or_else(|| box_cli::cli::Cli::parse().command);
            box_cli::commands::dispatch(command)
        })
}
