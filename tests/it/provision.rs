//! Provisioning end to end: a plain minbase Debian image (no sudo, no locales, no man)
//! provisioned for real against the Debian mirror as the unprivileged test user, with
//! `--additional-packages`, both hooks, `--user root`, `box upgrade` and a `kill -9` in
//! the middle of it; a box whose mirror is unreachable; the user without subordinate ids;
//! and, for the package managers this machine cannot reach, busybox images whose package
//! manager is a stand-in that records how it was called.
//!
//! The real provisioning costs a few minutes of downloads and dpkg: one box carries every
//! assertion that can share it.

use std::time::{Duration, Instant};

use crate::common::boxes::{Boxes, list, ok};
use crate::common::registry::closed_port;
use crate::common::standin::CALLS;
use crate::common::{Fixture, Outcome, Registry, TestEnv, User};

/// Pull `fixture` and return its reference (provisioning on for the environment).
fn pulled(env: &TestEnv, fixture: Fixture) -> String {
    env.set_provisioning(true);
    let reference = fixture.push(Registry::plain()).image.reference;
    ok(env, &["pull", &reference]);
    reference
}

fn provisioned(env: &TestEnv, name: &str) -> bool {
    list(env)
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no box {name} in `box list --json`"))["provisioned"]
        .as_bool()
        .unwrap()
}

fn status(env: &TestEnv, name: &str) -> String {
    crate::common::boxes::status_of(env, name)
}

