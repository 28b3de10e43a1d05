//! The host integrations: what makes a box "as if native" (the home, the host's trees,
//! the session's sockets, X11, D-Bus, name resolution, time, devices, ...), one unit per
//! file, each behind the same small interface, [`Integration`]:
//!
//! - **at the box's start**, [`Integration::start`]: from the box ([`Start`]: its record,
//!   the user, the host's [`Facts`] gathered before) it adds to the plan ([`Parts`]):
//!   mounts, files written in the box, variables set in every command, and a note of its
//!   own for its joins. Pure: no file is read here, the facts hold what was looked at;
//! - **while the box runs**, the host files it watches: each file it adds with
//!   [`Parts::follow`] names the host files whose change makes the holder write it again
//!   ([`crate::runtime::follow`]);
//! - **at each join**, [`Integration::join`]: from its note and the caller's environment
//!   ([`Caller`]), on the host side before the join enters the box, what to do inside (a
//!   [`Step`]), if anything. The step runs after `setns` into the box's user and mount
//!   namespaces, with the capabilities that grants until execve, before the command's
//!   identity is taken (`--user`), and sets variables for the command. A unit whose
//!   session is the caller's does nothing: no system call, a comparison of strings.
//!   [`Integration::describe_join`] says what the join does, for `--dry-run`.
//!
//! Adding an integration is one file here and one line in [`ALL`]. Its place in [`ALL`]
//! is its place in the plan: mounts are made, files written and variables set in that
//! order (the host's trees before what is mounted in them; the CDI devices' binds, in the
//! box's own tree, and their variables after the host's).
//!
//! Invariant: a unit names only the plan's types ([`super`]) and layers below the runtime;
//! what it needs to know of the host comes from [`Facts`], never from a file it reads at
//! start. Only a join step touches the box, only for a caller of another session.

mod box_exe;
mod cdi;
mod containerenv;
mod home;
mod host_dirs;
mod host_exec;
mod hosts;
mod localtime;
mod resolv;
mod runtime_dir;
mod sudo_shim;
mod system_bus;
mod volumes;
mod x11;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::{BoxFile, Facts, FileOp, JoinNotes, Mount, MountKind};
use crate::context::HostUser;
use crate::store::containers::ContainerRecord;

pub use x11::XAUTHORITY_IN_BOX;

/// Every integration, in the order of the plan.
pub const ALL: &[&dyn Integration] = &[
    &containerenv::ContainerEnv,
    &host_dirs::HostDirs,
    &runtime_dir::RuntimeDir,
    &home::Home,
    &volumes::Volumes,
    &box_exe::BoxExe,
    &resolv::Resolv,
    &hosts::Hosts,
    &localtime::Localtime,
    &system_bus::SystemBus,
    &x11::X11,
    &sudo_shim::SudoShim,
    &cdi::Devices,
    &host_exec::HostExec,
];

/// One host integration (see the module doc).
pub trait Integration {
    /// Its name: what its join note is filed under, in the box's runtime state.
    fn name(&self) -> &'static str;

    /// At the box's start: what it adds to the plan.
    fn start(&self, the_box: &Start<'_>, plan: &mut Parts);

    /// At a join, on the host side: what to do in the box for this `caller`, given the
    /// `note` the unit left at start (`Null` when it left none). None by default.
    fn join(&self, note: &Value, caller: &Caller<'_>) -> Option<Step> {
        let _ = (note, caller);
        None
    }

    /// What [`Integration::join`] does, for `--dry-run`; None when nothing.
    fn describe_join(&self, note: &Value) -> Option<String> {
        let _ = note;
        None
    }
}

/// What a join does in the box for a unit (see [`Integration::join`]): runs in the box's
/// user and mount namespaces; pushes the variables it sets for the command (they win
/// over the box's own).
pub type Step = Box<dyn FnOnce(&mut Vec<(String, String)>)>;

/// The box an integration starts for.
pub struct Start<'a> {
    pub record: &'a ContainerRecord,
    pub user: &'a HostUser,
    pub facts: &'a Facts,
    /// Whether uid 0 exists in the box (subordinate ids, or the user is root).
    pub has_root: bool,
    /// The id of this start (see [`super::Plan::instance`]).
    pub instance: &'a str,
    /// The box's hostname (its own, or the host's).
    pub hostname: &'a str,
    /// The home in the box (its own, or the user's).
    pub home: &'a Path,
    /// The host end's directory of `box host-exec`, when the box has one.
    pub host_exec_dir: Option<&'a Path>,
}

impl Start<'_> {
    /// Whether the box has a hostname of its own (not the host's).
    pub fn own_hostname(&self) -> bool {
        self.hostname != self.facts.host.hostname
    }
}

/// What the integrations add to a plan, in their order.
#[derive(Debug, Default)]
pub struct Parts {
    pub mounts: Vec<Mount>,
    pub files: Vec<BoxFile>,
    /// Variables set in every command of the box (a later one wins).
    pub env: Vec<(String, String)>,
    pub joins: JoinNotes,
    /// The zone the first-start user setup records.
    pub timezone: Option<String>,
    /// See [`super::Plan::device_hooks`], [`super::Plan::device_mount_points`],
    /// [`super::Plan::host_exec_dir`].
    pub device_hooks: Vec<crate::host::cdi::DeviceHook>,
    pub device_mount_points: Vec<PathBuf>,
    pub host_exec_dir: Option<PathBuf>,
    /// The unit being started, whose note [`Parts::note`] files.
    unit: &'static str,
}

