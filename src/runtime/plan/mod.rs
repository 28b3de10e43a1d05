//! The plan of a box's namespaces and mounts: pure data, built from the box record, the
//! host user, the id mapping and the host's [`Facts`], which are gathered once, before
//! ([`Facts::gather`], the one part of this module that looks at the host). [`build`]
//! reads nothing: it lays out the box's root and composes the host integrations
//! ([`integrations`], one file each). The holder carries the plan out
//! ([`super::holder`]); `--dry-run` prints it ([`show`]).
//!
//! Order of the plan (and why):
//! 1. a new user namespace with the id maps, then mount + UTS namespaces; `/` is made
//!    rslave recursively so nothing mounted here leaks back to the host while host
//!    mounts (a USB stick under /run/host/media) still appear;
//! 2. the root: overlayfs (`userxattr`) with the layers as lower dirs, top first, given
//!    as the short links of the box's `lowers/` directory, relative to it, so that as many
//!    layers as overlayfs stacks fit in one page of mount options (see [`super::holder`];
//!    with subordinate ids the holder's outer namespace names the layers by [`Plan::layer_dirs`]
//!    instead, beneath the guarded `layers/`: the links are the user's, a box can change them);
//!    or, with copy storage, the flattened copy bound onto itself;
//! 3. the host-integration mounts ([`Mount`]) with targets inside the new root, in the
//!    order of [`integrations::ALL`]; the host root is cloned before the box root is
//!    mounted, so `/run/host` does not contain the box itself;
//! 4. `pivot_root(".", ".")` and a lazy unmount of the old root;
//! 5. the files ([`BoxFile`]) written inside the box: `/run/.containerenv`, and the ones
//!    that follow the host's through `/run/host` (`/etc/hosts`, `/etc/resolv.conf`,
//!    `/etc/localtime`, the system bus socket, an X authority file outside the shared
//!    directories, the wildcard copy of the X authority file for a box of another
//!    hostname or home), which the holder applies again whenever a host file they watch
//!    changes (see [`super::follow`]);
//! 6. first-start user setup (passwd, group, shadow, sudoers; see [`super::setup`]).
//!
//! What the integrations do at each join (another session's runtime directory, its X
//! cookie) is carried in [`Plan::joins`] to the box's runtime state, and done by
//! [`super::join`] through [`integrations::join_steps`].

pub mod facts;
pub mod integrations;
mod show;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::context::HostUser;
use crate::store::Store;
use crate::store::containers::{ContainerRecord, StorageKind};
use crate::sys::idmap::{IdMapping, IdRange};
pub use facts::Facts;

/// Where the box's root comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Storage {
    /// overlayfs over the shared layers.
    Overlay {
        /// The box's `lowers/` directory of short links to its layers
        /// (`Store::link_lowers`): the holder chdirs there so lower dirs are short
        /// relative names. Not used where the store's layers are guarded (subordinate
        /// ids): a box can change these links (see `holder/outer.rs`).
        lowers_dir: PathBuf,
        /// The links' names, top layer first (overlay's order).
        lowers: Vec<String>,
        upper: PathBuf,
        work: PathBuf,
    },
    /// A flattened copy of the layers in the mount point itself.
    Copy,
}

/// What kind of mount a [`Mount`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A bind mount of a directory (recursive: with what is mounted below it).
    BindDir { recursive: bool },
    /// A bind mount of one file or socket.
    BindFile,
    /// A fresh tmpfs with these options.
    Tmpfs { options: String },
    /// The host's whole tree, cloned before the box root was mounted.
    HostRoot,
}

/// One mount inside the box. `target` is a path inside the box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub kind: MountKind,
    pub read_only: bool,
    /// What to do when this mount fails, when its purpose calls for a hint of its own
    /// (a volume, the box executable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Flags besides read-only (`nosuid`, `nodev`, `noexec`), on the mount and every mount
    /// below it: what a CDI spec asks for, nosuid on what the box shares with the host.
    #[serde(default, skip_serializing_if = "Restrictions::is_empty")]
    pub restrict: Restrictions,
}

