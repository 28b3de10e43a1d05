//! `box upgrade`: the boxes' packages upgraded with their distribution's package manager,
//! as root in each box (`provision::upgrade`), the package manager's output shown as it
//! comes.
//!
//! Invariant: every box asked for is tried, whatever happened to the others; each one's
//! outcome is kept as it is (a `Result`), never as text, for the caller to count and show.

use anyhow::Result;

use crate::context::Context;
use crate::runtime::state;
use crate::store::Store;

/// Upgrade the boxes `names` (every box with `all`; only those running with `running`).
/// Returns each box with its outcome, in order; none when there was no box to upgrade.
pub fn upgrade(
    ctx: &Context,
    all: bool,
    names: &[String],
    running: bool,
) -> Result<Vec<(String, Result<()>)>> {
    let store = Store::at(&ctx.dirs.store);
    let mut names = store.named_containers(all, names)?;
    if running {
        names.retain(|name| !state::status(ctx, &store, name).is_stopped());
    }
    Ok(names
        .into_iter()
        .map(|name| {
            crate::ui::report::notice(format!("upgrading box {name}"));
            let outcome = crate::provision::upgrade(ctx, &name);
            (name, outcome)
        })
        .collect())
}
