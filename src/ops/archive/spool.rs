//! Reading an image archive, once and as a stream, into a staging directory: every
//! regular file member becomes a numbered file there, hashed on the way, and nothing of
//! the archive's own tree is ever created (so no member path is resolved on disk).
//!
//! Invariants:
//! - a member path is relative and has no `..` (refused otherwise, naming it); paths are
//!   compared after dropping `.` and empty components (`./manifest.json` is
//!   `manifest.json`);
//! - members other than regular files, directories, symlinks and hard links (devices,
//!   fifos) are refused, and so is a second member with the same path;
//! - symlinks and hard links are only recorded: [`Spooled::file`] refuses a member that
//!   is one, or whose path goes through one, so a link is fine only where nothing reads
//!   it (podman's docker archives have `<id>/layer.tar` symlinks nobody needs);
//! - at most [`MAX_MEMBERS`] members; a member that claims more bytes than the staging
//!   filesystem has free is refused before it is written; JSON documents are read into
//!   memory only up to [`MAX_JSON`] bytes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::digest::{Digest, Hasher};
use crate::error::{FREE_SPACE_HINT, failure};

/// More members than any image archive has (a Debian image saved by podman has five).
pub const MAX_MEMBERS: u64 = 100_000;
/// The largest JSON document (manifest, index, config) box reads from an archive.
pub const MAX_JSON: u64 = 16 << 20;

/// The hint of an archive whose structure is not what podman, docker or skopeo write.
pub const HOSTILE: &str = "the archive is damaged, was tampered with, or was not written by \
                           podman, docker, skopeo or box; do not load it";

/// One regular file of the archive, spooled.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its path in the archive (normalized).
    pub name: String,
    /// Where its bytes are now.
    pub path: PathBuf,
    pub size: u64,
    /// The sha256 of its bytes.
    pub digest: Digest,
}

#[derive(Debug)]
enum Kind {
    File(Member),
    Link { target: String, hard: bool },
    Dir,
}

/// An archive read into a staging directory.
#[derive(Debug)]
pub struct Spooled {
    /// "the archive FILE" / "the archive on standard input", for messages.
    pub label: String,
    members: BTreeMap<String, Kind>,
}

