//! Root in a box without subordinate ids (box's fake root), end to end as `boxnosub`:
//! `sudo` inside runs commands as root in a user namespace nested in the box's, with the
//! seccomp filter that fakes ownership and identity changes. apt installs packages from
//! the real Debian mirror (a box shares the host's network), every file stays the user's,
//! nothing outside the box's store changes, and the nested root cannot change anything
//! the user could not.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::boxes::{Boxes, box_from, ok, sh};
use crate::common::{Fixture, Registry, StoreState, TestEnv, User, box_bin};

/// Every path below `dir` (not following symlinks).
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

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn sudo_in_a_box_without_subordinate_ids_is_a_fake_root_that_installs_packages() {
    let env = TestEnv::new("fr-apt", User::BoxNoSub);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "fr");
    // The first start writes the box's files; what follows may change only the box.
    ok(&env, &["run", "fr", "--", "true"]);
    let mine = env.home.join("mine.txt");
    env.write_user_file(&mine, "mine\n", 0o644);
    let container = env.store().join("containers/fr");
    let outside_box =
        |env: &TestEnv| StoreState::capture_except(&env.dir, &["home/.local/share/box/containers"]);
    let before = outside_box(&env);
    let host_dpkg = std::fs::read("/var/lib/dpkg/status").unwrap();

    // sudo's common forms give root; scripts keep working.
    for form in [
        "sudo id -u",
        "sudo -n id -u",
        "sudo -u root id -u",
        "sudo -- id -u",
        "sudo -nE id -u",
        "sudo -i id -u",
    ] {
        let out = sh(&env, "fr", form);
        assert_eq!(out.success().stdout.trim(), "0", "{form}:\n{out}");
    }
    let out = sh(
        &env,
        "fr",
        "sudo whoami; sudo -i pwd; MARK=kept sudo -E sh -c 'echo $MARK'",
    );
    assert_eq!(
        out.success().stdout.lines().collect::<Vec<_>>(),
        ["root", "/root", "kept"],
        "{out}"
    );
    // sudo's environment policy, and the user themself as a target (no root then).
    let out = sh(
        &env,
        "fr",
        &format!(
            "sudo sh -c 'echo $HOME $USER $SUDO_USER $PATH $CONTAINER_ID'; sudo -u {} id -u",
            User::BoxNoSub.name()
        ),
    );
    assert_eq!(
        out.success().stdout.lines().collect::<Vec<_>>(),
        [
            format!(
                "/root root {} /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin fr",
                User::BoxNoSub.name()
            ),
            env.uid.to_string()
        ],
        "{out}"
    );
    // Another user does not exist for this root: a clear error, sudo's status.
    sh(&env, "fr", "sudo -u www-data id")
        .status(1)
        .stderr_has("www-data")
        .stderr_has("only your own user id");

    // Ownership changes succeed and are not kept: the file stays the user's.
    let out = sh(
        &env,
        "fr",
        &format!(
            "sudo chown root:root {0} && sudo chown 33:33 {0} && echo changed",
            mine.display()
        ),
    );
    out.success().stdout_has("changed");
    let meta = std::fs::metadata(&mine).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (env.uid, env.gid));

    // apt and dpkg get through, _apt sandbox included, against the real mirror.
    let out = env.run(&[
        "run", "fr", "--", "sh", "-c",
        "sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello && hello",
    ]);
    out.success().stdout_has("Hello, world!");
    assert!(!out.stderr.contains("_apt"), "{out}");
    ok(&env, &["run", "fr", "--", "hello"]).stdout_has("Hello, world!");

    // Everything apt and dpkg wrote is the user's on the host.
    let upper = container.join("upper");
    let hello = upper.join("usr/bin/hello");
    assert_eq!(std::fs::symlink_metadata(&hello).unwrap().uid(), env.uid);
    let foreign: Vec<_> = files_below(&upper)
        .into_iter()
        .filter(|p| {
            p.symlink_metadata()
                .is_ok_and(|m| (m.uid(), m.gid()) != (env.uid, env.gid))
        })
        .collect();
    assert!(foreign.is_empty(), "files not the user's: {foreign:?}");

    // Nothing outside the box's store changed: not the user's home, store or runtime
    // files, not the host's package database.
    let diff = before.diff(&outside_box(&env));
    assert!(diff.is_empty(), "changed outside the box: {diff:#?}");
    assert_eq!(std::fs::read("/var/lib/dpkg/status").unwrap(), host_dpkg);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_nested_root_cannot_change_what_the_user_cannot() {
    let env = TestEnv::new("fr-contain", User::BoxNoSub);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "bb");
    // A root-owned file, another user's file, and a root-owned directory on the host.
    let root_file = env.dir.join("root-file");
    std::fs::write(&root_file, "root\n").unwrap();
    let (other_uid, other_gid) = User::BoxTest.ids();
    let other_file = env.dir.join("other-file");
    std::fs::write(&other_file, "other\n").unwrap();
    std::os::unix::fs::chown(&other_file, Some(other_uid), Some(other_gid)).unwrap();
    let snapshot = |env: &TestEnv| StoreState::capture_except(&env.dir, &["home", "run"]);
    let before = snapshot(&env);
    // Other tests mount and unmount meanwhile: only mounts at this test's paths count.
    let dir = env.dir.display().to_string();
    let mounts_here = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&dir))
            .count()
    };

    let host = |p: &Path| format!("/run/host{}", p.display());
    let attempts = [
        format!("echo x >> {}", host(&root_file)),
        format!("chmod 666 {}", host(&root_file)),
        format!("rm -f {}", host(&root_file)),
        format!("echo x > {}", host(&other_file)),
        format!("chmod 777 {}", host(&other_file)),
        format!("touch {}", host(&env.dir.join("new-in-root-dir"))),
        "cat /run/host/etc/shadow".to_owned(),
        "touch /run/host/etc/box-fakeroot-was-here".to_owned(),
        format!("mount -t tmpfs none {}", host(&env.dir)),
        "mount -t tmpfs none /run/host/tmp".to_owned(),
        "mount -o remount,rw /run/host".to_owned(),
        "mount -t tmpfs none /usr".to_owned(),
    ];
    // sudo works in this busybox box (no libc of its own for box's: the shim runs the
    // host's box with the host's loader), so what fails below is the kernel's refusal.
    sh(&env, "bb", "sudo id -u").success().stdout_has("0");
    // What the stand-in answers without running a command is its result, on stdout.
    sh(&env, "bb", "sudo -l")
        .success()
        .stdout_has("(root) NOPASSWD: ALL");
    sh(&env, "bb", "sudo -V")
        .success()
        .stdout_has("stand-in for sudo");
    for attempt in &attempts {
        let out = sh(&env, "bb", &format!("sudo sh -c '{attempt}'"));
        assert_ne!(out.code(), Some(0), "the fake root could: {attempt}\n{out}");
        assert!(
            ["permission denied", "operation not permitted"]
                .iter()
                .any(|e| out.stderr.to_lowercase().contains(e)),
            "not refused by the kernel: {attempt}\n{out}"
        );
    }
    // A faked chown of another user's file changes nothing either.
    sh(
        &env,
        "bb",
        &format!("sudo busybox chown 0:0 {}", host(&other_file)),
    )
    .success();
    // The nested root is root only towards the user's own files.
    let out = sh(
        &env,
        "bb",
        "sudo sh -c 'id -u; cat /proc/self/uid_map; grep ^Seccomp: /proc/self/status; grep NoNewPrivs /proc/self/status'",
    );
    let text = out.success().stdout.clone();
    let words: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(words[0], ["0"], "{out}");
    assert_eq!(words[1], ["0", &env.uid.to_string(), "1"], "{out}");
    assert_eq!(words[2], ["Seccomp:", "2"], "{out}");
    assert_eq!(words[3], ["NoNewPrivs:", "1"], "{out}");

    let diff = before.diff(&snapshot(&env));
    assert!(
        diff.is_empty(),
        "the fake root changed host files: {diff:#?}"
    );
    assert!(!Path::new("/etc/box-fakeroot-was-here").exists());
    assert_eq!(mounts_here(), 0, "a mount appeared on the host at {dir}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_dry_run_shows_the_single_id_mapping_and_the_filter() {
    let env = TestEnv::new("fr-dry", User::BoxNoSub);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    let out = ok(
        &env,
        &["create", "--dry-run", "--image", &reference, "plan"],
    );
    let uid = env.uid;
    out.stdout_has(&format!("uid map (inside->outside+count): {uid}->{uid}+1"))
        .stdout_has(&format!("uid map 0->{uid}+1"))
        .stdout_has("fake (return 0, change nothing)")
        .stdout_has("setresuid")
        .stdout_has("/usr/local/bin/sudo");
}

