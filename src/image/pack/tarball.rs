//! The tar stream of a packed layer: POSIX ustar headers, with a PAX extended header in
//! front of an entry only where ustar cannot say it (a path or link target too long for
//! its fields, a size of 8 GiB or more, an id beyond 2097151, extended attributes as
//! `SCHILY.xattr.NAME`, as GNU tar, docker and podman write them).
//!
//! Invariants (what makes the stream a function of its entries alone):
//! - no user or group names, no device numbers but 0, whole-second mtimes, modes as given;
//! - PAX records in a fixed order (path, linkpath, size, uid, gid, then the xattrs sorted
//!   by name), the PAX header's own fields fixed;
//! - a directory's name ends with `/`; data is padded to 512 bytes and the archive ends
//!   with two zero blocks, as POSIX says.

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

const BLOCK: usize = 512;
/// The largest value of ustar's 12-digit size field (8 GiB - 1).
const MAX_USTAR_SIZE: u64 = 0o777_7777_7777;
/// The largest value of ustar's 8-digit id fields.
const MAX_USTAR_ID: u64 = 0o777_7777;

/// What an entry is, with what its kind needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file of this many bytes (its data follows the header).
    File {
        size: u64,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A hard link to an earlier entry of the same archive (its path).
    HardLink {
        target: Vec<u8>,
    },
    Fifo,
}

/// One entry's header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Relative, `/`-separated, no `.`/`..`; a directory's without its trailing `/`.
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Whole seconds since the epoch.
    pub mtime: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A tar stream being written to `out`.
pub struct TarWriter<W: Write> {
    out: W,
    /// The buffer file data goes through (one for the whole stream).
    buf: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> TarWriter<W> {
        TarWriter {
            out,
            buf: vec![0u8; 256 << 10],
        }
    }

