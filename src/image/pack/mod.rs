//! Packing a box's overlay upper directory into one OCI layer (`box commit`): a
//! deterministic tar of the box's changes, compressed into a blob under the store's
//! `tmp/`, with its diff_id and digest.
//!
//! Runs in the store helper, in the user namespace with the store's id mapping (see
//! [`super::helper`]), so it reads every file whatever its owner and sees the owners as
//! the box does: the ids of the box, never the host's subordinate ids. With a single-id
//! mapping (a fake-root box) every entry is recorded as root's ([`PackRequest::all_root`]).
//!
//! The layer, entry by entry:
//! - directories, regular files, symlinks, fifos and hard links (a file's second name is
//!   a link entry to its first, in archive order) as they are: mode (setuid, setgid and
//!   sticky bits too), owner, mtime (clamped to [`PackRequest::clamp_mtime`], i.e.
//!   `SOURCE_DATE_EPOCH`), extended attributes but overlay's own (`user.overlay.*`,
//!   `trusted.overlay.*`); a sparse file's holes are read as the zeros they are (the
//!   unpacker makes them holes again);
//! - an overlay whiteout (a 0:0 character device `NAME`) becomes the OCI whiteout
//!   `.wh.NAME`; an opaque directory (`user.overlay.opaque` or `trusted.overlay.opaque`
//!   set to `y`) gets `.wh..wh..opq` right after it;
//! - sockets, other device nodes and names starting with `.wh.` (which every unpacker
//!   takes for whiteouts) cannot be in a layer: they are left out and listed;
//! - what the caller says box itself put there ([`Omissions`]) is left out, and the
//!   user's account is taken out of the account files ([`accounts`]); a file whose
//!   content is then the image's own is left out;
//! - a directory that is only in the upper directory because something in it was created
//!   (overlay copies the parents up), and whose remaining entries were all left out, is
//!   left out when the image has it with the same type, mode and owner.
//!
//! Invariants: entries in a fixed order (each directory walked in bytewise name order,
//! its entries sorted by the names they have in the archive, a directory before what is
//! in it), fixed tar fields ([`tarball`]), so an unchanged box packs to the same bytes
//! and a hard link always follows the name it links to; nothing is followed: every path is opened beneath the upper
//! directory's descriptor without following symlinks; a file that changes while it is
//! read fails the pack (the box must be stopped); the blob is created anew (`O_EXCL`) and
//! removed on any failure, and written whole and synced before the pack reports success.
//! The tar is made on the helper's main thread while a second one compresses and writes
//! it (the helper is past its `unshare`, so threads are harmless there).

pub mod accounts;
mod tarball;

use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, SeekFrom};
use rustix::io::Errno;

use super::tree::{STRICT, open_dir_beneath, split_last};
use crate::digest::{Digest, Hasher};
use crate::error::failure;
use accounts::{Account, Database};
use tarball::{Kind, Meta, TarWriter};

/// How the layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    Gzip,
    Zstd,
}

impl LayerCompression {
    /// The OCI media type of a layer so compressed.
    pub fn media_type(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            LayerCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// What box itself put in a box, for this user and this host, to leave out of its layer.
/// Paths are relative to the box's root (`etc/hosts`), without `.` or `..`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Omissions {
    /// Left out with everything beneath them.
    pub trees: Vec<String>,
    /// Left out, whatever they are.
    pub paths: Vec<String>,
    /// Mount points: left out when they are what box makes for a mount (an empty file or
    /// an empty directory), and so are the directories above them that hold nothing else.
    pub mount_points: Vec<String>,
    /// Files box wrote: left out when a regular file starting with the text.
    pub written_by_box: Vec<(String, String)>,
    /// Package-manager caches: the files and symlinks beneath them are left out (their
    /// directories stay, and so do whiteouts: a cache emptied is a change worth keeping).
    pub caches: Vec<String>,
}

/// Pack the upper directory `upper` into a layer blob at `blob` (both beneath the store
/// root; see [`pack`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PackRequest {
    /// The box's overlay upper directory.
    pub upper: PathBuf,
    /// The image's layer directories, top first: what the box sees below `upper`.
    pub lowers: Vec<PathBuf>,
    /// A fresh path under the store's `tmp/` for the compressed blob.
    pub blob: PathBuf,
    pub compression: LayerCompression,
    /// Mtimes later than this are recorded as this (`SOURCE_DATE_EPOCH`).
    pub clamp_mtime: Option<u64>,
    pub omit: Omissions,
    /// The user whose account to take out of the account files.
    pub account: Option<Account>,
    /// Record every entry as root's (a box without subordinate ids).
    pub all_root: bool,
    /// The ids (in the namespace) to give the blob file: the user's own.
    pub blob_owner: (u32, u32),
    /// Names the box in messages ("box `dev`").
    pub label: String,
}

