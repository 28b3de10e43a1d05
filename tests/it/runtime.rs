//! `box create`, `enter`, `run`, `list`, `stop` and `rm` end to end: images pulled from the
//! loopback registry, boxes run as the unprivileged test users in real user namespaces on
//! real overlayfs, results checked from inside the box and from the host.
//!
//! Every test removes its boxes at the end (`rm --all --force`), so no holder outlives it.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::boxes::{
    Boxes, box_from, list, ok, run_on_terminal, script_output, sh, shell_as, status_of,
};
use crate::common::registry::closed_port;
use crate::common::{Fixture, Outcome, Registry, TestEnv, User};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn holder_pid(env: &TestEnv, name: &str) -> i32 {
    let path = env.runtime_dir.join("box").join(name).join("state.json");
    let state: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    state["pid"].as_i64().unwrap() as i32
}

/// Every file below `dir` (empty when it does not exist).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        out.push(entry.path());
        if entry.file_type().unwrap().is_dir() {
            out.extend(files_below(&entry.path()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// A Debian box, as the user with subordinate ids
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_debian_box_is_the_users_own_shell_with_the_box_userland() {
    debian_box_is_native(User::BoxTest);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn without_subordinate_ids_a_debian_box_is_the_users_own_shell_too() {
    debian_box_is_native(User::BoxNoSub);
}

/// The end-to-end checks of a Debian box, for a user with or without subordinate ids.
fn debian_box_is_native(user: User) {
    let env = TestEnv::new("rt-debian", user);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "deb");

    // The box's os-release; the user, home and cwd are the host's.
    let work = env.home.join("work/sub");
    env.mkdir_owned(&work, 0o755);
    let out = env
        .command(&[
            "run",
            "deb",
            "--",
            "sh",
            "-c",
            "grep ^ID= /etc/os-release; id -un; id -u; echo $HOME; pwd",
        ])
        .current_dir(&work)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "ID=debian",
            user.name(),
            &env.uid.to_string(),
            env.home.to_str().unwrap(),
            work.to_str().unwrap()
        ],
        "{text}"
    );
    assert_eq!(status_of(&env, "deb"), "running");

    // A file written in the box's home is the user's on the host.
    ok(
        &env,
        &["run", "deb", "--", "sh", "-c", "echo hi > ~/from-box"],
    );
    let meta = std::fs::metadata(env.home.join("from-box")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (env.uid, env.gid));

    // Exit statuses and signals are the command's own.
    sh(&env, "deb", "exit 7").status(7);
    let killed = sh(&env, "deb", "kill -TERM $$");
    assert_eq!(killed.status.signal(), Some(15), "{killed}");

    // stdin pipes through.
    let mut child = env
        .command(&["run", "deb", "--", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped text\n")
        .unwrap();
    let out = env.wait(&["run", "deb", "--", "tr"], child);
    out.success().stdout_has("PIPED TEXT");

    // A command in a pipeline ends on a closed pipe as on the host (SIGPIPE is not
    // left ignored by box).
    let out = sh(&env, "deb", "yes | head -n 1");
    out.success().stdout_has("y");
    assert!(!out.stderr.contains("Broken pipe"), "{out}");

    // Two concurrent runs.
    let a = env.spawn(&["run", "deb", "--", "sh", "-c", "sleep 0.3; echo first"]);
    let b = env.spawn(&["run", "deb", "--", "sh", "-c", "sleep 0.3; echo second"]);
    env.wait(&["run"], a).success().stdout_has("first");
    env.wait(&["run"], b).success().stdout_has("second");

    // The host integration: /run/host, the hosts file following the host's, the marker
    // tools look for, the environment.
    let out = sh(
        &env,
        "deb",
        "readlink /etc/hosts; cat /run/.containerenv; echo CONTAINER_ID=$CONTAINER_ID; test -d /run/host/etc && echo host-root; test -x /usr/local/bin/box && echo box-inside",
    );
    out.success()
        .stdout_has("/run/host/etc/hosts")
        .stdout_has("engine=\"box\"")
        .stdout_has("CONTAINER_ID=deb")
        .stdout_has("host-root")
        .stdout_has("box-inside");

    // The host's locale settings, when it has any, are the box's.
    let has_setting = |t: &String| {
        t.lines()
            .any(|l| l.starts_with("LANG") || l.starts_with("LC_"))
    };
    let host_locale = std::fs::read_to_string("/etc/locale.conf")
        .ok()
        .filter(has_setting)
        .or_else(|| {
            std::fs::read_to_string("/etc/default/locale")
                .ok()
                .filter(has_setting)
        });
    if let Some(settings) = host_locale {
        let out = sh(&env, "deb", "cat /etc/locale.conf; cat /etc/default/locale");
        out.success();
        assert_eq!(out.stdout, format!("{settings}{settings}"), "{out}");
    }

    // A directory the box does not have is the host's, through /run/host.
    let outside = env.dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let out = env
        .command(&["run", "deb", "--", "pwd"])
        .current_dir(&outside)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("/run/host{}", outside.display()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Also when the box has a directory of the same path that is another one: a command
    // works on the caller's files.
    let both = env.dir.join("both");
    env.mkdir_owned(&both, 0o755);
    // (Its parents in the box are the home's mount point's: root's, with subordinate ids.)
    let mkdir = format!(
        "mkdir -p {0} 2>/dev/null || sudo mkdir -p {0}",
        both.display()
    );
    sh(&env, "deb", &mkdir).success();
    let out = env
        .command(&["run", "deb", "--", "pwd"])
        .current_dir(&both)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("/run/host{}", both.display()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The home is bound with what is mounted below it, but not with the box's own root
    // (the store is in the home): `du ~` must not walk into it and the host behind it.
    let root_in_home = env.store().join("containers/deb/root");
    let out = sh(&env, "deb", &format!("ls -A {}", root_in_home.display()));
    assert!(
        out.success().stdout.trim().is_empty(),
        "the box root shows up again in the home inside the box:\n{out}"
    );

    // Not found: 127; not executable: 126; both name the command and the box.
    env.run(&["run", "deb", "--", "no-such-command"])
        .status(127)
        .stderr_has("no-such-command")
        .stderr_has("deb");
    env.run(&["run", "deb", "--", "/etc/passwd"])
        .status(126)
        .stderr_has("/etc/passwd");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn sudo_installs_packages_and_rm_leaves_nothing_behind() {
    let env = TestEnv::new("rt-sudo", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "pkg");
    sh(&env, "pkg", "sudo id -u").success().stdout_has("0");
    // The box uses the host network: the Debian mirror is reachable.
    let out = env.run(&[
        "run", "pkg", "--", "sh", "-c",
        "sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hello >/dev/null && hello",
    ]);
    out.success().stdout_has("Hello, world!");
    // Files owned by subordinate ids in the upper layer...
    let upper = env.store().join("containers/pkg/upper");
    let foreign = files_below(&upper)
        .iter()
        .filter(|p| p.symlink_metadata().is_ok_and(|m| m.uid() != env.uid))
        .count();
    assert!(
        foreign > 0,
        "expected files owned by subordinate ids in {}",
        upper.display()
    );
    // ...are removed by rm (of a running box, with --force).
    env.run(&["rm", "pkg"]).box_error(&["running", "pkg"]);
    ok(&env, &["rm", "--force", "pkg"]);
    assert!(!env.store().join("containers/pkg").exists());
    assert_eq!(files_below(&env.store().join("tmp")), Vec::<PathBuf>::new());
    assert!(list(&env).is_empty());
}

// ---------------------------------------------------------------------------------------
// The multi-layer fixture: the tree inside is what the layers say
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_multilayer_tree_inside_a_box_is_exactly_what_the_layers_say() {
    let env = TestEnv::new("rt-multilayer", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Multilayer, "ml");
    let out = sh(
        &env,
        "ml",
        "cd /data && stat -c '%u %g %a %F %n' becomes-file becomes-dir becomes-dir/inside www www/index.html user1234 suid; ls -A opaque; test -e /etc/deleteme || echo deleteme-gone; test -e /bin/ls || echo ls-gone; cat becomes-file",
    );
    out.success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            "0 0 644 regular file becomes-file",
            "0 0 755 directory becomes-dir",
            "0 0 644 regular file becomes-dir/inside",
            "33 33 755 directory www",
            "33 33 644 regular file www/index.html",
            "1234 1234 644 regular file user1234",
            "0 0 4755 regular file suid",
            "new",
            "deleteme-gone",
            "ls-gone",
            "now a file",
        ],
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Lifecycle: list, stop, a killed holder
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn list_stop_and_a_killed_holder_are_reported_truthfully() {
    let env = TestEnv::new("rt-lifecycle", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = box_from(&env, Fixture::Busybox, "bb");
    let boxes = list(&env);
    assert_eq!(boxes.len(), 1);
    assert_eq!(boxes[0]["status"], "stopped");
    assert_eq!(boxes[0]["image"], reference.as_str());
    ok(&env, &["list"]).stdout_has("bb").stdout_has("stopped");

    ok(&env, &["run", "bb", "--", "true"]);
    assert_eq!(status_of(&env, "bb"), "running");
    // A process left running in the box is ended by stop.
    let sleeper = env.spawn(&["run", "bb", "--", "sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(300));
    ok(&env, &["stop", "bb"]).stdout_has("Stopped");
    let out = env.wait(&["run", "bb", "--", "sleep"], sleeper);
    assert!(
        out.status.signal().is_some(),
        "the sleeper survived stop:\n{out}"
    );
    assert_eq!(status_of(&env, "bb"), "stopped");

    // kill -9 of the holder: the next run starts a new one transparently.
    ok(&env, &["run", "bb", "--", "true"]);
    let old = holder_pid(&env, "bb");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(status_of(&env, "bb"), "stopped");
    ok(&env, &["run", "bb", "--", "true"]);
    assert_ne!(holder_pid(&env, "bb"), old);
    ok(&env, &["stop", "--all"]);
    assert_eq!(status_of(&env, "bb"), "stopped");

    // Concurrent first runs of a stopped box start one holder: all land in one namespace.
    let args = ["run", "bb", "--", "ls", "-l", "/proc/self/ns/mnt"];
    let children: Vec<_> = (0..4).map(|_| env.spawn(&args)).collect();
    let namespaces: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = env.wait(&args, c);
            out.success();
            // `... /proc/self/ns/mnt -> mnt:[4026532...]`
            out.stdout.rsplit("-> ").next().unwrap().trim().to_owned()
        })
        .collect();
    assert!(
        namespaces
            .iter()
            .all(|n| n == &namespaces[0] && n.starts_with("mnt:")),
        "{namespaces:?}"
    );
    ok(&env, &["stop", "bb"]);

    ok(&env, &["rm", "bb"]).stdout_has("Removed");
    assert!(list(&env).is_empty());
    assert!(!env.store().join("containers/bb").exists());
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn unknown_boxes_and_invalid_names_are_clear_errors() {
    let env = TestEnv::new("rt-unknown", User::BoxTest);
    for args in [
        &["run", "nosuch", "--", "true"][..],
        &["enter", "nosuch"],
        &["stop", "nosuch"],
        &["rm", "nosuch"],
    ] {
        env.run(args).box_error(&["no box named `nosuch`"]);
    }
    // An invalid name is a usage error (2, as clap's), with the rule in the hint, for
    // every verb that takes one.
    for args in [
        &["create", "--image", "busybox", "bad/name"][..],
        &["run", "a b", "--", "true"],
        &["enter", "../x"],
        &["stop", "a:b"],
        &["rm", "a b"],
        &["export", ".x", "--bin", "/bin/sh"],
    ] {
        let out = env.run(args);
        out.status(2)
            .stderr_has("box: error: `")
            .stderr_has("` is not a valid box name")
            .stderr_has("hint: use up to 64 letters");
        assert!(out.stdout.is_empty(), "{out}");
    }
    env.run(&["create", "--image", "busybox", "--hostname", "a b", "ok"])
        .status(2)
        .stderr_has("`a b` is not a valid hostname");
    env.run(&["run", "-bad", "--", "true"]).status(2);
    // Nothing was created for the unknown name.
    assert!(!env.runtime_dir.join("box/nosuch").exists());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_mistyped_box_name_gets_a_did_you_mean_from_every_verb() {
    let mut env = TestEnv::new("rt-typo", User::BoxTest);
    let reference = box_from(&env, Fixture::Busybox, "trixie");
    // With a default image, `enter` offers to create a box it does not find; not for a typo.
    env.set_env("BOX_DEFAULT_IMAGE", reference.as_str());
    let _boxes = Boxes(&env);
    for args in [
        &["run", "trixe", "--", "true"][..],
        &["enter", "trixe"],
        &["enter", "--yes", "trixe", "--", "true"],
        &["stop", "trixe"],
        &["rm", "trixe"],
        &["rm", "--force", "trixie", "trixe"],
        &["upgrade", "trixe"],
        &["export", "trixe", "--bin", "/bin/sh"],
        &["generate-entry", "trixe"],
        &["create", "--clone", "trixe", "copy"],
    ] {
        env.run(args).box_error(&[
            "box: error: no box named `trixe`",
            "hint: did you mean `trixie`? (`box list` shows your boxes)",
        ]);
    }
    // Nothing was created, nothing removed.
    let names: Vec<String> = list(&env)
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["trixie"]);
    // A name far from every box's: how to make one; and `enter --yes` makes it.
    env.run(&["rm", "scratch"]).box_error(&[
        "no box named `scratch`",
        "`box create --image IMAGE scratch` makes one",
    ]);
    ok(&env, &["enter", "--yes", "scratch", "--", "true"]);
    assert_eq!(list(&env).len(), 2);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_missing_image_that_cannot_be_pulled_creates_nothing() {
    let env = TestEnv::new("rt-nopull", User::BoxTest);
    let reference = format!("127.0.0.1:{}/nothing/here:1", closed_port());
    env.run(&["create", "--image", &reference, "x"])
        .box_error(&["nothing/here"]);
    assert!(list(&env).is_empty());
    assert!(!env.store().join("containers/x").exists());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_name_clash_is_one_clear_error_even_for_concurrent_creates() {
    let env = TestEnv::new("rt-clash", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = box_from(&env, Fixture::Busybox, "one");
    env.run(&["create", "--no-entry", "--image", &reference, "one"])
        .box_error(&["already exists"]);
    let children: Vec<_> = (0..4)
        .map(|_| env.spawn(&["create", "--no-entry", "--image", &reference, "same"]))
        .collect();
    let outcomes: Vec<Outcome> = children
        .into_iter()
        .map(|c| env.wait(&["create", "same"], c))
        .collect();
    let created = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(created, 1, "{outcomes:#?}");
    for failed in outcomes.iter().filter(|o| !o.status.success()) {
        failed.box_error(&["already exists"]);
    }
    assert_eq!(list(&env).len(), 2);
    assert_eq!(files_below(&env.store().join("tmp")), Vec::<PathBuf>::new());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_unreachable_volume_source_is_not_called_missing() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let env = TestEnv::new("rt-volume-eacces", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    // A directory inside root's private one: it exists, but not for the user.
    let locked = env.dir.join("locked");
    std::fs::create_dir_all(locked.join("data")).unwrap();
    mode(&locked, 0o700);
    let source = locked.join("data").display().to_string();
    let volume = format!("{source}:/data");
    let create = [
        "create",
        "--no-entry",
        "--image",
        &reference,
        "--volume",
        &volume,
        "v",
    ];
    let out = env.run(&create);
    out.box_error(&[&source, "permission denied"]);
    assert!(!out.stderr.contains("does not exist"), "{out}");
    // Reachable at create, no longer when the box starts: the same.
    mode(&locked, 0o755);
    ok(&env, &create);
    mode(&locked, 0o700);
    let out = env.run(&["run", "v", "--", "true"]);
    out.box_error(&[&source, "permission denied", "/data"]);
    assert!(!out.stderr.contains("does not exist"), "{out}");
    mode(&locked, 0o755);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_missing_volume_source_is_refused_at_create() {
    let env = TestEnv::new("rt-volume", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    let missing = env.dir.join("no-such-dir");
    env.run(&[
        "create",
        "--no-entry",
        "--image",
        &reference,
        "--volume",
        &format!("{}:/data", missing.display()),
        "v",
    ])
    .box_error(&["no-such-dir", "does not exist"]);
    assert!(list(&env).is_empty());
    // A good volume, read-only, is there and read-only.
    let data = env.home.join("data");
    env.write_user_file(&data.join("f"), "volume content\n", 0o644);
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &reference,
            "--volume",
            &format!("{}:/data:ro", data.display()),
            "v",
        ],
    );
    sh(
        &env,
        "v",
        "cat /data/f; touch /data/g 2>/dev/null || echo read-only",
    )
    .success()
    .stdout_has("volume content")
    .stdout_has("read-only");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_hosts_files_and_other_sessions_sockets_follow_the_host() {
    let env = TestEnv::new("rt-follow", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--hostname",
            "own-name",
            "--image",
            &reference,
            "bb",
        ],
    );
    ok(&env, &["run", "bb", "--", "true"]);

    // /etc/hosts: a copy with the box's own name, renewed when the host's changes.
    sh(&env, "bb", "grep own-name /etc/hosts").success();
    let marker = format!("# box test {}", std::process::id());
    let original = std::fs::read_to_string("/etc/hosts").unwrap();
    std::fs::write("/etc/hosts", format!("{original}{marker}\n")).unwrap();
    let seen = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        sh(&env, "bb", "cat /etc/hosts").stdout.contains(&marker)
    });
    std::fs::write("/etc/hosts", &original).unwrap();
    assert!(
        seen,
        "the box's /etc/hosts did not follow a change of the host's"
    );
    let out = sh(&env, "bb", "cat /etc/hosts");
    assert!(out.stdout.contains("own-name"), "{out}");

    // A session with another runtime directory than the one that started the box gets
    // its own in the box (a box started from cron, then entered from the desktop).
    let other = env.dir.join("other-run");
    env.mkdir_owned(&other, 0o700);
    env.write_user_file(&other.join("wayland-test"), "", 0o600);
    let out = env
        .command(&["run", "bb", "--", "sh", "-c", "ls $XDG_RUNTIME_DIR"])
        .env("XDG_RUNTIME_DIR", &other)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("wayland-test"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An X authority file outside the shared directories follows the host's, also when
    // the host replaces it (xauth writes a new file and renames it over the old one), in
    // a box of the host's name (one of another name gets a copy: tests/it/native.rs).
    ok(
        &env,
        &["create", "--no-entry", "--image", &reference, "same"],
    );
    let xauth_dir = env.dir.join("xauth");
    env.mkdir_owned(&xauth_dir, 0o700);
    let cookie = xauth_dir.join("cookie");
    env.write_user_file(&cookie, "one", 0o600);
    let read = || {
        let out = env
            .command(&["run", "same", "--", "sh", "-c", "cat \"$XAUTHORITY\""])
            .env("XAUTHORITY", &cookie)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(read(), "one");
    env.write_user_file(&xauth_dir.join("cookie.new"), "two", 0o600);
    std::fs::rename(xauth_dir.join("cookie.new"), &cookie).unwrap();
    assert_eq!(read(), "two");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_failing_newuidmap_is_a_clear_error_with_its_message() {
    let mut env = TestEnv::new("rt-baduidmap", User::BoxTest);
    box_from(&env, Fixture::Busybox, "bad");
    let bin = env.dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for helper in ["newuidmap", "newgidmap"] {
        let path = bin.join(helper);
        std::fs::write(
            &path,
            "#!/bin/sh\necho \"$0: fake refusal for the test\" >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    env.set_env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    env.run(&["run", "bad", "--", "true"])
        .box_error(&["fake refusal for the test"]);
    assert_eq!(status_of(&env, "bad"), "stopped");
    // With the real helpers back, the same box starts.
    env.set_env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    let _boxes = Boxes(&env);
    ok(&env, &["run", "bad", "--", "true"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn when_overlayfs_is_refused_the_box_is_a_copy_and_box_says_so() {
    let mut env = TestEnv::new("rt-copy", User::BoxTest);
    // The store on an overlayfs: the kernel refuses an overlayfs upper dir there. (The
    // busybox fixture: layers with whiteouts cannot even be unpacked on such a store, as
    // a 0:0 character device cannot be created on overlayfs from a user namespace.)
    let (lower, upper, work, merged) = (
        env.dir.join("ovl-lower"),
        env.dir.join("ovl-upper"),
        env.dir.join("ovl-work"),
        env.dir.join("ovl"),
    );
    for dir in [&lower, &upper, &work, &merged] {
        std::fs::create_dir(dir).unwrap();
    }
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        ))
        .arg(&merged)
        .status()
        .unwrap();
    assert!(status.success(), "mounting the test overlay");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(merged.clone());
    env.mkdir_owned(&merged.join("data"), 0o700);
    env.set_env("XDG_DATA_HOME", merged.join("data").as_os_str());
    {
        let _boxes = Boxes(&env);
        box_from(&env, Fixture::Busybox, "copied");
        let out = sh(
            &env,
            "copied",
            "grep ^ID= /etc/os-release; stat -c '%u %g %a' /bin/busybox /root",
        );
        out.success()
            .stdout_has("ID=busybox")
            .stdout_has("0 0 755")
            .stdout_has("0 0 700")
            .stderr_has("copy");
        let boxes = list(&env);
        assert_eq!(boxes[0]["storage"], "copy");
        // Later starts reuse the copy silently.
        ok(&env, &["stop", "copied"]);
        let again = sh(&env, "copied", "grep ^ID= /etc/os-release");
        again.success().stdout_has("ID=busybox");
        assert!(!again.stderr.contains("copy"), "{again}");
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_dry_run_prints_the_plan_and_does_nothing() {
    let env = TestEnv::new("rt-dry", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    let out = ok(
        &env,
        &[
            "create",
            "--dry-run",
            "--image",
            &reference,
            "--hostname",
            "dry",
            "plan",
        ],
    );
    out.stdout_has("uid map")
        .stdout_has("overlay")
        .stdout_has("/run/host")
        .stdout_has("hostname: dry");
    assert!(list(&env).is_empty());
    ok(
        &env,
        &["create", "--no-entry", "--image", &reference, "plan"],
    );
    ok(&env, &["enter", "--dry-run", "plan"]).stdout_has("pivot_root");
    assert_eq!(status_of(&env, "plan"), "stopped");
}

/// A third user whose subordinate range is too small for a box (1000 ids), created by
/// the test itself (the tests run as root). Returns (uid, gid, home).
fn user_with_a_small_range() -> (u32, u32, PathBuf) {
    const NAME: &str = "boxsmall";
    if nix::unistd::User::from_name(NAME).unwrap().is_none() {
        let status = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", NAME])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {NAME}");
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{NAME}:")))
            .collect();
        lines.push("boxsmall:400000:1000");
        std::fs::write(file, lines.join("\n") + "\n").unwrap();
    }
    let user = nix::unistd::User::from_name(NAME).unwrap().unwrap();
    (user.uid.as_raw(), user.gid.as_raw(), user.dir)
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_subordinate_range_too_small_for_a_box_is_a_clear_error() {
    crate::common::require_root();
    let (uid, gid, home) = user_with_a_small_range();
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    let out = Command::new(crate::common::box_bin())
        .args(["create", "--no-entry", "--image", &reference, "small"])
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .current_dir(&home)
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("holds 1000 ids"), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("hint: ")), "{stderr}");
    assert!(!home.join(".local/share/box/containers/small").exists());
}

// ---------------------------------------------------------------------------------------
// On a terminal, and as root
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn enter_on_a_terminal_offers_to_create_and_the_shell_owns_the_terminal() {
    let env = TestEnv::new("rt-terminal", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Debian.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    // A catalogue entry of the user's own, as `box create mydeb` would resolve it.
    env.write_user_file(
        &env.home.join(".config/box/distros.d/mydeb.toml"),
        format!("name = \"mydeb\"\nimage = \"{reference}\"\npackage-manager = \"apt\"\n"),
        0o644,
    );

    // Declining creates nothing.
    let (status, screen) = run_on_terminal(&env, &["enter", "mydeb"], &["n\n"], Duration::ZERO);
    assert_eq!(status.code(), Some(125), "{screen}");
    assert!(
        screen.contains("Box mydeb does not exist. Create it from"),
        "{screen}"
    );
    assert!(list(&env).is_empty(), "{screen}");

    // Accepting creates the box and opens the login shell on the terminal. The shell is
    // the terminal's foreground job: Ctrl-C interrupts its command, not the session.
    let keys = [
        "y\n",
        "echo \"tty=$(tty) id=$CONTAINER_ID\"\n",
        "sleep 60; echo not-''interrupted\n",
        "\x03",
        "echo after-''interrupt\n",
        "exit 7\n",
    ];
    let started = std::time::Instant::now();
    let (status, screen) =
        run_on_terminal(&env, &["enter", "mydeb"], &keys, Duration::from_millis(700));
    assert_eq!(status.code(), Some(7), "{screen}");
    assert!(screen.contains("tty=/dev/pts/"), "{screen}");
    assert!(screen.contains("id=mydeb"), "{screen}");
    assert!(screen.contains("after-interrupt"), "{screen}");
    assert!(!screen.contains("not-interrupted"), "{screen}");
    assert!(started.elapsed() < Duration::from_secs(50), "{screen}");
    assert!(
        !screen.contains("job control"),
        "the shell must own the terminal:\n{screen}"
    );
    assert_eq!(status_of(&env, "mydeb"), "running");

    // On a terminal, stop asks first.
    let (status, screen) = run_on_terminal(&env, &["stop", "mydeb"], &["n\n"], Duration::ZERO);
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(
        screen.contains("Stop mydeb (ending every process in it)?"),
        "{screen}"
    );
    assert_eq!(status_of(&env, "mydeb"), "running");
    let (status, screen) = run_on_terminal(&env, &["stop", "mydeb"], &["y\n"], Duration::ZERO);
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(screen.contains("Stopped box mydeb."), "{screen}");
    assert_eq!(status_of(&env, "mydeb"), "stopped");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn root_gets_a_working_box_too() {
    let env = TestEnv::new("rt-root", User::Root);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "rootbox");
    let out = sh(
        &env,
        "rootbox",
        "id -u; id -un; grep ^ID= /etc/os-release; echo $HOME; echo made-by-root > ~/from-root-box",
    );
    out.success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["0", "root", "ID=debian", env.home.to_str().unwrap()],
        "{out}"
    );
    let meta = std::fs::metadata(env.home.join("from-root-box")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    // Files of other owners in the image keep them: root's mapping is the identity.
    sh(&env, "rootbox", "stat -c %U:%G /var/mail /usr/bin/passwd")
        .success()
        .stdout_has("root:mail")
        .stdout_has("root:root");
    // Without XDG_RUNTIME_DIR (sudo -i, cron) root's state lives in /run/box, which
    // nobody else can create: not in /tmp, where root in any box can squat a name.
    let squatted = Path::new("/tmp/box-run-0");
    let squatted_here = !squatted.exists();
    if squatted_here {
        std::fs::create_dir(squatted).unwrap();
        std::os::unix::fs::chown(squatted, Some(100000), Some(100000)).unwrap();
    }
    let out = env
        .command(&["run", "rootbox", "--", "id", "-un"])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    if squatted_here {
        std::fs::remove_dir(squatted).unwrap();
    }
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout) == "root\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&env, &["rm", "--force", "rootbox"]);
    assert!(list(&env).is_empty());
}

/// The busybox image with `extra` more layers on top, layer N adding `/layers/N` and
/// replacing `/layers/top`, pushed as `repo`.
fn many_layers(repo: &str, extra: usize) -> String {
    use crate::common::{Compression, Entry};
    let mut image = crate::common::fixtures::busybox();
    for n in 1..=extra {
        image = image.entries(
            &[
                Entry::dir("layers"),
                Entry::file(&format!("layers/{n}"), format!("{n}\n")),
                Entry::file("layers/top", format!("{n}\n")),
            ],
            Compression::Gzip,
        );
    }
    image.push(Registry::plain(), repo, "latest").reference
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_image_of_hundreds_of_layers_runs_on_overlayfs() {
    // 200 layers: their lower directories named in full overflow the one page of mount
    // options (about 62 fit).
    let env = TestEnv::new("rt-many-layers", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = many_layers("tests/many-layers", 199);
    ok(&env, &["pull", &reference]);
    ok(
        &env,
        &["create", "--no-entry", "--image", &reference, "many"],
    );
    let out = sh(
        &env,
        "many",
        "ls /layers | wc -l; cat /layers/top /layers/1",
    );
    out.success();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["200", "199", "1"],
        "{out}"
    );
    assert!(!out.stderr.contains("copy"), "{out}");
    assert_eq!(list(&env)[0]["storage"], "overlay");
    // And again, once stopped (the second start finds what the first one made).
    ok(&env, &["stop", "many"]);
    sh(&env, "many", "cat /layers/top")
        .success()
        .stdout_has("199");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_image_of_more_layers_than_overlayfs_stacks_is_a_copy_and_box_says_why() {
    let env = TestEnv::new("rt-too-many-layers", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = many_layers("tests/too-many-layers", 500);
    ok(&env, &["pull", &reference]);
    ok(
        &env,
        &["create", "--no-entry", "--image", &reference, "heap"],
    );
    let out = sh(&env, "heap", "cat /layers/top /layers/1");
    out.success()
        .stderr_has("501 layers")
        .stderr_has("overlayfs stacks at most 500");
    assert_eq!(out.stdout, "500\n1\n", "{out}");
    assert_eq!(list(&env)[0]["storage"], "copy");
}

// ---------------------------------------------------------------------------------------
// Sessions, stray descriptors and stray processes
// ---------------------------------------------------------------------------------------

/// How many live holders have the overlay of box `name` of `env` mounted.
fn holders_mounting(env: &TestEnv, name: &str) -> usize {
    let upper = env.store().join("containers").join(name).join("upper");
    let needle = format!("upperdir={}", upper.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "box-holder")
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
                .is_ok_and(|m| m.contains(&needle))
        })
        .count()
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn every_session_shares_one_holder_and_stop_wins_races() {
    let env = TestEnv::new("rt-sessions", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "bb");
    // busybox `stat -L -c %i`: the inode of the mount namespace of the command.
    let first = ok(
        &env,
        &[
            "run",
            "bb",
            "--",
            "stat",
            "-L",
            "-c",
            "%i",
            "/proc/self/ns/mnt",
        ],
    )
    .stdout;

    // Another session (another XDG_RUNTIME_DIR: cron, su, ssh) joins the same holder,
    // and sees the box running.
    let other = env.dir.join("other-runtime");
    env.mkdir_owned(&other, 0o700);
    let (code, stdout, stderr) = script_output(
        &env,
        &format!(
            "export XDG_RUNTIME_DIR={}; \"$BOX\" run bb -- stat -L -c %i /proc/self/ns/mnt && \"$BOX\" list",
            other.display()
        ),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with(&first), "{stdout}");
    assert!(stdout.contains("running"), "{stdout}");
    // No runtime directory at all: a private one under $TMPDIR.
    let tmp = env.dir.join("tmp");
    env.mkdir_owned(&tmp, 0o1777);
    let no_runtime = format!("unset XDG_RUNTIME_DIR; export TMPDIR={};", tmp.display());
    let (code, stdout, stderr) = script_output(
        &env,
        &format!("{no_runtime} \"$BOX\" run bb -- stat -L -c %i /proc/self/ns/mnt"),
    );
    assert_eq!((code, stdout), (Some(0), first), "{stderr}");
    assert_eq!(holders_mounting(&env, "bb"), 1);

    // A fallback directory somebody else made is not trusted.
    ok(&env, &["stop", "bb"]);
    let planted = tmp.join(format!("box-run-{}", env.uid));
    std::fs::remove_dir_all(&planted).unwrap();
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(
        &planted,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let (code, _, stderr) = script_output(&env, &format!("{no_runtime} \"$BOX\" run bb -- true"));
    assert_eq!(code, Some(125), "{stderr}");
    assert!(stderr.contains("not a private directory"), "{stderr}");
    assert!(stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    std::fs::remove_dir_all(&planted).unwrap();

    // stop racing runs: a process that ignores SIGTERM keeps stop busy while runs keep
    // coming; the box never ends up with two holders on one overlay.
    ok(&env, &["run", "bb", "--", "true"]);
    let stubborn = env.spawn(&["run", "bb", "--", "sh", "-c", "trap '' TERM; sleep 1000"]);
    std::thread::sleep(Duration::from_millis(300));
    let stopper = env.spawn(&["stop", "bb"]);
    for _ in 0..20 {
        let _ = env.run(&["run", "bb", "--", "true"]);
        assert!(
            holders_mounting(&env, "bb") <= 1,
            "two holders on one overlay"
        );
    }
    env.wait(&["stop"], stopper).success();
    let _ = env.wait(&["run"], stubborn);
    ok(&env, &["stop", "bb"]);
    assert_eq!(holders_mounting(&env, "bb"), 0);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_runtime_directory_others_can_write_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let env = TestEnv::new("rt-untrusted", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "bb");
    let runtime = env.runtime_dir.display().to_string();

    // A runtime directory anyone may write to (cron, WSL and container set-ups): another
    // user could put a state or a socket of their own where box looks for the box's.
    // box refuses it, and makes nothing in it.
    mode(&env.runtime_dir, 0o1777);
    env.run(&["run", "bb", "--", "true"]).box_error(&[
        "not a private directory",
        &runtime,
        "writable by",
        "XDG_RUNTIME_DIR",
    ]);
    assert!(!env.runtime_dir.join("box").exists());
    mode(&env.runtime_dir, 0o770);
    env.run(&["run", "bb", "--", "true"]).box_error(&[
        "not a private directory",
        "writable by its group",
        "chmod go-w",
    ]);
    mode(&env.runtime_dir, 0o700);

    // box's directory in it, made by someone else first.
    let (nosub, _) = User::BoxNoSub.ids();
    let planted = env.runtime_dir.join("box");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::chown(&planted, Some(nosub), Some(nosub)).unwrap();
    env.run(&["run", "bb", "--", "true"])
        .box_error(&["not a private directory", &format!("owned by uid {nosub}")]);
    std::fs::remove_dir(&planted).unwrap();

    // A directory above it that others may change (not sticky): they could rename the
    // runtime directory and put their own in its place.
    mode(&env.dir, 0o777);
    let out = env.run(&["run", "bb", "--", "true"]);
    mode(&env.dir, 0o755);
    out.box_error(&[
        &format!("{} (owner uid 0, mode 777)", env.dir.display()),
        "can be changed by its group and others",
    ]);

    // All private: the box runs. Its own directory made writable by others afterwards is
    // not trusted either: a state someone put there, naming a process of theirs (here
    // this test's, on the host), is not joined; the box's record in the store is.
    ok(&env, &["run", "bb", "--", "true"]);
    let own = env.runtime_dir.join("box/bb");
    let state_path = own.join("state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start_time: u64 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    state["pid"] = std::process::id().into();
    state["start_time"] = start_time.into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    mode(&own, 0o777);
    ok(&env, &["run", "bb", "--", "cat", "/etc/os-release"]).stdout_has("box test busybox");
    assert_eq!(status_of(&env, "bb"), "running");
    ok(&env, &["stop", "bb"]);
    mode(&own, 0o700);
    ok(&env, &["run", "bb", "--", "true"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_holder_keeps_no_descriptor_of_its_caller() {
    let env = TestEnv::new("rt-fds", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "bb");
    // The box starts in this pipeline; fd 3 is the pipe's write end. A holder keeping it
    // would keep `cat` waiting forever.
    let child = shell_as(&env, "\"$BOX\" run bb -- echo hi 3>&1 | cat")
        .spawn()
        .unwrap();
    let out = env.wait(&["run", "bb", "(in a pipeline)"], child);
    out.success().stdout_has("hi");
    let holder = holder_pid(&env, "bb");
    // Its own: stdio on /dev/null, the inotify watch on the host's /etc, and the box's
    // own filesystems (its root and its /run) it writes the host-following files through.
    let fds: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{holder}/fd"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let target = std::fs::read_link(e.path()).unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                target.display().to_string(),
            )
        })
        .collect();
    assert!(
        fds.iter().all(|(fd, target)| {
            (["0", "1", "2"].contains(&fd.as_str()) && target == "/dev/null")
                || ["anon_inode:inotify", "/", "/run"].contains(&target.as_str())
        }),
        "the holder has descriptors {fds:?}"
    );
}

/// The mount namespace of process `pid` as `ls -l` in a box shows it (`mnt:[...]`).
fn mnt_ns_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .display()
        .to_string()
}

fn kill_holder(env: &TestEnv, name: &str) -> i32 {
    let holder = holder_pid(env, name);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    holder
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_dead_holders_processes_get_a_new_holder_and_stop_ends_them_all() {
    let env = TestEnv::new("rt-adopt", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "bb");
    let sleeper = env.spawn(&["run", "bb", "--", "sleep", "1000"]);
    // Also a process in a user and mount namespace of its own, nested in the box's.
    let nested = env.spawn(&["run", "bb", "--", "unshare", "-r", "-m", "sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(300));
    let old = kill_holder(&env, "bb");

    // Still running: its overlay is mounted where the sleepers are.
    assert_eq!(status_of(&env, "bb"), "running");
    env.run(&["rm", "bb"])
        .box_error(&["box bb is running", "box rm --force"]);
    // The next run gets a new holder in the same namespaces: never a second overlay.
    let out = ok(&env, &["run", "bb", "--", "ls", "-l", "/proc/self/ns/mnt"]);
    assert!(
        out.stdout.trim().ends_with(&mnt_ns_of(sleeper.id())),
        "not the sleeper's mount namespace:\n{out}"
    );
    assert_ne!(holder_pid(&env, "bb"), old);
    assert_eq!(holders_mounting(&env, "bb"), 1);

    ok(&env, &["stop", "bb"]).stdout_has("Stopped");
    for (what, child) in [("sleep", sleeper), ("unshare", nested)] {
        let out = env.wait(&["run", "bb", "--", what], child);
        assert!(
            out.status.signal().is_some(),
            "{what} survived stop:\n{out}"
        );
    }
    assert_eq!(status_of(&env, "bb"), "stopped");
    ok(&env, &["run", "bb", "--", "true"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_dead_holders_processes_that_hide_the_boxs_run_or_nest_namespaces_are_still_its() {
    let env = TestEnv::new("rt-hidden", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "bb");
    // First a process in a nested user namespace (same mounts): not one a new holder may
    // join; then one that hides the box's /run (bwrap and flatpak mount their own).
    let nested = env.spawn(&["run", "bb", "--", "unshare", "-r", "sleep", "1000"]);
    let hidden = env.spawn(&[
        "run",
        "bb",
        "--",
        "unshare",
        "-r",
        "-m",
        "sh",
        "-c",
        "mount -t tmpfs none /run && exec sleep 1000",
    ]);
    let plain = env.spawn(&["run", "bb", "--", "sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(400));
    kill_holder(&env, "bb");
    assert_eq!(status_of(&env, "bb"), "running");
    // The new holder takes the plain sleeper's namespaces.
    let out = ok(&env, &["run", "bb", "--", "ls", "-l", "/proc/self/ns/user"]);
    let user_ns = std::fs::read_link(format!("/proc/{}/ns/user", plain.id())).unwrap();
    assert!(
        out.stdout.trim().ends_with(&user_ns.display().to_string()),
        "not the plain sleeper's user namespace:\n{out}"
    );
    assert_eq!(holders_mounting(&env, "bb"), 1);
    ok(&env, &["stop", "bb"]);
    for (what, child) in [("nested", nested), ("hidden", hidden), ("plain", plain)] {
        let out = env.wait(&["run", "bb", "--", what], child);
        assert!(
            out.status.signal().is_some(),
            "{what} survived stop:\n{out}"
        );
    }
    // With only a process that hides /run left, the box is still not stopped.
    let hidden = env.spawn(&[
        "run",
        "bb",
        "--",
        "unshare",
        "-r",
        "-m",
        "sh",
        "-c",
        "mount -t tmpfs none /run && exec sleep 1000",
    ]);
    std::thread::sleep(Duration::from_millis(400));
    kill_holder(&env, "bb");
    assert_eq!(status_of(&env, "bb"), "running");
    env.run(&["rm", "bb"]).box_error(&["box bb is running"]);
    env.run(&["run", "bb", "--", "true"])
        .box_error(&["still run", "box stop bb"]);
    ok(&env, &["stop", "bb"]);
    let out = env.wait(&["run", "bb", "--", "hidden"], hidden);
    assert!(out.status.signal().is_some(), "it survived stop:\n{out}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn processes_outside_the_boxs_mount_namespace_block_a_restart_until_stopped() {
    let env = TestEnv::new("rt-leftovers", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "bb");
    // Only a process in a nested mount namespace is left: no namespace to join.
    let nested = env.spawn(&["run", "bb", "--", "unshare", "-r", "-m", "sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(300));
    kill_holder(&env, "bb");
    env.run(&["run", "bb", "--", "true"])
        .box_error(&["still run", "box stop bb"]);
    assert_eq!(holders_mounting(&env, "bb"), 0);
    ok(&env, &["stop", "bb"]).stdout_has("Stopped");
    let out = env.wait(&["run", "bb", "--", "unshare"], nested);
    assert!(
        out.status.signal().is_some(),
        "the nested sleeper survived stop:\n{out}"
    );
    ok(&env, &["run", "bb", "--", "true"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_dead_holders_record_never_names_another_box() {
    let env = TestEnv::new("rt-reuse", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "one");
    box_from(&env, Fixture::Busybox, "two");
    ok(&env, &["run", "one", "--", "true"]);
    // Nothing is left in box one, so the kernel may give its namespace numbers to two.
    kill_holder(&env, "one");
    let sleeper = env.spawn(&["run", "two", "--", "sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status_of(&env, "one"), "stopped");
    assert_eq!(status_of(&env, "two"), "running");
    ok(&env, &["run", "one", "--", "cat", "/run/.containerenv"]).stdout_has("name=\"one\"");
    ok(&env, &["stop", "one"]);
    assert_eq!(status_of(&env, "two"), "running");
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(sleeper.id() as i32), None).is_ok(),
        "stopping box one ended a process of box two"
    );
    ok(&env, &["stop", "two"]);
    env.wait(&["run", "two", "--", "sleep"], sleeper);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn boxes_of_the_same_name_in_two_stores_are_never_confused() {
    // TestEnv's drop stops the boxes of the store set last; the other is stopped below.
    let mut env = TestEnv::new("rt-two-stores", User::BoxTest);
    box_from(&env, Fixture::Busybox, "same");
    ok(&env, &["run", "same", "--", "true"]);
    // Same session (runtime directory), another store.
    let other = env.dir.join("other-data");
    env.mkdir_owned(&other, 0o700);
    let default_store = env.data_home();
    env.set_env("XDG_DATA_HOME", &other);
    box_from(&env, Fixture::Multilayer, "same");
    let in_other = sh(&env, "same", "test -d /data && echo multilayer");
    ok(&env, &["stop", "--all", "--yes"]);
    in_other.success().stdout_has("multilayer");
    env.set_env("XDG_DATA_HOME", &default_store);
    sh(&env, "same", "test -d /data || echo busybox")
        .success()
        .stdout_has("busybox");
}
