//! The one protocol of every parent/child exchange between box processes: the
//! user-namespace handshake ([`crate::sys::userns`]), the holder's start and adoption
//! ([`crate::runtime::holder`]) and the store helper ([`crate::image::helper`]).
//!
//! Framing: one serde message as one line of JSON over a pipe (the child's stdin and
//! stdout). JSON escapes newlines inside strings, so a line is always a whole message,
//! and either side can read with a plain buffered line reader. Each exchange defines its
//! own message types beside the code that speaks it; this module owns only the framing
//! and [`Failure`], the one way an error crosses a process boundary: its message and its
//! hint as separate fields, turned back into an `anyhow` error carrying a
//! [`crate::error::Hint`] on the receiving side, so the user reads the child's message and
//! hint exactly once, as if the parent had failed itself.
//!
//! Invariants:
//! - a writer flushes after every message: the other side blocks on reading it;
//! - a child reads its stdin through `std::io::stdin().lock()` (std's one shared
//!   buffer), never through a buffer of its own, so a later read (the holder waiting for
//!   [`crate::runtime::holder`]'s `committed`) sees what the first read buffered;
//! - this is a leaf: it names nothing of box but [`crate::error`].

use std::io::{BufRead, Write};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::Hint;

/// An error sent to the other side: what went wrong and what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The whole message chain ([`crate::error::message`]).
    pub message: String,
    /// The error's [`Hint`], if it carries one.
    #[serde(default)]
    pub hint: Option<String>,
}

impl Failure {
    /// The failure that tells the other side about `err`.
    pub fn from_error(err: &anyhow::Error) -> Failure {
        Failure {
            message: crate::error::message(err),
            hint: err.downcast_ref::<Hint>().map(|h| h.0.clone()),
        }
    }

    /// The error this failure stands for on the receiving side: the message, with the
    /// hint riding along as a [`Hint`] (an empty hint is no hint).
    pub fn into_error(self) -> anyhow::Error {
        let err = anyhow::anyhow!("{}", self.message);
        match self.hint.filter(|h| !h.is_empty()) {
            Some(hint) => err.context(Hint(hint)),
            None => err,
        }
    }
}

/// Write `message` as one line and flush it.
pub fn send<T: Serialize>(output: &mut impl Write, message: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    output.write_all(&line)?;
    output.flush()
}

/// Read one line (without its newline); `None` at end of file (the other side closed
/// its end or ended).
pub fn read_line(input: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    if line.ends_with('\n') {
        line.pop();
    }
    Ok(Some(line))
}

/// Decode one line read with [`read_line`]; `peer` names the sender in the error.
pub fn decode<T: DeserializeOwned>(line: &str, peer: &str) -> Result<T> {
    serde_json::from_str(line).with_context(|| format!("{peer} sent an invalid message: {line:?}"))
}

/// Read and decode one message; `None` at end of file. `peer` names the sender in
/// errors.
pub fn recv<T: DeserializeOwned>(input: &mut impl BufRead, peer: &str) -> Result<Option<T>> {
    match read_line(input).with_context(|| format!("reading from {peer}"))? {
        Some(line) => decode(&line, peer).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HintExt;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Message {
        Note(String),
        Done { code: u32 },
        Failed(Failure),
    }

    #[test]
    fn messages_travel_one_per_line_even_with_newlines_inside() {
        let mut pipe = Vec::new();
        send(&mut pipe, &Message::Note("two\nlines\tand a tab".into())).unwrap();
        send(&mut pipe, &Message::Done { code: 3 }).unwrap();
        assert_eq!(pipe.iter().filter(|&&b| b == b'\n').count(), 2);
        let mut input = std::io::Cursor::new(pipe);
        assert_eq!(
            recv::<Message>(&mut input, "the child").unwrap(),
            Some(Message::Note("two\nlines\tand a tab".into()))
        );
        assert_eq!(
            recv::<Message>(&mut input, "the child").unwrap(),
            Some(Message::Done { code: 3 })
        );
        assert_eq!(recv::<Message>(&mut input, "the child").unwrap(), None);
    }

    #[test]
    fn garbage_is_named_with_its_sender() {
        let mut input = std::io::Cursor::new(b"nonsense\n".to_vec());
        let err = recv::<Message>(&mut input, "box __holder").unwrap_err();
        assert!(
            crate::error::message(&err)
                .starts_with("box __holder sent an invalid message: \"nonsense\""),
            "{err:#}"
        );
    }

    #[test]
    fn a_failure_keeps_its_message_and_hint_apart_across_the_pipe() {
        let original: Result<()> = Err(anyhow::anyhow!("no space"))
            .context("writing /x")
            .hint("free some space");
        let failure = Failure::from_error(&original.unwrap_err());
        let mut pipe = Vec::new();
        send(&mut pipe, &Message::Failed(failure)).unwrap();
        let Some(Message::Failed(back)) = recv(&mut std::io::Cursor::new(pipe), "x").unwrap()
        else {
            panic!("not a failure");
        };
        let err = back.into_error();
        assert_eq!(crate::error::message(&err), "writing /x: no space");
        assert_eq!(err.downcast_ref::<Hint>().unwrap().0, "free some space");

        let plain = Failure::from_error(&anyhow::anyhow!("plain")).into_error();
        assert!(plain.downcast_ref::<Hint>().is_none());
        let empty = Failure {
            message: "m".into(),
            hint: Some(String::new()),
        };
        assert!(empty.into_error().downcast_ref::<Hint>().is_none());
    }
}
