//! `box commit` end to end, as the unprivileged test users against the real kernel: the
//! committed layer read entry by entry against what was done in the box (whiteouts, an
//! opaque directory, hard links, setuid, owners, xattrs, a fifo, a sparse file), the user's
//! account and box's own files left out, every digest of the new image checked (with
//! oci-spec, and by skopeo reading it as an OCI layout), a box made from it (with its
//! changes, and no provisioning run), the same digest from an unchanged box, a box
//! without subordinate ids, a running box refused, and a full disk leaving the store as
//! it was.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::boxes::{Boxes, box_from, list, ok, sh};
use crate::common::standin::CALLS;
use crate::common::{Fixture, Registry, TestEnv, User, hex_of, sha256};

/// The new image as the store has it, every digest checked.
struct Committed {
    manifest_digest: String,
    manifest: oci_spec::image::ImageManifest,
    config: Value,
    /// The new (last) layer's uncompressed tar.
    layer_tar: Vec<u8>,
}

/// The file name the store gives an image record (`store::images`).
fn record_path(env: &TestEnv, reference: &str) -> PathBuf {
    let mut name = String::new();
    for c in reference.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
            name.push(c);
        } else {
            for b in c.to_string().bytes() {
                name.push_str(&format!("%{b:02X}"));
            }
        }
    }
    env.store().join("images").join(format!("{name}.json"))
}

fn blob(env: &TestEnv, digest: &str) -> Vec<u8> {
    let bytes = std::fs::read(env.store().join("blobs/sha256").join(hex_of(digest)))
        .unwrap_or_else(|e| panic!("blob {digest}: {e}"));
    assert_eq!(sha256(&bytes), digest, "the blob's content is its digest");
    bytes
}

/// Read and check the image `reference` (canonical) of the store: the manifest and
/// config parse as OCI documents, every blob matches its descriptor's digest and size, the
/// new layer's tar matches the config's last diff_id, and the layers below are `base`'s.
#[track_caller]
fn committed(env: &TestEnv, reference: &str, base: &str) -> Committed {
    let record: Value =
        serde_json::from_slice(&std::fs::read(record_path(env, reference)).unwrap()).unwrap();
    let manifest_digest = record["manifest_digest"].as_str().unwrap().to_owned();
    let manifest_bytes = blob(env, &manifest_digest);
    let manifest = oci_spec::image::ImageManifest::from_reader(&manifest_bytes[..]).unwrap();
    assert_eq!(
        manifest
            .media_type()
            .as_ref()
            .map(|m| m.to_string())
            .as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let config_bytes = blob(env, manifest.config().digest().as_ref());
    assert_eq!(manifest.config().size(), config_bytes.len() as u64);
    let parsed = oci_spec::image::ImageConfiguration::from_reader(&config_bytes[..]).unwrap();
    let config: Value = serde_json::from_slice(&config_bytes).unwrap();
    let diff_ids = parsed.rootfs().diff_ids();
    assert_eq!(diff_ids.len(), manifest.layers().len());
    let mut layer_tar = Vec::new();
    for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let bytes = blob(env, layer.digest().as_ref());
        assert_eq!(layer.size(), bytes.len() as u64);
        let mut tar = Vec::new();
        match layer.media_type().to_string().as_str() {
            "application/vnd.oci.image.layer.v1.tar+gzip" => {
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut tar)
                    .unwrap();
            }
            "application/vnd.oci.image.layer.v1.tar+zstd" => {
                tar = zstd::decode_all(&bytes[..]).unwrap()
            }
            other => panic!("layer media type {other}"),
        }
        assert_eq!(&sha256(&tar), diff_id, "the layer's tar is its diff_id");
        assert!(env.layer_dir(diff_id).is_dir(), "layer {diff_id} unpacked");
        layer_tar = tar;
    }
    // The base image's layers, unchanged: same blobs, same diff ids.
    let base_record: Value =
        serde_json::from_slice(&std::fs::read(record_path(env, base)).unwrap()).unwrap();
    let base_layers = base_record["layers"].as_array().unwrap();
    assert_eq!(base_layers.len() + 1, manifest.layers().len());
    for (old, new) in base_layers.iter().zip(manifest.layers()) {
        assert_eq!(old["digest"].as_str().unwrap(), new.digest().to_string());
    }
    for (old, new) in base_layers.iter().zip(diff_ids) {
        assert_eq!(old["diff_id"].as_str().unwrap(), new);
    }
    let annotations = manifest.annotations().clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("org.opencontainers.image.base.name")
            .map(String::as_str),
        Some(base)
    );
    assert_eq!(
        annotations.get("org.opencontainers.image.base.digest"),
        base_record["manifest_digest"]
            .as_str()
            .map(str::to_owned)
            .as_ref()
    );
    assert!(parsed.created().is_some(), "created is set");
    Committed {
        manifest_digest,
        manifest,
        config,
        layer_tar,
    }
}

