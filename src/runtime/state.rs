//! The runtime state of a running box, in two places:
//! - the session's copy, `$XDG_RUNTIME_DIR/box/<name>/state.json`, read by every
//!   `enter`/`run` (the join path reads no other file);
//! - the box's own record in the store, `containers/<name>/holder.json`, which every
//!   session can find whatever its `XDG_RUNTIME_DIR` (a desktop terminal, cron and `su`
//!   differ), so that a box never gets a second holder on the same overlay.
//!
//! Both are written by the process that started the holder, once the holder is ready,
//! while it holds the box's start lock (`Store::box_lock`); stop takes the same lock.
//!
//! Invariants:
//! - a state is trusted only while `/proc/<pid>/stat` shows the recorded start time, so
//!   a pid reused after a crash is never joined; the store record also carries the boot
//!   id, so a record from before a reboot is never trusted;
//! - the session's copy is trusted only while the runtime directory, box's directory in
//!   it and the box's own are real directories of the user that nobody else may write to,
//!   below directories nobody else may change (`Context::check_runtime_dir`): whoever can
//!   write there could put a state naming their own process, and be joined. The same
//!   holds for the fallback under /tmp (no `XDG_RUNTIME_DIR`), where others can create
//!   names.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::members::{Member, Start};
use crate::context::Context;
use crate::store::Store;

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
    /// (device, inode) of the holder's mount and user namespaces, to find the box's
    /// processes even after its holder died (see `members`).
    #[serde(default)]
    pub mnt_ns: Option<(u64, u64)>,
    #[serde(default)]
    pub user_ns: Option<(u64, u64)>,
    #[serde(default)]
    pub uts_ns: Option<(u64, u64)>,
    /// The id of this start of the box, also in its `/run/.containerenv`.
    #[serde(default)]
    pub instance: Option<String>,
    /// What the host integrations noted at the box's start for its joins (the runtime
    /// directory and X authority file the box was started with, ...): a join from a
    /// session with other ones makes its own usable (see `plan::integrations`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joins: super::plan::JoinNotes,
    /// The directory of the box's `box host-exec` socket (see `host_exec`), mounted in the
    /// box: a holder started for an orphaned box serves the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_exec_dir: Option<PathBuf>,
    /// The store the box belongs to: sessions without `XDG_RUNTIME_DIR` share one
    /// fallback runtime directory, where box `dev` of another store (another
    /// `XDG_DATA_HOME`) must not be taken for this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<PathBuf>,
    /// The kernel's boot id when the holder started (store record only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// Set while the box is being provisioned (see `provision`): a join that finds it
    /// set, from a provisioning that was killed, resumes the provisioning first. Read
    /// from the state the join reads anyway, so the warm path costs nothing more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisioning: bool,
    /// The `skip-workdir` setting when the box started: commands start in the box's home.
    /// Kept here so the join reads no settings file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_workdir: bool,
}

/// `<runtime dir>/<name>`.
pub fn box_dir(ctx: &Context, name: &str) -> PathBuf {
    ctx.dirs.runtime.join(name)
}

pub fn state_path(ctx: &Context, name: &str) -> PathBuf {
    box_dir(ctx, name).join("state.json")
}

impl State {
    /// Whether the recorded holder is still the process with that pid.
    pub fn is_alive(&self) -> bool {
        crate::sys::proc::start_time(self.pid) == Some(self.start_time)
    }
}

/// The state of box `name` if its holder is alive, from this session's copy (a stale or
/// untrusted one is `None`). The join path: a few `lstat`s, one file read, one /proc read.
pub fn running(ctx: &Context, name: &str) -> Option<State> {
    session_copy(ctx, name, runtime_dir_trusted(ctx))
}

/// Whether this session's runtime directory may be believed (see the module doc).
fn runtime_dir_trusted(ctx: &Context) -> bool {
    ctx.check_runtime_dir().is_ok()
}

/// [`running`], with the trust in the runtime directory decided once by the caller.
fn session_copy(ctx: &Context, name: &str, trusted: bool) -> Option<State> {
    if !trusted || crate::store::check_private_dir(&box_dir(ctx, name), ctx.uid).is_err() {
        return None;
    }
    read(&state_path(ctx, name))
        .filter(|s| s.store.as_deref() == Some(ctx.dirs.store.as_path()))
        .filter(State::is_alive)
}

/// Whether a box runs, as far as anything can tell.
#[derive(Debug)]
pub enum Status {
    /// Its holder is alive.
    Running(State),
    /// Its holder died (OOM, kill -9), but processes still run in it: the overlay is
    /// still mounted, the box is not stopped.
    Orphaned { record: State, members: Vec<Member> },
    /// Nothing runs in it. `stale`: a dead holder's record is still there (to forget,
    /// under the box's lock: see [`forget`]).
    Stopped { stale: bool },
}

impl Status {
    pub fn is_stopped(&self) -> bool {
        matches!(self, Status::Stopped { .. })
    }
}

/// The status of box `name` (see [`statuses`]).
pub fn status(ctx: &Context, store: &Store, name: &str) -> Status {
    statuses(ctx, store, &[name])
        .pop()
        .expect("one status per box")
}

