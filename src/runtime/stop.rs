//! Stopping a box: its holder and every process in its mount namespace.
//!
//! The processes are found by comparing `/proc/*/ns/mnt` with the holder's. The user
//! owns the box's user namespace, and the owner of a user namespace holds every
//! capability in it (user_namespaces(7)), so box can read the namespace links of, and
//! signal, processes running inside as subordinate ids (root after sudo, daemons' own
//! users) without entering the namespace. SIGTERM first, then SIGKILL for what is left
//! after a short grace period (an interactive bash ignores SIGTERM).

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::state::{self, State};
use crate::context::Context;

/// How long processes get to end after SIGTERM.
const GRACE: Duration = Duration::from_millis(1500);

/// The processes in the mount namespace identified by (device, inode).
fn members(ns: (u64, u64)) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/mnt")).is_ok_and(|m| (m.dev(), m.ino()) == ns)
        })
        .collect()
}

/// Stop the box whose holder is `state`. Returns how many processes were signalled.
pub fn stop_holder(name: &str, state: &State) -> Result<usize> {
    let ns = std::fs::metadata(format!("/proc/{}/ns/mnt", state.pid)).with_context(|| {
        format!(
            "reading the mount namespace of box `{name}` (holder pid {})",
            state.pid
        )
    })?;
    let ns = (ns.dev(), ns.ino());
    if !state.is_alive() {
        return Ok(0);
    }
    let first = members(ns);
    for &pid in &first {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    let mut left = members(ns);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = members(ns);
    }
    for &pid in &left {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !members(ns).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(first.len())
}

/// Stop box `name` if it runs. Returns whether it was running.
pub fn stop(ctx: &Context, name: &str) -> Result<bool> {
    let Some(state) = state::running(ctx, name) else {
        state::remove(ctx, name);
        return Ok(false);
    };
    stop_holder(name, &state)?;
    state::remove(ctx, name);
    Ok(true)
}
