//! Tests of the test harness itself, so that a failure of an end-to-end test points at box
//! and not at the infrastructure: the registries start and serve what was pushed, the fault
//! proxy counts and breaks what it is told to, the test users can run the binary.

use std::time::Duration;

use crate::common::fixtures;
use crate::common::proxy::FaultKind;
use crate::common::registry::{AUTH_PASSWORD, AUTH_USER};
use crate::common::{Fault, FaultProxy, Fixture, Registry, TestEnv, User, sha256};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

fn get(url: &str) -> (u16, Vec<u8>) {
    let response = agent().get(url).header("Accept", ACCEPT).call();
    match response {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .unwrap_or_default(),
        ),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn fixtures_push_and_the_registry_serves_them_by_digest() {
    let registry = Registry::plain();
    for fixture in [
        Fixture::Busybox,
        Fixture::BusyboxZstd,
        Fixture::Multilayer,
        Fixture::Multiplatform,
    ] {
        let pushed = fixture.push(registry).image;
        let (status, manifest) = get(&format!(
            "{}/v2/{}/manifests/latest",
            registry.url(),
            pushed.repo
        ));
        assert_eq!(status, 200, "{fixture:?}");
        assert_eq!(sha256(&manifest), pushed.digest, "{fixture:?}");
        for (digest, _) in &pushed.layers {
            let (status, blob) = get(&format!(
                "{}/v2/{}/blobs/{digest}",
                registry.url(),
                pushed.repo
            ));
            assert_eq!(status, 200);
            assert_eq!(&sha256(&blob), digest);
        }
    }
    // The multi-layer image shares busybox's layer.
    let busybox = Fixture::Busybox.push(registry).image;
    let multi = Fixture::Multilayer.push(registry).image;
    assert_eq!(busybox.layers[0], multi.layers[0]);
    assert_eq!(multi.layers.len(), 3);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_auth_registry_wants_credentials() {
    let registry = Registry::authed();
    let (status, _) = get(&format!("{}/v2/", registry.url()));
    assert_eq!(status, 401);
    let pushed = Fixture::Busybox.push(registry).image;
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{AUTH_USER}:{AUTH_PASSWORD}"));
    let response = agent()
        .get(format!(
            "{}/v2/{}/manifests/latest",
            registry.url(),
            pushed.repo
        ))
        .header("Accept", ACCEPT)
        .header("Authorization", format!("Basic {basic}"))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_token_registry_checks_every_token() {
    let registry = Registry::token_auth();
    let service = registry.token_service.unwrap();
    let repository = "harness/token-check";
    let pushed = fixtures::busybox().push(registry, repository, "latest");
    let manifest_url = format!("{}/v2/{repository}/manifests/latest", registry.url());
    let with_token = |token: &str| {
        agent()
            .get(&manifest_url)
            .header("Accept", ACCEPT)
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    };

    let response = agent().get(&manifest_url).call().unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(&service.realm),
        "{challenge}"
    );

    assert_eq!(with_token(&service.mint("t", repository, &["pull"])), 200);
    // A token for another repository, a tampered signature, a token without a signature.
    assert_eq!(
        with_token(&service.mint("t", "harness/other", &["pull"])),
        401
    );
    let token = service.mint("t", repository, &["pull"]);
    let (unsigned, signature) = token.rsplit_once('.').unwrap();
    let mut tampered = signature.as_bytes().to_vec();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{unsigned}.{}", String::from_utf8(tampered).unwrap());
    assert_eq!(with_token(&tampered), 401);
    assert_eq!(with_token(&format!("{unsigned}.")), 401);
    assert_eq!(pushed.layers.len(), 1);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_fault_proxy_counts_and_injects() {
    let registry = Registry::plain();
    let pushed = Fixture::Busybox.push(registry).image;
    let proxy = FaultProxy::start(&registry.host);
    let base = format!("http://{}/v2/{}", proxy.host, pushed.repo);
    let (digest, _) = &pushed.layers[0];

    let (status, blob) = get(&format!("{base}/blobs/{digest}"));
    assert_eq!((status, sha256(&blob)), (200, digest.clone()));
    assert_eq!(proxy.blob_gets(digest), 1);

    proxy.inject(Fault::new(FaultKind::CorruptByte, "/blobs/").times(1));
    let (status, blob) = get(&format!("{base}/blobs/{digest}"));
    assert_eq!(status, 200);
    assert_ne!(&sha256(&blob), digest, "the byte was not corrupted");

    proxy.inject(Fault::new(FaultKind::Truncate, "/blobs/").times(1));
    let (_, short) = get(&format!("{base}/blobs/{digest}"));
    assert_eq!(short.len(), blob.len() / 2);

    proxy.inject(Fault::new(FaultKind::ServerError, "/manifests/").times(1));
    let (status, body) = get(&format!("{base}/manifests/latest"));
    assert_eq!(status, 500);
    assert!(String::from_utf8_lossy(&body).contains("\"errors\""));
    proxy.inject(Fault::new(FaultKind::NotFound, "/manifests/").times(1));
    assert_eq!(get(&format!("{base}/manifests/latest")).0, 404);
    // Rules used up: requests pass again.
    assert_eq!(get(&format!("{base}/manifests/latest")).0, 200);
    assert_eq!(proxy.manifest_requests(), 3);

    proxy.inject(Fault::new(FaultKind::CloseMidBody, "/blobs/").times(1));
    let result = agent().get(format!("{base}/blobs/{digest}")).call();
    let complete = result
        .ok()
        .and_then(|mut r| {
            r.body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .ok()
        })
        .is_some_and(|b| b.len() == blob.len());
    assert!(!complete, "a body cut mid-way must not read as complete");

    proxy.inject(Fault::new(FaultKind::Stall, "/blobs/").times(1));
    let url = format!("{base}/blobs/{digest}");
    std::thread::spawn(move || {
        let _ = agent()
            .get(url)
            .call()
            .map(|mut r| r.body_mut().read_to_vec());
    });
    assert!(proxy.wait_for_stall(Duration::from_secs(10)));
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn test_users_run_the_binary_in_a_clean_environment() {
    for user in [User::BoxTest, User::BoxNoSub] {
        let env = TestEnv::new("harness_users", user);
        env.run(&["--help"]).success().no_animation();
        let meta = std::fs::metadata(&env.home).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((meta.uid(), meta.mode() & 0o777), (user.ids().0, 0o700));
    }
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap();
    assert!(
        subuid.lines().any(|l| l == "boxtest:100000:65536"),
        "{subuid}"
    );
    assert!(
        !subuid.lines().any(|l| l.starts_with("boxnosub:")),
        "{subuid}"
    );
    let subgid = std::fs::read_to_string("/etc/subgid").unwrap();
    assert!(
        subgid.lines().any(|l| l == "boxtest:100000:65536"),
        "{subgid}"
    );
    assert!(
        !subgid.lines().any(|l| l.starts_with("boxnosub:")),
        "{subgid}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_small_tmpfs_can_be_the_users_data_home() {
    let mut env = TestEnv::new("harness_tmpfs", User::BoxTest);
    let data = env.dir.join("small");
    env.mount_tmpfs(&data, "1m");
    let out = std::process::Command::new("df")
        .arg(&data)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("box-test"));
}

/// The registry must accept every lie the pull tests tell, or those tests would fail in
/// the push instead of testing box.
#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn deliberately_broken_images_are_accepted_by_the_registry() {
    use crate::common::Compression;
    use crate::common::ManifestFormat;
    use crate::common::oci::{Entry, Layer, push_index};
    use crate::pull::{push_with_layer, small_layer};

    let mut layer = small_layer(Compression::Gzip);
    layer.size_delta = 7;
    push_with_layer("harness-size", layer);
    let mut layer = small_layer(Compression::Gzip);
    layer.size_delta = -7;
    push_with_layer("harness-size", layer);
    let mut layer = small_layer(Compression::Gzip);
    layer.mangle = Some(|mut b| {
        b.truncate(b.len() / 2);
        b
    });
    push_with_layer("harness-truncated", layer);
    let mut layer = small_layer(Compression::Zstd);
    layer.diff_id_override = Some(sha256(b"x"));
    push_with_layer("harness-diffid", layer);
    let mut layer = small_layer(Compression::None);
    layer.media_type_override = Some("application/vnd.example.layer.v1.tar+lz4".into());
    push_with_layer("harness-mediatype", layer);
    let hostile = [
        Entry::raw_file("../x", "x"),
        Entry::raw_file("/abs", "x"),
        Entry::raw_file("a/../../x", "x"),
        Entry::raw_symlink("lnk", "/tmp"),
        Entry::raw_file("lnk/pwned", "x"),
        Entry::raw_hardlink("hl", "../../etc/passwd"),
        Entry::raw_file(".wh...", ""),
        Entry::raw_file("../.wh.x", ""),
        Entry::char_device("dev/null", 1, 3),
        Entry::block_device("dev/sda", 8, 0),
        Entry::fifo("fifo"),
    ];
    let image = push_with_layer("harness-hostile", Layer::new(&hostile, Compression::Gzip));
    // The raw names really are in the tar, unchecked.
    let layer = Layer::new(&hostile, Compression::None);
    let mut archive = tar::Archive::new(&layer.tar[..]);
    let names: Vec<Vec<u8>> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path_bytes().into_owned())
        .collect();
    assert!(names.contains(&b"../x".to_vec()) && names.contains(&b"/abs".to_vec()));
    assert_eq!(image.layers.len(), 2);

    let images = [
        crate::common::fixtures::platform_image(&crate::common::host_platform())
            .format(ManifestFormat::Docker),
        crate::common::fixtures::platform_image(&crate::common::other_platform())
            .format(ManifestFormat::Docker),
    ];
    push_index(
        Registry::plain(),
        "tests/harness-list",
        "latest",
        &images,
        ManifestFormat::Docker,
    );
}

/// The end-to-end fixture: the cached mmdebstrap tarball pushes as one gzip layer.
#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_debian_fixture_pushes() {
    let started = std::time::Instant::now();
    let pushed = Fixture::Debian.push(Registry::plain()).image;
    assert_eq!(pushed.layers.len(), 1);
    eprintln!("Debian fixture pushed in {:?}", started.elapsed());
}

/// The tests of this binary that run without root, and so carry no `#[ignore]`: every
/// other one is end-to-end.
const RUN_WITHOUT_ROOT: &[(&str, &str)] = &[
    (
        "generated.rs",
        "generated_man_pages_and_completions_are_current",
    ),
    (
        "harness.rs",
        "every_end_to_end_test_is_ignored_without_tests_run",
    ),
    (
        "harness.rs",
        "the_test_reader_sees_each_test_with_its_attributes",
    ),
];

/// The `#[test]` functions of a source file, each with the attributes between `#[test]`
/// and its `fn` line: (name, attributes).
fn tests_of(source: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let mut lines = source.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != "#[test]" {
            continue;
        }
        let mut attributes = Vec::new();
        for line in lines.by_ref() {
            if let Some(rest) = line.strip_prefix("fn ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push((name, attributes));
                break;
            }
            attributes.push(line.to_owned());
        }
    }
    found
}

