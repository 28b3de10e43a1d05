//! Copying a box's files for `box create --clone`: a tree copied exactly (owners, modes
//! with setuid bits, timestamps, xattrs such as overlay's opaque markers, hard links,
//! symlinks, whiteouts and other special files), sharing the data blocks of regular
//! files where the filesystem can (FICLONE: btrfs, XFS, bcachefs), else copying them.
//!
//! Runs in the store helper, root in the user namespace with the store's id mapping, so
//! files of subordinate owners are copied with those owners. Invariant: nothing here
//! follows a symlink or leaves the two trees: every path is a name relative to an
//! already opened directory, opened with `O_NOFOLLOW` (see [`super::tree`]).

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context as _, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

/// What a copy did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopyStats {
    pub files: u64,
    /// Regular files whose blocks are shared with the source (reflinks).
    pub reflinked: u64,
    pub bytes: u64,
}

struct Copier {
    stats: CopyStats,
    /// Source (dev, inode) of files with several links -> the first copy's parent and name.
    links: HashMap<(u64, u64), (std::sync::Arc<OwnedFd>, CString)>,
    /// Whether FICLONE is worth trying (stops after the filesystem says no).
    reflink: bool,
}

/// Copy the contents of directory `from` into the empty directory `to` (its own owner,
/// mode, xattrs and times too). `shown` names `from` in errors.
pub fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>, shown: &str) -> Result<CopyStats> {
    let mut copier = Copier {
        stats: CopyStats::default(),
        links: HashMap::new(),
        reflink: true,
    };
    let meta = rustix::fs::fstat(from).with_context(|| format!("reading {shown}"))?;
    let to = std::sync::Arc::new(rustix::io::dup(to).context("dup")?);
    copier.dir(from, &to, shown)?;
    set_attributes(from, to.as_fd(), None, &meta)
        .with_context(|| format!("copying the attributes of {shown}"))?;
    Ok(copier.stats)
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOFOLLOW);

impl Copier {
    fn dir(
        &mut self,
        from: BorrowedFd<'_>,
        to: &std::sync::Arc<OwnedFd>,
        shown: &str,
    ) -> Result<()> {
        let mut entries =
            rustix::fs::Dir::read_from(from).with_context(|| format!("listing {shown}"))?;
        let mut names: Vec<CString> = Vec::new();
        for entry in entries.by_ref() {
            let entry = entry.with_context(|| format!("listing {shown}"))?;
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            names.push(name.to_owned());
        }
        for name in names {
            let path = format!("{shown}/{}", name.to_string_lossy());
            self.entry(from, to, &name, &path)
                .with_context(|| format!("copying {path}"))?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        from: BorrowedFd<'_>,
        to: &std::sync::Arc<OwnedFd>,
        name: &CStr,
        path: &str,
    ) -> Result<()> {
        let meta = rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let kind = FileType::from_raw_mode(meta.st_mode);
        let mode = Mode::from_raw_mode(meta.st_mode & 0o7777);
        self.stats.files += 1;
        match kind {
            FileType::Directory => {
                rustix::fs::mkdirat(to, name, Mode::from_raw_mode(0o700))?;
                let src = rustix::fs::openat(from, name, DIR_FLAGS, Mode::empty())?;
                let dst =
                    std::sync::Arc::new(rustix::fs::openat(to, name, DIR_FLAGS, Mode::empty())?);
                self.dir(src.as_fd(), &dst, path)?;
                // After the children: their creation changed the directory's times.
                set_attributes(src.as_fd(), dst.as_fd(), None, &meta)?;
            }
            FileType::RegularFile => {
                let key = (meta.st_dev, meta.st_ino);
                if meta.st_nlink > 1 {
                    if let Some((dir, first)) = self.links.get(&key) {
                        rustix::fs::linkat(
                            dir.as_fd(),
                            first.as_c_str(),
                            to,
                            name,
                            AtFlags::empty(),
                        )?;
                        return Ok(());
                    }
                    self.links.insert(key, (to.clone(), name.to_owned()));
                }
                let src = rustix::fs::openat(
                    from,
                    name,
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )?;
                let dst = rustix::fs::openat(
                    to,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::CLOEXEC
                        | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o600),
                )?;
                self.data(&src, &dst, meta.st_size as u64)?;
                set_attributes(src.as_fd(), dst.as_fd(), None, &meta)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(from, name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), to, name)?;
                set_attributes(from, to.as_fd(), Some(name), &meta)?;
            }
            // Whiteouts (0:0 character devices), fifos, sockets: made again, same numbers.
            FileType::CharacterDevice
            | FileType::BlockDevice
            | FileType::Fifo
            | FileType::Socket => {
                rustix::fs::mknodat(to, name, kind, mode, meta.st_rdev)?;
                set_attributes(from, to.as_fd(), Some(name), &meta)?;
            }
            FileType::Unknown => anyhow::bail!("unknown file type"),
        }
        Ok(())
    }

    /// The data of a regular file: a reflink when the filesystem can, else a copy
    /// (copy_file_range through std, which the kernel may still make a reflink).
    fn data(&mut self, src: &OwnedFd, dst: &OwnedFd, size: u64) -> Result<()> {
        if self.reflink && size > 0 {
            match rustix::fs::ioctl_ficlone(dst, src) {
                Ok(()) => {
                    self.stats.reflinked += 1;
                    self.stats.bytes += size;
                    return Ok(());
                }
                // Not this filesystem (or across filesystems): copy from now on.
                Err(
                    Errno::OPNOTSUPP
                    | Errno::XDEV
                    | Errno::INVAL
                    | Errno::NOTTY
                    | Errno::BADF
                    | Errno::PERM,
                ) => {
                    self.reflink = false;
                }
                Err(err) => return Err(std::io::Error::from(err).into()),
            }
        }
        let mut reader = std::fs::File::from(rustix::io::dup(src)?);
        let mut writer = std::fs::File::from(rustix::io::dup(dst)?);
        self.stats.bytes += std::io::copy(&mut reader, &mut writer)?;
        Ok(())
    }
}

