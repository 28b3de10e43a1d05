//! `box ephemeral` end to end: a temporary box runs a command (its exit status is box's)
//! and is gone afterwards, also when box is killed with SIGKILL or SIGTERM, or its
//! terminal hangs up (SIGHUP to its process group).

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::boxes::{Boxes, list, ok};
use crate::common::{Fixture, Registry, TestEnv, User};

/// Wait until `box list` shows no box (the guard removes a killed session's box).
#[track_caller]
fn wait_until_no_box(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !list(env).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the temporary box is still there: {:?}",
            list(env)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let containers = env.store().join("containers");
    let left: Vec<_> = std::fs::read_dir(&containers)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the store: {left:?}");
}

/// Wait until the box named `name` is running.
#[track_caller]
fn wait_until_running(env: &TestEnv, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if list(env)
            .iter()
            .any(|b| b["name"] == name && b["status"] == "running")
        {
            return;
        }
        assert!(Instant::now() < deadline, "box {name} never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_ephemeral_box_runs_its_command_and_is_gone_however_it_ends() {
    let env = TestEnv::new("ephemeral", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);

    let out = env.run(&[
        "ephemeral",
        "--image",
        &image,
        "--",
        "sh",
        "-c",
        "echo \"in $CONTAINER_ID\"; touch /var/x; exit 3",
    ]);
    out.status(3).stdout_has("in ephemeral-");
    wait_until_no_box(&env);

    // SIGKILL, SIGTERM, and a terminal hanging up (SIGHUP to the foreground group).
    for (how, signal) in [
        ("kill9", Signal::SIGKILL),
        ("term", Signal::SIGTERM),
        ("hup", Signal::SIGHUP),
    ] {
        let name = format!("eph-{how}");
        let mut command = env.command(&[
            "ephemeral",
            "--image",
            &image,
            "--name",
            &name,
            "--",
            "sleep",
            "1000",
        ]);
        command.process_group(0);
        let child = command.spawn().unwrap();
        wait_until_running(&env, &name);
        let target = if signal == Signal::SIGHUP {
            -(child.id() as i32)
        } else {
            child.id() as i32
        };
        kill(Pid::from_raw(target), signal).unwrap();
        let out = env.wait(&["ephemeral"], child);
        assert!(!out.status.success(), "{how}: {out}");
        wait_until_no_box(&env);
    }
}