/// What a pack made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackStats {
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Digest of the compressed blob.
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub tar_bytes: u64,
    /// Tar entries written (whiteouts and opaque markers included).
    pub entries: u64,
    /// Entries of the upper directory left out as box's own (with what is beneath them).
    pub omitted: u64,
    /// Sockets, device nodes and `.wh.` names, which a layer cannot hold.
    pub skipped: Vec<String>,
}

/// Pack `request.upper` (open as `upper`, the lower layers as `lowers`, top first) into a
/// blob created as `blob_name` in the directory open as `blob_dir`.
pub fn pack(
    request: &PackRequest,
    upper: OwnedFd,
    lowers: Vec<OwnedFd>,
    blob_dir: BorrowedFd<'_>,
    blob_name: &[u8],
) -> Result<PackStats> {
    let mut walker = Walker::new(request, Lowers(lowers));
    walker
        .dir(upper.as_fd(), b"", false)
        .map(|(items, _)| walker.items = items)
        .with_context(|| format!("reading the files of {}", request.label))?;
    let file = rustix::fs::openat(
        blob_dir,
        blob_name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(io::Error::from)
    .with_context(|| format!("creating {}", request.blob.display()))?;
    let written = (|| {
        let (uid, gid) = request.blob_owner;
        // Best effort: the blob is readable by the user either way.
        let _ = rustix::fs::fchown(
            &file,
            Some(rustix::process::Uid::from_raw(uid)),
            Some(rustix::process::Gid::from_raw(gid)),
        );
        let file = std::fs::File::from(file);
        let stats = walker.write(&upper, &file, request.compression)?;
        file.sync_all()
            .with_context(|| format!("writing {}", request.blob.display()))?;
        anyhow::Ok(stats)
    })();
    match written {
        Ok(stats) => Ok(stats),
        Err(err) => {
            let _ = rustix::fs::unlinkat(blob_dir, blob_name, AtFlags::empty());
            Err(map_out_of_space(err, request))
        }
    }
}

/// A full disk says so, with what to do.
fn map_out_of_space(err: anyhow::Error, request: &PackRequest) -> anyhow::Error {
    if !crate::error::is_out_of_space(&err) {
        return err;
    }
    failure(
        format!(
            "no space left on device while packing the changes of {} into {}",
            request.label,
            request.blob.display()
        ),
        "free some space (`box rmi` unused images, `box rm` old boxes) and commit again",
    )
}

/// One entry to write.
struct Item {
    meta: Meta,
    data: Data,
}

enum Data {
    None,
    /// The regular file at the item's path in the upper directory, as it was listed.
    File {
        ino: u64,
        sparse: bool,
    },
    Inline(Vec<u8>),
}

/// The image's layers below the upper directory, top first.
struct Lowers(Vec<OwnedFd>);

impl Lowers {
    /// What the image has at `path` (relative): the topmost entry, unless a whiteout, a
    /// non-directory or an opaque directory above it hides it.
    fn find(&self, path: &[u8]) -> Option<(usize, rustix::fs::Stat)> {
        let (parent, name) = split_last(path);
        for (index, layer) in self.0.iter().enumerate() {
            let found = open_dir_beneath(layer.as_fd(), parent)
                .ok()
                .and_then(|dir| rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).ok());
            if let Some(stat) = found {
                return (!is_whiteout(&stat)).then_some((index, stat));
            }
            if hides_below(layer.as_fd(), path) {
                return None;
            }
        }
        None
    }

    /// The content of the regular file the image has at `path`.
    fn read(&self, path: &[u8], limit: u64) -> Option<Vec<u8>> {
        let (index, stat) = self.find(path)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return None;
        }
        read_beneath(self.0[index].as_fd(), path, limit).ok()
    }
}

