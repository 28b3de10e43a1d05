//! `box rm`: remove boxes: their overlay data (even files owned by subordinate ids,
//! removed from inside the user namespace), their record, exports and menu entry.
//!
//! The box directory is first renamed into the store's `tmp/`, so a box is either
//! complete or gone: an interrupted removal leaves only debris in `tmp/`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::RmArgs;
use crate::context::Context;
use crate::error::failure;
use crate::image::helper::StoreHelper;
use crate::runtime::{state, stop};
use crate::store::Store;

pub fn exec(ctx: &Context, args: RmArgs) -> Result<ExitCode> {
    let store = Store::open(&ctx.dirs.store)?;
    let names: Vec<String> = if args.all {
        store.containers()?.into_iter().map(|r| r.name).collect()
    } else {
        for name in &args.names {
            store.container(name)?;
        }
        args.names.clone()
    };
    // Refuse before removing anything when a running box is named without --force.
    if !args.force {
        let running: Vec<&str> = names
            .iter()
            .filter(|n| state::running(ctx, n).is_some())
            .map(String::as_str)
            .collect();
        if !running.is_empty() {
            bail!(failure(
                format!("box {} is running", running.join(", ")),
                format!(
                    "stop it first (`box stop {}`) or use `box rm --force`",
                    running.join(" ")
                ),
            ));
        }
    }
    let _lock = store.lock(false)?;
    let mut helper: Option<StoreHelper> = None;
    for name in &names {
        stop::stop(ctx, name)?;
        let staging = store.staging_path(&format!("rm-{name}"));
        std::fs::rename(store.container_dir(name), &staging).map_err(|err| {
            anyhow::Error::from(err).context(format!(
                "moving {} out of the way",
                store.container_dir(name).display()
            ))
        })?;
        if helper.is_none() {
            helper = Some(StoreHelper::start(ctx)?);
        }
        helper.as_mut().expect("started above").remove(&staging)?;
        state::remove_dir(ctx, name);
        let failures: Vec<String> = [
            crate::export::remove_box_exports(ctx, name),
            crate::export::delete_entry(ctx, name),
        ]
        .into_iter()
        .filter_map(|r| r.err().map(|e| crate::error::message(&e)))
        .collect();
        if !failures.is_empty() {
            crate::error::warn(format!(
                "box `{name}` was removed, but not all of its exports: {}",
                failures.join("; ")
            ));
        }
        println!("Removed box {name}.");
    }
    if let Some(helper) = helper {
        helper.finish()?;
    }
    Ok(ExitCode::SUCCESS)
}
