//! The tar extractor behind [`super::unpack_layer`]: one pass over the decompressed,
//! hashed stream, every write made relative to a directory descriptor inside `dest`.
//!
//! Ordering rules (why the code looks the way it does):
//! - ownership before mode: chown(2) clears the setuid/setgid bits, so chmod comes after;
//! - directory mode, owner and mtime are applied after the whole tar: creating children
//!   changes a directory's mtime, and a read-only directory (0555) would stop later
//!   entries from being created in it when we are not root in the namespace;
//! - regular files are always created with `O_EXCL` (an existing entry is removed
//!   first), so a hard link made by an earlier entry is never written through.
//!
//! Known limits: sub-second PAX mtimes are ignored; files are not fsync'ed one by one
//! (the store helper syncs the filesystem once before renaming the finished layer into
//! place). Whole 4 KiB blocks of zeros in a file become holes, whatever the tar says.
//!
//! Limits on paths, checked before anything is made for an entry ([`check_path_limits`]):
//! at most [`MAX_DEPTH`] components (1024, node-tar's default since CVE-2024-28863) and
//! [`PATH_MAX`] bytes. The kernel resolves no path longer than PATH_MAX (4096 bytes with
//! its NUL), which bounds a tree made of one-byte names at about 2048 levels anyway, and
//! real images are a few dozen levels deep at most; a hostile layer thousands of levels
//! deep would only cost every later walk of the tree. Removal does not rely on the limit:
//! [`super::tree::remove_tree_at`] removes a tree of any depth with two descriptors (a
//! box's own upper directory has no such limit).

use std::collections::HashSet;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context as _, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use super::tree::{make_dirs_beneath, open_dir_beneath, remove_tree_at, split_last};
use super::{Compression, UnpackStats};
use crate::digest::{Digest, HashingReader};
use crate::error::failure;

/// The hint of an entry no sane layer has.
const MALFORMED_LAYER: &str = "the layer is malformed; rebuild the image or ask its publisher";

/// The most components an entry's path may have (see the module doc).
pub(crate) const MAX_DEPTH: usize = 1024;

/// The longest path, in bytes, the kernel resolves (PATH_MAX, 4096, counts the NUL).
pub(crate) const PATH_MAX: usize = 4095;

/// Refuse a normalized entry path deeper than [`MAX_DEPTH`] or longer than [`PATH_MAX`].
pub(crate) fn check_path_limits(path: &[u8]) -> Result<()> {
    let depth = path.split(|&b| b == b'/').count();
    if depth > MAX_DEPTH {
        return Err(failure(
            format!(
                "its path is {depth} levels deep ({} directories above it); box unpacks at most \
                 {MAX_DEPTH} levels",
                depth - 1
            ),
            "no real image nests that deep: the layer is hostile or broken; do not use this image",
        ));
    }
    if path.len() > PATH_MAX {
        return Err(failure(
            format!(
                "its path is {} bytes long; Linux resolves paths of at most {PATH_MAX} bytes \
                 (PATH_MAX)",
                path.len()
            ),
            "nothing could use that file: the layer is hostile or broken; do not use this image",
        ));
    }
    Ok(())
}

/// An entry's name as shown in messages: whole unless it is very long.
fn shown_name(raw: &[u8]) -> String {
    const HEAD: usize = 60;
    const TAIL: usize = 30;
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() <= HEAD + TAIL + 20 {
        return text.into_owned();
    }
    let head: String = text.chars().take(HEAD).collect();
    let tail: String = {
        let mut tail: Vec<char> = text.chars().rev().take(TAIL).collect();
        tail.reverse();
        tail.into_iter().collect()
    };
    format!("{head}…{tail}")
}

/// Unpack into the directory open as `dest` (`dest_path` is for messages only).
/// See [`super::unpack_layer`].
pub fn unpack_layer_at(
    input: impl Read,
    compression: Compression,
    expected_diff_id: &Digest,
    dest: OwnedFd,
    dest_path: &Path,
    label: &str,
) -> Result<UnpackStats> {
    unpack_stream(input, compression, expected_diff_id, dest, label)
        .map_err(|err| map_out_of_space(err, label, dest_path))
}