/// The mount flags a mount gets besides read-only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restrictions {
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl Restrictions {
    pub fn is_empty(&self) -> bool {
        *self == Restrictions::default()
    }

    /// `nosuid,nodev` for `--dry-run`.
    fn describe(&self) -> String {
        [
            (self.nosuid, "nosuid"),
            (self.nodev, "nodev"),
            (self.noexec, "noexec"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
    }
}

/// Where box also puts its own executable in every box: the commands distrobox's boxes
/// have at these paths (desktop tools run `distrobox enter NAME -- distrobox-export`;
/// distrobox's manifests link host commands to `/usr/bin/distrobox-host-exec`), which box
/// answers by the name it is run as (`commands::program`). Read-only binds, like
/// `/usr/local/bin/box`: nothing is written through the image's `/usr/bin`.
pub const DISTROBOX_COMMANDS: [&str; 2] =
    ["/usr/bin/distrobox-export", "/usr/bin/distrobox-host-exec"];

impl Mount {
    /// A recursive bind of the host directory `source` at `target`.
    pub fn rbind(source: &Path, target: &Path) -> Mount {
        Mount {
            source: source.to_owned(),
            target: target.to_owned(),
            kind: MountKind::BindDir { recursive: true },
            read_only: false,
            hint: None,
            restrict: Restrictions::default(),
        }
    }

    /// This mount nosuid, with every mount below it: a directory the box shares with the
    /// host, where root in the box may leave a setuid file of an id of its own.
    pub fn nosuid(mut self) -> Mount {
        self.restrict.nosuid = true;
        self
    }

    /// This mount with `hint` for when it fails.
    pub fn hint(self, hint: String) -> Mount {
        Mount {
            hint: Some(hint),
            ..self
        }
    }

    /// Whether the box starts without this mount when it fails: box's executable under
    /// distrobox's names ([`DISTROBOX_COMMANDS`]) is a convenience, which an image with a
    /// directory in the way must not make unstartable.
    pub fn optional(&self) -> bool {
        self.kind == MountKind::BindFile
            && DISTROBOX_COMMANDS
                .iter()
                .any(|c| self.target == Path::new(c))
    }

    /// Where, inside the box, this mount shows the box's own root `root` again: a
    /// recursive bind of a directory holding the store (the home) brings the box root
    /// along, with every mount made in it so far. The holder detaches that copy.
    pub fn copied_root(&self, root: &Path) -> Option<PathBuf> {
        if self.kind != (MountKind::BindDir { recursive: true }) {
            return None;
        }
        let below = root.strip_prefix(&self.source).ok()?;
        Some(self.target.join(below))
    }
}

/// What box writes at one path inside the box after the pivot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileOp {
    /// Write `content` to `path` (mode `mode`).
    Write {
        path: PathBuf,
        content: String,
        mode: u32,
    },
    /// Make `path` a symlink to where the host's `host_path` really is, seen through
    /// `/run/host` (host symlinks resolved as on the host), so it follows the host's file.
    FollowHost { path: PathBuf, host_path: PathBuf },
    /// `/etc/hosts` as the host's content plus a line for the box's own hostname.
    HostsWithName {
        host_path: PathBuf,
        hostname: String,
    },
    /// `/etc/localtime` → `/usr/share/zoneinfo/<zone>` of the host's zone when the box
    /// has that zone, else the host's file through `/run/host`; and `/etc/timezone`,
    /// when the box has one, naming the zone.
    Localtime { host_path: PathBuf },
    /// `path`: an X authority file holding the host's entries of `host_path` for the
    /// host's name `hostname` as wildcard entries (see [`crate::host::xauth`]), owned by
    /// `owner` (uid, gid), mode 0600.
    XauthorityCopy {
        path: PathBuf,
        host_path: PathBuf,
        hostname: String,
        owner: (u32, u32),
    },
}

/// A file of the plan: what to write, and which host files it follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxFile {
    pub op: FileOp,
    /// The host files (host paths) the holder watches for this file: when one of them
    /// changes, `op` is applied again. Empty: written once, at the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<PathBuf>,
}

