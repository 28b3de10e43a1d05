//! The reporter: the one way library code tells the user something that is not a result
//! (notices, warnings, progress). Library code calls [`notice`], [`warn`] and
//! [`progress_allowed`]; the command being run decides once, with [`set_output`], where
//! that goes. Results (tables, JSON, digests) are the commands' own stdout, never this.
//!
//! Invariants:
//! - everything goes to stderr, one line per message, prefixed `box: ` (warnings
//!   `box: warning: `), so stdout stays the command's result for pipes and `--json`;
//! - while progress bars are drawn ([`crate::ui::progress::Progress`] registers its display
//!   here), messages are printed above the bars through the display: a line written
//!   between two redraws would be overwritten or leave pieces of bars behind;
//! - progress is drawn only in [`Output::Terminal`] mode (stderr is a terminal and the
//!   command did not ask for plain lines);
//! - no thread and no allocation beyond the message itself: the reporter is reachable
//!   from the enter/run path, which must stay single-threaded.

use std::fmt;
use std::io::Write;
use std::sync::Mutex;

/// Where messages go, chosen by the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// stderr is a terminal: progress bars and spinners are drawn, messages are lines.
    Terminal,
    /// Plain lines on stderr (a pipe, a log, a desktop action): no bars, no `\r`.
    Plain,
}

/// A display that draws on stderr and must print messages itself while it is shown.
pub trait Display: Send {
    fn println(&self, line: &str);
}

struct Reporter {
    output: Option<Output>,
    display: Option<Box<dyn Display>>,
}

static REPORTER: Mutex<Reporter> = Mutex::new(Reporter {
    output: None,
    display: None,
});

thread_local! {
    /// Messages of this thread kept instead of printed ([`capture`], for tests).
    static CAPTURED: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

fn reporter() -> std::sync::MutexGuard<'static, Reporter> {
    // A panic while printing leaves nothing half-done worth refusing later messages for.
    REPORTER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The output the command chose; without a choice, a terminal when stderr is one.
pub fn output() -> Output {
    if let Some(output) = reporter().output {
        return output;
    }
    if rustix::termios::isatty(rustix::stdio::stderr()) {
        Output::Terminal
    } else {
        Output::Plain
    }
}

/// Choose where messages go for the rest of the process.
pub fn set_output(output: Output) {
    reporter().output = Some(output);
}

/// Whether long work may draw progress bars and spinners.
pub fn progress_allowed() -> bool {
    output() == Output::Terminal
}

/// While the returned guard lives, messages are printed through `display`.
pub fn show(display: Box<dyn Display>) -> Shown {
    reporter().display = Some(display);
    Shown(())
}

/// Keeps a display registered with the reporter; dropping it unregisters the display.
#[must_use]
pub struct Shown(());

impl Drop for Shown {
    fn drop(&mut self) {
        reporter().display = None;
    }
}

fn emit(line: String) {
    let Some(line) = CAPTURED.with_borrow_mut(|captured| match captured {
        Some(lines) => {
            lines.push(line);
            None
        }
        None => Some(line),
    }) else {
        return;
    };
    let reporter = reporter();
    if let Some(display) = &reporter.display {
        display.println(&line);
    } else {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Something the user should know (`box: MESSAGE`).
pub fn notice(message: impl fmt::Display) {
    emit(format!("box: {message}"));
}

/// Something went wrong that did not stop the command (`box: warning: MESSAGE`).
pub fn warn(message: impl fmt::Display) {
    emit(format!("box: warning: {message}"));
}

/// A line as it is, without prefix (the heading of a long piece of work).
pub fn line(text: impl fmt::Display) {
    emit(text.to_string());
}

/// Run `work` with this thread's messages kept instead of printed; returns its result
/// and the lines. For tests of library code.
pub fn capture<T>(work: impl FnOnce() -> T) -> (T, Vec<String>) {
    let previous = CAPTURED.with_borrow_mut(|c| c.replace(Vec::new()));
    let result = work();
    let lines = CAPTURED.with_borrow_mut(|c| std::mem::replace(c, previous));
    (result, lines.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Recorder(Arc<Mutex<Vec<String>>>);
    impl Display for Recorder {
        fn println(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_owned());
        }
    }

    #[test]
    fn messages_carry_their_prefix_and_go_through_a_shown_display() {
        let ((), lines) = capture(|| {
            notice("hello");
            warn("careful");
        });
        assert_eq!(lines, ["box: hello", "box: warning: careful"]);

        let drawn = Arc::new(Mutex::new(Vec::new()));
        // Not captured: the display gets the line while shown, and only then.
        let guard = show(Box::new(Recorder(drawn.clone())));
        warn("above the bars");
        drop(guard);
        warn("after the bars");
        // Other tests may print meanwhile: look for this test's lines only.
        let drawn = drawn.lock().unwrap();
        assert!(drawn.contains(&"box: warning: above the bars".to_owned()));
        assert!(!drawn.contains(&"box: warning: after the bars".to_owned()));
    }
}