/// Give `to` (or with `name`, the entry `name` in directory `to`, not followed) the owner,
/// mode, xattrs and times of `from` (or of entry `name` in directory `from`), as `meta`
/// describes it. The mode comes after the owner: chown(2) clears setuid and setgid bits.
fn set_attributes(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    name: Option<&CStr>,
    meta: &rustix::fs::Stat,
) -> Result<()> {
    let uid = rustix::process::Uid::from_raw(meta.st_uid);
    let gid = rustix::process::Gid::from_raw(meta.st_gid);
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.st_atime as _,
            tv_nsec: meta.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: meta.st_mtime as _,
            tv_nsec: meta.st_mtime_nsec as _,
        },
    };
    match name {
        None => {
            rustix::fs::fchown(to, Some(uid), Some(gid)).context("setting the owner")?;
            rustix::fs::fchmod(to, Mode::from_raw_mode(meta.st_mode & 0o7777))
                .context("setting the mode")?;
            copy_xattrs(&fd_path(from), &fd_path(to), true)?;
            rustix::fs::futimens(to, &times).context("setting the times")?;
        }
        Some(name) => {
            rustix::fs::chownat(to, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
                .context("setting the owner")?;
            let kind = FileType::from_raw_mode(meta.st_mode);
            if kind != FileType::Symlink {
                rustix::fs::chmodat(
                    to,
                    name,
                    Mode::from_raw_mode(meta.st_mode & 0o7777),
                    AtFlags::empty(),
                )
                .context("setting the mode")?;
            }
            let (src, dst) = (
                format!("{}/{}", fd_path(from), name.to_string_lossy()),
                format!("{}/{}", fd_path(to), name.to_string_lossy()),
            );
            copy_xattrs(&src, &dst, false)?;
            rustix::fs::utimensat(to, name, &times, AtFlags::SYMLINK_NOFOLLOW)
                .context("setting the times")?;
        }
    }
    Ok(())
}

