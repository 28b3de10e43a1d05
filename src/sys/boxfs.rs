//! The box's filesystem as box writes it.
//!
//! Everything box itself writes, replaces, chmods, deletes or creates in a box (the
//! first-start user setup, the files that follow the host's, `/run/.containerenv`, the
//! sudo stand-in, the CDI hooks and the CDI mount points the holder tidies, the fake
//! root's apt setting, the X authority copies and the runtime directory of a join) goes
//! through [`BoxFs`]: the box's *own* filesystems (its root, the image's overlay or copy,
//! and the tmpfs box mounts at `/run`), each held by a directory descriptor. The holder
//! opens them while it builds the box, so a box path never starts from a path of the
//! process. The mount points the holder creates follow the same rules, through its
//! syscall seam (`runtime::holder`), with [`open_in`] and [`symlink_leading_out`].
//!
//! How a box path is reached:
//! - from the descriptor of the own filesystem whose path is its longest prefix (`/run/x`
//!   from `/run`'s, `/etc/x` from the root's), with openat2(2) `RESOLVE_IN_ROOT |
//!   RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS` ([`IN_OWN_ROOT`]): a symlink the image placed
//!   resolves inside the box's tree (`/etc/box -> /home/alice` is the box's own
//!   `/home/alice`), and a resolution that would cross a mount (into the bind-mounted home,
//!   `/tmp`, the runtime directory, `/run/host`, a volume, `/dev`) fails with `EXDEV`;
//! - a *directory* whose resolution crossed a mount is resolved again from the root
//!   without `RESOLVE_NO_XDEV` and accepted only when it lies on one of the box's own
//!   filesystems (statx(2) `STATX_MNT_ID`): the image's `/var/run -> /run` leads from the
//!   root into `/run`, and both are the box's; anything else is refused with an error
//!   ([`is_leads_out`]) that names the symlink that leads out;
//! - the last component is never followed: it is created, opened, renamed over, unlinked
//!   or stat'ed in its directory's descriptor, with `O_NOFOLLOW` and openat2
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`, save in the calls that say
//!   they follow it ([`BoxFs::stat`], [`BoxFs::read`], [`BoxFs::chmod`]), which follow it
//!   inside the box's own files only (content is never read, nor a mode changed, across
//!   a mount);
//! - a file is written whole into a scratch file created exclusively (`O_CREAT |
//!   O_EXCL`) in the same directory, given its owner and mode, then renamed over the old
//!   one with renameat(2) in that directory's descriptor: no program in the box reads half
//!   a file, and a symlink at the name is replaced, never written through.
//!
//! Reading a box's files for exports (`export::boxfs`) uses the same [`open_in`] and
//! [`IN_ROOT`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context as _, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Resolution inside a root: `..` and absolute symlinks stay in it, no `/proc` magic
/// links.
pub const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);
/// [`IN_ROOT`], and never across a mount.
pub const IN_OWN_ROOT: ResolveFlags = IN_ROOT.union(ResolveFlags::NO_XDEV);
/// Below a directory, never across a mount, `..` never out of it, absolute symlinks
/// refused: for what box mounts below a directory the box shares with the host.
pub const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_XDEV)
    .union(ResolveFlags::NO_MAGICLINKS);
/// [`BENEATH`], across the mounts below: for a mount point in a directory the box shares
/// with the host, where every mount below is the host's own (the host's `/dev/shm` under
/// the box's `/dev`, a runtime directory there), so crossing one leads nowhere the shared
/// directory does not already show.
pub const BENEATH_HOST_MOUNTS: ResolveFlags =
    ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);
/// One name in a directory: no symlink followed, no mount crossed.
const NAME: ResolveFlags = BENEATH.union(ResolveFlags::NO_SYMLINKS);

/// What to do when box refuses a path that leads out of the box's own files.
pub const LEADS_OUT_HINT: &str = "box writes, changes and mounts only in the box's own files, never through a symlink into what the box shares with the host (your home, /tmp, the runtime directory, volumes, /run/host, /dev): use an image without that symlink, or replace it in the box";