/// Whether a layer hides what the layers below have at `path`: a whiteout, a
/// non-directory or an opaque directory at one of its parents.
fn hides_below(layer: BorrowedFd<'_>, path: &[u8]) -> bool {
    let mut end = 0;
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        let prefix_end = end + part.len();
        let prefix = &path[..prefix_end];
        end = prefix_end + 1;
        let (parent, name) = split_last(prefix);
        let Ok(dir) = open_dir_beneath(layer, parent) else {
            return false;
        };
        let Ok(stat) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            return false;
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return true;
        }
        if let Ok(fd) = open_dir_beneath(dir.as_fd(), name)
            && is_opaque(fd.as_fd())
        {
            return true;
        }
    }
    false
}

fn is_whiteout(stat: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice && stat.st_rdev == 0
}

/// Whether the directory open as `dir` is an opaque overlay directory.
fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    ["user.overlay.opaque", "trusted.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut value = [0u8; 4];
            matches!(rustix::fs::fgetxattr(dir, *name, &mut value), Ok(1) if value[0] == b'y')
        })
}

/// Read the regular file at `path` beneath `root`, at most `limit` bytes.
fn read_beneath(root: BorrowedFd<'_>, path: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let fd = rustix::fs::openat2(
        root,
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        STRICT,
    )?;
    let mut out = Vec::new();
    std::fs::File::from(fd).take(limit).read_to_end(&mut out)?;
    Ok(out)
}

/// The largest account file taken apart (a bigger one is packed as it is).
const MAX_ACCOUNT_FILE: u64 = 16 << 20;

struct Walker<'r> {
    request: &'r PackRequest,
    lowers: Lowers,
    /// The directories above the mount points.
    mount_point_parents: HashSet<Vec<u8>>,
    /// (dev, ino) of files with several names -> the path of the first one written.
    links: HashMap<(u64, u64), Vec<u8>>,
    items: Vec<Item>,
    entries: u64,
    omitted: u64,
    skipped: Vec<String>,
    /// The image's account texts by path, read once.
    image_texts: HashMap<Vec<u8>, Option<String>>,
}

/// Whether `path` is `prefix` or beneath it.
fn at_or_beneath(path: &[u8], prefix: &str) -> bool {
    let prefix = prefix.as_bytes();
    path == prefix || (path.starts_with(prefix) && path.get(prefix.len()) == Some(&b'/'))
}

fn strictly_beneath(path: &[u8], prefix: &str) -> bool {
    path.len() > prefix.len() && at_or_beneath(path, prefix)
}