/// One tar entry: type, mode, owner, link target, data, xattrs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    kind: char,
    mode: u32,
    owner: (u64, u64),
    link: Option<String>,
    data: Vec<u8>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// The entries of a tar by path, in order. xattrs come from `SCHILY.xattr.*`, or from
/// libarchive's base64 form for values tar-rs cannot split (those with a newline).
fn entries(tar_bytes: &[u8]) -> Vec<(String, Listed)> {
    use base64::Engine as _;
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        assert!(
            header.username_bytes().unwrap_or_default().is_empty(),
            "no user names"
        );
        assert!(
            header.groupname_bytes().unwrap_or_default().is_empty(),
            "no group names"
        );
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Regular => 'f',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Fifo => 'p',
            other => panic!("{path}: entry type {other:?}"),
        };
        let mut xattrs = BTreeMap::new();
        if let Some(extensions) = entry.pax_extensions().unwrap() {
            for e in extensions.flatten() {
                let key = String::from_utf8_lossy(e.key_bytes()).into_owned();
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(name.to_owned(), e.value_bytes().to_vec());
                } else if let Some(name) = key.strip_prefix("LIBARCHIVE.xattr.") {
                    let value = base64::engine::general_purpose::STANDARD
                        .decode(e.value_bytes())
                        .unwrap();
                    xattrs.insert(name.to_owned(), value);
                }
            }
        }
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((
            path,
            Listed {
                kind,
                mode: header.mode().unwrap(),
                owner: (header.uid().unwrap(), header.gid().unwrap()),
                link,
                data,
                xattrs,
            },
        ));
    }
    out
}

/// `box commit` that must succeed: the digest it prints.
#[track_caller]
fn commit(env: &TestEnv, args: &[&str]) -> String {
    commit_at(env, None, args)
}

/// [`commit`] with `SOURCE_DATE_EPOCH` set to `epoch`.
#[track_caller]
fn commit_at(env: &TestEnv, epoch: Option<&str>, args: &[&str]) -> String {
    let mut all = vec!["commit"];
    all.extend(args);
    let mut command = env.command(&all);
    if let Some(epoch) = epoch {
        command.env("SOURCE_DATE_EPOCH", epoch);
    }
    let out = env.wait(&all, command.spawn().unwrap());
    out.success();
    out.stderr_has("committed box");
    let digest = out.stdout.trim().to_owned();
    assert!(digest.starts_with("sha256:"), "{out}");
    digest
}

/// Run as root in the box.
#[track_caller]
fn as_root(env: &TestEnv, name: &str, script: &str) {
    ok(
        env,
        &["run", "--user", "root", name, "--", "sh", "-c", script],
    );
}

/// Give a file made from the host the owner it would have from root in the box.
fn chown_to_box_root(env: &TestEnv, path: &Path) {
    let id = if env.user.has_subids() {
        100_000
    } else {
        env.uid
    };
    std::os::unix::fs::lchown(path, Some(id), Some(id)).unwrap();
}

