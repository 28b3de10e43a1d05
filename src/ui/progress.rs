//! Progress display for long work: indicatif bars on stderr (pulls), or a running count
//! where the total is not known beforehand (the files of a box being removed), only on
//! a terminal.
//!
//! Invariants: nothing is drawn unless the reporter allows progress
//! ([`crate::ui::report::progress_allowed`]: stderr is a terminal), so logs and pipes stay
//! clean (no `\r`, no escape sequences); no steady-tick thread is started (bars redraw
//! when their position changes), so a progress display never adds a thread of its own;
//! while bars are shown they are registered with the reporter, so every notice and
//! warning is printed above them. Never used on the enter/run path.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A set of per-item byte bars plus a total bar; inert when disabled.
pub struct Progress {
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
    _shown: Option<crate::ui::report::Shown>,
}

/// The bars' display as the reporter sees it: lines go above the bars.
struct Above(MultiProgress);

impl crate::ui::report::Display for Above {
    fn println(&self, line: &str) {
        let _ = self.0.println(line);
    }
}

/// One item's bar (a layer download); inert when progress is disabled.
#[derive(Clone)]
pub struct ItemBar {
    bar: Option<ProgressBar>,
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:>14} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ")
}

impl Progress {
    /// A display for `total_bytes` of work, drawn only when the reporter allows progress.
    pub fn new(label: &str, total_bytes: u64) -> Progress {
        if !crate::ui::report::progress_allowed() {
            return Progress {
                multi: None,
                total: None,
                _shown: None,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let total = multi.add(ProgressBar::new(total_bytes));
        total.set_style(bytes_style());
        total.set_prefix(label.to_owned());
        Progress {
            _shown: Some(crate::ui::report::show(Box::new(Above(multi.clone())))),
            multi: Some(multi),
            total: Some(total),
        }
    }

    /// A bar for one item of `size` bytes, named `name`.
    pub fn item(&self, name: &str, size: u64) -> ItemBar {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = match &self.total {
                Some(total) => multi.insert_before(total, ProgressBar::new(size)),
                None => multi.add(ProgressBar::new(size)),
            };
            bar.set_style(bytes_style());
            bar.set_prefix(name.to_owned());
            bar
        });
        ItemBar { bar }
    }

    /// Advance the total by `delta` bytes.
    pub fn advance(&self, delta: u64) {
        if let Some(total) = &self.total {
            total.inc(delta);
        }
    }

    /// Remove the bars from the screen.
    pub fn finish(&self) {
        if let Some(total) = &self.total {
            total.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

impl ItemBar {
    /// Set the bytes done so far.
    pub fn set(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
        }
    }

    /// Show a status word (e.g. "unpacking", "done") next to the bar.
    pub fn status(&self, message: &'static str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
            bar.tick();
        }
    }

    pub fn finish(&self, message: &'static str) {
        if let Some(bar) = &self.bar {
            bar.finish_with_message(message);
        }
    }
}

/// A running count of work whose total is not known (files removed), one line on stderr:
/// `LABEL ⠙ 12,345 UNIT`; inert when progress is not allowed. Cleared by [`Count::finish`]
/// or when dropped.
pub struct Count {
    bar: Option<ProgressBar>,
    _shown: Option<crate::ui::report::Shown>,
}

impl Count {
    /// A count labelled `label` (`removing box dev`) of `unit` (`files removed`).
    pub fn new(label: &str, unit: &str) -> Count {
        if !crate::ui::report::progress_allowed() {
            return Count {
                bar: None,
                _shown: None,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        // Styled and labelled before it is added, so that no draw shows it half-made.
        let bar = ProgressBar::new_spinner()
            .with_style(
                ProgressStyle::with_template("{prefix} {spinner} {human_pos} {msg}")
                    .expect("valid template"),
            )
            .with_prefix(label.to_owned())
            .with_message(unit.to_owned());
        let bar = multi.add(bar);
        bar.tick();
        Count {
            _shown: Some(crate::ui::report::show(Box::new(Above(multi)))),
            bar: Some(bar),
        }
    }

    /// Set the count done so far (and turn the spinner).
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.tick();
        }
    }

    /// Remove the line from the screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Format a byte count for humans (binary units, one decimal).
pub fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// Format a duration for humans.
pub fn human_duration(elapsed: Duration) -> String {
    format!("{:.2}s", elapsed.as_secs_f64())
}
