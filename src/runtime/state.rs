//! The runtime state of a running box: `$XDG_RUNTIME_DIR/box/<name>/state.json`.
//!
//! Written by the process that started the holder, once the holder is ready; read by
//! every `enter`/`run`. It carries everything a join needs (holder pid and start time,
//! login shell, home, environment additions) so that joining a running box reads no
//! other file. `lock` beside it serializes holder starts of one box.
//!
//! Invariant: a state is trusted only while `/proc/<pid>/stat` shows the recorded start
//! time, so a pid reused after a crash or a reboot is never joined.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::context::Context;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks since boot).
    pub start_time: u64,
    /// The user's login shell inside the box.
    pub shell: String,
    /// `$HOME` inside the box.
    pub home: String,
    /// Variables always set in the box (`CONTAINER_ID`, ...).
    pub env_forced: Vec<(String, String)>,
    /// The image's `Env`, for names the caller does not set.
    pub env_defaults: Vec<String>,
}

/// `<runtime dir>/<name>`.
pub fn box_dir(ctx: &Context, name: &str) -> PathBuf {
    ctx.dirs.runtime.join(name)
}

pub fn state_path(ctx: &Context, name: &str) -> PathBuf {
    box_dir(ctx, name).join("state.json")
}

/// The start time of process `pid`, if it exists and is not a zombie (a killed holder
/// stays a zombie until its parent, often init, reaps it; it holds no namespaces).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/PID/stat` line, `None` for a dead (zombie) process. The command
/// name (field 2) is in parentheses and may itself contain spaces and parentheses, so
/// count from the last `)`.
pub fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // After ")" come fields 3, 4, ...: field 3 is the state, field 22 the 20th.
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

impl State {
    /// Whether the recorded holder is still the process with that pid.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// The state of box `name` if its holder is alive (a stale state is `None`).
pub fn running(ctx: &Context, name: &str) -> Option<State> {
    read(&state_path(ctx, name)).filter(State::is_alive)
}

/// Read a state file; a missing or unreadable one is `None` (the box is stopped).
pub fn read(path: &Path) -> Option<State> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn write(ctx: &Context, name: &str, state: &State) -> Result<()> {
    let dir = box_dir(ctx, name);
    crate::store::ensure_private_dir(&dir)?;
    let bytes = serde_json::to_vec(state).context("serializing the box state")?;
    crate::store::write_atomic(&dir.join("state.json"), &bytes)
}

/// Forget the state of box `name` (after stop or rm).
pub fn remove(ctx: &Context, name: &str) {
    let _ = std::fs::remove_file(state_path(ctx, name));
}

/// Remove the whole runtime directory of box `name` (after rm).
pub fn remove_dir(ctx: &Context, name: &str) {
    let _ = std::fs::remove_dir_all(box_dir(ctx, name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_odd_command_names() {
        let line = b"1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615\n";
        assert_eq!(parse_start_time(line), Some(987654));
        assert_eq!(parse_start_time(b"garbage"), None);
        let zombie =
            b"1234 (box) Z 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 0 0\n";
        assert_eq!(parse_start_time(zombie), None);
    }

    #[test]
    fn our_own_start_time_is_readable() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(u32::MAX), None);
    }
}
