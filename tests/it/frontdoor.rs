//! The distrobox front door end to end, as the unprivileged `boxtest`: box run by the
//! names desktop tools and scripts call (`distrobox`, `distrobox-VERB`, `podman`, and in a
//! box `distrobox-export`, `distrobox-host-exec`), with their outputs checked the way those
//! tools parse them:
//! - `distrobox list --no-color` split on `|` into four non-empty fields, a 12-digit hex
//!   id, `Up`/`Exited`/`Created` statuses (BoxBuddy: running unless "Exited" or
//!   "Created"), sorted by name; `create -C` one image per line; `version` split on `:`;
//! - distrobox's own documented command lines (`--additional-flags "--env ..."`,
//!   `--volume ...:rw --additional-flags "--pids-limit -1"`, `--clone`, `enter -e`);
//! - options box lacks refused by name with a hint, never with clap's guesses;
//! - podman's `ps --all --format=json` (Ptyxis: `Id`, `Names`, `Labels.manager`), the Go
//!   templates BoxBuddy passes, `stats`, `images`, `inspect`, `events` (streamed);
//! - `distrobox-export` inside a box run through `distrobox enter --name`, its listing
//!   lines as DistroShelf splits them, the exported entry named `{box}-{id}.desktop`;
//! - `box install-distrobox-names`, and a Flatpak-like call with a clean environment
//!   through the installed names.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::boxes::{Boxes, ok};
use crate::common::{Fixture, Outcome, Registry, TestEnv, User, box_bin};

/// Links named like distrobox's commands (and podman) to the box under test, in a
/// directory of the test's.
fn names(env: &TestEnv) -> PathBuf {
    let dir = env.dir.join("names");
    if !dir.exists() {
        std::fs::create_dir(&dir).unwrap();
        for name in [
            "distrobox",
            "distrobox-create",
            "distrobox-enter",
            "distrobox-list",
            "distrobox-rm",
            "distrobox-stop",
            "distrobox-upgrade",
            "distrobox-ephemeral",
            "distrobox-generate-entry",
            "distrobox-assemble",
            "distrobox-export",
            "podman",
        ] {
            std::os::unix::fs::symlink(box_bin(), dir.join(name)).unwrap();
        }
    }
    dir
}

/// Run box as `name` (a link's file name) with `args`, as the test user.
fn as_name(env: &TestEnv, name: &str, args: &[&str]) -> Outcome {
    let link = names(env).join(name);
    let child = env.command_of(&link, args).spawn().unwrap();
    env.wait(args, child)
}

fn distrobox(env: &TestEnv, args: &[&str]) -> Outcome {
    as_name(env, "distrobox", args)
}

/// `distrobox list --no-color` as DistroShelf reads it: every line after the header
/// splits on `|` into exactly four non-empty fields; (id, name, status, image) each.
#[track_caller]
fn list(env: &TestEnv) -> Vec<[String; 4]> {
    let out = distrobox(env, &["list", "--no-color"]);
    out.success();
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(
            "ID           | NAME                 | STATUS             | IMAGE                         "
        ),
        "{out}"
    );
    lines
        .map(|line| {
            let fields: Vec<String> = line.split('|').map(|f| f.trim().to_owned()).collect();
            assert_eq!(fields.len(), 4, "{line}\n{out}");
            assert!(fields.iter().all(|f| !f.is_empty()), "{line}\n{out}");
            // BoxBuddy's test for a real row: a 12-digit hex id.
            assert!(
                fields[0].len() == 12 && fields[0].bytes().all(|b| b.is_ascii_hexdigit()),
                "{line}"
            );
            assert!(!line.contains('\x1b'), "colour without a terminal: {line}");
            fields.try_into().unwrap()
        })
        .collect()
}

/// BoxBuddy's reading of a status: running unless it says Exited or Created.
fn boxbuddy_running(status: &str) -> bool {
    !status.contains("Exited") && !status.contains("Created")
}