impl BoxFile {
    /// Whether the file follows host files (is applied again when they change).
    pub fn follows_host(&self) -> bool {
        !self.watch.is_empty()
    }
}

/// The host user as the box sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSpec {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The primary group's name on the host.
    pub group: String,
    /// Home inside the box.
    pub home: PathBuf,
    /// The host login shell; used inside when the box has it.
    pub host_shell: PathBuf,
}

/// What the integrations noted at the box's start for their joins: (the unit's
/// [`integrations::Integration::name`], its own data). Kept in the box's runtime state.
pub type JoinNotes = Vec<(String, serde_json::Value)>;

/// Everything the holder does to start a box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    /// A random id of this start of the box, in its `/run/.containerenv`: it tells the
    /// box's processes from strangers once the holder is gone (see [`super::members`]).
    pub instance: String,
    pub image: String,
    pub hostname: String,
    pub uid_map: Vec<IdRange>,
    pub gid_map: Vec<IdRange>,
    /// Whether uid 0 exists inside (keep-id or root): the holder becomes root.
    pub has_root: bool,
    /// The mount point of the root (`containers/<name>/root`).
    pub root: PathBuf,
    pub storage: Storage,
    /// Layer directories, bottom first (for the copy fallback).
    pub layer_dirs: Vec<PathBuf>,
    /// The file that marks a complete copy in `root` (copy fallback).
    pub copy_marker: PathBuf,
    pub mounts: Vec<Mount>,
    pub files: Vec<BoxFile>,
    pub user: UserSpec,
    pub timezone: Option<String>,
    /// Variables always set in the box.
    pub env_forced: Vec<(String, String)>,
    /// The image's `Env`.
    pub env_defaults: Vec<String>,
    /// What the integrations noted for the joins of this start of the box (the runtime
    /// directory and X authority file of the session that started it, ...): a session
    /// with others gets its own at join time.
    #[serde(default)]
    pub joins: JoinNotes,
    /// What the box's CDI devices ask to be done in the box at its start, after its files
    /// (see [`crate::host::cdi`]; carried out by [`super::devices`]).
    #[serde(default)]
    pub device_hooks: Vec<crate::host::cdi::DeviceHook>,
    /// The mount points of the CDI devices' binds at this start.
    #[serde(default)]
    pub device_mount_points: Vec<PathBuf>,
    /// The mount points box made for the CDI devices' binds at earlier starts (from the
    /// box's record): those gone from the specs (a library of the driver before its
    /// update) are removed.
    #[serde(default)]
    pub made_device_mount_points: Vec<PathBuf>,
    /// The directory of the `box host-exec` socket on the host, if the box has one.
    #[serde(default)]
    pub host_exec_dir: Option<PathBuf>,
}

/// The inputs of a plan besides the record.
pub struct PlanInputs<'a> {
    pub store: &'a Store,
    pub user: &'a HostUser,
    pub mapping: &'a IdMapping,
    /// What the plan needs to know of the host, gathered before ([`Facts::gather`]).
    pub facts: &'a Facts,
    /// See [`Plan::instance`].
    pub instance: String,
    /// The host end's directory of `box host-exec` (see [`crate::host_exec`]), mounted
    /// at [`crate::host_exec::DIR_IN_BOX`].
    pub host_exec_dir: Option<PathBuf>,
}

/// The `/run/.containerenv` text (podman's format, which tools already parse), with
/// box's `instance` (see [`Plan::instance`]).
pub fn containerenv(name: &str, image: &str, instance: &str) -> String {
    format!(
        "engine=\"box\"\nname=\"{name}\"\nid=\"{name}\"\nimage=\"{image}\"\nrootless=1\ninstance=\"{instance}\"\n"
    )
}