impl Parts {
    pub fn mount(&mut self, mount: Mount) {
        self.mounts.push(mount);
    }

    /// A file written once, at the start.
    pub fn write(&mut self, op: FileOp) {
        self.files.push(BoxFile { op, watch: vec![] });
    }

    /// A file written at the start and again whenever one of the host files `watch`
    /// (host paths) changes.
    pub fn follow(&mut self, op: FileOp, watch: &[&Path]) {
        let watch = watch.iter().map(|p| p.to_path_buf()).collect();
        self.files.push(BoxFile { op, watch });
    }

    /// Set `name` in every command of the box.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.env.push((name.to_owned(), value.into()));
    }

    /// The unit's note for its joins (see [`Integration::join`]).
    pub fn note(&mut self, note: impl Serialize) {
        // Plain data of the unit's own: it always serializes.
        let value = serde_json::to_value(note).unwrap_or(Value::Null);
        self.joins.push((self.unit.to_owned(), value));
    }

    /// Whether the host path `path` is seen at the same path in the box through a
    /// directory bound so far (no mount, no link of its own needed).
    pub fn shows(&self, path: &Path) -> bool {
        self.mounts.iter().any(|m| {
            matches!(m.kind, MountKind::BindDir { .. })
                && m.source == m.target
                && path.starts_with(&m.source)
        })
    }
}

/// What every integration adds to the plan of `the_box`, in the order of [`ALL`].
pub fn compose(the_box: &Start<'_>) -> Parts {
    let mut parts = Parts::default();
    for unit in ALL {
        parts.unit = unit.name();
        unit.start(the_box, &mut parts);
    }
    parts
}

/// The joining process's environment, as the integrations read it.
pub struct Caller<'a> {
    var: &'a dyn Fn(&str) -> Option<OsString>,
}

impl<'a> Caller<'a> {
    /// A caller whose variables `var` gives.
    pub fn new(var: &'a dyn Fn(&str) -> Option<OsString>) -> Caller<'a> {
        Caller { var }
    }

    /// The variable `name` when it is an absolute path (anything else means nothing to
    /// a box, whose working directory is not the caller's).
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        (self.var)(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    }
}

/// At a join, on the host side: the steps of the units with something to do for
/// `caller`, given their `notes` from the box's start. Empty (and no system call made)
/// when the caller's session is the one the box started with.
pub fn join_steps(notes: &JoinNotes, caller: &Caller<'_>) -> Vec<Step> {
    ALL.iter()
        .filter_map(|unit| unit.join(note_of(notes, unit.name()), caller))
        .collect()
}

/// What the joins of a box with `notes` do, one line per unit, for `--dry-run`.
pub fn describe_joins(notes: &JoinNotes) -> Vec<String> {
    ALL.iter()
        .filter_map(|unit| unit.describe_join(note_of(notes, unit.name())))
        .collect()
}

fn note_of<'a>(notes: &'a JoinNotes, unit: &str) -> &'a Value {
    static NONE: Value = Value::Null;
    notes
        .iter()
        .find(|(name, _)| name == unit)
        .map_or(&NONE, |(_, note)| note)
}

/// Where the host's `path` is in the box: below `/run/host`.
pub fn on_host(path: &Path) -> PathBuf {
    Path::new(crate::host::fs::HOST_ROOT_IN_BOX).join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_integration_files_its_note_under_a_name_of_its_own() {
        let mut names: Vec<&str> = ALL.iter().map(|unit| unit.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "{names:?}");
    }

    #[test]
    fn a_join_from_the_starting_session_has_no_step_and_another_session_has_its_own() {
        let notes: JoinNotes = vec![
            ("runtime-dir".into(), Value::from("/run/user/1000")),
            (
                "x11".into(),
                serde_json::json!({"started": "/run/user/1000/xauth_x", "wildcard": false}),
            ),
        ];
        let same = |name: &str| match name {
            "XDG_RUNTIME_DIR" => Some("/run/user/1000".into()),
            "XAUTHORITY" => Some("/run/user/1000/xauth_x".into()),
            _ => None,
        };
        assert!(join_steps(&notes, &Caller::new(&same)).is_empty());
        assert!(join_steps(&notes, &Caller::new(&|_| None)).is_empty());
        let other = |name: &str| match name {
            "XDG_RUNTIME_DIR" => Some("/run/user/1001".into()),
            "XAUTHORITY" => Some("/home/alice/.Xauthority".into()),
            _ => None,
        };
        assert_eq!(join_steps(&notes, &Caller::new(&other)).len(), 2);
        let text = describe_joins(&notes).join("\n");
        assert!(
            text.contains("XDG_RUNTIME_DIR other than /run/user/1000"),
            "{text}"
        );
        assert!(
            text.contains("XAUTHORITY other than /run/user/1000/xauth_x"),
            "{text}"
        );
    }
}
