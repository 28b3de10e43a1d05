//! Reading a box's files from the host, safely.
//!
//! A box's root is reached through `/proc/<holder>/root` (or `/` from inside the box
//! itself). Joining a box path onto that and opening it with plain `std::fs` would be
//! wrong: an absolute symlink inside the box (`/usr/bin/foo -> /usr/lib/foo/bin`) would
//! resolve against the *host's* root. Invariant of this module: every box path is opened
//! with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to one directory fd
//! of the box root, so `..` and absolute symlinks stay inside the box and `/proc` magic
//! links cannot jump out of it.
//!
//! [`BoxRoot::own_files`] gives a view that also refuses to cross a mount point
//! (`RESOLVE_NO_XDEV`): only the box's own root filesystem (its image and its changes),
//! never what the box shares with the host, which is all bind-mounted into it (the home,
//! `/tmp`, the runtime directory, `/run/host`, volumes; see `runtime::plan`). Exports
//! that copy a box file to the host (icons) read through it, so a box cannot name,
//! link or `..` its way to the user's own files and have box copy them out.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::HintExt;

/// An open box root: the directory every box path resolves against.
#[derive(Debug)]
pub struct BoxRoot {
    fd: OwnedFd,
    /// Where the root was opened from, for messages.
    origin: PathBuf,
    /// How paths resolve: [`RESOLVE`], plus `NO_XDEV` in [`BoxRoot::own_files`].
    resolve: ResolveFlags,
}

/// What a box path is, after following its symlinks inside the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileType,
    pub mode: u32,
    pub size: u64,
}

impl Meta {
    pub fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }
    pub fn is_file(&self) -> bool {
        self.kind == FileType::RegularFile
    }
    /// A regular file with an execute bit (what `execve` will at least try).
    pub fn is_executable(&self) -> bool {
        self.is_file() && self.mode & 0o111 != 0
    }
}

/// The resolution every box path gets (the same as box's own writes in a box, see
/// [`crate::sys::boxfs`]).
const RESOLVE: ResolveFlags = crate::sys::boxfs::IN_ROOT;

