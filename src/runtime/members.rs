//! Which processes belong to a box: those in its user namespace or in a user namespace
//! nested below it, whatever mount namespace they moved to (`unshare -m`, bwrap or
//! flatpak run in a box). They all keep the box's overlay mounted, so `box stop` must end
//! them all and `box rm` must count them as a running box.
//!
//! A namespace is named by the (device, inode) of its `/proc/PID/ns/user` link, and the
//! kernel hands the same number to a new namespace once the old one is gone. So a
//! recorded number is trusted only
//! - while the holder recorded with it is alive (pid and start time), or
//! - when a process in that namespace proves it belongs to the box (the holder died:
//!   OOM, kill -9; the record also has to come from this boot, see `state`): it sees the
//!   box's own `/run/.containerenv` with the instance id of that start, or, when it hid
//!   `/run` under a mount of its own (bwrap, flatpak), its mount table still holds the
//!   box's overlay (a mount from the box's directory in the store).
//!
//! Reading another process's namespace links and root needs PTRACE_MODE_READ, which the
//! owner of a user namespace has over every process inside it (user_namespaces(7)), even
//! those running as subordinate ids; other users' processes are simply not readable.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A namespace: (device, inode) of its nsfs link.
pub type NsId = (u64, u64);

/// How deep box looks for a box's user namespace above a process's own (the kernel
/// allows 32 levels of nesting).
const MAX_NESTING: usize = 32;

/// What tells one start of a box from others, as its runtime state recorded it: its
/// namespaces, the instance id in its `/run/.containerenv`, and its directory in the
/// store (its overlay's mounts are from there).
#[derive(Debug, Clone, Copy)]
pub struct Start<'a> {
    pub user_ns: Option<NsId>,
    pub mnt_ns: Option<NsId>,
    pub uts_ns: Option<NsId>,
    pub instance: Option<&'a str>,
    pub box_dir: &'a Path,
}

/// A process of a box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub pid: i32,
    /// Whether it is in the box's own user, mount and UTS namespaces (the holder's), so
    /// that a new holder may join its namespaces.
    pub joinable: bool,
}

/// The namespace `kind` (`user`, `mnt`) of process `pid` (a number or `self`).
pub fn namespace(pid: &str, kind: &str) -> Option<NsId> {
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/{kind}")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// For each start of a box whose holder has died, the processes left in
/// it, with one pass over /proc for all of them (`box list`, `box stop --all`). The
/// recorded namespaces count only when one of their processes proves it belongs to that
/// start of the box; none is returned for a box where none does. (While the holder lives,
/// its namespaces are the box's: see `stop`.)
pub fn left_in_boxes(boxes: &[Start<'_>]) -> Vec<Vec<Member>> {
    let mut found: Vec<Vec<Member>> = boxes.iter().map(|_| Vec::new()).collect();
    // Only the boxes whose user namespace is known can have processes found.
    let (index_of, user_nss): (Vec<usize>, Vec<NsId>) = boxes
        .iter()
        .enumerate()
        .filter_map(|(i, start)| Some((i, start.user_ns?)))
        .unzip();
    if user_nss.is_empty() {
        return found;
    }
    for (ns_index, pid) in in_user_namespaces(&user_nss) {
        let box_index = index_of[ns_index];
        let record = &boxes[box_index];
        let text = pid.to_string();
        let joinable = namespace(&text, "user") == Some(user_nss[ns_index])
            && record.mnt_ns.is_some()
            && namespace(&text, "mnt") == record.mnt_ns
            && record
                .uts_ns
                .is_none_or(|uts| namespace(&text, "uts") == Some(uts));
        found[box_index].push(Member { pid, joinable });
    }
    for (members, start) in found.iter_mut().zip(boxes) {
        if !members
            .iter()
            .any(|m| shows_instance(m.pid, start) || mounts_box(m.pid, start.box_dir))
        {
            members.clear();
        }
    }
    found
}

/// Every process (box's own aside) in one of the user namespaces `user_nss` or nested
/// below one, with the index of its namespace: one pass over /proc for many boxes
/// (`box stop --all`).
pub fn in_user_namespaces(user_nss: &[NsId]) -> Vec<(usize, i32)> {
    let me = std::process::id() as i32;
    let own = namespace("self", "user");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| Some((box_index(pid, user_nss, own)?, pid)))
        .collect()
}

/// Which of `user_nss` process `pid` is in or below, if any (a second look at one pid).
pub fn in_user_namespaces_pid(pid: i32, user_nss: &[NsId]) -> Option<usize> {
    box_index(pid, user_nss, namespace("self", "user"))
}

/// Which of `user_nss` process `pid` is in or below; processes in box's own user
/// namespace `own` are in none (no need to walk up from there).
fn box_index(pid: i32, user_nss: &[NsId], own: Option<NsId>) -> Option<usize> {
    let text = pid.to_string();
    let user = namespace(&text, "user")?;
    match user_nss.iter().position(|ns| *ns == user) {
        Some(index) => Some(index),
        None if Some(user) != own => nested_below_one_of(&text, user_nss),
        None => None,
    }
}

/// Which of `user_nss` the user namespace of process `pid` is nested below, if any.
fn nested_below_one_of(pid: &str, user_nss: &[NsId]) -> Option<usize> {
    let file = std::fs::File::open(format!("/proc/{pid}/ns/user")).ok()?;
    let mut current: std::os::fd::OwnedFd = file.into();
    for _ in 0..MAX_NESTING {
        // EPERM once the parent is our own namespace or outside it: not in a box.
        let parent = crate::sys::parent_user_namespace(current.as_fd()).ok()?;
        let stat = rustix::fs::fstat(&parent).ok()?;
        if let Some(index) = user_nss
            .iter()
            .position(|ns| *ns == (stat.st_dev, stat.st_ino))
        {
            return Some(index);
        }
        current = parent;
    }
    None
}

/// Whether the mount table of process `pid` holds a mount from the box's directory in the
/// store (its overlay's upper directory, or its copy bound onto itself).
fn mounts_box(pid: i32, box_dir: &Path) -> bool {
    // mountinfo escapes space, tab, newline and backslash as octal (proc_pid_mountinfo(5)).
    let mut needle = String::new();
    for c in box_dir.to_string_lossy().chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => needle.push_str(&format!("\\{:03o}", c as u32)),
            c => needle.push(c),
        }
    }
    needle.push('/');
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .is_ok_and(|table| table.contains(&needle))
}

/// Whether process `pid` sees the `/run/.containerenv` of the start of the box that
/// `start` describes.
fn shows_instance(pid: i32, start: &Start<'_>) -> bool {
    let Some(instance) = start.instance else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/root/run/.containerenv"))
        .ok()
        .and_then(|text| crate::host::containerenv_value(&text, "instance"))
        .is_some_and(|seen| seen == instance)
}
