//! Reaching the host's files from where box runs: the host itself, or inside a box.
//!
//! Exports are for the host: a wrapper in `--export-path DIR`, an entry in
//! `$XDG_DATA_HOME/applications`, the registry in the store are all *host paths*, from
//! inside a box too (the user's environment, HOME and XDG variables included, comes from
//! the host). Inside a box the host's root is at `/run/host` (a recursive clone of the
//! host's mount tree, see `runtime::plan`), so a host path is reached there; writing to
//! the same path in the box would land in the box's own `/var/tmp` or `/usr/local/bin`
//! and silently miss the host.
//!
//! Invariants:
//! - Every path box records or prints is a host path; [`HostFs::dir`] and
//!   [`HostFs::file`] give where this process reaches it, with the host's symlinks
//!   resolved as on the host (exports, and the files a holder keeps following the host's
//!   in `runtime::follow`). Only `box run`'s working directory joins a path onto
//!   `/run/host` without them: a plain chdir, on the hot path.
//! - Inside a box, a host path is resolved with `openat2(RESOLVE_IN_ROOT)` relative to
//!   `/run/host`, so an absolute symlink on the host (`~/.local/bin -> /opt/bin`) means
//!   the host's `/opt/bin`, not the box's. [`HostFs::file`] never follows the last
//!   component: a symlink at a wrapper's path is looked at, not through.
//! - On the host both are the identity: no syscall.

use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::failure;

/// Where this process reaches the host's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFs {
    /// `None` on the host; the directory holding the host's root otherwise.
    root: Option<PathBuf>,
}

/// Where the host's root is inside a box.
pub const HOST_ROOT_IN_BOX: &str = "/run/host";

impl HostFs {
    /// On the host: host paths are local paths.
    pub const fn native() -> HostFs {
        HostFs { root: None }
    }

    /// The host's root at `root` (`/run/host` inside a box; a test directory).
    pub fn at(root: &Path) -> HostFs {
        HostFs {
            root: Some(root.to_owned()),
        }
    }

    /// For this process: through `/run/host` inside a box, else native.
    pub fn current() -> HostFs {
        if crate::host::containerenv_box().is_some() {
            HostFs::at(Path::new(HOST_ROOT_IN_BOX))
        } else {
            HostFs::native()
        }
    }

    /// Whether host paths are reached through another root (inside a box).
    pub fn is_remote(&self) -> bool {
        self.root.is_some()
    }

    /// Where this process reaches host directory `path` (absolute), symlinks in it
    /// resolved on the host. Components that do not exist yet are appended as they are.
    pub fn dir(&self, path: &Path) -> Result<PathBuf> {
        let Some(root) = &self.root else {
            return Ok(path.to_owned());
        };
        let root_fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening the host's root at {}", root.display()))?;
        // The deepest part of `path` that exists on the host, and what is left below.
        let components: Vec<Component> = path.components().collect();
        for split in (0..=components.len()).rev() {
            let (existing, rest) = components.split_at(split);
            let relative: PathBuf = existing
                .iter()
                .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
                .collect();
            let relative = if relative.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                relative
            };
            let Ok(fd) = rustix::fs::openat2(
                &root_fd,
                &relative,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) else {
                continue;
            };
            if rest.contains(&Component::ParentDir) {
                // `..` below a directory that does not exist yet has no meaning on the host.
                return Err(failure(
                    format!(
                        "{} has `..` below a directory that does not exist",
                        path.display()
                    ),
                    "give the path without `..`",
                ));
            }
            // The kernel's name of what was opened, as this process sees it:
            // `/run/host/...` with every symlink of the host resolved.
            let mut local = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .with_context(|| format!("resolving {} on the host", path.display()))?;
            // RESOLVE_IN_ROOT keeps the walk below the root; a name outside it would be
            // the kernel's "(unreachable)" or a deleted directory: nothing to write to.
            let canonical_root = std::fs::canonicalize(root)
                .with_context(|| format!("resolving {}", root.display()))?;
            if !local.starts_with(&canonical_root) {
                return Err(failure(
                    format!("cannot reach {} on the host from here", path.display()),
                    "run `box export` on the host instead",
                ));
            }
            local.extend(rest);
            return Ok(local);
        }
        Err(failure(
            format!("cannot reach the host's root at {}", root.display()),
            "run `box export` on the host instead",
        ))
    }

    /// Where this process reaches host file `path`: its directory resolved as
    /// [`HostFs::dir`] does, its own name kept (a symlink there stays the entry seen).
    pub fn file(&self, path: &Path) -> Result<PathBuf> {
        if self.root.is_none() {
            return Ok(path.to_owned());
        }
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => Ok(self.dir(parent)?.join(name)),
            _ => self.dir(path),
        }
    }
}

