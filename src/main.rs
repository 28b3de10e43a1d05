//! `box`: parse the command line, run the command, turn the outcome into an exit status.
//!
//! The exit status policy lives here and in `error.rs` only: 0 on success, the command's
//! own status for `run`/`enter` (they exec in place), 2 for usage errors (clap), 125 for a
//! failure of box itself, 126/127 for a command that cannot be executed or found.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = box_cli::cli::Cli::parse();
    match box_cli::commands::dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            box_cli::error::report(&err);
            ExitCode::from(box_cli::error::exit_code(&err))
        }
    }
}