/// `box run NAME -- sudo true` as `boxnosub` in a user namespace (of the test's own,
/// mapping every id to itself) whose limit of user namespaces lets the box's holder
/// start but no namespace nested in it: the kernel refuses the fake root's.
#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn without_room_for_a_nested_user_namespace_sudo_says_what_is_missing() {
    let env = TestEnv::new("fr-nons", User::BoxNoSub);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "bb");
    ok(&env, &["stop", "bb"]);
    let template = env.command(&[]);
    let script = format!(
        // The shell exec'd by unshare before the maps existed lost its capabilities
        // (capabilities(7)): the second exec, with uid 0 mapped, gets them back.
        "read go && exec sh -c 'echo 1 > /proc/sys/user/max_user_namespaces && exec setpriv --reuid={} --regid={} --clear-groups {} run bb -- sudo true'",
        env.uid,
        env.gid,
        box_bin()
    );
    let mut child = Command::new("unshare")
        .args(["--user", "--", "sh", "-c", &script])
        .env_clear()
        .envs(
            template
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .current_dir(&env.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running unshare (util-linux)");
    let pid = child.id();
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_link(format!("/proc/{pid}/ns/user")).ok() == Some(ours.clone()) {
        assert!(
            std::time::Instant::now() < deadline,
            "unshare never unshared"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for map in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{map}"), "0 0 4294967295\n").unwrap();
    }
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = env.wait(&["run", "bb", "--", "sudo", "true"], child);
    out.status(125)
        .stderr_has("cannot become root in this box")
        .stderr_has("limit of user namespaces")
        .stderr_has("user.max_user_namespaces");
    // The holder lives in the test's namespace, which box on the host cannot join to
    // stop it: end it here.
    let state = env.runtime_dir.join("box/bb/state.json");
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let holder = state["pid"].as_i64().unwrap() as i32;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder),
        nix::sys::signal::Signal::SIGKILL,
    );
    let alive = || {
        std::fs::read_to_string(format!("/proc/{holder}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