/// A plain `cargo test` as an ordinary user must report the end-to-end tests ignored,
/// never passed without running: each carries the ignore attribute that `tests/run`
/// overrides with `--include-ignored`.
#[test]
fn every_end_to_end_test_is_ignored_without_tests_run() {
    let attribute = format!("#[ignore = \"{}\"]", crate::common::END_TO_END);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut seen = 0;
    let mut wrong = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        for (name, attributes) in tests_of(&source) {
            seen += 1;
            let without_root = RUN_WITHOUT_ROOT.contains(&(file.as_str(), name.as_str()));
            let ignored = attributes.contains(&attribute);
            if ignored == without_root {
                wrong.push(format!(
                    "{file}: {name} {}",
                    if without_root {
                        "runs without root but is ignored"
                    } else {
                        "lacks the end-to-end mark"
                    }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "every test of tests/it but those in RUN_WITHOUT_ROOT needs `{attribute}` after its \
         #[test]:\n{}",
        wrong.join("\n")
    );
    // The reader found the tests (over a hundred end-to-end ones), not nothing.
    assert!(seen > 100, "only {seen} tests found in {}", dir.display());
}

#[test]
fn the_test_reader_sees_each_test_with_its_attributes() {
    let source =
        "#[test]\n#[ignore = \"x\"]\nfn a() {}\n\n    #[test]\n    fn b_2() {\n}\nfn helper() {}\n";
    assert_eq!(
        tests_of(source),
        [
            ("a".to_owned(), vec!["#[ignore = \"x\"]".to_owned()]),
            ("b_2".to_owned(), vec![]),
        ]
    );
}
