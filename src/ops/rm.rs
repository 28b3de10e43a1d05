//! Removing boxes: their overlay data (even files owned by subordinate ids, removed from
//! inside the user namespace), their record, exports and menu entry.
//!
//! Invariants:
//! - a running box is removed only with `force`; this is checked for all boxes before
//!   anything is removed, and again under their locks (a session may have started one
//!   while the user was asked); running boxes are stopped together, before any is
//!   removed;
//! - the box directory is first renamed into the store's `tmp/`, so a box is either
//!   complete or gone: an interrupted removal leaves only debris in `tmp/`, which garbage
//!   collection clears;
//! - on a terminal, the removal of each box's files shows how many are gone so far
//!   (`ui::progress::Count`, nothing without a terminal);
//! - the question comes before anything is removed; when nobody can answer, boxes are
//!   removed (scripts keep working) unless the caller demanded a question
//!   ([`RmOptions::require_question`], the menu entry's Remove action), then nothing is.

use anyhow::{Result, bail};

use crate::context::Context;
use crate::error::failure;
use crate::image::helper::StoreHelper;
use crate::runtime::{state, stop};
use crate::store::Store;
use crate::ui::progress::Count;
use crate::ui::prompt::Ask;

/// How to remove.
#[derive(Debug, Clone, Copy)]
pub struct RmOptions {
    /// Stop running boxes first instead of refusing.
    pub force: bool,
    /// Remove nothing unless the user answered the question (`box rm --interactive`).
    pub require_question: bool,
    /// How long running boxes' processes get to end before they are killed.
    pub grace: std::time::Duration,
    /// Also remove each box's own home directory (`--home`), when it is not the user's
    /// (distrobox's `rm --rm-home`).
    pub remove_home: bool,
}

/// Remove the boxes named (or every box, with `all`); `removed` is called with each name
/// once its box is gone. Returns false when the user declined (nothing was removed).
pub fn rm(
    ctx: &Context,
    all: bool,
    names: &[String],
    options: RmOptions,
    ask: &dyn Ask,
    removed: &mut dyn FnMut(&str),
) -> Result<bool> {
    let store = Store::open(&ctx.dirs.store)?;
    let names = store.named_containers(all, names)?;
    let running = state::running_among(ctx, &store, &names);
    // Refuse before removing anything when a running box is named without --force.
    if !options.force && !running.is_empty() {
        bail!(running_error(&running));
    }
    if !names.is_empty() {
        match ask.ask(&question(&names, &running))? {
            Some(false) => return Ok(false),
            None if options.require_question => bail!(failure(
                format!(
                    "box rm --interactive has no terminal to ask on, so {} was not removed",
                    names.join(", ")
                ),
                format!(
                    "run it in a terminal, or remove without a question: `box rm --yes {}`",
                    names.join(" ")
                ),
            )),
            Some(true) | None => {}
        }
    }
    let lock = store.lock(false)?;
    // Held until the boxes are out of the way: a `box run` meanwhile would start a holder
    // on a directory being removed. Taken in name order (as `box stop` does).
    let mut box_locks = Vec::new();
    let mut in_order: Vec<&String> = names.iter().collect();
    in_order.sort_unstable();
    for name in in_order {
        box_locks.push(store.box_lock(name)?);
    }
    // Again under the locks: a session may have started one while we asked.
    if !options.force {
        let running = state::running_among(ctx, &store, &names);
        if !running.is_empty() {
            bail!(running_error(&running));
        }
    }
    // Every box stopped at once (their processes are waited for together).
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for result in stop::stop_locked(ctx, &store, &name_refs, options.grace) {
        result?;
    }
    let mut helper: Option<StoreHelper> = None;
    for name in &names {
        let home = if options.remove_home {
            store.container(name).ok().and_then(|record| record.home)
        } else {
            None
        };
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
        // A large box takes a while (a GB of small files, half a minute): on a terminal,
        // the count of what is gone so far.
        let count = Count::new(&format!("removing box {name}"), "files removed");
        helper
            .as_mut()
            .expect("started above")
            .remove_with_progress(&staging, &mut |removed| count.set(removed))?;
        count.finish();
        state::remove_dir(ctx, name);
        let failures: Vec<String> = [
            crate::export::remove_box_exports(ctx, name),
            crate::export::delete_entry(ctx, name),
        ]
        .into_iter()
        .filter_map(|r| r.err().map(|e| crate::error::message(&e)))
        .collect();
        if !failures.is_empty() {
            crate::ui::report::warn(format!(
                "box `{name}` was removed, but not all of its exports: {}",
                failures.join("; ")
            ));
        }
        if let Some(home) = home {
            remove_home(ctx, name, &home);
        }
        removed(name);
    }
    if let Some(helper) = helper {
        helper.finish()?;
    }
    super::gc::collect(ctx, &store, lock);
    Ok(true)
}

/// Remove box `name`'s own home `home` (`rm --rm-home`), unless it is the user's home,
/// holds it or the store, or is not a directory; what cannot be removed is said.
fn remove_home(ctx: &Context, name: &str, home: &std::path::Path) {
    let user_home = &ctx.dirs.home;
    let keep = !home.is_absolute()
        || home.parent().is_none()
        || user_home.starts_with(home)
        || ctx.dirs.store.starts_with(home)
        || !std::fs::symlink_metadata(home).is_ok_and(|m| m.is_dir());
    if keep {
        if home.exists() {
            crate::ui::report::warn(format!(
                "kept {}, the home of box `{name}`: it is not a directory of the box's own",
                home.display()
            ));
        }
        return;
    }
    if let Err(err) = std::fs::remove_dir_all(home) {
        crate::ui::report::warn(format!(
            "box `{name}` was removed, but not all of its home {}: {err} (files the box's root made there belong to its ids; `box run` another box or remove them with sudo)",
            home.display()
        ));
    }
}

/// Remove box `name` if it exists, stopping it first (its processes get `grace`), with
/// no question: what `box assemble --replace` and `box ephemeral` need.
pub fn remove_forced(ctx: &Context, name: &str, grace: std::time::Duration) -> Result<()> {
    if !Store::at(&ctx.dirs.store).has_container(name) {
        return Ok(());
    }
    let options = RmOptions {
        force: true,
        require_question: false,
        grace,
        remove_home: false,
    };
    let names = [name.to_owned()];
    rm(
        ctx,
        false,
        &names,
        options,
        &crate::ui::prompt::Assume(true),
        &mut |_| {},
    )?;
    Ok(())
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
