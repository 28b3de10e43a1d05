//! Packing a real upper directory over a real lower one (without a user namespace: the
//! test's own ids; whiteouts only where the test may make device nodes).

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

fn open_dir(path: &Path) -> OwnedFd {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

struct Packed {
    stats: PackStats,
    blob: Vec<u8>,
}

fn run(dir: &Path, request: &PackRequest) -> Packed {
    let blob_dir = open_dir(&dir.join("tmp"));
    let name = request.blob.file_name().unwrap().as_encoded_bytes();
    let stats = pack(
        request,
        open_dir(&request.upper),
        request.lowers.iter().map(|l| open_dir(l)).collect(),
        blob_dir.as_fd(),
        name,
    )
    .unwrap();
    let blob = std::fs::read(&request.blob).unwrap();
    std::fs::remove_file(&request.blob).unwrap();
    Packed { stats, blob }
}

/// (path, type, mode, link target, data, xattrs) of every entry of a gzip tar.
type Listed = (
    String,
    char,
    u32,
    Option<String>,
    Vec<u8>,
    Vec<(String, String)>,
);

fn list(tar_bytes: &[u8]) -> Vec<Listed> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Regular => 'f',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Fifo => 'p',
            other => panic!("unexpected entry type {other:?}"),
        };
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry.pax_extensions().unwrap() {
            for e in extensions {
                let e = e.unwrap();
                if let Some(name) = e.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((
                        String::from_utf8_lossy(name).into_owned(),
                        String::from_utf8_lossy(e.value_bytes()).into_owned(),
                    ));
                }
            }
        }
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((path, kind, header.mode().unwrap(), link, data, xattrs));
    }
    out
}