/// The status of each of the boxes `names`, whichever session started them: running when
/// this session's copy or the box's record in the store (then copied for this session)
/// names a live holder, else the processes left in it (only those proven to be that
/// box's, see `members`). Each file is read once, and /proc is scanned once for all the
/// boxes whose holder died, so the cost per box is two small reads.
pub fn statuses(ctx: &Context, store: &Store, names: &[&str]) -> Vec<Status> {
    let trusted = runtime_dir_trusted(ctx);
    let mut boot: Option<Option<String>> = None;
    let mut out = Vec::with_capacity(names.len());
    // Boxes whose holder died in this boot: their processes are looked for together.
    let mut dead: Vec<(usize, State)> = Vec::new();
    for (index, name) in names.iter().enumerate() {
        if let Some(state) = session_copy(ctx, name, trusted) {
            out.push(Status::Running(state));
            continue;
        }
        let Some(record) = recorded(store, name) else {
            out.push(Status::Stopped { stale: false });
            continue;
        };
        if record.boot_id != *boot.get_or_insert_with(boot_id) {
            out.push(Status::Stopped { stale: true });
        } else if record.is_alive() {
            // Best effort: without the copy, joins take this slower path.
            let _ = write_session_copy(ctx, name, &record);
            out.push(Status::Running(record));
        } else {
            out.push(Status::Stopped { stale: true });
            dead.push((index, record));
        }
    }
    if !dead.is_empty() {
        let dirs: Vec<PathBuf> = dead
            .iter()
            .map(|(index, _)| store.container_dir(names[*index]))
            .collect();
        let boxes: Vec<Start<'_>> = dead
            .iter()
            .zip(&dirs)
            .map(|((_, record), dir)| Start {
                user_ns: record.user_ns,
                mnt_ns: record.mnt_ns,
                uts_ns: record.uts_ns,
                instance: record.instance.as_deref(),
                box_dir: dir,
            })
            .collect();
        let left = super::members::left_in_boxes(&boxes);
        for ((index, record), members) in dead.into_iter().zip(left) {
            if !members.is_empty() {
                out[index] = Status::Orphaned { record, members };
            }
        }
    }
    out
}

/// Those of `names` that are not stopped (holder alive, or processes left by a dead
/// one), whichever session started them.
pub fn running_among<'a>(ctx: &Context, store: &Store, names: &'a [String]) -> Vec<&'a str> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    refs.iter()
        .zip(statuses(ctx, store, &refs))
        .filter(|(_, status)| !status.is_stopped())
        .map(|(name, _)| *name)
        .collect()
}

/// The box's record in the store, alive or not.
pub fn recorded(store: &Store, name: &str) -> Option<State> {
    read(&store.holder_record(name))
}

/// Read a state file; a missing or unreadable one is `None` (the box is stopped).
pub fn read(path: &Path) -> Option<State> {
    let mut bytes = vec![0; 4096];
    let len = crate::sys::proc::read_into(path, &mut bytes).ok()?;
    serde_json::from_slice(&bytes[..len]).ok()
}

/// Record a newly started holder: in the store (with the boot id) and for this session.
pub fn write(ctx: &Context, store: &Store, name: &str, state: &State) -> Result<()> {
    let record = State {
        boot_id: boot_id(),
        ..state.clone()
    };
    let bytes = serde_json::to_vec(&record).context("serializing the box state")?;
    crate::store::write_atomic(&store.holder_record(name), &bytes)?;
    write_session_copy(ctx, name, state)
}

fn write_session_copy(ctx: &Context, name: &str, state: &State) -> Result<()> {
    let dir = private_box_dir(ctx, name)?;
    let state = State {
        store: Some(ctx.dirs.store.clone()),
        boot_id: None,
        ..state.clone()
    };
    let bytes = serde_json::to_vec(&state).context("serializing the box state")?;
    crate::store::write_atomic(&dir.join("state.json"), &bytes)
}

/// `<runtime dir>/<name>`, created if needed, once it and the directories above it are
/// checked private (see the module doc).
pub fn private_box_dir(ctx: &Context, name: &str) -> Result<PathBuf> {
    let dir = box_dir(ctx, name);
    ctx.runtime_dir()?;
    crate::store::ensure_private_dir(&dir)?;
    crate::store::check_private_dir(&dir, ctx.uid)?;
    Ok(dir)
}

/// Forget box `name`'s holder (after stop): this session's copy and the store's record,
/// and say when it stopped (the store's `stopped` marker, for listings: best effort).
/// The caller holds the box's lock, so no newer holder can have been recorded meanwhile.
/// An untrusted runtime directory is left alone: its state is never read anyway.
pub fn forget(ctx: &Context, store: &Store, name: &str) {
    if runtime_dir_trusted(ctx) {
        let _ = std::fs::remove_file(state_path(ctx, name));
    }
    if store.holder_record(name).exists() {
        let _ = std::fs::File::create(store.stopped_marker(name));
    }
    let _ = std::fs::remove_file(store.holder_record(name));
}

/// When box `name` last started (its holder's record was written then), while that
/// record is there: running, or its holder died without a stop.
pub fn started_at(store: &Store, name: &str) -> Option<u64> {
    mtime(&store.holder_record(name))
}

/// When box `name` last stopped, if box saw it stop.
pub fn stopped_at(store: &Store, name: &str) -> Option<u64> {
    mtime(&store.stopped_marker(name))
}

fn mtime(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Remove the whole runtime directory of box `name` (after rm), unless the runtime
/// directory is not to be trusted.
pub fn remove_dir(ctx: &Context, name: &str) {
    if runtime_dir_trusted(ctx) {
        let _ = std::fs::remove_dir_all(box_dir(ctx, name));
    }
}

/// The kernel's boot id (changes at every boot).
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}