impl<'r> Walker<'r> {
    fn new(request: &'r PackRequest, lowers: Lowers) -> Walker<'r> {
        let mut mount_point_parents = HashSet::new();
        for point in &request.omit.mount_points {
            let mut path = point.as_bytes();
            while let Some(i) = path.iter().rposition(|&b| b == b'/') {
                path = &path[..i];
                mount_point_parents.insert(path.to_vec());
            }
        }
        Walker {
            request,
            lowers,
            mount_point_parents,
            links: HashMap::new(),
            items: Vec::new(),
            entries: 0,
            omitted: 0,
            skipped: Vec::new(),
            image_texts: HashMap::new(),
        }
    }

    fn owner(&self, stat: &rustix::fs::Stat) -> (u64, u64) {
        if self.request.all_root {
            (0, 0)
        } else {
            (u64::from(stat.st_uid), u64::from(stat.st_gid))
        }
    }

    fn mtime(&self, stat: &rustix::fs::Stat) -> u64 {
        let mtime = u64::try_from(stat.st_mtime).unwrap_or(0);
        match self.request.clamp_mtime {
            Some(limit) => mtime.min(limit),
            None => mtime,
        }
    }

    fn meta(&self, path: &[u8], kind: Kind, stat: &rustix::fs::Stat) -> Meta {
        let (uid, gid) = self.owner(stat);
        Meta {
            path: path.to_vec(),
            kind,
            mode: stat.st_mode & 0o7777,
            uid,
            gid,
            mtime: self.mtime(stat),
            xattrs: Vec::new(),
        }
    }

    /// The entries of the directory open as `dir` at `path` ("" for the root), in
    /// archive order. Returns them and how many names the directory has on disk.
    fn dir(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &[u8],
        under_opaque: bool,
    ) -> Result<(Vec<Item>, usize)> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for entry in rustix::fs::Dir::read_from(dir).with_context(|| listing(path))? {
            let entry = entry.with_context(|| listing(path))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        // Walked in name order, so that a file's first name (the one its other names
        // link to) is the first in the archive, whatever order the directory lists them.
        names.sort();
        let count = names.len();
        // Each name's entries, in the order of the names they have in the archive (a
        // whiteout's is `.wh.NAME`; a stable sort keeps the others in walking order).
        let mut children: Vec<(Vec<u8>, Vec<Item>)> = Vec::with_capacity(names.len());
        for name in names {
            let mut child = path.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            let mut items = Vec::new();
            self.entry(dir, &name, &child, under_opaque, &mut items)
                .with_context(|| format!("/{}", String::from_utf8_lossy(&child)))?;
            if let Some(first) = items.first() {
                let key = split_last(&first.meta.path).1.to_vec();
                children.push((key, items));
            }
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((
            children.into_iter().flat_map(|(_, items)| items).collect(),
            count,
        ))
    }

    fn entry(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
        under_opaque: bool,
        out: &mut Vec<Item>,
    ) -> Result<()> {
        let omit = &self.request.omit;
        if omit.trees.iter().any(|t| at_or_beneath(path, t))
            || omit.paths.iter().any(|p| p.as_bytes() == path)
        {
            self.omitted += 1;
            return Ok(());
        }
        // A name a layer spells its whiteouts with: every unpacker would take it for one.
        if name.starts_with(b".wh.") {
            self.skipped
                .push(format!("/{}", String::from_utf8_lossy(path)));
            return Ok(());
        }
        let stat = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io::Error::from)
            .context("reading its metadata")?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        let in_cache = omit.caches.iter().any(|c| strictly_beneath(path, c));
        if in_cache && kind != FileType::Directory && !is_whiteout(&stat) {
            self.omitted += 1;
            return Ok(());
        }
        let is_mount_point = omit.mount_points.iter().any(|p| p.as_bytes() == path);
        match kind {
            FileType::Directory => {
                let fd = rustix::fs::openat(
                    parent,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io::Error::from)
                .context("opening the directory")?;
                let opaque = is_opaque(fd.as_fd());
                let xattrs = xattrs(XattrsOf::Fd(fd.as_fd()))?;
                let (children, on_disk) = self.dir(fd.as_fd(), path, under_opaque || opaque)?;
                if children.is_empty() && !opaque {
                    let made_for_mount =
                        (is_mount_point && on_disk == 0) || self.mount_point_parents.contains(path);
                    let copied_up = !under_opaque && self.same_in_image(path, &stat);
                    if made_for_mount || copied_up {
                        self.omitted += 1;
                        return Ok(());
                    }
                }
                let mut meta = self.meta(path, Kind::Dir, &stat);
                meta.xattrs = xattrs;
                out.push(Item {
                    meta,
                    data: Data::None,
                });
                if opaque {
                    let mut marker = path.to_vec();
                    marker.extend_from_slice(b"/.wh..wh..opq");
                    out.push(self.marker(marker, &stat));
                }
                out.extend(children);
            }
            FileType::RegularFile => {
                let size = u64::try_from(stat.st_size).unwrap_or(0);
                if is_mount_point && size == 0 {
                    self.omitted += 1;
                    return Ok(());
                }
                for (file, start) in &omit.written_by_box {
                    if file.as_bytes() == path
                        && read_beneath(parent, name, start.len() as u64)
                            .is_ok_and(|head| head == start.as_bytes())
                    {
                        self.omitted += 1;
                        return Ok(());
                    }
                }
                let mut meta = self.meta(path, Kind::File { size }, &stat);
                meta.xattrs = xattrs(XattrsOf::At(parent, name))?;
                if let Some(db) = Database::of(path)
                    && self.request.account.is_some()
                    && size <= MAX_ACCOUNT_FILE
                {
                    let text = read_beneath(parent, name, MAX_ACCOUNT_FILE)
                        .context("reading the account file")?;
                    match self.restore_account(db, path, &text, under_opaque) {
                        None => {
                            self.omitted += 1;
                        }
                        Some(content) => {
                            meta.kind = Kind::File {
                                size: content.len() as u64,
                            };
                            out.push(Item {
                                meta,
                                data: Data::Inline(content),
                            });
                        }
                    }
                    return Ok(());
                }
                if stat.st_nlink > 1 {
                    let key = (stat.st_dev, stat.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        meta.kind = Kind::HardLink {
                            target: first.clone(),
                        };
                        meta.xattrs.clear();
                        out.push(Item {
                            meta,
                            data: Data::None,
                        });
                        return Ok(());
                    }
                    self.links.insert(key, path.to_vec());
                }
                let sparse = (stat.st_blocks as u64).saturating_mul(512) < size;
                out.push(Item {
                    meta,
                    data: Data::File {
                        ino: stat.st_ino,
                        sparse,
                    },
                });
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(parent, name, Vec::new())
                    .map_err(io::Error::from)
                    .context("reading the symlink")?;
                let mut meta = self.meta(
                    path,
                    Kind::Symlink {
                        target: target.into_bytes(),
                    },
                    &stat,
                );
                meta.xattrs = xattrs(XattrsOf::At(parent, name))?;
                out.push(Item {
                    meta,
                    data: Data::None,
                });
            }
            FileType::Fifo => {
                let mut meta = self.meta(path, Kind::Fifo, &stat);
                meta.xattrs = xattrs(XattrsOf::At(parent, name))?;
                out.push(Item {
                    meta,
                    data: Data::None,
                });
            }
            FileType::CharacterDevice if stat.st_rdev == 0 => {
                let (dir, base) = split_last(path);
                let mut whiteout = dir.to_vec();
                if !whiteout.is_empty() {
                    whiteout.push(b'/');
                }
                whiteout.extend_from_slice(b".wh.");
                whiteout.extend_from_slice(base);
                out.push(self.marker(whiteout, &stat));
            }
            _ => {
                self.skipped
                    .push(format!("/{}", String::from_utf8_lossy(path)));
            }
        }
        Ok(())
    }

    /// An empty regular file (a whiteout or an opaque marker), root's, mode 0.
    fn marker(&self, path: Vec<u8>, stat: &rustix::fs::Stat) -> Item {
        Item {
            meta: Meta {
                path,
                kind: Kind::File { size: 0 },
                mode: 0,
                uid: 0,
                gid: 0,
                mtime: self.mtime(stat),
                xattrs: Vec::new(),
            },
            data: Data::None,
        }
    }

    /// Whether the image has a directory at `path` of the same mode and owner as `stat`.
    fn same_in_image(&self, path: &[u8], stat: &rustix::fs::Stat) -> bool {
        self.lowers.find(path).is_some_and(|(_, lower)| {
            lower.st_mode == stat.st_mode
                && lower.st_uid == stat.st_uid
                && lower.st_gid == stat.st_gid
        })
    }

    /// The image's text of the account file at `path` (read once).
    fn image_text(&mut self, path: &[u8]) -> Option<String> {
        if let Some(text) = self.image_texts.get(path) {
            return text.clone();
        }
        let text = self
            .lowers
            .read(path, MAX_ACCOUNT_FILE)
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        self.image_texts.insert(path.to_vec(), text.clone());
        text
    }

    /// The account file `path` of `db` with the user's account taken out; `None` when
    /// what is left is the image's own file (or nothing, where the image has none).
    fn restore_account(
        &mut self,
        db: Database,
        path: &[u8],
        upper: &[u8],
        under_opaque: bool,
    ) -> Option<Vec<u8>> {
        let account = self.request.account.clone()?;
        let upper = String::from_utf8_lossy(upper).into_owned();
        let backup = path.ends_with(b"-");
        let image = if under_opaque {
            None
        } else if backup {
            let main = &path[..path.len() - 1];
            self.image_text(path).or_else(|| self.image_text(main))
        } else {
            self.image_text(path)
        };
        let old_name = match db {
            Database::Shadow | Database::Gshadow if !under_opaque => {
                let names_path: &[u8] = match db.names_from() {
                    Database::Passwd => b"etc/passwd",
                    _ => b"etc/group",
                };
                let id = match db {
                    Database::Shadow => account.uid,
                    _ => account.gid,
                };
                self.image_text(names_path)
                    .and_then(|t| accounts::name_of_id(&t, id).map(str::to_owned))
            }
            _ => None,
        };
        let restored =
            accounts::restore(db, &upper, image.as_deref(), &account, old_name.as_deref());
        let same = match &image {
            Some(image) => image.lines().eq(restored.lines()),
            None => restored.is_empty(),
        };
        (!same).then(|| restored.into_bytes())
    }

    /// Write the listed entries as a compressed tar into `file`.
    fn write(
        &mut self,
        upper: &OwnedFd,
        file: &std::fs::File,
        compression: LayerCompression,
    ) -> Result<PackStats> {
        // The tar is made (files read, hashed) here while another thread compresses and
        // writes it, as `tar | gzip` runs: compression is most of the work.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        std::thread::scope(|scope| {
            let compressor = scope.spawn(move || -> Result<(u64, Digest)> {
                let blob = Tee::new(BufWriter::with_capacity(1 << 20, file));
                let mut encoder = Encoder::new(blob, compression)?;
                for chunk in receiver {
                    encoder.write_all(&chunk).context("writing the blob")?;
                }
                let (mut writer, hasher) = encoder
                    .finish()
                    .context("ending the compressed stream")?
                    .into_parts();
                writer.flush().context("writing the blob")?;
                Ok((hasher.bytes, hasher.finish()))
            });
            let made = self.write_tar(upper, Chunks::new(sender));
            let compressed = compressor
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the compressing thread panicked")));
            // A compressor that stopped (a full disk) is the cause of a failed send.
            let (size, digest) = compressed?;
            let (tar_bytes, diff_id) = made?;
            Ok(PackStats {
                tar_bytes,
                diff_id,
                size,
                digest,
                entries: self.entries,
                omitted: self.omitted,
                skipped: std::mem::take(&mut self.skipped),
            })
        })
    }

    /// Write the listed entries as a tar to `out`; its size and digest.
    fn write_tar(&mut self, upper: &OwnedFd, out: Chunks) -> Result<(u64, Digest)> {
        let mut tar = TarWriter::new(Tee::new(out));
        let items = std::mem::take(&mut self.items);
        self.entries = items.len() as u64;
        let mut parent: Option<(Vec<u8>, OwnedFd)> = None;
        for item in &items {
            let shown = || format!("/{}", String::from_utf8_lossy(&item.meta.path));
            match &item.data {
                Data::None => tar.entry(&item.meta, None),
                Data::Inline(bytes) => tar.entry(&item.meta, Some(&mut &bytes[..])),
                Data::File { ino, sparse } => {
                    let (dir, name) = split_last(&item.meta.path);
                    if parent.as_ref().is_none_or(|(p, _)| p != dir) {
                        let fd = open_dir_beneath(upper.as_fd(), dir)
                            .with_context(|| format!("opening the directory of {}", shown()))?;
                        parent = Some((dir.to_vec(), fd));
                    }
                    let dir_fd = &parent.as_ref().expect("opened above").1;
                    let fd = rustix::fs::openat(
                        dir_fd,
                        name,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(io::Error::from)
                    .with_context(|| format!("opening {}", shown()))?;
                    let now = rustix::fs::fstat(&fd).map_err(io::Error::from)?;
                    let Kind::File { size } = item.meta.kind else {
                        unreachable!("file data for a file entry only")
                    };
                    if now.st_ino != *ino || u64::try_from(now.st_size).ok() != Some(size) {
                        bail!(failure(
                            format!(
                                "{} changed while {} was being committed",
                                shown(),
                                self.request.label
                            ),
                            "stop the box and everything using its files, then commit again",
                        ));
                    }
                    let mut file = std::fs::File::from(fd);
                    if *sparse {
                        tar.entry(&item.meta, Some(&mut SparseReader::new(&mut file, size)))
                    } else {
                        tar.entry(&item.meta, Some(&mut file))
                    }
                }
            }
            .with_context(|| format!("packing {}", shown()))?;
        }
        let (mut chunks, hasher) = tar.finish().context("ending the tar stream")?.into_parts();
        chunks.flush().context("ending the tar stream")?;
        Ok((hasher.bytes, hasher.finish()))
    }
}

