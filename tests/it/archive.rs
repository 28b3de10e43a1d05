//! `box save` and `box load` against the real clients: podman loads and runs what box
//! saves and skopeo copies from it; box loads what podman (docker-archive, oci-archive)
//! and skopeo write, plain and gzip-compressed, and boxes created from those images run;
//! hostile archives are refused with a clear error and the store unchanged; save and load
//! stream through a pipe.
//!
//! podman runs as root, with its storage under each test's directory (`--root`,
//! `--runroot`, the vfs driver, cgroupfs, no network): rootless podman would start a
//! pause process per user that outlives the test and share per-user state between the
//! tests that run at once as the same test user, and what is tested here is the archive
//! format, which does not depend on who runs podman. box itself runs as the unprivileged
//! test users, as everywhere. `podman run` gets explicit ulimits: its default raises
//! RLIMIT_NOFILE and RLIMIT_NPROC past the hard limits of machines without
//! CAP_SYS_RESOURCE (these containers), which runc then fails to set.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::boxes::{Boxes, ok, run_on_terminal};
use crate::common::fixtures::busybox_entries;
use crate::common::oci::{Layer, tar_bytes};
use crate::common::{
    Compression, Entry, Fixture, ImageBuilder, ManifestFormat, Outcome, PushedImage, Registry,
    TestEnv, User, hex_of, sha256,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// podman as root, its storage in `dir`, its run root (podman wants at most 50
/// characters there) in `run`; removed on drop.
struct Podman {
    dir: PathBuf,
    run: PathBuf,
}

impl Podman {
    fn new(env: &TestEnv) -> Podman {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = env.dir.join("podman");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let run = PathBuf::from(format!("/run/box-podman-{}-{n}", std::process::id()));
        Podman { dir, run }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(&self.run)
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .args(args)
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null());
        command
    }

    /// Run podman; its stdout. Fails the test with podman's output when podman fails.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self
            .command(args)
            .output()
            .expect("running podman (installed by sudo tests/run)");
        assert!(
            out.status.success(),
            "podman {} failed: {}\n{}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman run` of `args` in `image`, without network, with ulimits the machine allows.
    #[track_caller]
    fn run(&self, image: &str, args: &[&str]) -> String {
        let mut all = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
            image,
        ];
        all.extend_from_slice(args);
        self.ok(&all)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.run);
    }
}

/// busybox's files with the hard link `bin/true` of mode 0755, as GNU tar writes a hard
/// link (the fixture's is 0644, which podman applies to the shared inode, and its
/// busybox then cannot be executed): an image podman can run.
fn runnable_entries() -> Vec<Entry> {
    busybox_entries()
        .into_iter()
        .map(|e| {
            if e.link.is_some() && e.path == "bin/true" {
                e.mode(0o755)
            } else {
                e
            }
        })
        .collect()
}

/// The busybox image podman can run, pushed as `archive/busybox:latest` with an OCI
/// manifest (the fixtures have Docker's).
fn runnable_busybox() -> PushedImage {
    use std::sync::OnceLock;
    static PUSHED: OnceLock<PushedImage> = OnceLock::new();
    PUSHED
        .get_or_init(|| {
            ImageBuilder::new()
                .format(ManifestFormat::Oci)
                .entries(&runnable_entries(), Compression::Gzip)
                .push(Registry::plain(), "archive/busybox", "latest")
        })
        .clone()
}