    /// Write one entry; a regular file's `data` must yield exactly its size.
    pub fn entry(&mut self, meta: &Meta, data: Option<&mut dyn Read>) -> io::Result<()> {
        let mut path = meta.path.clone();
        if meta.kind == Kind::Dir {
            path.push(b'/');
        }
        let mut header = Header::new_ustar();
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if !set_name(&mut header, &path) {
            pax.push((b"path".to_vec(), path.clone()));
        }
        let (entry_type, size) = match &meta.kind {
            Kind::Dir => (EntryType::Directory, 0),
            Kind::File { size } => (EntryType::Regular, *size),
            Kind::Symlink { target } | Kind::HardLink { target } => {
                let ustar = header.as_ustar_mut().expect("a ustar header");
                if target.len() <= ustar.linkname.len() {
                    ustar.linkname[..target.len()].copy_from_slice(target);
                } else {
                    let cut = ustar.linkname.len();
                    ustar.linkname.copy_from_slice(&target[..cut]);
                    pax.push((b"linkpath".to_vec(), target.clone()));
                }
                let kind = if matches!(meta.kind, Kind::Symlink { .. }) {
                    EntryType::Symlink
                } else {
                    EntryType::Link
                };
                (kind, 0)
            }
            Kind::Fifo => (EntryType::Fifo, 0),
        };
        header.set_entry_type(entry_type);
        if size > MAX_USTAR_SIZE {
            pax.push((b"size".to_vec(), size.to_string().into_bytes()));
            header.set_size(0);
        } else {
            header.set_size(size);
        }
        for (key, id) in [(&b"uid"[..], meta.uid), (&b"gid"[..], meta.gid)] {
            if id > MAX_USTAR_ID {
                pax.push((key.to_vec(), id.to_string().into_bytes()));
            }
        }
        // Ids beyond ustar's digits also get the binary form of the field (GNU's, which
        // tar-rs reads where it does not look at PAX ids).
        header.set_uid(meta.uid);
        header.set_gid(meta.gid);
        header.set_mode(meta.mode & 0o7777);
        header.set_mtime(meta.mtime);
        header.set_device_major(0)?;
        header.set_device_minor(0)?;
        for (name, value) in &meta.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            pax.push((key, value.clone()));
        }
        // tar-rs (box's own unpacker among its users) splits PAX records at newlines, so
        // a value holding one (a binary `security.capability`) also goes as libarchive
        // writes every xattr: the name URL-encoded, the value in base64.
        for (name, value) in &meta.xattrs {
            if value.contains(&b'\n') {
                use base64::Engine as _;
                let mut key = b"LIBARCHIVE.xattr.".to_vec();
                key.extend_from_slice(&url_encode(name));
                let value = base64::engine::general_purpose::STANDARD.encode(value);
                pax.push((key, value.into_bytes()));
            }
        }
        header.set_cksum();
        if !pax.is_empty() {
            self.pax(&path, meta.mtime, &pax)?;
        }
        self.out.write_all(header.as_bytes())?;
        if size > 0 {
            let data = data.ok_or_else(|| io::Error::other("a file entry without data"))?;
            copy_exactly(data, &mut self.out, size, &mut self.buf)?;
            self.pad(size)?;
        }
        Ok(())
    }

    /// The PAX extended header for the entry at `path`.
    fn pax(&mut self, path: &[u8], mtime: u64, records: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
        let mut body = Vec::new();
        for (key, value) in records {
            body.extend_from_slice(&pax_record(key, value));
        }
        let mut header = Header::new_ustar();
        // Named as other writers name it (`PaxHeaders.0/NAME`): readers that do not know
        // PAX unpack it as a plain file, so it should not land on anything real.
        let base = path
            .strip_suffix(b"/")
            .unwrap_or(path)
            .rsplit(|&b| b == b'/')
            .next()
            .unwrap_or(b"");
        let mut name = b"PaxHeaders.0/".to_vec();
        name.extend_from_slice(base);
        name.truncate(100);
        header.as_ustar_mut().expect("a ustar header").name[..name.len()].copy_from_slice(&name);
        header.set_entry_type(EntryType::XHeader);
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_device_major(0)?;
        header.set_device_minor(0)?;
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(&body)?;
        self.pad(body.len() as u64)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rest = (size % BLOCK as u64) as usize;
        if rest != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rest])?;
        }
        Ok(())
    }

    /// End the archive (two zero blocks) and give back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

/// Put `path` in the header's name (and prefix) fields; false when ustar cannot hold it
/// (the name then holds its first 100 bytes, and a PAX record must carry it).
fn set_name(header: &mut Header, path: &[u8]) -> bool {
    let ustar = header.as_ustar_mut().expect("a ustar header");
    if path.len() <= ustar.name.len() {
        ustar.name[..path.len()].copy_from_slice(path);
        return true;
    }
    // prefix "/" name, with the name at most 100 bytes and the prefix at most 155; a
    // directory's trailing slash stays in the name.
    let body = path.strip_suffix(b"/").unwrap_or(path);
    let split = body
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .map(|(i, _)| i)
        .find(|&i| i <= ustar.prefix.len() && path.len() - i - 1 <= ustar.name.len() && i > 0);
    if let Some(i) = split {
        ustar.prefix[..i].copy_from_slice(&path[..i]);
        let name = &path[i + 1..];
        ustar.name[..name.len()].copy_from_slice(name);
        return true;
    }
    let cut = ustar.name.len();
    ustar.name.copy_from_slice(&path[..cut]);
    false
}