/// `openat2(dir, path, flags | O_CLOEXEC, 0, resolve)`; an empty `path` is `dir` itself.
/// Retried when the kernel answers `EAGAIN` (a rename or mount raced a `RESOLVE_IN_ROOT`
/// or `RESOLVE_BENEATH` lookup, openat2(2)).
pub fn open_in(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(dir, path, flags | OFlags::CLOEXEC, Mode::empty(), resolve) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// Why the resolution of `rel` from `dir` (with `resolve`, which must not cross mounts
/// itself) leaves `dir`'s filesystem, when a symlink does it: that symlink (its path
/// relative to `dir`) and its target. None when no prefix of `rel` leads out, or the one
/// that does is a mount point of its own.
pub fn symlink_leading_out(
    dir: BorrowedFd<'_>,
    rel: &Path,
    resolve: ResolveFlags,
) -> Option<(PathBuf, PathBuf)> {
    let mut prefix = PathBuf::new();
    for part in rel.components() {
        let Component::Normal(part) = part else {
            continue;
        };
        prefix.push(part);
        if !matches!(
            open_in(dir, &prefix, OFlags::PATH, resolve),
            Err(Errno::XDEV)
        ) {
            continue;
        }
        // Its parent stays on the filesystem (the previous round): the last component
        // leads out. Opened without NO_XDEV, which the parent's path does not need.
        let last = open_in(
            dir,
            &prefix,
            OFlags::PATH | OFlags::NOFOLLOW,
            resolve.difference(ResolveFlags::NO_XDEV),
        )
        .ok()?;
        let target = rustix::fs::readlinkat(&last, "", Vec::new()).ok()?;
        return Some((
            prefix,
            PathBuf::from(OsString::from_vec(target.into_bytes())),
        ));
    }
    None
}

/// A box path that leads out of the box's own files (see the module doc).
#[derive(Debug)]
pub struct LeadsOut {
    /// The symlink (its box path) that leads out, and its target.
    pub through: Option<(PathBuf, PathBuf)>,
}

impl fmt::Display for LeadsOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.through {
            Some((link, target)) => write!(
                f,
                "the path leads out of the box's own files, through the symlink {} -> {}",
                link.display(),
                target.display()
            ),
            None => write!(
                f,
                "the path leads out of the box's own files, into what the box shares with the host"
            ),
        }
    }
}

impl std::error::Error for LeadsOut {}

/// The error for a path that leads out of the box's own files, with its hint.
pub fn leads_out(through: Option<(PathBuf, PathBuf)>) -> anyhow::Error {
    anyhow::Error::new(LeadsOut { through }).context(crate::error::Hint(LEADS_OUT_HINT.into()))
}

/// Whether `err` is (or was caused by) a path that leads out of the box's own files.
pub fn is_leads_out(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<LeadsOut>())
}

/// The mount a descriptor is on (statx(2) `STATX_MNT_ID`, Linux 5.8); None when the
/// kernel does not say.
fn mount_id(fd: BorrowedFd<'_>) -> Option<u64> {
    use rustix::fs::StatxFlags;
    let st = rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID).ok()?;
    (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id)
}

/// One of the box's own filesystems.
#[derive(Debug)]
struct Own {
    /// Its path in the box.
    at: PathBuf,
    fd: OwnedFd,
    mount: Option<u64>,
}

/// What a box path is (see [`BoxFs::stat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: FileType,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

impl Stat {
    fn of(st: &rustix::fs::Stat) -> Stat {
        Stat {
            kind: FileType::from_raw_mode(st.st_mode),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size as u64,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }

    pub fn is_file(&self) -> bool {
        self.kind == FileType::RegularFile
    }
}

/// A box path as its normal components (checked absolute, without `..`).
struct BoxPath<'a> {
    path: &'a Path,
    parts: Vec<&'a OsStr>,
}