/// The host path of this process's current directory. On the host, the current
/// directory. Inside a box, the same path when it is the very directory the host has
/// there (a directory the box shares with the host: the home, /tmp, a volume mounted at
/// its own path); otherwise there is no host path to give, and the error says so.
pub fn host_cwd(fs: &HostFs) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let cwd = std::env::current_dir().context("finding the current directory")?;
    if !fs.is_remote() {
        return Ok(cwd);
    }
    let here = std::fs::metadata(&cwd).with_context(|| format!("reading {}", cwd.display()))?;
    let same = fs
        .dir(&cwd)
        .ok()
        .and_then(|on_host| std::fs::metadata(on_host).ok())
        .is_some_and(|there| there.dev() == here.dev() && there.ino() == here.ino());
    if same {
        Ok(cwd)
    } else {
        Err(failure(
            format!(
                "the current directory {} belongs to the box, not the host, so a relative --export-path has no place on the host",
                cwd.display()
            ),
            "give --export-path as an absolute path on the host, or run from a directory the box shares with the host (your home)",
        ))
    }
}

/// `path` made absolute against the host's current directory (see [`host_cwd`]), with
/// `.` components dropped.
pub fn absolute(fs: &HostFs, path: &Path) -> Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        host_cwd(fs)?.join(path)
    };
    Ok(joined
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn native_paths_are_the_identity() {
        let fs = HostFs::native();
        assert_eq!(
            fs.dir(Path::new("/no/such/dir")).unwrap(),
            Path::new("/no/such/dir")
        );
        assert_eq!(fs.file(Path::new("/a/b")).unwrap(), Path::new("/a/b"));
        assert!(!fs.is_remote());
    }

    #[test]
    fn host_symlinks_resolve_inside_the_host_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("host");
        std::fs::create_dir_all(root.join("var/home/u")).unwrap();
        std::fs::create_dir_all(root.join("opt/bin")).unwrap();
        // /home -> var/home (relative, as on Fedora Silverblue) and an absolute link:
        // both must resolve in the host root, not in this process's /.
        symlink("var/home", root.join("home")).unwrap();
        symlink("/opt/bin", root.join("var/home/u/bin")).unwrap();
        // A dangling link at a file's path is the entry itself, never followed.
        symlink("/nowhere", root.join("opt/bin/tool")).unwrap();
        let fs = HostFs::at(&root);
        let real = std::fs::canonicalize(&root).unwrap();
        assert_eq!(
            fs.dir(Path::new("/home/u/bin")).unwrap(),
            real.join("opt/bin")
        );
        assert_eq!(
            fs.dir(Path::new("/home/u/bin/new/deeper")).unwrap(),
            real.join("opt/bin/new/deeper")
        );
        assert_eq!(
            fs.file(Path::new("/home/u/bin/tool")).unwrap(),
            real.join("opt/bin/tool")
        );
        assert_eq!(fs.dir(Path::new("/")).unwrap(), real);
        // `..` cannot climb out of the host root.
        assert_eq!(fs.dir(Path::new("/../../etc")).unwrap(), real.join("etc"));
    }

    #[test]
    fn relative_paths_join_the_current_directory() {
        let fs = HostFs::native();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute(&fs, Path::new("./bin")).unwrap(), cwd.join("bin"));
        assert_eq!(
            absolute(&fs, Path::new("/x/./y")).unwrap(),
            Path::new("/x/y")
        );
    }
}
