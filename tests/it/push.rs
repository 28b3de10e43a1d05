//! `box push` end to end: images box pulled from the loopback registries, pushed by box as
//! the unprivileged test user, then read back by real clients: `skopeo inspect`, `podman`
//! (pull and run), and box itself. The requests are counted, and faults injected, by the
//! fault proxy in front of a real registry.
//!
//! podman runs as root, with its own storage under the test's directory (overlay, which
//! root has on this kernel: an unprivileged podman would need subordinate ids of its own
//! and fuse-overlayfs or vfs), no network and explicit ulimits (podman raises nofile and
//! nproc by default, which needs CAP_SYS_RESOURCE, and the test machines may not grant
//! it). Its check is read-only: what box pushed is what podman runs.
//!
//! Decisions these tests pin down:
//! - a blob the store does not have (an older box kept only the unpacked layer) is fetched
//!   from the image's registry when the destination needs its bytes, and kept;
//! - the destination's tag is put last, so a killed push leaves no tag behind;
//! - a push with nothing new sends one HEAD (the tag's manifest) and nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::common::boxes::run_on_terminal_sized;
use crate::common::fixtures;
use crate::common::proxy::FaultKind;
use crate::common::registry::{AUTH_PASSWORD, AUTH_USER};
use crate::common::screen::render;
use crate::common::{
    Fault, FaultProxy, Fixture, Outcome, PushedImage, Registry, TestEnv, User, hex_of, sha256,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// `box ARGS` that must succeed, quietly (no terminal: no animation).
#[track_caller]
fn ok(env: &TestEnv, args: &[&str]) -> Outcome {
    let out = env.run(args);
    out.success().no_animation();
    assert!(
        !out.stderr.contains("box: error"),
        "a successful command printed an error:\n{out}"
    );
    out
}

/// `box push ARGS` that must succeed; its stdout is the manifest digest.
#[track_caller]
fn push(env: &TestEnv, args: &[&str]) -> Outcome {
    let mut all = vec!["push"];
    all.extend(args);
    let out = ok(env, &all);
    assert!(
        out.stdout.trim().starts_with("sha256:"),
        "push prints the digest:\n{out}"
    );
    out
}

/// A fresh environment for the test user with `image` pulled.
fn env_with(name: &str, image: &str) -> TestEnv {
    let env = TestEnv::new(name, User::BoxTest);
    ok(&env, &["pull", image]);
    env
}

/// The store's file of a blob.
fn blob_file(env: &TestEnv, digest: &str) -> PathBuf {
    env.store().join("blobs/sha256").join(hex_of(digest))
}

/// `skopeo inspect` of a reference on a loopback registry, with `credentials` if given.
#[track_caller]
fn skopeo_inspect(reference: &str, credentials: Option<(&str, &str)>) -> Value {
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--tls-verify=false"]);
    if let Some((user, password)) = credentials {
        command.arg("--creds").arg(format!("{user}:{password}"));
    }
    let out = command
        .arg(format!("docker://{reference}"))
        .output()
        .expect("running skopeo (run sudo tests/run to install it)");
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("skopeo inspect prints JSON")
}

/// Assert that skopeo sees exactly `image` (manifest digest and layers) at `reference`.
#[track_caller]
fn assert_same_image(reference: &str, image: &PushedImage, credentials: Option<(&str, &str)>) {
    let inspected = skopeo_inspect(reference, credentials);
    assert_eq!(inspected["Digest"], image.digest.as_str(), "{inspected:#}");
    let layers: Vec<&str> = image.layers.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        inspected["Layers"],
        serde_json::json!(layers),
        "{inspected:#}"
    );
}

/// The digest the registry's tag `repo:tag` names (asked directly, not through a proxy),
/// or `None` when there is no such tag.
fn tag_digest(registry: &Registry, repo: &str, tag: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent
        .head(format!("{}/v2/{repo}/manifests/{tag}", registry.url()))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        );
    if let Some(authorization) = registry.push_authorization(repo) {
        request = request.header("Authorization", authorization);
    }
    let response = request.call().expect("asking the registry for a manifest");
    match response.status().as_u16() {
        200 => response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        404 => None,
        other => panic!("HEAD manifest {repo}:{tag}: {other}"),
    }
}

