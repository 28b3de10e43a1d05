//! The plan of a box's namespaces and mounts: pure data, built from the box record, the
//! host user, the id mapping and a few facts about the host. The holder carries it out
//! ([`super::holder`]); `--dry-run` prints it.
//!
//! Order of the plan (and why):
//! 1. a new user namespace with the id maps, then mount + UTS namespaces; `/` is made
//!    rslave recursively so nothing mounted here leaks back to the host while host
//!    mounts (a USB stick under /run/host/media) still appear;
//! 2. the root: overlayfs (`userxattr`) with the layers as lower dirs, top first, given
//!    as the short links of the box's `lowers/` directory, relative to it, so that as many
//!    layers as overlayfs stacks fit in one page of mount options (see [`super::holder`]);
//!    or, with copy storage, the flattened copy bound onto itself;
//! 3. the host-integration mounts ([`Mount`]) with targets inside the new root; the
//!    host root is cloned before the box root is mounted, so `/run/host` does not contain
//!    the box itself;
//! 4. `pivot_root(".", ".")` and a lazy unmount of the old root;
//! 5. the files ([`FileOp`]) written inside the box: `/run/.containerenv`, and the ones
//!    that follow the host's through `/run/host` (`/etc/hosts`, `/etc/resolv.conf`,
//!    `/etc/localtime`, the system bus socket, an X authority file outside the shared
//!    directories, the wildcard copy of the X authority file for a box of another
//!    hostname or home), which the holder applies again whenever the host files they
//!    read change (see [`super::follow`]);
//! 6. first-start user setup (passwd, group, shadow, sudoers; see [`super::setup`]).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::context::HostUser;
use crate::host::HostFacts;
use crate::store::Store;
use crate::store::containers::{ContainerRecord, StorageKind};
use crate::sys::idmap::{IdMapping, IdRange};

