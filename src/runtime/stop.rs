//! Stopping boxes: their holders and every process in them, several boxes at once.
//!
//! The processes are those in the box's user namespace or nested below it (see
//! [`super::members`]), whatever mount namespace they moved to: each of them keeps the
//! box's overlay mounted. The user owns the box's user namespace, and the owner of a user
//! namespace holds every capability in it (user_namespaces(7)), so box can read the
//! namespace links of, and signal, processes running inside as subordinate ids (root
//! after sudo, daemons' own users) without entering the namespace.
//!
//! How, and why:
//! - every process gets SIGTERM, then SIGHUP (what a closing terminal sends: an
//!   interactive bash ignores SIGTERM but ends on SIGHUP), then SIGKILL at the end of the
//!   grace period if it is still there. The holder gets SIGTERM first and ends on it (the
//!   default action; its overlay is unmounted by the kernel as its mount namespace goes);
//! - box waits for exits, not in fixed sleeps: each process is held by a pidfd
//!   (pidfd_open(2)), which signals without the risk of a reused pid and becomes readable
//!   when the process exits (a zombie nobody reaped yet counts as gone: its mounts and
//!   files are released before it becomes one, see exit(2)); all boxes' processes are
//!   waited for together with one poll(2), so boxes stop together, not in turn (what
//!   remains in turn is the kernel's teardown of each box: see `benches/verbs.sh`);
//! - processes that join a box while it stops (a `box run` that had already joined) are
//!   found by a second look and killed;
//! - once signalled, holders take a while to go (the kernel tears down their mount
//!   namespaces and syncs each overlay's upper filesystem); box does its own work in
//!   that time rather than after it: it ends the other processes, then removes the
//!   boxes' records and syncs the store's filesystem once (so the overlays' syncs, which
//!   run in turn, find little to write);
//! - the box's lock is held until its holder has exited: the last process of a mount
//!   namespace unmounts the box's overlay, and no new holder may mount the same upper
//!   directory meanwhile (a session that finds the records gone waits for the lock to
//!   start the box). A holder that does not exit gets its records back.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use anyhow::Result;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use super::members::{self, NsId};
use super::state::{self, State, Status};
use crate::context::Context;
use crate::store::Store;

/// How long processes get to end after SIGTERM and SIGHUP unless the user says
/// (`box stop --time`).
pub const DEFAULT_GRACE: Duration = Duration::from_millis(1500);

/// How long SIGKILLed processes may take to be gone (unmounting writes back dirty data).
const AFTER_KILL: Duration = Duration::from_secs(2);

/// How long a holder may take to exit once every process of its box was killed.
const HOLDER_EXIT: Duration = Duration::from_secs(60);

/// Stop box `name` (see [`stop_many`]); returns whether anything was running.
pub fn stop(ctx: &Context, name: &str, grace: Duration) -> Result<bool> {
    let store = Store::at(&ctx.dirs.store);
    let _lock = store.box_lock(name)?;
    stop_locked(ctx, &store, &[name], grace)
        .pop()
        .expect("one result per box")
}

/// Stop the boxes `names` together, holding each box's lock for the whole stop so no
/// session starts one again halfway through. One result per box, in order: whether
/// anything was running in it, or why it was not stopped (a box whose lock cannot be
/// taken is left alone, with that error; the others are stopped).
pub fn stop_many(ctx: &Context, names: &[&str], grace: Duration) -> Vec<Result<bool>> {
    let store = Store::at(&ctx.dirs.store);
    // Locks in name order, so two `stop --all` cannot each wait for the other's.
    let mut order: Vec<&str> = names.to_vec();
    order.sort_unstable();
    order.dedup();
    let mut locks = Vec::new();
    let mut unlocked: Vec<(&str, anyhow::Error)> = Vec::new();
    for name in order {
        match store.box_lock(name) {
            Ok(lock) => locks.push(lock),
            Err(err) => unlocked.push((name, err)),
        }
    }
    let locked: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !unlocked.iter().any(|(n, _)| n == name))
        .collect();
    let mut stopped = stop_locked(ctx, &store, &locked, grace).into_iter();
    names
        .iter()
        .map(|name| match unlocked.iter().position(|(n, _)| n == name) {
            Some(at) => {
                // A name given twice gets the error itself once, then its words.
                let (_, err) = &mut unlocked[at];
                let words = anyhow::anyhow!("{err:#}");
                Err(std::mem::replace(err, words))
            }
            None => stopped.next().expect("one result per locked box"),
        })
        .collect()
}