fn listing(path: &[u8]) -> String {
    format!("listing /{}", String::from_utf8_lossy(path))
}

enum XattrsOf<'a> {
    Fd(BorrowedFd<'a>),
    /// The entry `name` in the directory open as the descriptor, not followed.
    At(BorrowedFd<'a>, &'a [u8]),
}

/// The extended attributes of an entry, sorted by name, without overlay's own.
fn xattrs(of: XattrsOf<'_>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let path = match &of {
        XattrsOf::Fd(_) => None,
        XattrsOf::At(dir, name) => {
            let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            path.extend_from_slice(name);
            Some(std::ffi::CString::new(path).context("a name with a NUL byte")?)
        }
    };
    let mut names = vec![0u8; 4096];
    let listed = loop {
        let result = match (&of, &path) {
            (XattrsOf::Fd(fd), _) => rustix::fs::flistxattr(fd, &mut names[..]),
            (XattrsOf::At(..), Some(path)) => {
                rustix::fs::llistxattr(path.as_c_str(), &mut names[..])
            }
            _ => unreachable!(),
        };
        match result {
            Err(Errno::RANGE) if names.len() < (1 << 20) => names.resize(names.len() * 4, 0),
            other => break other,
        }
    };
    let len = match listed {
        Ok(len) => len,
        Err(Errno::OPNOTSUPP | Errno::PERM | Errno::ACCESS) => return Ok(Vec::new()),
        Err(err) => {
            return Err(io::Error::from(err)).context("listing its extended attributes");
        }
    };
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"user.overlay.") || name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let cname = std::ffi::CString::new(name).expect("split at NULs");
        let mut value = vec![0u8; 65536];
        let got = match (&of, &path) {
            (XattrsOf::Fd(fd), _) => rustix::fs::fgetxattr(fd, cname.as_c_str(), &mut value[..]),
            (XattrsOf::At(..), Some(path)) => {
                rustix::fs::lgetxattr(path.as_c_str(), cname.as_c_str(), &mut value[..])
            }
            _ => unreachable!(),
        };
        // One that went meanwhile, or that this namespace may not read (`trusted.*`).
        let Ok(got) = got else { continue };
        value.truncate(got);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