/// A usage refusal: status 2, box's error and hint, no clap guess.
#[track_caller]
fn refused(out: &Outcome, needle: &str) {
    out.status(2);
    assert!(out.stderr.starts_with("box: error: "), "{out}");
    assert!(out.stderr.contains("\nhint: "), "{out}");
    assert!(out.stderr.contains(needle), "{out}");
    for guess in ["similar", "tip:", "Did you mean"] {
        assert!(!out.stderr.contains(guess), "clap's guess: {out}");
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn distrobox_names_take_distrobox_s_flags_and_print_what_tools_parse() {
    let env = TestEnv::new("frontdoor-distrobox", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = Fixture::Busybox.push(Registry::plain()).image.reference;
    let apps = env.data_home().join("applications");

    // Created in reverse order, listed by name; a new box has never run: Created.
    ok(&env, &["pull", &image]);
    distrobox(
        &env,
        &["create", "-n", "zeta", "-i", &image, "-Y", "--no-entry"],
    )
    .success();
    distrobox(
        &env,
        &["create", "--name", "alpha", "--image", &image, "--yes"],
    )
    .success();
    // Without --no-entry, the entry is where distrobox writes it.
    assert!(apps.join("alpha.desktop").is_file());
    let rows = list(&env);
    assert_eq!(
        rows.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(),
        ["alpha", "zeta"]
    );
    assert!(rows.iter().all(|r| r[2] == "Created" && r[3] == image));
    assert_ne!(rows[0][0], rows[1][0]);
    let ids: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();

    // enter: the name by --name or first, the command after --, -e, or the name.
    for args in [
        &["enter", "--name", "alpha", "--", "echo", "one"][..],
        &["enter", "alpha", "-e", "echo", "one"],
        &["enter", "alpha", "echo", "one"],
        &[
            "enter", "-n", "alpha", "--no-tty", "-nw", "-e", "echo", "one",
        ],
    ] {
        let out = distrobox(&env, args);
        out.success();
        assert_eq!(out.stdout, "one\n", "{out}");
    }
    let rows = list(&env);
    assert!(rows[0][2].starts_with("Up "), "{rows:?}");
    assert!(boxbuddy_running(&rows[0][2]));
    assert!(!boxbuddy_running(&rows[1][2]));
    assert_eq!(
        rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        ids,
        "ids stay"
    );
    // distrobox's own lines: an environment at enter, and one kept from create.
    let out = distrobox(
        &env,
        &[
            "enter",
            "--additional-flags",
            "--env MY_VAR=value",
            "--name",
            "alpha",
            "--",
            "sh",
            "-c",
            "echo $MY_VAR",
        ],
    );
    out.success();
    assert_eq!(out.stdout, "value\n", "{out}");
    let dir = env.home.join("my-dir");
    env.mkdir_owned(&dir, 0o755);
    env.write_user_file(&dir.join("f"), "in my-dir\n", 0o644);
    distrobox(
        &env,
        &[
            "create",
            "--image",
            &image,
            "--name",
            "test",
            "--additional-flags",
            "--env MY_VAR=value",
            "--volume",
            &format!("{}:/usr/local/my-dir:rw", dir.display()),
            "--additional-flags",
            "--pids-limit -1",
            "--no-entry",
            "-Y",
        ],
    )
    .success();
    let out = distrobox(
        &env,
        &[
            "enter",
            "test",
            "--",
            "sh",
            "-c",
            "echo $MY_VAR; cat /usr/local/my-dir/f",
        ],
    );
    out.success();
    assert_eq!(out.stdout, "value\nin my-dir\n", "{out}");
    // --clean-path: the standard PATH.
    let out = distrobox(
        &env,
        &[
            "enter",
            "-n",
            "test",
            "--clean-path",
            "--",
            "sh",
            "-c",
            "echo $PATH",
        ],
    );
    out.success();
    assert_eq!(
        out.stdout.trim(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );

    // stop: Exited, with an age.
    distrobox(&env, &["stop", "alpha", "--yes"]).success();
    let rows = list(&env);
    assert!(
        rows[0][2].starts_with("Exited (0) ") && rows[0][2].ends_with(" ago"),
        "{rows:?}"
    );
    assert!(!boxbuddy_running(&rows[0][2]));
    // clone (BoxBuddy's line), then rm --force of the copy.
    distrobox(&env, &["stop", "--all", "--yes"]).success();
    distrobox(
        &env,
        &["create", "--clone", "alpha", "--name", "alpha-copy"],
    )
    .success();
    assert!(list(&env).iter().any(|r| r[1] == "alpha-copy"));
    distrobox(&env, &["rm", "--force", "alpha-copy"]).success();

    // create -C: one image per line, what BoxBuddy and DistroShelf list.
    for name in ["distrobox", "distrobox-create"] {
        let args: &[&str] = if name == "distrobox" {
            &["create", "-C"]
        } else {
            &["--compatibility"]
        };
        let out = as_name(&env, name, args);
        out.success();
        let images: Vec<&str> = out.stdout.lines().collect();
        assert!(images.len() >= 8, "{out}");
        assert!(
            images
                .iter()
                .all(|i| i.contains('/') && i.contains(':') && !i.contains(' ')),
            "{out}"
        );
        assert!(images.contains(&"docker.io/library/debian:stable"), "{out}");
    }
    // version, as DistroShelf splits it.
    for args in [&["version"][..], &["--version"], &["-V"]] {
        let out = distrobox(&env, args);
        out.success();
        let version = out.stdout.split(':').nth(1).unwrap().trim();
        assert!(version.starts_with(|c: char| c.is_ascii_digit()), "{out}");
        assert!(out.stdout.contains("box"), "{out}");
    }

    // Each verb by its own name.
    let out = as_name(&env, "distrobox-list", &["--no-color"]);
    out.success();
    assert_eq!(out.stdout.lines().count(), 4, "{out}");
    let out = as_name(&env, "distrobox-enter", &["zeta", "--", "echo", "two"]);
    out.success();
    assert_eq!(out.stdout, "two\n");
    as_name(&env, "distrobox-stop", &["--all", "--yes"]).success();
    as_name(&env, "distrobox-upgrade", &["-Y", "--all", "--running"]).success();
    let out = as_name(
        &env,
        "distrobox-ephemeral",
        &["-i", &image, "--", "echo", "gone soon"],
    );
    out.success();
    assert_eq!(out.stdout, "gone soon\n", "{out}");
    assert_eq!(list(&env).len(), 3, "the temporary box is gone");
    let manifest = env.home.join("distrobox.ini");
    env.write_user_file(&manifest, format!("[from-ini]\nimage={image}\n"), 0o644);
    let out = as_name(
        &env,
        "distrobox-assemble",
        &["create", "--file", manifest.to_str().unwrap(), "--dry-run"],
    );
    out.success();
    out.stdout_has("from-ini");
    // generate-entry: NAME.desktop, a custom icon, --all, --delete.
    let icon = env.home.join("icon.png");
    env.write_user_file(&icon, "png", 0o644);
    as_name(
        &env,
        "distrobox-generate-entry",
        &["zeta", "--icon", icon.to_str().unwrap()],
    )
    .success();
    let entry = std::fs::read_to_string(apps.join("zeta.desktop")).unwrap();
    assert!(
        entry.contains(&format!("\nIcon={}\n", icon.display())),
        "{entry}"
    );
    distrobox(&env, &["generate-entry", "--all"]).success();
    assert!(apps.join("test.desktop").is_file());
    distrobox(&env, &["generate-entry", "zeta", "--delete"]).success();
    assert!(!apps.join("zeta.desktop").exists());
    // rm --rm-home takes a box's own home along (plain rm keeps it).
    let homes = env.home.join("homes");
    for name in ["kept", "gone"] {
        let home = homes.join(name);
        distrobox(
            &env,
            &[
                "create",
                "-n",
                name,
                "-i",
                &image,
                "-Y",
                "--no-entry",
                "--home",
                home.to_str().unwrap(),
            ],
        )
        .success();
        distrobox(
            &env,
            &[
                "enter",
                name,
                "--",
                "touch",
                home.join("made-in-the-box").to_str().unwrap(),
            ],
        )
        .success();
    }
    distrobox(&env, &["rm", "-f", "kept"]).success();
    distrobox(&env, &["rm", "-f", "--rm-home", "gone"]).success();
    assert!(homes.join("kept/made-in-the-box").is_file());
    assert!(!homes.join("gone").exists());
    assert!(env.home.is_dir());
    // rm takes the entry along.
    as_name(&env, "distrobox-rm", &["alpha", "-Y"]).success();
    assert!(!apps.join("alpha.desktop").exists());
    assert_eq!(list(&env).len(), 2);

    // What box lacks: named, with what to do; nothing created.
    for (args, needle) in [
        (
            &["create", "-i", image.as_str(), "-n", "x", "--init"][..],
            "--init",
        ),
        (
            &["create", "-i", image.as_str(), "-n", "x", "--unshare-netns"],
            "--unshare-netns",
        ),
        (&["enter", "test", "--root"], "--root"),
        (
            &["create", "-i", image.as_str(), "-n", "x", "--frobnicate"],
            "--frobnicate",
        ),
        (&["migrate"], "migrate"),
    ] {
        refused(&distrobox(&env, args), needle);
    }
    distrobox(
        &env,
        &[
            "create",
            "-i",
            &image,
            "-n",
            "x",
            "-Y",
            "--additional-flags",
            "--privileged",
        ],
    )
    .box_error(&["--privileged"]);
    assert_eq!(list(&env).len(), 2, "nothing was created");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_podman_window_answers_the_desktop_tools_questions_about_boxes() {
    let env = TestEnv::new("frontdoor-podman", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);
    ok(&env, &["create", "--no-entry", "--image", &image, "dev"]);
    ok(&env, &["create", "--no-entry", "--image", &image, "idle"]);

    // DistroShelf follows events while boxes come and go.
    let mut events = env.command_of(&names(&env).join("podman"), &["events", "--format", "json"]);
    let mut events = events.stdout(Stdio::piped()).spawn().unwrap();
    let (sender, received) = mpsc::channel::<Value>();
    let stdout = events.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value: Value = serde_json::from_str(&line).expect("an event line is JSON");
            if sender.send(value).is_err() {
                break;
            }
        }
    });
    let wait_for = |name: &str, status: &str| -> Value {
        loop {
            let event = received
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no {status} event of {name}"));
            assert_eq!(event["Type"], "container");
            assert_eq!(event["Attributes"]["manager"], "distrobox");
            if event["Name"] == name && event["Status"] == status {
                return event;
            }
        }
    };
    // The current state first.
    wait_for("dev", "create");
    wait_for("idle", "create");
    ok(&env, &["run", "dev", "--", "true"]);
    let started = wait_for("dev", "start");

    // Ptyxis: `podman ps --all --format=json`, distroboxes by label.
    let out = as_name(&env, "podman", &["ps", "--all", "--format=json"]);
    out.success();
    let containers = out.json();
    let containers = containers.as_array().unwrap();
    assert_eq!(containers.len(), 2, "{out}");
    let dev = containers.iter().find(|c| c["Names"][0] == "dev").unwrap();
    assert_eq!(dev["Labels"]["manager"], "distrobox");
    assert_eq!(dev["Labels"]["distrobox.unshare_groups"], "0");
    assert_eq!(dev["State"], "running");
    assert_eq!(dev["Id"], started["ID"]);
    assert!(dev["Id"].as_str().unwrap().len() == 64);
    assert!(dev["Command"].is_array() && dev["IsInfra"] == false);
    let idle = containers.iter().find(|c| c["Names"][0] == "idle").unwrap();
    assert_eq!(idle["State"], "created");
    // Without --all: running ones only. Templates and filters as scripts use them.
    let out = as_name(
        &env,
        "podman",
        &["ps", "--format", "{{.Names}}\\t{{.Status}}"],
    );
    out.success();
    assert!(out.stdout.starts_with("dev\tUp "), "{out}");
    assert_eq!(out.stdout.lines().count(), 1);
    let out = as_name(
        &env,
        "podman",
        &[
            "ps",
            "-a",
            "--filter",
            "label=manager=distrobox",
            "--format",
            "{{.ID}}|{{.Image}}|{{.Names}}|{{.Status}}|{{.Labels}}",
        ],
    );
    out.success();
    assert_eq!(out.stdout.lines().count(), 2, "{out}");
    assert!(out.stdout.contains("map[box.version:"), "{out}");
    let out = as_name(&env, "podman", &["ps", "-a"]);
    out.success();
    assert!(out.stdout.starts_with("CONTAINER ID"), "{out}");

    // BoxBuddy: stats with a template (split on `;`), images with literal quotes.
    let out = as_name(
        &env,
        "podman",
        &[
            "stats",
            "dev",
            "--no-stream",
            "--format",
            "{{.CPUPerc}};{{.MemPerc}};{{.MemUsage}}",
        ],
    );
    out.success();
    let fields: Vec<&str> = out.stdout.trim().split(';').collect();
    assert_eq!(fields.len(), 3, "{out}");
    assert!(
        fields[0].ends_with('%') && fields[1].ends_with('%'),
        "{out}"
    );
    assert!(fields[2].contains(" / "), "{out}");
    // DistroShelf: stats and images as JSON, by the id `distrobox list` shows.
    let short = &dev["Id"].as_str().unwrap()[..12];
    let out = as_name(
        &env,
        "podman",
        &["stats", "--no-stream", "--format", "json", short],
    );
    out.success();
    let stats = out.json();
    assert_eq!(stats[0]["name"], "dev");
    assert!(stats[0]["mem_usage"].as_str().unwrap().contains(" / "));
    assert!(stats[0]["pids"].as_str().unwrap().parse::<u32>().unwrap() >= 1);
    let out = as_name(
        &env,
        "podman",
        &["images", "--format=\"{{.Repository}}:{{.Tag}}\""],
    );
    out.success();
    assert_eq!(out.stdout.trim().replace('"', ""), image, "{out}");
    let out = as_name(&env, "podman", &["images", "--format", "json"]);
    out.success();
    assert_eq!(out.json()[0]["Names"][0], image.as_str());
    // inspect, with a template too.
    let out = as_name(&env, "podman", &["inspect", "dev"]);
    out.success();
    assert_eq!(out.json()[0]["State"]["Status"], "running");
    let out = as_name(
        &env,
        "podman",
        &[
            "inspect",
            "--format",
            "{{.State.Status}} {{index .Config.Labels \"manager\"}}",
            "idle",
        ],
    );
    out.success();
    assert_eq!(out.stdout, "created distrobox\n");
    // Version, as Ptyxis and DistroShelf read it.
    let out = as_name(&env, "podman", &["version", "--format=json"]);
    out.success();
    assert!(
        out.json()["Client"]["Version"]
            .as_str()
            .unwrap()
            .split('.')
            .count()
            == 3
    );
    as_name(&env, "podman", &["--version"])
        .success()
        .stdout_has("podman version ");

    // Stopping and removing reach the event stream.
    ok(&env, &["stop", "dev"]);
    wait_for("dev", "died");
    ok(&env, &["rm", "idle"]);
    wait_for("idle", "remove");
    let _ = events.kill();
    let _ = events.wait();

    // What podman does besides these questions is not box's.
    let out = as_name(&env, "podman", &["run", "--rm", "alpine"]);
    assert!(!out.status.success());
    out.stderr_has("needs a real podman");
    let out = as_name(
        &env,
        "podman",
        &["ps", "--format", "{{range .Names}}{{.}}{{end}}"],
    );
    out.box_error(&["range"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn installed_names_reach_a_flatpak_like_call_and_never_replace_a_real_distrobox() {
    let env = TestEnv::new("frontdoor-install", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);
    ok(&env, &["create", "--no-entry", "--image", &image, "dev"]);
    let bin = env.home.join(".local/bin");
    env.mkdir_owned(&bin, 0o755);

    // By default: ~/.local/bin when it is on PATH (the user cannot write /usr/local/bin);
    // `podman` too, as no other podman is on that PATH.
    let mut command = env.command(&["install-distrobox-names"]);
    command.env("PATH", &bin);
    let out = env.wait(&["install-distrobox-names"], command.spawn().unwrap());
    out.success();
    out.stdout_has("Flatpak");
    for name in [
        "distrobox",
        "distrobox-enter",
        "distrobox-export",
        "distrobox-host-exec",
        "podman",
    ] {
        let target = std::fs::read_link(bin.join(name)).unwrap();
        assert_eq!(target, std::fs::canonicalize(box_bin()).unwrap(), "{name}");
    }

    // A Flatpak'd tool's call: `flatpak-spawn --host` with a bare environment.
    let run = |program: &str, args: &[&str]| {
        let out = std::process::Command::new("env")
            .arg("-i")
            .arg(format!("HOME={}", env.home.display()))
            .arg(format!("PATH={}:/usr/bin:/bin", bin.display()))
            .arg(program)
            .args(args)
            .uid(env.uid)
            .gid(env.gid)
            .current_dir(&env.home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = run("distrobox", &["list", "--no-color"]);
    let row = listed.lines().nth(1).expect("one box");
    let fields: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(fields[1..], ["dev", "Created", image.as_str()], "{listed}");
    assert_eq!(
        run("distrobox-enter", &["--name", "dev", "--", "echo", "hi"]),
        "hi\n"
    );
    assert!(run("podman", &["ps", "-a", "--format", "{{.Names}}"]).contains("dev"));

    // A real distrobox is never replaced, and --remove leaves it.
    let real = env.dir.join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("distrobox"), "#!/bin/sh\necho real\n").unwrap();
    let out = env.run(&[
        "install-distrobox-names",
        "--prefix",
        real.to_str().unwrap(),
    ]);
    out.box_error(&["distrobox", "never replaces"]);
    assert_eq!(
        std::fs::read_to_string(real.join("distrobox")).unwrap(),
        "#!/bin/sh\necho real\n"
    );
    assert_eq!(
        std::fs::read_dir(&real).unwrap().count(),
        1,
        "nothing was added"
    );
    // A podman on PATH: no podman link, and the output says what `podman` then shows.
    std::fs::write(real.join("podman"), "#!/bin/sh\n").unwrap();
    let other = env.home.join("other-bin");
    let mut command = env.command(&[
        "install-distrobox-names",
        "--prefix",
        other.to_str().unwrap(),
    ]);
    command.env("PATH", format!("{}:{}", other.display(), real.display()));
    let out = env.wait(&["install-distrobox-names"], command.spawn().unwrap());
    out.success();
    out.stdout_has("Left podman out");
    assert!(other.join("distrobox").exists());
    assert!(std::fs::symlink_metadata(other.join("podman")).is_err());
    let out = env.run(&[
        "install-distrobox-names",
        "--prefix",
        bin.to_str().unwrap(),
        "--remove",
    ]);
    out.success();
    assert_eq!(std::fs::read_dir(&bin).unwrap().count(), 0, "{out}");
}

/// A file only the host has (the test's directory is not shared with boxes).
fn host_marker(env: &TestEnv) -> PathBuf {
    let path = env.dir.join("on-the-host-only");
    std::fs::write(&path, "host file\n").unwrap();
    path
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn distrobox_export_and_host_exec_work_inside_a_box_as_tools_call_them() {
    let env = TestEnv::new("frontdoor-export", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = Fixture::Debian.push(Registry::plain()).image.reference;
    distrobox(
        &env,
        &[
            "create",
            "--name",
            "dev",
            "--image",
            &image,
            "--yes",
            "--no-entry",
        ],
    )
    .success();
    let apps = env.data_home().join("applications");

    // BoxBuddy and DistroShelf export an app through `distrobox enter`; the entry is
    // `{box}-{file}.desktop`, which is how they see it as exported.
    let out = distrobox(
        &env,
        &[
            "enter",
            "--name",
            "dev",
            "--",
            "distrobox-export",
            "--app",
            "/usr/share/applications/debian-xterm.desktop",
        ],
    );
    out.success();
    let entry = apps.join("dev-debian-xterm.desktop");
    let text = std::fs::read_to_string(&entry).unwrap_or_else(|_| panic!("{out}"));
    assert!(text.contains("\nStartupWMClass="), "{text}");
    let listed: Vec<String> = std::fs::read_dir(&apps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        listed.contains(&"dev-debian-xterm.desktop".to_owned()),
        "{listed:?}"
    );
    let out = distrobox(
        &env,
        &["enter", "dev", "--", "distrobox-export", "--list-apps"],
    );
    out.success();
    let fields: Vec<&str> = out.stdout.trim_end().split('|').map(str::trim).collect();
    assert_eq!(fields, ["XTerm", entry.to_str().unwrap()], "{out}");

    // A binary, listed as DistroShelf splits it (the source in single quotes).
    let bin = env.home.join(".local/bin");
    let out = distrobox(
        &env,
        &[
            "enter",
            "dev",
            "--",
            "distrobox-export",
            "--bin",
            "/usr/bin/xterm",
            "-ep",
            bin.to_str().unwrap(),
            "-ef",
            "-fa Mono",
        ],
    );
    out.success();
    let wrapper = std::fs::read_to_string(bin.join("xterm")).unwrap();
    assert!(
        wrapper.contains("'/usr/bin/xterm' '-fa' 'Mono' \"$@\""),
        "{wrapper}"
    );
    let out = distrobox(
        &env,
        &["enter", "dev", "--", "distrobox-export", "--list-binaries"],
    );
    out.success();
    let line = out.stdout.lines().next().unwrap_or_default();
    let (source, exported) = line.split_once('|').unwrap();
    assert_eq!(source.trim().trim_matches('\''), "/usr/bin/xterm");
    assert_eq!(exported.trim(), bin.join("xterm").to_str().unwrap());
    // Deleting, as both tools do.
    distrobox(
        &env,
        &[
            "enter",
            "--name",
            "dev",
            "--",
            "distrobox-export",
            "-d",
            "--app",
            "/usr/share/applications/debian-xterm.desktop",
        ],
    )
    .success();
    distrobox(
        &env,
        &[
            "enter",
            "dev",
            "--",
            "distrobox-export",
            "--bin",
            "/usr/bin/xterm",
            "-d",
        ],
    )
    .success();
    assert!(!entry.exists() && !bin.join("xterm").exists());

    // distrobox's advanced manifest links host commands to distrobox-host-exec: the
    // link's name is the host command it runs.
    let marker = host_marker(&env);
    let out = distrobox(
        &env,
        &[
            "enter",
            "dev",
            "--",
            "sh",
            "-c",
            &format!(
                "! /usr/bin/cat {0} 2>/dev/null && distrobox-host-exec cat {0} && sudo ln -sf /usr/bin/distrobox-host-exec /usr/local/bin/cat && cat {0}",
                marker.display()
            ),
        ],
    );
    out.success();
    assert_eq!(out.stdout, "host file\nhost file\n", "{out}");

    // Ptyxis' line: no tty, its additional flags, `env --chdir` and variables.
    let out = distrobox(
        &env,
        &[
            "enter",
            "--no-tty",
            "dev",
            "--additional-flags",
            "--tty --preserve-fds=1",
            "--",
            "env",
            "--chdir=/usr",
            "GREETING=hi",
            "sh",
            "-c",
            "echo $GREETING from $(pwd)",
        ],
    );
    out.success();
    assert_eq!(out.stdout, "hi from /usr\n", "{out}");
}
