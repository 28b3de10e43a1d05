//! The files box writes in a box, some of which follow the host's: applies the plan's
//! [`BoxFile`]s inside the box (after the pivot: `/` is the box, `/run/host` the host),
//! and applies the host-following ones again whenever a host file they watch changes, for
//! as long as the box runs (the holder watches the directories of those files, through
//! `/run/host`, with inotify(7): the host's `/etc`, the X authority file's directory).
//! Which host files a file watches is the integration's word (see
//! [`super::plan::integrations`]).
//!
//! Invariants:
//! - every file is written through [`BoxFs`], the box's own filesystems by descriptor
//!   (see [`crate::sys::boxfs`]): a symlink the image placed at a file's name or on its
//!   way never leads box out of the box, into the home or `/tmp` it shares;
//! - a link never names a path that only makes sense on the host: the host's own
//!   symlinks (`/etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf`) are resolved
//!   as the host resolves them, inside `/run/host`, and the link in the box names the
//!   result; links (not copies, not binds) make later replacements of the target by the
//!   host (resolvconf, a dbus restart, xauth) visible at once;
//! - files and links box writes are replaced by a rename, so no program in the box reads
//!   half a file;
//! - a host file that is missing or unreadable is no reason to refuse a start: the box
//!   gets what can be made of it (the host's hosts file without its lines, an empty X
//!   authority file), and the next change of the host's file is picked up.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::plan::{BoxFile, FileOp};
use crate::sys::boxfs::BoxFs;

/// The host's root inside a box.
const HOST_ROOT: &str = crate::host::fs::HOST_ROOT_IN_BOX;

/// Apply `files` (all of a starting box's, or the host-following ones) in the box `fs`;
/// the first failure names the file.
pub fn apply_all<'a>(fs: &BoxFs, files: impl IntoIterator<Item = &'a BoxFile>) -> Result<()> {
    for file in files {
        let op = &file.op;
        apply(fs, op).with_context(|| format!("writing {} in the box", target(op).display()))?;
    }
    Ok(())
}

/// The file an op writes in the box.
fn target(op: &FileOp) -> &Path {
    match op {
        FileOp::Write { path, .. } | FileOp::FollowHost { path, .. } => path,
        FileOp::HostsWithName { .. } => Path::new("/etc/hosts"),
        FileOp::Localtime { .. } => Path::new("/etc/localtime"),
        FileOp::XauthorityCopy { path, .. } => path,
    }
}

/// The inotify instance a box's holder will watch the host's files with, when `files`
/// follow any; made by the process that starts the holder, which passes it to the holder
/// and to the box's other host-side process (the host end of `box host-exec`), which
/// only keeps it open.
///
/// Why: the last close of an inotify instance with watches waits for the kernel's
/// fsnotify grace period (an SRCU grace period, up to 15 ms here), and the holder's exit
/// is what `box stop` waits for. With a second reference held outside the box, the
/// holder's exit does not close the instance; the host end's exit, which nobody waits
/// for, does.
pub fn new_watch(files: &[BoxFile]) -> Option<std::os::fd::OwnedFd> {
    use rustix::fs::inotify;
    files
        .iter()
        .any(BoxFile::follows_host)
        .then(|| inotify::init(inotify::CreateFlags::CLOEXEC).ok())
        .flatten()
}

/// Keep the host-following files current until the process is killed: apply them again
/// after every change of an entry of the host they watch (created, written, renamed onto,
/// deleted: `xauth` and resolvconf replace their files by rename). Never returns.
/// Watches with `watch` ([`new_watch`]) when given one, else with an instance of its own.
/// Without inotify (a kernel built without it, the watch limit reached) it only sleeps.
pub fn keep_current(fs: &BoxFs, files: &[BoxFile], watch: Option<std::os::fd::OwnedFd>) -> ! {
    use rustix::fs::inotify;
    let following: Vec<&BoxFile> = files.iter().filter(|f| f.follows_host()).collect();
    let (dirs, names) = watched(&following);
    let watch = (!following.is_empty())
        .then(|| watch.or_else(|| inotify::init(inotify::CreateFlags::CLOEXEC).ok()))
        .flatten()
        .filter(|fd| {
            let flags = inotify::WatchFlags::CLOSE_WRITE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::CREATE
                | inotify::WatchFlags::DELETE
                | inotify::WatchFlags::ONLYDIR;
            // Every directory that can be watched; none at all means nothing to wait for.
            dirs.iter()
                .filter(|dir| inotify::add_watch(fd, dir.as_path(), flags).is_ok())
                .count()
                > 0
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
                            .is_some_and(|n| names.iter().any(|w| w.as_bytes() == n.to_bytes()));
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
            if reader.is_buffer_empty() {
                break;
            }
        }
        if changed {
            for file in &following {
                // Best effort: the holder has nobody to tell, and the next change retries.
                let _ = apply(fs, &file.op);
            }
        }
    }
}