/// A writer that hands what is written to another thread in chunks of 1 MiB (the last
/// one on flush).
struct Chunks {
    sender: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

impl Chunks {
    fn new(sender: std::sync::mpsc::SyncSender<Vec<u8>>) -> Chunks {
        Chunks {
            sender,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.sender
            .send(full)
            .map_err(|_| io::Error::other("the compressing thread stopped"))
    }
}

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

/// A writer that hashes and counts what it passes on.
struct Tee<W> {
    inner: W,
    hasher: Hasher,
}

impl<W> Tee<W> {
    fn new(inner: W) -> Tee<W> {
        Tee {
            inner,
            hasher: Hasher::new(),
        }
    }

    fn into_parts(self) -> (W, Hasher) {
        (self.inner, self.hasher)
    }
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// The compressors' default levels (gzip's 6, zstd's 3), as `gzip` and `zstd` use.
    fn new(inner: W, compression: LayerCompression) -> Result<Encoder<W>> {
        Ok(match compression {
            // flate2 writes a fixed header: no name, mtime 0.
            LayerCompression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::default(),
            )),
            LayerCompression::Zstd => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(inner, 3).context("starting zstd")?)
            }
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// Reads a sparse file's holes as zeros without reading them from the disk
/// (lseek(2) `SEEK_DATA`/`SEEK_HOLE`).
struct SparseReader<'f> {
    file: &'f mut std::fs::File,
    pos: u64,
    size: u64,
    /// Where the data the file position is in ends (a hole or the end starts there).
    data_end: u64,
}

impl<'f> SparseReader<'f> {
    fn new(file: &'f mut std::fs::File, size: u64) -> SparseReader<'f> {
        SparseReader {
            file,
            pos: 0,
            size,
            data_end: 0,
        }
    }
}

impl Read for SparseReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.data_end {
            // Find the next data from here: a hole until then.
            let data = match rustix::fs::seek(&*self.file, SeekFrom::Data(self.pos)) {
                Ok(at) => at,
                Err(Errno::NXIO) => self.size,
                Err(err) => return Err(err.into()),
            };
            if data > self.pos {
                let zeros = usize::try_from(data.min(self.size) - self.pos)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                buf[..zeros].fill(0);
                self.pos += zeros as u64;
                return Ok(zeros);
            }
            self.data_end = match rustix::fs::seek(&*self.file, SeekFrom::Hole(self.pos)) {
                Ok(at) => at.min(self.size),
                Err(err) => return Err(err.into()),
            };
            rustix::fs::seek(&*self.file, SeekFrom::Start(self.pos))?;
        }
        let want = usize::try_from(self.data_end - self.pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
