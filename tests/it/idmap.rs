//! The id mapping end to end: it does not depend on `$PATH` (box started by systemd,
//! cron or `env -i` finds newuidmap/newgidmap in the usual directories), the single-id
//! fallback when the helpers are really missing, and what a store unpacked with another
//! mapping says.
//!
//! "Really missing" is made with a private mount namespace in which /dev/null is mounted
//! over every newuidmap/newgidmap of the machine, box then running as the test user.

use std::process::{Command, Stdio};

use crate::common::boxes::{Boxes, ok};
use crate::common::{Fixture, Outcome, Registry, TestEnv, User, box_bin};

/// Run `box ARGS` as the environment's user, with the environment's variables except
/// `PATH` (as `env -i HOME=$HOME box ...` would).
fn run_without_path(env: &TestEnv, args: &[&str]) -> Outcome {
    let mut command = env.command(args);
    command.env_remove("PATH");
    env.wait(args, command.spawn().expect("running box"))
}

/// Run `box ARGS` as the environment's user where newuidmap and newgidmap cannot be
/// found anywhere (see the module docs).
fn run_without_map_helpers(env: &TestEnv, args: &[&str]) -> Outcome {
    const HIDE: &str = r#"
        uid=$1 gid=$2; shift 2
        for dir in /usr/bin /usr/sbin /bin /sbin /usr/local/bin /usr/local/sbin; do
            for helper in newuidmap newgidmap; do
                if [ -e "$dir/$helper" ]; then
                    mount --bind /dev/null "$dir/$helper" || exit 99
                fi
            done
        done
        exec setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"
    "#;
    let template = env.command(args);
    let child = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            HIDE,
            "sh",
        ])
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
    env.wait(args, child)
}

/// The lines of the uid map a command in box `name` sees.
fn uid_map_lines(out: &Outcome) -> usize {
    out.stdout.lines().filter(|l| !l.trim().is_empty()).count()
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn without_path_box_still_finds_newuidmap_and_keeps_the_mapping() {
    let env = TestEnv::new("idmap-nopath", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    // The store's first mapping is recorded without PATH, the box is created with it, and
    // it runs either way: one mapping, whatever the environment.
    let pulled = run_without_path(&env, &["pull", &reference]);
    pulled.success();
    assert!(
        !pulled.stderr.contains("newuidmap"),
        "a pull without PATH fell back:\n{pulled}"
    );
    ok(
        &env,
        &["create", "--no-entry", "--image", &reference, "dev"],
    );
    let with_path = ok(
        &env,
        &["run", "dev", "--", "/bin/cat", "/proc/self/uid_map"],
    );
    assert_eq!(uid_map_lines(&with_path), 3, "not keep-id:\n{with_path}");
    ok(&env, &["stop", "dev"]);
    // The holder started without PATH too.
    let without = run_without_path(
        &env,
        &["run", "dev", "--", "/bin/cat", "/proc/self/uid_map"],
    );
    without.success();
    assert_eq!(without.stdout, with_path.stdout, "{without}");
    run_without_path(&env, &["run", "dev", "--", "/bin/sh", "-c", "id -u"])
        .success()
        .stdout_has(&env.uid.to_string());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn without_newuidmap_boxes_fall_back_to_a_single_id_and_say_so() {
    let env = TestEnv::new("idmap-nouidmap", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    let pulled = run_without_map_helpers(&env, &["pull", &reference]);
    pulled.success();
    let created = run_without_map_helpers(
        &env,
        &["create", "--no-entry", "--image", &reference, "single"],
    );
    created.success();
    let said = format!("{}{}", pulled.stderr, created.stderr);
    assert!(
        said.contains("newuidmap was found neither in $PATH nor in /usr/bin"),
        "no notice of the fallback:\n{pulled}\n{created}"
    );
    let out = run_without_map_helpers(
        &env,
        &["run", "single", "--", "/bin/cat", "/proc/self/uid_map"],
    );
    out.success();
    assert_eq!(uid_map_lines(&out), 1, "not single-id:\n{out}");
    run_without_map_helpers(&env, &["run", "single", "--", "/bin/sh", "-c", "id -u"])
        .success()
        .stdout_has(&env.uid.to_string());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_store_unpacked_with_subordinate_ids_says_newuidmap_is_missing_and_keeps_everything() {
    let env = TestEnv::new("idmap-changed", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    ok(
        &env,
        &["create", "--no-entry", "--image", &reference, "dev"],
    );
    let before = env.store_state();
    let out = run_without_map_helpers(&env, &["run", "dev", "--", "/bin/true"]);
    out.box_error(&[
        "was unpacked with the id mapping",
        "box maps only your own id now, because newuidmap was found neither in $PATH nor in /usr/bin",
        "nothing in the store needs to change",
    ]);
    assert!(
        !out.stderr.contains("box rm") && !out.stderr.contains("rmi"),
        "recommends deleting although only newuidmap is missing:\n{out}"
    );
    env.assert_store_unchanged(&before, &out);
    // With the helpers back, the same box runs as before.
    ok(&env, &["run", "dev", "--", "/bin/true"]);
}
