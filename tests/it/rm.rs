//! `box rm` asks before removing on a terminal (unless `--yes`), removes without a
//! question when there is none (scripts), and the menu entry's Remove action never
//! deletes a box without a question; trees of any depth are removed (boxes and layers)
//! with the descriptors a desktop session allows.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::boxes::{Boxes, ok, run_on_terminal};
use crate::common::oci::Layer;
use crate::common::{Compression, Entry, Fixture, Registry, TestEnv, User};

fn names(env: &TestEnv) -> Vec<String> {
    match ok(env, &["list", "--json"]).json() {
        Value::Array(items) => items
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_owned())
            .collect(),
        other => panic!("`box list --json` is not an array: {other}"),
    }
}

fn entry_path(env: &TestEnv, name: &str) -> PathBuf {
    env.data_home()
        .join("applications")
        .join(format!("box-{name}.desktop"))
}

const PAUSE: Duration = Duration::from_millis(500);

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn rm_asks_on_a_terminal_and_not_in_scripts() {
    let env = TestEnv::new("rm-asks", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    for name in ["one", "two", "three", "four"] {
        // With the menu entry, which rm removes with the box.
        ok(&env, &["create", "--image", &reference, name]);
        assert!(entry_path(&env, name).exists());
    }
    ok(&env, &["run", "one", "--", "true"]);

    // "n" keeps the box, and its entry.
    let (status, shown) = run_on_terminal(&env, &["rm", "--force", "one"], &["n\n"], PAUSE);
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("Box one is running and will be stopped. Remove box one (")
            && shown.contains("your home stays)? [Y/n]"),
        "no question:\n{shown}"
    );
    assert!(shown.contains("Nothing removed."), "{shown}");
    assert_eq!(names(&env), ["four", "one", "three", "two"]);
    assert!(entry_path(&env, "one").exists());

    // Enter means yes, as for distrobox; the running box is stopped and removed.
    let (status, shown) = run_on_terminal(&env, &["rm", "--force", "one"], &["\n"], PAUSE);
    assert!(status.success(), "{shown}");
    assert!(shown.contains("Removed box one."), "{shown}");
    assert!(!names(&env).contains(&"one".to_owned()));
    assert!(!entry_path(&env, "one").exists());

    // --yes does not ask.
    let (status, shown) = run_on_terminal(&env, &["rm", "--yes", "two"], &[], PAUSE);
    assert!(status.success(), "{shown}");
    assert!(!shown.contains("[Y/n]"), "asked despite --yes:\n{shown}");
    assert_eq!(names(&env), ["four", "three"]);

    // --all names every box it would remove, and "no" removes none of them.
    let (status, shown) = run_on_terminal(&env, &["rm", "--all"], &["no\n"], PAUSE);
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("Remove 2 boxes: four, three ("),
        "no list of boxes:\n{shown}"
    );
    assert_eq!(names(&env), ["four", "three"]);

    // Without a terminal (a script), rm removes without asking, as before.
    let out = ok(&env, &["rm", "three"]);
    assert!(!out.stderr.contains("[Y/n]"), "{out}");
    assert_eq!(names(&env), ["four"]);
    assert!(!entry_path(&env, "three").exists());

    // --interactive without a terminal removes nothing.
    env.run(&["rm", "--interactive", "four"]).box_error(&[
        "no terminal to ask on",
        "four was not removed",
        "box rm --yes four",
    ]);
    assert_eq!(names(&env), ["four"]);
    env.run(&["rm", "--interactive", "--yes", "four"]).status(2);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_menu_entry_remove_action_never_removes_without_a_question() {
    let env = TestEnv::new("rm-entry", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    ok(&env, &["create", "--image", &reference, "dev"]);
    let path = entry_path(&env, "dev");
    let validate = Command::new("desktop-file-validate")
        .arg(&path)
        .output()
        .expect("desktop-file-validate (package desktop-file-utils) must be installed");
    let said = String::from_utf8_lossy(&validate.stdout).into_owned()
        + &String::from_utf8_lossy(&validate.stderr);
    assert!(
        validate.status.success() && !said.contains("error"),
        "{said}"
    );

    let entry = std::fs::read_to_string(&path).unwrap();
    assert!(entry.contains("\nTerminal=true\n"), "{entry}");
    let exec = entry
        .split("[Desktop Action Remove]")
        .nth(1)
        .and_then(|action| action.lines().find_map(|l| l.strip_prefix("Exec=")))
        .unwrap_or_else(|| panic!("no Remove action:\n{entry}"))
        .to_owned();
    let words: Vec<&str> = exec.split_whitespace().collect();
    // `/usr/bin/env BOX_DATA_HOME=DIR BOX rm ...`: what follows box is its command line.
    let at = words.iter().position(|w| *w == crate::common::box_bin());
    let words = &words[at.unwrap_or_else(|| panic!("box not in {exec}"))..];
    assert_eq!(words[1..], ["rm", "--interactive", "dev"], "{exec}");

    // Launched without a terminal (a desktop that gives actions none): refused.
    env.run(&words[1..]).box_error(&["no terminal to ask on"]);
    assert_eq!(names(&env), ["dev"]);
    // In the terminal GNOME and KDE open for it: asked, and "n" keeps the box.
    let (status, shown) = run_on_terminal(&env, &words[1..], &["n\n"], PAUSE);
    assert!(status.success(), "{shown}");
    assert!(shown.contains("Remove box dev ("), "{shown}");
    assert_eq!(names(&env), ["dev"]);
    let (status, shown) = run_on_terminal(&env, &words[1..], &["y\n"], PAUSE);
    assert!(status.success(), "{shown}");
    assert!(names(&env).is_empty(), "{shown}");
    assert!(!path.exists());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_damaged_box_record_hides_nothing_and_rm_removes_it() {
    let env = TestEnv::new("rm-damaged", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    for name in ["good", "broken"] {
        ok(&env, &["create", "--no-entry", "--image", &reference, name]);
    }
    // Its first start leaves files of the box's root (subordinate ids) in its upper dir.
    ok(&env, &["run", "broken", "--", "true"]);
    ok(&env, &["stop", "broken"]);
    let record = env.store().join("containers/broken/box.json");
    std::fs::write(&record, "{bad").unwrap();

    // The listing shows both, the broken one as such, and says what to do.
    let out = ok(&env, &["list", "--json"]);
    let rows = match out.json() {
        Value::Array(rows) => rows,
        other => panic!("not an array: {other}"),
    };
    let status = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .map(|r| r["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("good").as_deref(), Some("stopped"), "{out}");
    assert_eq!(status("broken").as_deref(), Some("damaged"), "{out}");
    out.stderr_has("box rm --force broken");
    env.run(&["run", "broken", "--", "true"])
        .box_error(&["broken", "box rm --force broken"]);

    // rm removes it, files owned by subordinate ids in its upper directory included.
    ok(&env, &["rm", "--force", "broken"]);
    assert!(!env.store().join("containers/broken").exists());
    assert_eq!(names(&env), ["good"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn rm_shows_how_far_it_got_on_a_terminal_and_nothing_in_a_pipe() {
    let env = TestEnv::new("rm-progress", User::BoxTest);
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    // Boxes with thousands of files of their own to remove (root in the box writes them
    // into the box's own filesystem).
    let fill =
        "set -e; mkdir /many; cd /many; i=0; while [ $i -lt 5000 ]; do : > f$i; i=$((i+1)); done";
    for name in ["big", "piped"] {
        ok(&env, &["create", "--no-entry", "--image", &reference, name]);
        ok(
            &env,
            &["run", name, "--user", "root", "--", "sh", "-c", fill],
        );
        let upper = env.store().join(format!("containers/{name}/upper/many"));
        assert_eq!(std::fs::read_dir(&upper).unwrap().count(), 5000);
    }

    let (status, shown) = run_on_terminal(&env, &["rm", "--yes", "--force", "big"], &[], PAUSE);
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("removing box big") && shown.contains("files removed"),
        "no progress on the terminal:\n{shown}"
    );
    assert!(shown.contains("Removed box big."), "{shown}");

    let out = ok(&env, &["rm", "--yes", "--force", "piped"]);
    out.stdout_has("Removed box piped.");
    assert!(
        !out.stderr.contains("files removed") && !out.stderr.contains('\r'),
        "progress drawn into a pipe:\n{out}"
    );
    assert!(names(&env).is_empty());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn trees_of_any_depth_are_removed_with_few_descriptors() {
    let mut env = TestEnv::new("rm-deep", User::BoxTest);
    env.limit_descriptors(1024);
    let _boxes = Boxes(&env);
    // A layer as deep as box unpacks them: 1023 directories and a file.
    let image = crate::pull::push_with_layer(
        "rm-deep",
        Layer::new(
            &[Entry::file(&format!("{}f", "d/".repeat(1023)), "deep\n")],
            Compression::Gzip,
        ),
    );
    ok(&env, &["pull", &image.reference]);
    ok(
        &env,
        &["create", "--no-entry", "--image", &image.reference, "deep"],
    );
    // In the box, root (a subordinate id on the host) makes a tree 3000 deep: three chains
    // of 1000, each moved to the end of the next (a path is at most 4096 bytes).
    let chain = "d/".repeat(1000);
    let script = format!(
        "cd /var && mkdir -p t1/{chain} t2/{chain} t3/{chain} && mv t1 t2/{chain} && \
         mv t2 t3/{chain} && echo made"
    );
    ok(
        &env,
        &["run", "--user", "root", "deep", "--", "sh", "-c", &script],
    )
    .stdout_has("made");
    let out = ok(&env, &["rm", "--force", "deep"]);
    assert!(!out.stderr.contains("warning"), "{out}");
    assert!(!env.store().join("containers/deep").exists());
    assert!(names(&env).is_empty());
    let out = ok(&env, &["rmi", "--all"]);
    assert!(!out.stderr.contains("warning"), "{out}");
    assert!(env.layer_dirs().is_empty(), "{:?}", env.layer_dirs());
    let tmp = std::fs::read_dir(env.store().join("tmp")).unwrap().count();
    assert_eq!(tmp, 0, "debris left in tmp/");
}