/// A full disk deserves its own message rather than the errno of whichever write hit it.
pub(crate) fn map_out_of_space(err: anyhow::Error, label: &str, dest: &Path) -> anyhow::Error {
    if !crate::error::is_out_of_space(&err) {
        return err;
    }
    failure(
        format!(
            "no space left on device while unpacking {label} into {}",
            dest.display()
        ),
        crate::error::FREE_SPACE_HINT,
    )
}

fn unpack_stream(
    input: impl Read,
    compression: Compression,
    expected: &Digest,
    dest: OwnedFd,
    label: &str,
) -> Result<UnpackStats> {
    let decoder = compression.decoder(input, label)?;
    let hashing = HashingReader::new(decoder);
    let tap = EofTap {
        inner: BufReader::with_capacity(256 << 10, hashing),
        saw_eof: false,
    };
    let mut archive = tar::Archive::new(tap);
    let mut unpacker = Unpacker::new(dest, label)?;
    let corrupt = |err: io::Error| {
        failure(
            format!("{label} is truncated or corrupt: {err}"),
            "pull the image again; if this persists, the image in the registry is damaged",
        )
    };
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish_dirs()?;
    // Hash the rest of the stream too: the diff_id covers the end-of-archive blocks and
    // any padding after them.
    let mut tap = archive.into_inner();
    let ended_cleanly = !tap.saw_eof;
    io::copy(&mut tap.inner, &mut io::sink()).map_err(corrupt)?;
    let (_, hasher) = tap.inner.into_inner().into_parts();
    let tar_bytes = hasher.bytes;
    let actual = hasher.finish();
    if &actual != expected {
        if !ended_cleanly {
            return Err(corrupt(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the tar stream ends without its end-of-archive marker",
            )));
        }
        return Err(failure(
            format!(
                "{label}: uncompressed digest {actual} does not match the image config's diff_id {expected}"
            ),
            "the image is damaged or was tampered with; pull it again, or ask its publisher",
        ));
    }
    let mut stats = unpacker.stats;
    stats.tar_bytes = tar_bytes;
    Ok(stats)
}

/// Remembers whether the tar reader hit the end of the stream: a complete tar stops at
/// its end-of-archive block and never sees EOF, a tar cut at an entry boundary does.
struct EofTap<R> {
    inner: R,
    saw_eof: bool,
}

impl<R: Read> Read for EofTap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.saw_eof = true;
        }
        Ok(n)
    }
}

/// Owner, mode and time of an entry, from its header.
#[derive(Debug, Clone, Copy)]
struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: u64,
}

impl Meta {
    fn times(&self) -> Timestamps {
        let t = Timespec {
            tv_sec: i64::try_from(self.mtime).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }

    fn mode(&self) -> Mode {
        Mode::from_raw_mode(self.mode & 0o7777)
    }
}

/// The inside ranges of this process's uid_map or gid_map.
#[derive(Debug)]
struct IdRanges(Vec<(u64, u64)>);

impl IdRanges {
    fn read(file: &str) -> Result<IdRanges> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        Ok(IdRanges::parse(&text))
    }

    fn parse(text: &str) -> IdRanges {
        IdRanges(
            text.lines()
                .filter_map(|line| {
                    let mut fields = line.split_whitespace().map(|f| f.parse::<u64>());
                    let inside = fields.next()?.ok()?;
                    let _outside = fields.next()?.ok()?;
                    let count = fields.next()?.ok()?;
                    Some((inside, inside + count))
                })
                .collect(),
        )
    }