impl<'a> BoxPath<'a> {
    fn new(path: &'a Path) -> Result<BoxPath<'a>> {
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(part) => parts.push(part),
                Component::ParentDir | Component::Prefix(_) => {
                    anyhow::bail!(
                        "{} is not a plain path in the box (it has `..`)",
                        path.display()
                    )
                }
            }
        }
        if !path.is_absolute() {
            anyhow::bail!("{} is not an absolute path in the box", path.display());
        }
        Ok(BoxPath { path, parts })
    }

    /// The last component, for calls on an entry of its directory.
    fn name(&self) -> Result<&'a OsStr> {
        self.parts
            .last()
            .copied()
            .with_context(|| format!("{} names no file in the box", self.path.display()))
    }
}

/// A unique scratch name beside `name` in its directory, for this process.
fn scratch_name(name: &OsStr) -> OsString {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let mut scratch = OsString::from(".");
    scratch.push(name);
    scratch.push(format!(
        ".box-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    scratch
}

/// The box's own filesystems, for box's own writes (module doc).
#[derive(Debug)]
pub struct BoxFs {
    /// The root first, then the other own filesystems.
    own: Vec<Own>,
}

impl BoxFs {
    /// The box whose root directory `root` is (an `O_PATH` descriptor will do).
    pub fn new(root: OwnedFd) -> BoxFs {
        let mount = mount_id(root.as_fd());
        BoxFs {
            own: vec![Own {
                at: PathBuf::from("/"),
                fd: root,
                mount,
            }],
        }
    }

    /// With `fd`, the root of a filesystem box made for this box alone, at box path `at`
    /// (the tmpfs at `/run`).
    pub fn with_own_mount(mut self, at: &Path, fd: OwnedFd) -> BoxFs {
        let mount = mount_id(fd.as_fd());
        self.own.push(Own {
            at: at.to_owned(),
            fd,
            mount,
        });
        self
    }

    /// The box this process is in (after setns into its mount namespace, or the holder
    /// after the pivot): its `/`, and its `/run` when that is a tmpfs mounted on a plain
    /// directory (as the holder mounts it; without it, writes below `/run` are refused).
    pub fn of_this_root() -> Result<BoxFs> {
        let root = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context("opening / in the box")?;
        let fs = BoxFs::new(root);
        // Into the mount at /run, but through no symlink.
        let run = open_in(
            fs.own[0].fd.as_fd(),
            Path::new("run"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW,
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        );
        let tmpfs =
            |fd: &OwnedFd| rustix::fs::fstatfs(fd).is_ok_and(|st| st.f_type == libc::TMPFS_MAGIC);
        Ok(match run {
            Ok(fd) if tmpfs(&fd) => fs.with_own_mount(Path::new("/run"), fd),
            _ => fs,
        })
    }

    /// The own filesystem a path of `parts` belongs to (the longest prefix), and the
    /// path relative to it.
    fn locate(&self, parts: &[&OsStr]) -> (&Own, PathBuf) {
        let mut best = (&self.own[0], 0);
        for own in &self.own[1..] {
            let at: Vec<&OsStr> = own
                .at
                .components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part),
                    _ => None,
                })
                .collect();
            if at.len() > best.1 && parts.starts_with(&at) {
                best = (own, at.len());
            }
        }
        (best.0, parts[best.1..].iter().collect())
    }

    /// `parts` resolved inside the box's own files (module doc), with `flags`; a
    /// directory (`O_PATH`) that crossed a mount is accepted on one of them.
    fn resolve(&self, parts: &[&OsStr], flags: OFlags) -> Result<OwnedFd, Errno> {
        let (own, rel) = self.locate(parts);
        match open_in(own.fd.as_fd(), &rel, flags, IN_OWN_ROOT) {
            Err(Errno::XDEV) if flags.contains(OFlags::PATH) => {
                let whole: PathBuf = parts.iter().collect();
                let fd = open_in(self.own[0].fd.as_fd(), &whole, flags, IN_ROOT)?;
                match mount_id(fd.as_fd()) {
                    Some(id) if self.own.iter().any(|o| o.mount == Some(id)) => Ok(fd),
                    _ => Err(Errno::XDEV),
                }
            }
            other => other,
        }
    }

    /// The directory of `path` (resolved as [`BoxFs::resolve`] does), `O_PATH`.
    fn parent(&self, path: &BoxPath<'_>) -> Result<OwnedFd, Errno> {
        let dirs = &path.parts[..path.parts.len().saturating_sub(1)];
        self.resolve(dirs, OFlags::PATH | OFlags::DIRECTORY)
    }

    /// The error for `errno` met while `doing` (e.g. "writing") `path`: for `EXDEV`, the
    /// symlink that leads out of the box's own files.
    fn error(&self, path: &BoxPath<'_>, doing: &str, errno: Errno) -> anyhow::Error {
        let err = if errno == Errno::XDEV {
            let (own, rel) = self.locate(&path.parts);
            let through = symlink_leading_out(own.fd.as_fd(), &rel, IN_OWN_ROOT)
                .map(|(link, target)| (own.at.join(link), target));
            leads_out(through)
        } else {
            std::io::Error::from(errno).into()
        };
        err.context(format!("{doing} {} in the box", path.path.display()))
    }

    /// What `path` is, following symlinks inside the box (a directory reached through a
    /// symlink from one of the box's own filesystems into another counts); None when it
    /// does not exist (or a symlink on the way dangles or loops).
    pub fn stat(&self, path: &Path) -> Result<Option<Stat>> {
        let p = BoxPath::new(path)?;
        match self.resolve(&p.parts, OFlags::PATH) {
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd).map_err(|e| self.error(&p, "reading", e))?;
                Ok(Some(Stat::of(&st)))
            }
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok(None),
            Err(errno) => Err(self.error(&p, "looking up", errno)),
        }
    }

    /// What `path` itself is (a symlink is a symlink); None when it does not exist.
    pub fn lstat(&self, path: &Path) -> Result<Option<Stat>> {
        let p = BoxPath::new(path)?;
        let name = p.name()?;
        let dir = match self.parent(&p) {
            Ok(dir) => dir,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
            Err(errno) => return Err(self.error(&p, "looking up", errno)),
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Stat::of(&st))),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(self.error(&p, "looking up", errno)),
        }
    }

    /// Whether `path` is a directory, following symlinks inside the box.
    pub fn is_dir(&self, path: &Path) -> Result<bool> {
        Ok(self.stat(path)?.is_some_and(|s| s.is_dir()))
    }

    /// Whether `path` is a regular file, following symlinks inside the box.
    pub fn is_file(&self, path: &Path) -> Result<bool> {
        Ok(self.stat(path)?.is_some_and(|s| s.is_file()))
    }

    /// The content of regular file `path` (at most `limit` bytes), following symlinks
    /// inside one of the box's own filesystems; None when it does not exist.
    pub fn read(&self, path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
        let p = BoxPath::new(path)?;
        let (own, rel) = self.locate(&p.parts);
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        match open_in(own.fd.as_fd(), &rel, flags, IN_OWN_ROOT) {
            Ok(fd) => self.read_fd(&p, fd, limit).map(Some),
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok(None),
            Err(errno) => Err(self.error(&p, "reading", errno)),
        }
    }

    /// The content of `path` when it is itself a regular file (not a symlink), at most
    /// `limit` bytes; None otherwise.
    pub fn read_no_follow(&self, path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
        let p = BoxPath::new(path)?;
        let name = p.name()?;
        let dir = match self.parent(&p) {
            Ok(dir) => dir,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
            Err(errno) => return Err(self.error(&p, "reading", errno)),
        };
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW;
        match open_in(dir.as_fd(), Path::new(name), flags, NAME) {
            Ok(fd) => match self.read_fd(&p, fd, limit) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(_) => Ok(None),
            },
            Err(Errno::NOENT | Errno::LOOP | Errno::XDEV) => Ok(None),
            Err(errno) => Err(self.error(&p, "reading", errno)),
        }
    }

    fn read_fd(&self, p: &BoxPath<'_>, fd: OwnedFd, limit: u64) -> Result<Vec<u8>> {
        let st = rustix::fs::fstat(&fd).map_err(|e| self.error(p, "reading", e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            anyhow::bail!("{} in the box is not a regular file", p.path.display());
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(limit)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {} in the box", p.path.display()))?;
        Ok(bytes)
    }

    /// The target of symlink `path`; None when it is no symlink or does not exist.
    pub fn read_link(&self, path: &Path) -> Result<Option<PathBuf>> {
        let p = BoxPath::new(path)?;
        let name = p.name()?;
        let dir = match self.parent(&p) {
            Ok(dir) => dir,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(None),
            Err(errno) => return Err(self.error(&p, "reading", errno)),
        };
        match rustix::fs::readlinkat(&dir, name, Vec::new()) {
            Ok(target) => Ok(Some(PathBuf::from(OsString::from_vec(target.into_bytes())))),
            Err(Errno::NOENT | Errno::INVAL) => Ok(None),
            Err(errno) => Err(self.error(&p, "reading", errno)),
        }
    }

    /// Create directory `path` and its missing parents (mode `mode`, less the umask),
    /// each in its parent's descriptor; an existing one is kept as it is. Returns the
    /// directory (`O_PATH`).
    pub fn create_dir_all(&self, path: &Path, mode: u32) -> Result<OwnedFd> {
        let p = BoxPath::new(path)?;
        let dir = OFlags::PATH | OFlags::DIRECTORY;
        for at in 1..=p.parts.len() {
            match self.resolve(&p.parts[..at], dir) {
                Ok(_) => continue,
                Err(Errno::NOENT) => {}
                Err(errno) => return Err(self.error(&p, "creating", errno)),
            }
            let made = self.resolve(&p.parts[..at - 1], dir).and_then(|parent| {
                match rustix::fs::mkdirat(&parent, p.parts[at - 1], Mode::from_raw_mode(mode)) {
                    // EEXIST: made meanwhile, or a dangling symlink (the next round says).
                    Ok(()) | Err(Errno::EXIST) => Ok(()),
                    Err(errno) => Err(errno),
                }
            });
            made.map_err(|errno| self.error(&p, "creating", errno))?;
        }
        self.resolve(&p.parts, dir)
            .map_err(|errno| self.error(&p, "creating", errno))
    }

    /// Make `path` a regular file holding `content`, with `mode` and, when given, the
    /// owner (uid, gid), replacing what was there by a rename (module doc).
    pub fn write(
        &self,
        path: &Path,
        content: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<()> {
        let p = BoxPath::new(path)?;
        let name = p.name()?;
        let dir = self.parent(&p).map_err(|e| self.error(&p, "writing", e))?;
        let (scratch, fd) = self
            .create_scratch(&dir, name, mode)
            .map_err(|e| self.error(&p, "writing", e))?;
        let mut file = std::fs::File::from(fd);
        let written = file
            .write_all(content)
            .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
            .and_then(|()| match owner {
                Some((uid, gid)) => rustix::fs::fchown(
                    &file,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                ),
                None => Ok(()),
            })
            // After chown, which may clear the setuid and setgid bits; and past the umask.
            .and_then(|()| rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)))
            .and_then(|()| rustix::fs::renameat(&dir, &scratch, &dir, name));
        if let Err(errno) = written {
            let _ = rustix::fs::unlinkat(&dir, &scratch, AtFlags::empty());
            return Err(self.error(&p, "writing", errno));
        }
        Ok(())
    }

    /// A new file of `mode` beside `name` in `dir`, created exclusively.
    fn create_scratch(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        mode: u32,
    ) -> Result<(OsString, OwnedFd), Errno> {
        let scratch = scratch_name(name);
        let create = || {
            rustix::fs::openat2(
                dir,
                &scratch,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode & 0o777),
                NAME,
            )
        };
        let fd = match create() {
            // Left by a process of the same pid that was killed: the name is ours now.
            Err(Errno::EXIST) => {
                rustix::fs::unlinkat(dir, &scratch, AtFlags::empty())?;
                create()?
            }
            other => other?,
        };
        Ok((scratch, fd))
    }

    /// Make `path` a symlink to `target`, replacing a file, a symlink or an empty
    /// directory there by a rename.
    pub fn symlink(&self, path: &Path, target: &Path) -> Result<()> {
        let p = BoxPath::new(path)?;
        let name = p.name()?;
        let dir = self.parent(&p).map_err(|e| self.error(&p, "writing", e))?;
        if rustix::fs::readlinkat(&dir, name, Vec::new())
            .is_ok_and(|old| old.as_bytes() == target.as_os_str().as_bytes())
        {
            return Ok(());
        }
        if rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        {
            match rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR) {
                Ok(()) => {}
                Err(Errno::NOTEMPTY | Errno::EXIST) => {
                    return Err(crate::error::failure(
                        format!(
                            "box makes {} a symlink, and it is a directory with files in the box",
                            p.path.display()
                        ),
                        format!(
                            "remove that directory in the box (`box run NAME --user root -- rm -r {}`), or use an image without it",
                            p.path.display()
                        ),
                    ));
                }
                Err(errno) => return Err(self.error(&p, "replacing", errno)),
            }
        }
        let scratch = scratch_name(name);
        let made = match rustix::fs::symlinkat(target, &dir, &scratch) {
            Err(Errno::EXIST) => rustix::fs::unlinkat(&dir, &scratch, AtFlags::empty())
                .and_then(|()| rustix::fs::symlinkat(target, &dir, &scratch)),
            other => other,
        }
        .and_then(|()| rustix::fs::renameat(&dir, &scratch, &dir, name));
        if let Err(errno) = made {
            let _ = rustix::fs::unlinkat(&dir, &scratch, AtFlags::empty());
            return Err(self.error(&p, "writing", errno));
        }
        Ok(())
    }

    /// Remove `path` when it is an empty regular file or an empty directory (what box
    /// made as a mount point); whether it was removed.
    pub fn remove_if_empty(&self, path: &Path) -> Result<bool> {
        let p = BoxPath::new(path)?;
        let name = p.name()?;
        let dir = match self.parent(&p) {
            Ok(dir) => dir,
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Ok(false),
            Err(errno) => return Err(self.error(&p, "removing", errno)),
        };
        let flags = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                AtFlags::REMOVEDIR
            }
            Ok(st)
                if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                    && st.st_size == 0 =>
            {
                AtFlags::empty()
            }
            Ok(_) | Err(Errno::NOENT) => return Ok(false),
            Err(errno) => return Err(self.error(&p, "removing", errno)),
        };
        match rustix::fs::unlinkat(&dir, name, flags) {
            Ok(()) => Ok(true),
            // Not empty, or a mount point in use: not box's to remove.
            Err(Errno::NOTEMPTY | Errno::EXIST | Errno::BUSY | Errno::NOENT) => Ok(false),
            Err(errno) => Err(self.error(&p, "removing", errno)),
        }
    }

    /// Give `path` (following symlinks inside one of the box's own filesystems) `mode`.
    pub fn chmod(&self, path: &Path, mode: u32) -> Result<()> {
        let p = BoxPath::new(path)?;
        let (own, rel) = self.locate(&p.parts);
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        open_in(own.fd.as_fd(), &rel, flags, IN_OWN_ROOT)
            .and_then(|fd| rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)))
            .map_err(|errno| self.error(&p, "changing the mode of", errno))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn boxfs(root: &Path) -> BoxFs {
        let fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        BoxFs::new(fd)
    }

    #[test]
    fn symlinks_resolve_in_the_box_and_the_last_one_is_replaced_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "mine\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // An absolute symlink to the outside directory, a name that is a symlink to the
        // victim, and `..` as far as it goes.
        symlink(outside.path(), root.join("etc/sudoers.d")).unwrap();
        // The same path in the box: where that link leads there.
        let inside = root.join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        symlink(&victim, root.join("etc/passwd")).unwrap();
        symlink("../../../../..", root.join("etc/up")).unwrap();
        let fs = boxfs(root);

        fs.create_dir_all(Path::new("/etc/sudoers.d"), 0o755)
            .unwrap();
        fs.write(Path::new("/etc/sudoers.d/box-alice"), b"x\n", 0o440, None)
            .unwrap();
        fs.write(Path::new("/etc/passwd"), b"alice:x:1000\n", 0o644, None)
            .unwrap();
        fs.write(Path::new("/etc/up/etc/hosts"), b"127.0.0.1\n", 0o644, None)
            .unwrap();
        fs.symlink(
            Path::new("/etc/up/tz"),
            Path::new("/usr/share/zoneinfo/UTC"),
        )
        .unwrap();

        // The victim is as it was; everything landed in the box's tree.
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine\n");
        assert_eq!(std::fs::metadata(&victim).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        let meta = std::fs::metadata(inside.join("box-alice")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o440);
        assert_eq!(
            std::fs::read_to_string(root.join("etc/passwd")).unwrap(),
            "alice:x:1000\n"
        );
        assert!(!root.join("etc/passwd").is_symlink());
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hosts")).unwrap(),
            "127.0.0.1\n"
        );
        assert_eq!(
            std::fs::read_link(root.join("tz")).unwrap(),
            Path::new("/usr/share/zoneinfo/UTC")
        );
        // No scratch file is left.
        let names: Vec<_> = std::fs::read_dir(root.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");

        // Reads follow symlinks inside the box, lstat does not.
        assert_eq!(
            fs.read(Path::new("/etc/up/etc/passwd"), 100)
                .unwrap()
                .unwrap(),
            b"alice:x:1000\n"
        );
        assert_eq!(fs.read(Path::new("/etc/missing"), 100).unwrap(), None);
        assert!(fs.is_dir(Path::new("/etc/up")).unwrap());
        assert_eq!(
            fs.lstat(Path::new("/etc/up")).unwrap().unwrap().kind,
            FileType::Symlink
        );
        assert_eq!(
            fs.read_link(Path::new("/etc/up")).unwrap().unwrap(),
            Path::new("../../../../..")
        );
        assert_eq!(fs.read_no_follow(Path::new("/tz"), 100).unwrap(), None);
        // `..` is refused in box paths.
        assert!(fs.write(Path::new("/etc/../x"), b"", 0o644, None).is_err());
    }

    #[test]
    fn only_empty_files_and_directories_are_removed_and_modes_change_in_the_box() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("opt/empty")).unwrap();
        std::fs::create_dir_all(root.join("opt/full")).unwrap();
        std::fs::write(root.join("opt/full/x"), "x").unwrap();
        std::fs::write(root.join("opt/zero"), "").unwrap();
        std::fs::write(root.join("opt/data"), "data").unwrap();
        symlink("/opt/zero", root.join("opt/link")).unwrap();
        let fs = boxfs(root);
        let remove = |p: &str| fs.remove_if_empty(Path::new(p)).unwrap();
        assert!(remove("/opt/empty") && remove("/opt/zero"));
        assert!(!remove("/opt/full") && !remove("/opt/data") && !remove("/opt/link"));
        assert!(!remove("/opt/missing") && !remove("/nowhere/at/all"));
        assert!(root.join("opt/link").is_symlink());

        std::fs::write(root.join("opt/zero"), "").unwrap();
        fs.chmod(Path::new("/opt/link"), 0o600).unwrap();
        let mode = std::fs::metadata(root.join("opt/zero")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_path_is_found_in_the_own_filesystem_of_its_longest_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let run = dir.path().join("run");
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        let open = |p: &Path| {
            rustix::fs::open(p, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
        };
        let fs = BoxFs::new(open(&root)).with_own_mount(Path::new("/run"), open(&run));
        fs.create_dir_all(Path::new("/run/box"), 0o755).unwrap();
        fs.write(Path::new("/run/box/x"), b"x", 0o600, None)
            .unwrap();
        fs.write(Path::new("/runaway"), b"y", 0o644, None).unwrap();
        assert_eq!(std::fs::read(run.join("box/x")).unwrap(), b"x");
        assert!(!root.join("run/box").exists());
        assert_eq!(std::fs::read(root.join("runaway")).unwrap(), b"y");
    }
}
