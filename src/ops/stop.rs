//! Stopping boxes: their holders and every process in them ([`crate::runtime::stop`]).
//!
//! Invariants: the question (when there is someone to ask) comes before any box is
//! stopped; nobody to ask means stop, as scripts expect. A box that cannot be stopped
//! does not keep the others running, and every box that failed is named with its own
//! cause ([`StopFailures`]).

use std::fmt;
use std::time::Duration;

use anyhow::Result;

use crate::context::Context;
use crate::error::Hint;
use crate::runtime::{state, stop as runtime_stop};
use crate::store::Store;
use crate::ui::prompt::Ask;

pub use crate::runtime::stop::DEFAULT_GRACE;

/// The boxes a stop could not stop, each with why, in the order they were named; the
/// other boxes were stopped. Callers that want the boxes downcast the error to this.
#[derive(Debug)]
pub struct StopFailures(pub Vec<(String, anyhow::Error)>);

impl fmt::Display for StopFailures {
    /// One box: its cause. Several: one line per box, each with its cause and hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [(name, err)] => write!(
                f,
                "box `{name}` could not be stopped: {}",
                crate::error::message(err)
            ),
            failures => {
                write!(f, "{} boxes could not be stopped:", failures.len())?;
                for (name, err) in failures {
                    write!(f, "\n  {name}: {}", crate::error::message(err))?;
                    if let Some(Hint(hint)) = err.downcast_ref::<Hint>() {
                        write!(f, " (hint: {hint})")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StopFailures {}

impl StopFailures {
    /// The error to return: this list, with the hint of its one box when there is one.
    fn into_error(self) -> anyhow::Error {
        let hint = match self.0.as_slice() {
            [(_, err)] => err.downcast_ref::<Hint>().map(|h| h.0.clone()),
            _ => None,
        };
        let err = anyhow::Error::new(self);
        match hint {
            Some(hint) => err.context(Hint(hint)),
            None => err,
        }
    }
}

/// Stop the boxes named (or every box, with `all`: a box whose holder died may have
/// processes left, which stop ends too), giving their processes `grace` to end before
/// they are killed. `stopped` is called for each box stopped, with whether it was
/// running. Returns false when the user declined (nothing was stopped); fails with
/// [`StopFailures`] when any box could not be stopped, after stopping the others.
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
    let mut failed = Vec::new();
    for (name, result) in names
        .iter()
        .zip(runtime_stop::stop_many(ctx, &names, grace))
    {
        match result {
            Ok(was_running) => stopped(name, was_running),
            Err(err) => failed.push(((*name).to_owned(), err)),
        }
    }
    if failed.is_empty() {
        Ok(true)
    } else {
        Err(StopFailures(failed).into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{HintExt, failure};
    use anyhow::Context as _;

    #[test]
    fn every_box_that_failed_is_named_with_its_cause() {
        let one = StopFailures(vec![(
            "a".into(),
            failure("its holder is still alive", "try again"),
        )])
        .into_error();
        assert_eq!(
            crate::error::message(&one),
            "box `a` could not be stopped: its holder is still alive"
        );
        assert_eq!(one.downcast_ref::<Hint>().unwrap().0, "try again");
        assert_eq!(one.downcast_ref::<StopFailures>().unwrap().0.len(), 1);

        let lock: Result<()> =
            Err(std::io::Error::from_raw_os_error(libc::EISDIR)).context("opening lock /s/b");
        let two = StopFailures(vec![
            ("a".into(), failure("holder alive", "kill it")),
            ("b".into(), lock.hint("remove it").unwrap_err()),
        ])
        .into_error();
        assert_eq!(
            crate::error::message(&two),
            "2 boxes could not be stopped:\n  a: holder alive (hint: kill it)\n  b: opening lock /s/b: Is a directory (os error 21) (hint: remove it)"
        );
        // Each box's hint is on its own line: none for the whole.
        assert!(two.downcast_ref::<Hint>().is_none());
        let names: Vec<&str> = two
            .downcast_ref::<StopFailures>()
            .unwrap()
            .0
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            crate::error::exit_code(&two),
            crate::error::EXIT_BOX_FAILURE
        );
    }
}
