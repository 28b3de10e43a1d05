//! Arguments as bytes, and box used from inside a box, end to end (busybox and Debian
//! boxes as the unprivileged `boxtest`):
//! - `box run`/`box enter` and exported wrappers pass non-UTF-8 arguments through;
//! - inside box NAME, `box run NAME`/`box enter NAME` run the command right there, with
//!   the usual exit statuses; acting on another box (or stopping or removing boxes) is a
//!   clear error that says to do it from the host;
//! - a box still starts when the box executable was replaced while box ran.
//!
//! Every test removes its boxes at the end (`rm --all --force`), so no holder outlives it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::boxes::Boxes;
use crate::common::{Fixture, Outcome, Registry, TestEnv, User, box_bin};

/// A name that is not UTF-8 (Latin-1 "café"), as `printf 'caf\xe9'` gives.
const CAFE: &[u8] = b"caf\xe9";

/// Pull `fixture` and create boxes `names` from it. Tests that run box inside a box need
/// Debian: the box executable under test is linked against the C library.
fn boxes(env: &TestEnv, fixture: Fixture, names: &[&str]) -> String {
    let reference = fixture.push(Registry::plain()).image.reference;
    env.run(&["pull", &reference]).success();
    for name in names {
        env.run(&["create", "--no-entry", "--image", &reference, name])
            .success();
    }
    reference
}

