//! `box rm`: the work is in [`crate::ops::rm`].
//!
//! On a terminal, box asks before removing anything (as `distrobox rm` does) unless
//! `--yes`; `--force` is only about running boxes. Without a terminal it removes without
//! asking, so scripts keep working, except with `--interactive`, which then removes
//! nothing: the menu entry's Remove action uses it, so that no click deletes a box
//! without a question, whether or not the desktop gives the action a terminal.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RmArgs;
use crate::context::Context;
use crate::ops::rm::{RmOptions, rm};

pub fn exec(ctx: &Context, args: RmArgs) -> Result<ExitCode> {
    let options = RmOptions {
        force: args.force,
        require_question: args.interactive && !args.yes,
        grace: args.time,
    };
    let ask = crate::ui::prompt::yes_or_terminal(super::assume_yes(ctx, args.yes));
    let done = rm(ctx, args.all, &args.names, options, ask, &mut |name| {
        println!("Removed box {name}.")
    })?;
    if !done {
        crate::ui::report::line("Nothing removed.");
    }
    Ok(ExitCode::SUCCESS)
}