/// Where the box's root comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Storage {
    /// overlayfs over the shared layers.
    Overlay {
        /// The box's `lowers/` directory of short links to its layers
        /// (`Store::link_lowers`): the holder chdirs there so lower dirs are short
        /// relative names.
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
    /// Flags a CDI spec asks for besides read-only (`nosuid`, `nodev`, `noexec`).
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

impl Mount {
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

/// A file box writes inside the box after the pivot.
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

/// Where a box of another hostname or home has its X authority file.
pub const XAUTHORITY_IN_BOX: &str = "/run/box/xauthority";

impl FileOp {
    /// Whether the op follows a host file (applied again when the host's `/etc` changes).
    pub fn follows_host(&self) -> bool {
        !matches!(self, FileOp::Write { .. })
    }

    /// The host files (host paths) the op reads: when one changes, it is applied again.
    pub fn host_files(&self) -> Vec<&Path> {
        match self {
            FileOp::Write { .. } => vec![],
            FileOp::FollowHost { host_path, .. }
            | FileOp::HostsWithName { host_path, .. }
            | FileOp::XauthorityCopy { host_path, .. } => vec![host_path],
            FileOp::Localtime { host_path } => vec![host_path, Path::new("/etc/timezone")],
        }
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
    pub files: Vec<FileOp>,
    pub user: UserSpec,
    pub timezone: Option<String>,
    /// Variables always set in the box.
    pub env_forced: Vec<(String, String)>,
    /// The image's `Env`.
    pub env_defaults: Vec<String>,
    /// The runtime directory and X authority file bound or linked for the session that
    /// started the box; a session with others gets its own at join time.
    pub runtime_dir: Option<PathBuf>,
    pub xauthority: Option<PathBuf>,
    /// What the box's CDI devices ask to be done in the box at its start, after its files
    /// (see [`crate::host::cdi`]; carried out by [`super::devices`]).
    #[serde(default)]
    pub device_hooks: Vec<crate::host::cdi::DeviceHook>,
    /// The mount points of the CDI devices' binds: those of an earlier start that are
    /// gone from the specs (a library of the driver before its update) are removed.
    #[serde(default)]
    pub device_mount_points: Vec<PathBuf>,
    /// The directory of the `box host-exec` socket on the host, if the box has one.
    #[serde(default)]
    pub host_exec_dir: Option<PathBuf>,
}

/// The inputs of a plan besides the record.
pub struct PlanInputs<'a> {
    pub store: &'a Store,
    pub user: &'a HostUser,
    /// The host user's primary group name.
    pub group: String,
    pub mapping: &'a IdMapping,
    pub host: &'a HostFacts,
    /// See [`Plan::instance`].
    pub instance: String,
    /// The edits of the box's CDI devices, read from the host's specs for this start.
    pub devices: &'a crate::host::cdi::Edits,
    /// The host end's directory of `box host-exec` (see [`crate::host_exec`]), mounted
    /// at [`crate::host_exec::DIR_IN_BOX`].
    pub host_exec_dir: Option<PathBuf>,
}

fn bind_dir(source: &Path, target: &Path) -> Mount {
    Mount {
        source: source.to_owned(),
        target: target.to_owned(),
        kind: MountKind::BindDir { recursive: true },
        read_only: false,
        hint: None,
        restrict: Restrictions::default(),
    }
}

/// The `/run/.containerenv` text (podman's format, which tools already parse), with
/// box's `instance` (see [`Plan::instance`]).
pub fn containerenv(name: &str, image: &str, instance: &str) -> String {
    format!(
        "engine=\"box\"\nname=\"{name}\"\nid=\"{name}\"\nimage=\"{image}\"\nrootless=1\ninstance=\"{instance}\"\n"
    )
}

/// Build the plan of box `record`.
pub fn build(record: &ContainerRecord, inputs: &PlanInputs<'_>) -> Plan {
    let PlanInputs {
        store,
        user,
        group,
        mapping,
        host,
        instance,
        devices,
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
        .unwrap_or_else(|| host.hostname.clone());
    let home = record.home.clone().unwrap_or_else(|| user.home.clone());

    let mut mounts = Vec::new();
    for dir in ["/dev", "/sys", "/proc", "/tmp"] {
        mounts.push(bind_dir(Path::new(dir), Path::new(dir)));
    }
    mounts.push(Mount {
        source: PathBuf::from("tmpfs"),
        target: PathBuf::from("/run"),
        kind: MountKind::Tmpfs {
            options: "mode=0755,nosuid,nodev".into(),
        },
        read_only: false,
        hint: None,
        restrict: Restrictions::default(),
    });
    mounts.push(Mount {
        source: PathBuf::from("/"),
        target: PathBuf::from("/run/host"),
        kind: MountKind::HostRoot,
        read_only: false,
        hint: None,
        restrict: Restrictions::default(),
    });
    // Directories already reachable through another bind need no mount of their own.
    let mut bound: Vec<PathBuf> = vec!["/tmp".into()];
    if let Some(dir) = &host.xdg_runtime_dir {
        mounts.push(bind_dir(dir, dir));
        bound.push(dir.clone());
    }
    mounts.push(bind_dir(&user.home, &user.home));
    bound.push(user.home.clone());
    if !bound.iter().any(|b| home.starts_with(b)) {
        mounts.push(bind_dir(&home, &home));
        bound.push(home.clone());
    }
    for volume in &record.volumes {
        let kind = if volume.source.is_dir() {
            MountKind::BindDir { recursive: true }
        } else {
            MountKind::BindFile
        };
        mounts.push(Mount {
            source: volume.source.clone(),
            target: volume.target.clone(),
            kind,
            read_only: volume.read_only,
            hint: Some(format!(
                "create {} on the host, or remove the box and create it again without that volume",
                volume.source.display()
            )),
            restrict: Restrictions::default(),
        });
    }
    if let Some(exe) = &host.box_binary {
        mounts.push(Mount {
            hint: Some(format!(
                "box puts its own executable ({}) at /usr/local/bin/box in every box: check that it is still there (reinstall box if not) and that the image has no directory at /usr/local/bin/box",
                exe.display()
            )),
            source: exe.clone(),
            target: "/usr/local/bin/box".into(),
            kind: MountKind::BindFile,
            read_only: true,
            restrict: Restrictions::default(),
        });
    }
    // CDI devices last: their targets (a library in /usr/lib) are in the box's own tree.
    for bind in &devices.binds {
        let kind = if bind.host_path.is_dir() {
            MountKind::BindDir {
                recursive: bind.recursive,
            }
        } else {
            MountKind::BindFile
        };
        mounts.push(Mount {
            source: bind.host_path.clone(),
            target: bind.container_path.clone(),
            kind,
            read_only: bind.read_only,
            hint: Some(format!(
                "it is asked for by the {}; regenerate the spec if the driver changed, or remove the box and create it again without that device",
                bind.origin
            )),
            restrict: Restrictions {
                nosuid: bind.nosuid,
                nodev: bind.nodev,
                noexec: bind.noexec,
            },
        });
    }

    // A directory, not the socket: the host end binds its socket there once the box is
    // up, and binds it again should it be restarted.
    if let Some(dir) = host_exec_dir {
        mounts.push(Mount {
            hint: Some(format!(
                "box creates {} for `box host-exec`: check that your runtime directory is writable",
                dir.display()
            )),
            ..bind_dir(dir, Path::new(crate::host_exec::DIR_IN_BOX))
        });
    }

    let mut files = vec![FileOp::Write {
        path: "/run/.containerenv".into(),
        content: containerenv(name, &record.image, instance),
        mode: 0o644,
    }];
    // Links through /run/host rather than binds: a bind pins the file the host had at
    // start, and the host replaces these by rename (resolvconf, xauth, a dbus restart).
    if host.resolv_conf.is_some() {
        files.push(FileOp::FollowHost {
            path: "/etc/resolv.conf".into(),
            host_path: "/etc/resolv.conf".into(),
        });
    }
    if host.hosts.is_some() {
        files.push(if hostname == host.hostname {
            FileOp::FollowHost {
                path: "/etc/hosts".into(),
                host_path: "/etc/hosts".into(),
            }
        } else {
            FileOp::HostsWithName {
                host_path: "/etc/hosts".into(),
                hostname: hostname.clone(),
            }
        });
    }
    if host.localtime.is_some() {
        files.push(FileOp::Localtime {
            host_path: "/etc/localtime".into(),
        });
    }
    if let Some(socket) = &host.system_bus {
        files.push(FileOp::FollowHost {
            path: "/run/dbus/system_bus_socket".into(),
            host_path: socket.clone(),
        });
    }
    // The host's cookies are written for the host's name, and a box with a home of its
    // own does not see `~/.Xauthority`: such boxes get a wildcard copy (`crate::host::xauth`).
    let own_xauthority = hostname != host.hostname || record.home.is_some();
    if let Some(xauth) = &host.xauthority {
        if own_xauthority {
            files.push(FileOp::XauthorityCopy {
                path: XAUTHORITY_IN_BOX.into(),
                host_path: xauth.clone(),
                hostname: host.hostname.clone(),
                owner: (user.uid, user.gid),
            });
        } else if !bound.iter().any(|b| xauth.starts_with(b)) {
            files.push(FileOp::FollowHost {
                path: xauth.clone(),
                host_path: xauth.clone(),
            });
        }
    }

    // Without subordinate ids the image's sudo cannot work: a shim ahead of it in PATH
    // runs box's fake root instead (see `crate::fakeroot::sudo`). It needs box in the box.
    // (The shim's text depends on the box binary's ELF interpreter: read from it.)
    if !mapping.has_root()
        && let Some(exe) = &host.box_binary
    {
        files.push(FileOp::Write {
            path: crate::fakeroot::sudo::SHIM_PATH.into(),
            content: crate::fakeroot::sudo::shim(exe),
            mode: 0o755,
        });
    }

    let mut env_forced = vec![
        ("CONTAINER_ID".to_owned(), name.clone()),
        ("container".to_owned(), "box".to_owned()),
    ];
    if record.home.is_some() {
        env_forced.push(("HOME".into(), home.display().to_string()));
        // For box itself in the box (`box export`): the store and exports stay the host's.
        env_forced.push((
            crate::context::HOST_HOME_ENV.into(),
            user.home.display().to_string(),
        ));
    }
    if own_xauthority && host.xauthority.is_some() {
        env_forced.push(("XAUTHORITY".into(), XAUTHORITY_IN_BOX.into()));
    }
    if hostname != host.hostname {
        env_forced.push(("XAUTHLOCALHOSTNAME".into(), host.hostname.clone()));
    }
    env_forced.extend(devices.env.iter().cloned());

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
        mounts,
        files,
        user: UserSpec {
            name: user.name.clone(),
            uid: user.uid,
            gid: user.gid,
            group: group.clone(),
            home,
            host_shell: user.shell.clone(),
        },
        timezone: host.timezone.clone(),
        env_forced,
        env_defaults: record.image_env.clone(),
        runtime_dir: host.xdg_runtime_dir.clone(),
        xauthority: host.xauthority.clone(),
        device_hooks: devices.hooks.clone(),
        device_mount_points: devices
            .binds
            .iter()
            .map(|b| b.container_path.clone())
            .collect(),
        host_exec_dir: host_exec_dir.clone(),
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

fn ranges(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{}->{}+{}", r.inside, r.outside, r.count))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "box {} from {}", self.name, self.image)?;
        writeln!(
            f,
            "namespaces: user, mount, uts (pid, ipc, network: the host's)"
        )?;
        writeln!(
            f,
            "uid map (inside->outside+count): {}",
            ranges(&self.uid_map)
        )?;
        writeln!(
            f,
            "gid map (inside->outside+count): {}",
            ranges(&self.gid_map)
        )?;
        writeln!(
            f,
            "user: {} ({}:{}), home {}{}",
            self.user.name,
            self.user.uid,
            self.user.gid,
            self.user.home.display(),
            if self.has_root {
                ", root inside via sudo"
            } else {
                ", root inside: box's fake root (below)"
            }
        )?;
        if !self.has_root
            && let (Some(uid), Some(gid)) = (self.uid_map.first(), self.gid_map.first())
        {
            writeln!(f, "{}", crate::fakeroot::describe(uid.inside, gid.inside))?;
        }
        writeln!(f, "hostname: {}", self.hostname)?;
        writeln!(f, "mounts:")?;
        writeln!(f, "  make-rslave  / (recursive)")?;
        match &self.storage {
            Storage::Overlay {
                lowers_dir,
                lowers,
                upper,
                work,
            } => {
                writeln!(
                    f,
                    "  overlay      {} (userxattr; in {}: lowerdir={}; upperdir={}; workdir={})",
                    self.root.display(),
                    lowers_dir.display(),
                    lowers.join(":"),
                    upper.display(),
                    work.display()
                )?;
            }
            Storage::Copy => writeln!(f, "  bind         {} (copy storage)", self.root.display())?,
        }
        for m in &self.mounts {
            let (what, extra) = match &m.kind {
                MountKind::BindDir { recursive: true } => ("rbind", String::new()),
                MountKind::BindDir { recursive: false } => ("bind", String::new()),
                MountKind::BindFile => ("bind-file", String::new()),
                MountKind::Tmpfs { options } => ("tmpfs", format!(" ({options})")),
                MountKind::HostRoot => ("rbind", " (host root, rslave)".to_owned()),
            };
            let mut flags = m.restrict.describe();
            if m.read_only {
                flags = if flags.is_empty() {
                    "read-only".into()
                } else {
                    format!("read-only,{flags}")
                };
            }
            writeln!(
                f,
                "  {what:<12} {} -> {}{extra}{}",
                m.source.display(),
                m.target.display(),
                if flags.is_empty() {
                    String::new()
                } else {
                    format!(" ({flags})")
                }
            )?;
            if let Some(copy) = m.copied_root(&self.root) {
                writeln!(
                    f,
                    "  detach       {} (the box root, seen again inside that bind)",
                    copy.display()
                )?;
            }
        }
        writeln!(
            f,
            "  pivot_root   {} (old root detached)",
            self.root.display()
        )?;
        writeln!(f, "files:")?;
        for op in &self.files {
            match op {
                FileOp::Write { path, .. }
                    if path == Path::new(crate::fakeroot::sudo::SHIM_PATH) =>
                {
                    writeln!(
                        f,
                        "  write        {} (sudo: runs `box __fakeroot sudo ARGS`, box's fake root)",
                        path.display()
                    )?
                }
                FileOp::Write { path, content, .. } => writeln!(
                    f,
                    "  write        {} ({})",
                    path.display(),
                    content.trim().replace('\n', " ")
                )?,
                FileOp::FollowHost { path, host_path } => writeln!(
                    f,
                    "  symlink      {} -> /run/host{}",
                    path.display(),
                    host_path.display()
                )?,
                FileOp::HostsWithName {
                    host_path,
                    hostname,
                } => writeln!(
                    f,
                    "  write        /etc/hosts (host's {} + {hostname})",
                    host_path.display()
                )?,
                FileOp::Localtime { host_path } => writeln!(
                    f,
                    "  symlink      /etc/localtime -> the box's zoneinfo file of the host's zone (or /run/host{})",
                    host_path.display()
                )?,
                FileOp::XauthorityCopy {
                    path, host_path, ..
                } => writeln!(
                    f,
                    "  write        {} (the X cookies of the host's {}, for any hostname)",
                    path.display(),
                    host_path.display()
                )?,
            }
        }
        writeln!(
            f,
            "  (the links, /etc/hosts and the X cookies follow the host's: the holder renews them when the host's files change)"
        )?;
        if !self.device_hooks.is_empty() {
            writeln!(f, "device hooks (CDI), in the box at each start:")?;
            for hook in &self.device_hooks {
                writeln!(f, "  {}", hook.describe())?;
            }
        }
        writeln!(
            f,
            "first start: user {} added to passwd, group and shadow{}; locale and timezone from the host",
            self.user.name,
            if self.has_root {
                ", passwordless sudo"
            } else {
                ""
            }
        )?;
        writeln!(f, "environment additions:")?;
        for (name, value) in &self.env_forced {
            writeln!(f, "  {name}={value}")?;
        }
        for entry in &self.env_defaults {
            writeln!(f, "  {entry} (unless set on the host)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
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
            storage: StorageKind::Overlay,
            provision: None,
            devices: vec![],
            nvidia: None,
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
                group: "alice".into(),
                mapping,
                host: &host(),
                instance: "0123abcd".into(),
                devices,
                host_exec_dir,
            },
        )
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
        assert!(plan.files.iter().any(|op| matches!(op,
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
        assert!(!plan_of(&record()).files.iter().any(|op| matches!(op,
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
                "/run/host-exec",
            ]
        );
        // The X authority file is under the runtime dir: no mount, no copy of its own.
        assert!(!plan.mounts.iter().any(|m| m.source.ends_with("xauth_x")));
        assert!(
            !plan
                .files
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
        assert!(plan.files.contains(&FileOp::FollowHost {
            path: "/etc/hosts".into(),
            host_path: "/etc/hosts".into()
        }));
        // Sockets and files the host replaces are links through /run/host, not binds.
        assert!(plan.files.contains(&FileOp::FollowHost {
            path: "/run/dbus/system_bus_socket".into(),
            host_path: "/run/dbus/system_bus_socket".into()
        }));
        assert!(plan.files.contains(&FileOp::FollowHost {
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
        assert!(plan.files.contains(&FileOp::HostsWithName {
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
        assert!(plan.files.contains(&FileOp::XauthorityCopy {
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