    /// Whether `id` is mapped here and an owner a layer's file may have: never the store
    /// owner, which the store helper's namespace maps besides a box's ids (see
    /// [`crate::sys::idmap::STORE_OWNER_INSIDE`]); a file of its would be out of every
    /// box's reach, and a tar naming it is not the image's to decide.
    fn contains(&self, id: u64) -> bool {
        id != u64::from(crate::sys::idmap::STORE_OWNER_INSIDE)
            && self.0.iter().any(|&(start, end)| id >= start && id < end)
    }
}

enum Kind {
    Dir,
    File,
    Symlink(Vec<u8>),
    HardLink(Vec<u8>),
    Fifo,
    Whiteout,
    Device,
    Skip,
}

struct Unpacker<'l> {
    root: OwnedFd,
    label: &'l str,
    uids: IdRanges,
    gids: IdRanges,
    euid: u64,
    egid: u64,
    /// The last parent directory opened, by relative path: tar entries come mostly in
    /// directory order, so this saves an openat2 per entry.
    parent: Option<(Vec<u8>, Rc<OwnedFd>)>,
    /// Directories whose metadata is applied at the end, in tar order.
    dirs: Vec<(Vec<u8>, Meta)>,
    buf: Vec<u8>,
    stats: UnpackStats,
    /// The name of the entry being applied, as the tar spells it (for messages).
    current: String,
}