impl BoxRoot {
    /// Open the box root at `path` (a `/proc/PID/root`, `/`, or a test directory).
    pub fn open(path: &Path) -> Result<BoxRoot> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening the box root {}", path.display()))?;
        Ok(BoxRoot {
            fd,
            origin: path.to_owned(),
            resolve: RESOLVE,
        })
    }

    /// The same root, seen only through its own filesystem: a path whose resolution
    /// crosses a mount point (a directory shared with the host, by name, symlink or
    /// `..`) fails with [`Errno::XDEV`] ([`is_shared`] tells that error).
    pub fn own_files(&self) -> Result<BoxRoot> {
        let fd = self
            .fd
            .try_clone()
            .with_context(|| format!("duplicating the box root {}", self.origin.display()))?;
        Ok(BoxRoot {
            fd,
            origin: self.origin.clone(),
            resolve: self.resolve | ResolveFlags::NO_XDEV,
        })
    }

    /// Where this root was opened from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    fn open_at(&self, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        // RESOLVE_IN_ROOT treats an absolute path as relative to the root fd.
        crate::sys::boxfs::open_in(self.fd.as_fd(), Path::new(path), flags, self.resolve)
    }

    /// The metadata of box path `path`, following symlinks inside the box; `None` if it
    /// does not exist (or a component is not a directory).
    pub fn meta(&self, path: &str) -> Result<Option<Meta>> {
        match self.open_at(path, OFlags::PATH) {
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd)
                    .with_context(|| format!("reading the status of {path} in the box"))?;
                Ok(Some(Meta {
                    kind: FileType::from_raw_mode(st.st_mode),
                    mode: st.st_mode & 0o7777,
                    size: st.st_size as u64,
                }))
            }
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok(None),
            Err(err) => Err(std::io::Error::from(err))
                .with_context(|| format!("looking up {path} in the box")),
        }
    }

    /// The contents of regular file `path` in the box, at most `limit` bytes (icons and
    /// desktop files are small; a limit keeps a hostile box from filling memory).
    pub fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        self.read_with_mode(path, limit).map(|(bytes, _)| bytes)
    }

    /// [`BoxRoot::read`], with the file's permission bits (`st_mode & 0o7777`) as
    /// they were when it was opened.
    pub fn read_with_mode(&self, path: &str, limit: u64) -> Result<(Vec<u8>, u32)> {
        let fd = self
            .open_at(path, OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK)
            .map_err(std::io::Error::from)
            .with_context(|| format!("opening {path} in the box"))?;
        let st = rustix::fs::fstat(&fd).with_context(|| format!("reading {path} in the box"))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            anyhow::bail!("{path} in the box is not a regular file");
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(limit)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {path} in the box"))?;
        Ok((bytes, st.st_mode & 0o7777))
    }

    /// The entries of directory `path` in the box (names and types, not following
    /// symlinks), sorted by name; empty if the directory does not exist. One the user
    /// cannot read is an error: it is not the same as an empty one.
    pub fn list(&self, path: &str) -> Result<Vec<(String, FileType)>> {
        let fd = match self.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            // XDEV: a shared directory, seen through `own_files`: none of the box's own.
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => return Ok(vec![]),
            Err(Errno::ACCESS) => {
                return Err(std::io::Error::from(Errno::ACCESS))
                    .with_context(|| format!("reading directory {path} in the box"))
                    .hint(
                        "it is not readable by your user (root's own in the box, say): make it \
                         readable there (`chmod a+rx`), then try again",
                    );
            }
            Err(err) => {
                return Err(std::io::Error::from(err))
                    .with_context(|| format!("opening directory {path} in the box"));
            }
        };
        let dir = rustix::fs::Dir::new(fd)
            .with_context(|| format!("reading directory {path} in the box"))?;
        let mut entries = Vec::new();
        for entry in dir {
            let entry = entry.with_context(|| format!("reading directory {path} in the box"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            entries.push((name, entry.file_type()));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// [`BoxRoot::list`] for what is only nice to have (icons): a directory the user
    /// cannot read is left out like a missing one.
    pub fn list_readable(&self, path: &str) -> Result<Vec<(String, FileType)>> {
        match self.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY) {
            Err(Errno::ACCESS) => Ok(vec![]),
            _ => self.list(path),
        }
    }

    /// Whether `path` is a directory in the box, following symlinks inside it.
    pub fn is_dir(&self, path: &str) -> bool {
        self.meta(path).ok().flatten().is_some_and(|m| m.is_dir())
    }
}

/// Whether `err` (from [`BoxRoot::meta`] or [`BoxRoot::read`] of an
/// [`BoxRoot::own_files`] view) says the path leads out of the box's own filesystem.
pub fn is_shared(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(Errno::XDEV.raw_os_error()))
    })
}

/// Join a box directory and a name with exactly one slash.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn absolute_symlinks_resolve_inside_the_box() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/foo")).unwrap();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/lib/foo/bin"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            root.join("usr/lib/foo/bin"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("/usr/lib/foo/bin", root.join("usr/bin/foo")).unwrap();
        // A link to a host path that exists on the host but not in the box.
        symlink("/etc/passwd", root.join("usr/bin/passwd-link")).unwrap();
        symlink("../../../../../../etc/passwd", root.join("usr/bin/dotdot")).unwrap();

        let boxed = BoxRoot::open(root).unwrap();
        let meta = boxed.meta("/usr/bin/foo").unwrap().unwrap();
        assert!(meta.is_executable());
        assert_eq!(boxed.read("/usr/bin/foo", 100).unwrap(), b"#!/bin/sh\n");
        assert!(boxed.meta("/usr/bin/passwd-link").unwrap().is_none());
        assert!(boxed.meta("/usr/bin/dotdot").unwrap().is_none());
        assert!(boxed.meta("/nope/x").unwrap().is_none());
        let names: Vec<_> = boxed
            .list("/usr/bin")
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["dotdot", "foo", "passwd-link"]);
        assert!(boxed.list("/missing").unwrap().is_empty());
    }
}
