//! What a distrobox or toolbox user tries first, in box's own commands, as the
//! unprivileged test user: distrobox's spellings (`enter -n`, `-ap`, `-nw`, `run NAME CMD`
//! without `--`), its flags box answers with its own errors (`--init`, `--root`,
//! `--additional-flags`), `box enter IMAGE-REFERENCE`; toolbox's defaults from the
//! host's os-release (a file of the test's, through `BOX_OS_RELEASE`); `box edit` of
//! volumes and devices taking effect at the next start; and the prompt mark of a shell
//! in a box, on a real terminal.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::boxes::{Boxes, box_from, list, ok, run_on_terminal, sh, status_of};
use crate::common::fixtures::busybox;
use crate::common::{Compression, Entry, Fixture, Registry, TestEnv, User};

fn names(env: &TestEnv) -> Vec<String> {
    list(env)
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn distrobox_spellings_work_and_its_other_flags_get_box_s_answer() {
    let env = TestEnv::new("habits", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = box_from(&env, Fixture::Busybox, "dev");

    // enter -n / --name, as distrobox spells it; -nw before the separator only.
    ok(
        &env,
        &[
            "enter",
            "-n",
            "dev",
            "--",
            "sh",
            "-c",
            "echo in-$CONTAINER_ID",
        ],
    )
    .stdout_has("in-dev");
    ok(
        &env,
        &["enter", "--name", "dev", "-nw", "--", "echo", "-nw"],
    )
    .stdout_has("-nw");
    // run NAME CMD without `--`: the command's own options stay its own.
    let out = ok(&env, &["run", "dev", "echo", "-n", "no-newline"]);
    assert_eq!(out.stdout, "no-newline", "{out}");
    ok(&env, &["run", "-u", "root", "dev", "id", "-u"]).stdout_has("0");
    // -ap is --additional-packages (clap names the long form when they conflict).
    env.run(&[
        "create",
        "-ap",
        "vim",
        "--no-provision",
        "--image",
        &reference,
        "x",
    ])
    .status(2)
    .stderr_has("--additional-packages");

    // distrobox's flags for what box does another way: box's own error, no pointer at
    // a flag of a similar name (--init-hooks, --additional-packages).
    for (args, says) in [
        (
            &["create", "--init", "--image", &reference, "y"][..],
            "box --init is coming",
        ),
        (
            &["create", "-I", "--image", &reference, "y"],
            "box --init is coming",
        ),
        (&["enter", "--root", "dev"], "--user root"),
        (&["rm", "--root", "dev"], "--user root"),
        (
            &[
                "create",
                "--additional-flags",
                "--env A=1",
                "--image",
                &reference,
                "y",
            ],
            "--volume SRC:DST",
        ),
        (
            &["enter", "-a", "--env=A=1", "dev", "--", "true"],
            "env KEY=VALUE CMD",
        ),
    ] {
        let out = env.run(args);
        out.status(2).stderr_has("box: error:").stderr_has(says);
        assert!(!out.stderr.contains("similar argument"), "{out}");
    }
    assert_eq!(names(&env), ["dev"]);

    // An image reference: a box named after it, offered for creation (here: --yes), and
    // entered again by the same reference.
    ok(&env, &["enter", "--yes", &reference, "--", "echo", "made"]).stdout_has("made");
    assert_eq!(names(&env), ["busybox-latest", "dev"]);
    ok(
        &env,
        &["enter", &reference, "--", "sh", "-c", "echo $CONTAINER_ID"],
    )
    .stdout_has("busybox-latest");
    // Without a terminal or --yes nothing is made.
    let other = format!("{}:other", reference.rsplit_once(':').unwrap().0);
    env.run(&["enter", &other, "--", "true"])
        .status(125)
        .stderr_has("no box named `busybox-other`");
    env.run(&["enter", "Not/A:Reference", "--", "true"])
        .status(125);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn toolbox_defaults_come_from_the_host_s_release() {
    let mut env = TestEnv::new("habits-host", User::BoxTest);
    // "The host" runs testos 7, which the user's catalogue knows (on the loopback
    // registry).
    let image = busybox()
        .entries(
            &[Entry::dir("etc"), Entry::file("etc/release", "seven\n")],
            Compression::Gzip,
        )
        .push(Registry::plain(), "habits/testos", "7");
    let repo = image.reference.rsplit_once(':').unwrap().0.to_owned();
    env.write_user_file(
        &env.home.join(".config/box/distros.d/testos.toml"),
        format!(
            "name = \"testos\"\nimage = \"{repo}:latest\"\npackage-manager = \"apk\"\nrelease-tag = \"{{VERSION_ID}}\"\n"
        ),
        0o644,
    );
    let os_release = env.dir.join("os-release");
    std::fs::write(
        &os_release,
        "NAME=\"Test OS\"\nID=testos\nVERSION_ID=\"7\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&os_release, std::fs::Permissions::from_mode(0o644)).unwrap();
    env.set_env("BOX_OS_RELEASE", os_release.clone());
    let _boxes = Boxes(&env);

    // With no box at all, `box enter` offers the host's (here: --yes).
    ok(&env, &["enter", "--yes", "--", "cat", "/etc/release"]).stdout_has("seven");
    assert_eq!(names(&env), ["testos-7"]);
    ok(&env, &["rm", "--force", "testos-7"]);

    // `box create` alone: the host's distribution and release, named after them.
    ok(&env, &["create", "--no-entry"]).stdout_has(&format!("Created box testos-7 from {repo}:7"));
    // A name that is no distribution's gets the host's image too, as with toolbox.
    ok(&env, &["create", "--no-entry", "mine"]).stdout_has(&format!("from {repo}:7"));
    // Two boxes: `box enter` alone enters the host's.
    ok(&env, &["enter", "--", "sh", "-c", "echo $CONTAINER_ID"]).stdout_has("testos-7");
    // One box: that one.
    ok(&env, &["rm", "--force", "testos-7"]);
    ok(&env, &["enter", "--", "sh", "-c", "echo $CONTAINER_ID"]).stdout_has("mine");
    // Two boxes, none the host's: which one is the user's to say.
    ok(
        &env,
        &["create", "--no-entry", "--image", &image.reference, "third"],
    );
    env.run(&["enter", "--", "true"])
        .status(125)
        .stderr_has("which box?")
        .stderr_has("mine, third");

    // A host the catalogue does not know: `box create` alone says so.
    std::fs::write(&os_release, "ID=unknownos\nVERSION_ID=1\n").unwrap();
    env.run(&["create", "--no-entry"])
        .status(125)
        .stderr_has("does not know this host's distribution");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn box_edit_changes_volumes_and_devices_at_the_next_start() {
    let mut env = TestEnv::new("habits-edit", User::BoxTest);
    // A CDI spec of the tests' own vendor: one device that sets a variable.
    let specs = env.dir.join("cdi");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(
        specs.join("example.json"),
        r#"{"cdiVersion": "0.6.0", "kind": "example.com/sensor",
  "devices": [{"name": "s0", "containerEdits": {"env": ["EXAMPLE_SENSOR=s0"]}}]}"#,
    )
    .unwrap();
    std::fs::set_permissions(
        specs.join("example.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    env.set_env("BOX_CDI_SPEC_DIRS", specs.clone());
    let _boxes = Boxes(&env);
    let data = env.dir.join("data");
    env.mkdir_owned(&data, 0o755);
    env.write_user_file(&data.join("file"), "shared\n", 0o644);
    box_from(&env, Fixture::Busybox, "dev");
    let check = "cat /data/file 2>/dev/null || echo no-data; echo \"sensor=${EXAMPLE_SENSOR:-none}\"; uname -n";
    let out = sh(&env, "dev", check);
    assert!(out.stdout.starts_with("no-data\nsensor=none\n"), "{out}");

    // Running: refused, with what to do; nothing changes.
    let volume = format!("{}:/data:ro", data.display());
    env.run(&["edit", "dev", "--volume", &volume])
        .status(125)
        .stderr_has("box `dev` is running, so it was not changed")
        .stderr_has("box stop dev");
    ok(&env, &["stop", "dev"]);
    // A bad change changes nothing either.
    env.run(&["edit", "dev", "--device", "example.com/sensor=nosuch"])
        .status(125);
    env.run(&["edit", "dev", "--remove-volume", "/nothing"])
        .status(125)
        .stderr_has("box `dev` has no volume at /nothing");
    env.run(&["edit", "dev"])
        .status(2)
        .stderr_has("nothing to change");

    let out = ok(
        &env,
        &[
            "edit",
            "dev",
            "--volume",
            &volume,
            "--device",
            "example.com/sensor=s0",
            "--hostname",
            "edited",
        ],
    );
    out.stdout_has("added the volume")
        .stdout_has("added the device example.com/sensor=s0")
        .stdout_has("next start");
    assert_eq!(status_of(&env, "dev"), "stopped");
    let out = sh(&env, "dev", check);
    assert_eq!(out.stdout, "shared\nsensor=s0\nedited\n", "{out}");
    // Read-only, as asked.
    let out = sh(&env, "dev", "echo x > /data/file");
    assert_ne!(out.code(), Some(0), "{out}");

    // And back: the next start has neither.
    ok(&env, &["stop", "dev"]);
    ok(
        &env,
        &[
            "edit",
            "dev",
            "--remove-volume",
            "/data",
            "--remove-device",
            "example.com/sensor=s0",
            "--no-hostname",
        ],
    );
    let out = sh(&env, "dev", check);
    assert!(out.stdout.starts_with("no-data\nsensor=none\n"), "{out}");
    assert!(!out.stdout.contains("edited"), "{out}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_shell_in_a_box_says_which_box_it_is_in() {
    let env = TestEnv::new("habits-prompt", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "deb");
    // The user's own prompt, set after the system's profile as ~/.bashrc does.
    env.write_user_file(&env.home.join(".bashrc"), "PS1='mine:\\w\\$ '\n", 0o644);
    env.write_user_file(&env.home.join(".bash_profile"), ". ~/.bashrc\n", 0o644);
    let keys = ["echo first-''line\n", "exit\n"];
    let (status, screen) =
        run_on_terminal(&env, &["enter", "deb"], &keys, Duration::from_millis(700));
    assert_eq!(status.code(), Some(0), "{screen}");
    let lines = crate::common::screen::render(&screen, 200);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("📦[deb] mine:~$ echo first-''line")),
        "the prompt has no mark, or not the user's own prompt after it:\n{}",
        lines.join("\n")
    );
    // The mark is the box's own file: the host's /etc has none.
    ok(
        &env,
        &["run", "deb", "--", "cat", "/etc/profile.d/box-prompt.sh"],
    )
    .stdout_has("CONTAINER_ID");
    assert!(!std::path::Path::new("/etc/profile.d/box-prompt.sh").exists());
    // Opting out: BOX_PROMPT=off in the user's own file.
    env.write_user_file(
        &env.home.join(".bashrc"),
        "PS1='mine:\\w\\$ '\nBOX_PROMPT=off\n",
        0o644,
    );
    let (_, screen) = run_on_terminal(&env, &["enter", "deb"], &keys, Duration::from_millis(700));
    let lines = crate::common::screen::render(&screen, 200);
    assert!(
        lines.iter().any(|l| l.starts_with("mine:~$ echo first")),
        "{}",
        lines.join("\n")
    );
}
