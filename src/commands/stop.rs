//! `box stop`: end boxes' holders and every process in them.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::StopArgs;
use crate::context::Context;
use crate::runtime::{state, stop};
use crate::store::Store;

pub fn exec(ctx: &Context, args: StopArgs) -> Result<ExitCode> {
    if let Some(current) = crate::host::inside_box() {
        return Err(crate::runtime::from_host_only(
            &current,
            args.names.first().map_or("", String::as_str),
            &boxes_what("stop", &args.names),
        ));
    }
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

/// "stop box `a`", "stop boxes `a`, `b`", "stop boxes" (for --all): what a refused
/// `verb` was asked to do.
pub(super) fn boxes_what(verb: &str, names: &[String]) -> String {
    match names {
        [] => format!("{verb} boxes"),
        [one] => format!("{verb} box `{one}`"),
        many => format!("{verb} boxes `{}`", many.join("`, `")),
    }
}
