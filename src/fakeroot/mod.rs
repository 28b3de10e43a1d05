//! Root in a box without subordinate ids: box's *fake root*.
//!
//! Such a box's user namespace maps one id, the user's own (see [`crate::sys::idmap`]), so
//! it has no uid 0 and the image's sudo (a setuid file that is the user's there) cannot
//! work. [`become_fake_root`] makes the calling process root anyway, the way enroot's
//! `--root` does: it unshares a user namespace *nested in the box's* that maps 0 to the
//! user's id (the process writes its own `uid_map`, `setgroups` = deny and `gid_map`,
//! which user_namespaces(7) allows the namespace's creator for its own ids: no
//! newuidmap), so the process is uid 0 with a full capability set in that namespace;
//! then it installs the [`crate::fakeroot::seccomp`] filter that turns the ownership and identity
//! changes that cannot succeed with one mapped id into successful no-ops, so dpkg, apt,
//! useradd and maintainer scripts get through. The caller then execs the command.
//!
//! Invariants:
//! - it grants nothing the user does not have on the host. The nested namespace maps
//!   nothing but the user's id, and capabilities in a user namespace act only on objects
//!   that namespace owns or whose ids it maps (user_namespaces(7), capabilities(7)): files
//!   of root or of another user (seen through `/run/host`) stay out of reach, the box's
//!   mount namespace belongs to the box's user namespace (mount(2) fails with EPERM), and
//!   the seccomp filter only ever answers calls with "success, nothing done";
//! - every file it writes is the user's (there is no other id to write it as), and a
//!   faked `chown` leaves it so;
//! - the box's mount namespace, home, sockets and cwd stay the same: a new user namespace
//!   alone changes none of them;
//! - no_new_privs is set (seccomp(2) requires it of an unprivileged caller), so nothing
//!   executed later gains privileges through setuid bits or file capabilities;
//! - the process must be single-threaded (unshare(2) fails with EINVAL for a user
//!   namespace otherwise) and have joined the box's user and mount namespaces as the
//!   user; the cost is a few syscalls, on the fake root's path only (box run/enter of a
//!   box with subordinate ids never comes here).
//!
//! apt drops to its `_apt` user for downloads and then checks the drop with getresuid
//! (`APT::Sandbox::Verify::IDs`, on by default). A stateless filter cannot make getresuid
//! report an id it never set, and with one id there is no second user to protect root
//! from anyway; so [`become_fake_root`] makes sure the box's apt is told
//! `APT::Sandbox::User "root"` ([`APT_CONF`]), as enroot does for its root. (Checked with
//! the Debian fixture: `sudo apt-get -o APT::Sandbox::User=_apt update` has its http
//! method fail with "Could not switch group"; with the setting, apt runs.)

pub mod seccomp;
pub mod sudo;

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::error::{HintExt, failure};
use crate::sys::boxfs::BoxFs;

/// The apt setting a box without subordinate ids needs for its fake root (module docs).
pub const APT_CONF: &str = "/etc/apt/apt.conf.d/99box-fakeroot";
const APT_CONF_TEXT: &str = "// Written by box: this box maps only your own user id (no subordinate ids), so root in\n\
// it is box's fake root and there is no second user for apt's download sandbox.\n\
APT::Sandbox::User \"root\";\n";

/// Make the calling process box's fake root: uid and gid 0 in a user namespace nested in
/// the current one, mapped to the caller's effective ids, with the seccomp filter of
/// [`crate::fakeroot::seccomp`] installed (module docs). On success the caller execs the command;
/// the filter and the namespace stay with it and everything it starts.
///
/// State the caller must be in: single-threaded, inside a box (joined its user and mount
/// namespaces) as the user, not root there. Errors name what the kernel lacks (user
/// namespaces, seccomp filters) with a hint.
pub fn become_fake_root() -> Result<()> {
    nested_root()?;
    tell_apt();
    crate::fakeroot::seccomp::install()
}

/// The namespace half of [`become_fake_root`]: uid and gid 0 in a new user namespace
/// nested in the current one, mapped to the caller's effective ids (`box doctor` checks
/// the kernel allows it, then installs the filter, without touching a box's apt).
pub fn nested_root() -> Result<()> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    crate::sys::unshare_namespaces(rustix::thread::UnshareFlags::NEWUSER)
        .map_err(|e| unshare_failed(&e))?;
    map_self(uid, gid)
}

