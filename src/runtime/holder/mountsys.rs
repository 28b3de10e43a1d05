//! The syscall seam under the holder's mount work: [`MountSys`], every call the apply
//! step ([`super::apply`]) makes to build a box's mount namespace, and [`Kernel`], the
//! real implementation, a thin layer over rustix and [`crate::sys`].
//!
//! The seam exists so that the apply step (its order, its fallbacks, its error messages)
//! is unit-tested without root against a recording fake (see `apply`'s tests), while
//! this file stays too thin to need tests of its own: each method is one syscall (or one
//! call into the module that owns the work, for the copy fallback and the box's files),
//! with no decision in it. Paths and flags pass through unchanged.
//!
//! Descriptors are the associated type [`MountSys::Fd`]; calls that only take paths
//! (mount(2), umount2(2), statvfs(2)) get a descriptor's path from
//! [`MountSys::fd_path`] (`/proc/self/fd/N` for the kernel), which names the very inode
//! openat2(2) resolved inside the box (or the very mount a tree descriptor holds), so a
//! symlink swapped in later cannot redirect them.

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, StatVfsMountFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use crate::sys::MountAttrs;
use crate::sys::boxfs;

/// What the apply step asks of the kernel. All paths are the holder's (before the pivot,
/// the host's tree; `in the box` paths go through [`MountSys::open_in_root`]).
pub trait MountSys {
    /// An open file descriptor.
    type Fd;

    /// A path naming `fd`, for the calls that take paths.
    fn fd_path(&self, fd: &Self::Fd) -> PathBuf;

    /// `unshare(CLONE_NEWNS | CLONE_NEWUTS)`.
    fn unshare_mount_and_uts(&mut self) -> io::Result<()>;
    /// `sethostname(2)`.
    fn set_hostname(&mut self, name: &str) -> io::Result<()>;
    /// `chdir(2)`.
    fn chdir(&mut self, path: &Path) -> io::Result<()>;
    /// `fchdir(2)`.
    fn fchdir(&mut self, dir: &Self::Fd) -> io::Result<()>;
    /// `pivot_root(".", ".")`: the working directory becomes the root, the old root is
    /// stacked on it (pivot_root(2), "NOTES").
    fn pivot_root_to_cwd(&mut self) -> io::Result<()>;

    /// `mount(source, target, fstype, flags, data)`.
    fn mount(
        &mut self,
        source: &Path,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: Option<&CStr>,
    ) -> io::Result<()>;
    /// `mount(source, target, NULL, MS_BIND, NULL)`.
    fn mount_bind(&mut self, source: &Path, target: &Path) -> io::Result<()>;
    /// `mount(NULL, target, NULL, propagation flags, NULL)`.
    fn mount_change(&mut self, target: &Path, flags: MountPropagationFlags) -> io::Result<()>;
    /// `mount(NULL, target, NULL, MS_REMOUNT | flags, "")`.
    fn mount_remount(&mut self, target: &Path, flags: MountFlags) -> io::Result<()>;
    /// `umount2(target, MNT_DETACH)`.
    fn unmount_detach(&mut self, target: &Path) -> io::Result<()>;
    /// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC [| AT_RECURSIVE])`:
    /// a detached copy of the mount at `path` (with every mount below it when
    /// `recursive`), whose descriptor stays the root of that copy once attached.
    fn clone_tree(&mut self, path: &Path, recursive: bool) -> io::Result<Self::Fd>;
    /// A new tmpfs with these parameters (`mode`, ...) and flags: fsopen(2),
    /// fsconfig(2), fsmount(2); detached, its root's descriptor.
    fn new_tmpfs(&mut self, params: &[(String, String)], attrs: MountAttrs)
    -> io::Result<Self::Fd>;
    /// `move_mount(from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)`.
    fn move_mount(&mut self, from: &Self::Fd, to: &Self::Fd) -> io::Result<()>;
    /// `mount_setattr(2)` setting `attrs` on the mount `mount` is the root of (and every
    /// mount below it when `recursive`) ([`crate::sys::mount_setattr`]); `ENOSYS` before
    /// Linux 5.12.
    fn set_attrs(&mut self, mount: &Self::Fd, attrs: MountAttrs, recursive: bool)
    -> io::Result<()>;
    /// The mount flags `statvfs(2)` reports for `path`.
    fn mount_flags_of(&mut self, path: &Path) -> io::Result<StatVfsMountFlags>;
    /// `readlink(2)`.
    fn read_link(&mut self, path: &Path) -> io::Result<PathBuf>;
    /// The text of `/proc/self/mountinfo`.
    fn mountinfo(&mut self) -> io::Result<String>;