/// The requests the proxy saw, as `METHOD path` lines.
fn requests(proxy: &FaultProxy) -> Vec<String> {
    proxy
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

/// `auths` of a docker config.json with one entry.
fn auth_json(host: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#)
}

/// podman as root with its own storage in `dir` (see the module doc).
struct Podman {
    dir: PathBuf,
    /// Its run root: podman wants a path of at most 50 characters there.
    run: tempfile::TempDir,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        std::fs::create_dir_all(dir).unwrap();
        Podman {
            dir: dir.to_owned(),
            run: tempfile::Builder::new()
                .prefix("box-podman-")
                .tempdir_in("/tmp")
                .expect("creating podman's run root"),
        }
    }

    /// `podman run --rm REFERENCE ARGS...`: its stdout, or a panic with its stderr.
    #[track_caller]
    fn run(&self, reference: &str, args: &[&str]) -> String {
        let out = Command::new("podman")
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.run.path().join("run"))
            .arg("--tmpdir")
            .arg(self.run.path().join("tmp"))
            .args([
                "--storage-driver",
                "overlay",
                "--events-backend",
                "none",
                "run",
                "--rm",
                "--quiet",
                "--network",
                "none",
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
                "--tls-verify=false",
                reference,
            ])
            .args(args)
            .env("HOME", &self.dir)
            .output()
            .expect("running podman (run sudo tests/run to install it)");
        assert!(
            out.status.success(),
            "podman run {reference} {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Whatever podman left mounted under its storage goes before the test's
        // directory is removed.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut inside: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| {
                Path::new(m).starts_with(&self.dir) || Path::new(m).starts_with(self.run.path())
            })
            .collect();
        inside.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in inside {
            let _ = Command::new("umount").args(["-l", mount]).status();
        }
    }
}

