//! Stopping boxes: their holders and every process in them ([`crate::runtime::stop`]).
//!
//! Invariant: the question (when there is someone to ask) comes before any box is
//! stopped; nobody to ask means stop, as scripts expect.

use anyhow::Result;

use crate::context::Context;
use crate::prompt::Ask;
use crate::runtime::{state, stop as runtime_stop};
use crate::store::Store;

/// Stop the boxes named (or every box, with `all`: a box whose holder died may have
/// processes left, which stop ends too). `stopped` is called for each box with whether
/// it was running. Returns false when the user declined (nothing was stopped).
pub fn stop(
    ctx: &Context,
    all: bool,
    names: &[String],
    ask: &dyn Ask,
    stopped: &mut dyn FnMut(&str, bool),
) -> Result<bool> {
    let store = Store::at(&ctx.dirs.store);
    let names = store.named_containers(all, names)?;
    // Ask before ending what runs in the boxes (distrobox does too).
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
    for name in &names {
        let was_running = runtime_stop::stop(ctx, name)?;
        stopped(name, was_running);
    }
    Ok(true)
}