/// An OCI image layout of the store's image `digest`, for skopeo: the blobs are hard
/// links into the store's.
fn oci_layout(env: &TestEnv, committed: &Committed, dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut digests = vec![
        committed.manifest_digest.clone(),
        committed.manifest.config().digest().to_string(),
    ];
    digests.extend(
        committed
            .manifest
            .layers()
            .iter()
            .map(|l| l.digest().to_string()),
    );
    for digest in &digests {
        std::fs::hard_link(
            env.store().join("blobs/sha256").join(hex_of(digest)),
            blobs.join(hex_of(digest)),
        )
        .unwrap();
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let size = std::fs::metadata(blobs.join(hex_of(&committed.manifest_digest)))
        .unwrap()
        .len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": committed.manifest_digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "committed"},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

/// skopeo (a real client) reads the image: `inspect --raw` gives the manifest's bytes, and
/// `copy` to a `dir:` verifies every blob against its digest.
fn skopeo_reads(env: &TestEnv, committed: &Committed) {
    let layout = env.dir.join("oci-layout");
    oci_layout(env, committed, &layout);
    let source = format!("oci:{}:committed", layout.display());
    let inspect = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", &source])
        .output()
        .expect("running skopeo (tests/run installs it)");
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert_eq!(sha256(&inspect.stdout), committed.manifest_digest);
    let copy = std::process::Command::new("skopeo")
        .args(["copy", "--quiet", &source])
        .arg(format!("dir:{}", env.dir.join("copied").display()))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let copied = std::fs::read(env.dir.join("copied/manifest.json")).unwrap();
    assert_eq!(
        sha256(&copied),
        committed.manifest_digest,
        "copied unchanged"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_committed_layer_holds_the_box_s_changes_entry_by_entry() {
    let env = TestEnv::new("commit-entries", User::BoxTest);
    let _boxes = Boxes(&env);
    let base = box_from(&env, Fixture::Multilayer, "src");
    // What a user does in a box: delete an image file (a whiteout), make a directory anew
    // (opaque), install files of several owners, a setuid binary, a hard link, a symlink.
    as_root(
        &env,
        "src",
        "rm /data/user1234 && rm -rf /data/opaque && mkdir /data/opaque && echo fresh > /data/opaque/only \
         && mkdir -p /opt/app && echo program > /opt/app/file && chmod 4755 /opt/app/file \
         && ln /opt/app/file /opt/app/file-link && ln -s file /opt/app/sym \
         && echo mine > /opt/app/1234 && chown 1234:1234 /opt/app/1234 && chown 33:44 /opt/app",
    );
    ok(&env, &["stop", "src"]);
    // What busybox has no applet for, made from the host with the box root's owner: an
    // xattr (with a newline in its value), a fifo, a sparse file.
    let upper = env.store().join("containers/src/upper");
    rustix::fs::lsetxattr(
        upper.join("opt/app/file"),
        "user.note",
        b"two\nlines",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        upper.join("opt/app/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    chown_to_box_root(&env, &upper.join("opt/app/fifo"));
    let sparse = std::fs::File::create(upper.join("opt/app/sparse")).unwrap();
    sparse.set_len(8 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"x", 4 << 20).unwrap();
    drop(sparse);
    chown_to_box_root(&env, &upper.join("opt/app/sparse"));
    // box set the user up in the box at its first start.
    let passwd = std::fs::read_to_string(upper.join("etc/passwd")).unwrap();
    assert!(passwd.contains("boxtest:"), "{passwd}");

    let digest = commit(&env, &["src", "localhost/committed:1"]);
    let image = committed(&env, "localhost/committed:1", &base);
    assert_eq!(image.manifest_digest, digest);
    let layer = entries(&image.layer_tar);
    let paths: Vec<&str> = layer.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "data/",
            "data/.wh.user1234",
            "data/opaque/",
            "data/opaque/.wh..wh..opq",
            "data/opaque/only",
            "opt/",
            "opt/app/",
            "opt/app/1234",
            "opt/app/fifo",
            "opt/app/file",
            "opt/app/file-link",
            "opt/app/sparse",
            "opt/app/sym",
        ],
        "nothing of the user's account, mount points, /run, /tmp or box's files"
    );
    let get = |path: &str| &layer.iter().find(|(p, _)| p == path).unwrap().1;
    assert_eq!(get("opt/app/").owner, (33, 44));
    assert_eq!(get("opt/app/1234").owner, (1234, 1234));
    let file = get("opt/app/file");
    assert_eq!((file.kind, file.mode, file.owner), ('f', 0o4755, (0, 0)));
    assert_eq!(file.data, b"program\n");
    assert_eq!(
        file.xattrs.get("user.note").map(Vec::as_slice),
        Some(&b"two\nlines"[..])
    );
    let link = get("opt/app/file-link");
    assert_eq!(
        (link.kind, link.link.as_deref()),
        ('h', Some("opt/app/file"))
    );
    assert_eq!(get("opt/app/sym").link.as_deref(), Some("file"));
    assert_eq!(
        (get("opt/app/fifo").kind, get("opt/app/fifo").mode),
        ('p', 0o640)
    );
    let sparse = &get("opt/app/sparse").data;
    assert_eq!(sparse.len(), 8 << 20);
    assert_eq!(sparse.iter().filter(|&&b| b != 0).count(), 1);
    assert_eq!(get("data/opaque/only").data, b"fresh\n");
    assert!(
        !image.layer_tar.windows(7).any(|w| w == b"boxtest"),
        "the user's name is nowhere in the layer"
    );
    let labels = &image.config["config"]["Labels"];
    assert_eq!(
        labels["box.provisioned"], "false",
        "made with provisioning off"
    );

    skopeo_reads(&env, &image);

    // A box of the new image has the changes, and the user set up afresh.
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            "localhost/committed:1",
            "copy",
        ],
    );
    let out = sh(
        &env,
        "copy",
        "test -e /data/user1234 || echo gone; ls /data/opaque; stat -c '%a %u:%g %h' /opt/app/file; \
         stat -c '%u:%g' /opt/app /opt/app/1234; cat /opt/app/sym; id -un",
    );
    out.success();
    assert_eq!(
        out.stdout, "gone\nonly\n4755 0:0 2\n33:44\n1234:1234\nprogram\nboxtest\n",
        "{out}"
    );
    // Its sparse file is sparse again in the store.
    let new_layer = env.layer_dir(
        image.config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap(),
    );
    let meta = std::fs::metadata(new_layer.join("opt/app/sparse")).unwrap();
    assert!(
        meta.blocks() * 512 < meta.len() / 2,
        "{} blocks",
        meta.blocks()
    );
    assert_eq!(
        std::fs::metadata(new_layer.join("opt/app/file"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_unchanged_box_commits_to_the_same_digest_and_a_tag_is_replaced() {
    let env = TestEnv::new("commit-same", User::BoxTest);
    let _boxes = Boxes(&env);
    let base = box_from(&env, Fixture::Busybox, "b");
    as_root(&env, "b", "mkdir /opt && echo one > /opt/one");
    // A running box is refused, and nothing is made.
    let before = env.store_state();
    let out = env.run(&["commit", "b", "localhost/same:1"]);
    out.box_error(&["box `b` is running", "box stop b"]);
    env.assert_store_unchanged(&before, &out);
    ok(&env, &["stop", "b"]);

    let epoch = Some("1700000000");
    let first = commit_at(&env, epoch, &["b", "localhost/same:1"]);
    let second = commit_at(&env, epoch, &["b", "127.0.0.1:5999/same:2"]);
    assert_eq!(first, second, "the same box, the same image");
    let image = committed(&env, "localhost/same:1", &base);
    assert_eq!(image.config["created"], "2023-11-14T22:13:20Z");
    for (_, entry) in entries(&image.layer_tar) {
        assert!(entry.kind != 'f' || !entry.data.is_empty() || entry.mode == 0);
    }
    // Without SOURCE_DATE_EPOCH the layer is still the same bytes (only `created` moves).
    commit(&env, &["b", "myteam/same:3"]);
    commit(&env, &["b", "myteam/same:4"]);
    let third = committed(&env, "docker.io/myteam/same:3", &base);
    let fourth = committed(&env, "docker.io/myteam/same:4", &base);
    assert_eq!(third.manifest.layers(), fourth.manifest.layers());

    // A box of the tagged image; then the tag moves to a new commit.
    ok(
        &env,
        &["create", "--no-entry", "--image", "localhost/same:1", "old"],
    );
    ok(
        &env,
        &[
            "run",
            "--user",
            "root",
            "b",
            "--",
            "sh",
            "-c",
            "echo two > /opt/two",
        ],
    );
    ok(&env, &["stop", "b"]);
    let moved = commit(&env, &["b", "localhost/same:1"]);
    assert_ne!(moved, first);
    let images = ok(&env, &["images", "--json"]).json();
    let tagged = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == "localhost/same:1")
        .unwrap_or_else(|| panic!("no localhost/same:1 in {images}"));
    assert!(tagged.to_string().contains(hex_of(&moved)), "{tagged}");
    // The old manifest stays while a box uses it, through a garbage collection.
    ok(&env, &["rmi", "127.0.0.1:5999/same:2"]);
    assert!(
        env.store()
            .join("blobs/sha256")
            .join(hex_of(&first))
            .is_file()
    );
    ok(&env, &["run", "old", "--", "cat", "/opt/one"]).stdout_has("one");
    let out = ok(
        &env,
        &[
            "run",
            "old",
            "--",
            "sh",
            "-c",
            "test -e /opt/two || echo absent",
        ],
    );
    assert_eq!(out.stdout, "absent\n");

    // References that cannot be a commit's.
    env.run(&["commit", "b", "Not/Valid"])
        .box_error(&["invalid image reference"]);
    env.run(&[
        "commit",
        "b",
        &format!("localhost/x@sha256:{}", "0".repeat(64)),
    ])
    .box_error(&["names a digest"]);
    env.run(&["commit", "nosuch", "localhost/x"])
        .box_error(&["no box named `nosuch`"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_box_without_subordinate_ids_commits_with_root_s_files() {
    let env = TestEnv::new("commit-nosub", User::BoxNoSub);
    let _boxes = Boxes(&env);
    let base = box_from(&env, Fixture::Busybox, "b");
    // Everything is the user's in such a box; box's sudo stand-in is in it.
    ok(
        &env,
        &[
            "run",
            "b",
            "--",
            "sh",
            "-c",
            "mkdir -p /opt/x && echo hi > /opt/x/f",
        ],
    );
    ok(
        &env,
        &["run", "b", "--", "sudo", "sh", "-c", "echo root > /opt/x/r"],
    );
    let upper = env.store().join("containers/b/upper");
    assert!(
        upper.join("usr/local/bin/sudo").is_file(),
        "box's sudo stand-in"
    );
    assert_eq!(
        std::fs::metadata(upper.join("opt/x/f")).unwrap().uid(),
        env.uid
    );
    ok(&env, &["stop", "b"]);
    commit(&env, &["b", "localhost/nosub", "--compression", "zstd"]);
    let image = committed(&env, "localhost/nosub:latest", &base);
    assert_eq!(
        image
            .manifest
            .layers()
            .last()
            .unwrap()
            .media_type()
            .to_string(),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let layer = entries(&image.layer_tar);
    let paths: Vec<&str> = layer.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["opt/", "opt/x/", "opt/x/f", "opt/x/r"]);
    for (path, entry) in &layer {
        assert_eq!(entry.owner, (0, 0), "{path} is root's");
    }
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            "localhost/nosub",
            "again",
        ],
    );
    ok(&env, &["run", "again", "--", "cat", "/opt/x/f", "/opt/x/r"]).stdout_has("hi\nroot\n");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_box_of_a_committed_provisioned_box_needs_no_provisioning_run() {
    let env = TestEnv::new("commit-provisioned", User::BoxTest);
    let _boxes = Boxes(&env);
    env.set_provisioning(true);
    let path = "/sbin/apk";
    let base = Fixture::StandIn(path)
        .push(Registry::plain())
        .image
        .reference;
    ok(&env, &["pull", &base]);
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &base,
            "--additional-packages",
            "figlet",
            "p",
        ],
    )
    .stderr_has("box p is provisioned");
    let calls = |name: &str| ok(&env, &["run", name, "--", "cat", CALLS]).stdout;
    let made = calls("p");
    assert!(made.contains("figlet"), "{made}");
    ok(&env, &["stop", "p"]);
    commit(&env, &["p", "localhost/provisioned:1"]);
    let image = committed(&env, "localhost/provisioned:1", &base);
    let labels = &image.config["config"]["Labels"];
    assert_eq!(labels["box.provisioned"], "true");
    assert_eq!(labels["box.additional-packages"], "figlet");
    // No apk cache, nothing of box's: the stand-in's record of its calls is the change.
    let layer = entries(&image.layer_tar);
    assert!(layer.iter().any(|(p, _)| p == "pm-calls"), "{layer:?}");

    let created = ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            "localhost/provisioned:1",
            "--additional-packages",
            "figlet",
            "q",
        ],
    );
    assert!(!created.stderr.contains("provisioning box"), "{created}");
    assert_eq!(calls("q"), made, "the package manager was not run again");
    let listed = list(&env);
    let q = listed.iter().find(|b| b["name"] == "q").unwrap();
    assert_eq!(q["provisioned"], true, "{q}");
    assert!(!env.store().join("containers/q/provision.log").exists());
    // Asking for what the image was not made with runs provisioning for it.
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            "localhost/provisioned:1",
            "--additional-packages",
            "bc",
            "r",
        ],
    )
    .stderr_has("box r is provisioned");
    assert!(calls("r").contains(" bc"), "{}", calls("r"));
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_full_disk_during_commit_leaves_the_store_as_it_was() {
    // 10 MB that do not compress: the blob fits on the first disk but not its unpacked
    // layer; on the second not even the blob.
    for (size, what) in [("30m", "unpack"), ("20m", "pack")] {
        let mut env = TestEnv::new(&format!("commit-full-{what}"), User::BoxTest);
        let small = env.dir.join("small");
        env.mount_tmpfs(&small, size);
        env.set_env("XDG_DATA_HOME", &small);
        let _boxes = Boxes(&env);
        let base = box_from(&env, Fixture::Busybox, "b");
        as_root(
            &env,
            "b",
            "mkdir /opt && head -c 10000000 /dev/urandom > /opt/noise",
        );
        ok(&env, &["stop", "b"]);
        let before = env.store_state();
        let out = env.run(&["commit", "b", "localhost/full"]);
        out.box_error(&["no space left on device", "commit again"]);
        env.assert_store_unchanged(&before, &out);
        assert!(
            !record_path(&env, "localhost/full:latest").exists(),
            "{what}"
        );
        // The box and its image are as they were.
        ok(&env, &["run", "b", "--", "ls", "/opt/noise"]);
        let _ = base;
    }
}