impl Spooled {
    /// Whether the archive has a member (of any kind) at `name`.
    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// The regular files directly under the directory `prefix` (`blobs/sha256/`).
    pub fn files<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members
            .range(prefix.to_owned()..)
            .take_while(move |(name, _)| name.starts_with(prefix))
            .filter_map(move |(name, kind)| match kind {
                Kind::File(member) if !name[prefix.len()..].contains('/') => Some(member),
                _ => None,
            })
    }

    /// The regular file `name`, refused when missing, a link, or under a link.
    pub fn file(&self, name: &str, what: &str) -> Result<&Member> {
        let mut prefix = String::new();
        for component in name.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            if let Some(Kind::Link { target, hard }) = self.members.get(&prefix) {
                let kind = if *hard { "a hard link" } else { "a symlink" };
                let through = if prefix == name {
                    String::new()
                } else {
                    format!(" (through `{prefix}`)")
                };
                bail!(failure(
                    format!(
                        "{}: {what} `{name}` is {kind} to `{target}`{through}; box reads only \
                         regular files of an archive",
                        self.label
                    ),
                    HOSTILE,
                ));
            }
        }
        match self.members.get(name) {
            Some(Kind::File(member)) => Ok(member),
            Some(Kind::Dir) => bail!(failure(
                format!("{}: {what} `{name}` is a directory", self.label),
                HOSTILE
            )),
            _ => bail!(failure(
                format!("{}: {what} `{name}` is missing", self.label),
                "the archive is incomplete (cut short?) or not an image archive; save it again",
            )),
        }
    }

    /// The blob `digest` (`blobs/sha256/<hex>`), checked against its digest and, when
    /// given, its size.
    pub fn blob(&self, digest: &Digest, size: Option<u64>, what: &str) -> Result<&Member> {
        let name = format!("blobs/sha256/{}", digest.hex());
        let member = self.file(&name, what)?;
        self.check_digest(member, digest, what)?;
        if let Some(size) = size
            && size != member.size
        {
            bail!(failure(
                format!(
                    "{}: {what} `{name}` has {} bytes, not the {size} its descriptor says",
                    self.label, member.size
                ),
                HOSTILE,
            ));
        }
        Ok(member)
    }

    /// Refuse `member` unless its bytes hash to `digest`.
    pub fn check_digest(&self, member: &Member, digest: &Digest, what: &str) -> Result<()> {
        if &member.digest != digest {
            bail!(failure(
                format!(
                    "{}: {what} `{}` has digest {}, not {digest}",
                    self.label, member.name, member.digest
                ),
                "the archive is damaged or was tampered with; save it again and check how it was copied",
            ));
        }
        Ok(())
    }

    /// The bytes of a JSON document, at most [`MAX_JSON`] of them.
    pub fn read_json(&self, member: &Member, what: &str) -> Result<Vec<u8>> {
        if member.size > MAX_JSON {
            bail!(failure(
                format!(
                    "{}: {what} `{}` has {} bytes; box reads JSON documents of at most {MAX_JSON}",
                    self.label, member.name, member.size
                ),
                HOSTILE,
            ));
        }
        std::fs::read(&member.path).with_context(|| format!("reading {}", member.path.display()))
    }

    /// The first bytes of a member (to tell its compression).
    pub fn head(&self, member: &Member) -> Result<Vec<u8>> {
        let mut head = Vec::with_capacity(8);
        File::open(&member.path)
            .and_then(|f| f.take(8).read_to_end(&mut head))
            .with_context(|| format!("reading {}", member.path.display()))?;
        Ok(head)
    }
}

/// How the whole archive is compressed, from its first bytes.
fn decompressed<'a>(input: impl Read + 'a, label: &str) -> Result<Box<dyn Read + 'a>> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let head = input
        .fill_buf()
        .with_context(|| format!("reading {label}"))?;
    if head.is_empty() {
        bail!(failure(
            format!("{label} is empty"),
            "give the archive with -i FILE, or pipe one in (`box load < FILE`)",
        ));
    }
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(input)
                .with_context(|| format!("starting the zstd decoder for {label}"))?,
        )
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) || head.starts_with(b"BZh") {
        bail!(failure(
            format!("{label} is compressed with xz or bzip2"),
            "box reads archives that are plain tar, gzip or zstd; decompress it first (`xz -d`, `bzip2 -d`)",
        ))
    } else {
        Box::new(input)
    })
}

/// A member path without `.` and empty components; `Err` says why it is refused.
pub fn normalize(raw: &[u8]) -> std::result::Result<String, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "is not UTF-8")?;
    if text.starts_with('/') {
        return Err("is absolute: it names a place outside the archive");
    }
    let mut out = String::with_capacity(text.len());
    for component in text.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("has a `..` component: it names a place outside the archive"),
            _ => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(component);
            }
        }
    }
    Ok(out)
}

