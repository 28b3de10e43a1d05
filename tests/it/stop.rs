//! `box stop` end to end: the order of signals (SIGTERM, SIGHUP, SIGKILL at the end of
//! `--time`), data written by processes that are being stopped, and many boxes at once.
//! How fast stop is, is measured by `benches/verbs.sh`, not asserted here.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::boxes::{Boxes, box_from, ok, sh, status_of};
use crate::common::{Fixture, TestEnv, User};

/// Wait until `path` exists (what a process in the box writes once it is ready).
#[track_caller]
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn stop_sends_sigterm_then_sighup_then_sigkill_after_the_grace_period() {
    let env = TestEnv::new("stop-signals", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "bb");

    // Ignores SIGTERM (as an interactive shell does) and ends on SIGHUP, saying so.
    let script = r#"trap "" TERM; trap 'echo hup > "$HOME/hup"; exit 0' HUP; touch "$HOME/ready1"; while :; do sleep 0.05; done"#;
    let shell = env.spawn(&["run", "bb", "--", "sh", "-c", script]);
    wait_for(&env.home.join("ready1"));
    ok(&env, &["stop", "bb"]).stdout_has("Stopped box bb.");
    let out = env.wait(&["run"], shell);
    assert_eq!(
        std::fs::read_to_string(env.home.join("hup")).unwrap(),
        "hup\n",
        "SIGHUP did not reach a process that ignores SIGTERM:\n{out}"
    );
    assert_eq!(status_of(&env, "bb"), "stopped");

    // Ignores both: killed once the grace period (`--time`) is over.
    let script = r#"trap "" TERM HUP; touch "$HOME/ready2"; while :; do sleep 0.05; done"#;
    let stubborn = env.spawn(&["run", "bb", "--", "sh", "-c", script]);
    wait_for(&env.home.join("ready2"));

    // A stop interrupted while a process still runs in the box (killed during a long
    // grace period, after its holder has gone) leaves a running box behind, with its
    // record: that process keeps the box's overlay mounted, and the next start must not
    // mount a second one.
    let state = std::fs::read_to_string(env.runtime_dir.join("box/bb/state.json")).unwrap();
    let holder = serde_json::from_str::<serde_json::Value>(&state).unwrap()["pid"]
        .as_u64()
        .unwrap();
    let mut interrupted = env.spawn(&["stop", "--time", "60", "bb"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(format!("/proc/{holder}/stat"))
        .is_ok_and(|stat| !stat.contains(") Z "))
    {
        assert!(Instant::now() < deadline, "the holder outlived SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    interrupted.kill().unwrap();
    interrupted.wait().unwrap();
    assert_eq!(status_of(&env, "bb"), "running");
    ok(&env, &["stop", "--time", "0.2", "bb"]).stdout_has("Stopped box bb.");
    let out = env.wait(&["run"], stubborn);
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out}");
    assert_eq!(status_of(&env, "bb"), "stopped");

    // A grace period that is not a number of seconds is a usage error.
    env.run(&["stop", "--time", "soon", "bb"])
        .status(2)
        .stderr_has("not a number of seconds");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_box_stopped_while_writing_keeps_what_was_written_and_many_stop_together() {
    let env = TestEnv::new("stop-data", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = box_from(&env, Fixture::Debian, "dev");
    // A writer appending numbered lines to a file in the box's own filesystem (the
    // overlay's upper directory), each written and synced before the next.
    // (sudo gives root's HOME: the user's home is named by its path.)
    let ready = env.home.join("ready");
    let script = format!(
        r#"i=0; while :; do i=$((i+1)); echo "line $i" >> /opt/log; sync /opt/log; [ $i = 3 ] && touch {}; done"#,
        ready.display()
    );
    let writer = env.spawn(&["run", "dev", "--", "sudo", "sh", "-c", &script]);
    wait_for(&ready);
    ok(&env, &["stop", "dev"]);
    env.wait(&["run"], writer);
    let log = sh(&env, "dev", "cat /opt/log");
    log.success();
    let lines: Vec<&str> = log.stdout.lines().collect();
    assert!(
        lines.len() >= 3,
        "lines written before stop are gone:\n{log}"
    );
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("line {}", n + 1), "damaged log:\n{log}");
    }

    // Several running boxes, one stop: all of them stopped.
    for name in ["two", "three"] {
        ok(&env, &["create", "--no-entry", "--image", &reference, name]);
    }
    for name in ["dev", "two", "three"] {
        ok(&env, &["run", name, "--", "true"]);
        assert_eq!(status_of(&env, name), "running");
    }
    let out = ok(&env, &["stop", "--all", "--yes"]);
    for name in ["dev", "two", "three"] {
        out.stdout_has(&format!("Stopped box {name}."));
        assert_eq!(status_of(&env, name), "stopped");
    }
    // rm --all --force of running boxes stops them together too.
    for name in ["dev", "two"] {
        ok(&env, &["run", name, "--", "true"]);
    }
    ok(&env, &["rm", "--all", "--force", "--yes"]);
    assert!(ok(&env, &["list", "--json"]).stdout.trim() == "[]");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_box_that_cannot_be_stopped_leaves_the_others_stopped_and_each_failure_is_named() {
    let env = TestEnv::new("stop-failures", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = box_from(&env, Fixture::Busybox, "a");
    for name in ["b", "c"] {
        ok(&env, &["create", "--no-entry", "--image", &reference, name]);
    }
    for name in ["a", "b", "c"] {
        ok(&env, &["run", name, "--", "true"]);
    }
    // The locks of a and b cannot be taken: a directory where each lock file goes.
    let lock = |name: &str| env.store().join("locks").join(format!("box-{name}"));
    for name in ["a", "b"] {
        let _ = std::fs::remove_file(lock(name));
        std::fs::create_dir(lock(name)).unwrap();
    }
    let out = env.run(&["stop", "a", "b", "c"]);
    out.status(125)
        .stderr_has("2 boxes could not be stopped:")
        .stderr_has(&format!(
            "  a: opening lock {}: Is a directory",
            lock("a").display()
        ))
        .stderr_has(&format!(
            "  b: opening lock {}: Is a directory",
            lock("b").display()
        ))
        .stdout_has("Stopped box c.");
    assert_eq!(status_of(&env, "c"), "stopped");
    for name in ["a", "b"] {
        assert_eq!(status_of(&env, name), "running", "{out}");
    }

    // One box: its own message, as a single line.
    std::fs::remove_dir(lock("a")).unwrap();
    let out = env.run(&["stop", "a", "b"]);
    out.status(125)
        .stderr_has(&format!(
            "box: error: box `b` could not be stopped: opening lock {}: Is a directory",
            lock("b").display()
        ))
        .stdout_has("Stopped box a.");
    std::fs::remove_dir(lock("b")).unwrap();
    ok(&env, &["stop", "b"]).stdout_has("Stopped box b.");
}
