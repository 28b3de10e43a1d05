//! `box rm`: remove boxes: their overlay data (even files owned by subordinate ids,
//! removed from inside the user namespace), their record, exports and menu entry.
//!
//! The box directory is first renamed into the store's `tmp/`, so a box is either
//! complete or gone: an interrupted removal leaves only debris in `tmp/`.
//!
//! On a terminal, box asks before removing anything (as `distrobox rm` does) unless
//! `--yes`; `--force` is only about running boxes. Without a terminal it removes without
//! asking, so scripts keep working, except with `--interactive`, which then removes
//! nothing: the menu entry's Remove action uses it, so that no click deletes a box
//! without a question, whether or not the desktop gives the action a terminal.

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::create::{ask, interactive};
use crate::cli::RmArgs;
use crate::context::Context;
use crate::error::failure;
use crate::image::helper::StoreHelper;
use crate::runtime::{state, stop};
use crate::store::Store;

pub fn exec(ctx: &Context, args: RmArgs) -> Result<ExitCode> {
    let store = Store::open(&ctx.dirs.store)?;
    let names = store.named_containers(args.all, &args.names)?;
    let running = state::running_among(ctx, &store, &names);
    // Refuse before removing anything when a running box is named without --force.
    if !args.force && !running.is_empty() {
        bail!(running_error(&running));
    }
    if !names.is_empty() && !args.yes && (args.interactive || interactive()) {
        if !interactive() {
            bail!(failure(
                format!(
                    "box rm --interactive has no terminal to ask on, so {} was not removed",
                    names.join(", ")
                ),
                format!(
                    "run it in a terminal, or remove without a question: `box rm --yes {}`",
                    names.join(" ")
                ),
            ));
        }
        if !ask(&question(&names, &running))? {
            eprintln!("Nothing removed.");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let _lock = store.lock(false)?;
    let mut helper: Option<StoreHelper> = None;
    for name in &names {
        // Held until the box is out of the way: a `box run` meanwhile would start a
        // holder on the directory being removed.
        let _box_lock = store.box_lock(name)?;
        // Again under the lock: a session may have started it while we asked.
        if !args.force && !state::status(ctx, &store, name).is_stopped() {
            bail!(running_error(&[name.as_str()]));
        }
        stop::stop_locked(ctx, &store, name)?;
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
            crate::report::warn(format!(
                "box `{name}` was removed, but not all of its exports: {}",
                failures.join("; ")
            ));
        }
        println!("Removed box {name}.");
    }
    if let Some(helper) = helper {
        helper.finish()?;
    }
    store.collect_garbage(ctx, _lock);
    Ok(ExitCode::SUCCESS)
}

/// Why running boxes `running` are not removed without --force.
fn running_error(running: &[&str]) -> anyhow::Error {
    failure(
        format!("box {} is running", running.join(", ")),
        format!(
            "stop it first (`box stop {}`) or use `box rm --force`",
            running.join(" ")
        ),
    )
}

/// The confirmation question for removing `names`, saying what goes and what stays.
fn question(names: &[String], running: &[&str]) -> String {
    let stopped = match running {
        [] => String::new(),
        [one] => format!("Box {one} is running and will be stopped. "),
        some => format!(
            "Boxes {} are running and will be stopped. ",
            some.join(", ")
        ),
    };
    let (what, it, its) = match names {
        [one] => (format!("box {one}"), "it", "its"),
        many => (
            format!("{} boxes: {}", many.len(), many.join(", ")),
            "them",
            "their",
        ),
    };
    format!(
        "{stopped}Remove {what} (everything installed or changed in {it}, {its} exports and menu entries; your home stays)?"
    )
}