// ---------------------------------------------------------------------------------------
// What box pushes, real clients read
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn podman_runs_and_skopeo_inspects_what_box_pushed() {
    let source = Fixture::Multilayer.push(Registry::plain()).image;
    let env = env_with("push_podman", &source.reference);
    let destination = Registry::mirror().reference("tests/push-podman", "v1");
    let out = push(&env, &[&source.reference, &destination]);
    assert_eq!(
        out.stdout.trim(),
        source.digest,
        "the same manifest:\n{out}"
    );
    out.stderr_has(&format!("pushed {}", source.reference))
        .stderr_has("4 blobs sent");
    // Byte for byte what was pulled: skopeo sees the digests the registry served.
    assert_same_image(&destination, &source, None);
    let podman = Podman::new(&env.dir.join("podman"));
    let shown = podman.run(
        &destination,
        &[
            "/bin/sh",
            "-c",
            "cat /data/becomes-file; echo /data/opaque/*; test -e /etc/deleteme || echo deleted; \
             cat /data/www/index.html",
        ],
    );
    assert_eq!(
        shown, "now a file\n/data/opaque/new\ndeleted\n<p>owned by www-data</p>\n",
        "podman ran the pushed image with every layer applied"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn blobs_go_in_one_put_or_in_chunks() {
    let registry = Registry::plain();
    let source = Fixture::Busybox.push(registry).image;
    let env = env_with("push_chunks", &source.reference);
    let layer = &source.layers[0].0;
    let layer_size = std::fs::metadata(blob_file(&env, layer)).unwrap().len();
    let proxy = FaultProxy::start(&registry.host);

    // Monolithic: a POST and a PUT with the digest per blob, no PATCH.
    let whole = proxy.reference("tests/push-whole", "1");
    push(&env, &[&source.reference, &whole]);
    let log = requests(&proxy);
    assert_eq!(proxy.count(Some("POST"), "/blobs/uploads/"), 2, "{log:#?}");
    assert_eq!(
        proxy.count(Some("PUT"), &format!("digest={layer}")),
        1,
        "{log:#?}"
    );
    assert_eq!(proxy.count(Some("PATCH"), ""), 0, "{log:#?}");
    // The manifest last.
    assert!(
        log.last()
            .unwrap()
            .starts_with("PUT /v2/tests/push-whole/manifests/1"),
        "{log:#?}"
    );
    assert_same_image(&whole, &source, None);

    // Chunked: the layer in 256 KiB PATCHes, the config (smaller) in one PUT.
    proxy.reset_counts();
    let chunked = proxy.reference("tests/push-chunked", "1");
    push(&env, &["--chunk-size", "256K", &source.reference, &chunked]);
    let log = requests(&proxy);
    let chunks = layer_size.div_ceil(256 << 10) as usize;
    assert!(chunks > 1, "the layer must be larger than a chunk");
    assert_eq!(
        proxy.count(Some("PATCH"), "/blobs/uploads/"),
        chunks,
        "{log:#?}"
    );
    assert_eq!(
        proxy.count(Some("PUT"), &format!("digest={layer}")),
        1,
        "{log:#?}"
    );
    assert_same_image(&chunked, &source, None);

    // Box reads both back, and unpacks the same layer.
    let reader = TestEnv::new("push_chunks_reader", User::BoxTest);
    for reference in [&whole, &chunked] {
        let out = ok(&reader, &["pull", reference]);
        assert_eq!(out.stdout.trim(), source.digest);
    }
    assert_eq!(reader.layer_dirs(), [hex_of(&source.layers[0].1)]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_push_with_nothing_new_sends_one_head_request() {
    let registry = Registry::plain();
    let source = Fixture::Multilayer.push(registry).image;
    let env = env_with("push_nothing_new", &source.reference);
    let proxy = FaultProxy::start(&registry.host);
    let destination = proxy.reference("tests/push-again", "1");
    push(&env, &[&source.reference, &destination]);

    proxy.reset_counts();
    let out = push(&env, &[&source.reference, &destination]);
    out.stderr_has("up to date");
    assert_eq!(
        requests(&proxy),
        ["HEAD /v2/tests/push-again/manifests/1"],
        "only the tag's manifest is asked for"
    );

    // Another tag of the same repository: the registry has the manifest, so only the tag
    // is put; no blob is asked for.
    proxy.reset_counts();
    push(
        &env,
        &[&source.reference, &proxy.reference("tests/push-again", "2")],
    );
    let log = requests(&proxy);
    assert_eq!(
        log,
        [
            "HEAD /v2/tests/push-again/manifests/2".to_owned(),
            format!("HEAD /v2/tests/push-again/manifests/{}", source.digest),
            "PUT /v2/tests/push-again/manifests/2".to_owned(),
        ]
    );
    assert_eq!(
        tag_digest(registry, "tests/push-again", "2").as_deref(),
        Some(source.digest.as_str())
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_image_is_named_as_box_images_shows_it() {
    let source = Fixture::Busybox.push(Registry::plain()).image;
    let env = env_with("push_names", &source.reference);
    // A short digest, and a destination in docker:// form.
    let destination = Registry::mirror().reference("tests/push-by-digest", "1");
    let short = &hex_of(&source.digest)[..12];
    push(&env, &[short, &format!("docker://{destination}")]);
    assert_same_image(&destination, &source, None);
    // No destination: back where it came from (nothing new there).
    push(&env, &[&source.reference]).stderr_has("up to date");
    env.run(&["push", "nosuch/image:1", &destination])
        .box_error(&["no image", "nosuch/image"]);
    env.run(&["push", &source.reference, "Not A Reference"])
        .box_error(&["invalid image reference"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn progress_bars_are_drawn_on_a_terminal_only() {
    const COLUMNS: u16 = 200;
    let source = Fixture::Busybox.push(Registry::plain()).image;
    let env = env_with("push_terminal", &source.reference);
    let destination = Registry::mirror().reference("tests/push-terminal", "1");
    let (status, shown) = run_on_terminal_sized(
        &env,
        &["push", &source.reference, &destination],
        &[],
        Duration::ZERO,
        Some((COLUMNS, 50)),
    );
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains('\x1b'),
        "no progress bars were drawn:\n{shown:?}"
    );
    let screen = render(&shown, COLUMNS.into());
    assert!(
        screen.iter().any(|l| l.starts_with("box: pushed ")),
        "{}",
        screen.join("\n")
    );
    assert!(
        !screen.iter().any(|l| l.contains("B/s")),
        "pieces of progress bars are left on screen:\n{}",
        screen.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn blobs_are_mounted_from_another_repository_of_the_registry() {
    let registry = Registry::plain();
    let source = Fixture::Busybox.push(registry).image;
    let proxy = FaultProxy::start(&registry.host);
    // Pulled through the proxy: the store knows the image as one of that registry's.
    let env = env_with("push_mount", &proxy.reference(&source.repo, "latest"));
    proxy.reset_counts();
    let destination = proxy.reference("tests/push-mounted", "1");
    let out = push(
        &env,
        &[&proxy.reference(&source.repo, "latest"), &destination],
    );
    out.stderr_has("2 mounted");
    let log = requests(&proxy);
    assert_eq!(
        proxy.count(
            Some("POST"),
            &format!(
                "/blobs/uploads/?mount={}&from={}",
                source.layers[0].0, source.repo
            )
        ),
        1,
        "{log:#?}"
    );
    assert_eq!(proxy.count(Some("PUT"), "/blobs/uploads/"), 0, "{log:#?}");
    assert_same_image(&destination, &source, None);

    // A mount refused (403: no read access to the source) falls back to an upload.
    proxy.reset_counts();
    proxy.inject(Fault::new(FaultKind::Refuse(403), "mount=").method("POST"));
    let destination = proxy.reference("tests/push-mount-refused", "1");
    push(
        &env,
        &[&proxy.reference(&source.repo, "latest"), &destination],
    )
    .stderr_has("2 blobs sent");
    let log = requests(&proxy);
    assert_eq!(proxy.count(Some("PUT"), "/blobs/uploads/"), 2, "{log:#?}");
    assert_same_image(&destination, &source, None);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_mount_the_registry_declines_goes_on_as_an_upload_in_its_session() {
    let registry = Registry::plain();
    let repo = "tests/push-mount-gone-source";
    let source = fixtures::busybox().push(registry, repo, "latest");
    let proxy = FaultProxy::start(&registry.host);
    let env = env_with("push_mount_declined", &proxy.reference(repo, "latest"));
    // The source repository loses the layer: the registry declines the mount with 202
    // and an upload session.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let layer = &source.layers[0].0;
    let deleted = agent
        .delete(format!("{}/v2/{repo}/blobs/{layer}", registry.url()))
        .call()
        .unwrap();
    assert_eq!(deleted.status(), 202, "deleting the source's layer");
    proxy.reset_counts();
    let destination = proxy.reference("tests/push-mount-declined", "1");
    push(&env, &[&proxy.reference(repo, "latest"), &destination]);
    let log = requests(&proxy);
    // One POST for the layer (the mount), its bytes sent to the session it opened.
    assert_eq!(
        proxy.count(Some("POST"), &format!("mount={layer}")),
        1,
        "{log:#?}"
    );
    assert_eq!(proxy.count(Some("POST"), "/blobs/uploads/"), 2, "{log:#?}");
    assert_eq!(
        proxy.count(Some("PUT"), &format!("digest={layer}")),
        1,
        "{log:#?}"
    );
    assert_same_image(&destination, &source, None);
}

// ---------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn basic_auth_registries_take_the_credentials_pull_uses() {
    let source = Fixture::Busybox.push(Registry::plain()).image;
    let registry = Registry::authed();
    let env = env_with("push_basic_auth", &source.reference);
    let destination = registry.reference("tests/push-basic", "1");
    env.run(&["push", &source.reference, &destination])
        .box_error(&[
            "requires authentication to push",
            &registry.host,
            "tests/push-basic",
            "podman login",
        ]);
    let config = env.home.join(".docker/config.json");
    env.write_user_file(
        &config,
        auth_json(&registry.host, AUTH_USER, "wrong-password"),
        0o600,
    );
    let out = env.run(&["push", &source.reference, &destination]);
    out.box_error(&["refused", AUTH_USER, "tests/push-basic"]);
    assert!(!out.stderr.contains("wrong-password"), "{out}");
    assert_eq!(tag_digest(registry, "tests/push-basic", "1"), None);

    env.write_user_file(
        &config,
        auth_json(&registry.host, AUTH_USER, AUTH_PASSWORD),
        0o600,
    );
    let out = push(&env, &[&source.reference, &destination]);
    assert!(!out.stderr.contains(AUTH_PASSWORD), "{out}");
    assert_same_image(&destination, &source, Some((AUTH_USER, AUTH_PASSWORD)));
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn token_registries_grant_push_to_the_credentials_and_pull_on_the_mount_source() {
    let registry = Registry::token_auth();
    let service = registry.token_service.unwrap();
    let source_repo = "library/bb-push-source";
    let source = fixtures::busybox().push(registry, source_repo, "latest");
    let env = env_with("push_token", &source.reference);
    let repository = "tests/push-token";
    let destination = registry.reference(repository, "1");

    // Anonymous: a token without push, which the registry refuses.
    env.run(&["push", &source.reference, &destination])
        .box_error(&[
            "requires authentication to push",
            repository,
            "podman login",
        ]);
    assert_eq!(tag_digest(registry, repository, "1"), None);

    env.write_user_file(
        &env.runtime_dir.join("containers/auth.json"),
        auth_json(&registry.host, AUTH_USER, AUTH_PASSWORD),
        0o600,
    );
    push(&env, &[&source.reference, &destination]).stderr_has("2 mounted");
    let last = service.requests_for(repository).pop().unwrap();
    assert_eq!(
        last.scopes,
        [
            format!("repository:{repository}:pull,push"),
            format!("repository:{source_repo}:pull"),
        ],
        "{last:?}"
    );
    assert_eq!(last.user.as_deref(), Some(AUTH_USER));
    assert_eq!(last.status, 200);
    assert_same_image(&destination, &source, Some((AUTH_USER, AUTH_PASSWORD)));
}

// ---------------------------------------------------------------------------------------
// Interruptions and refusals
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_push_killed_mid_upload_leaves_no_tag_and_the_next_push_succeeds() {
    let registry = Registry::plain();
    let source = Fixture::Busybox.push(registry).image;
    let env = env_with("push_killed", &source.reference);
    let proxy = FaultProxy::start(&registry.host);
    let repo = "tests/push-killed";
    let destination = proxy.reference(repo, "1");
    let layer = &source.layers[0].0;
    // The layer's upload reaches the proxy and is never answered.
    proxy.inject(Fault::new(FaultKind::Hold, &format!("digest={layer}")).method("PUT"));
    let args: [&str; 3] = ["push", &source.reference, &destination];
    let child = env.spawn(&args);
    let config_put = format!("digest={}", source.config_digest);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Killed once the layer is held and the config was sent (the proxy passes on what it
    // read whole, whatever becomes of its client).
    while !proxy.wait_for_stall(Duration::from_millis(100))
        || proxy.count(Some("PUT"), &config_put) == 0
    {
        assert!(
            Instant::now() < deadline,
            "box never sent the layer:\n{}",
            proxy.log()
        );
    }
    // Mid-push: no tag.
    assert_eq!(tag_digest(registry, repo, "1"), None);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = env.wait(&args, child);
    assert_eq!(TestEnv::signalled(&out), Some(9), "{out}");
    assert_eq!(tag_digest(registry, repo, "1"), None, "{}", proxy.log());

    proxy.clear_faults();
    proxy.reset_counts();
    push(&env, &args[1..]);
    assert_eq!(
        tag_digest(registry, repo, "1").as_deref(),
        Some(source.digest.as_str())
    );
    assert_same_image(&destination, &source, None);
    // What the killed push had sent stays: the config is not sent again.
    assert_eq!(proxy.count(Some("PUT"), &config_put), 0, "{}", proxy.log());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_broken_upload_starts_again_from_its_post() {
    let registry = Registry::plain();
    let source = Fixture::Busybox.push(registry).image;
    let env = env_with("push_restart", &source.reference);
    let proxy = FaultProxy::start(&registry.host);
    // The first chunk of the layer fails once (the config is smaller than a chunk).
    proxy.inject(
        Fault::new(FaultKind::ServerError, "/blobs/uploads/")
            .method("PATCH")
            .times(1),
    );
    let destination = proxy.reference("tests/push-restart", "1");
    push(
        &env,
        &["--chunk-size", "256K", &source.reference, &destination],
    );
    // Between the failed PATCH and the next one: a HEAD of the layer, then a POST for a
    // new session (the config's requests may come in between: it goes in parallel).
    let seen = proxy.seen();
    let failed = seen
        .iter()
        .position(|s| s.fault.is_some())
        .expect("the fault was applied");
    let next_patch = failed
        + 1
        + seen[failed + 1..]
            .iter()
            .position(|s| s.method == "PATCH")
            .expect("the upload went on");
    let between = &seen[failed + 1..next_patch];
    let head = between
        .iter()
        .position(|s| s.method == "HEAD" && s.path.ends_with(&source.layers[0].0));
    let post = between.iter().rposition(|s| s.method == "POST");
    assert!(
        matches!((head, post), (Some(h), Some(p)) if h < p),
        "after a failed PATCH, a HEAD then a new session, not the PATCH again:\n{}",
        proxy.log()
    );
    assert_ne!(seen[next_patch].path, seen[failed].path, "a new session");
    assert_same_image(&destination, &source, None);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn refusals_say_what_to_do() {
    let registry = Registry::plain();
    let source = Fixture::Busybox.push(registry).image;
    let env = env_with("push_refused", &source.reference);
    let proxy = FaultProxy::start(&registry.host);
    let uploads = "/blobs/uploads/";
    let refused = |repo: &str, fault: Fault, extra: &[&str], needles: &[&str]| {
        proxy.clear_faults();
        proxy.inject(fault);
        let destination = proxy.reference(repo, "1");
        let mut args = vec!["push"];
        args.extend(extra);
        args.extend([source.reference.as_str(), destination.as_str()]);
        let out = env.run(&args);
        out.box_error(needles).no_animation();
        out.stderr_has(&proxy.host).stderr_has(repo);
        assert_eq!(tag_digest(registry, repo, "1"), None, "{out}");
        out
    };
    refused(
        "tests/push-denied",
        Fault::new(FaultKind::Refuse(403), uploads).method("POST"),
        &[],
        &["denied", "may push", "podman login"],
    );
    refused(
        "tests/push-no-repo",
        Fault::new(FaultKind::Refuse(404), uploads).method("POST"),
        &[],
        &["has no repository", "repository name"],
    );
    refused(
        "tests/push-too-large",
        Fault::new(FaultKind::BodyLimit(128 << 10), uploads),
        &[],
        &["413", "too large", "client_max_body_size", "--chunk-size"],
    );
    refused(
        "tests/push-chunk-too-large",
        Fault::new(FaultKind::BodyLimit(128 << 10), uploads),
        &["--chunk-size", "512K"],
        &["413", "smaller --chunk-size"],
    );
    let out = refused(
        "tests/push-down",
        Fault::new(FaultKind::Refuse(503), uploads).method("POST"),
        &[],
        &["503", "try again"],
    );
    // Retried under the policy (five attempts), each from its POST.
    assert_eq!(
        proxy.count(Some("POST"), "tests/push-down/blobs/uploads/"),
        5 * 2,
        "{out}\n{}",
        proxy.log()
    );

    // Under the limit, chunks pass.
    proxy.clear_faults();
    proxy.inject(Fault::new(FaultKind::BodyLimit(128 << 10), uploads));
    let destination = proxy.reference("tests/push-under-limit", "1");
    push(
        &env,
        &["--chunk-size", "100K", &source.reference, &destination],
    );
    assert_same_image(&destination, &source, None);
}

// ---------------------------------------------------------------------------------------
// The store's copy
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_layer_blob_the_store_lacks_is_fetched_from_the_image_registry() {
    let registry = Registry::plain();
    let source = Fixture::Busybox.push(registry).image;
    let proxy = FaultProxy::start(&registry.host);
    let pulled_as = proxy.reference(&source.repo, "latest");
    let env = env_with("push_fetch", &pulled_as);
    // As a box older than the blob store left it: the layer unpacked, its blob gone.
    let layer = &source.layers[0].0;
    let file = blob_file(&env, layer);
    std::fs::remove_file(&file).unwrap();
    let destination = Registry::mirror().reference("tests/push-fetched", "1");

    // The registry cannot serve it: a clear error, and no tag.
    proxy.inject(Fault::new(FaultKind::NotFound, &format!("/blobs/{layer}")).method("GET"));
    env.run(&["push", &pulled_as, &destination]).box_error(&[
        "is not in the store",
        layer,
        &proxy.host,
        "box rmi",
    ]);
    assert_eq!(
        tag_digest(Registry::mirror(), "tests/push-fetched", "1"),
        None
    );
    assert!(!file.exists());

    proxy.clear_faults();
    proxy.reset_counts();
    push(&env, &[&pulled_as, &destination]);
    assert_eq!(proxy.blob_gets(layer), 1, "{}", proxy.log());
    assert_same_image(&destination, &source, None);
    // Kept, verified, as pull keeps it.
    assert_eq!(sha256(&std::fs::read(&file).unwrap()), *layer);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_corrupt_blob_in_the_store_is_named() {
    let source = Fixture::Busybox.push(Registry::plain()).image;
    let env = env_with("push_corrupt", &source.reference);
    let layer = &source.layers[0].0;
    let file = blob_file(&env, layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&file, bytes).unwrap();
    let destination = Registry::mirror().reference("tests/push-corrupt", "1");
    env.run(&["push", &source.reference, &destination])
        .box_error(&["corrupt", &hex_of(layer)[..12], "box rmi"]);
    assert_eq!(
        tag_digest(Registry::mirror(), "tests/push-corrupt", "1"),
        None
    );
}
