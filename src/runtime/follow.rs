//! The files box writes in a box, some of which follow the host's: applies the plan's
//! [`FileOp`]s inside the box (after the pivot: `/` is the box, `/run/host` the host),
//! and applies the host-following ones again whenever the host's `/etc` changes, for as
//! long as the box runs (the holder watches `/run/host/etc` with inotify(7)).
//!
//! Invariants:
//! - a link never names a path that only makes sense on the host: the host's own
//!   symlinks (`/etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf`) are resolved
//!   as the host resolves them, inside `/run/host`, and the link in the box names the
//!   result; links (not copies, not binds) make later replacements of the target by the
//!   host (resolvconf, a dbus restart, xauth) visible at once;
//! - files box rewrites (`/etc/hosts` with the box's own hostname) are replaced by a
//!   rename, so no program in the box reads half a file.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::plan::FileOp;

/// The host's root inside a box.
const HOST_ROOT: &str = crate::hostfs::HOST_ROOT_IN_BOX;

/// The entries of the host's `/etc` that the host-following ops read.
const WATCHED: &[&str] = &["hosts", "resolv.conf", "localtime", "timezone"];

/// Apply `ops` (all of a starting box's, or the host-following ones); the first failure
/// names the file.
pub fn apply_all<'a>(ops: impl IntoIterator<Item = &'a FileOp>) -> Result<()> {
    for op in ops {
        apply(op).with_context(|| format!("writing {} in the box", target(op).display()))?;
    }
    Ok(())
}

/// The file an op writes in the box.
fn target(op: &FileOp) -> &Path {
    match op {
        FileOp::Write { path, .. } | FileOp::FollowHost { path, .. } => path,
        FileOp::HostsWithName { .. } => Path::new("/etc/hosts"),
        FileOp::Localtime { .. } => Path::new("/etc/localtime"),
    }
}

/// Keep the host-following ops current until the process is killed: apply them again
/// after every change of the host's `/etc` entries they read. Never returns. Without
/// inotify (a kernel built without it, the watch limit reached) it only sleeps.
pub fn keep_current(ops: &[FileOp]) -> ! {
    use rustix::fs::inotify;
    let following: Vec<&FileOp> = ops.iter().filter(|op| op.follows_host()).collect();
    let watch = (!following.is_empty())
        .then(|| inotify::init(inotify::CreateFlags::CLOEXEC).ok())
        .flatten()
        .filter(|fd| {
            let flags = inotify::WatchFlags::CLOSE_WRITE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::CREATE
                | inotify::WatchFlags::DELETE
                | inotify::WatchFlags::ONLYDIR;
            inotify::add_watch(fd, Path::new(HOST_ROOT).join("etc"), flags).is_ok()
        });
    let Some(fd) = watch else {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600 * 24));
        }
    };
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    loop {
        let mut reader = inotify::Reader::new(&fd, &mut buf);
        let mut changed = false;
        // One blocking read, then whatever else that read returned.
        loop {
            match reader.next() {
                Ok(event) => {
                    changed |= event.events().contains(inotify::ReadFlags::QUEUE_OVERFLOW)
                        || event
                            .file_name()
                            .is_some_and(|n| WATCHED.iter().any(|w| w.as_bytes() == n.to_bytes()));
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
            if reader.is_buffer_empty() {
                break;
            }
        }
        if changed {
            for op in &following {
                // Best effort: the holder has nobody to tell, and the next change retries.
                let _ = apply(op);
            }
        }
    }
}

/// Carry out one op.
pub fn apply(op: &FileOp) -> Result<()> {
    match op {
        FileOp::Write {
            path,
            content,
            mode,
        } => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let _ = std::fs::remove_file(path);
            std::fs::write(path, content)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
        }
        FileOp::FollowHost { path, host_path } => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            replace_with_symlink(path, &host_real_path(host_path))?;
        }
        FileOp::HostsWithName {
            host_path,
            hostname,
        } => {
            let text = std::fs::read_to_string(host_real_path(host_path)).unwrap_or_default();
            replace_with_file(Path::new("/etc/hosts"), &hosts_with_name(text, hostname))?;
        }
        FileOp::Localtime { host_path } => {
            let real = host_real_path(host_path);
            let zone = crate::host::zone_name(&real).or_else(|| {
                let text = std::fs::read_to_string(host_real_path(Path::new("/etc/timezone")));
                text.ok()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
            });
            // The box's own zone file when it has one: its programs expect their tzdata.
            let in_box = zone
                .as_ref()
                .map(|z| Path::new("/usr/share/zoneinfo").join(z))
                .filter(|p| p.is_file());
            replace_with_symlink(
                Path::new("/etc/localtime"),
                in_box.as_deref().unwrap_or(&real),
            )?;
            // Debian's tools read /etc/timezone; keep it in step when the box has one.
            let timezone = Path::new("/etc/timezone");
            if let Some(zone) = zone
                && timezone.is_file()
                && std::fs::read_to_string(timezone).is_ok_and(|t| t.trim() != zone)
            {
                replace_with_file(timezone, &format!("{zone}\n"))?;
            }
        }
    }
    Ok(())
}

/// `text` (a hosts file) with a line for `hostname` when no line names it yet.
pub fn hosts_with_name(mut text: String, hostname: &str) -> String {
    let named = text.lines().any(|l| {
        !l.trim_start().starts_with('#') && l.split_whitespace().skip(1).any(|n| n == hostname)
    });
    if !named {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    text
}

/// Where the host's `host_path` really is, seen from inside the box: resolved in
/// `/run/host` as the host resolves it (absolute symlinks stay in the host's root, see
/// [`crate::hostfs`]). When it does not exist (it dangles on the host too), the plain
/// `/run/host` path, which starts working once the host creates the file.
fn host_real_path(host_path: &Path) -> PathBuf {
    crate::hostfs::HostFs::at(Path::new(HOST_ROOT))
        .dir(host_path)
        .unwrap_or_else(|_| {
            Path::new(HOST_ROOT).join(host_path.strip_prefix("/").unwrap_or(host_path))
        })
}

/// Replace `path` with a symlink to `target` atomically (rename over the old entry).
fn replace_with_symlink(path: &Path, target: &Path) -> Result<()> {
    if std::fs::read_link(path).is_ok_and(|t| t == target) {
        return Ok(());
    }
    let tmp = sibling(path, "box-link");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// Replace `path` with a regular file holding `content` atomically, unless it already
/// holds exactly that.
fn replace_with_file(path: &Path, content: &str) -> Result<()> {
    if !path.is_symlink() && std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    let tmp = sibling(path, "box-new");
    std::fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// `path` with `.suffix` added to its file name (a scratch name in the same directory).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or(OsStr::new("file")).to_owned();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hostname_line_is_added_once() {
        let host = "127.0.0.1\tlocalhost\n# 127.0.1.1 devbox\n".to_owned();
        let once = hosts_with_name(host, "devbox");
        assert!(once.ends_with("127.0.1.1\tdevbox\n"), "{once}");
        assert_eq!(hosts_with_name(once.clone(), "devbox"), once);
        assert_eq!(
            hosts_with_name("127.0.0.1 localhost".into(), "b"),
            "127.0.0.1 localhost\n127.0.1.1\tb\n"
        );
    }

    #[test]
    fn scratch_names_sit_beside_the_file() {
        assert_eq!(
            sibling(Path::new("/etc/resolv.conf"), "box-link"),
            Path::new("/etc/resolv.conf.box-link")
        );
    }
}
