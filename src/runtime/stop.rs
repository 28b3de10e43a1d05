//! Stopping a box: its holder and every process in it.
//!
//! The processes are those in the box's user namespace or nested below it (see
//! [`super::members`]), whatever mount namespace they moved to: each of them keeps the
//! box's overlay mounted. The user owns the box's user namespace, and the owner of a user
//! namespace holds every capability in it (user_namespaces(7)), so box can read the
//! namespace links of, and signal, processes running inside as subordinate ids (root
//! after sudo, daemons' own users) without entering the namespace. SIGTERM first, then
//! SIGKILL for what is left after a short grace period (an interactive bash ignores
//! SIGTERM).

use std::time::{Duration, Instant};

use anyhow::Result;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::members::{self, BoxNamespaces, NsId};
use super::state::{self, Status};
use crate::context::Context;
use crate::store::Store;

/// How long processes get to end after SIGTERM.
const GRACE: Duration = Duration::from_millis(1500);

/// How long a killed holder may take to exit (unmounting the overlay writes back its
/// dirty data).
const HOLDER_EXIT: Duration = Duration::from_secs(60);

/// The pids of the processes in the user namespace `ns` or below it.
fn pids(ns: NsId) -> Vec<i32> {
    members::in_namespace(&BoxNamespaces {
        user: ns,
        mnt: None,
        uts: None,
    })
    .into_iter()
    .map(|m| m.pid)
    .collect()
}

/// End every process in the user namespace `ns` or below it (the holder among them).
/// The namespace was proven to be the box's by the caller; while any of its processes
/// lives the kernel cannot give its number to another one. Returns how many processes
/// were signalled.
fn end_members(ns: NsId) -> usize {
    let first = pids(ns);
    for &pid in &first {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    let mut left = pids(ns);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = pids(ns);
    }
    for &pid in &left {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids(ns).is_empty() && Instant::now() < deadline {
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
    stop_locked(ctx, &store, name)
}

/// [`stop`] for a caller that holds the box's lock already (`box rm`).
pub fn stop_locked(ctx: &Context, store: &Store, name: &str) -> Result<bool> {
    let (state, user_ns, live) = match state::status(ctx, store, name) {
        Status::Stopped => {
            // A dead holder's record with nothing left: forget it.
            if let Some(old) = state::recorded(store, name) {
                state::remove(ctx, store, name, old.pid);
            }
            return Ok(false);
        }
        Status::Running(state) => {
            let ns = members::namespace(&state.pid.to_string(), "user").or(state.user_ns);
            (state, ns, true)
        }
        Status::Orphaned { record, .. } => {
            let ns = record.user_ns;
            (record, ns, false)
        }
    };
    let signalled = match user_ns {
        Some(ns) => end_members(ns),
        None if live => {
            let _ = kill(Pid::from_raw(state.pid as i32), Signal::SIGKILL);
            1
        }
        None => 0,
    };
    // The last process of a mount namespace unmounts the box's overlay on its way out,
    // writing back what is dirty: wait for the holder to be gone, so that no new holder
    // mounts the same upper directory meanwhile.
    let deadline = Instant::now() + HOLDER_EXIT;
    while live && state.is_alive() {
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
    state::remove(ctx, store, name, state.pid);
    Ok(live || signalled > 0)
}