/// Build the plan of box `record`: its root, its user, and what the integrations add.
/// Pure: reads no file.
pub fn build(record: &ContainerRecord, inputs: &PlanInputs<'_>) -> Plan {
    let PlanInputs {
        store,
        user,
        mapping,
        facts,
        instance,
        host_exec_dir,
    } = inputs;
    let name = &record.name;
    let storage = if record.storage == StorageKind::Copy {
        Storage::Copy
    } else {
        Storage::Overlay {
            lowers_dir: store.container_lowers(name),
            lowers: (0..record.layers.len())
                .rev()
                .map(Store::lower_link_name)
                .collect(),
            upper: store.container_upper(name),
            work: store.container_work(name),
        }
    };
    let hostname = record
        .hostname
        .clone()
        .unwrap_or_else(|| facts.host.hostname.clone());
    let home = record.home.clone().unwrap_or_else(|| user.home.clone());
    let parts = integrations::compose(&integrations::Start {
        record,
        user,
        facts,
        has_root: mapping.has_root(),
        instance,
        hostname: &hostname,
        home: &home,
        host_exec_dir: host_exec_dir.as_deref(),
    });
    Plan {
        name: name.clone(),
        instance: instance.clone(),
        image: record.image.clone(),
        hostname,
        uid_map: mapping.uid_map(),
        gid_map: mapping.gid_map(),
        has_root: mapping.has_root(),
        root: store.container_root(name),
        storage,
        layer_dirs: record.layers.iter().map(|d| store.layer_dir(d)).collect(),
        copy_marker: store.container_copy_marker(name),
        mounts: parts.mounts,
        files: parts.files,
        user: UserSpec {
            name: user.name.clone(),
            uid: user.uid,
            gid: user.gid,
            group: facts.group.clone(),
            home,
            host_shell: user.shell.clone(),
        },
        timezone: parts.timezone,
        env_forced: parts.env,
        // The box's own (given at create) before the image's: the first of a name wins.
        env_defaults: record
            .env
            .iter()
            .chain(&record.image_env)
            .cloned()
            .collect(),
        joins: parts.joins,
        device_hooks: parts.device_hooks,
        device_mount_points: parts.device_mount_points,
        made_device_mount_points: record.device_mount_points.clone(),
        host_exec_dir: parts.host_exec_dir,
    }
}

