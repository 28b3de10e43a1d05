//! `box run`: one command in a box, no questions asked; stdio, signals and the exit
//! status are the command's own (it replaces this process).

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RunArgs;
use crate::context::Context;
use crate::runtime::join::Command;
use crate::runtime::{self, state};
use crate::store::containers::validate_name;

pub fn exec(ctx: &Context, args: RunArgs) -> Result<ExitCode> {
    validate_name(&args.name)?;
    let name = args.name.as_str();
    // The hot path: a running box is joined from its runtime state alone.
    let state = match state::running(ctx, name) {
        Some(state) => state,
        None => runtime::ensure_running(ctx, name)?,
    };
    let cwd = if args.no_workdir {
        None
    } else {
        std::env::current_dir().ok()
    };
    match runtime::join::exec(name, &state, Command::Exec(&args.command), cwd)? {}
}
