//! Garbage collection, the removing half: removes what [`Store::garbage`] decided, the
//! user's own files from the host and layers and staging trees (files of subordinate ids)
//! through the store helper in the user namespace.
//!
//! Invariant: never fails the command that asked for it; what could not be removed is
//! named in one warning and left for the next `box rmi` or `box rm`.

use crate::context::Context;
use crate::image::helper::StoreHelper;
use crate::store::{Lock, Store};
use crate::ui::report::{notice, warn};

/// Collect the store's garbage with `lock` (this process's store lock, made exclusive;
/// skipped when another box process holds the store). Says what it removed.
pub fn collect(ctx: &Context, store: &Store, lock: Lock) {
    let garbage = match store.garbage(lock) {
        Ok(Some(garbage)) => garbage,
        Ok(None) => return,
        Err(err) => {
            warn(format!("skipping garbage collection: {err:#}"));
            return;
        }
    };
    let mut failed: Vec<String> = Vec::new();
    for file in &garbage.files {
        if let Err(err) = std::fs::remove_file(file)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            failed.push(format!("{}: {err}", file.display()));
        }
    }
    for (path, _held) in &garbage.layer_locks {
        let _ = std::fs::remove_file(path);
    }
    // Boxes started before the store was guarded may still run on what was set aside.
    let set_aside = garbage
        .set_aside
        .as_ref()
        .filter(|_| no_box_runs(ctx, store));
    // Layers still there (a failed removal, or no helper): their records stay.
    let mut kept: Vec<&std::path::Path> = Vec::new();
    if !garbage.layers.is_empty() || !garbage.staging.is_empty() || set_aside.is_some() {
        let removed = StoreHelper::start(ctx).and_then(|mut helper| {
            for path in &garbage.staging {
                if let Err(err) = helper.remove_debris(path) {
                    failed.push(format!("{}: {err:#}", path.display()));
                }
            }
            let mut layers = 0;
            for layer in &garbage.layers {
                match helper.remove(layer) {
                    Ok(()) => layers += 1,
                    Err(err) => {
                        kept.push(layer);
                        failed.push(format!("{}: {err:#}", layer.display()));
                    }
                }
            }
            if let Some(dir) = set_aside
                && let Err(err) = helper.remove(dir)
            {
                failed.push(format!("{}: {err:#}", dir.display()));
            }
            helper.finish()?;
            Ok(layers)
        });
        match removed {
            Ok(0) => {}
            Ok(layers) => notice(format!("removed {layers} unused layer(s)")),
            Err(err) => {
                kept = garbage.layers.iter().map(|l| l.as_path()).collect();
                failed.push(format!("{err:#}"));
            }
        }
    }
    // A record means a layer: it goes once its layer is gone.
    for record in &garbage.layer_records {
        let layer = record.file_stem().unwrap_or_default();
        if kept.iter().any(|l| l.file_name() == Some(layer)) {
            continue;
        }
        if let Err(err) = std::fs::remove_file(record)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            failed.push(format!("{}: {err}", record.display()));
        }
    }
    if !failed.is_empty() {
        warn(format!(
            "garbage collection could not remove {} (the next `box rmi` or `box rm` tries again)",
            failed.join("; ")
        ));
    }
}

/// Whether no box of the store runs (nor was left running by a holder that died).
fn no_box_runs(ctx: &Context, store: &Store) -> bool {
    let names: Vec<String> = match store.containers() {
        Ok(records) => records.into_iter().map(|r| r.name).collect(),
        Err(_) => return false,
    };
    crate::runtime::state::statuses(
        ctx,
        store,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .iter()
    .all(|status| status.is_stopped())
}