/// skopeo as root; its stdout.
#[track_caller]
fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running skopeo (installed by sudo tests/run)");
    assert!(
        out.status.success(),
        "skopeo {} failed: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `box images --json` as an array.
#[track_caller]
fn images(env: &TestEnv) -> Vec<Value> {
    match ok(env, &["images", "--json"]).json() {
        Value::Array(items) => items,
        other => panic!("`box images --json` is not an array: {other}"),
    }
}

/// The `box images --json` entry of `reference`.
#[track_caller]
fn image(env: &TestEnv, reference: &str) -> Value {
    let all = images(env);
    all.iter()
        .find(|i| i["reference"] == reference)
        .cloned()
        .unwrap_or_else(|| panic!("no image {reference} in `box images --json`: {all:#?}"))
}

/// Create box `name` from `image` and check that it runs a command.
#[track_caller]
fn runs(env: &TestEnv, image: &str, name: &str) {
    ok(env, &["create", "--no-entry", "--image", image, name]);
    let out = ok(env, &["run", name, "--", "sh", "-c", "echo hello from $0"]);
    assert_eq!(out.stdout.trim(), "hello from sh", "{out}");
}

/// A path under the test's directory that the test user can read (podman writes there).
fn shared(env: &TestEnv, name: &str) -> PathBuf {
    env.dir.join(name)
}

/// Make `path` readable by everyone (podman writes archives 0644 already; skopeo too).
fn readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Pull the busybox and multilayer fixtures; their pushed descriptions.
fn pull_fixtures(env: &TestEnv) -> (PushedImage, PushedImage) {
    let busybox = Fixture::Busybox.push(Registry::plain()).image;
    let multilayer = Fixture::Multilayer.push(Registry::plain()).image;
    ok(env, &["pull", &busybox.reference]);
    ok(env, &["pull", &multilayer.reference]);
    (busybox, multilayer)
}

/// What a box of the multilayer image must show: every layer applied, whiteouts too.
fn check_multilayer_box(env: &TestEnv, name: &str) {
    let out = ok(
        env,
        &[
            "run",
            name,
            "--",
            "sh",
            "-c",
            "cat /data/www/index.html; test -e /etc/deleteme && echo deleteme-still-there; true",
        ],
    );
    assert_eq!(out.stdout.trim(), "<p>owned by www-data</p>", "{out}");
}

// ---------------------------------------------------------------------------------------
// box save -> podman, skopeo
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn podman_and_skopeo_read_what_box_saves() {
    let env = TestEnv::new("archive_save", User::BoxTest);
    let (_, multilayer) = pull_fixtures(&env);
    let busybox = runnable_busybox();
    ok(&env, &["pull", &busybox.reference]);
    let file = env.home.join("images.tar");
    let file_text = file.to_str().unwrap();
    ok(
        &env,
        &[
            "save",
            &busybox.reference,
            &multilayer.reference,
            "-o",
            file_text,
        ],
    );
    // The blobs are the registry's: the manifest and config digests are the pushed ones.
    let podman = Podman::new(&env);
    let loaded = podman.ok(&["load", "-i", file_text]);
    for pushed in [&busybox, &multilayer] {
        assert!(
            loaded.contains(&pushed.reference),
            "podman load did not name {}: {loaded}",
            pushed.reference
        );
        let id = podman.ok(&["image", "inspect", "--format", "{{.Id}}", &pushed.reference]);
        assert_eq!(id.trim(), hex_of(&pushed.config_digest));
    }
    let out = podman.run(&busybox.reference, &["sh", "-c", "echo podman runs $0"]);
    assert_eq!(out.trim(), "podman runs sh");
    let layers = podman.ok(&[
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}}",
        &multilayer.reference,
    ]);
    assert_eq!(layers.trim(), "3");

    // skopeo reads it both ways, by name; an OCI image keeps its manifest byte for byte,
    // a Docker one is listed in its OCI form, with the same config and layers.
    let oci_copy = env.dir.join("skopeo-oci");
    skopeo(&[
        "copy",
        &format!("oci-archive:{file_text}:{}", busybox.reference),
        &format!("dir:{}", oci_copy.display()),
    ]);
    let manifest = std::fs::read(oci_copy.join("manifest.json")).unwrap();
    assert_eq!(sha256(&manifest), busybox.digest);
    let converted = env.dir.join("skopeo-oci-converted");
    skopeo(&[
        "copy",
        &format!("oci-archive:{file_text}:{}", multilayer.reference),
        &format!("dir:{}", converted.display()),
    ]);
    assert!(converted.join(hex_of(&multilayer.config_digest)).is_file());
    for (layer, _) in &multilayer.layers {
        assert!(converted.join(hex_of(layer)).is_file(), "{layer}");
    }
    let docker_copy = env.dir.join("skopeo-docker");
    skopeo(&[
        "copy",
        &format!("docker-archive:{file_text}:{}", multilayer.reference),
        &format!("dir:{}", docker_copy.display()),
    ]);
    assert!(
        docker_copy
            .join(hex_of(&multilayer.config_digest))
            .is_file()
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn save_streams_to_a_pipe_and_load_reads_it_into_another_store() {
    let env = TestEnv::new("archive_pipe", User::BoxTest);
    let (busybox, _) = pull_fixtures(&env);
    let other = TestEnv::new("archive_pipe_other", User::BoxNoSub);
    let _boxes = Boxes(&other);
    let mut save = env.command(&["save", &busybox.reference]);
    let mut saver = save.spawn().unwrap();
    let stdout = saver.stdout.take().unwrap();
    let mut load = other.command(&["load"]);
    load.stdin(Stdio::from(stdout));
    let loader = load.spawn().unwrap();
    let saved = env.wait(&["save", &busybox.reference], saver);
    let loaded = other.wait(&["load"], loader);
    saved.success();
    loaded.success();
    assert_eq!(
        loaded.stdout.trim(),
        format!("Loaded image: {}", busybox.reference),
        "{loaded}"
    );
    // Same manifest, same config: the image kept its digests through the pipe.
    let entry = image(&other, &busybox.reference);
    assert_eq!(entry["digest"], busybox.digest.as_str());
    runs(&other, &busybox.reference, "piped");

    // A tar is no terminal's business.
    let (status, shown) = run_on_terminal(
        &env,
        &["save", &busybox.reference],
        &[],
        Duration::from_millis(0),
    );
    assert_eq!(status.code(), Some(125), "{shown}");
    assert!(
        shown.contains("refusing to write a tar archive to a terminal"),
        "{shown}"
    );
    // An empty standard input is no archive.
    let out = env.run(&["load"]);
    out.box_error(&["standard input is empty"]);
}

// ---------------------------------------------------------------------------------------
// podman, skopeo -> box load
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn box_loads_what_podman_saves_and_its_boxes_run() {
    let env = TestEnv::new("archive_podman", User::BoxTest);
    let _boxes = Boxes(&env);
    let busybox = Fixture::Busybox.push(Registry::plain()).image;
    let podman = Podman::new(&env);
    podman.ok(&["pull", "-q", "--tls-verify=false", &busybox.reference]);
    podman.ok(&["tag", &busybox.reference, "localhost/podbusy:1"]);
    let docker = shared(&env, "podman-docker.tar");
    let oci = shared(&env, "podman-oci.tar");
    podman.ok(&[
        "save",
        "-o",
        docker.to_str().unwrap(),
        "localhost/podbusy:1",
    ]);
    podman.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci.to_str().unwrap(),
        "localhost/podbusy:1",
    ]);
    let gzipped = shared(&env, "podman-docker.tar.gz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            docker.display(),
            gzipped.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    for file in [&docker, &oci, &gzipped] {
        readable(file);
    }

    // docker-archive: uncompressed layers, symlinked legacy layer.tar, repositories.
    let out = ok(&env, &["load", "-i", docker.to_str().unwrap()]);
    assert_eq!(
        out.stdout.trim(),
        "Loaded image: localhost/podbusy:1",
        "{out}"
    );
    runs(&env, "localhost/podbusy:1", "from-docker-archive");
    let from_docker = image(&env, "localhost/podbusy:1");
    // The layer is unpacked once, and kept compressed: no blob is the uncompressed tar.
    let diff_id = hex_of(&busybox.layers[0].1);
    assert!(env.layer_dirs().contains(&diff_id.to_owned()));
    assert!(!env.store().join("blobs/sha256").join(diff_id).exists());

    // oci-archive: its manifest is kept, so the image has podman's manifest digest.
    let out = ok(&env, &["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(
        out.stdout.trim(),
        "Loaded image: localhost/podbusy:1",
        "{out}"
    );
    let index: Value = serde_json::from_slice(&read_member(&oci, "index.json")).unwrap();
    let podman_manifest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        image(&env, "localhost/podbusy:1")["digest"],
        podman_manifest.as_str()
    );
    assert_ne!(from_docker["digest"], podman_manifest.as_str());

    // A gzip-compressed archive, loaded from standard input.
    let mut command = env.command(&["load"]);
    command.stdin(std::fs::File::open(&gzipped).unwrap());
    let child = command.spawn().unwrap();
    let out = env.wait(&["load", "<", "podman-docker.tar.gz"], child);
    out.success();
    assert_eq!(
        out.stdout.trim(),
        "Loaded image: localhost/podbusy:1",
        "{out}"
    );
    runs(&env, "localhost/podbusy:1", "from-gzip");

    // Loading it again adds nothing: the layer and its compressed blob are reused.
    let before = env.store_state();
    ok(&env, &["load", "-i", docker.to_str().unwrap()]);
    let after = env.store_state();
    let changed: Vec<String> = before
        .diff(&after)
        .into_iter()
        .filter(|line| !line.contains("images/"))
        .collect();
    assert!(
        changed.is_empty(),
        "a second load changed the store: {changed:#?}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn box_loads_what_skopeo_writes_and_its_boxes_run() {
    let env = TestEnv::new("archive_skopeo", User::BoxTest);
    let _boxes = Boxes(&env);
    let multilayer = Fixture::Multilayer.push(Registry::plain()).image;
    let oci = shared(&env, "skopeo-oci.tar");
    let docker = shared(&env, "skopeo-docker.tar");
    let source = format!("docker://{}", multilayer.reference);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &source,
        &format!("oci-archive:{}:localhost/sk:oci", oci.display()),
    ]);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &source,
        &format!("docker-archive:{}:localhost/sk:docker", docker.display()),
    ]);
    readable(&oci);
    readable(&docker);

    let out = ok(&env, &["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(out.stdout.trim(), "Loaded image: localhost/sk:oci", "{out}");
    runs(&env, "localhost/sk:oci", "sk-oci");
    check_multilayer_box(&env, "sk-oci");
    let out = ok(&env, &["load", "-i", docker.to_str().unwrap()]);
    assert_eq!(
        out.stdout.trim(),
        "Loaded image: localhost/sk:docker",
        "{out}"
    );
    runs(&env, "localhost/sk:docker", "sk-docker");
    check_multilayer_box(&env, "sk-docker");
    // Both are the registry's image: the same config, and the layers of one pull.
    assert_eq!(
        image(&env, "localhost/sk:oci")["layers"],
        multilayer.layers.len()
    );
    let layers = env.layer_dirs();
    for (_, diff_id) in &multilayer.layers {
        assert!(layers.contains(&hex_of(diff_id).to_owned()), "{layers:?}");
    }
}

/// The bytes of member `name` of the tar at `path`.
fn read_member(path: &Path, name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(name) {
            let mut out = Vec::new();
            entry.read_to_end(&mut out).unwrap();
            return out;
        }
    }
    panic!("no member {name} in {}", path.display())
}

