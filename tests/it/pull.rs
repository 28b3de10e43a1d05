//! `box pull`, `box images` and `box rmi` end to end: a real registry on loopback (with a
//! fault proxy where a failure must be provoked), box run as the unprivileged test users,
//! and the store inspected from the host.
//!
//! Every failure test checks three things: box's error format (status 125, `box: error:`
//! and a `hint:`), that the error names what failed (reference, layer or entry), and that
//! the store is exactly as it was before, an image pulled earlier included.
//!
//! Decisions these tests pin down (see the report of the harness branch):
//! - an absolute entry path (`/abs-file`) or hard-link target, `..` components, a path
//!   through a symlink, a hardlink or whiteout that leaves the layer fail the pull, naming
//!   the entry; `./etc` paths are fine, and symlink targets may be absolute (they resolve
//!   inside the box);
//! - device nodes are skipped with a warning naming them; the pull succeeds;
//! - with subordinate ids, layer files carry the mapped owners (0 -> 100000, 33 -> 100033);
//!   without, every file is the user's.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::common::boxes::run_on_terminal_sized;
use crate::common::fixtures::{self, BUSYBOX_APPLETS};
use crate::common::oci::{DEFAULT_MTIME, Layer, push_index};
use crate::common::proxy::FaultKind;
use crate::common::registry::{AUTH_PASSWORD, AUTH_USER, closed_port};
use crate::common::screen::render;
use crate::common::token::{SERVICE, TokenRequest};
use crate::common::{
    Compression, Entry, Fault, FaultProxy, Fixture, ImageBuilder, ManifestFormat, Outcome,
    Platform, PushedImage, Registry, StoreState, TestEnv, User, hex_of, host_platform,
    other_platform,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// `box pull` that must succeed, quietly (no terminal: no animation).
#[track_caller]
fn pull(env: &TestEnv, reference: &str) -> Outcome {
    let out = env.run(&["pull", reference]);
    out.success().no_animation();
    assert!(
        !out.stderr.contains("box: error"),
        "a successful pull printed an error:\n{out}"
    );
    out
}

/// `box images --json` as an array.
#[track_caller]
fn images(env: &TestEnv) -> Vec<Value> {
    let out = env.run(&["images", "--json"]);
    out.success().no_animation();
    match out.json() {
        Value::Array(items) => items,
        other => panic!("`box images --json` is not an array: {other}\n{out}"),
    }
}

/// The `images --json` entry for `reference`.
#[track_caller]
fn image_entry(env: &TestEnv, reference: &str) -> Value {
    let all = images(env);
    all.iter()
        .find(|i| i["reference"] == reference)
        .cloned()
        .unwrap_or_else(|| panic!("no image {reference} in `box images --json`: {all:#?}"))
}

/// A fresh environment for `user` with the busybox fixture already pulled, so that every
/// failure test also checks that an image pulled before is not harmed.
fn env_with_busybox(name: &str, user: User) -> (TestEnv, PushedImage) {
    let env = TestEnv::new(name, user);
    let busybox = Fixture::Busybox.push(Registry::plain()).image;
    pull(&env, &busybox.reference);
    (env, busybox)
}

/// The first 12 hex digits of a digest: what a message naming a layer shows at least.
fn short(digest: &str) -> &str {
    &hex_of(digest)[..12]
}

/// Assert the error names one of the layer's digests (blob digest or diff_id).
#[track_caller]
fn names_layer(out: &Outcome, layer: &(String, String)) {
    let (digest, diff_id) = layer;
    assert!(
        out.stderr.contains(short(digest)) || out.stderr.contains(short(diff_id)),
        "expected the error to name layer {digest} (diff_id {diff_id}):\n{out}"
    );
}

/// The failed-pull contract: box's error format, the needles, nothing changed.
#[track_caller]
fn failed_pull(env: &TestEnv, args: &[&str], needles: &[&str]) -> Outcome {
    let before = env.store_state();
    let records = env.image_records();
    let out = env.run(args);
    out.box_error(needles).no_animation();
    env.assert_store_unchanged(&before, &out);
    assert_eq!(records, env.image_records(), "{out}");
    out
}

/// The host uid (or gid) an id inside the image has on disk after box unpacked it.
fn host_id(env: &TestEnv, inside: u32) -> u32 {
    match env.user {
        User::BoxTest => {
            // keep-id: the user is themself; 0..U-1 and U+1..65535 on the subordinate
            // range (boxtest: 100000:65536).
            let me = env.uid;
            match inside {
                i if i < me => 100_000 + i,
                i if i == me => me,
                i => 100_000 + i - 1,
            }
        }
        User::BoxNoSub => env.uid,
        User::Root => inside,
    }
}

fn lstat(path: &Path) -> std::fs::Metadata {
    path.symlink_metadata()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[track_caller]
fn assert_owner(env: &TestEnv, path: &Path, uid: u32, gid: u32) {
    let meta = lstat(path);
    assert_eq!(
        (meta.uid(), meta.gid()),
        (host_id(env, uid), host_id(env, gid)),
        "owner of {} (image says {uid}:{gid}, user {:?})",
        path.display(),
        env.user
    );
}

/// An extended attribute, read from the host without following symlinks.
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(len) => {
            buf.truncate(len);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// An OCI whiteout on disk: a character device 0:0 (overlayfs's whiteout).
#[track_caller]
fn assert_whiteout(path: &Path) {
    let meta = lstat(path);
    assert!(
        meta.file_type().is_char_device() && meta.rdev() == 0,
        "{} should be an overlay whiteout (char device 0:0), is {:?} rdev {}",
        path.display(),
        meta.file_type(),
        meta.rdev()
    );
}

/// A unique repository per test, so tests never see each other's tags.
fn repo(test: &str) -> String {
    format!("tests/{}", test.replace('_', "-"))
}

/// Everything in the test's directory except the runtime dir (locks, holder state): what
/// must not change when a hostile layer is refused.
fn world(env: &TestEnv) -> StoreState {
    StoreState::capture_except(&env.dir, &["run"])
}

/// A sentinel directory next to the store, which escaping entries aim at.
fn sentinel(env: &TestEnv) -> std::path::PathBuf {
    let dir = env.data_home().join("sentinel");
    env.write_user_file(&dir.join("keep"), "untouched\n", 0o644);
    dir
}

// ---------------------------------------------------------------------------------------
// Successful pulls and what lands on disk
// ---------------------------------------------------------------------------------------

fn check_busybox_layer(env: &TestEnv, busybox: &PushedImage) {
    let layer = env.layer_dir(&busybox.layers[0].1);
    let binary = layer.join("bin/busybox");
    assert_eq!(
        std::fs::read(&binary).unwrap(),
        std::fs::read("/bin/busybox").unwrap(),
        "bin/busybox content"
    );
    let meta = lstat(&binary);
    assert_eq!(meta.mode() & 0o7777, 0o755);
    assert_eq!(meta.mtime(), DEFAULT_MTIME as i64, "mtime of bin/busybox");
    assert_owner(env, &binary, 0, 0);
    // The hardlink shares the inode.
    assert_eq!(
        lstat(&layer.join("bin/true")).ino(),
        meta.ino(),
        "bin/true is a hardlink"
    );
    for applet in BUSYBOX_APPLETS {
        let link = layer.join("bin").join(applet);
        assert_eq!(
            std::fs::read_link(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display())),
            Path::new("busybox")
        );
        assert_owner(env, &link, 0, 0);
    }
    assert_eq!(
        std::fs::read_link(layer.join("usr/bin/env")).unwrap(),
        Path::new("/bin/busybox"),
        "absolute symlink targets are kept as they are"
    );
    assert_eq!(lstat(&layer.join("tmp")).mode() & 0o7777, 0o1777);
    assert_eq!(lstat(&layer.join("root")).mode() & 0o7777, 0o700);
    assert!(
        std::fs::read_to_string(layer.join("etc/os-release"))
            .unwrap()
            .contains("ID=busybox")
    );
}

fn pull_busybox_and_multilayer_as(name: &str, user: User) {
    let registry = Registry::plain();
    let busybox = Fixture::Busybox.push(registry).image;
    let multi = Fixture::Multilayer.push(registry).image;
    let env = TestEnv::new(name, user);

    let out = pull(&env, &busybox.reference);
    out.stderr_has(": 1 of 1 layer, ").stderr_has(", 1 layer, ");
    check_busybox_layer(&env, &busybox);
    assert_eq!(
        env.layer_dirs(),
        vec![hex_of(&busybox.layers[0].1).to_owned()]
    );

    let out = pull(&env, &multi.reference);
    out.stderr_has(": 2 of 3 layers, ")
        .stderr_has(", 3 layers, ");
    let l2 = env.layer_dir(&multi.layers[1].1);
    let l3 = env.layer_dir(&multi.layers[2].1);
    assert_eq!(env.layer_dirs().len(), 3, "{:?}", env.layer_dirs());

    // Owners: mapped through the subordinate range, or all the user's.
    assert_owner(&env, &l2.join("data/www"), 33, 33);
    assert_owner(&env, &l2.join("data/www/index.html"), 33, 33);
    assert_owner(&env, &l2.join("data/user1234"), 1234, 1234);
    assert_owner(&env, &l2.join("data/suid"), 0, 0);
    if user.has_subids() {
        assert_eq!(lstat(&l2.join("data/www/index.html")).uid(), 100_033);
        assert_eq!(lstat(&l2.join("data/suid")).uid(), 100_000);
    }
    // The setuid bit survives (chown clears it, so it must be set after).
    assert_eq!(
        lstat(&l2.join("data/suid")).mode() & 0o7777,
        0o4755,
        "setuid bit"
    );
    // Hardlinks share an inode; mtimes are the image's.
    let a = lstat(&l2.join("data/link-a"));
    let b = lstat(&l2.join("data/link-b"));
    assert_eq!(a.ino(), b.ino(), "data/link-b is a hardlink of data/link-a");
    assert_eq!(a.mtime(), 1_234_567_890, "mtime of data/link-a");
    assert_eq!(
        lstat(&l2.join("data/www")).mtime(),
        DEFAULT_MTIME as i64,
        "directory mtimes are restored after their content is written"
    );
    assert_eq!(
        xattr(&l2.join("data/xattr"), "user.box-test").as_deref(),
        Some(&b"hello"[..]),
        "the PAX SCHILY.xattr.user.box-test attribute"
    );
    assert!(lstat(&l2.join("data/fifo")).file_type().is_fifo());
    assert!(lstat(&l2.join("data/becomes-file")).is_dir());
    assert!(lstat(&l2.join("data/becomes-dir")).is_file());
    assert!(l2.join("data/opaque/old").exists());

    // Layer 3: whiteouts as overlay whiteouts, replacements, the opaque directory.
    assert_whiteout(&l3.join("etc/deleteme"));
    assert_whiteout(&l3.join("bin/ls"));
    assert!(
        !l3.join("etc/.wh.deleteme").exists(),
        "the OCI marker itself is not kept"
    );
    assert!(lstat(&l3.join("data/becomes-file")).is_file());
    assert!(lstat(&l3.join("data/becomes-dir")).is_dir());
    assert!(l3.join("data/becomes-dir/inside").is_file());
    assert_eq!(
        xattr(&l3.join("data/opaque"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..]),
        "data/opaque is marked opaque for overlayfs (userxattr)"
    );
    assert!(
        !l3.join("data/opaque/.wh..wh..opq").exists(),
        "the opaque marker file itself is not kept"
    );
    assert!(l3.join("data/opaque/new").is_file());

    // The shared lower layer is the same directory, untouched.
    check_busybox_layer(&env, &busybox);
    let all = images(&env);
    assert_eq!(all.len(), 2, "{all:#?}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn pull_as_user_with_subordinate_ids() {
    pull_busybox_and_multilayer_as("pull_subids", User::BoxTest);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn pull_as_user_without_subordinate_ids() {
    pull_busybox_and_multilayer_as("pull_nosubids", User::BoxNoSub);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn pull_zstd_layers() {
    let image = Fixture::BusyboxZstd.push(Registry::plain()).image;
    let env = TestEnv::new("pull_zstd", User::BoxTest);
    pull(&env, &image.reference);
    check_busybox_layer(&env, &image);
    let entry = image_entry(&env, &image.reference);
    assert_eq!(entry["digest"], image.digest.as_str());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn pull_by_digest() {
    let registry = Registry::plain();
    let busybox = Fixture::Busybox.push(registry).image;
    let env = TestEnv::new("pull_by_digest", User::BoxNoSub);
    let reference = format!("{}/{}@{}", registry.host, busybox.repo, busybox.digest);
    pull(&env, &reference);
    check_busybox_layer(&env, &busybox);
    let entry = image_entry(&env, &reference);
    assert_eq!(entry["digest"], busybox.digest.as_str());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn pull_uncompressed_layers() {
    let registry = Registry::plain();
    let image = ImageBuilder::new()
        .format(ManifestFormat::Oci)
        .entries(
            &[
                Entry::dir("etc"),
                Entry::file("etc/plain", "not compressed\n").mode(0o600),
            ],
            Compression::None,
        )
        .push(registry, &repo("uncompressed"), "v1");
    let env = TestEnv::new("pull_uncompressed", User::BoxNoSub);
    pull(&env, &image.reference);
    let file = env.layer_dir(&image.layers[0].1).join("etc/plain");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not compressed\n");
    assert_eq!(lstat(&file).mode() & 0o777, 0o600);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn multi_platform_index_picks_the_host_platform() {
    let pushed = Fixture::Multiplatform.push(Registry::plain());
    let env = TestEnv::new("pull_platform_host", User::BoxTest);
    pull(&env, &pushed.image.reference);
    let host = &pushed.platforms[0];
    let file = env.layer_dir(&host.layers[0].1).join("etc/platform");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        host_platform().to_string()
    );
    assert!(!env.layer_dir(&pushed.platforms[1].layers[0].1).exists());
    let entry = image_entry(&env, &pushed.image.reference);
    assert_eq!(entry["platform"], host_platform().to_string().as_str());
    assert_eq!(
        entry["digest"],
        host.digest.as_str(),
        "the platform manifest's digest"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn platform_flag_picks_another_platform() {
    let pushed = Fixture::Multiplatform.push(Registry::plain());
    let env = TestEnv::new("pull_platform_other", User::BoxTest);
    let other = other_platform().to_string();
    let out = env.run(&["pull", &pushed.image.reference, "--platform", &other]);
    out.success().no_animation();
    let image = &pushed.platforms[1];
    let file = env.layer_dir(&image.layers[0].1).join("etc/platform");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), other);
    assert!(!env.layer_dir(&pushed.platforms[0].layers[0].1).exists());
    let entry = image_entry(&env, &pushed.image.reference);
    assert_eq!(entry["platform"], other.as_str());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_platform_missing_from_the_index_is_a_clear_error() {
    let pushed = Fixture::Multiplatform.push(Registry::plain());
    let (env, _) = env_with_busybox("pull_platform_missing", User::BoxTest);
    let out = failed_pull(
        &env,
        &["pull", &pushed.image.reference, "--platform", "linux/s390x"],
        &["linux/s390x", "fixtures/multiplatform"],
    );
    // Saying what is available is what makes the error actionable.
    out.stderr_has(&host_platform().to_string());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_single_platform_image_for_another_platform_is_refused() {
    let (env, _) = env_with_busybox("pull_platform_single", User::BoxTest);
    let host = host_platform().to_string();
    // Another OS: nothing on this machine runs it.
    let windows = fixtures::platform_image(&Platform::new("windows", "arm64", None)).push(
        Registry::plain(),
        "tests/windows-arm64",
        "latest",
    );
    failed_pull(
        &env,
        &["pull", &windows.reference],
        &["tests/windows-arm64", "windows/arm64", &host, "Linux"],
    );
    // Another architecture: refused, unless asked for by name (an emulator may run it).
    let other = other_platform();
    let foreign =
        fixtures::platform_image(&other).push(Registry::plain(), "tests/other-arch", "latest");
    failed_pull(
        &env,
        &["pull", &foreign.reference],
        &[&other.to_string(), &host, "--platform"],
    );
    let out = env.run(&["pull", &foreign.reference, "--platform", &other.to_string()]);
    out.success();
    assert_eq!(images(&env).len(), 2, "{out}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_malformed_platform_is_a_clear_error() {
    let pushed = Fixture::Multiplatform.push(Registry::plain());
    let (env, _) = env_with_busybox("pull_platform_malformed", User::BoxTest);
    failed_pull(
        &env,
        &["pull", &pushed.image.reference, "--platform", "amd64"],
        &["amd64"],
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_second_image_downloads_only_its_new_layers() {
    let registry = Registry::plain();
    let busybox = Fixture::Busybox.push(registry).image;
    let multi = Fixture::Multilayer.push(registry).image;
    let proxy = FaultProxy::start(&registry.host);
    let env = TestEnv::new("pull_shared_layers", User::BoxTest);

    pull(&env, &proxy.reference(&busybox.repo, "latest"));
    assert_eq!(proxy.blob_gets(&busybox.layers[0].0), 1, "{}", proxy.log());
    let shared = env.layer_dir(&busybox.layers[0].1).join("bin/busybox");
    let inode = lstat(&shared).ino();

    proxy.reset_counts();
    pull(&env, &proxy.reference(&multi.repo, "latest"));
    assert_eq!(
        proxy.blob_gets(&multi.layers[0].0),
        0,
        "the shared layer was downloaded again:\n{}",
        proxy.log()
    );
    for layer in &multi.layers[1..] {
        assert_eq!(proxy.blob_gets(&layer.0), 1, "{}", proxy.log());
    }
    assert_eq!(
        lstat(&shared).ino(),
        inode,
        "the shared layer was unpacked again"
    );
    assert_eq!(env.layer_dirs().len(), 3);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_up_to_date_pull_asks_for_the_manifest_only() {
    let registry = Registry::plain();
    let multi = Fixture::Multilayer.push(registry).image;
    let proxy = FaultProxy::start(&registry.host);
    let env = TestEnv::new("pull_up_to_date", User::BoxNoSub);
    let reference = proxy.reference(&multi.repo, "latest");
    pull(&env, &reference);
    let layers = env.layer_dirs();
    let state = StoreState::capture(&env.store().join("layers"));

    proxy.reset_counts();
    pull(&env, &reference);
    assert_eq!(proxy.manifest_requests(), 1, "{}", proxy.log());
    assert_eq!(proxy.all_blob_gets(), 0, "{}", proxy.log());
    assert_eq!(env.layer_dirs(), layers);
    assert!(
        state
            .diff(&StoreState::capture(&env.store().join("layers")))
            .is_empty()
    );
    assert_eq!(images(&env).len(), 1);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn images_lists_what_was_pulled() {
    let registry = Registry::plain();
    let busybox = Fixture::Busybox.push(registry).image;
    let multi = Fixture::Multilayer.push(registry).image;
    let env = TestEnv::new("images_list", User::BoxTest);

    let empty = env.run(&["images", "--json"]);
    empty.success();
    assert_eq!(empty.json(), Value::Array(vec![]), "{empty}");

    pull(&env, &busybox.reference);
    pull(&env, &multi.reference);
    let all = images(&env);
    assert_eq!(all.len(), 2, "{all:#?}");
    let busybox_size = std::fs::metadata("/bin/busybox").unwrap().len();
    for (image, layers) in [(&busybox, 1), (&multi, 3)] {
        let entry = image_entry(&env, &image.reference);
        assert_eq!(
            entry["reference"],
            format!("{}/{}:latest", registry.host, image.repo).as_str()
        );
        assert_eq!(entry["digest"], image.digest.as_str(), "manifest digest");
        assert_eq!(entry["layers"], layers, "{entry}");
        assert_eq!(entry["platform"], host_platform().to_string().as_str());
        assert!(
            entry["created"]
                .as_str()
                .is_some_and(|c| c.starts_with("2024-01-02")),
            "created: {entry}"
        );
        let size = entry["size"]
            .as_u64()
            .unwrap_or_else(|| panic!("size: {entry}"));
        assert!(
            size >= busybox_size && size <= image.tar_size * 2,
            "size {size} (unpacked bytes) for {entry}"
        );
    }

    let table = env.run(&["images"]);
    table.success().no_animation();
    let header = table.stdout.lines().next().unwrap_or_default();
    for column in ["REFERENCE", "DIGEST", "SIZE", "CREATED"] {
        assert!(header.contains(column), "column {column}:\n{table}");
    }
    table.stdout_has(&busybox.reference);
    table.stdout_has(&multi.reference);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn rmi_keeps_shared_layers_and_removes_the_others() {
    let registry = Registry::plain();
    let busybox = Fixture::Busybox.push(registry).image;
    let multi = Fixture::Multilayer.push(registry).image;
    for user in [User::BoxTest, User::BoxNoSub] {
        let env = TestEnv::new("rmi", user);
        pull(&env, &busybox.reference);
        pull(&env, &multi.reference);
        let busybox_layer = StoreState::capture(&env.layer_dir(&busybox.layers[0].1));

        env.run(&["rmi", &multi.reference]).success().no_animation();
        assert_eq!(
            env.layer_dirs(),
            vec![hex_of(&busybox.layers[0].1).to_owned()],
            "only the shared layer stays"
        );
        assert!(
            busybox_layer
                .diff(&StoreState::capture(&env.layer_dir(&busybox.layers[0].1)))
                .is_empty()
        );
        let all = images(&env);
        assert_eq!(all.len(), 1, "{all:#?}");
        assert_eq!(all[0]["reference"], busybox.reference.as_str());

        // Removing an image that is not there names it, and changes nothing.
        failed_pull(&env, &["rmi", &multi.reference], &["fixtures/multilayer"]);

        env.run(&["rmi", &busybox.reference]).success();
        assert!(env.layer_dirs().is_empty(), "{:?}", env.layer_dirs());
        let records = StoreState::capture(&env.store().join("layer-info"));
        assert!(records.0.is_empty(), "layer records left: {records:?}");
        assert!(images(&env).is_empty());
        assert!(env.image_records().is_empty());
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_layer_already_in_the_store_keeps_its_size_in_a_new_record() {
    let busybox = Fixture::Busybox.push(Registry::plain()).image;
    let env = TestEnv::new("pull_known_layer_size", User::BoxTest);
    let _boxes = crate::common::boxes::Boxes(&env);
    pull(&env, &busybox.reference);
    assert_eq!(
        image_entry(&env, &busybox.reference)["size"].as_u64(),
        Some(busybox.tar_size)
    );
    // The box keeps the layer when the image record goes; no record lists it any more.
    env.run(&[
        "create",
        "--no-entry",
        "--image",
        &busybox.reference,
        "keeper",
    ])
    .success();
    env.run(&["rmi", "--force", &busybox.reference]).success();
    assert!(env.image_records().is_empty());
    assert!(env.layer_dir(&busybox.layers[0].1).is_dir());

    pull(&env, &busybox.reference);
    let entry = image_entry(&env, &busybox.reference);
    assert_eq!(
        entry["size"].as_u64(),
        Some(busybox.tar_size),
        "the size comes from the layer's own record: {entry}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn rmi_takes_digests_and_all_and_refuses_images_in_use() {
    let registry = Registry::plain();
    let busybox = Fixture::Busybox.push(registry).image;
    let multi = Fixture::Multilayer.push(registry).image;
    let env = TestEnv::new("rmi_digests", User::BoxTest);
    let _boxes = crate::common::boxes::Boxes(&env);
    pull(&env, &busybox.reference);
    pull(&env, &multi.reference);

    // The short digest `box images` shows.
    let short_digest = &hex_of(&multi.digest)[..12];
    env.run(&["images"]).success().stdout_has(short_digest);
    let out = env.run(&["rmi", short_digest]);
    out.success().no_animation();
    out.stderr_has(&format!("removed {}", multi.reference));
    assert_eq!(images(&env).len(), 1);
    assert_eq!(env.layer_dirs().len(), 1, "its own layers went");
    // The full digest.
    pull(&env, &multi.reference);
    env.run(&["rmi", &multi.digest]).success();
    assert_eq!(images(&env).len(), 1);
    // A digest nothing has.
    failed_pull(&env, &["rmi", &"0".repeat(12)], &["no image with digest"]);

    // --all refuses, removing nothing, while a box uses one of the images...
    pull(&env, &multi.reference);
    env.run(&[
        "create",
        "--no-entry",
        "--image",
        &busybox.reference,
        "user",
    ])
    .success();
    let out = failed_pull(&env, &["rmi", "--all"], &[&busybox.reference, "user"]);
    out.stderr_has("--force");
    assert_eq!(images(&env).len(), 2);
    // ...and with --force removes every record, keeping the layer the box uses.
    env.run(&["rmi", "--all", "--force"])
        .success()
        .no_animation();
    assert!(images(&env).is_empty());
    assert_eq!(
        env.layer_dirs(),
        vec![hex_of(&busybox.layers[0].1).to_owned()]
    );
    env.run(&["rmi", "--all"]).success();
    // Names and --all do not mix; at least one of them is needed.
    env.run(&["rmi", "--all", &busybox.reference]).status(2);
    env.run(&["rmi"]).status(2);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn removing_the_last_box_of_an_image_removed_with_force_collects_its_layers() {
    let registry = Registry::plain();
    let busybox = Fixture::Busybox.push(registry).image;
    let multi = Fixture::Multilayer.push(registry).image;
    for user in [User::BoxTest, User::BoxNoSub] {
        let env = TestEnv::new("gc_after_rm", user);
        let _boxes = crate::common::boxes::Boxes(&env);
        pull(&env, &busybox.reference);
        pull(&env, &multi.reference);
        env.run(&["create", "--no-entry", "--image", &multi.reference, "user"])
            .success();
        env.run(&["rmi", "--force", &multi.reference]).success();
        assert_eq!(env.layer_dirs().len(), 3, "the box still uses them");

        let out = env.run(&["rm", "--yes", "user"]);
        out.success().no_animation();
        out.stderr_has("removed 2 unused layer(s)");
        assert_eq!(
            env.layer_dirs(),
            vec![hex_of(&busybox.layers[0].1).to_owned()],
            "the layers only the box used went with it"
        );
        let records = sorted(&env.store().join("layer-info"));
        assert_eq!(
            records,
            vec![format!("{}.json", hex_of(&busybox.layers[0].1))],
            "layer records go with their layers"
        );
        let blobs = sorted(&env.store().join("blobs/sha256"));
        assert!(
            !blobs.iter().any(|b| b == hex_of(&multi.digest)),
            "the manifest of the removed image stays: {blobs:?}"
        );
        assert_eq!(images(&env).len(), 1);
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn garbage_collection_removes_the_debris_of_dead_processes_only() {
    let busybox = Fixture::Busybox.push(Registry::plain()).image;
    let multi = Fixture::Multilayer.push(Registry::plain()).image;
    let env = TestEnv::new("gc_debris", User::BoxTest);
    pull(&env, &busybox.reference);
    pull(&env, &multi.reference);
    let store = env.store();
    // A pid no process has (pid_max is at most 2^22), and one that is alive (ours).
    let dead = u32::MAX - 1;
    let live = std::process::id();
    let debris = [
        store.join(format!("images/.tmp-{dead}-Xa1b2c")),
        store.join(format!("blobs/sha256/.tmp-{dead}-Xd3e4f")),
        store.join(format!("tmp/blob-abcdef123456-{dead}-0")),
        store.join(format!("tmp/layer-abcdef123456-{dead}-1/etc/passwd")),
        store.join("locks/layer-0123456789abcdef"),
    ];
    let kept = [
        store.join(format!("images/.tmp-{live}-Xg5h6i")),
        store.join(format!("tmp/blob-abcdef123456-{live}-2")),
    ];
    for file in debris.iter().chain(&kept) {
        env.write_user_file(file, "debris\n", 0o600);
    }
    env.run(&["rmi", &multi.reference]).success().no_animation();
    for file in &debris {
        assert!(!file.exists(), "{} was not collected", file.display());
    }
    assert!(
        !store
            .join(format!("tmp/layer-abcdef123456-{dead}-1"))
            .exists()
    );
    for file in &kept {
        assert!(
            file.exists(),
            "{} belongs to a live process",
            file.display()
        );
    }
    check_busybox_layer(&env, &busybox);
    assert_eq!(images(&env).len(), 1);
}

/// The names in `dir`, sorted.
fn sorted(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_debian_image_pulls_end_to_end() {
    let debian = Fixture::Debian.push(Registry::plain()).image;
    let env = TestEnv::new("pull_debian", User::BoxTest);
    let out = env.run(&["pull", &debian.reference]);
    out.success().no_animation();
    let layer = env.layer_dir(&debian.layers[0].1);
    assert!(
        std::fs::read_to_string(layer.join("etc/debian_version"))
            .unwrap()
            .starts_with("12")
    );
    let sudo = layer.join("usr/bin/sudo");
    assert_eq!(lstat(&sudo).mode() & 0o7777, 0o4755, "sudo is setuid");
    assert_owner(&env, &sudo, 0, 0);
    assert!(layer.join("usr/bin/xterm").is_file());
    let entry = image_entry(&env, &debian.reference);
    assert_eq!(entry["digest"], debian.digest.as_str());
    assert!(entry["size"].as_u64().unwrap_or(0) > 50_000_000, "{entry}");
}

// ---------------------------------------------------------------------------------------
// Bad references and unreachable or unwilling registries
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn malformed_references_are_refused() {
    let (env, _) = env_with_busybox("pull_malformed", User::BoxTest);
    for reference in [
        "Upper/Case",
        "bad::tag",
        "a//b",
        "name:",
        "name@sha256:abc",
        "-leading-dash",
        "name:tag with space",
    ] {
        failed_pull(&env, &["pull", "--", reference], &[reference]);
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_unknown_host_is_a_clear_error() {
    let (env, _) = env_with_busybox("pull_unknown_host", User::BoxTest);
    failed_pull(
        &env,
        &["pull", "no-such-registry.invalid/library/busybox:latest"],
        &["no-such-registry.invalid"],
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn connection_refused_is_a_clear_error() {
    let (env, _) = env_with_busybox("pull_refused", User::BoxNoSub);
    let host = format!("127.0.0.1:{}", closed_port());
    let out = failed_pull(&env, &["pull", &format!("{host}/busybox:latest")], &[&host]);
    out.stderr_has("refused");
}

/// ~/.docker/config.json-style content with credentials for `host`.
fn auth_json(host: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#)
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_authenticated_registry_without_credentials_is_refused() {
    let registry = Registry::authed();
    let image = Fixture::Busybox.push(registry).image;
    let (env, _) = env_with_busybox("pull_auth_none", User::BoxTest);
    let out = failed_pull(&env, &["pull", &image.reference], &[&registry.host]);
    let lower = out.stderr.to_lowercase();
    assert!(
        [
            "401",
            "unauthorized",
            "authentication",
            "credentials",
            "login"
        ]
        .iter()
        .any(|w| lower.contains(w)),
        "the error should say authentication failed:\n{out}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn wrong_credentials_are_refused() {
    let registry = Registry::authed();
    let image = Fixture::Busybox.push(registry).image;
    let (env, _) = env_with_busybox("pull_auth_wrong", User::BoxTest);
    env.write_user_file(
        &env.home.join(".docker/config.json"),
        auth_json(&registry.host, AUTH_USER, "wrong-password"),
        0o600,
    );
    let out = failed_pull(&env, &["pull", &image.reference], &[&registry.host]);
    assert!(
        !out.stderr.contains("wrong-password"),
        "the password must never be printed:\n{out}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn credentials_from_docker_config_are_used() {
    let registry = Registry::authed();
    let image = Fixture::Busybox.push(registry).image;
    let env = TestEnv::new("pull_auth_docker", User::BoxTest);
    env.write_user_file(
        &env.home.join(".docker/config.json"),
        auth_json(&registry.host, AUTH_USER, AUTH_PASSWORD),
        0o600,
    );
    let out = pull(&env, &image.reference);
    assert!(!out.stderr.contains(AUTH_PASSWORD) && !out.stdout.contains(AUTH_PASSWORD));
    check_busybox_layer(&env, &image);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn credentials_from_containers_auth_json_are_used() {
    let registry = Registry::authed();
    let image = Fixture::Busybox.push(registry).image;
    let env = TestEnv::new("pull_auth_containers", User::BoxNoSub);
    env.write_user_file(
        &env.runtime_dir.join("containers/auth.json"),
        auth_json(&registry.host, AUTH_USER, AUTH_PASSWORD),
        0o600,
    );
    pull(&env, &image.reference);
    check_busybox_layer(&env, &image);
}

/// An address of this machine that is not loopback (for box, another machine), if it has
/// one: the source address of a route out (connecting a UDP socket sends nothing).
pub(crate) fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn credentials_do_not_follow_a_redirect_to_another_port() {
    // The authenticated registry sends blobs to a "CDN" on another port of the same
    // host (the open registry with the same blobs, behind a proxy that records what it
    // gets). curl treats another port as another origin since CVE-2022-27776: so does box.
    let registry = Registry::authed();
    let image = Fixture::Busybox.push(registry).image;
    Fixture::Busybox.push(Registry::plain());
    let cdn = FaultProxy::start(&Registry::plain().host);
    let front = FaultProxy::start(&registry.host);
    front.inject(Fault::redirect("/blobs/sha256:", &format!("http://{}", cdn.host)).method("GET"));
    let env = TestEnv::new("pull_redirect_credentials", User::BoxTest);
    env.write_user_file(
        &env.home.join(".docker/config.json"),
        auth_json(&front.host, AUTH_USER, AUTH_PASSWORD),
        0o600,
    );
    pull(&env, &front.reference(&image.repo, &image.tag));
    check_busybox_layer(&env, &image);
    assert!(
        cdn.blob_gets(&image.layers[0].0) >= 1,
        "the blob did not come from the CDN:\n{}",
        cdn.log()
    );
    assert!(
        cdn.seen().iter().all(|s| !s.authorization),
        "credentials reached another port:\n{}",
        cdn.log()
    );
    assert!(
        front.seen().iter().any(|s| s.authorization),
        "the registry itself got none:\n{}",
        front.log()
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_redirect_to_plain_http_on_another_machine_is_refused() {
    // Plain HTTP only to this machine: a registry on loopback that sends its blobs to
    // plain HTTP elsewhere (here another address of this machine, when it has one) is
    // not followed there.
    let image = Fixture::Multilayer.push(Registry::plain()).image;
    let cdn = FaultProxy::start_on("0.0.0.0", &Registry::plain().host);
    let elsewhere = match non_loopback_address() {
        Some(ip) => format!("http://{}", std::net::SocketAddr::new(ip, cdn.port())),
        None => "http://box-test.invalid".to_owned(),
    };
    let front = FaultProxy::start(&Registry::plain().host);
    front.inject(Fault::redirect("/blobs/sha256:", &elsewhere).method("GET"));
    let (env, _) = env_with_busybox("pull_redirect_plain", User::BoxTest);
    failed_pull(
        &env,
        &["pull", &front.reference(&image.repo, &image.tag)],
        &["redirected to plain HTTP", &elsewhere, "another machine"],
    );
    assert!(
        cdn.seen().is_empty(),
        "the blob was fetched over plain HTTP:\n{}",
        cdn.log()
    );
}

// Bearer tokens: the scheme of Docker Hub, ghcr and quay. The registry checks every token
// itself (signature, issuer, audience, expiry, granted scope).

/// The token requests for `repository`, with a readable dump for failure messages.
fn token_requests(repository: &str) -> Vec<TokenRequest> {
    Registry::token_auth()
        .token_service
        .expect("the token registry has a token service")
        .requests_for(repository)
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn anonymous_bearer_tokens_are_fetched_and_used() {
    let registry = Registry::token_auth();
    let repository = "library/bb-token-anonymous";
    let image = fixtures::busybox().push(registry, repository, "latest");
    let env = TestEnv::new("pull_token_anonymous", User::BoxTest);
    pull(&env, &image.reference);
    check_busybox_layer(&env, &image);
    let requests = token_requests(repository);
    // One token serves the manifest, the config and the layer.
    assert_eq!(requests.len(), 1, "token requests: {requests:#?}");
    let request = &requests[0];
    assert_eq!(request.service.as_deref(), Some(SERVICE), "{request:?}");
    assert_eq!(
        request.scopes,
        [format!("repository:{repository}:pull")],
        "box asks for pull access only"
    );
    assert_eq!(request.user, None, "no credentials were configured");
    assert_eq!(request.status, 200);
    // Up to date: a new process, one token, one manifest, nothing else changes.
    let before = env.store_state();
    let out = pull(&env, &image.reference);
    env.assert_store_unchanged(&before, &out);
    assert_eq!(token_requests(repository).len(), 2);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_private_repository_needs_credentials_at_the_token_service() {
    let registry = Registry::token_auth();
    let repository = "private/bb-token";
    let image = fixtures::busybox().push(registry, repository, "latest");
    // An image pulled before, which the failures must leave alone.
    let (env, _) = env_with_busybox("pull_token_private", User::BoxNoSub);

    failed_pull(
        &env,
        &["pull", &image.reference],
        &["requires authentication", repository, "docker login"],
    );
    let config = env.home.join(".docker/config.json");
    env.write_user_file(
        &config,
        auth_json(&registry.host, AUTH_USER, "wrong-password"),
        0o600,
    );
    let out = failed_pull(
        &env,
        &["pull", &image.reference],
        &["were refused", AUTH_USER, repository, "login"],
    );
    assert!(!out.stderr.contains("wrong-password"), "{out}");

    env.write_user_file(
        &config,
        auth_json(&registry.host, AUTH_USER, AUTH_PASSWORD),
        0o600,
    );
    pull(&env, &image.reference);
    check_busybox_layer(&env, &image);
    let last = token_requests(repository).pop().unwrap();
    assert_eq!(last.user.as_deref(), Some(AUTH_USER), "{last:?}");
    assert_eq!(last.status, 200);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_token_rejected_mid_pull_is_renewed() {
    let registry = Registry::token_auth();
    let repository = "library/bb-token-renewed";
    let image = fixtures::busybox().push(registry, repository, "latest");
    let proxy = FaultProxy::start(&registry.host);
    // The layer's first GET reaches the registry without the token: it answers 401 with a
    // fresh challenge, as for a token that expired between the manifest and the layer.
    let (layer_digest, _) = &image.layers[0];
    proxy.inject(
        Fault::new(
            FaultKind::DropAuthorization,
            &format!("/blobs/{layer_digest}"),
        )
        .method("GET")
        .times(1),
    );
    let env = TestEnv::new("pull_token_renewed", User::BoxTest);
    pull(&env, &proxy.reference(repository, "latest"));
    check_busybox_layer(&env, &image);
    assert_eq!(proxy.blob_gets(layer_digest), 2, "{}", proxy.log());
    let requests = token_requests(repository);
    assert_eq!(
        requests.len(),
        2,
        "a second token after the 401: {requests:#?}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_unknown_tag_is_a_clear_error() {
    let registry = Registry::plain();
    Fixture::Busybox.push(registry);
    let (env, _) = env_with_busybox("pull_404", User::BoxTest);
    failed_pull(
        &env,
        &[
            "pull",
            &registry.reference("fixtures/busybox", "no-such-tag"),
        ],
        &["fixtures/busybox", "no-such-tag"],
    );
    failed_pull(
        &env,
        &["pull", &registry.reference("no/such-repo", "latest")],
        &["no/such-repo"],
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_server_error_is_a_clear_error() {
    let registry = Registry::plain();
    let multi = Fixture::Multilayer.push(registry).image;
    let proxy = FaultProxy::start(&registry.host);
    let (env, _) = env_with_busybox("pull_5xx", User::BoxTest);
    let reference = proxy.reference(&multi.repo, "latest");

    proxy.inject(Fault::new(FaultKind::ServerError, "/manifests/"));
    let out = failed_pull(&env, &["pull", &reference], &["fixtures/multilayer"]);
    out.stderr_has("500");

    proxy.clear_faults();
    proxy.inject(Fault::new(FaultKind::ServerError, &multi.layers[2].0));
    let out = failed_pull(&env, &["pull", &reference], &["500"]);
    names_layer(&out, &multi.layers[2]);

    proxy.clear_faults();
    proxy.inject(Fault::new(FaultKind::NotFound, &multi.layers[1].0));
    let out = failed_pull(&env, &["pull", &reference], &[]);
    names_layer(&out, &multi.layers[1]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_body_cut_mid_way_is_a_clear_error() {
    let registry = Registry::plain();
    let multi = Fixture::Multilayer.push(registry).image;
    let proxy = FaultProxy::start(&registry.host);
    let (env, _) = env_with_busybox("pull_cut", User::BoxNoSub);
    let reference = proxy.reference(&multi.repo, "latest");
    for kind in [FaultKind::CloseMidBody, FaultKind::Truncate] {
        proxy.clear_faults();
        proxy.inject(Fault::new(kind, &multi.layers[1].0).method("GET"));
        let out = failed_pull(&env, &["pull", &reference], &[]);
        names_layer(&out, &multi.layers[1]);
    }
}

// ---------------------------------------------------------------------------------------
// Blobs that are not what the manifest says
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_digest_mismatch_is_refused() {
    let registry = Registry::plain();
    let multi = Fixture::Multilayer.push(registry).image;
    let proxy = FaultProxy::start(&registry.host);
    let (env, _) = env_with_busybox("pull_digest_mismatch", User::BoxTest);
    proxy.inject(Fault::new(FaultKind::CorruptByte, &multi.layers[2].0).method("GET"));
    let out = failed_pull(
        &env,
        &["pull", &proxy.reference(&multi.repo, "latest")],
        &["digest"],
    );
    names_layer(&out, &multi.layers[2]);
    assert!(proxy.blob_gets(&multi.layers[2].0) >= 1, "{}", proxy.log());

    // A corrupt config blob is refused too.
    proxy.clear_faults();
    proxy.inject(Fault::new(FaultKind::CorruptByte, &multi.config_digest).method("GET"));
    failed_pull(
        &env,
        &["pull", &proxy.reference(&multi.repo, "latest")],
        &[short(&multi.config_digest)],
    );
}

/// Push a busybox-based image whose top layer is `layer`; returns the pushed image.
pub(crate) fn push_with_layer(test: &str, layer: Layer) -> PushedImage {
    fixtures::busybox()
        .format(ManifestFormat::Oci)
        .layer(layer)
        .push(Registry::plain(), &repo(test), "latest")
}

pub(crate) fn small_layer(compression: Compression) -> Layer {
    Layer::new(
        &[
            Entry::dir("opt"),
            Entry::file("opt/payload", "x".repeat(100_000)),
        ],
        compression,
    )
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_wrong_descriptor_size_is_refused() {
    let (env, _) = env_with_busybox("pull_wrong_size", User::BoxTest);
    for (tag, delta) in [("bigger", 7i64), ("smaller", -7)] {
        let mut layer = small_layer(Compression::Gzip);
        layer.size_delta = delta;
        let image = push_with_layer(&format!("wrong-size-{tag}"), layer);
        let out = failed_pull(&env, &["pull", &image.reference], &["size"]);
        names_layer(&out, &image.layers[1]);
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_truncated_gzip_layer_is_refused() {
    let (env, _) = env_with_busybox("pull_truncated_gzip", User::BoxNoSub);
    let mut layer = small_layer(Compression::Gzip);
    layer.mangle = Some(|mut blob| {
        blob.truncate(blob.len() / 2);
        blob
    });
    let image = push_with_layer("truncated-gzip", layer);
    let out = failed_pull(&env, &["pull", &image.reference], &[]);
    names_layer(&out, &image.layers[1]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_corrupt_zstd_layer_is_refused() {
    let (env, _) = env_with_busybox("pull_corrupt_zstd", User::BoxTest);
    let mut layer = small_layer(Compression::Zstd);
    layer.mangle = Some(|mut blob| {
        let n = blob.len();
        for b in &mut blob[n / 3..n / 3 + 8] {
            *b ^= 0xff;
        }
        blob
    });
    let image = push_with_layer("corrupt-zstd", layer);
    let out = failed_pull(&env, &["pull", &image.reference], &[]);
    names_layer(&out, &image.layers[1]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_diff_id_mismatch_is_refused() {
    let (env, _) = env_with_busybox("pull_diff_id", User::BoxTest);
    let mut layer = small_layer(Compression::Gzip);
    let wrong = crate::common::sha256(b"not the layer");
    layer.diff_id_override = Some(wrong.clone());
    let image = push_with_layer("diff-id-mismatch", layer);
    let out = failed_pull(&env, &["pull", &image.reference], &["diff"]);
    names_layer(&out, &(image.layers[1].0.clone(), wrong));
    assert!(!env.layer_dir(&image.layers[1].1).exists());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_unknown_layer_media_type_is_refused() {
    let (env, _) = env_with_busybox("pull_media_type", User::BoxNoSub);
    let mut layer = small_layer(Compression::Gzip);
    layer.media_type_override = Some("application/vnd.example.layer.v1.tar+lz4".to_owned());
    let image = push_with_layer("unknown-media-type", layer);
    failed_pull(
        &env,
        &["pull", &image.reference],
        &["application/vnd.example.layer.v1.tar+lz4"],
    );
}

// ---------------------------------------------------------------------------------------
// Hostile layers
// ---------------------------------------------------------------------------------------

/// Pull an image whose top layer is `entries`, expect the pull to fail naming the image,
/// the layer and `needle` (the entry), and check nothing was written anywhere: not outside
/// the store, not in it.
fn hostile(test: &str, user: User, entries: Vec<Entry>, needle: &str) {
    let (env, _) = env_with_busybox(test, user);
    let sentinel = sentinel(&env);
    let image = push_with_layer(test, Layer::new(&entries, Compression::Gzip));
    let before = world(&env);
    let out = failed_pull(&env, &["pull", &image.reference], &[needle, &image.repo]);
    names_layer(&out, &image.layers[1]);
    let diff = before.diff(&world(&env));
    assert!(
        diff.is_empty(),
        "a hostile layer changed files (sentinel {}):\n{}\n{out}",
        sentinel.display(),
        diff.join("\n")
    );
    assert!(!env.layer_dir(&image.layers[1].1).exists());
    assert!(!Path::new("/tmp/box-test-pwned").exists());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn escape_with_dotdot_is_refused() {
    for user in [User::BoxTest, User::BoxNoSub] {
        hostile(
            "escape_dotdot",
            user,
            vec![
                Entry::dir("ok"),
                Entry::raw_file("../escaped-dotdot", "pwned\n"),
            ],
            "../escaped-dotdot",
        );
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn escape_with_inner_dotdot_is_refused() {
    hostile(
        "escape_inner_dotdot",
        User::BoxTest,
        vec![
            Entry::dir("a"),
            Entry::raw_file("a/../../sentinel/pwned", "pwned\n"),
        ],
        "a/../../sentinel/pwned",
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn escape_through_a_symlinked_parent_is_refused() {
    // An absolute symlink, then a file written through it: an unpacker that follows it
    // writes /tmp/box-test-pwned on the host.
    hostile(
        "escape_symlink_abs",
        User::BoxTest,
        vec![
            Entry::raw_symlink("lnk", "/tmp"),
            Entry::raw_file("lnk/box-test-pwned", "pwned\n"),
        ],
        "lnk",
    );
    // A relative symlink up to $XDG_DATA_HOME (layer -> layers/ or tmp/ -> box/ -> share/),
    // then a file written into the sentinel directory through it.
    hostile(
        "escape_symlink_rel",
        User::BoxNoSub,
        vec![
            Entry::raw_symlink("up", "../../.."),
            Entry::raw_file("up/sentinel/pwned", "pwned\n"),
        ],
        "up",
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn escape_with_a_hardlink_to_outside_is_refused() {
    hostile(
        "escape_hardlink",
        User::BoxTest,
        vec![
            Entry::dir("etc"),
            Entry::raw_hardlink("etc/hl", "../../etc/passwd"),
        ],
        "../../etc/passwd",
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn escape_with_a_whiteout_is_refused() {
    hostile(
        "escape_whiteout_dots",
        User::BoxTest,
        vec![Entry::dir("d"), Entry::raw_file("d/.wh...", "")],
        ".wh..",
    );
    hostile(
        "escape_whiteout_parent",
        User::BoxNoSub,
        vec![Entry::raw_file("../.wh.sentinel", "")],
        "../.wh.sentinel",
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_absolute_path_is_refused() {
    hostile(
        "escape_absolute_path",
        User::BoxTest,
        vec![
            Entry::dir("etc"),
            Entry::raw_file("/tmp/box-test-pwned", "pwned\n"),
        ],
        "/tmp/box-test-pwned",
    );
    hostile(
        "escape_absolute_hardlink",
        User::BoxNoSub,
        vec![
            Entry::dir("etc"),
            Entry::raw_hardlink("etc/hl", "/etc/passwd"),
        ],
        "/etc/passwd",
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_layer_nested_deeper_than_the_limit_is_refused_and_leaves_nothing() {
    // 1000 directories (within the limit: deeper than anything real), then an entry
    // 1500 deep. The refusal comes when the first 1000 are made: they are removed with the
    // descriptors a desktop session allows (1024), and nothing is left for later commands
    // to trip over.
    let (mut env, _) = env_with_busybox("deep_layer", User::BoxTest);
    env.limit_descriptors(1024);
    let within = format!("{}f", "d/".repeat(1000));
    let deeper = format!("{}f", "d/".repeat(1500));
    let image = push_with_layer(
        "deep-layer",
        Layer::new(
            &[
                Entry::file(&within, "deep\n"),
                Entry::file(&deeper, "deeper\n"),
            ],
            Compression::Gzip,
        ),
    );
    let out = failed_pull(
        &env,
        &["pull", &image.reference],
        &["1500 directories above it", "at most 1024 levels"],
    );
    names_layer(&out, &image.layers[1]);
    let out = env.run(&["images"]);
    out.success();
    assert_eq!(out.stderr, "", "{out}");
    env.run(&["rmi", "--all"]).success();
    assert!(env.layer_dirs().is_empty(), "{:?}", env.layer_dirs());
    assert_eq!(sorted(&env.store().join("tmp")), Vec::<String>::new());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn device_nodes_are_skipped_with_a_warning() {
    let env = TestEnv::new("pull_devices", User::BoxTest);
    let image = push_with_layer(
        "device-nodes",
        Layer::new(
            &[
                Entry::dir("dev"),
                Entry::char_device("dev/my-null", 1, 3),
                Entry::block_device("dev/my-disk", 8, 0),
                Entry::file("dev/regular", "kept\n"),
            ],
            Compression::Gzip,
        ),
    );
    let out = pull(&env, &image.reference);
    out.stderr_has("dev/my-null").stderr_has("dev/my-disk");
    let layer = env.layer_dir(&image.layers[1].1);
    assert!(!layer.join("dev/my-null").exists());
    assert!(!layer.join("dev/my-disk").exists());
    assert!(layer.join("dev/regular").is_file());
    assert_eq!(images(&env).len(), 1);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn xattrs_the_filesystem_refuses_are_skipped_with_one_warning() {
    let env = TestEnv::new("pull_refused_xattrs", User::BoxTest);
    let image = push_with_layer(
        "refused-xattrs",
        Layer::new(
            &[
                Entry::dir("etc"),
                Entry::file("etc/kept", "x\n").xattr("user.kept", "yes"),
                // The kernel refuses user.* xattrs on symlinks and fifos (EPERM).
                Entry::symlink("etc/link-a", "kept").xattr("user.refused", "1"),
                Entry::symlink("etc/link-b", "kept").xattr("user.refused", "2"),
                Entry::fifo("etc/fifo").xattr("user.refused", "3"),
            ],
            Compression::Gzip,
        ),
    );
    let out = pull(&env, &image.reference);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("extended attribute"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning for the layer:\n{out}");
    assert!(
        warnings[0].starts_with("box: warning: ")
            && warnings[0].contains(short(&image.layers[1].0))
            && warnings[0].contains("3 extended attribute(s) were not kept")
            && warnings[0].contains("user.refused on etc/link-a"),
        "{out}"
    );
    let layer = env.layer_dir(&image.layers[1].1);
    assert!(lstat(&layer.join("etc/link-b")).file_type().is_symlink());
    assert!(lstat(&layer.join("etc/fifo")).file_type().is_fifo());
    assert_eq!(
        xattr(&layer.join("etc/kept"), "user.kept").as_deref(),
        Some(&b"yes"[..])
    );
    assert_eq!(images(&env).len(), 1);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn warnings_during_a_pull_on_a_terminal_do_not_garble_the_progress_bars() {
    const COLUMNS: u16 = 250;
    let env = TestEnv::new("pull_warning_on_terminal", User::BoxTest);
    let image = push_with_layer(
        "warning-on-terminal",
        Layer::new(
            &[
                Entry::dir("dev"),
                Entry::char_device("dev/my-null", 1, 3),
                Entry::file("dev/regular", "x".repeat(300_000)),
            ],
            Compression::Gzip,
        ),
    );
    let (status, shown) = run_on_terminal_sized(
        &env,
        &["pull", &image.reference],
        &[],
        Duration::ZERO,
        Some((COLUMNS, 50)),
    );
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains('\x1b'),
        "no progress bars were drawn, so this test proves nothing:\n{shown:?}"
    );
    let screen = render(&shown, COLUMNS.into());
    let warning = format!(
        "box: warning: layer {} of {}: skipped 1 device node(s) (dev/my-null); boxes get the host's /dev",
        image.layers[1].0, image.reference
    );
    assert_eq!(
        screen.iter().filter(|l| **l == warning).count(),
        1,
        "the warning is on screen once, whole, on a line of its own:\n{}",
        screen.join("\n")
    );
    assert!(
        !screen.iter().any(|l| l.contains("B/s")),
        "pieces of progress bars are left on screen:\n{}",
        screen.join("\n")
    );
    assert!(
        screen.iter().any(|l| l.starts_with("box: pulled ")),
        "{}",
        screen.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Running out of room, being killed, racing
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_full_disk_during_unpack_leaves_the_store_as_it_was() {
    let mut env = TestEnv::new("pull_full_disk", User::BoxTest);
    let small = env.dir.join("small");
    env.mount_tmpfs(&small, "8m");
    env.set_env("XDG_DATA_HOME", &small);
    let busybox = Fixture::Busybox.push(Registry::plain()).image;
    pull(&env, &busybox.reference);

    // 16 MiB that compress to almost nothing: the download fits, the unpack does not.
    let block: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let big = block.repeat(4096);
    let image = push_with_layer(
        "full-disk",
        Layer::new(
            &[Entry::dir("big"), Entry::file("big/file", &big)],
            Compression::Gzip,
        ),
    );
    let out = failed_pull(&env, &["pull", &image.reference], &["space"]);
    names_layer(&out, &image.layers[1]);
    // And the image already there still works.
    check_busybox_layer(&env, &busybox);
    assert_eq!(images(&env).len(), 1);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_full_disk_during_download_leaves_the_store_as_it_was() {
    let mut env = TestEnv::new("pull_full_disk_download", User::BoxNoSub);
    let small = env.dir.join("small");
    env.mount_tmpfs(&small, "8m");
    env.set_env("XDG_DATA_HOME", &small);
    let busybox = Fixture::Busybox.push(Registry::plain()).image;
    pull(&env, &busybox.reference);

    // 10 MiB that do not compress: the blob itself does not fit in tmp/.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..10 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let image = push_with_layer(
        "full-disk-download",
        Layer::new(
            &[Entry::dir("big"), Entry::file("big/noise", &noise)],
            Compression::Gzip,
        ),
    );
    let out = failed_pull(
        &env,
        &["pull", &image.reference],
        &["no space left on device while downloading", &image.repo],
    );
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("box: error: "))
        .unwrap();
    assert_eq!(
        error.matches(short(&image.layers[1].0)).count(),
        1,
        "the error names the layer once:\n{out}"
    );
    check_busybox_layer(&env, &busybox);
    assert_eq!(images(&env).len(), 1);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_pull_killed_mid_download_leaves_no_image_and_the_next_pull_succeeds() {
    let registry = Registry::plain();
    let multi = Fixture::Multilayer.push(registry).image;
    let proxy = FaultProxy::start(&registry.host);
    let env = TestEnv::new("pull_killed", User::BoxTest);
    let reference = proxy.reference(&multi.repo, "latest");

    proxy.inject(Fault::new(FaultKind::Stall, &multi.layers[0].0).method("GET"));
    let mut child = env.spawn(&["pull", &reference]);
    let pid = child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !proxy.wait_for_stall(Duration::from_millis(100)) {
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            let out = env.wait(&["pull", &reference], child);
            panic!(
                "box never reached the stalled download:\n{}\n{out}",
                proxy.log()
            );
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = env.wait(&["pull", &reference], child);
    assert_eq!(TestEnv::signalled(&out), Some(9), "{out}");
    assert!(env.image_records().is_empty(), "{:?}", env.image_records());
    assert!(
        !env.layer_dir(&multi.layers[0].1).exists(),
        "the stalled layer must not be in layers/"
    );

    proxy.clear_faults();
    pull(&env, &reference);
    assert_eq!(env.layer_dirs().len(), 3);
    assert_eq!(images(&env).len(), 1);
    let tmp: Vec<_> = std::fs::read_dir(env.store().join("tmp"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "the next pull clears tmp/ debris: {tmp:?}");
}

/// `/proc/PID/stat` fields after the command name: (state, ppid, start time).
fn proc_stat(pid: u32) -> Option<(char, u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some((
        fields.first()?.chars().next()?,
        fields.get(1)?.parse().ok()?,
        fields.get(19)?.parse().ok()?,
    ))
}

/// The children of `parent` whose command line has the argument `arg`, with their start
/// times (to tell them from a later process given the same pid).
fn children_with_arg(parent: u32, arg: &str) -> Vec<(u32, u64)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some((_, ppid, start)) = proc_stat(pid) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == parent && cmdline.split(|&b| b == 0).any(|a| a == arg.as_bytes()) {
            found.push((pid, start));
        }
    }
    found
}

/// Whether the process (pid, start time) has ended (a zombie waiting for its reaper has).
fn has_ended(process: (u32, u64)) -> bool {
    match proc_stat(process.0) {
        None => true,
        Some((state, _, start)) => start != process.1 || state == 'Z' || state == 'X',
    }
}

/// Staging directories of layers under the store's `tmp/`.
fn layer_staging_dirs(env: &TestEnv) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(env.store().join("tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("layer-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The paths of the Debian fixture's tar that an unpack creates (devices are skipped).
fn debian_tar_paths() -> Vec<String> {
    let file = std::fs::File::open(fixtures::debian_tar_path()).unwrap();
    let mut archive = tar::Archive::new(file);
    let mut paths = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_pax_global_extensions()
        {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        if !path.is_empty() && path != "." {
            paths.push(path);
        }
    }
    paths
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_pull_killed_mid_unpack_takes_its_store_helper_along() {
    let debian = Fixture::Debian.push(Registry::plain()).image;
    let env = TestEnv::new("pull_killed_unpack", User::BoxTest);
    let args = ["pull", debian.reference.as_str()];
    let mut child = env.spawn(&args);
    let pid = child.id();
    // Kill box as soon as its store helper is writing the layer's staging directory.
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let helper = loop {
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            let out = env.wait(&args, child);
            panic!("the pull ended before its unpack could be interrupted:\n{out}");
        }
        let helpers = children_with_arg(pid, "__store-helper");
        if let [helper] = helpers[..]
            && !layer_staging_dirs(&env).is_empty()
        {
            break helper;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = env.wait(&args, child);
    assert_eq!(TestEnv::signalled(&out), Some(9), "{out}");

    // The helper dies with it (PR_SET_PDEATHSIG), instead of finishing as an orphan.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !has_ended(helper) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        has_ended(helper),
        "the store helper (pid {}) outlived the killed pull",
        helper.0
    );
    assert!(env.image_records().is_empty(), "{:?}", env.image_records());
    assert!(
        !env.layer_dir(&debian.layers[0].1).exists(),
        "a layer whose unpack was interrupted is in layers/"
    );

    // The next pull clears the debris and unpacks the whole layer.
    let out = pull(&env, &debian.reference);
    out.stderr_has("pulled");
    let layer = env.layer_dir(&debian.layers[0].1);
    let missing: Vec<String> = debian_tar_paths()
        .into_iter()
        .filter(|p| layer.join(p).symlink_metadata().is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} entries of the layer are missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let entry = image_entry(&env, &debian.reference);
    assert_eq!(entry["digest"], debian.digest.as_str());
    assert_eq!(entry["size"].as_u64(), Some(debian.tar_size), "{entry}");
    assert!(
        layer_staging_dirs(&env).is_empty(),
        "{:?}",
        layer_staging_dirs(&env)
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn concurrent_pulls_of_the_same_image_both_succeed() {
    let registry = Registry::plain();
    let multi = Fixture::Multilayer.push(registry).image;
    for user in [User::BoxTest, User::BoxNoSub] {
        let env = TestEnv::new("pull_concurrent", user);
        let args = ["pull", multi.reference.as_str()];
        let first = env.spawn(&args);
        let second = env.spawn(&args);
        let first = env.wait(&args, first);
        let second = env.wait(&args, second);
        first.success().no_animation();
        second.success().no_animation();
        assert_eq!(env.layer_dirs().len(), 3, "{:?}", env.layer_dirs());
        assert_eq!(env.image_records().len(), 1, "{:?}", env.image_records());
        let entry = image_entry(&env, &multi.reference);
        assert_eq!(entry["digest"], multi.digest.as_str());
        // Whichever pull wrote the record, layers the other one unpacked count too.
        assert_eq!(entry["size"].as_u64(), Some(multi.tar_size), "{entry}");
        let tmp: Vec<_> = std::fs::read_dir(env.store().join("tmp"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(tmp.is_empty(), "debris in tmp/: {tmp:?}");
        assert!(
            env.layer_dir(&multi.layers[2].1)
                .join("data/opaque/new")
                .is_file()
        );
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_docker_manifest_list_is_understood() {
    let registry = Registry::plain();
    let images_ = [
        fixtures::platform_image(&host_platform()).format(ManifestFormat::Docker),
        fixtures::platform_image(&other_platform()).format(ManifestFormat::Docker),
    ];
    let (_, pushed) = push_index(
        registry,
        &repo("docker-list"),
        "latest",
        &images_,
        ManifestFormat::Docker,
    );
    let env = TestEnv::new("pull_docker_list", User::BoxNoSub);
    pull(&env, &registry.reference(&repo("docker-list"), "latest"));
    assert!(
        env.layer_dir(&pushed[0].layers[0].1)
            .join("etc/platform")
            .is_file()
    );
}
