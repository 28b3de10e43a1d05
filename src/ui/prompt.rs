//! Questions to the user, behind one small interface, so that an operation asks the same
//! way whoever calls it: a command on a terminal, a script, a manifest, a desktop action.
//!
//! An operation holds an `&dyn Ask` and calls [`Ask::ask`]; the answer is `None` when
//! nobody can answer (no terminal), and the operation decides what that means (`box rm`
//! removes without asking in scripts, but not when `--interactive` demanded a question).
//! No operation checks for a terminal itself: that is [`Terminal`]'s job alone.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;

/// Something that may answer yes/no questions.
pub trait Ask {
    /// The answer to `question` (a sentence ending in `?`), or `None` when nobody can
    /// answer it.
    fn ask(&self, question: &str) -> Result<Option<bool>>;

    /// The answer this gives to any question without asking anyone, if it has one
    /// (`--yes`, nobody to ask): callers may then skip the work that only phrases the
    /// question.
    fn preset(&self) -> Option<Option<bool>> {
        None
    }
}

/// The user at the terminal: asks when stdin and stderr are terminals; Enter means yes.
pub struct Terminal;

impl Terminal {
    /// Whether there is a user at a terminal to ask.
    pub fn present() -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }
}

impl Ask for Terminal {
    fn ask(&self, question: &str) -> Result<Option<bool>> {
        if !Terminal::present() {
            return Ok(None);
        }
        let mut stderr = std::io::stderr().lock();
        write!(stderr, "{question} [Y/n] ")?;
        stderr.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        let answer = answer.trim().to_ascii_lowercase();
        Ok(Some(answer.is_empty() || answer == "y" || answer == "yes"))
    }

    fn preset(&self) -> Option<Option<bool>> {
        (!Terminal::present()).then_some(None)
    }
}

/// Every question answered in advance: `--yes` is `Assume(true)`.
pub struct Assume(pub bool);

impl Ask for Assume {
    fn ask(&self, _question: &str) -> Result<Option<bool>> {
        Ok(Some(self.0))
    }

    fn preset(&self) -> Option<Option<bool>> {
        Some(Some(self.0))
    }
}

/// Nobody to ask (a caller without a user: a manifest run from a service, a test).
pub struct Nobody;

impl Ask for Nobody {
    fn ask(&self, _question: &str) -> Result<Option<bool>> {
        Ok(None)
    }

    fn preset(&self) -> Option<Option<bool>> {
        Some(None)
    }
}

/// `--yes` or the terminal: what a command's `--yes` flag selects.
pub fn yes_or_terminal(yes: bool) -> &'static dyn Ask {
    if yes { &Assume(true) } else { &Terminal }
}
