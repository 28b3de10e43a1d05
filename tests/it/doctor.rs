//! `box doctor` on this host as the test users: healthy, then each thing it checks made to
//! fail for real (no subordinate ids, a `newuidmap` without its setuid bit first in
//! `PATH`, user namespaces switched off by the sysctl inside a user namespace of the
//! test's own, a malformed registries.conf, a damaged store), each with its fix on its
//! line and the exit status (1 when something blocks box, 0 when box works with less);
//! and the hint of a command that fails for such a reason names `box doctor`.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::boxes::{Boxes, box_from, ok};
use crate::common::{Fixture, Outcome, Registry, TestEnv, User, box_bin};

/// The check named `name` of `box doctor --json`.
fn check<'a>(checks: &'a Value, name: &str) -> &'a Value {
    checks
        .as_array()
        .expect("an array")
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:#}"))
}

/// The line of check `name` in the text output.
fn line<'a>(out: &'a Outcome, name: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn doctor_on_a_healthy_host_says_ok_and_exits_0() {
    let env = TestEnv::new("doctor-healthy", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "dev");
    let out = env.run(&["doctor"]);
    out.success();
    for name in [
        "subordinate-ids",
        "newuidmap",
        "newgidmap",
        "id-mapping",
        "user-namespaces",
        "apparmor",
        "mounts",
        "overlayfs",
        "fake-root",
        "runtime-dir",
        "registries",
        "credentials",
        "store",
    ] {
        assert!(
            line(&out, name).starts_with("ok "),
            "{name} is not ok:\n{out}"
        );
    }
    assert!(line(&out, "subordinate-ids").contains("uids 100000-165535 (65536 ids)"));
    assert!(
        line(&out, "store").contains("1 images and 1 boxes, all whole"),
        "{out}"
    );
    let json = env.run(&["doctor", "--json"]);
    json.success();
    let checks = json.json();
    for c in checks.as_array().unwrap() {
        assert!(
            ["ok", "info", "warn"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(c["detail"].is_string() && c.get("fix").is_some(), "{c}");
    }
    // The probe left nothing behind in the store.
    let tmp: Vec<_> = std::fs::read_dir(env.store().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

/// The ranges of every line of /etc/subuid and /etc/subgid, as (start, end).
fn taken_ranges() -> Vec<(u64, u64)> {
    ["/etc/subuid", "/etc/subgid"]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(':').skip(1);
                    let start: u64 = f.next()?.parse().ok()?;
                    let count: u64 = f.next()?.parse().ok()?;
                    Some((start, start + count))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `--add-subuids A-B --add-subgids A-B`: the range, checked to overlap no other user's.
#[track_caller]
fn free_range_in(text: &str) -> String {
    let at = text
        .find("--add-subuids ")
        .unwrap_or_else(|| panic!("no usermod command in {text}"));
    let range = text[at + "--add-subuids ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        text.contains(&format!("--add-subgids {range}")),
        "the uid and gid ranges differ: {text}"
    );
    let (a, b) = range.split_once('-').unwrap();
    let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    assert_eq!(b - a + 1, 65536, "{range}");
    for (start, end) in taken_ranges() {
        assert!(
            end <= a || b < start,
            "{range} overlaps the range {start}-{} of another user",
            end - 1
        );
    }
    range
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn without_subordinate_ids_doctor_warns_with_a_free_range_and_box_gives_the_same() {
    let env = TestEnv::new("doctor-nosub", User::BoxNoSub);
    let out = env.run(&["doctor"]);
    // box works without them (your own id only): a warning, not a failure.
    out.success();
    let ids = line(&out, "subordinate-ids");
    assert!(ids.starts_with("warn "), "{out}");
    assert!(ids.contains("no subordinate ids for boxnosub"), "{ids}");
    assert!(ids.contains("sudo usermod --add-subuids"), "{ids}");
    assert!(ids.ends_with("boxnosub` (a range no other user has), then remove your boxes and images and pull again"), "{ids}");
    let range = free_range_in(ids);
    // box's own notice gives the same range.
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    let pulled = ok(&env, &["pull", &reference]);
    assert_eq!(free_range_in(&pulled.stderr), range, "{pulled}");
    assert!(!pulled.stderr.contains("100000-165535") || range == "100000-165535");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_newuidmap_without_setuid_fails_doctor_and_the_pull_hint_names_doctor() {
    let mut env = TestEnv::new("doctor-nosetuid", User::BoxTest);
    // A copy without the setuid bit, first in PATH.
    let dir = env.dir.join("helpers");
    std::fs::create_dir(&dir).unwrap();
    for helper in ["newuidmap", "newgidmap"] {
        std::fs::copy(format!("/usr/bin/{helper}"), dir.join(helper)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("newuidmap"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("newgidmap"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set_env(
        "PATH",
        format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display()),
    );
    let out = env.run(&["doctor"]);
    out.status(1);
    let helper = line(&out, "newuidmap");
    assert!(helper.starts_with("FAIL "), "{out}");
    assert!(
        helper.contains(&format!(
            "{}/newuidmap is neither setuid root nor has the file capability cap_setuid",
            dir.display()
        )),
        "{helper}"
    );
    assert!(
        helper.contains(&format!(
            "fix: `sudo chmod u+s {}/newuidmap`",
            dir.display()
        )),
        "{helper}"
    );
    assert!(line(&out, "id-mapping").starts_with("FAIL "), "{out}");
    // The kernel still allows user namespaces: said separately.
    assert!(line(&out, "user-namespaces").starts_with("ok "), "{out}");
    out.stdout_has("problems keep box from working on this host");
    // --json says the same.
    let json = env.run(&["doctor", "--json"]);
    json.status(1);
    assert_eq!(check(&json.json(), "newuidmap")["status"], "fail");
    // A command failing on it ends its hint with box doctor.
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    let pulled = env.run(&["pull", &reference]);
    pulled.box_error(&["newuidmap"]);
    let hint = pulled
        .stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap();
    assert!(hint.contains("`box doctor`"), "{pulled}");
}

/// Run `box ARGS` as the environment's user inside a user namespace of the test's own
/// (all ids mapped to themselves) whose `user.max_user_namespaces` is 0: what the sysctl
/// does on a host, without touching the host's (the limit is per user namespace and
/// binds the namespaces below).
fn run_with_user_namespaces_off(env: &TestEnv, args: &[&str]) -> Outcome {
    // The shell unshare starts runs before the maps exist, so its exec dropped every
    // capability (its uid was not root in the namespace then): once the test process
    // has written the maps, a second exec makes it the namespace's root.
    const SCRIPT: &str = r#"
        while ! grep -q . /proc/self/uid_map; do sleep 0.01; done
        exec sh -c '
            uid=$1 gid=$2; shift 2
            echo 0 > /proc/sys/user/max_user_namespaces || exit 99
            exec setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"
        ' sh "$@"
    "#;
    let template = env.command(args);
    let child = Command::new("unshare")
        .args(["--user", "--", "sh", "-c", SCRIPT, "sh"])
        .arg(env.uid.to_string())
        .arg(env.gid.to_string())
        .arg(box_bin())
        .args(args)
        .env_clear()
        .envs(
            template
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .current_dir(&env.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running unshare (util-linux)");
    let pid = child.id();
    // The child has unshared once its user namespace differs from ours.
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_link(format!("/proc/{pid}/ns/user"))
        .ok()
        .as_ref()
        == Some(&ours)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "unshare did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for map in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{map}"), "0 0 1000000\n")
            .unwrap_or_else(|e| panic!("writing {map} of {pid}: {e}"));
    }
    let out = env.wait(args, child);
    assert_ne!(
        out.code(),
        Some(99),
        "could not set user.max_user_namespaces in the test's namespace:\n{out}"
    );
    out
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn with_user_namespaces_switched_off_doctor_fails_with_the_sysctl_to_set() {
    let env = TestEnv::new("doctor-sysctl", User::BoxTest);
    let out = run_with_user_namespaces_off(&env, &["doctor"]);
    out.status(1);
    let userns = line(&out, "user-namespaces");
    assert!(userns.starts_with("FAIL "), "{out}");
    assert!(
        userns.contains("user.max_user_namespaces is 0: no user namespace can be made"),
        "{userns}"
    );
    assert!(
        userns.contains("`sudo sysctl -w user.max_user_namespaces=15000`"),
        "{userns}"
    );
    assert!(userns.contains("/etc/sysctl.d/"), "{userns}");
    // The host's own setting is untouched.
    let host: u64 = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(host > 0);
    // A pull fails on it, and its hint names box doctor.
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    let pulled = run_with_user_namespaces_off(&env, &["pull", &reference]);
    pulled.box_error(&["unshare(CLONE_NEWUSER)", "`box doctor`"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_malformed_registries_conf_fails_doctor_with_its_file_and_line() {
    let env = TestEnv::new("doctor-registries", User::BoxTest);
    let conf = env.home.join(".config/containers/registries.conf");
    env.write_user_file(
        &conf,
        "unqualified-search-registries = [\"docker.io\"]\n[[registry]\nprefix = \"x\"\n",
        0o644,
    );
    let out = env.run(&["doctor"]);
    out.status(1);
    let registries = line(&out, "registries");
    assert!(registries.starts_with("FAIL "), "{out}");
    assert!(
        registries.contains(&conf.display().to_string()),
        "{registries}"
    );
    assert!(registries.contains("line 2"), "{registries}");
    assert!(registries.contains("; fix: "), "{registries}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_damaged_store_fails_doctor_with_what_to_do_for_each_part() {
    let env = TestEnv::new("doctor-store", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = box_from(&env, Fixture::Busybox, "dev");
    ok(
        &env,
        &["create", "--no-entry", "--image", &reference, "other"],
    );
    // A layer gone (as a full disk cleaned by hand would leave it), and a box record
    // that does not parse.
    let layers: Vec<_> = std::fs::read_dir(env.store().join("layers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    std::fs::remove_dir_all(&layers[0]).unwrap();
    // With the store's layers guarded (issue 19), the user sees a layer by its record in
    // layer-info/, written once the layer is in place: gone with it.
    let name = layers[0].file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::remove_file(env.store().join(format!("layer-info/{name}.json"))).unwrap();
    std::fs::write(env.store().join("containers/other/box.json"), "{ not json").unwrap();
    let out = env.run(&["doctor"]);
    out.status(1);
    let store = line(&out, "store");
    assert!(store.starts_with("FAIL "), "{out}");
    assert!(store.contains("lacks 1 of its 1 layers"), "{store}");
    assert!(
        store.contains(&format!("`box pull {reference}` fetches them again")),
        "{store}"
    );
    assert!(
        store.contains("`box rm --force other` removes the box"),
        "{store}"
    );
    let json = env.run(&["doctor", "--json"]);
    let store = check(&json.json(), "store").clone();
    assert_eq!(store["status"], "fail");
}