impl Plan {
    /// The box's directory mounts, (path in the box, path on the host): where a path in
    /// the box is the same directory on the host (`box host-exec`'s working directory).
    pub fn shared_dirs(&self) -> Vec<(PathBuf, PathBuf)> {
        self.mounts
            .iter()
            .filter(|m| matches!(m.kind, MountKind::BindDir { .. } | MountKind::HostRoot))
            .map(|m| (m.target.clone(), m.source.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::integrations::XAUTHORITY_IN_BOX;
    use super::*;
    use crate::digest::Digest;
    use crate::host::HostFacts;
    use crate::store::containers::Volume;
    use crate::sys::idmap::SubRange;

    fn record() -> ContainerRecord {
        ContainerRecord {
            name: "dev".into(),
            image: "127.0.0.1:5000/debian:12".into(),
            image_digest: Digest::of(b"m"),
            layers: vec![Digest::of(b"bottom"), Digest::of(b"top")],
            created: 0,
            hostname: None,
            home: None,
            volumes: vec![Volume {
                source: "/srv/data".into(),
                target: "/data".into(),
                read_only: true,
            }],
            image_env: vec!["LANG=C.UTF-8".into()],
            env: vec![],
            storage: StorageKind::Overlay,
            provision: None,
            devices: vec![],
            nvidia: None,
            device_mount_points: vec![],
        }
    }

    fn user() -> HostUser {
        HostUser {
            uid: 1000,
            gid: 1000,
            name: "alice".into(),
            home: "/home/alice".into(),
            shell: "/bin/zsh".into(),
        }
    }

    fn host() -> HostFacts {
        HostFacts {
            hostname: "laptop".into(),
            xdg_runtime_dir: Some("/run/user/1000".into()),
            system_bus: Some("/run/dbus/system_bus_socket".into()),
            xauthority: Some("/run/user/1000/xauth_x".into()),
            localtime: Some("/usr/share/zoneinfo/Europe/Paris".into()),
            timezone: Some("Europe/Paris".into()),
            resolv_conf: Some("/run/systemd/resolve/stub-resolv.conf".into()),
            hosts: Some("/etc/hosts".into()),
            box_binary: Some("/usr/bin/box".into()),
        }
    }

    fn plan_of(record: &ContainerRecord) -> Plan {
        let mapping = IdMapping::KeepId {
            uid: 1000,
            gid: 1000,
            subuid: SubRange {
                start: 100000,
                count: 65536,
            },
            subgid: SubRange {
                start: 100000,
                count: 65536,
            },
        };
        plan_with(
            record,
            &mapping,
            &crate::host::cdi::Edits::default(),
            Some("/run/user/1000/box/dev/host-exec".into()),
        )
    }

    /// The plan of `record` for alice on the test host, with `mapping`, `devices` and the
    /// host end's directory.
    fn plan_with(
        record: &ContainerRecord,
        mapping: &IdMapping,
        devices: &crate::host::cdi::Edits,
        host_exec_dir: Option<PathBuf>,
    ) -> Plan {
        build(
            record,
            &PlanInputs {
                store: &Store::at(Path::new("/s")),
                user: &user(),
                mapping,
                facts: &Facts {
                    host: host(),
                    group: "alice".into(),
                    devices: devices.clone(),
                    directories: vec![],
                    box_launch: Some(crate::fakeroot::sudo::Launch {
                        exe: "/usr/bin/box".into(),
                        loader: None,
                    }),
                },
                instance: "0123abcd".into(),
                host_exec_dir,
            },
        )
    }

    /// What the plan's files write, in order.
    fn ops(plan: &Plan) -> Vec<FileOp> {
        plan.files.iter().map(|f| f.op.clone()).collect()
    }

    /// The single-id mapping of a user without subordinate ids.
    fn single_id() -> IdMapping {
        IdMapping::Single {
            uid: 1000,
            gid: 1000,
            reason: "none".into(),
        }
    }

    #[test]
    fn without_subordinate_ids_the_plan_has_the_sudo_shim_and_shows_the_fake_root() {
        let plan = plan_with(
            &record(),
            &single_id(),
            &crate::host::cdi::Edits::default(),
            Some("/run/user/1000/box/dev/host-exec".into()),
        );
        assert!(!plan.has_root);
        assert!(ops(&plan).iter().any(|op| matches!(op,
            FileOp::Write { path, content, mode: 0o755 }
                if path == Path::new("/usr/local/bin/sudo") && content.contains("__fakeroot sudo"))));
        let text = plan.to_string();
        assert!(
            text.contains("uid map (inside->outside+count): 1000->1000+1"),
            "{text}"
        );
        assert!(text.contains("uid map 0->1000+1"), "{text}");
        assert!(text.contains("fake (return 0, change nothing)"), "{text}");
        assert!(text.contains("setresuid"), "{text}");
        assert!(text.contains("APT::Sandbox::User"), "{text}");
        // With subordinate ids the image's sudo works: no shim.
        assert!(!ops(&plan_of(&record())).iter().any(|op| matches!(op,
            FileOp::Write { path, .. } if path == Path::new("/usr/local/bin/sudo"))));
    }

    #[test]
    fn cdi_edits_add_binds_env_and_hooks_after_the_host_s_mounts() {
        let devices = crate::host::cdi::Edits {
            env: vec![("EXAMPLE".into(), "1".into())],
            binds: vec![crate::host::cdi::Bind {
                host_path: "/nonexistent/lib".into(),
                container_path: "/opt/lib".into(),
                read_only: true,
                nosuid: true,
                nodev: true,
                noexec: false,
                recursive: false,
                origin: "CDI spec /etc/cdi/x.yaml".into(),
            }],
            hooks: vec![crate::host::cdi::DeviceHook::LdCache {
                folders: vec!["/opt/lib".into()],
            }],
            warnings: vec![],
        };
        let plan = plan_with(&record(), &single_id(), &devices, None);
        let last = plan.mounts.last().unwrap();
        assert_eq!(last.target, Path::new("/opt/lib"));
        assert!(last.read_only && last.restrict.nosuid && last.restrict.nodev);
        assert!(last.hint.as_deref().unwrap().contains("/etc/cdi/x.yaml"));
        assert_eq!(
            plan.env_forced.last().unwrap(),
            &("EXAMPLE".to_owned(), "1".to_owned())
        );
        let text = plan.to_string();
        assert!(
            text.contains("/nonexistent/lib -> /opt/lib (read-only,nosuid,nodev)"),
            "{text}"
        );
        assert!(
            text.contains("ldconfig with /opt/lib (update-ldcache)"),
            "{text}"
        );
    }

    #[test]
    fn the_facts_decide_how_paths_are_bound_and_the_notes_what_joins_do() {
        let mut rec = record();
        rec.hostname = Some("devbox".into());
        let facts = |directories: Vec<PathBuf>| Facts {
            host: host(),
            group: "alice".into(),
            devices: Default::default(),
            directories,
            box_launch: None,
        };
        let plan_of_facts = |facts: &Facts| {
            build(
                &rec,
                &PlanInputs {
                    store: &Store::at(Path::new("/s")),
                    user: &user(),
                    mapping: &single_id(),
                    facts,
                    instance: "0123abcd".into(),
                    host_exec_dir: None,
                },
            )
        };
        let kind_of_data = |plan: &Plan| {
            let data = plan.mounts.iter().find(|m| m.target == Path::new("/data"));
            data.unwrap().kind.clone()
        };
        assert_eq!(
            kind_of_data(&plan_of_facts(&facts(vec![]))),
            MountKind::BindFile
        );
        let plan = plan_of_facts(&facts(vec!["/srv/data".into()]));
        assert_eq!(kind_of_data(&plan), MountKind::BindDir { recursive: true });
        // Without a way found to start the host's box, no sudo shim.
        assert!(!plan.files.iter().any(|f| matches!(&f.op,
            FileOp::Write { path, .. } if path == Path::new("/usr/local/bin/sudo"))));
        // The session the box starts with, for the joins of other sessions.
        assert_eq!(
            plan.joins,
            vec![
                (
                    "runtime-dir".to_owned(),
                    serde_json::json!("/run/user/1000")
                ),
                (
                    "x11".to_owned(),
                    serde_json::json!({"started": "/run/user/1000/xauth_x", "wildcard": true})
                ),
            ]
        );
        let text = plan.to_string();
        assert!(text.contains("at each join"), "{text}");
        assert!(text.contains("a wildcard copy of that file"), "{text}");
        // The files that follow the host's say which host files they watch.
        let localtime = plan
            .files
            .iter()
            .find(|f| matches!(f.op, FileOp::Localtime { .. }))
            .unwrap();
        assert_eq!(
            localtime.watch,
            [Path::new("/etc/localtime"), Path::new("/etc/timezone")]
        );
        assert!(!plan.files[0].follows_host(), "{:?}", plan.files[0]);
    }

    #[test]
    fn overlay_lowers_are_top_first_and_relative() {
        let plan = plan_of(&record());
        let Storage::Overlay {
            lowers_dir,
            lowers,
            upper,
            ..
        } = &plan.storage
        else {
            panic!("overlay expected");
        };
        // The box's short links to its layers, bottom first: `1` is the top one.
        assert_eq!(lowers_dir, Path::new("/s/containers/dev/lowers"));
        assert_eq!(lowers, &["1", "0"]);
        assert_eq!(
            plan.layer_dirs,
            [
                Path::new("/s/layers").join(Digest::of(b"bottom").hex()),
                Path::new("/s/layers").join(Digest::of(b"top").hex())
            ]
        );
        assert_eq!(upper, Path::new("/s/containers/dev/upper"));
        assert_eq!(plan.root, Path::new("/s/containers/dev/root"));
        assert!(plan.has_root);
    }

    #[test]
    fn host_integration_mounts_come_in_order() {
        let plan = plan_of(&record());
        let targets: Vec<_> = plan
            .mounts
            .iter()
            .map(|m| m.target.display().to_string())
            .collect();
        assert_eq!(
            targets,
            vec![
                "/dev",
                "/sys",
                "/proc",
                "/tmp",
                "/run",
                "/run/host",
                "/run/user/1000",
                "/home/alice",
                "/data",
                "/usr/local/bin/box",
                "/usr/bin/distrobox-export",
                "/usr/bin/distrobox-host-exec",
                "/run/host-exec",
            ]
        );
        // The X authority file is under the runtime dir: no mount, no copy of its own.
        assert!(!plan.mounts.iter().any(|m| m.source.ends_with("xauth_x")));
        assert!(
            !ops(&plan)
                .iter()
                .any(|op| matches!(op, FileOp::XauthorityCopy { .. }))
        );
        assert!(
            plan.mounts
                .iter()
                .find(|m| m.target == Path::new("/data"))
                .unwrap()
                .read_only
        );
        assert!(ops(&plan).contains(&FileOp::FollowHost {
            path: "/etc/hosts".into(),
            host_path: "/etc/hosts".into()
        }));
        // Sockets and files the host replaces are links through /run/host, not binds.
        assert!(ops(&plan).contains(&FileOp::FollowHost {
            path: "/run/dbus/system_bus_socket".into(),
            host_path: "/run/dbus/system_bus_socket".into()
        }));
        assert!(ops(&plan).contains(&FileOp::FollowHost {
            path: "/etc/resolv.conf".into(),
            host_path: "/etc/resolv.conf".into()
        }));
        assert_eq!(
            plan.env_forced,
            vec![
                ("CONTAINER_ID".into(), "dev".into()),
                ("container".into(), "box".into())
            ]
        );
    }

    #[test]
    fn own_hostname_and_home_change_hosts_env_and_mounts() {
        let mut rec = record();
        rec.hostname = Some("devbox".into());
        rec.home = Some("/srv/devhome".into());
        rec.storage = StorageKind::Copy;
        let plan = plan_of(&rec);
        assert_eq!(plan.storage, Storage::Copy);
        assert_eq!(plan.hostname, "devbox");
        assert_eq!(plan.user.home, Path::new("/srv/devhome"));
        assert!(
            plan.mounts
                .iter()
                .any(|m| m.target == Path::new("/srv/devhome"))
        );
        assert!(ops(&plan).contains(&FileOp::HostsWithName {
            host_path: "/etc/hosts".into(),
            hostname: "devbox".into()
        }));
        assert!(
            plan.env_forced
                .contains(&("HOME".into(), "/srv/devhome".into()))
        );
        assert!(
            plan.env_forced
                .contains(&("BOX_HOST_HOME".into(), "/home/alice".into()))
        );
        assert!(
            plan.env_forced
                .contains(&("XAUTHLOCALHOSTNAME".into(), "laptop".into()))
        );
        // X cookies for any hostname, in a file of the box's own.
        assert!(ops(&plan).contains(&FileOp::XauthorityCopy {
            path: XAUTHORITY_IN_BOX.into(),
            host_path: "/run/user/1000/xauth_x".into(),
            hostname: "laptop".into(),
            owner: (1000, 1000),
        }));
        assert!(
            plan.env_forced
                .contains(&("XAUTHORITY".into(), XAUTHORITY_IN_BOX.into()))
        );
        let text = plan.to_string();
        assert!(
            text.contains(
                "uid map (inside->outside+count): 0->100000+1000, 1000->1000+1, 1001->101000+64535"
            ),
            "{text}"
        );
        assert!(text.contains("copy storage"), "{text}");
    }
}