impl<'l> Unpacker<'l> {
    fn new(root: OwnedFd, label: &'l str) -> Result<Unpacker<'l>> {
        Ok(Unpacker {
            root,
            label,
            uids: IdRanges::read("/proc/self/uid_map")?,
            gids: IdRanges::read("/proc/self/gid_map")?,
            euid: rustix::process::geteuid().as_raw().into(),
            egid: rustix::process::getegid().as_raw().into(),
            parent: None,
            dirs: Vec::new(),
            buf: vec![0; 1 << 20],
            stats: UnpackStats::default(),
            current: String::new(),
        })
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw_path = entry.path_bytes().into_owned();
        self.current = shown_name(&raw_path);
        self.entry_inner(entry, &raw_path)
            .with_context(|| format!("{}: entry `{}`", self.label, self.current))
    }

    fn entry_inner<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<()> {
        use tar::EntryType as T;
        let header = entry.header();
        let entry_type = header.entry_type();
        let path = normalize(raw)?;
        check_path_limits(&path)?;
        let kind = match entry_type {
            T::XGlobalHeader => Kind::Skip,
            _ if split_last(&path).1.starts_with(b".wh.") => Kind::Whiteout,
            T::Directory => Kind::Dir,
            // Old (v7) tars mark directories with a trailing slash only.
            T::Regular | T::Continuous if raw.ends_with(b"/") => Kind::Dir,
            T::Regular | T::Continuous | T::GNUSparse => Kind::File,
            T::Symlink => Kind::Symlink(link_name(entry)?),
            T::Link => Kind::HardLink(link_name(entry)?),
            T::Fifo => Kind::Fifo,
            T::Char
                if header.device_major().ok().flatten() == Some(0)
                    && header.device_minor().ok().flatten() == Some(0) =>
            {
                // Already an overlay whiteout (some tools store them as is): keep it.
                Kind::Whiteout
            }
            T::Char | T::Block => Kind::Device,
            other => {
                return Err(failure(
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                    "the layer was made by an unusual tool; rebuild the image with docker, podman or buildah",
                ));
            }
        };
        if matches!(kind, Kind::Skip) {
            return Ok(());
        }
        self.stats.entries += 1;
        let meta = Meta {
            uid: header.uid().context("reading the entry's uid")?,
            gid: header.gid().context("reading the entry's gid")?,
            mode: header.mode().context("reading the entry's mode")?,
            mtime: header.mtime().context("reading the entry's mtime")?,
        };
        if path.is_empty() {
            // `./` itself: the layer root's metadata.
            if !matches!(kind, Kind::Dir) {
                return Err(failure(
                    "the layer root must be a directory",
                    MALFORMED_LAYER,
                ));
            }
            let xattrs = self.xattrs(entry)?;
            let root = open_dir_beneath(self.root.as_fd(), b"")?;
            self.set_xattrs(Target::Fd(root.as_fd()), &xattrs)?;
            self.dirs.push((Vec::new(), meta));
            return Ok(());
        }
        let (parent_path, name) = split_last(&path);
        let parent = self.parent(parent_path)?;
        let parent = parent.as_fd();
        match kind {
            Kind::Skip => {}
            Kind::Whiteout => self.whiteout(parent, name, entry_type == T::Char)?,
            Kind::Device => {
                self.stats.entries -= 1;
                self.stats
                    .skipped_devices
                    .push(String::from_utf8_lossy(&path).into_owned());
            }
            Kind::Dir => {
                let xattrs = self.xattrs(entry)?;
                self.replace(parent, name, true, |p, n| {
                    rustix::fs::mkdirat(p, n, Mode::from_raw_mode(0o755))
                })
                .context("creating the directory")?;
                if !xattrs.is_empty() {
                    let dir = open_dir_beneath(parent, name)?;
                    self.set_xattrs(Target::Fd(dir.as_fd()), &xattrs)?;
                }
                self.dirs.push((path.clone(), meta));
            }
            Kind::File => {
                let xattrs = self.xattrs(entry)?;
                let file = self
                    .replace(parent, name, false, |p, n| {
                        rustix::fs::openat(
                            p,
                            n,
                            OFlags::WRONLY
                                | OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o600),
                        )
                    })
                    .context("creating the file")?
                    .expect("only directories are kept");
                let mut file = std::fs::File::from(file);
                self.copy_data(entry, &mut file)?;
                self.set_owner(Target::Fd(file.as_fd()), meta)?;
                rustix::fs::fchmod(&file, meta.mode()).context("setting the mode")?;
                self.set_xattrs(Target::Fd(file.as_fd()), &xattrs)?;
                rustix::fs::futimens(&file, &meta.times()).context("setting the mtime")?;
            }
            Kind::Symlink(target) => {
                let xattrs = self.xattrs(entry)?;
                // The target is only ever resolved inside the box: it may point anywhere.
                self.replace(parent, name, false, |p, n| {
                    rustix::fs::symlinkat(target.as_slice(), p, n)
                })
                .context("creating the symlink")?;
                self.set_owner(Target::At(parent, name), meta)?;
                self.set_xattrs(Target::At(parent, name), &xattrs)?;
                rustix::fs::utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
                    .context("setting the mtime")?;
            }
            Kind::HardLink(target) => self.hard_link(parent, name, &path, &target)?,
            Kind::Fifo => {
                let xattrs = self.xattrs(entry)?;
                self.replace(parent, name, false, |p, n| {
                    rustix::fs::mknodat(p, n, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                })
                .context("creating the fifo")?;
                self.set_owner(Target::At(parent, name), meta)?;
                // No symlink can be there: we created the fifo just above, and nobody
                // else writes in a staging directory.
                rustix::fs::chmodat(parent, name, meta.mode(), AtFlags::empty())
                    .context("setting the mode")?;
                self.set_xattrs(Target::At(parent, name), &xattrs)?;
                rustix::fs::utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
                    .context("setting the mtime")?;
            }
        }
        Ok(())
    }

    /// The directory `path` (relative to the root), created if missing.
    fn parent(&mut self, path: &[u8]) -> Result<Rc<OwnedFd>> {
        if let Some((cached, fd)) = &self.parent
            && cached == path
        {
            return Ok(fd.clone());
        }
        let fd = make_dirs_beneath(self.root.as_fd(), path, Mode::from_raw_mode(0o755))
            .map_err(|err| match err.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::EXDEV) => failure(
                    format!(
                        "its parent `{}` is or goes through a symlink; refusing to write through it",
                        String::from_utf8_lossy(path)
                    ),
                    "the layer tries to write outside its directory (or was made by a broken tool); do not use this image",
                ),
                // A symlink met with O_NOFOLLOW|O_DIRECTORY reports ENOTDIR too.
                Some(libc::ENOTDIR) => failure(
                    format!(
                        "its parent `{}` is not a directory (or is a symlink); refusing to write through it",
                        String::from_utf8_lossy(path)
                    ),
                    "the layer tries to write outside its directory or is malformed; do not use this image",
                ),
                _ => anyhow::Error::from(err).context(format!(
                    "opening its parent `{}`",
                    String::from_utf8_lossy(path)
                )),
            })?;
        let fd = Rc::new(fd);
        self.parent = Some((path.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// Run `create`; if the name exists, remove what is there (unless both are
    /// directories: then the existing one stays, with its contents) and try again.
    /// Returns `None` when an existing directory was kept.
    fn replace<T>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        is_dir: bool,
        mut create: impl FnMut(BorrowedFd<'_>, &[u8]) -> rustix::io::Result<T>,
    ) -> io::Result<Option<T>> {
        match create(parent, name) {
            Err(Errno::EXIST) => {}
            other => return other.map(Some).map_err(io::Error::from),
        }
        let existing = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if is_dir && FileType::from_raw_mode(existing.st_mode) == FileType::Directory {
            return Ok(None);
        }
        remove_tree_at(parent, name)?;
        create(parent, name).map(Some).map_err(io::Error::from)
    }

    /// Copy an entry's data into `file`, leaving holes where whole 4 KiB blocks are zero:
    /// a sparse file packed as zeros (as docker, podman and `box commit` pack them) is
    /// sparse again, and a layer's zeros cost no disk.
    fn copy_data<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        file: &mut std::fs::File,
    ) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        const BLOCK: usize = 4096;
        let mut size = 0u64;
        let mut ends_in_hole = false;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(failure(
                        format!("{} is truncated or corrupt: {err}", self.label),
                        "pull the image again; if this persists, the image in the registry is damaged",
                    ));
                }
            };
            size += n as u64;
            let mut data = &self.buf[..n];
            while !data.is_empty() {
                let zeros = data
                    .chunks(BLOCK)
                    .take_while(|block| block.len() == BLOCK && block.iter().all(|&b| b == 0))
                    .count()
                    * BLOCK;
                if zeros > 0 {
                    file.seek(SeekFrom::Current(zeros as i64))
                        .context("writing the file")?;
                    ends_in_hole = true;
                    data = &data[zeros..];
                    continue;
                }
                let written = data
                    .chunks(BLOCK)
                    .take_while(|block| block.len() < BLOCK || block.iter().any(|&b| b != 0))
                    .map(<[u8]>::len)
                    .sum::<usize>();
                file.write_all(&data[..written])
                    .context("writing the file")?;
                ends_in_hole = false;
                data = &data[written..];
            }
        }
        if ends_in_hole {
            file.set_len(size).context("writing the file")?;
        }
        Ok(())
    }

    /// Change the owner to the entry's, when it differs from ours and exists here.
    fn set_owner(&mut self, target: Target<'_>, meta: Meta) -> Result<()> {
        if meta.uid == self.euid && meta.gid == self.egid {
            return Ok(());
        }
        let uid = (meta.uid != self.euid && self.uids.contains(meta.uid))
            .then(|| u32::try_from(meta.uid).ok())
            .flatten();
        let gid = (meta.gid != self.egid && self.gids.contains(meta.gid))
            .then(|| u32::try_from(meta.gid).ok())
            .flatten();
        if (meta.uid != self.euid && uid.is_none()) || (meta.gid != self.egid && gid.is_none()) {
            self.stats.unmapped_owners += 1;
        }
        if uid.is_none() && gid.is_none() {
            return Ok(());
        }
        let uid = uid.map(Uid::from_raw);
        let gid = gid.map(Gid::from_raw);
        match target {
            Target::Fd(fd) => rustix::fs::fchown(fd, uid, gid),
            Target::At(parent, name) => {
                rustix::fs::chownat(parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            }
        }
        .with_context(|| format!("changing the owner to {}:{}", meta.uid, meta.gid))
    }

    /// The entry's extended attributes: its `SCHILY.xattr.*` PAX records, and libarchive's
    /// `LIBARCHIVE.xattr.*` (URL-encoded name, base64 value) for names those lack. tar-rs
    /// splits PAX records at newlines, so a value holding one (a binary
    /// `security.capability`) reads as malformed pieces, which are skipped: box's own
    /// layers carry such values in libarchive's form too (the diff_id check has already
    /// vouched for the bytes, so nothing else can be wrong with a record).
    fn xattrs<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        use base64::Engine as _;
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let Some(extensions) = entry.pax_extensions().context("reading PAX records")? else {
            return Ok(out);
        };
        let mut libarchive = Vec::new();
        for extension in extensions.flatten() {
            if let Some(name) = extension.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((name.to_vec(), extension.value_bytes().to_vec()));
            } else if let Some(name) = extension.key_bytes().strip_prefix(b"LIBARCHIVE.xattr.")
                && let Some(name) = url_decode(name)
                && let Ok(value) =
                    base64::engine::general_purpose::STANDARD.decode(extension.value_bytes())
            {
                libarchive.push((name, value));
            }
        }
        for (name, value) in libarchive {
            if !out.iter().any(|(n, _)| *n == name) {
                out.push((name, value));
            }
        }
        Ok(out)
    }

    /// Apply the entry's xattrs where the filesystem allows: one it refuses is left out
    /// and counted for the layer's warning (a full disk or an I/O error still fails).
    /// This is only for xattrs from the tar: the overlay whiteout and opaque markers box
    /// derives itself are set in [`Unpacker::whiteout`], where a refusal fails the unpack.
    fn set_xattrs(&mut self, target: Target<'_>, xattrs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        for (name, value) in xattrs {
            // Overlay's own metadata may only come from whiteout entries: a layer setting
            // `user.overlay.redirect` or `.opaque` itself could reshape the merged tree.
            if name.starts_with(b"user.overlay.") || name.starts_with(b"trusted.overlay.") {
                self.stats.overlay_xattrs += 1;
                continue;
            }
            let result = match target {
                Target::Fd(fd) => {
                    rustix::fs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty())
                }
                Target::At(parent, entry) => {
                    // No lsetxattrat before Linux 6.13: go through our own descriptor's
                    // /proc entry; the last component is not followed.
                    let mut path = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
                    path.extend_from_slice(entry);
                    rustix::fs::lsetxattr(path, name.as_slice(), value, XattrFlags::empty())
                }
            };
            match result {
                Ok(()) => {}
                // The filesystem or the namespace says no to this attribute: `trusted.*`
                // needs CAP_SYS_ADMIN in the initial namespace, `user.*` is refused on
                // symlinks and special files (EPERM), a filesystem may have no user
                // xattrs at all (EOPNOTSUPP) or a smaller size limit (E2BIG, ERANGE).
                Err(
                    err @ (Errno::PERM
                    | Errno::ACCESS
                    | Errno::OPNOTSUPP
                    | Errno::TOOBIG
                    | Errno::RANGE),
                ) => {
                    self.stats.refused_xattrs += 1;
                    if self.stats.refused_xattr_examples.len() < super::XATTR_EXAMPLES {
                        self.stats.refused_xattr_examples.push(format!(
                            "{} on {} ({})",
                            String::from_utf8_lossy(name),
                            self.current,
                            io::Error::from(err)
                        ));
                    }
                }
                Err(err) => {
                    return Err(io::Error::from(err)).with_context(|| {
                        format!("setting the xattr {}", String::from_utf8_lossy(name))
                    });
                }
            }
        }
        Ok(())
    }

    /// `.wh.NAME` → a 0:0 character device NAME; `.wh..wh..opq` → the parent is opaque.
    /// `already_device` is a 0:0 char device entry stored as is.
    fn whiteout(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        already_device: bool,
    ) -> Result<()> {
        let target: &[u8] = if already_device {
            name
        } else if name == b".wh..wh..opq" {
            rustix::fs::fsetxattr(parent, "user.overlay.opaque", b"y", XattrFlags::empty())
                .map_err(io::Error::from)
                .context("marking the directory opaque (xattr user.overlay.opaque)")?;
            return Ok(());
        } else if name.starts_with(b".wh..wh.") {
            // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): no meaning for overlay.
            self.stats.entries -= 1;
            return Ok(());
        } else {
            &name[4..]
        };
        if target.is_empty() || target == b"." || target == b".." || target.contains(&b'/') {
            return Err(failure(
                "the whiteout names no valid file",
                "the layer is malformed; do not use this image",
            ));
        }
        remove_tree_at(parent, target).context("removing the whited-out file")?;
        rustix::fs::mknodat(parent, target, FileType::CharacterDevice, Mode::empty(), 0)
            .map_err(io::Error::from)
            .context("creating the overlay whiteout (a 0:0 character device)")?;
        Ok(())
    }

    fn hard_link(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        target: &[u8],
    ) -> Result<()> {
        let target = normalize(target).with_context(|| {
            format!(
                "the hard link's target `{}`",
                String::from_utf8_lossy(target)
            )
        })?;
        if target.is_empty() {
            return Err(failure(
                "the hard link's target is the layer root",
                MALFORMED_LAYER,
            ));
        }
        if target == path {
            return Ok(());
        }
        let (target_parent, target_name) = split_last(&target);
        let target_dir = open_dir_beneath(self.root.as_fd(), target_parent)
            .map_err(|err| self.hard_link_refusal(&target, err))?;
        self.replace(parent, name, false, |p, n| {
            // Without AT_SYMLINK_FOLLOW: a symlink target is linked itself, never followed.
            rustix::fs::linkat(&target_dir, target_name, p, n, AtFlags::empty())
        })
        .map(drop)
        .map_err(|err| self.hard_link_refusal(&target, err))
    }

    /// Why a hard link to `target` (normalized) could not be made, once a syscall said
    /// `err`: the first component of the target that is missing, a symlink, or not a
    /// directory, or the target being a directory itself.
    fn hard_link_refusal(&self, target: &[u8], err: io::Error) -> anyhow::Error {
        const MALFORMED: &str = "a hard link must name a file written earlier in the same layer; the layer is \
             malformed or was made by a broken tool: rebuild the image or ask its publisher";
        let shown = String::from_utf8_lossy(target).into_owned();
        let lossy = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        match first_obstacle(self.root.as_fd(), target) {
            Some(Obstacle::Missing(at)) if at.len() == target.len() => failure(
                format!("the hard link's target `{shown}` does not exist in the layer"),
                MALFORMED,
            ),
            Some(Obstacle::Missing(at)) => failure(
                format!(
                    "the hard link's target `{shown}` does not exist in the layer (there is no `{}`)",
                    lossy(at)
                ),
                MALFORMED,
            ),
            Some(Obstacle::Symlink(at)) => failure(
                format!(
                    "the hard link's target `{shown}` goes through the symlink `{}`; refusing it \
                     (hard-link targets are never resolved through symlinks)",
                    lossy(at)
                ),
                "the layer tries to reach outside its directory, or was made by a broken tool; do not use this image",
            ),
            Some(Obstacle::NotDirectory(at)) => failure(
                format!(
                    "the hard link's target `{shown}` goes through `{}`, which is not a directory",
                    lossy(at)
                ),
                MALFORMED,
            ),
            Some(Obstacle::Directory) => failure(
                format!(
                    "the hard link's target `{shown}` is a directory; directories cannot be hard-linked"
                ),
                MALFORMED,
            ),
            None => anyhow::Error::from(err)
                .context(format!("hard-linking to `{shown}`"))
                .context(crate::error::Hint(
                    "check that the store's filesystem supports hard links and is not full".into(),
                )),
        }
    }

    /// Apply the deferred directory metadata, children before parents (so that a
    /// directory made read-only does not stop us reaching its children), last entry of
    /// a path winning.
    fn finish_dirs(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        let mut done: HashSet<&[u8]> = HashSet::new();
        for (path, meta) in dirs.iter().rev() {
            if !done.insert(path.as_slice()) {
                continue;
            }
            let dir = match open_dir_beneath(self.root.as_fd(), path) {
                Ok(dir) => dir,
                // Replaced by a later entry (a file, a symlink) or removed by a whiteout.
                Err(err)
                    if matches!(
                        err.raw_os_error(),
                        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
                    ) =>
                {
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            let shown = String::from_utf8_lossy(path);
            let shown = if shown.is_empty() { ".".into() } else { shown };
            (|| {
                self.set_owner(Target::Fd(dir.as_fd()), *meta)?;
                rustix::fs::fchmod(&dir, meta.mode()).context("setting the mode")?;
                rustix::fs::futimens(&dir, &meta.times()).context("setting the mtime")?;
                anyhow::Ok(())
            })()
            .with_context(|| format!("{}: directory `{shown}`", self.label))?;
        }
        Ok(())
    }
}

/// What stops a path from naming a file in the layer, from [`first_obstacle`].
#[derive(Debug, PartialEq, Eq)]
enum Obstacle<'p> {
    /// The prefix of the path that does not exist.
    Missing(&'p [u8]),
    /// A prefix (before the last component) that is a symlink.
    Symlink(&'p [u8]),
    /// A prefix (before the last component) that is neither a directory nor a symlink.
    NotDirectory(&'p [u8]),
    /// The whole path is a directory.
    Directory,
}

/// Walk `path` (normalized) from `root` without following anything, and say what stops
/// it from naming a non-directory; `None` when it does name one (or on an unexpected
/// error, which the caller reports as it is).
fn first_obstacle<'p>(root: BorrowedFd<'_>, path: &'p [u8]) -> Option<Obstacle<'p>> {
    let mut dir = open_dir_beneath(root, b"").ok()?;
    let mut end = 0;
    let components: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    for (i, component) in components.iter().enumerate() {
        end += component.len() + usize::from(i > 0);
        let prefix = &path[..end];
        let last = i + 1 == components.len();
        let stat = match rustix::fs::statat(&dir, *component, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Some(Obstacle::Missing(prefix)),
            Err(_) => return None,
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory if last => return Some(Obstacle::Directory),
            FileType::Directory => dir = open_dir_beneath(dir.as_fd(), component).ok()?,
            _ if last => return None,
            FileType::Symlink => return Some(Obstacle::Symlink(prefix)),
            _ => return Some(Obstacle::NotDirectory(prefix)),
        }
    }
    None
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a [u8]),
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<Vec<u8>> {
    match entry.link_name_bytes() {
        Some(name) if !name.is_empty() => Ok(name.into_owned()),
        _ => Err(failure("the link has no target", MALFORMED_LAYER)),
    }
}

/// A `%XX`-encoded name (libarchive's `LIBARCHIVE.xattr.` keys); `None` when malformed.
fn url_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hex = [*bytes.next()?, *bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// A tar path as a relative path of plain components joined by `/`. `.` and empty
/// components are skipped (`./etc/passwd`, as mmdebstrap and `tar -C dir .` write them,
/// is `etc/passwd`); an absolute path and `..` components are refused: an entry names a
/// place in its layer, and a layer with `/etc/passwd` in it was made to write to the host
/// by an unpacker that trusts it. An empty result is the layer root.
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.starts_with(b"/") {
        return Err(failure(
            "the path is absolute; refusing an entry that names a place outside the layer",
            "layer entries are relative to the layer root; the layer is malicious or was made by a broken tool, do not use this image",
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                return Err(failure(
                    "the path has a `..` component; refusing to write outside the layer directory",
                    "the layer is malicious or malformed; do not use this image",
                ));
            }
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(component);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) fn parse_id_ranges_for_test(text: &str, id: u64) -> bool {
    IdRanges::parse(text).contains(id)
}