/// An xattr name as libarchive's `LIBARCHIVE.xattr.` keys spell it: `%XX` for `%`, `=`
/// and every byte that is not printable ASCII.
pub fn url_encode(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_graphic() && b != b'%' && b != b'=' {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// One PAX record: `LEN KEY=VALUE\n`, LEN counting the whole record with its own digits.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} ").into_bytes();
    record.extend_from_slice(key);
    record.push(b'=');
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// Copy exactly `size` bytes; a source that ends early is an error (the file shrank
/// while it was being packed).
fn copy_exactly(
    data: &mut dyn Read,
    out: &mut impl Write,
    size: u64,
    buf: &mut [u8],
) -> io::Result<()> {
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match data.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file is {} bytes shorter than when it was listed", left),
                ));
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &str, kind: Kind) -> Meta {
        Meta {
            path: path.as_bytes().to_vec(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            xattrs: vec![],
        }
    }

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record(b"path", b"a"), b"9 path=a\n");
        assert_eq!(pax_record(b"path", b"abcdefg"), b"16 path=abcdefg\n");
        // 102 bytes without the length, whose 3 digits make 105 (2 digits would be 104,
        // which has 3).
        let long = vec![b'x'; 95];
        let record = pax_record(b"path", &long);
        assert_eq!(record.len(), 105);
        assert!(record.starts_with(b"105 path="));
    }

    #[test]
    fn what_is_written_reads_back_with_tar_rs() {
        let long_dir = "d".repeat(120);
        let long_name = format!("{long_dir}/{}", "f".repeat(110));
        let entries = vec![
            meta("etc", Kind::Dir),
            Meta {
                mode: 0o4755,
                uid: 1000,
                gid: 3_000_000,
                xattrs: vec![(b"user.note".to_vec(), b"hi\nthere".to_vec())],
                ..meta("etc/su", Kind::File { size: 5 })
            },
            meta(
                "etc/link",
                Kind::HardLink {
                    target: b"etc/su".to_vec(),
                },
            ),
            meta(&long_name, Kind::File { size: 2 }),
            meta(
                "sym",
                Kind::Symlink {
                    target: "t".repeat(150).into_bytes(),
                },
            ),
            meta("fifo", Kind::Fifo),
            meta(&format!("{}/ok", "p".repeat(140)), Kind::File { size: 0 }),
        ];
        let mut writer = TarWriter::new(Vec::new());
        for entry in &entries {
            let data: &[u8] = match entry.kind {
                Kind::File { size: 5 } => b"hello",
                Kind::File { size: 2 } => b"ab",
                _ => b"",
            };
            writer.entry(entry, Some(&mut &data[..])).unwrap();
        }
        let bytes = writer.finish().unwrap();
        assert_eq!(bytes.len() % 512, 0);

        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let header = entry.header().clone();
            let mut xattrs = Vec::new();
            if let Some(ext) = entry.pax_extensions().unwrap() {
                // tar-rs cannot split the SCHILY record of a value with a newline.
                for e in ext.flatten() {
                    if let Some(name) = e.key_bytes().strip_prefix(b"LIBARCHIVE.xattr.") {
                        use base64::Engine as _;
                        let value = base64::engine::general_purpose::STANDARD
                            .decode(e.value_bytes())
                            .unwrap();
                        xattrs.push((name.to_vec(), value));
                    }
                }
            }
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            assert!(header.username_bytes().unwrap_or_default().is_empty());
            seen.push((
                path,
                header.mode().unwrap(),
                header.gid().unwrap(),
                link,
                data,
                xattrs,
            ));
        }
        assert_eq!(seen.len(), entries.len());
        assert_eq!(seen[0].0, "etc/");
        assert_eq!(seen[1].1, 0o4755);
        assert_eq!(seen[1].2, 3_000_000);
        assert_eq!(seen[1].4, b"hello");
        assert_eq!(
            seen[1].5,
            vec![(b"user.note".to_vec(), b"hi\nthere".to_vec())]
        );
        assert_eq!(seen[2].3.as_deref(), Some(&b"etc/su"[..]));
        assert_eq!(seen[3].0, long_name);
        assert_eq!(seen[3].4, b"ab");
        assert_eq!(seen[4].3, Some("t".repeat(150).into_bytes()));
        assert_eq!(seen[6].0, format!("{}/ok", "p".repeat(140)));
    }

    #[test]
    fn a_file_that_changed_size_is_an_error() {
        let mut writer = TarWriter::new(Vec::new());
        let err = writer
            .entry(
                &meta("f", Kind::File { size: 10 }),
                Some(&mut &b"short"[..]),
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