/// `/proc/self/fd/N`: a path for the calls that take one (the `l*xattr` family has no
/// `*at` form before Linux 6.13); it names the open file, not a path anyone can swap.
fn fd_path(fd: BorrowedFd<'_>) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Copy every xattr of `from` to `to` (`follow`: the paths are /proc/self/fd links to
/// follow; else the last component is not followed). One the target refuses (a
/// filesystem without xattrs of that namespace) is left out, as the unpacker does.
fn copy_xattrs(from: &str, to: &str, follow: bool) -> Result<()> {
    let mut names = vec![0u8; 4096];
    let listed = if follow {
        rustix::fs::listxattr(from, &mut names)
    } else {
        rustix::fs::llistxattr(from, &mut names)
    };
    let len = match listed {
        Ok(len) => len,
        Err(Errno::OPNOTSUPP | Errno::PERM) => return Ok(()),
        Err(Errno::RANGE) => anyhow::bail!("too many extended attributes to copy"),
        Err(err) => {
            return Err(std::io::Error::from(err)).context("listing the extended attributes");
        }
    };
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = CString::new(name).expect("split at NULs");
        let mut value = vec![0u8; 65536];
        let got = if follow {
            rustix::fs::getxattr(from, name.as_c_str(), &mut value)
        } else {
            rustix::fs::lgetxattr(from, name.as_c_str(), &mut value)
        };
        let Ok(got) = got else { continue };
        let set = if follow {
            rustix::fs::setxattr(to, name.as_c_str(), &value[..got], XattrFlags::empty())
        } else {
            rustix::fs::lsetxattr(to, name.as_c_str(), &value[..got], XattrFlags::empty())
        };
        match set {
            Ok(()) | Err(Errno::OPNOTSUPP | Errno::PERM) => {}
            Err(err) => {
                return Err(std::io::Error::from(err))
                    .with_context(|| format!("setting the xattr {}", name.to_string_lossy()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_tree_is_copied_with_links_modes_times_and_special_files() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let dst = dir.path().join("dst");
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("sub/file"), b"hello").unwrap();
        std::fs::set_permissions(
            src.join("sub/file"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::hard_link(src.join("sub/file"), src.join("link")).unwrap();
        std::os::unix::fs::symlink("sub/file", src.join("sym")).unwrap();
        std::os::unix::fs::symlink("/nowhere", src.join("dangling")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            src.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o640),
            0,
        )
        .unwrap();
        let old = Timestamps {
            last_access: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
        };
        rustix::fs::utimensat(rustix::fs::CWD, src.join("sub"), &old, AtFlags::empty()).unwrap();

        let from = rustix::fs::open(&src, DIR_FLAGS, Mode::empty()).unwrap();
        let to = rustix::fs::open(&dst, DIR_FLAGS, Mode::empty()).unwrap();
        let stats = copy_tree(from.as_fd(), to.as_fd(), "src").unwrap();
        assert_eq!(stats.files, 7);

        assert_eq!(std::fs::read(dst.join("sub/file")).unwrap(), b"hello");
        let file = std::fs::metadata(dst.join("sub/file")).unwrap();
        assert_eq!(file.mode() & 0o7777, 0o4755);
        assert_eq!(
            file.ino(),
            std::fs::metadata(dst.join("link")).unwrap().ino(),
            "hard link kept"
        );
        assert_eq!(
            std::fs::read_link(dst.join("sym")).unwrap(),
            std::path::Path::new("sub/file")
        );
        assert_eq!(
            std::fs::read_link(dst.join("dangling")).unwrap(),
            std::path::Path::new("/nowhere")
        );
        let fifo = std::fs::symlink_metadata(dst.join("fifo")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
        assert_eq!(fifo.mode() & 0o777, 0o640);
        assert!(dst.join("sub/deeper").is_dir());
        assert_eq!(
            std::fs::metadata(dst.join("sub")).unwrap().mtime(),
            1_000_000,
            "directory times after its children"
        );
        // The source is untouched.
        assert_eq!(std::fs::read(src.join("sub/file")).unwrap(), b"hello");
    }
}
