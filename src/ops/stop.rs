//! Stopping boxes: their holders and every process in them ([`crate::runtime::stop`]).
//!
//! Invariant: the question (when there is someone to ask) comes before any box is
//! stopped; nobody to ask means stop, as scripts expect.

use std::time::Duration;

use anyhow::Result;

use crate::context::Context;
use crate::runtime::{state, stop as runtime_stop};
use crate::store::Store;
use crate::ui::prompt::Ask;

/// Stop the boxes named (or every box, with `all`: a box whose holder died may have
/// processes left, which stop ends too), giving their processes `grace` to end before
/// they are killed. `stopped` is called for each box with whether it was running.
/// Returns false when the user declined (nothing was stopped).
pub fn stop(
    ctx: &Context,
    all: bool,
    names: &[String],
    grace: Duration,
    ask: &dyn Ask,
    stopped: &mut dyn FnMut(&str, bool),
) -> Result<bool> {
    let store = Store::at(&ctx.dirs.store);
    let names = store.named_containers(all, names)?;
    // Ask before ending what runs in the boxes (distrobox does too). An answer known in
    // advance that is not "no" (`--yes`, a script) needs no list of running boxes.
    if !matches!(ask.preset(), Some(Some(true) | None)) {
        let running = state::running_among(ctx, &store, &names);
        if !running.is_empty()
            && ask.ask(&format!(
                "Stop {} (ending every process in {})?",
                running.join(", "),
                if running.len() == 1 { "it" } else { "them" }
            ))? == Some(false)
        {
            return Ok(false);
        }
    }
    // All together: processes of every box get their signals at once and are waited
    // for together, so many boxes stop in the time of one.
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut failed = None;
    for (name, result) in names
        .iter()
        .zip(runtime_stop::stop_many(ctx, &names, grace))
    {
        match result {
            Ok(was_running) => stopped(name, was_running),
            Err(err) => failed = failed.or(Some(err)),
        }
    }
    failed.map_or(Ok(true), Err)
}
