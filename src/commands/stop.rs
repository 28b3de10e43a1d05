//! `box stop`: the work is in [`crate::ops::stop`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::StopArgs;
use crate::context::Context;

pub fn exec(ctx: &Context, args: StopArgs) -> Result<ExitCode> {
    let ask = crate::ui::prompt::yes_or_terminal(super::assume_yes(ctx, args.yes));
    let done = crate::ops::stop::stop(
        ctx,
        args.all,
        &args.names,
        args.time,
        ask,
        &mut |name, running| {
            if running {
                println!("Stopped box {name}.");
            } else if !args.all {
                println!("Box {name} is not running.");
            }
        },
    )?;
    if !done {
        println!("Nothing stopped.");
    }
    Ok(ExitCode::SUCCESS)
}