/// Write the nested namespace's maps: 0 → `uid`/`gid` (the ids of the box's namespace).
/// gid_map can be written by an unprivileged creator only after setgroups is denied
/// (user_namespaces(7), CVE-2014-8989).
fn map_self(uid: u32, gid: u32) -> Result<()> {
    let write = |file: &str, text: String| {
        let path = format!("/proc/self/{file}");
        // One write(2): the kernel takes a map in a single write only.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| format!("writing {text:?} to {path}"))
            .hint("box's fake root maps your own id to root in a nested user namespace; the kernel refused it")
    };
    write("setgroups", "deny\n".into())?;
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("gid_map", format!("0 {gid} 1\n"))
}

/// The error of a failed unshare(CLONE_NEWUSER), naming what is missing.
fn unshare_failed(err: &std::io::Error) -> anyhow::Error {
    let (what, hint) = match err.raw_os_error() {
        Some(libc::EINVAL) => (
            "the kernel has no user namespaces (or box was called with threads running)",
            "box's fake root needs a kernel built with CONFIG_USER_NS; or give your user subordinate ids so boxes have a real root",
        ),
        Some(libc::ENOSPC) | Some(libc::EUSERS) => (
            "the limit of user namespaces is reached",
            "raise the sysctl user.max_user_namespaces (0 disables them), or end some containers; a user namespace nests at most 32 deep",
        ),
        Some(libc::EPERM) | Some(libc::EACCES) => (
            "the kernel does not allow unprivileged user namespaces here",
            "check the sysctls kernel.unprivileged_userns_clone and kernel.apparmor_restrict_unprivileged_userns, and any seccomp filter the box runs under",
        ),
        _ => (
            "the kernel refused a new user namespace",
            "box's fake root needs unprivileged user namespaces",
        ),
    };
    failure(
        format!("cannot become root in this box: {what} (unshare(CLONE_NEWUSER): {err})"),
        hint,
    )
}

/// Make sure the box's apt does not try to drop to `_apt` (module docs). Best effort: a
/// box without apt has no `/etc/apt/apt.conf.d`, and a failure only means apt says why.
/// Written in the box's own files ([`BoxFs`]: never through a symlink of the image into
/// the home or `/tmp` the box shares with the host).
fn tell_apt() {
    let written = BoxFs::of_this_root().and_then(|fs| {
        let path = Path::new(APT_CONF);
        let dir = path.parent().expect("APT_CONF has a directory");
        if !fs.is_dir(dir)? {
            return Ok(());
        }
        let text = APT_CONF_TEXT.as_bytes();
        if fs.read_no_follow(path, text.len() as u64 + 1)?.as_deref() == Some(text) {
            return Ok(());
        }
        fs.write(path, text, 0o644, None)
    });
    if let Err(err) = written {
        crate::ui::report::warn(format!(
            "could not write {APT_CONF} ({}): apt may fail to drop to its _apt user",
            crate::error::message(&err)
        ));
    }
}

/// Whether this process's user namespace maps exactly one user id: a box without
/// subordinate ids (`/proc/self/uid_map` has one line of count 1).
pub fn maps_one_id() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|text| one_id(&text))
}

fn one_id(uid_map: &str) -> bool {
    let lines: Vec<&str> = uid_map.lines().filter(|l| !l.trim().is_empty()).collect();
    matches!(lines.as_slice(), [line] if line.split_whitespace().nth(2) == Some("1"))
}

/// What `--dry-run` says about root in a box without subordinate ids.
pub fn describe(uid: u32, gid: u32) -> String {
    format!(
        "root inside: box's fake root (`sudo`, provisioning): a user namespace nested in the box's, \
         uid map 0->{uid}+1, gid map 0->{gid}+1 (setgroups deny), no_new_privs, and this seccomp filter:\n{}\n  \
         apt: {APT_CONF} sets APT::Sandbox::User \"root\" (no second user to download as)",
        crate::fakeroot::seccomp::Description
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mapped_id_is_told_from_keep_id_and_root() {
        assert!(one_id("      1001       1001          1\n"));
        assert!(!one_id(
            "         0     100000       1001\n      1001       1001          1\n      1002     101001      64534\n"
        ));
        assert!(!one_id("         0          0 4294967295\n"));
        assert!(!one_id(""));
    }

    #[test]
    fn a_refused_user_namespace_names_the_sysctl() {
        let err = unshare_failed(&std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(crate::error::message(&err).contains("limit of user namespaces"));
        let hint = &err.downcast_ref::<crate::error::Hint>().unwrap().0;
        assert!(hint.contains("user.max_user_namespaces"), "{hint}");
        let err = unshare_failed(&std::io::Error::from_raw_os_error(libc::EPERM));
        let hint = &err.downcast_ref::<crate::error::Hint>().unwrap().0;
        assert!(hint.contains("unprivileged_userns_clone"), "{hint}");
    }
}