/// One box to stop.
struct Target {
    state: State,
    /// Whether its holder is alive.
    live: bool,
    user_ns: Option<NsId>,
    /// The holder's pidfd, to await its exit.
    holder: Option<OwnedFd>,
    signalled: usize,
}

/// [`stop_many`] for a caller that holds the boxes' locks already (`box rm`).
pub fn stop_locked(
    ctx: &Context,
    store: &Store,
    names: &[&str],
    grace: Duration,
) -> Vec<Result<bool>> {
    let mut targets: Vec<Option<Target>> = names
        .iter()
        .zip(state::statuses(ctx, store, names))
        .map(|(name, status)| match status {
            Status::Stopped { stale } => {
                // A dead holder's record with nothing left: forget it.
                if stale {
                    state::forget(ctx, store, name);
                }
                None
            }
            Status::Running(state) => {
                let user_ns = members::namespace(&state.pid.to_string(), "user").or(state.user_ns);
                let holder = open_pid(state.pid as i32);
                Some(Target {
                    state,
                    live: true,
                    user_ns,
                    holder,
                    signalled: 0,
                })
            }
            Status::Orphaned { record, .. } => Some(Target {
                user_ns: record.user_ns,
                state: record,
                live: false,
                holder: None,
                signalled: 0,
            }),
        })
        .collect();

    // A live holder whose namespace cannot be read (it is exiting): kill it alone.
    for target in targets.iter_mut().flatten() {
        if target.user_ns.is_none()
            && let Some(holder) = &target.holder
        {
            let _ = pidfd_send_signal(holder, Signal::KILL);
            target.signalled += 1;
        }
    }

    let (index_of, namespaces): (Vec<usize>, Vec<NsId>) = targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((i, t.as_ref()?.user_ns?)))
        .unzip();
    // The holders first: each ends on SIGTERM, and the kernel then tears its box down
    // (unmounting, then syncing, its overlay once the last process of its mount namespace
    // is gone), which takes a while; box does its own work meanwhile. They are held by
    // the pidfds opened with their status, so the scans below leave them out.
    let holders: Vec<i32> = targets
        .iter()
        .flatten()
        .filter(|t| t.user_ns.is_some() && t.holder.is_some())
        .map(|t| t.state.pid as i32)
        .collect();
    for target in targets.iter_mut().flatten() {
        if target.user_ns.is_some()
            && let Some(holder) = &target.holder
        {
            let _ = pidfd_send_signal(holder, Signal::TERM);
            target.signalled += 1;
        }
    }
    let mut processes = open_members(&namespaces, &index_of, &holders);
    for (box_index, pidfd) in &processes {
        if let Some(target) = &mut targets[*box_index] {
            target.signalled += 1;
        }
        // SIGTERM first, so that a program that handles both ends as asked to; SIGHUP for
        // what ignores SIGTERM (an interactive shell), as when its terminal closes.
        let _ = pidfd_send_signal(pidfd, Signal::TERM);
        let _ = pidfd_send_signal(pidfd, Signal::HUP);
    }
    wait_for_exits(&mut processes, grace);
    kill_all(&mut processes);
    // Who joined meanwhile (a `box run` already past its setns): kill them too, until
    // none is left.
    for _ in 0..3 {
        let mut late = open_members(&namespaces, &index_of, &holders);
        if late.is_empty() {
            break;
        }
        kill_all(&mut late);
    }

    // Nothing of the boxes runs any more but their holders, which are going: their
    // records go now, while the kernel tears the boxes down. A session that looks now
    // finds a box stopped and, to start it, waits for the box's lock, which this stop
    // holds until the holder is gone; a holder that outlives the stop gets its records
    // back (below). (Not before the processes are gone: a stop interrupted then would
    // leave processes, which keep the overlay mounted, in a box that has no record.)
    for (name, target) in names.iter().zip(&targets) {
        if target.is_some() {
            state::forget(ctx, store, name);
        }
    }
    // Then the boxes' data is written back once: each overlay's unmount syncs its upper
    // filesystem (overlayfs' sync_fs), and twenty of them in a row would each wait for
    // the writeback of all the others; after this one, they find little to write.
    if targets
        .iter()
        .flatten()
        .any(|t| t.live || t.user_ns.is_some())
        && let Ok(dir) = std::fs::File::open(store.containers_dir())
    {
        let _ = rustix::fs::syncfs(&dir);
    }
    // A holder not on its way out yet (not run since its SIGTERM, or stuck) gets SIGKILL,
    // which ends it the same way; to one that is exiting it changes nothing.
    for target in targets.iter().flatten() {
        if let Some(holder) = &target.holder
            && !exited_within(holder, Duration::ZERO)
        {
            let _ = pidfd_send_signal(holder, Signal::KILL);
        }
    }

    names
        .iter()
        .zip(targets)
        .map(|(name, target)| {
            let Some(target) = target else {
                return Ok(false);
            };
            if target.live
                && let Some(holder) = &target.holder
                && !exited_within(holder, HOLDER_EXIT)
            {
                // Still holding the overlay: the next start must find it, not mount a
                // second overlay on the same upper directory.
                let _ = state::write(ctx, store, name, &target.state);
                return Err(crate::error::failure(
                    format!(
                        "box `{name}` did not stop: its holder (pid {}) is still alive after {}s",
                        target.state.pid,
                        HOLDER_EXIT.as_secs()
                    ),
                    format!(
                        "try `box stop {name}` again; `kill -9 {}` ends it for sure",
                        target.state.pid
                    ),
                ));
            }
            Ok(target.live || target.signalled > 0)
        })
        .collect()
}

