//! `box run`: one command in a box, no questions asked; stdio, signals and the exit
//! status are the command's own (it replaces this process).

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RunArgs;
use crate::context::Context;
use crate::error::Hint;
use crate::runtime::join::Command;
use crate::runtime::{self, state};
use crate::store::containers::validate_name;

pub fn exec(ctx: &Context, args: RunArgs) -> Result<ExitCode> {
    validate_name(&args.name)?;
    let name = args.name.as_str();
    let command = Command::Exec(&args.command);
    runtime::identity::refuse_inside(args.user.as_deref(), name)?;
    runtime::join::here_when_inside(name, command, args.no_workdir, || {
        format!("run a command in box `{name}`")
    })?;
    // The hot path: a running box is joined from its runtime state alone (unless that
    // state says a provisioning run was interrupted: then it is resumed first).
    let user = args.user.as_deref();
    let state = match state::running(ctx, name) {
        Some(state) if !state.provisioning || user.is_some() => state,
        _ => {
            // In box NAME under sudo or env -i (no CONTAINER_ID): no state, no holder to
            // start; the box's own file says where we are.
            runtime::join::here_when_box_file_says(name, command, args.no_workdir, || {
                format!("run a command in box `{name}`")
            })?;
            match crate::provision::start_box(ctx, name, user.is_none()) {
                Ok(state) => state,
                // Called through an exported wrapper whose box was removed: say which file.
                Err(err) if !ctx_has_box(ctx, name) => {
                    return Err(match crate::export::missing_box_hint(name) {
                        Some(hint) => err.context(Hint(hint)),
                        None => err,
                    });
                }
                Err(err) => return Err(err),
            }
        }
    };
    match runtime::join::exec_as(name, &state, command, args.no_workdir, user)? {}
}

fn ctx_has_box(ctx: &Context, name: &str) -> bool {
    crate::store::Store::at(&ctx.dirs.store).has_container(name)
}
