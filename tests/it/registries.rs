//! The containers registries configuration end to end, as the unprivileged test user:
//! mirrors (used first, and left for the origin when they fail), `location` rewrites,
//! blocked registries, short-name aliases and search registries, malformed files, and the
//! user's own `~/.config/containers/registries.conf`.
//!
//! Every test has repositories of its own under `regconf/` on the shared loopback
//! registries, and its configuration in its own home (named by
//! `CONTAINERS_REGISTRIES_CONF`, or the user's file): nothing is written to /etc, so the
//! tests run in parallel with the others.

use serde_json::Value;

use crate::common::boxes::list;
use crate::common::fixtures;
use crate::common::proxy::FaultKind;
use crate::common::registry::closed_port;
use crate::common::{Fault, FaultProxy, Outcome, Registry, TestEnv, User};

/// A test environment whose registries configuration is `text` (through
/// `CONTAINERS_REGISTRIES_CONF`); returns it with the file's path.
fn env_with_conf(name: &str, text: &str) -> (TestEnv, String) {
    let mut env = TestEnv::new(name, User::BoxTest);
    let path = env.home.join("conf/registries.conf");
    env.write_user_file(&path, text, 0o644);
    env.set_env("CONTAINERS_REGISTRIES_CONF", &path);
    let shown = path.display().to_string();
    (env, shown)
}