/// Bytes free for an unprivileged user on the filesystem of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Read the archive `input` (named `label` in messages) into the existing empty
/// directory `dir`.
pub fn spool(input: impl Read, dir: &Path, label: &str) -> Result<Spooled> {
    let reader = decompressed(input, label)?;
    let mut archive = tar::Archive::new(reader);
    let mut spooled = Spooled {
        label: label.to_owned(),
        members: BTreeMap::new(),
    };
    let mut free = free_bytes(dir);
    let mut buf = vec![0u8; 1 << 20];
    let corrupt = |err: std::io::Error| {
        failure(
            format!("{label} is not a tar archive, or is truncated or corrupt: {err}"),
            "check that this is an image archive (podman save, docker save, box save) and that it was copied whole",
        )
    };
    let hostile =
        |name: &str, why: &str| failure(format!("{label}: member `{name}` {why}"), HOSTILE);
    let mut count: u64 = 0;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        use tar::EntryType as T;
        let entry_type = entry.header().entry_type();
        if matches!(entry_type, T::XGlobalHeader) {
            continue;
        }
        count += 1;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        if count > MAX_MEMBERS {
            bail!(failure(
                format!("{label} has more than {MAX_MEMBERS} members"),
                HOSTILE
            ));
        }
        let name = normalize(&raw).map_err(|why| hostile(&shown, why))?;
        let kind = match entry_type {
            T::Directory => Kind::Dir,
            T::Regular | T::Continuous if raw.ends_with(b"/") => Kind::Dir,
            T::Regular | T::Continuous => {
                let size = entry.header().size().map_err(corrupt)?;
                if let Some(free) = free
                    && size > free
                {
                    bail!(failure(
                        format!(
                            "{label}: member `{shown}` claims {size} bytes, more than the {free} \
                             free in {}",
                            dir.display()
                        ),
                        format!("{FREE_SPACE_HINT}; or the archive is damaged or hostile"),
                    ));
                }
                let path = dir.join(count.to_string());
                let member = match copy_member(&mut entry, &path, &mut buf) {
                    // The tar reader ends a member early, without an error, when the
                    // stream ends inside it.
                    Ok((_, copied)) if copied != size => {
                        return Err(corrupt(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("it ends inside `{shown}`, after {copied} of its {size} bytes"),
                        )));
                    }
                    Ok(member) => member,
                    Err(Copy::Read(err)) => return Err(corrupt(err)),
                    Err(Copy::Write(err))
                        if matches!(
                            err.raw_os_error(),
                            Some(libc::ENOSPC) | Some(libc::EDQUOT)
                        ) =>
                    {
                        bail!(failure(
                            format!(
                                "no space left on device while reading {label} into {}",
                                dir.display()
                            ),
                            FREE_SPACE_HINT,
                        ));
                    }
                    Err(Copy::Write(err)) => {
                        return Err(err).with_context(|| format!("writing {}", path.display()));
                    }
                };
                free = free.map(|f| f.saturating_sub(member.1));
                Kind::File(Member {
                    name: name.clone(),
                    path,
                    size: member.1,
                    digest: member.0,
                })
            }
            T::Symlink | T::Link => Kind::Link {
                target: entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default(),
                hard: entry_type == T::Link,
            },
            other => {
                let what = match other {
                    T::Char => "a character device",
                    T::Block => "a block device",
                    T::Fifo => "a fifo",
                    _ => "of an unknown type",
                };
                bail!(hostile(
                    &shown,
                    &format!("is {what}; an image archive holds files and directories only")
                ));
            }
        };
        if name.is_empty() {
            // `./` itself.
            if matches!(kind, Kind::Dir) {
                continue;
            }
            bail!(hostile(
                &shown,
                "names the archive's root but is not a directory"
            ));
        }
        if spooled.members.insert(name.clone(), kind).is_some() {
            bail!(hostile(
                &shown,
                "appears twice; an archive where one name holds two contents is ambiguous"
            ));
        }
    }
    Ok(spooled)
}