fn stdout_of(out: &Outcome) -> String {
    out.success();
    out.stdout.trim().to_owned()
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_bare_debian_box_is_provisioned_for_real_resumes_after_kill_9_and_gets_root() {
    let env = TestEnv::new("provision-debian", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = pulled(&env, Fixture::DebianBare);
    let log = env.store().join("containers/mb/provision.log");

    // Before: nothing of what provisioning brings, and no root from inside.
    let create = [
        "create",
        "--no-entry",
        "--image",
        &image,
        "--additional-packages",
        "figlet bc",
        "--pre-init-hooks",
        "if test -e /usr/bin/sudo; then echo yes; else echo no; fi >> /pre-hook",
        "--init-hooks",
        "id -u > /init-hook; test -x /usr/bin/sudo && echo sudo >> /init-hook",
        "mb",
    ];
    let mut child = env.spawn(&create);
    // kill -9 once dpkg unpacks: the worst moment (a half-configured dpkg database).
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("\nUnpacking ") {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let out = env.wait(&create, child);
            panic!(
                "box create ended ({status}) before dpkg unpacked anything:\n{out}\nlog:\n{text}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "no dpkg unpack within 600 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    let killed = env.wait(&create, child);
    assert_eq!(TestEnv::signalled(&killed), Some(9), "{killed}");
    assert!(
        !provisioned(&env, "mb"),
        "an interrupted run must not look done"
    );
    let listing = ok(&env, &["list", "--no-color"]);
    listing.stdout_has("not provisioned");

    // The next run resumes (the warm path finds the interrupted run's flag), then works.
    let resumed = env.run(&["run", "mb", "--", "sudo", "-n", "true"]);
    resumed.success();
    resumed.stderr_has("resuming the provisioning of box mb");
    resumed.stderr_has("box mb is provisioned");
    assert!(provisioned(&env, "mb"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("dpkg --configure -a"), "{text}");
    assert!(text.contains("apt-get install"), "{text}");

    // What provisioning installed, and the hooks in their order (each run appends).
    for command in [
        &["sudo", "-n", "true"][..],
        &["less", "--version"],
        &["ps", "-p", "1"],
        &["man", "--version"],
        &["figlet", "hi"],
        &["sh", "-c", "echo 1+1 | bc"],
        &["test", "-e", "/usr/share/bash-completion/bash_completion"],
        &["test", "-e", "/etc/ssl/certs/ca-certificates.crt"],
        &["test", "-e", "/usr/share/zoneinfo/UTC"],
    ] {
        let mut args = vec!["run", "mb", "--"];
        args.extend_from_slice(command);
        ok(&env, &args);
    }
    // No second copy of what was installed: the downloaded packages are gone.
    let cached = stdout_of(&env.run(&[
        "run",
        "mb",
        "--user",
        "root",
        "--",
        "find",
        "/var/cache/apt/archives",
        "-name",
        "*.deb",
    ]));
    assert_eq!(cached, "", "downloaded packages left in the box");
    let pre = stdout_of(&env.run(&["run", "mb", "--", "cat", "/pre-hook"]));
    assert_eq!(
        pre.lines().next(),
        Some("no"),
        "pre-init hooks run before the packages"
    );
    let init = stdout_of(&env.run(&["run", "mb", "--", "cat", "/init-hook"]));
    assert_eq!(init, "0\nsudo", "init hooks run as root after the packages");

    // The user: passwordless sudo that installs, and a working package.
    ok(
        &env,
        &[
            "run", "mb", "--", "sudo", "-n", "apt-get", "install", "-y", "hello",
        ],
    );
    let hello = ok(&env, &["run", "mb", "--", "hello"]);
    hello.stdout_has("Hello, world!");

    // Root from the host: root's environment, the caller's directory.
    let root = env.run(&[
        "run",
        "mb",
        "--user",
        "root",
        "--",
        "sh",
        "-c",
        "echo $(id -u) $HOME $USER $LOGNAME $SHELL; pwd",
    ]);
    assert_eq!(
        stdout_of(&root),
        format!("0 /root root root /bin/bash\n{}", env.home.display())
    );
    assert_eq!(
        stdout_of(&env.run(&["run", "mb", "-u", "0", "--", "whoami"])),
        "root"
    );
    let enter = env.run(&["enter", "mb", "--user", "root", "--", "id", "-un"]);
    assert_eq!(stdout_of(&enter), "root");
    // Another account of the box's passwd, by name.
    let nobody = env.run(&[
        "run",
        "mb",
        "--user",
        "nobody",
        "--",
        "sh",
        "-c",
        "id -u; echo $HOME",
    ]);
    assert_eq!(stdout_of(&nobody), "65534\n/nonexistent");
    env.run(&["run", "mb", "--user", "nosuchuser", "--", "true"])
        .box_error(&["no user `nosuchuser` in box `mb`"]);

    // Upgrade: the package manager's output, one summary line, success.
    let upgrade = ok(&env, &["upgrade", "mb"]);
    upgrade.stdout_has("mb: upgraded");
    let running = ok(&env, &["upgrade", "--all", "--running"]);
    running.stdout_has("mb: upgraded");
    ok(&env, &["stop", "mb"]);
    let none = ok(&env, &["upgrade", "--all", "--running"]);
    none.stderr_has("no box to upgrade");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_unreachable_mirror_is_a_clear_error_and_the_box_is_kept_not_provisioned() {
    let env = TestEnv::new("provision-offline", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = pulled(&env, Fixture::DebianBare);
    let port = closed_port();
    let hook = format!(
        "echo 'deb http://127.0.0.1:{port}/debian bookworm main' > /etc/apt/sources.list; rm -f /etc/apt/sources.list.d/*"
    );
    let out = env.run(&[
        "create",
        "--no-entry",
        "--image",
        &image,
        "--pre-init-hooks",
        &hook,
        "off",
    ]);
    out.box_error(&[
        "box `off` was created, but provisioning it failed at step 3/6, installing",
        "the network or the package mirror could not be reached",
        &format!("127.0.0.1:{port}"),
        "Connection refused",
        "containers/off/provision.log",
        "resumes provisioning",
    ]);
    assert!(!provisioned(&env, "off"));
    assert_eq!(status(&env, "off"), "stopped");

    // --user root never resumes: it is how the user repairs the box.
    let root = env.run(&[
        "run",
        "off",
        "--user",
        "root",
        "--",
        "cat",
        "/etc/apt/sources.list",
    ]);
    root.stdout_has(&format!("127.0.0.1:{port}"));
    assert!(!root.stderr.contains("resuming"), "{root}");
    ok(&env, &["stop", "off"]);
    // A plain run resumes, and fails the same way.
    let again = env.run(&["run", "off", "--", "true"]);
    again.box_error(&["installing", "could not be reached"]);
    again.stderr_has("resuming the provisioning of box off");
    assert!(!provisioned(&env, "off"));
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn without_subordinate_ids_a_bare_box_is_provisioned_with_the_fake_root() {
    let env = TestEnv::new("provision-nosub", User::BoxNoSub);
    let _boxes = Boxes(&env);
    let image = pulled(&env, Fixture::DebianBare);
    // Provisioned for real against the mirror, as root being box's fake root.
    ok(&env, &["create", "--no-entry", "--image", &image, "ns"]);
    assert!(provisioned(&env, "ns"));
    ok(
        &env,
        &[
            "run", "ns", "--", "sudo", "-n", "apt-get", "install", "-y", "hello",
        ],
    );
    ok(&env, &["run", "ns", "--", "hello"]).stdout_has("Hello, world!");
    let root = ok(&env, &["run", "ns", "--user", "root", "--", "id", "-u"]);
    assert_eq!(stdout_of(&root), "0");
    // Every file the packages wrote is the user's on the host.
    let upper = env.store().join("containers/ns/upper");
    let hello = upper.join("usr/bin/hello");
    assert!(hello.exists(), "hello is not in the box's upper directory");
    let mut stack = vec![upper.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.path().symlink_metadata().unwrap();
            assert_eq!(
                std::os::unix::fs::MetadataExt::uid(&meta),
                env.uid,
                "{} is not the user's",
                entry.path().display()
            );
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    // Oneself by name works with one mapped id too.
    let me = env.run(&[
        "run",
        "ns",
        "--user",
        "boxnosub",
        "--",
        "sh",
        "-c",
        "id -un; echo $USER",
    ]);
    assert_eq!(stdout_of(&me), "boxnosub\nboxnosub");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn other_package_managers_are_called_as_the_catalogue_says() {
    let env = TestEnv::new("provision-standins", User::BoxTest);
    let _boxes = Boxes(&env);
    env.set_provisioning(true);
    let cases: &[(&str, &[&str])] = &[
        (
            "/usr/bin/pacman",
            &[
                "/usr/bin/pacman -Sy --noconfirm --needed sudo ",
                " vulkan-swrast ",
                " alsa-plugins ",
                " bash",
                " nano",
            ],
        ),
        (
            "/sbin/apk",
            &[
                "/sbin/apk update\n/sbin/apk add sudo ",
                " mesa-vulkan-swrast ",
                " alsa-plugins-pulse ",
                " nano",
            ],
        ),
        (
            "/usr/bin/zypper",
            &[
                "/usr/bin/zypper --non-interactive refresh\n/usr/bin/zypper --non-interactive install --no-recommends sudo ",
                " Mesa-dri ",
                " alsa-plugins-pulse ",
                // The downloaded packages are not kept.
                "\n/usr/bin/zypper --non-interactive clean --all",
            ],
        ),
        (
            "/usr/bin/xbps-install",
            &[
                "/usr/bin/xbps-install -S\n/usr/bin/xbps-install -y sudo ",
                " mesa-dri ",
                " alsa-plugins-pulseaudio ",
            ],
        ),
        (
            "/usr/bin/emerge",
            &[
                "/usr/bin/emerge --sync --quiet\n/usr/bin/emerge --noreplace --quiet app-admin/sudo ",
                " media-libs/mesa ",
            ],
        ),
    ];
    // Defaults from config.toml, used when the flag is not given.
    env.write_user_file(
        &env.home.join(".config/box/config.toml"),
        "provision = true\nadditional-packages = [\"nano\"]\n",
        0o644,
    );
    for (path, expected) in cases {
        let image = Fixture::StandIn(path)
            .push(Registry::plain())
            .image
            .reference;
        let name = path.rsplit('/').next().unwrap();
        let created = ok(&env, &["create", "--no-entry", "--image", &image, name]);
        created.stderr_has(&format!("box {name} is provisioned"));
        let calls = stdout_of(&env.run(&["run", name, "--", "cat", CALLS]));
        for needle in *expected {
            assert!(calls.contains(needle), "{path}: {needle:?} not in\n{calls}");
        }
        // ALSA's default device, written after the install (none for Gentoo's USE flag).
        let alsa = env.run(&[
            "run",
            name,
            "--",
            "cat",
            "/etc/alsa/conf.d/99-box-pulse-default.conf",
        ]);
        if path.ends_with("emerge") {
            assert!(!alsa.status.success(), "{alsa}");
        } else {
            alsa.success()
                .stdout_has("pcm.!default {\n    type pulse\n}");
        }
        assert!(provisioned(&env, name), "{path}");
        ok(&env, &["rm", "--force", name]);
    }

    // The base set: a shell and build tools, without graphics, audio and fonts.
    let image = Fixture::StandIn("/usr/bin/pacman")
        .push(Registry::plain())
        .image
        .reference;
    let created = ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--provision-set",
            "base",
            "--image",
            &image,
            "lean",
        ],
    );
    created.stderr_has("box lean is provisioned");
    let calls = stdout_of(&env.run(&["run", "lean", "--", "cat", CALLS]));
    assert!(calls.contains("--needed sudo "), "{calls}");
    for desktop in ["vulkan-swrast", "alsa-plugins", "mesa", "ttf-dejavu"] {
        assert!(
            !calls.contains(desktop),
            "{desktop} in a base box:\n{calls}"
        );
    }
    // The same from the settings.
    env.write_user_file(
        &env.home.join(".config/box/config.toml"),
        "provision = true\nprovision-set = \"base\"\n",
        0o644,
    );
    ok(&env, &["create", "--no-entry", "--image", &image, "lean2"]);
    let calls = stdout_of(&env.run(&["run", "lean2", "--", "cat", CALLS]));
    assert!(
        calls.contains("--needed sudo ") && !calls.contains("vulkan-swrast"),
        "{calls}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn ctrl_c_during_provisioning_says_so_and_the_next_start_resumes() {
    use std::os::unix::process::CommandExt as _;
    let env = TestEnv::new("provision-ctrl-c", User::BoxTest);
    let _boxes = Boxes(&env);
    env.set_provisioning(true);
    let image = Fixture::StandIn("/sbin/apk")
        .push(Registry::plain())
        .image
        .reference;
    // A step that takes long the first time only.
    let hook = "if test -e /started; then true; else touch /started; sleep 120; fi";
    let create = [
        "create",
        "--no-entry",
        "--image",
        &image,
        "--pre-init-hooks",
        hook,
        "cc",
    ];
    // Its own process group, as a terminal's foreground job: Ctrl-C reaches all of it.
    let mut command = env.command(&create);
    command.process_group(0);
    let child = command.spawn().expect("starting box create");
    let started = env.store().join("containers/cc/upper/started");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the hook never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process_group(group, rustix::process::Signal::INT).unwrap();
    let out = env.wait(&create, child);
    assert_eq!(out.status.code(), Some(130), "{out}");
    out.stderr_has("provisioning box `cc` was interrupted (Ctrl-C) at step 1/");
    out.stderr_has("the next `box enter cc` or `box run cc` resumes provisioning");
    assert!(!provisioned(&env, "cc"));
    let resumed = env.run(&["run", "cc", "--", "true"]);
    resumed.success();
    resumed.stderr_has("box cc is provisioned");
    assert!(provisioned(&env, "cc"));
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn dnf_gets_the_flags_hooks_in_order_the_hosts_locale_and_upgrades() {
    // plain lines on stderr without a terminal.
    let mut env = TestEnv::new("provision-dnf", User::BoxTest);
    env.set_env("LANG", "de_DE.UTF-8");
    let _boxes = Boxes(&env);
    env.set_provisioning(true);
    let image = Fixture::StandIn("/usr/bin/dnf")
        .push(Registry::plain())
        .image
        .reference;
    let created = ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &image,
            "--additional-packages",
            "vim git",
            "--additional-packages",
            "htop",
            "--pre-init-hooks",
            "echo pre >> /pm-calls",
            "--init-hooks",
            "echo init >> /pm-calls",
            "dnf",
        ],
    );
    created.no_animation();
    created.stderr_has("it lacks sudo");
    created.stderr_has("locale de_DE.UTF-8");
    let calls = stdout_of(&env.run(&["run", "dnf", "--", "cat", CALLS]));
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 4, "{calls}");
    assert_eq!(lines[0], "pre");
    assert!(
        lines[1].starts_with("/usr/bin/dnf install -y --setopt=install_weak_deps=False sudo ")
            && lines[1].contains(" glibc-langpack-de ")
            && lines[1].contains(" bash ")
            && lines[1].ends_with(" vim git htop"),
        "{calls}"
    );
    // The download cache emptied after the install, before the init hooks.
    assert_eq!(lines[2], "/usr/bin/dnf clean packages");
    assert_eq!(lines[3], "init");
    let upgrade = ok(&env, &["upgrade", "dnf"]);
    upgrade.stdout_has("dnf: upgraded");
    let calls = stdout_of(&env.run(&["run", "dnf", "--", "cat", CALLS]));
    assert!(
        calls.ends_with("/usr/bin/dnf upgrade -y --refresh"),
        "{calls}"
    );

    // On a terminal the latest output line is drawn under the step, then cleared.
    let (status, shown) = crate::common::boxes::run_on_terminal(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &image,
            "--pre-init-hooks",
            "echo hello-from-the-hook",
            "dnf2",
        ],
        &[],
        Duration::from_millis(10),
    );
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("\r\x1b[2K  hello-from-the-hook") && shown.contains("[1/5] pre-init hook"),
        "{shown:?}"
    );

    // Any account of the box's passwd, by name or uid, with its own environment.
    let www = env.run(&[
        "run",
        "dnf",
        "-u",
        "33",
        "--",
        "sh",
        "-c",
        "id -un; echo $HOME $USER",
    ]);
    assert_eq!(stdout_of(&www), "www-data\n/var/www www-data");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_image_that_has_everything_costs_file_checks_only() {
    let env = TestEnv::new("provision-complete", User::BoxTest);
    let _boxes = Boxes(&env);
    env.set_provisioning(true);
    let image = Fixture::StandIn("complete")
        .push(Registry::plain())
        .image
        .reference;
    let created = ok(&env, &["create", "--no-entry", "--image", &image, "full"]);
    assert!(!created.stderr.contains("provisioning"), "{created}");
    // Not even started: no holder, no package manager, no log.
    assert_eq!(status(&env, "full"), "stopped");
    assert!(provisioned(&env, "full"));
    assert!(!env.store().join("containers/full/provision.log").exists());
    env.run(&["run", "full", "--", "test", "-e", CALLS])
        .status(1);

    // No package manager at all: a warning saying what is missing, the box is created.
    let busybox = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &busybox]);
    let created = ok(&env, &["create", "--no-entry", "--image", &busybox, "bare"]);
    created.stderr_has("has no package manager box knows");
    created.stderr_has("it lacks sudo");
    created.stderr_has("--user root");
    assert!(provisioned(&env, "bare"));
    ok(&env, &["run", "bare", "--", "true"]);

    // A box without the record's provisioning part (old records, --no-provision) is
    // never provisioned by a start.
    let image = Fixture::StandIn("/usr/bin/dnf")
        .push(Registry::plain())
        .image
        .reference;
    let created = ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--no-provision",
            "--image",
            &image,
            "old",
        ],
    );
    assert!(!created.stderr.contains("provision"), "{created}");
    let record = env.store().join("containers/old/box.json");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(!text.contains("provision"), "{text}");
    ok(&env, &["run", "old", "--", "true"]);
    env.run(&["run", "old", "--", "test", "-e", CALLS])
        .status(1);
    assert!(provisioned(&env, "old"));
}