    /// `open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)`.
    fn open_dir_path(&mut self, path: &Path) -> io::Result<Self::Fd>;
    /// `openat2(base, path, flags, 0, resolve)`: every component resolved below `base`;
    /// in a filesystem of the box's own (`shared` false) with `RESOLVE_IN_ROOT`, as if
    /// `base` were `/`, and never across a mount; in one shared with the host with
    /// `RESOLVE_BENEATH`, across the host's own mounts below it
    /// ([`crate::sys::boxfs::IN_OWN_ROOT`], [`crate::sys::boxfs::BENEATH_HOST_MOUNTS`]).
    fn open_below(
        &mut self,
        base: &Self::Fd,
        path: &Path,
        flags: OFlags,
        shared: bool,
    ) -> io::Result<Self::Fd>;
    /// `openat2(dir, name, O_PATH | O_NOFOLLOW, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`:
    /// the entry `name` of `dir`, into the mount on it when there is one.
    fn open_mounted(&mut self, dir: &Self::Fd, name: &OsStr) -> io::Result<Self::Fd>;
    /// The symlink (relative to `base`) and its target by which `path` leads out of
    /// `base`'s filesystem, as [`MountSys::open_below`] resolves it
    /// ([`crate::sys::boxfs::symlink_leading_out`]).
    fn symlink_leading_out(
        &mut self,
        base: &Self::Fd,
        path: &Path,
        shared: bool,
    ) -> Option<(PathBuf, PathBuf)>;
    /// `mkdirat(dir, name, mode)`.
    fn mkdirat(&mut self, dir: &Self::Fd, name: &OsStr, mode: u32) -> io::Result<()>;
    /// `openat2(dir, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY, mode,
    /// RESOLVE_BENEATH)`, closed at once: never through a symlink.
    fn create_file_at(&mut self, dir: &Self::Fd, name: &OsStr, mode: u32) -> io::Result<()>;

    /// Whether `path` exists (following symlinks): `Ok(false)` only when it does not
    /// (ENOENT); a path that cannot be looked up (EACCES) is an error.
    fn exists(&mut self, path: &Path) -> io::Result<bool>;
    /// The owner uid of `path`.
    fn owner(&mut self, path: &Path) -> io::Result<u32>;
    /// `chown(path, 0, 0)`.
    fn chown_to_root(&mut self, path: &Path) -> io::Result<()>;

    /// Build the copy-storage root `dest` from `layers` unless `marker` says it is done
    /// ([`crate::runtime::copy::ensure_copy`]); whether a copy was made now.
    fn build_copy(
        &mut self,
        layers: &[PathBuf],
        dest: &Path,
        marker: &Path,
    ) -> anyhow::Result<bool>;
}

/// The real kernel.
pub struct Kernel;

impl MountSys for Kernel {
    type Fd = OwnedFd;

    fn fd_path(&self, fd: &OwnedFd) -> PathBuf {
        format!("/proc/self/fd/{}", fd.as_raw_fd()).into()
    }

    fn unshare_mount_and_uts(&mut self) -> io::Result<()> {
        use rustix::thread::UnshareFlags;
        crate::sys::unshare_namespaces(UnshareFlags::NEWNS | UnshareFlags::NEWUTS)
    }

    fn set_hostname(&mut self, name: &str) -> io::Result<()> {
        Ok(rustix::system::sethostname(name.as_bytes())?)
    }

    fn chdir(&mut self, path: &Path) -> io::Result<()> {
        Ok(rustix::process::chdir(path)?)
    }

    fn fchdir(&mut self, dir: &OwnedFd) -> io::Result<()> {
        Ok(rustix::process::fchdir(dir)?)
    }

    fn pivot_root_to_cwd(&mut self) -> io::Result<()> {
        Ok(rustix::process::pivot_root(".", ".")?)
    }

    fn mount(
        &mut self,
        source: &Path,
        target: &Path,
        fstype: &str,
        flags: MountFlags,
        data: Option<&CStr>,
    ) -> io::Result<()> {
        Ok(rustix::mount::mount(source, target, fstype, flags, data)?)
    }

    fn mount_bind(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        Ok(rustix::mount::mount_bind(source, target)?)
    }

    fn mount_change(&mut self, target: &Path, flags: MountPropagationFlags) -> io::Result<()> {
        Ok(rustix::mount::mount_change(target, flags)?)
    }

    fn mount_remount(&mut self, target: &Path, flags: MountFlags) -> io::Result<()> {
        Ok(rustix::mount::mount_remount(target, flags, "")?)
    }

