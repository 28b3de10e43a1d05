//! `box stop`: end boxes' holders and every process in them.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::StopArgs;
use crate::context::Context;
use crate::runtime::{state, stop};
use crate::store::Store;

pub fn exec(ctx: &Context, args: StopArgs) -> Result<ExitCode> {
    let store = Store::at(&ctx.dirs.store);
    let names: Vec<String> = if args.all {
        store
            .containers()?
            .into_iter()
            .map(|r| r.name)
            .filter(|n| state::running(ctx, n).is_some())
            .collect()
    } else {
        // Check every name first: a typo must not stop half of the list.
        for name in &args.names {
            store.container(name)?;
        }
        args.names.clone()
    };
    for name in &names {
        if stop::stop(ctx, name)? {
            println!("Stopped box {name}.");
        } else if !args.all {
            println!("Box {name} is not running.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