/// Why [`copy_member`] failed: reading the archive (cut short, corrupt) or writing the
/// copy (a full disk).
enum Copy {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copy one member's data to a new file at `path`; its digest and size.
fn copy_member(
    input: &mut impl Read,
    path: &Path,
    buf: &mut [u8],
) -> std::result::Result<(Digest, u64), Copy> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(Copy::Write)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Hasher::new();
    loop {
        let n = match input.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(Copy::Read(err)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(Copy::Write)?;
    }
    out.flush().map_err(Copy::Write)?;
    let size = hasher.bytes;
    Ok((hasher.finish(), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            // set_path refuses `..`: write the name bytes as they are.
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(link) = link {
                header.set_link_name(link).unwrap();
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn spool_bytes(bytes: &[u8]) -> (tempfile::TempDir, Result<Spooled>) {
        let dir = tempfile::tempdir().unwrap();
        let result = spool(bytes, dir.path(), "the archive x.tar");
        (dir, result)
    }

    fn error(bytes: &[u8]) -> String {
        crate::error::message(&spool_bytes(bytes).1.unwrap_err())
    }

    #[test]
    fn members_are_hashed_and_named_without_dots() {
        use tar::EntryType as T;
        let bytes = tar_of(&[
            ("./", T::Directory, b"", None),
            ("./manifest.json", T::Regular, b"[]", None),
            ("blobs/sha256/", T::Directory, b"", None),
            ("x/layer.tar", T::Symlink, b"", Some("../y.tar")),
        ]);
        let (_dir, spooled) = spool_bytes(&bytes);
        let spooled = spooled.unwrap();
        let member = spooled.file("manifest.json", "the manifest").unwrap();
        assert_eq!(member.digest, Digest::of(b"[]"));
        assert_eq!(std::fs::read(&member.path).unwrap(), b"[]");
        let link = crate::error::message(&spooled.file("x/layer.tar", "layer").unwrap_err());
        assert!(link.contains("is a symlink to `../y.tar`"), "{link}");
        let missing = crate::error::message(&spooled.file("y.tar", "layer").unwrap_err());
        assert!(missing.contains("missing"), "{missing}");
    }

    #[test]
    fn paths_through_links_are_refused() {
        use tar::EntryType as T;
        let bytes = tar_of(&[
            ("blobs", T::Symlink, b"", Some("/etc")),
            ("blobs/sha256/ab", T::Regular, b"x", None),
        ]);
        let (_dir, spooled) = spool_bytes(&bytes);
        let err = crate::error::message(
            &spooled
                .unwrap()
                .file("blobs/sha256/ab", "blob")
                .unwrap_err(),
        );
        assert!(err.contains("through `blobs`"), "{err}");
    }

    #[test]
    fn hostile_structures_are_refused() {
        use tar::EntryType as T;
        for (entries, needle) in [
            (vec![("../evil", T::Regular, &b"x"[..], None)], "`..`"),
            (
                vec![("/etc/passwd", T::Regular, &b"x"[..], None)],
                "absolute",
            ),
            (vec![("dev", T::Char, &b""[..], None)], "character device"),
            (vec![("fifo", T::Fifo, &b""[..], None)], "fifo"),
            (
                vec![
                    ("manifest.json", T::Regular, &b"[]"[..], None),
                    ("./manifest.json", T::Regular, &b"[1]"[..], None),
                ],
                "appears twice",
            ),
        ] {
            let message = error(&tar_of(&entries));
            assert!(message.contains(needle), "{needle}: {message}");
        }
        assert!(error(b"").contains("empty"));
        assert!(
            error(b"not a tar at all, just some text that is long enough").contains("not a tar")
        );
        assert!(error(b"BZh91AY&SY").contains("bzip2"));
    }

    #[test]
    fn gzip_archives_are_read_through() {
        use tar::EntryType as T;
        let bytes = tar_of(&[("index.json", T::Regular, b"{}", None)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let (_dir, spooled) = spool_bytes(&gz.finish().unwrap());
        assert!(spooled.unwrap().has("index.json"));
    }

    #[test]
    fn normalize_keeps_plain_names() {
        assert_eq!(normalize(b"./a//b/./c").unwrap(), "a/b/c");
        assert_eq!(normalize(b"./").unwrap(), "");
        assert!(normalize(b"a/../b").is_err());
        assert!(normalize(b"/a").is_err());
        assert!(normalize(&[0xff]).is_err());
    }
}