// ---------------------------------------------------------------------------------------
// docker save's layout, built here; hostile archives
// ---------------------------------------------------------------------------------------

/// A tar of `(path, kind, data, link target)` members, paths written as they are.
fn archive_of(members: &[(&str, tar::EntryType, Vec<u8>, Option<&str>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, data, link) in members {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        let slot = &mut header.as_old_mut().name;
        slot[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        builder.append(&header, &data[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

use tar::EntryType::{Char, Link, Regular, Symlink};

/// A docker archive as `docker save` (before docker 25) writes one: `<id>/layer.tar`
/// (uncompressed), `<id>/json`, `<id>/VERSION`, `<config-hex>.json`, `repositories`, and a
/// manifest.json with one entry per image, here a tagged one and an untagged one sharing
/// the layer. `layer` replaces the busybox layer tar (a hostile one).
fn docker_save_layout(layer: Option<Vec<u8>>, diff_id: Option<String>) -> Vec<u8> {
    let tar = layer.unwrap_or_else(|| tar_bytes(&runnable_entries()));
    let mut layer = Layer::from_tar(tar.clone(), Compression::None);
    layer.diff_id_override = diff_id;
    let config = ImageBuilder::new().layer(layer.clone()).config();
    let config_name = format!("{}.json", hex_of(&sha256(&config)));
    let second = ImageBuilder::new().layer(layer);
    let mut second_config: Value = serde_json::from_slice(&second.config()).unwrap();
    second_config["config"]["Env"]
        .as_array_mut()
        .expect("the builder's config has an Env")
        .push(json!("SECOND=1"));
    let second_config = serde_json::to_vec(&second_config).unwrap();
    let second_name = format!("{}.json", hex_of(&sha256(&second_config)));
    let id = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let manifest = json!([
        {"Config": config_name, "RepoTags": ["dockerish:1"], "Layers": [format!("{id}/layer.tar")]},
        {"Config": second_name, "RepoTags": null, "Layers": [format!("{id}/layer.tar")]},
    ]);
    archive_of(&[
        (
            &format!("{id}/"),
            tar::EntryType::Directory,
            Vec::new(),
            None,
        ),
        (&format!("{id}/VERSION"), Regular, b"1.0".to_vec(), None),
        (&format!("{id}/json"), Regular, b"{}".to_vec(), None),
        (&format!("{id}/layer.tar"), Regular, tar, None),
        (&config_name, Regular, config, None),
        (&second_name, Regular, second_config, None),
        (
            "repositories",
            Regular,
            format!("{{\"dockerish\":{{\"1\":\"{id}\"}}}}").into_bytes(),
            None,
        ),
        (
            "manifest.json",
            Regular,
            serde_json::to_vec(&manifest).unwrap(),
            None,
        ),
    ])
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn docker_saves_layout_loads_with_tagged_and_untagged_images() {
    let env = TestEnv::new("archive_docker_layout", User::BoxTest);
    let _boxes = Boxes(&env);
    let file = env.home.join("docker.tar");
    env.write_user_file(&file, docker_save_layout(None, None), 0o600);
    let out = ok(&env, &["load", "-i", file.to_str().unwrap()]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "Loaded image: docker.io/library/dockerish:1");
    let untagged = lines[1].strip_prefix("Loaded image: ").unwrap();
    assert!(untagged.starts_with("localhost/untagged@sha256:"), "{out}");
    runs(&env, "docker.io/library/dockerish:1", "dockerish");
    runs(&env, untagged, "untagged");
    let env_of = ok(&env, &["run", "untagged", "--", "sh", "-c", "echo $SECOND"]);
    assert_eq!(env_of.stdout.trim(), "1");
    // One layer for both, unpacked once.
    assert_eq!(env.layer_dirs().len(), 1);
    // And box saves what it loaded, for podman.
    let saved = env.home.join("again.tar");
    ok(
        &env,
        &[
            "save",
            "docker.io/library/dockerish:1",
            untagged,
            "-o",
            saved.to_str().unwrap(),
        ],
    );
    let podman = Podman::new(&env);
    podman.ok(&["load", "-i", saved.to_str().unwrap()]);
    let out = podman.run("docker.io/library/dockerish:1", &["sh", "-c", "echo $0"]);
    assert_eq!(out.trim(), "sh");
}

/// An archive member to write: path, type, data, link target.
type Member = (String, tar::EntryType, Vec<u8>, Option<String>);

/// A valid archive of busybox as box saves it: its members, to be made hostile.
fn saved_members(env: &TestEnv, busybox: &PushedImage) -> Vec<(String, tar::EntryType, Vec<u8>)> {
    use std::io::Read;
    let file = env.home.join("valid.tar");
    ok(
        env,
        &["save", &busybox.reference, "-o", file.to_str().unwrap()],
    );
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&file).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let kind = entry.header().entry_type();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((path, kind, data));
    }
    std::fs::remove_file(&file).unwrap();
    out
}

/// Load `bytes` as a file; it must fail naming every needle, leaving the store as it was.
#[track_caller]
fn refused(env: &TestEnv, what: &str, bytes: &[u8], needles: &[&str]) -> Outcome {
    let file = env.home.join(format!("{what}.tar"));
    env.write_user_file(&file, bytes, 0o600);
    let before = env.store_state();
    let out = env.run(&["load", "-i", file.to_str().unwrap()]);
    out.box_error(needles);
    env.assert_store_unchanged(&before, &out);
    std::fs::remove_file(&file).unwrap();
    out
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn hostile_archives_are_refused_and_the_store_is_unchanged() {
    let env = TestEnv::new("archive_hostile", User::BoxTest);
    let busybox = Fixture::Busybox.push(Registry::plain()).image;
    ok(&env, &["pull", &busybox.reference]);
    let valid = saved_members(&env, &busybox);
    let layer_name = format!("blobs/sha256/{}", hex_of(&busybox.layers[0].0));
    let with = |change: &dyn Fn(&mut Vec<Member>)| {
        let mut members: Vec<Member> = valid
            .iter()
            .map(|(p, k, d)| (p.clone(), *k, d.clone(), None))
            .collect();
        change(&mut members);
        let borrowed: Vec<(&str, tar::EntryType, Vec<u8>, Option<&str>)> = members
            .iter()
            .map(|(p, k, d, l)| (p.as_str(), *k, d.clone(), l.as_deref()))
            .collect();
        archive_of(&borrowed)
    };

    // Paths that leave the archive.
    refused(
        &env,
        "dotdot",
        &with(&|m| m.push(("../escaped".into(), Regular, b"x".to_vec(), None))),
        &["../escaped", "outside the archive"],
    );
    refused(
        &env,
        "absolute",
        &with(&|m| m.push(("/etc/escaped".into(), Regular, b"x".to_vec(), None))),
        &["/etc/escaped", "absolute"],
    );
    // The archive's own structure through links.
    refused(
        &env,
        "symlinked-index",
        &with(&|m| {
            let at = m.iter().position(|e| e.0 == "index.json").unwrap();
            m[at] = (
                "index.json".into(),
                Symlink,
                Vec::new(),
                Some("/etc/passwd".into()),
            );
        }),
        &["index.json", "symlink to `/etc/passwd`"],
    );
    refused(
        &env,
        "hardlinked-layer",
        &with(&|m| {
            let at = m.iter().position(|e| e.0 == layer_name).unwrap();
            m[at] = (
                layer_name.clone(),
                Link,
                Vec::new(),
                Some("oci-layout".into()),
            );
        }),
        &[&layer_name, "hard link"],
    );
    refused(
        &env,
        "symlinked-blobs",
        &with(&|m| {
            m.retain(|e| e.0 != "blobs/" && e.0 != "blobs/sha256/");
            m.insert(
                0,
                ("blobs".into(), Symlink, Vec::new(), Some("/var/tmp".into())),
            );
        }),
        &["through `blobs`"],
    );
    // Wrong digests: a layer blob with one byte changed, a manifest that lies about a size.
    refused(
        &env,
        "wrong-digest",
        &with(&|m| {
            let at = m.iter().position(|e| e.0 == layer_name).unwrap();
            let last = m[at].2.len() - 1;
            m[at].2[last] ^= 0xff;
        }),
        &[&layer_name, "has digest", &busybox.layers[0].0],
    );
    // A wrong diff id: an uncompressed layer of a docker archive that is not the one the
    // config promises.
    let other = sha256(b"another layer");
    refused(
        &env,
        "wrong-diff-id",
        &docker_save_layout(None, Some(other.clone())),
        &["layer.tar", &other, "diff id"],
    );
    // A hostile layer inside a well-formed archive: refused as pull refuses it.
    let escaping = tar_bytes(&[
        Entry::dir("etc"),
        Entry::raw_file("../escaped-by-layer", "pwned\n"),
    ]);
    refused(
        &env,
        "hostile-layer",
        &docker_save_layout(Some(escaping), None),
        &["../escaped-by-layer", "`..`"],
    );
    // Duplicates, devices, absurd sizes and counts.
    refused(
        &env,
        "duplicate",
        &with(&|m| {
            let index = m.iter().find(|e| e.0 == "index.json").unwrap().clone();
            m.push(("./index.json".into(), index.1, b"{}".to_vec(), None));
        }),
        &["index.json", "appears twice"],
    );
    refused(
        &env,
        "device",
        &with(&|m| m.push(("dev/null".into(), Char, Vec::new(), None))),
        &["dev/null", "character device"],
    );
    let many = json!({
        "schemaVersion": 2,
        "manifests": (0..1001).map(|_| json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": busybox.digest, "size": 1})).collect::<Vec<_>>(),
    });
    refused(
        &env,
        "many-images",
        &with(&|m| {
            let at = m.iter().position(|e| e.0 == "index.json").unwrap();
            m[at].2 = serde_json::to_vec(&many).unwrap();
        }),
        &["1001 images", "at most 1000"],
    );
    let mut huge = tar::Header::new_gnu();
    huge.set_path("blobs/sha256/huge").unwrap();
    huge.set_size(1 << 50);
    huge.set_cksum();
    let mut bytes = with(&|_| {});
    bytes.truncate(bytes.len() - 1024);
    bytes.extend_from_slice(huge.as_bytes());
    refused(
        &env,
        "huge",
        &bytes,
        &["blobs/sha256/huge", "claims", "free"],
    );
    // Cut short: the archive ends in the middle of the layer.
    let mut cut = with(&|_| {});
    let keep = cut.len() / 2;
    cut.truncate(keep);
    refused(&env, "truncated", &cut, &["truncated"]);
    // Not an image archive at all.
    refused(
        &env,
        "not-images",
        &archive_of(&[("hello.txt", Regular, b"hi".to_vec(), None)]),
        &["not an image archive"],
    );

    // After all that, the valid archive still loads.
    let file = env.home.join("valid.tar");
    let mut f = std::fs::File::create(&file).unwrap();
    f.write_all(&with(&|_| {})).unwrap();
    drop(f);
    std::os::unix::fs::chown(&file, Some(env.uid), Some(env.gid)).unwrap();
    ok(&env, &["load", "-i", file.to_str().unwrap()]);
}
