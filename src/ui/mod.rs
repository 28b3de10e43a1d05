//! The user interface below the commands: the one way to tell the user something
//! ([`report`]), to ask ([`prompt`]), and to show progress on long work ([`progress`]);
//! and [`gotemplate`], podman's `--format` templates, for the results of box's podman
//! window.
//!
//! Invariant: nothing else in the library writes to the terminal; `commands` print their
//! results, everything else reports through here (stderr, so stdout stays the results').

pub mod gotemplate;
pub mod progress;
pub mod prompt;
pub mod report;