    fn unmount_detach(&mut self, target: &Path) -> io::Result<()> {
        Ok(rustix::mount::unmount(target, UnmountFlags::DETACH)?)
    }

    fn clone_tree(&mut self, path: &Path, recursive: bool) -> io::Result<OwnedFd> {
        use rustix::mount::OpenTreeFlags as F;
        let mut flags = F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC;
        if recursive {
            flags |= F::AT_RECURSIVE;
        }
        Ok(rustix::mount::open_tree(rustix::fs::CWD, path, flags)?)
    }

    fn new_tmpfs(&mut self, params: &[(String, String)], attrs: MountAttrs) -> io::Result<OwnedFd> {
        use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags as A};
        let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
        for (key, value) in params {
            if value.is_empty() {
                rustix::mount::fsconfig_set_flag(&fs, key.as_str())?;
            } else {
                rustix::mount::fsconfig_set_string(&fs, key.as_str(), value.as_str())?;
            }
        }
        rustix::mount::fsconfig_create(&fs)?;
        let mut flags = A::empty();
        for (on, flag) in [
            (attrs.read_only, A::MOUNT_ATTR_RDONLY),
            (attrs.nosuid, A::MOUNT_ATTR_NOSUID),
            (attrs.nodev, A::MOUNT_ATTR_NODEV),
            (attrs.noexec, A::MOUNT_ATTR_NOEXEC),
        ] {
            if on {
                flags |= flag;
            }
        }
        Ok(rustix::mount::fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            flags,
        )?)
    }

    fn move_mount(&mut self, from: &OwnedFd, to: &OwnedFd) -> io::Result<()> {
        use rustix::mount::MoveMountFlags as F;
        Ok(rustix::mount::move_mount(
            from.as_fd(),
            "",
            to.as_fd(),
            "",
            F::MOVE_MOUNT_F_EMPTY_PATH | F::MOVE_MOUNT_T_EMPTY_PATH,
        )?)
    }

    fn set_attrs(&mut self, mount: &OwnedFd, attrs: MountAttrs, recursive: bool) -> io::Result<()> {
        crate::sys::mount_setattr(mount.as_fd(), attrs, recursive)
    }

    fn mount_flags_of(&mut self, path: &Path) -> io::Result<StatVfsMountFlags> {
        Ok(rustix::fs::statvfs(path)?.f_flag)
    }

    fn read_link(&mut self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }

    fn mountinfo(&mut self) -> io::Result<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
    }

    fn open_dir_path(&mut self, path: &Path) -> io::Result<OwnedFd> {
        Ok(rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    fn open_below(
        &mut self,
        base: &OwnedFd,
        path: &Path,
        flags: OFlags,
        shared: bool,
    ) -> io::Result<OwnedFd> {
        let resolve = if shared {
            boxfs::BENEATH_HOST_MOUNTS
        } else {
            boxfs::IN_OWN_ROOT
        };
        Ok(boxfs::open_in(base.as_fd(), path, flags, resolve)?)
    }

    fn open_mounted(&mut self, dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
        Ok(boxfs::open_in(
            dir.as_fd(),
            Path::new(name),
            OFlags::PATH | OFlags::NOFOLLOW,
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )?)
    }

    fn symlink_leading_out(
        &mut self,
        base: &OwnedFd,
        path: &Path,
        shared: bool,
    ) -> Option<(PathBuf, PathBuf)> {
        let resolve = if shared {
            boxfs::BENEATH_HOST_MOUNTS
        } else {
            boxfs::IN_OWN_ROOT
        };
        boxfs::symlink_leading_out(base.as_fd(), path, resolve)
    }

    fn mkdirat(&mut self, dir: &OwnedFd, name: &OsStr, mode: u32) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode))?)
    }

    fn create_file_at(&mut self, dir: &OwnedFd, name: &OsStr, mode: u32) -> io::Result<()> {
        rustix::fs::openat2(
            dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
        )?;
        Ok(())
    }

    fn exists(&mut self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn owner(&mut self, path: &Path) -> io::Result<u32> {
        Ok(std::fs::metadata(path)?.uid())
    }

    fn chown_to_root(&mut self, path: &Path) -> io::Result<()> {
        std::os::unix::fs::chown(path, Some(0), Some(0))
    }

    fn build_copy(
        &mut self,
        layers: &[PathBuf],
        dest: &Path,
        marker: &Path,
    ) -> anyhow::Result<bool> {
        crate::runtime::copy::ensure_copy(layers, dest, marker)
    }
}