/// A pidfd for `pid`, or `None` when it is gone.
fn open_pid(pid: i32) -> Option<OwnedFd> {
    pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()
}

/// The processes in (or below) `namespaces` but `holders`, each with the index of its box
/// (through `index_of`) and held by a pidfd. The pid is checked again after pidfd_open:
/// between the scan and the open it may have ended and been reused by a process outside.
fn open_members(namespaces: &[NsId], index_of: &[usize], holders: &[i32]) -> Vec<(usize, OwnedFd)> {
    if namespaces.is_empty() {
        return Vec::new();
    }
    members::in_user_namespaces(namespaces)
        .into_iter()
        .filter(|(_, pid)| !holders.contains(pid))
        .filter_map(|(ns_index, pid)| {
            let pidfd = open_pid(pid)?;
            let still = members::in_user_namespaces_pid(pid, namespaces) == Some(ns_index);
            (still && !exited_within(&pidfd, Duration::ZERO)).then(|| (index_of[ns_index], pidfd))
        })
        .collect()
}

/// SIGKILL every process still there and wait (a bounded time) for them to be gone.
fn kill_all(processes: &mut Vec<(usize, OwnedFd)>) {
    processes.retain(|(_, pidfd)| !exited_within(pidfd, Duration::ZERO));
    for (_, pidfd) in processes.iter() {
        let _ = pidfd_send_signal(pidfd, Signal::KILL);
    }
    wait_for_exits(processes, AFTER_KILL);
}

/// Wait until every process in `processes` has exited or `limit` has passed; the ones
/// that exited are dropped from the list.
fn wait_for_exits(processes: &mut Vec<(usize, OwnedFd)>, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        processes.retain(|(_, pidfd)| !exited_within(pidfd, Duration::ZERO));
        let now = Instant::now();
        if processes.is_empty() || now >= deadline {
            return;
        }
        let timeout = timespec(deadline - now);
        let mut fds: Vec<PollFd> = processes
            .iter()
            .map(|(_, pidfd)| PollFd::new(pidfd, PollFlags::IN))
            .collect();
        // EINTR and the like: loop, the deadline bounds it.
        let _ = poll(&mut fds, Some(&timeout));
    }
}

/// Whether the process of `pidfd` exits within `limit` (zero: has exited).
fn exited_within(pidfd: &OwnedFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        let left = deadline.saturating_duration_since(Instant::now());
        match poll(&mut fds, Some(&timespec(left))) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
            Err(_) => return false,
        }
    }
}

fn timespec(duration: Duration) -> Timespec {
    Timespec {
        tv_sec: duration.as_secs() as _,
        tv_nsec: duration.subsec_nanos() as _,
    }
}