/// Run `program` with `args` (any bytes) as the test user, with box's test environment
/// (`PATH` includes the directory of the box under test's bind inside boxes).
fn run_bytes(env: &TestEnv, program: &Path, args: &[&OsStr]) -> Outcome {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("USER", env.user.name())
        .env("LOGNAME", env.user.name())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("XDG_RUNTIME_DIR", &env.runtime_dir)
        .envs(env.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&env.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .uid(env.uid)
        .gid(env.gid);
    let child = command.spawn().expect("running a program as the test user");
    let shown: Vec<String> = std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect();
    let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
    env.wait(&shown, child)
}

/// `box ARGS` with arguments that need not be UTF-8.
fn box_bytes(env: &TestEnv, args: &[&OsStr]) -> Outcome {
    run_bytes(env, Path::new(box_bin()), args)
}

fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn non_utf8_arguments_reach_the_command() {
    let env = TestEnv::new("in-bytes", User::BoxTest);
    let _boxes = Boxes(&env);
    boxes(&env, Fixture::Busybox, &["b"]);

    // box run: the file is created under exactly that name (seen from the host).
    let mut name = OsString::from_vec(CAFE.to_vec());
    box_bytes(
        &env,
        &[os(b"run"), os(b"b"), os(b"--"), os(b"touch"), &name],
    )
    .success();
    assert!(env.home.join(&name).exists(), "no {name:?} in the home");
    // ... and a command can find it again by that name.
    box_bytes(
        &env,
        &[
            os(b"run"),
            os(b"b"),
            os(b"--"),
            os(b"test"),
            os(b"-e"),
            &name,
        ],
    )
    .success();

    // box enter with a command.
    name.push("-enter");
    box_bytes(
        &env,
        &[os(b"enter"), os(b"b"), os(b"--"), os(b"touch"), &name],
    )
    .success();
    assert!(env.home.join(&name).exists(), "no {name:?} in the home");

    // A command whose name is not UTF-8: not found, 127, named in the error.
    box_bytes(&env, &[os(b"run"), os(b"b"), os(b"--"), os(CAFE)])
        .status(127)
        .stderr_has("caf\u{FFFD}")
        .stderr_has("not found in box `b`");

    // An exported wrapper (which execs `box run`) on such a file name.
    env.run(&["export", "b", "--bin", "/bin/touch"]).success();
    let wrapper = env.home.join(".local/bin/touch");
    name.push("-wrapper");
    run_bytes(&env, &wrapper, &[&name]).success();
    assert!(env.home.join(&name).exists(), "no {name:?} in the home");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn inside_a_box_box_run_of_that_box_runs_the_command_there() {
    let env = TestEnv::new("in-same", User::BoxTest);
    let _boxes = Boxes(&env);
    boxes(&env, Fixture::Debian, &["dev"]);
    let work = env.home.join("work");
    env.mkdir_owned(&work, 0o755);

    // `box run dev` inside dev: the command's own status and output, in the caller's cwd.
    let out = env.run(&[
        "run",
        "dev",
        "--",
        "sh",
        "-c",
        "cd work && box run dev -- sh -c 'echo \"$CONTAINER_ID $(pwd)\"; exit 7'",
    ]);
    out.status(7);
    assert_eq!(out.stdout, format!("dev {}\n", work.display()), "{out}");

    // --no-workdir: the home.
    let out = env.run(&[
        "run",
        "dev",
        "--",
        "sh",
        "-c",
        "cd work && box run --no-workdir dev -- pwd",
    ]);
    out.success();
    assert_eq!(out.stdout, format!("{}\n", env.home.display()), "{out}");

    // box enter, with a command, and as a login shell reading stdin.
    env.run(&[
        "run", "dev", "--", "box", "enter", "dev", "--", "sh", "-c", "exit 5",
    ])
    .status(5);
    env.run(&[
        "run",
        "dev",
        "--",
        "sh",
        "-c",
        "echo 'echo in-login-$CONTAINER_ID' | box enter dev",
    ])
    .success()
    .stdout_has("in-login-dev");

    // The 126/127 policy holds.
    env.run(&[
        "run",
        "dev",
        "--",
        "box",
        "run",
        "dev",
        "--",
        "no-such-command",
    ])
    .status(127)
    .stderr_has("box: error: command `no-such-command` not found in box `dev`");
    env.run(&["run", "dev", "--", "box", "run", "dev", "--", "/etc/passwd"])
        .status(126)
        .stderr_has("cannot be executed in box `dev`");

    // Bytes pass through here too.
    let name = OsString::from_vec(CAFE.to_vec());
    box_bytes(
        &env,
        &[
            os(b"run"),
            os(b"dev"),
            os(b"--"),
            os(b"box"),
            os(b"run"),
            os(b"dev"),
            os(b"--"),
            os(b"touch"),
            &name,
        ],
    )
    .success();
    assert!(env.home.join(&name).exists(), "no {name:?} in the home");

    // An exported wrapper called inside its own box runs the binary directly.
    env.run(&["export", "dev", "--bin", "/bin/touch"]).success();
    env.run(&[
        "run",
        "dev",
        "--",
        "sh",
        "-c",
        "~/.local/bin/touch from-wrapper",
    ])
    .success();
    assert!(env.home.join("from-wrapper").exists());

    // Without CONTAINER_ID (sudo drops it; env -i drops everything) box still knows
    // where it is from the box's /run/.containerenv.
    for prefix in ["env -u CONTAINER_ID", "env -i"] {
        let out = env.run(&[
            "run",
            "dev",
            "--",
            "sh",
            "-c",
            &format!("{prefix} /usr/local/bin/box run dev -- sh -c 'echo here-$(id -un)'"),
        ]);
        out.success();
        assert_eq!(out.stdout, "here-boxtest\n", "{prefix}: {out}");
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn inside_a_box_other_boxes_are_for_the_host() {
    let env = TestEnv::new("in-other", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = boxes(&env, Fixture::Debian, &["dev", "two", "cold"]);
    env.run(&["run", "two", "--", "true"]).success();

    let inside = |args: &[&str]| {
        let mut full = vec!["run", "dev", "--", "box"];
        full.extend_from_slice(args);
        env.run(&full)
    };
    // A running box and a stopped one: neither is joined nor started from in here.
    inside(&["run", "two", "--", "true"]).box_error(&[
        "cannot run a command in box `two` from inside box `dev`",
        "from the host",
    ]);
    inside(&["run", "cold", "--", "true"]).box_error(&[
        "cannot run a command in box `cold` from inside box `dev`",
        "from the host",
    ]);
    inside(&["enter", "two"]).box_error(&["cannot enter box `two` from inside box `dev`"]);
    // Stopping or removing boxes, this one included, is the host's job too.
    inside(&["stop", "two"]).box_error(&[
        "cannot stop box `two` from inside box `dev`",
        "from the host",
    ]);
    inside(&["stop", "dev"]).box_error(&[
        "cannot stop box `dev` from inside box `dev`",
        "from the host",
    ]);
    inside(&["stop", "--all"]).box_error(&["from inside box `dev`", "from the host"]);
    inside(&["rm", "--force", "two"]).box_error(&["cannot remove box `two` from inside box `dev`"]);
    inside(&["rm", "cold"]).box_error(&["cannot remove box `cold` from inside box `dev`"]);

    // So are the store's changes: they would be made with the box's id mapping.
    inside(&["create", "--no-entry", "--image", &reference, "three"])
        .box_error(&["cannot create boxes from inside box `dev`", "from the host"]);
    inside(&["pull", &reference]).box_error(&["cannot pull images from inside box `dev`"]);
    inside(&["rmi", &reference]).box_error(&["cannot remove images from inside box `dev`"]);

    // Without CONTAINER_ID, joining fails as before, but the hint still says why.
    env.run(&[
        "run",
        "dev",
        "--",
        "env",
        "-u",
        "CONTAINER_ID",
        "box",
        "run",
        "two",
        "--",
        "true",
    ])
    .box_error(&["box `two`", "from the host"]);

    // Nothing was done: every box is still there, two still runs, cold did not start, no
    // box three.
    let list = env.run(&["list", "--json"]).success().json();
    let status = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .map(|b| b["status"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("box {name} is gone: {list}"))
    };
    assert_eq!(status("dev"), "running");
    assert_eq!(status("two"), "running");
    assert_eq!(status("cold"), "stopped");
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");

    // On the host, CONTAINER_ID alone (no box's /run/.containerenv; this machine may have
    // a /.dockerenv) does not count as being inside a box.
    let with_id = |args: &[&str]| {
        let child = env
            .command(args)
            .env("CONTAINER_ID", "dev")
            .spawn()
            .unwrap();
        env.wait(args, child)
    };
    with_id(&["run", "two", "--", "true"]).success();
    with_id(&["stop", "two"]).success();
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_box_starts_when_the_box_executable_was_replaced_meanwhile() {
    let env = TestEnv::new("in-replaced", User::BoxTest);
    let _boxes = Boxes(&env);
    boxes(&env, Fixture::Debian, &["b"]);

    // A copy of box the user runs through an open fd, replaced (as an upgrade does) or
    // removed after it started: it runs as "PATH (deleted)" and starts the box's holder.
    let copy = env.home.join("bin/box");
    let start_from_gone_copy = |then: &str, command: &str| {
        env.write_user_file(&copy, std::fs::read(box_bin()).unwrap(), 0o755);
        let script = format!(
            "exec 3< {copy}; rm {copy}; {then}; exec /proc/self/fd/3 run b -- {command}",
            copy = copy.display()
        );
        run_bytes(
            &env,
            Path::new("/bin/sh"),
            &[os(b"-c"), OsStr::new(&script)],
        )
    };

    // Replaced: the box starts, with the new file as its `box`.
    let replace = format!("cp {} {}", box_bin(), copy.display());
    let out = start_from_gone_copy(&replace, "/usr/local/bin/box --version");
    out.success().stdout_has("box ");
    let out = env.run(&["run", "b", "--", "sh", "-c", "box --version && box list"]);
    out.success().stdout_has("b ");
    env.run(&["stop", "b"]).success();

    // Removed for good: the box still starts, without `box` inside, and says so.
    let out = start_from_gone_copy("true", "echo started");
    out.success()
        .stdout_has("started")
        .stderr_has("box: warning: the box executable")
        .stderr_has("is gone");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn in_a_box_with_a_home_of_its_own_box_keeps_the_hosts_data_and_exports() {
    let env = TestEnv::new("inside-own-home", User::BoxTest);
    let _boxes = Boxes(&env);
    // Debian: the box executable inside needs the image's C library.
    let reference = Fixture::Debian.push(Registry::plain()).image.reference;
    let own_home = env.dir.join("box-home");
    env.mkdir_owned(&own_home, 0o700);
    env.run(&["pull", &reference]).success();
    env.run(&[
        "create",
        "--no-entry",
        "--home",
        own_home.to_str().unwrap(),
        "--image",
        &reference,
        "hb",
    ])
    .success();
    env.run(&["run", "hb", "--", "sh", "-c", "echo $HOME"])
        .success()
        .stdout_has(own_home.to_str().unwrap());
    // box in the box finds the host's store, and exports into the host home's bin dir.
    env.run(&["run", "hb", "--", "box", "export", "--bin", "/usr/bin/cat"])
        .success();
    assert!(env.home.join(".local/bin/cat").is_file());
    assert!(!own_home.join(".local/bin/cat").exists());
    env.run(&["export", "hb", "--list"])
        .success()
        .stdout_has("/usr/bin/cat");
}
