//! How box reports failure: one message, one hint, one exit code.
//!
//! Library code returns `anyhow::Error` carrying the path or reference that failed in its
//! message chain. Two kinds of marker can ride along in that chain:
//! - [`Hint`]: what the user can do about it, printed on its own line after the message;
//! - [`Exit`]: an exit status other than box's own 125 (126/127 for a command that cannot
//!   be executed or found inside a box, as podman and toolbox do; [`EXIT_USAGE`] for a
//!   usage error clap cannot see, such as an invalid box name).
//!
//! Both markers display as the empty string, so printing the chain shows only messages.
//! [`report`] is the one place that prints an error; `main.rs` turns it into an exit code.

use std::fmt;
use std::io::Write;

/// Exit status of `box doctor` when something on the host blocks box (distinct from 125:
/// box itself worked, and found the host lacking).
pub const EXIT_BLOCKED: u8 = 1;
/// Exit status for a usage error: clap's own, and box's for arguments clap cannot check
/// (an invalid box name), through [`Exit`].
pub const EXIT_USAGE: u8 = 2;
/// Exit status for a failure of box itself (podman's and toolbox's convention).
pub const EXIT_BOX_FAILURE: u8 = 125;
/// Exit status when the command exists in the box but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: u8 = 126;
/// Exit status when the command is not found in the box.
pub const EXIT_NOT_FOUND: u8 = 127;

/// What the user can do about an error. Attach with [`HintExt::hint`].
#[derive(Debug, thiserror::Error)]
#[error("")]
pub struct Hint(pub String);

/// An exit status to use instead of [`EXIT_BOX_FAILURE`].
#[derive(Debug, thiserror::Error)]
#[error("")]
pub struct Exit(pub u8);

/// Attach a [`Hint`] to any error.
pub trait HintExt<T> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
    fn with_hint<F: FnOnce() -> String>(self, hint: F) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> HintExt<T> for Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| e.into().context(Hint(hint.into())))
    }
    fn with_hint<F: FnOnce() -> String>(self, hint: F) -> anyhow::Result<T> {
        self.map_err(|e| e.into().context(Hint(hint())))
    }
}

/// Build an error from a message and a hint in one go.
pub fn failure(message: impl fmt::Display, hint: impl Into<String>) -> anyhow::Error {
    anyhow::anyhow!("{message}").context(Hint(hint.into()))
}

/// The message of an error chain without the markers, joined with ": ".
pub fn message(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // Skip markers and causes already spelled out by the layer above (io errors
        // wrapped twice, for instance).
        if text.is_empty() || parts.last().is_some_and(|last| last.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// Whether an error chain is a full disk or an exhausted quota (ENOSPC, EDQUOT), which
/// deserves its own message rather than the errno of whichever write hit it.
pub fn is_out_of_space(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let code = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .or_else(|| {
                cause
                    .downcast_ref::<rustix::io::Errno>()
                    .map(|e| e.raw_os_error())
            });
        matches!(code, Some(libc::ENOSPC) | Some(libc::EDQUOT))
    })
}

/// The hint for a full disk in the store.
pub const FREE_SPACE_HINT: &str =
    "free some space (`box rmi` unused images, `box rm` old boxes) and pull again";

/// The exit status an error maps to.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<Exit>()
        .map_or(EXIT_BOX_FAILURE, |exit| exit.0)
}

/// Print an error once, on stderr, with its hint.
pub fn report(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "box: error: {}", message(err));
    if let Some(Hint(hint)) = err.downcast_ref::<Hint>() {
        let _ = writeln!(stderr, "hint: {hint}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn hints_and_exit_codes_ride_in_the_chain_but_do_not_print() {
        let err: anyhow::Result<()> = Err(std::io::Error::from_raw_os_error(libc::ENOENT))
            .context("reading /x")
            .hint("create it")
            .map_err(|e| e.context(Exit(127)))
            .context("box run demo");
        let err = err.unwrap_err();
        assert_eq!(
            message(&err),
            "box run demo: reading /x: No such file or directory (os error 2)"
        );
        assert_eq!(err.downcast_ref::<Hint>().unwrap().0, "create it");
        assert_eq!(exit_code(&err), 127);
    }

    #[test]
    fn plain_errors_are_box_failures() {
        assert_eq!(exit_code(&anyhow::anyhow!("x")), EXIT_BOX_FAILURE);
    }
}
