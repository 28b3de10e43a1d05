//! `box stop`: end boxes' holders and every process in them.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::StopArgs;
use crate::context::Context;
use crate::runtime::{state, stop};
use crate::store::Store;

pub fn exec(ctx: &Context, args: StopArgs) -> Result<ExitCode> {
    let store = Store::at(&ctx.dirs.store);
    // With --all every box, not only running ones: a box whose holder died may have
    // processes left, which stop ends too.
    let names = store.named_containers(args.all, &args.names)?;
    // On a terminal, ask before ending what runs in the boxes (distrobox does too).
    let running = state::running_among(ctx, &store, &names);
    if !args.yes
        && !running.is_empty()
        && super::create::interactive()
        && !super::create::ask(&format!(
            "Stop {} (ending every process in {})?",
            running.join(", "),
            if running.len() == 1 { "it" } else { "them" }
        ))?
    {
        println!("Nothing stopped.");
        return Ok(ExitCode::SUCCESS);
    }
    for name in &names {
        if stop::stop(ctx, name)? {
            println!("Stopped box {name}.");
        } else if !args.all {
            println!("Box {name} is not running.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
