//! Unpack tests: tars built in memory (with raw headers where the `tar` crate would refuse
//! a hostile path), unpacked into a temporary directory. They run as root without a user
//! namespace, so every id is mapped.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::*;
use crate::digest::Digest;

const MTIME: u64 = 1_600_000_000;

/// A tar under construction.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    /// A header with the name written raw (no validation: `..` and `/` pass through).
    fn header(kind: EntryType, path: &[u8], size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h
    }

    fn raw(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = body_len + 1;
            while format!("{len}").len() + body_len != len {
                len += 1;
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let h = Tar::header(
            EntryType::XHeader,
            b"././@PaxHeader",
            data.len() as u64,
            0o644,
        );
        self.raw(h, &data)
    }

    fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.raw(
            Tar::header(EntryType::Directory, path.as_bytes(), 0, mode),
            b"",
        )
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(
            Tar::header(EntryType::Regular, path.as_bytes(), data.len() as u64, mode),
            data,
        )
    }

    fn owned(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> &mut Self {
        let mut h = Tar::header(EntryType::Regular, path.as_bytes(), 1, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.raw(h, b"x")
    }

    fn link(&mut self, kind: EntryType, path: &str, target: &str) -> &mut Self {
        let mut h = Tar::header(kind, path.as_bytes(), 0, 0o777);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.raw(h, b"")
    }

    fn device(&mut self, kind: EntryType, path: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Tar::header(kind, path.as_bytes(), 0, 0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.raw(h, b"")
    }

    fn bytes(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Unpack `tar` (uncompressed) into a fresh directory.
fn unpack(tar: &[u8]) -> (tempfile::TempDir, Result<UnpackStats>) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let result = unpack_layer(tar, Compression::None, &Digest::of(tar), &dest, "layer L");
    (dir, result)
}

fn message(result: Result<UnpackStats>) -> String {
    crate::error::message(&result.unwrap_err())
}

#[test]
fn media_types_map_to_compressions() {
    for (media_type, expected) in [
        ("application/vnd.oci.image.layer.v1.tar", Compression::None),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Zstd,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            Compression::Zstd,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar",
            Compression::None,
        ),
    ] {
        assert_eq!(
            Compression::from_media_type(media_type).unwrap(),
            expected,
            "{media_type}"
        );
    }
    let err = Compression::from_media_type("application/vnd.cncf.helm.chart.content.v1.tar+gzip")
        .unwrap_err();
    assert!(crate::error::message(&err).contains("application/vnd.cncf.helm.chart"));
    assert!(err.downcast_ref::<crate::error::Hint>().is_some());
    assert!(Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+bzip2").is_err());
}

#[test]
fn declared_compression_must_match_the_data() {
    let tar = Tar::new().file("a", 0o644, b"hello").bytes();
    let dir = tempfile::tempdir().unwrap();
    let digest = Digest::of(&tar);
    let err =
        unpack_layer(&tar[..], Compression::Gzip, &digest, dir.path(), "layer L").unwrap_err();
    assert_eq!(
        crate::error::message(&err),
        "layer L claims gzip but is not gzip data"
    );
    let gz = gzip(&tar);
    let err = unpack_layer(&gz[..], Compression::Zstd, &digest, dir.path(), "layer L").unwrap_err();
    assert_eq!(
        crate::error::message(&err),
        "layer L claims zstd but is gzip data"
    );
    let err = unpack_layer(&gz[..], Compression::None, &digest, dir.path(), "layer L").unwrap_err();
    assert!(crate::error::message(&err).contains("uncompressed tar but is gzip data"));
}

#[test]
fn gzip_and_zstd_layers_unpack_and_are_verified() {
    let tar = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/hostname", 0o644, b"box\n")
        .bytes();
    let digest = Digest::of(&tar);
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for (data, compression) in [(gzip(&tar), Compression::Gzip), (zst, Compression::Zstd)] {
        let dir = tempfile::tempdir().unwrap();
        let stats = unpack_layer(&data[..], compression, &digest, dir.path(), "layer L").unwrap();
        assert_eq!(stats.tar_bytes, tar.len() as u64);
        assert_eq!(stats.entries, 2);
        assert_eq!(
            std::fs::read(dir.path().join("etc/hostname")).unwrap(),
            b"box\n"
        );
    }
}

#[test]
fn a_wrong_diff_id_is_refused() {
    let tar = Tar::new().file("a", 0o644, b"x").bytes();
    let dir = tempfile::tempdir().unwrap();
    let wrong = Digest::of(b"something else");
    let err = unpack_layer(&tar[..], Compression::None, &wrong, dir.path(), "layer L").unwrap_err();
    let text = crate::error::message(&err);
    assert!(text.starts_with(&format!(
        "layer L: uncompressed digest {} does not match the image config's diff_id {wrong}",
        Digest::of(&tar)
    )));
}

#[test]
fn trailing_padding_is_part_of_the_digest() {
    let mut tar = Tar::new().file("a", 0o644, b"x").bytes();
    tar.extend_from_slice(&[0; 8192]); // GNU tar pads to 10 KiB records
    let (_dir, result) = unpack(&tar);
    assert_eq!(result.unwrap().tar_bytes, tar.len() as u64);
}

#[test]
fn truncated_or_corrupt_streams_are_named() {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let tar = Tar::new()
        .file("a", 0o644, &big)
        .file("b", 0o644, b"b")
        .bytes();
    let digest = Digest::of(&tar);
    let gz = gzip(&tar);
    for cut in [gz.len() / 2, gz.len() - 4] {
        let dir = tempfile::tempdir().unwrap();
        let err = unpack_layer(
            &gz[..cut],
            Compression::Gzip,
            &digest,
            dir.path(),
            "layer L",
        )
        .unwrap_err();
        let text = crate::error::message(&err);
        assert!(text.contains("layer L is truncated or corrupt"), "{text}");
    }
    let mut bad = gz.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0xff;
    let dir = tempfile::tempdir().unwrap();
    let err =
        unpack_layer(&bad[..], Compression::Gzip, &digest, dir.path(), "layer L").unwrap_err();
    assert!(crate::error::message(&err).contains("layer L"), "{err:#}");

    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = unpack_layer(
        &zst[..zst.len() / 2],
        Compression::Zstd,
        &digest,
        dir.path(),
        "layer L",
    )
    .unwrap_err();
    assert!(crate::error::message(&err).contains("layer L is truncated or corrupt"));

    // A tar cut in the middle of a file, and one cut exactly after an entry.
    for cut in [4096, 512 + big.len().div_ceil(512) * 512] {
        let dir = tempfile::tempdir().unwrap();
        let err = unpack_layer(
            &tar[..cut],
            Compression::None,
            &digest,
            dir.path(),
            "layer L",
        )
        .unwrap_err();
        let text = crate::error::message(&err);
        assert!(
            text.contains("layer L is truncated or corrupt"),
            "{cut}: {text}"
        );
    }
}

#[test]
fn files_dirs_links_fifos_modes_owners_and_times() {
    let tar = Tar::new()
        .dir("./", 0o755)
        .dir("./usr/", 0o755)
        .dir("./usr/bin/", 0o555)
        .file("./usr/bin/tool", 0o755, b"#!/bin/sh\n")
        .owned("./usr/bin/su", 0o4755, 0, 0)
        .owned("./usr/bin/wall", 0o2755, 0, 5)
        .owned("./var-www", 0o640, 33, 33)
        .dir("./tmp/", 0o1777)
        .link(EntryType::Symlink, "./usr/bin/sh", "/bin/dash")
        .link(EntryType::Symlink, "./escape", "../../../../etc/passwd")
        .link(EntryType::Link, "./usr/bin/tool2", "usr/bin/tool")
        .raw(Tar::header(EntryType::Fifo, b"./run-fifo", 0, 0o620), b"")
        .bytes();
    let (dir, result) = unpack(&tar);
    let stats = result.unwrap();
    assert_eq!(stats.entries, 12);
    assert_eq!(stats.unmapped_owners, 0);
    let root = dir.path().join("layer");
    let meta = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(meta("usr/bin/su").mode() & 0o7777, 0o4755);
    assert_eq!(meta("usr/bin/wall").mode() & 0o7777, 0o2755);
    assert_eq!(meta("usr/bin/wall").gid(), 5);
    assert_eq!((meta("var-www").uid(), meta("var-www").gid()), (33, 33));
    assert_eq!(meta("var-www").mode() & 0o7777, 0o640);
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(meta("usr/bin").mode() & 0o7777, 0o555);
    assert_eq!(meta("usr/bin/tool").mtime(), MTIME as i64);
    // Directory times are set after their children were created.
    assert_eq!(meta("usr/bin").mtime(), MTIME as i64);
    assert_eq!(meta("").mtime(), MTIME as i64);
    assert_eq!(
        std::fs::read_link(root.join("usr/bin/sh")).unwrap(),
        Path::new("/bin/dash")
    );
    assert_eq!(meta("usr/bin/sh").mtime(), MTIME as i64);
    assert!(meta("escape").file_type().is_symlink());
    assert_eq!(meta("usr/bin/tool2").ino(), meta("usr/bin/tool").ino());
    assert!(meta("run-fifo").file_type().is_fifo());
    assert_eq!(meta("run-fifo").mode() & 0o7777, 0o620);
}

#[test]
fn missing_parents_are_created() {
    let tar = Tar::new().file("a/b/c/file", 0o644, b"x").bytes();
    let (dir, result) = unpack(&tar);
    result.unwrap();
    let b = std::fs::metadata(dir.path().join("layer/a/b")).unwrap();
    assert_eq!(b.permissions().mode() & 0o7777, 0o755);
}

/// A tar of regular files (GNU long names for long paths).
fn files_tar(paths: &[&str]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for path in paths {
        let mut h = Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        builder.append_data(&mut h, path, &b"1"[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn paths_deeper_or_longer_than_the_limits_are_refused_and_deep_trees_removed() {
    // As deep as allowed: 1023 directories and a file.
    let deepest = format!("{}f", "d/".repeat(unpack::MAX_DEPTH - 1));
    let (dir, result) = unpack(&files_tar(&[&deepest]));
    result.unwrap();
    assert!(dir.path().join("layer").join(&deepest).is_file());
    // One more level is refused, naming the depth and the limit; the name is shortened.
    let deeper = format!("d/{deepest}");
    let (_dir, result) = unpack(&files_tar(&[&deeper]));
    let text = message(result);
    assert!(
        text.contains("1025 levels deep (1024 directories above it)"),
        "{text}"
    );
    assert!(text.contains("at most 1024"), "{text}");
    assert!(
        text.contains("entry `d/d/d/") && text.contains("d/…/d/") && text.contains("/d/f`"),
        "{text}"
    );
    // A path longer than the kernel resolves, within the depth.
    let long = format!("{}/f", vec!["x".repeat(250); 17].join("/"));
    let (_dir, result) = unpack(&files_tar(&[&long]));
    let text = message(result);
    assert!(
        text.contains(&format!("{} bytes long", long.len())),
        "{text}"
    );
    assert!(text.contains("PATH_MAX"), "{text}");

    // A tree of any depth is removed (deeper than the limit: a box's own files can be),
    // read-only directories and side branches included.
    use rustix::fs::{Mode, OFlags};
    let top = tempfile::tempdir().unwrap();
    std::fs::create_dir(top.path().join("tree")).unwrap();
    let root = std::fs::File::open(top.path()).unwrap();
    let mut here = std::fs::File::open(top.path().join("tree")).unwrap();
    for level in 0..3000 {
        rustix::fs::mkdirat(&here, "d", Mode::from_raw_mode(0o755)).unwrap();
        if level % 700 == 0 {
            rustix::fs::mkdirat(&here, "side", Mode::from_raw_mode(0o755)).unwrap();
        }
        let next = rustix::fs::openat(
            &here,
            "d",
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .map(std::fs::File::from)
        .unwrap();
        rustix::fs::fchmod(&here, Mode::from_raw_mode(0o555)).unwrap();
        here = next;
    }
    drop(here);
    tree::remove_tree_at(std::os::fd::AsFd::as_fd(&root), b"tree").unwrap();
    assert!(!top.path().join("tree").exists());
}

#[test]
fn long_and_utf8_names_survive() {
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    builder.append_data(&mut h, &long, &b"1"[..]).unwrap();
    builder
        .append_data(&mut h, "héllo-日本.txt", &b"2"[..])
        .unwrap();
    let mut tar = builder.into_inner().unwrap();
    // A PAX `path` record, as Go's archive/tar writes for non-ASCII names.
    tar.truncate(tar.len() - 1024);
    let mut more = Tar::new();
    more.pax(&[("path", "ünïcode/pax-ñame".as_bytes())])
        .file("placeholder", 0o644, b"3");
    tar.extend_from_slice(&more.bytes());
    let (dir, result) = unpack(&tar);
    result.unwrap();
    let root = dir.path().join("layer");
    assert_eq!(std::fs::read(root.join(&long)).unwrap(), b"1");
    assert_eq!(std::fs::read(root.join("héllo-日本.txt")).unwrap(), b"2");
    assert_eq!(std::fs::read(root.join("ünïcode/pax-ñame")).unwrap(), b"3");
    assert!(!root.join("placeholder").exists());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tar = Tar::new()
        .dir("d/", 0o755)
        .file("d/old", 0o644, b"old")
        .dir("d/sub/", 0o700)
        .file("d/sub/x", 0o644, b"x")
        // A directory over a directory keeps the contents and takes the new metadata.
        .dir("d/", 0o750)
        // A file over a directory removes the tree.
        .file("d/sub", 0o600, b"now a file")
        // A file over a file (and over a hard link to it) replaces without writing through.
        .file("f", 0o644, b"first")
        .link(EntryType::Link, "f-link", "f")
        .file("f", 0o644, b"second")
        // A directory over a symlink.
        .link(EntryType::Symlink, "s", "/etc")
        .dir("s/", 0o755)
        .bytes();
    let (dir, result) = unpack(&tar);
    result.unwrap();
    let root = dir.path().join("layer");
    assert_eq!(std::fs::read(root.join("d/old")).unwrap(), b"old");
    assert_eq!(
        std::fs::metadata(root.join("d")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(std::fs::read(root.join("d/sub")).unwrap(), b"now a file");
    assert_eq!(std::fs::read(root.join("f")).unwrap(), b"second");
    assert_eq!(std::fs::read(root.join("f-link")).unwrap(), b"first");
    assert!(std::fs::symlink_metadata(root.join("s")).unwrap().is_dir());
}

#[test]
fn devices_are_skipped_and_listed() {
    let tar = Tar::new()
        .dir("dev/", 0o755)
        .device(EntryType::Char, "dev/null", 1, 3)
        .device(EntryType::Block, "dev/sda", 8, 0)
        .bytes();
    let (dir, result) = unpack(&tar);
    let stats = result.unwrap();
    assert_eq!(stats.skipped_devices, vec!["dev/null", "dev/sda"]);
    assert_eq!(stats.entries, 1);
    assert!(!dir.path().join("layer/dev/null").exists());
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_opaque_dirs() {
    let tar = Tar::new()
        .dir("etc/", 0o755)
        .file("etc/gone", 0o644, b"x")
        .file("etc/.wh.gone", 0o644, b"")
        .file("etc/.wh.from-below", 0o644, b"")
        .dir("opt/", 0o755)
        .file("opt/.wh..wh..opq", 0o644, b"")
        .file("opt/new", 0o644, b"n")
        .file(".wh..wh.plnk", 0o644, b"")
        .file("var/.wh.tree", 0o644, b"")
        .device(EntryType::Char, "stored-whiteout", 0, 0)
        .bytes();
    let (dir, result) = unpack(&tar);
    result.unwrap();
    let root = dir.path().join("layer");
    for name in ["etc/gone", "etc/from-below", "var/tree", "stored-whiteout"] {
        let meta = std::fs::symlink_metadata(root.join(name)).unwrap();
        assert!(meta.file_type().is_char_device(), "{name}");
        assert_eq!(meta.rdev(), 0, "{name}");
    }
    assert!(!root.join("etc/.wh.gone").exists());
    assert!(!root.join(".wh..wh.plnk").exists());
    assert!(!root.join("opt/.wh..wh..opq").exists());
    let mut value = [0u8; 8];
    let n = rustix::fs::lgetxattr(root.join("opt"), "user.overlay.opaque", &mut value).unwrap();
    assert_eq!(&value[..n], b"y");
    assert_eq!(std::fs::read(root.join("opt/new")).unwrap(), b"n");
}

#[test]
fn bad_whiteout_names_are_refused() {
    for name in ["etc/.wh.", "etc/.wh..", "etc/.wh..."] {
        let tar = Tar::new().file(name, 0o644, b"").bytes();
        let (_dir, result) = unpack(&tar);
        let text = message(result);
        assert!(text.contains("layer L") && text.contains(name), "{text}");
    }
}

#[test]
fn xattrs_are_applied_and_overlay_ones_refused() {
    let tar = Tar::new()
        .pax(&[
            ("SCHILY.xattr.user.color", b"blue"),
            (
                "SCHILY.xattr.security.capability",
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
            ("SCHILY.xattr.user.overlay.redirect", b"/etc"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ])
        .file("ping", 0o755, b"elf")
        .pax(&[("SCHILY.xattr.user.dir", b"d")])
        .dir("d/", 0o755)
        .bytes();
    let (dir, result) = unpack(&tar);
    let stats = result.unwrap();
    let root = dir.path().join("layer");
    let mut value = [0u8; 64];
    let n = rustix::fs::lgetxattr(root.join("ping"), "user.color", &mut value).unwrap();
    assert_eq!(&value[..n], b"blue");
    let n = rustix::fs::lgetxattr(root.join("d"), "user.dir", &mut value).unwrap();
    assert_eq!(&value[..n], b"d");
    assert!(rustix::fs::lgetxattr(root.join("ping"), "user.overlay.redirect", &mut value).is_err());
    assert!(
        rustix::fs::lgetxattr(root.join("ping"), "trusted.overlay.opaque", &mut value).is_err()
    );
    // The two overlay ones are never applied; security.capability is set (root).
    assert_eq!(stats.overlay_xattrs, 2, "{stats:?}");
}

#[test]
fn xattrs_the_filesystem_refuses_are_left_out_and_summarised() {
    let tar = Tar::new()
        .file("f", 0o644, b"x")
        .pax(&[("SCHILY.xattr.user.on-symlink", b"1")])
        .link(EntryType::Symlink, "l", "f")
        .pax(&[("SCHILY.xattr.user.on-fifo", b"2")])
        .raw(Tar::header(EntryType::Fifo, b"p", 0, 0o644), b"")
        .pax(&[
            ("SCHILY.xattr.user.kept", b"3"),
            ("SCHILY.xattr.user.overlay.opaque", b"y"),
        ])
        .file("g", 0o644, b"y")
        .bytes();
    let (dir, result) = unpack(&tar);
    let stats = result.unwrap();
    let root = dir.path().join("layer");
    // user.* xattrs are refused on symlinks and fifos (EPERM): the entries are there.
    assert!(
        root.join("l")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        root.join("p")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let mut value = [0u8; 8];
    let n = rustix::fs::lgetxattr(root.join("g"), "user.kept", &mut value).unwrap();
    assert_eq!(&value[..n], b"3");
    assert_eq!(
        (stats.refused_xattrs, stats.overlay_xattrs),
        (2, 1),
        "{stats:?}"
    );
    let warning = stats.xattr_warning().unwrap();
    assert!(
        warning.starts_with("3 extended attribute(s) were not kept: 2 refused by the filesystem (")
            && warning.contains("user.on-symlink on l (")
            && warning.contains("user.on-fifo on p (")
            && warning.contains("1 overlay attribute(s)"),
        "{warning}"
    );
    assert_eq!(UnpackStats::default().xattr_warning(), None);
}

/// Every hostile entry must fail naming the layer and the entry, and leave nothing
/// outside the destination.
#[test]
fn nothing_is_written_outside_the_destination() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", Tar::new().file("../escaped", 0o644, b"x").bytes()),
        (
            "inner dotdot",
            Tar::new().file("a/../../escaped", 0o644, b"x").bytes(),
        ),
        (
            "symlink parent",
            Tar::new()
                .link(EntryType::Symlink, "a", "..")
                .file("a/escaped", 0o644, b"x")
                .bytes(),
        ),
        (
            "absolute symlink parent",
            Tar::new()
                .link(EntryType::Symlink, "a", "/tmp")
                .file("a/escaped", 0o644, b"x")
                .bytes(),
        ),
        (
            "symlink grandparent",
            Tar::new()
                .link(EntryType::Symlink, "a", ".")
                .file("a/b/escaped", 0o644, b"x")
                .bytes(),
        ),
        (
            "hard link outside",
            Tar::new()
                .link(EntryType::Link, "escaped", "../outside-file")
                .bytes(),
        ),
        (
            "hard link through symlink",
            Tar::new()
                .link(EntryType::Symlink, "up", "..")
                .link(EntryType::Link, "escaped", "up/outside-file")
                .bytes(),
        ),
        (
            "hard link missing",
            Tar::new()
                .link(EntryType::Link, "escaped", "nothing")
                .bytes(),
        ),
        (
            "whiteout through symlink",
            Tar::new()
                .link(EntryType::Symlink, "up", "..")
                .file("up/.wh.outside-file", 0o644, b"")
                .bytes(),
        ),
        (
            "whiteout dotdot",
            Tar::new().file("../.wh.outside-file", 0o644, b"").bytes(),
        ),
    ];
    for (what, tar) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("outside-file"), b"keep").unwrap();
        let dest = dir.path().join("layer");
        std::fs::create_dir(&dest).unwrap();
        let err = unpack_layer(
            &tar[..],
            Compression::None,
            &Digest::of(&tar),
            &dest,
            "layer L",
        )
        .unwrap_err();
        let text = crate::error::message(&err);
        assert!(text.starts_with("layer L: entry `"), "{what}: {text}");
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["layer", "outside-file"], "{what}");
        assert_eq!(
            std::fs::read(dir.path().join("outside-file")).unwrap(),
            b"keep",
            "{what}"
        );
        assert!(!Path::new("/tmp/escaped").exists(), "{what}");
    }
}

#[test]
fn absolute_paths_and_hard_link_targets_are_refused() {
    for (what, tar) in [
        (
            "absolute path",
            Tar::new().file("/etc/abs", 0o644, b"x").bytes(),
        ),
        ("double slash", Tar::new().file("//x", 0o644, b"y").bytes()),
        (
            "absolute hard link target",
            Tar::new()
                .file("etc/passwd", 0o644, b"x")
                .link(EntryType::Link, "hl", "/etc/passwd")
                .bytes(),
        ),
    ] {
        let (dir, result) = unpack(&tar);
        let text = message(result);
        assert!(
            text.starts_with("layer L: entry `") && text.contains("absolute"),
            "{what}: {text}"
        );
        assert!(!dir.path().join("layer/etc/abs").exists(), "{what}");
        assert!(!dir.path().join("layer/x").exists(), "{what}");
        assert!(!dir.path().join("layer/hl").exists(), "{what}");
    }
}

#[test]
fn dot_slash_paths_and_absolute_symlink_targets_are_fine() {
    let tar = Tar::new()
        .dir("./", 0o755)
        .dir("./etc/", 0o755)
        .file("./etc/os-release", 0o644, b"ID=x\n")
        .link(EntryType::Link, "./etc/hl", "./etc/os-release")
        .link(EntryType::Symlink, "./etc/abs", "/etc/os-release")
        .bytes();
    let (dir, result) = unpack(&tar);
    result.unwrap();
    let layer = dir.path().join("layer");
    assert_eq!(std::fs::read(layer.join("etc/hl")).unwrap(), b"ID=x\n");
    assert_eq!(
        std::fs::read_link(layer.join("etc/abs")).unwrap(),
        Path::new("/etc/os-release"),
        "a symlink target resolves inside the box: it may be absolute"
    );
}

#[test]
fn hard_link_failures_say_why_with_a_hint() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            Tar::new().link(EntryType::Link, "hl", "nothing").bytes(),
            "the hard link's target `nothing` does not exist in the layer",
        ),
        (
            Tar::new().link(EntryType::Link, "hl", "no/such").bytes(),
            "the hard link's target `no/such` does not exist in the layer (there is no `no`)",
        ),
        (
            Tar::new()
                .dir("d", 0o755)
                .file("d/f", 0o644, b"x")
                .link(EntryType::Symlink, "up", "d")
                .link(EntryType::Link, "hl", "up/f")
                .bytes(),
            "the hard link's target `up/f` goes through the symlink `up`",
        ),
        (
            Tar::new()
                .file("f", 0o644, b"x")
                .link(EntryType::Link, "hl", "f/x")
                .bytes(),
            "the hard link's target `f/x` goes through `f`, which is not a directory",
        ),
        (
            Tar::new()
                .dir("d", 0o755)
                .link(EntryType::Link, "hl", "d")
                .bytes(),
            "the hard link's target `d` is a directory",
        ),
    ];
    for (tar, expected) in cases {
        let (_dir, result) = unpack(&tar);
        let err = result.unwrap_err();
        let text = crate::error::message(&err);
        assert!(
            text.starts_with("layer L: entry `hl`: ") && text.contains(expected),
            "expected {expected:?} in {text:?}"
        );
        assert!(
            err.downcast_ref::<crate::error::Hint>().is_some(),
            "no hint for {text:?}"
        );
    }
}

#[test]
fn id_maps_decide_what_is_chowned() {
    let map = "         0     100000       1000\n      1000       1000          1\n";
    assert!(unpack::parse_id_ranges_for_test(map, 0));
    assert!(unpack::parse_id_ranges_for_test(map, 999));
    assert!(unpack::parse_id_ranges_for_test(map, 1000));
    assert!(!unpack::parse_id_ranges_for_test(map, 1001));
    // The store helper's namespace maps the store owner too: no layer file gets it.
    let helper = format!("{map}{} 165535 1\n", crate::sys::idmap::STORE_OWNER_INSIDE);
    assert!(unpack::parse_id_ranges_for_test(&helper, 999));
    assert!(!unpack::parse_id_ranges_for_test(
        &helper,
        crate::sys::idmap::STORE_OWNER_INSIDE.into()
    ));
}

#[test]
fn running_out_of_space_is_reported_as_such() {
    let err = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::ENOSPC))
        .context("writing the file")
        .context("layer L: entry `big`");
    let dest = Path::new("/store/tmp/layer-1");
    let mapped = unpack::map_out_of_space(err, "layer L", dest);
    assert_eq!(
        crate::error::message(&mapped),
        "no space left on device while unpacking layer L into /store/tmp/layer-1"
    );
    assert!(mapped.downcast_ref::<crate::error::Hint>().is_some());
}

#[test]
fn blocks_of_zeros_become_holes_and_the_content_stays() {
    // 3 zero blocks, a block with one byte, a short tail; and a file ending in zeros.
    let mut middle = vec![0u8; 5 * 4096 + 100];
    middle[3 * 4096 + 7] = b'x';
    middle[5 * 4096 + 99] = b'y';
    let tail = vec![0u8; 64 << 10];
    let tar = Tar::new()
        .file("middle", 0o644, &middle)
        .file("tail", 0o644, &tail)
        .bytes();
    let (dir, result) = unpack(&tar);
    result.unwrap();
    let layer = dir.path().join("layer");
    assert_eq!(std::fs::read(layer.join("middle")).unwrap(), middle);
    assert_eq!(std::fs::read(layer.join("tail")).unwrap(), tail);
    let meta = std::fs::metadata(layer.join("tail")).unwrap();
    assert_eq!(meta.len(), 64 << 10);
    assert!(meta.blocks() * 512 < meta.len(), "{} blocks", meta.blocks());
}

#[test]
fn xattrs_come_from_schily_records_or_libarchive_s_base64_ones() {
    use base64::Engine as _;
    let binary = b"\x01\x00\x0a\x02";
    let encoded = base64::engine::general_purpose::STANDARD.encode(binary);
    let tar = Tar::new()
        .pax(&[
            ("SCHILY.xattr.user.plain", b"simple"),
            // tar-rs cannot split this record; the libarchive one carries the value.
            ("SCHILY.xattr.user.bin", binary),
            ("LIBARCHIVE.xattr.user.bin", encoded.as_bytes()),
            ("LIBARCHIVE.xattr.user.plain", b"aWdub3JlZA=="),
            ("LIBARCHIVE.xattr.user.%3Dodd", b"eA=="),
        ])
        .file("f", 0o644, b"x")
        .bytes();
    let (dir, result) = unpack(&tar);
    result.unwrap();
    let file = dir.path().join("layer/f");
    let get = |name: &str| {
        let mut buf = vec![0u8; 64];
        let n = rustix::fs::getxattr(&file, name, &mut buf[..]).unwrap();
        buf.truncate(n);
        buf
    };
    assert_eq!(get("user.plain"), b"simple", "SCHILY wins");
    assert_eq!(get("user.bin"), binary);
    assert_eq!(get("user.=odd"), b"x");
}
