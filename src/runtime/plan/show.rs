//! `--dry-run`: a [`Plan`] as text, in the order the holder carries it out.

use std::fmt;
use std::path::Path;

use super::{FileOp, MountKind, Plan, Storage};
use crate::sys::idmap::IdRange;

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
        for file in &self.files {
            match &file.op {
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
        let mut watched: Vec<String> = Vec::new();
        for path in self.files.iter().flat_map(|file| &file.watch) {
            let path = path.display().to_string();
            if !watched.contains(&path) {
                watched.push(path);
            }
        }
        if !watched.is_empty() {
            writeln!(
                f,
                "  (what follows the host's is written again by the holder whenever the host's {} change)",
                watched.join(", ")
            )?;
        }
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
        let joins = super::integrations::describe_joins(&self.joins);
        if !joins.is_empty() {
            writeln!(f, "at each join, from the caller's environment:")?;
            for join in joins {
                writeln!(f, "  {join}")?;
            }
        }
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
