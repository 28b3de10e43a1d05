//! `box create --clone` end to end: the clone has the source's files (owners of
//! subordinate ids, whiteouts of deleted image files, hard links) and record; the two are
//! independent afterwards; a running source is stopped only when the user agrees.

use crate::common::boxes::{Boxes, box_from, ok, sh, status_of};
use crate::common::{Fixture, TestEnv, User};

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_clone_has_the_source_s_files_and_goes_its_own_way() {
    let env = TestEnv::new("clone", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "src");
    // What an installed package leaves: root-owned files, a file of another owner, a
    // deleted image file (an overlay whiteout), a hard link.
    ok(
        &env,
        &[
            "run",
            "src",
            "--",
            "sudo",
            "sh",
            "-c",
            "echo installed > /opt/pkg && mkdir /opt/www && chown 33:33 /opt/www && rm /etc/issue && ln /opt/pkg /opt/pkg-link",
        ],
    );
    assert_eq!(status_of(&env, "src"), "running");

    // Running, and nobody to say yes: refused, nothing made.
    env.run(&["create", "--clone", "src", "copy"])
        .status(125)
        .stderr_has("box `src` is running, so it was not cloned")
        .stderr_has("box stop src");
    assert!(!env.store().join("containers/copy").exists());

    ok(
        &env,
        &["create", "--yes", "--no-entry", "--clone", "src", "copy"],
    );
    assert_eq!(status_of(&env, "src"), "stopped");
    let check = "cat /opt/pkg; stat -c '%u:%g %h' /opt/www /opt/pkg; if test -e /etc/issue; then echo issue-back; fi";
    let out = sh(&env, "copy", check);
    out.success();
    assert_eq!(out.stdout, "installed\n33:33 2\n0:0 2\n", "{out}");

    // Independent: a change in one is not in the other.
    ok(
        &env,
        &[
            "run",
            "copy",
            "--",
            "sudo",
            "sh",
            "-c",
            "echo changed > /opt/pkg",
        ],
    );
    ok(&env, &["run", "src", "--", "cat", "/opt/pkg"]).stdout_has("installed");
    ok(&env, &["run", "copy", "--", "cat", "/opt/pkg"]).stdout_has("changed");

    // The record is the source's but for the name.
    let record = |name: &str| {
        let path = env.store().join("containers").join(name).join("box.json");
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let object = value.as_object_mut().unwrap();
        object.remove("name");
        object.remove("created");
        value
    };
    assert_eq!(record("src"), record("copy"));

    // A clone needs its own name, and a source that exists.
    env.run(&["create", "--clone", "nosuch", "other"])
        .status(125)
        .stderr_has("no box named `nosuch`");
    env.run(&["create", "--clone", "src", "copy"])
        .status(125)
        .stderr_has("already exists");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_clone_takes_the_flags_it_is_given() {
    let env = TestEnv::new("clone-flags", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Busybox, "src");
    let extra = env.dir.join("extra");
    env.mkdir_owned(&extra, 0o755);
    env.write_user_file(&extra.join("file"), "extra\n", 0o644);
    let volume = format!("{}:/extra", extra.display());
    // A bad flag is refused before the source is touched.
    env.run(&["create", "--clone", "src", "bad", "--hostname", "a b"])
        .status(2)
        .stderr_has("not a valid hostname");
    assert!(!env.store().join("containers/bad").exists());
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--clone",
            "src",
            "copy",
            "--hostname",
            "copyhost",
            "--volume",
            &volume,
            "--pre-init-hooks",
            "echo pre > /hooked",
            "--init-hooks",
            "echo post >> /hooked",
        ],
    );
    let out = sh(&env, "copy", "uname -n; cat /extra/file /hooked");
    assert_eq!(out.stdout, "copyhost\nextra\npre\npost\n", "{out}");
    // The source keeps its own.
    let out = sh(
        &env,
        "src",
        "test -e /extra || echo no-extra; test -e /hooked || echo no-hook",
    );
    assert_eq!(out.stdout, "no-extra\nno-hook\n", "{out}");
}
