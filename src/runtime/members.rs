//! Which processes belong to a box: those in its user namespace or in a user namespace
//! nested below it, whatever mount namespace they moved to (`unshare -m`, bwrap or
//! flatpak run in a box). They all keep the box's overlay mounted, so `box stop` must end
//! them all and `box rm` must count them as a running box.
//!
//! A namespace is named by the (device, inode) of its `/proc/PID/ns/user` link, and the
//! kernel hands the same number to a new namespace once the old one is gone. So a
//! recorded number is trusted only
//! - while the holder recorded with it is alive (pid and start time), or
//! - when a process in that namespace shows the box's own `/run/.containerenv` with the
//!   instance id of that start (the holder died: OOM, kill -9; the record also has to
//!   come from this boot, see `state`).
//!
//! Reading another process's namespace links and root needs PTRACE_MODE_READ, which the
//! owner of a user namespace has over every process inside it (user_namespaces(7)), even
//! those running as subordinate ids; other users' processes are simply not readable.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use super::state::State;

/// A namespace: (device, inode) of its nsfs link.
pub type NsId = (u64, u64);

/// How deep box looks for a box's user namespace above a process's own (the kernel
/// allows 32 levels of nesting).
const MAX_NESTING: usize = 32;

/// A process of a box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub pid: i32,
    /// Whether it is in the box's own mount namespace (the holder's), so that a new
    /// holder could join it.
    pub in_box_mounts: bool,
}

/// The namespace `kind` (`user`, `mnt`) of process `pid` (a number or `self`).
pub fn namespace(pid: &str, kind: &str) -> Option<NsId> {
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/{kind}")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The processes of the box whose state is `record`. `holder_alive` says the record's
/// holder was just seen alive, so its namespaces are the box's; otherwise the recorded
/// namespace counts only when one of its processes proves it belongs to that start of
/// the box, and no process is returned when none does.
pub fn of_box(record: &State, holder_alive: bool) -> Vec<Member> {
    let user_ns = if holder_alive {
        namespace(&record.pid.to_string(), "user").or(record.user_ns)
    } else {
        record.user_ns
    };
    let Some(user_ns) = user_ns else {
        return Vec::new();
    };
    let mnt_ns = if holder_alive {
        namespace(&record.pid.to_string(), "mnt").or(record.mnt_ns)
    } else {
        record.mnt_ns
    };
    let found = in_namespace(user_ns, mnt_ns);
    if holder_alive || found.iter().any(|m| shows_instance(m.pid, record)) {
        found
    } else {
        Vec::new()
    }
}

/// Every process (box's own aside) in the user namespace `user_ns` or nested below it;
/// `in_box_mounts` says which are in the mount namespace `mnt_ns`.
pub fn in_namespace(user_ns: NsId, mnt_ns: Option<NsId>) -> Vec<Member> {
    let me = std::process::id() as i32;
    let own = namespace("self", "user");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let text = pid.to_string();
            let ns = namespace(&text, "user")?;
            let inside = ns == user_ns || (Some(ns) != own && nested_below(&text, user_ns));
            inside.then(|| Member {
                pid,
                in_box_mounts: mnt_ns.is_some() && namespace(&text, "mnt") == mnt_ns,
            })
        })
        .collect()
}

/// Whether the user namespace of process `pid` is nested below `user_ns`.
fn nested_below(pid: &str, user_ns: NsId) -> bool {
    let Ok(file) = std::fs::File::open(format!("/proc/{pid}/ns/user")) else {
        return false;
    };
    let mut current: std::os::fd::OwnedFd = file.into();
    for _ in 0..MAX_NESTING {
        // EPERM once the parent is our own namespace or outside it: not in the box.
        let Ok(parent) = crate::sys::parent_user_namespace(current.as_fd()) else {
            return false;
        };
        let Ok(stat) = rustix::fs::fstat(&parent) else {
            return false;
        };
        if (stat.st_dev, stat.st_ino) == user_ns {
            return true;
        }
        current = parent;
    }
    false
}

/// Whether process `pid` sees the `/run/.containerenv` of the start of the box that
/// `record` describes.
fn shows_instance(pid: i32, record: &State) -> bool {
    let Some(instance) = record.instance.as_deref() else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/root/run/.containerenv"))
        .ok()
        .and_then(|text| crate::host::containerenv_value(&text, "instance"))
        .is_some_and(|seen| seen == instance)
}
