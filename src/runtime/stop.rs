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

use anyhow::Result;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::state;
use crate::context::Context;
use crate::store::Store;

/// How long processes get to end after SIGTERM.
const GRACE: Duration = Duration::from_millis(1500);

/// How long a killed holder may take to exit (unmounting the overlay writes back its
/// dirty data).
const HOLDER_EXIT: Duration = Duration::from_secs(60);

/// The processes in the mount namespace identified by (device, inode), box's own
/// process aside.
pub fn members(ns: (u64, u64)) -> Vec<i32> {
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

/// End every process in the mount namespace `ns` (the holder among them). Returns how
/// many processes were signalled.
fn end_members(ns: (u64, u64)) -> usize {
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
    first.len()
}

/// Stop box `name`: its holder and every process in it, also when the holder died and
/// left processes behind. Returns whether anything was running. Holds the box's lock,
/// so no session starts the box again halfway through.
pub fn stop(ctx: &Context, name: &str) -> Result<bool> {
    let store = Store::at(&ctx.dirs.store);
    let _lock = store.box_lock(name)?;
    let live = state::find(ctx, &store, name);
    let Some(state) = live.clone().or_else(|| state::recorded(&store, name)) else {
        return Ok(false);
    };
    let ns = if live.is_some() {
        state::mount_namespace(state.pid).or(state.mnt_ns)
    } else {
        state.mnt_ns
    };
    let signalled = match ns {
        Some(ns) => end_members(ns),
        None if live.is_some() => {
            let _ = kill(Pid::from_raw(state.pid as i32), Signal::SIGKILL);
            1
        }
        None => 0,
    };
    // The last process of a mount namespace unmounts the box's overlay on its way out,
    // writing back what is dirty: wait for the holder to be gone, so that no new holder
    // mounts the same upper directory meanwhile.
    let deadline = Instant::now() + HOLDER_EXIT;
    while live.is_some() && state.is_alive() {
        if Instant::now() > deadline {
            return Err(crate::error::failure(
                format!(
                    "box `{name}` did not stop: its holder (pid {}) is still alive after {}s",
                    state.pid,
                    HOLDER_EXIT.as_secs()
                ),
                format!(
                    "try `box stop {name}` again; `kill -9 {}` ends it for sure",
                    state.pid
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    state::remove(ctx, &store, name, state.pid);
    Ok(live.is_some() || signalled > 0)
}