fn gunzip(blob: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(blob)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn alice() -> Account {
    Account {
        user: "alice".into(),
        uid: 1000,
        group: "alice".into(),
        gid: 1000,
    }
}

#[test]
fn an_upper_directory_packs_to_the_changes_without_what_box_put_there() {
    let tmp = tempfile::tempdir().unwrap();
    let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
    std::fs::create_dir_all(tmp.path().join("tmp")).unwrap();
    // The image.
    write(
        &lower.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\n",
    );
    write(&lower.join("etc/group"), b"root:x:0:\n");
    std::fs::create_dir_all(lower.join("etc/sudoers.d")).unwrap();
    write(&lower.join("opt/gone"), b"old");
    write(&lower.join("srv/hidden"), b"old");
    std::fs::create_dir_all(lower.join("var/cache/apt/archives/partial")).unwrap();
    std::fs::create_dir_all(lower.join("usr/share")).unwrap();
    // The box's changes, and what box put there.
    write(
        &upper.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:alice:/home/alice:/bin/sh\n",
    );
    write(
        &upper.join("etc/group"),
        b"root:x:0:\nmessagebus:x:101:\nalice:x:1000:alice\n",
    );
    write(
        &upper.join("etc/sudoers.d/box-alice"),
        b"alice ALL=(ALL) ALL\n",
    );
    std::os::unix::fs::symlink("/run/host/etc/hosts", upper.join("etc/hosts")).unwrap();
    write(
        &upper.join("usr/local/bin/sudo"),
        b"#!/bin/sh\n# Written by box: ...\nexec box\n",
    );
    write(&upper.join("opt/new"), b"new file");
    std::fs::set_permissions(
        upper.join("opt/new"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    rustix::fs::setxattr(
        upper.join("opt/new"),
        "user.note",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    std::fs::hard_link(upper.join("opt/new"), upper.join("opt/new-link")).unwrap();
    std::os::unix::fs::symlink("new", upper.join("opt/sym")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        upper.join("opt/fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    let sparse = std::fs::File::create(upper.join("opt/sparse")).unwrap();
    sparse.set_len(1 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"x", 512 << 10).unwrap();
    drop(sparse);
    std::os::unix::net::UnixListener::bind(upper.join("opt/socket")).unwrap();
    write(&upper.join("opt/.wh.not-a-whiteout"), b"a user's file");
    // An opaque directory (as overlay marks one made anew over the image's).
    write(&upper.join("srv/only"), b"only");
    rustix::fs::setxattr(
        upper.join("srv"),
        "user.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // Copied up for a file that is left out: the image has these directories.
    write(&upper.join("var/cache/apt/archives/vim.deb"), b"deb");
    // A mount point and its parent, made for a home.
    std::fs::create_dir_all(upper.join("home/alice")).unwrap();
    write(&upper.join("run/.containerenv"), b"engine=box");
    // A whiteout, where the test may make one (root, or a user namespace).
    let whiteouts = rustix::fs::mknodat(
        rustix::fs::CWD,
        upper.join("opt/gone"),
        FileType::CharacterDevice,
        Mode::empty(),
        0,
    )
    .is_ok();
    // The directories the image has keep its modes in the upper directory.
    for dir in [
        "var",
        "var/cache",
        "var/cache/apt",
        "var/cache/apt/archives",
        "etc",
        "etc/sudoers.d",
        "usr",
    ] {
        let mode = std::fs::metadata(lower.join(dir)).unwrap().permissions();
        std::fs::set_permissions(upper.join(dir), mode).unwrap();
    }

    let request = PackRequest {
        upper: upper.clone(),
        lowers: vec![lower.clone()],
        blob: tmp.path().join("tmp/blob"),
        compression: LayerCompression::Gzip,
        clamp_mtime: Some(1000),
        omit: Omissions {
            trees: vec!["run".into(), "tmp".into()],
            paths: vec!["etc/hosts".into(), "etc/sudoers.d/box-alice".into()],
            mount_points: vec!["home/alice".into()],
            written_by_box: vec![(
                "usr/local/bin/sudo".into(),
                "#!/bin/sh\n# Written by box:".into(),
            )],
            caches: vec!["var/cache/apt".into()],
        },
        account: Some(alice()),
        all_root: false,
        blob_owner: (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        ),
        label: "box `test`".into(),
    };
    let packed = run(tmp.path(), &request);
    let tar_bytes = gunzip(&packed.blob);
    assert_eq!(Digest::of(&tar_bytes), packed.stats.diff_id);
    assert_eq!(Digest::of(&packed.blob), packed.stats.digest);
    assert_eq!(packed.stats.size, packed.blob.len() as u64);
    assert_eq!(
        packed.stats.skipped,
        vec![
            "/opt/.wh.not-a-whiteout".to_owned(),
            "/opt/socket".to_owned()
        ]
    );
    let entries = list(&tar_bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let mut expected = vec!["etc/", "etc/group", "opt/"];
    if whiteouts {
        expected.push("opt/.wh.gone");
    }
    expected.extend([
        "opt/fifo",
        "opt/new",
        "opt/new-link",
        "opt/sparse",
        "opt/sym",
        "srv/",
        "srv/.wh..wh..opq",
        "srv/only",
        "usr/",
        "usr/local/",
        "usr/local/bin/",
    ]);
    assert_eq!(names, expected);
    let by_name = |name: &str| entries.iter().find(|e| e.0 == name).unwrap();
    assert_eq!(by_name("etc/group").4, b"root:x:0:\nmessagebus:x:101:\n");
    let new = by_name("opt/new");
    assert_eq!((new.1, new.2, &new.4[..]), ('f', 0o4755, &b"new file"[..]));
    assert_eq!(new.5, vec![("user.note".to_owned(), "kept".to_owned())]);
    let link = by_name("opt/new-link");
    assert_eq!((link.1, link.3.as_deref()), ('h', Some("opt/new")));
    assert_eq!(by_name("opt/sym").3.as_deref(), Some("new"));
    assert_eq!((by_name("opt/fifo").1, by_name("opt/fifo").2), ('p', 0o640));
    let sparse = &by_name("opt/sparse").4;
    assert_eq!(sparse.len(), 1 << 20);
    assert_eq!(sparse.iter().filter(|&&b| b != 0).count(), 1);
    assert_eq!(sparse[512 << 10], b'x');
    // Overlay's own attribute is not carried; the opaque marker says it.
    assert!(by_name("srv/").5.is_empty());
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        assert!(entry.header().mtime().unwrap() <= 1000, "clamped");
        assert!(
            entry
                .header()
                .username_bytes()
                .unwrap_or_default()
                .is_empty()
        );
    }

    // The same files pack to the same bytes; zstd holds the same tar.
    assert_eq!(run(tmp.path(), &request).blob, packed.blob);
    let zstd = run(
        tmp.path(),
        &PackRequest {
            compression: LayerCompression::Zstd,
            ..request.clone()
        },
    );
    assert_eq!(zstd::decode_all(&zstd.blob[..]).unwrap(), tar_bytes);
    assert_eq!(zstd.stats.diff_id, packed.stats.diff_id);

    // An account file that ends up as the image's is left out; the user's is never in.
    assert!(!names.contains(&"etc/passwd"));
    assert!(!tar_bytes.windows(5).any(|w| w == b"alice"));
}

#[test]
fn all_root_records_every_owner_as_root_and_failures_leave_no_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    std::fs::create_dir_all(tmp.path().join("tmp")).unwrap();
    write(&upper.join("opt/f"), b"x");
    let request = PackRequest {
        upper: upper.clone(),
        lowers: vec![],
        blob: tmp.path().join("tmp/blob"),
        compression: LayerCompression::Gzip,
        clamp_mtime: None,
        omit: Omissions::default(),
        account: None,
        all_root: true,
        blob_owner: (0, 0),
        label: "box `t`".into(),
    };
    let packed = run(tmp.path(), &request);
    let tar_bytes = gunzip(&packed.blob);
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    for entry in archive.entries().unwrap() {
        let header = entry.unwrap().header().clone();
        assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
    }
    // A blob name that exists already: refused, and the file there is untouched.
    std::fs::write(&request.blob, b"other").unwrap();
    let blob_dir = open_dir(&tmp.path().join("tmp"));
    let err = pack(
        &request,
        open_dir(&upper),
        vec![],
        blob_dir.as_fd(),
        b"blob",
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("creating"), "{err:#}");
    assert_eq!(std::fs::read(&request.blob).unwrap(), b"other");
}

#[test]
fn hard_links_follow_their_first_name_whatever_order_the_directory_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let upper = tmp.path().join("upper");
    std::fs::create_dir_all(tmp.path().join("tmp")).unwrap();
    // Enough names that the filesystem's own order (ext4 lists by hash) is not sorted.
    for i in 0..60 {
        write(&upper.join(format!("d/x{i:02}")), format!("{i}").as_bytes());
        std::fs::hard_link(
            upper.join(format!("d/x{i:02}")),
            upper.join(format!("d/a{i:02}")),
        )
        .unwrap();
    }
    let request = PackRequest {
        upper: upper.clone(),
        lowers: vec![],
        blob: tmp.path().join("tmp/blob"),
        compression: LayerCompression::Gzip,
        clamp_mtime: None,
        omit: Omissions::default(),
        account: None,
        all_root: false,
        blob_owner: (0, 0),
        label: "box `t`".into(),
    };
    let packed = run(tmp.path(), &request);
    let tar_bytes = gunzip(&packed.blob);
    for (path, kind, _, link, _, _) in list(&tar_bytes) {
        if path.starts_with("d/a") {
            assert_eq!(kind, 'f', "{path}: the first name holds the data");
        } else if path.starts_with("d/x") {
            assert_eq!(link.as_deref(), Some(&*path.replace("d/x", "d/a")));
        }
    }
    // Box's own unpacker takes the layer, links and all.
    let dest = tmp.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    crate::image::unpack_layer(
        &packed.blob[..],
        crate::image::Compression::Gzip,
        &packed.stats.diff_id,
        &dest,
        "the layer",
    )
    .unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(dest.join("d/a07")).unwrap().ino(),
        std::fs::metadata(dest.join("d/x07")).unwrap().ino()
    );
}