/// `box images --json` references and digests.
fn images(env: &TestEnv) -> Vec<(String, String)> {
    let out = env.run(&["images", "--json"]);
    out.success();
    match out.json() {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                (
                    i["reference"].as_str().unwrap_or_default().to_owned(),
                    i["digest"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        other => panic!("not an array: {other}"),
    }
}

#[track_caller]
fn pulled(out: &Outcome) {
    out.success().no_animation();
    assert!(!out.stderr.contains("box: error"), "{out}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_mirror_serves_first_and_the_image_keeps_the_name_asked_for() {
    // The image exists only in the mirror; the origin is a proxy that counts requests.
    let mirror = Registry::mirror();
    let pushed = fixtures::busybox().push(mirror, "regconf/mirrored/busybox", "latest");
    let origin = FaultProxy::start(&Registry::plain().host);
    let logical = format!("{}/regconf/only-in-mirror/busybox", origin.host);
    let (env, _) = env_with_conf(
        "regconf_mirror",
        &format!(
            "[[registry]]\nprefix = \"{0}/regconf/only-in-mirror\"\nlocation = \"{0}/regconf/only-in-mirror\"\n\
             [[registry.mirror]]\nlocation = \"{1}/regconf/mirrored\"\n",
            origin.host, mirror.host
        ),
    );
    let out = env.run(&["pull", &logical]);
    pulled(&out);
    out.stderr_has(&format!("from mirror {}", mirror.host));
    assert_eq!(
        origin.manifest_requests(),
        0,
        "the origin was asked:\n{out}"
    );
    assert_eq!(
        images(&env),
        [(format!("{logical}:latest"), pushed.digest.clone())],
        "the record must carry the name asked for, not the mirror's"
    );
    // A box made from it names the image the same way; a second pull is one request
    // (to the mirror) and finds it up to date.
    env.run(&["create", "--image", &logical, "mirrored", "--no-entry"])
        .success();
    let boxes = list(&env);
    assert_eq!(boxes[0]["image"], format!("{logical}:latest"), "{boxes:?}");
    env.run(&["pull", &logical])
        .success()
        .stderr_has("up to date");
    assert_eq!(origin.manifest_requests(), 0);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_failing_mirror_gives_way_to_the_origin_with_a_notice() {
    let plain = Registry::plain();
    let mirror = Registry::mirror();
    let pushed = fixtures::busybox().push(plain, "regconf/fallback/busybox", "latest");
    // Three mirrors, each failing in its own way: nobody listening, no such image (404),
    // a server error on every manifest (5xx).
    let broken = FaultProxy::start(&mirror.host);
    broken.inject(Fault::new(FaultKind::ServerError, "/manifests/"));
    let unreachable = format!("127.0.0.1:{}", closed_port());
    let (env, _) = env_with_conf(
        "regconf_fallback",
        &format!(
            "[[registry]]\nlocation = \"{plain}/regconf/fallback\"\n\
             [[registry.mirror]]\nlocation = \"{unreachable}/x\"\n\
             [[registry.mirror]]\nlocation = \"{mirror}/regconf/empty\"\n\
             [[registry.mirror]]\nlocation = \"{broken}/regconf/fallback\"\n",
            plain = plain.host,
            mirror = mirror.host,
            broken = broken.host,
        ),
    );
    let reference = format!("{}/regconf/fallback/busybox", plain.host);
    let out = env.run(&["pull", &reference]);
    pulled(&out);
    for failed in [
        format!("mirror {unreachable}/x/busybox failed"),
        format!("mirror {}/regconf/empty/busybox failed", mirror.host),
        format!("mirror {}/regconf/fallback/busybox failed", broken.host),
    ] {
        out.stderr_has(&failed);
    }
    out.stderr_has(&format!("trying {reference}"));
    assert!(!out.stderr.contains("from mirror"), "{out}");
    assert!(broken.manifest_requests() >= 1, "{out}");
    assert_eq!(
        images(&env),
        [(format!("{reference}:latest"), pushed.digest.clone())]
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_location_rewrite_pulls_from_elsewhere_under_the_same_name() {
    let plain = Registry::plain();
    let pushed = fixtures::busybox().push(plain, "regconf/rewrite/busybox", "1.0");
    let (env, _) = env_with_conf(
        "regconf_rewrite",
        &format!(
            "[[registry]]\nprefix = \"rewritten.example/team\"\nlocation = \"{}/regconf/rewrite\"\n",
            plain.host
        ),
    );
    pulled(&env.run(&["pull", "rewritten.example/team/busybox:1.0"]));
    assert_eq!(
        images(&env),
        [(
            "rewritten.example/team/busybox:1.0".to_owned(),
            pushed.digest.clone()
        )]
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_blocked_registry_is_refused_naming_the_file() {
    let plain = Registry::plain();
    fixtures::busybox().push(plain, "regconf/blocked/busybox", "latest");
    let (env, path) = env_with_conf(
        "regconf_blocked",
        &format!(
            "# a comment\n[[registry]]\nprefix = \"{0}/regconf/blocked\"\nlocation = \"{0}/regconf/blocked\"\nblocked = true\n",
            plain.host
        ),
    );
    let reference = format!("{}/regconf/blocked/busybox", plain.host);
    let before = env.store_state();
    let out = env.run(&["pull", &reference]);
    out.box_error(&[&format!("{path}:2"), "blocked", &reference]);
    env.assert_store_unchanged(&before, &out);
    env.run(&["create", "--image", &reference, "blocked", "--no-entry"])
        .box_error(&["blocked", &path]);
    // Outside the blocked prefix, the same registry still serves.
    let other = fixtures::busybox().push(plain, "regconf/open/busybox", "latest");
    pulled(&env.run(&["pull", &other.reference]));
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_short_name_alias_of_the_users_file_resolves_and_wins_over_the_catalogue() {
    let plain = Registry::plain();
    let pushed = fixtures::busybox().push(plain, "regconf/alias/busybox", "latest");
    let env = TestEnv::new("regconf_alias", User::BoxTest);
    // The user's own file, found without any variable.
    env.write_user_file(
        &env.home.join(".config/containers/registries.conf"),
        format!(
            "[aliases]\n\"regconf-tool\" = \"{0}/regconf/alias/busybox\"\n\"debian\" = \"{0}/regconf/alias/busybox\"\n",
            plain.host
        ),
        0o644,
    );
    let image = format!("{}/regconf/alias/busybox:latest", plain.host);
    pulled(&env.run(&["pull", "regconf-tool"]));
    assert_eq!(images(&env), [(image.clone(), pushed.digest.clone())]);
    // create: the alias names the image and the box.
    env.run(&["create", "--image", "regconf-tool", "--no-entry"])
        .success()
        .stdout_has(&format!("Created box regconf-tool from {image}"));
    // `debian` is box's catalogue's (docker.io/library/debian:stable) unless an alias says
    // otherwise, as it does here: the local image, no Docker Hub.
    env.run(&["create", "debian", "--no-entry"])
        .success()
        .stdout_has(&format!("Created box debian from {image}"));
    let boxes = list(&env);
    assert!(
        boxes.iter().all(|b| b["image"] == image.as_str()),
        "{boxes:?}"
    );
    // rmi: the alias names the image pulled through it.
    env.run(&["rm", "--yes", "regconf-tool", "debian"])
        .success();
    env.run(&["rmi", "regconf-tool"])
        .success()
        .stderr_has(&format!("removed {image}"));
    assert_eq!(images(&env), []);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn short_names_use_the_search_registries_in_order_or_are_refused_when_enforcing() {
    let plain = Registry::plain();
    let pushed = fixtures::busybox().push(plain, "regconf/search/busybox", "latest");
    let nobody = format!("127.0.0.1:{}", closed_port());
    let search = format!(
        "unqualified-search-registries = [\"{nobody}\", \"{}\"]\n",
        plain.host
    );
    let (env, path) = env_with_conf("regconf_search", &search);
    let out = env.run(&["pull", "regconf/search/busybox"]);
    pulled(&out);
    out.stderr_has("trying the next search registry");
    assert_eq!(
        images(&env),
        [(
            format!("{}/regconf/search/busybox:latest", plain.host),
            pushed.digest.clone()
        )]
    );

    // rmi: the short name is the image the search found.
    env.run(&["rmi", "regconf/search/busybox"])
        .success()
        .stderr_has(&format!(
            "removed {}/regconf/search/busybox:latest",
            plain.host
        ));
    assert_eq!(images(&env), []);

    env.write_user_file(
        std::path::Path::new(&path),
        format!("{search}short-name-mode = \"enforcing\"\n"),
        0o644,
    );
    env.run(&["pull", "regconf/search/busybox"]).box_error(&[
        "ambiguous",
        &format!("{nobody}/regconf/search/busybox:latest"),
        &path,
    ]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_malformed_file_is_an_error_naming_the_file_and_the_line() {
    let (env, path) = env_with_conf(
        "regconf_malformed",
        "unqualified-search-registries = [\"docker.io\"]\n\n[[registry]\nlocation = \"x.io\"\n",
    );
    let before = env.store_state();
    let out = env.run(&["pull", "127.0.0.1:1/x"]);
    out.box_error(&[&path, "line 3"]);
    env.assert_store_unchanged(&before, &out);
    // A value box checks itself: file:line.
    env.write_user_file(
        std::path::Path::new(&path),
        "[[registry]]\nlocation = \"x.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"sometimes\"\n",
        0o644,
    );
    env.run(&["create", "--image", "x.io/y", "y", "--no-entry"])
        .box_error(&[&format!("{path}:5"), "pull-from-mirror"]);
    // The file the variable names must exist.
    let mut env = env;
    env.set_env("CONTAINERS_REGISTRIES_CONF", env.home.join("nope.conf"));
    env.run(&["pull", "127.0.0.1:1/x"])
        .box_error(&["nope.conf", "does not exist"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_insecure_registry_that_speaks_no_tls_is_reached_over_plain_http() {
    // registries.conf's `insecure = true` tries HTTPS without verification first, as
    // podman does; the loopback registry answers no TLS, so plain HTTP it is.
    let plain = Registry::plain();
    let pushed = fixtures::busybox().push(plain, "regconf/insecure/busybox", "latest");
    let (env, _) = env_with_conf(
        "regconf_insecure",
        &format!(
            "[[registry]]\nlocation = \"{}/regconf/insecure\"\ninsecure = true\n",
            plain.host
        ),
    );
    pulled(&env.run(&["pull", &pushed.reference]));
    assert_eq!(
        images(&env),
        [(pushed.reference.clone(), pushed.digest.clone())]
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_invalid_reference_is_the_references_fault_not_the_aliases() {
    // An alias for `debian`, as the system's shortnames.conf has: a reference the user
    // mistyped is theirs to fix, not the file's.
    let (env, path) = env_with_conf(
        "regconf_bad_reference",
        "[aliases]\n\"debian\" = \"docker.io/library/debian\"\n",
    );
    for (typed, why) in [
        ("debian:foo bar", "white space"),
        ("debian@sha256:abc", "sha256"),
    ] {
        let out = env.run(&["pull", typed]);
        out.box_error(&[&format!("invalid image reference `{typed}`"), why]);
        assert!(!out.stderr.contains(&path), "{out}");
        assert!(!out.stderr.contains("alias"), "{out}");
    }
    // A URL: what is wrong is the scheme typed, whichever it is.
    for scheme in ["http", "https"] {
        let typed = format!("{scheme}://docker.io/library/debian");
        let out = env.run(&["pull", &typed]);
        out.box_error(&[&format!("drop the `{scheme}://`")]);
        if scheme == "http" {
            assert!(!out.stderr.contains("https://"), "{out}");
        }
    }
}