/// The directories to watch (inside the box, through `/run/host`) and the entry names in
/// them that matter, for the host files `files` watch. A change of a name in any watched
/// directory counts: the rare false alarm costs one more round of rewriting nothing.
fn watched(files: &[&BoxFile]) -> (Vec<PathBuf>, Vec<std::ffi::OsString>) {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut names = Vec::new();
    for file in files.iter().flat_map(|f| &f.watch) {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            continue;
        };
        let dir = Path::new(HOST_ROOT).join(dir.strip_prefix("/").unwrap_or(dir));
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    (dirs, names)
}

/// Carry out one op in the box `fs`.
pub fn apply(fs: &BoxFs, op: &FileOp) -> Result<()> {
    let in_dir = |path: &Path| match path.parent() {
        Some(dir) => fs.create_dir_all(dir, 0o755).map(drop),
        None => Ok(()),
    };
    match op {
        FileOp::Write {
            path,
            content,
            mode,
        } => {
            in_dir(path)?;
            fs.write(path, content.as_bytes(), *mode, None)?;
        }
        FileOp::FollowHost { path, host_path } => {
            in_dir(path)?;
            fs.symlink(path, &host_real_path(host_path))?;
        }
        FileOp::HostsWithName {
            host_path,
            hostname,
        } => {
            let text = std::fs::read_to_string(host_real_path(host_path)).unwrap_or_default();
            replace_with_bytes(
                fs,
                Path::new("/etc/hosts"),
                hosts_with_name(text, hostname).as_bytes(),
                0o644,
                None,
            )?;
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
            // (What leads out of the box's own files is not the box's own.)
            let in_box = zone
                .as_ref()
                .map(|z| Path::new("/usr/share/zoneinfo").join(z))
                .filter(|p| fs.is_file(p).unwrap_or(false));
            fs.symlink(
                Path::new("/etc/localtime"),
                in_box.as_deref().unwrap_or(&real),
            )?;
            // Debian's tools read /etc/timezone; keep it in step when the box has one.
            let timezone = Path::new("/etc/timezone");
            if let Some(zone) = zone
                && fs.is_file(timezone).unwrap_or(false)
                && fs
                    .read(timezone, 4096)
                    .is_ok_and(|t| t.is_some_and(|t| String::from_utf8_lossy(&t).trim() != zone))
            {
                replace_with_bytes(fs, timezone, format!("{zone}\n").as_bytes(), 0o644, None)?;
            }
        }
        FileOp::XauthorityCopy {
            path,
            host_path,
            hostname,
            owner,
        } => {
            // A missing or damaged file gives no cookie rather than no box.
            let entries = std::fs::read(host_real_path(host_path))
                .ok()
                .and_then(|bytes| crate::host::xauth::parse(&bytes).ok())
                .unwrap_or_default();
            let content =
                crate::host::xauth::write(&crate::host::xauth::wildcard_copy(&entries, hostname));
            in_dir(path)?;
            replace_with_bytes(fs, path, &content, 0o600, Some(*owner))?;
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
/// [`crate::host::fs`]). When it does not exist (it dangles on the host too), the plain
/// `/run/host` path, which starts working once the host creates the file.
fn host_real_path(host_path: &Path) -> PathBuf {
    crate::host::fs::HostFs::at(Path::new(HOST_ROOT))
        .dir(host_path)
        .unwrap_or_else(|_| {
            Path::new(HOST_ROOT).join(host_path.strip_prefix("/").unwrap_or(host_path))
        })
}

/// Replace `path` with a regular file of `mode` (and `owner`, uid and gid, when given)
/// holding `content` atomically, unless it already is one holding exactly that.
fn replace_with_bytes(
    fs: &BoxFs,
    path: &Path,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let limit = content.len() as u64 + 1;
    if fs
        .read_no_follow(path, limit)
        .is_ok_and(|old| old.as_deref() == Some(content))
    {
        return Ok(());
    }
    fs.write(path, content, mode, owner)
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
    fn the_directories_of_the_host_files_read_are_watched() {
        let files = [
            BoxFile {
                op: FileOp::Localtime {
                    host_path: "/etc/localtime".into(),
                },
                watch: vec!["/etc/localtime".into(), "/etc/timezone".into()],
            },
            BoxFile {
                op: FileOp::XauthorityCopy {
                    path: "/run/box/xauthority".into(),
                    host_path: "/home/u/.Xauthority".into(),
                    hostname: "h".into(),
                    owner: (1000, 1000),
                },
                watch: vec!["/home/u/.Xauthority".into()],
            },
        ];
        let (dirs, names) = watched(&files.iter().collect::<Vec<_>>());
        assert_eq!(
            dirs,
            [Path::new("/run/host/etc"), Path::new("/run/host/home/u")]
        );
        assert_eq!(names, ["localtime", "timezone", ".Xauthority"]);
    }
}
