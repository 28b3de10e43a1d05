//! `box create --volume SRC:DST[:ro]` end to end: a read-only volume stays read-only all
//! the way down, through mounts below its source, including ones the host makes while
//! the box runs; a writable volume keeps its submounts writable.

use crate::common::boxes::{Boxes, ok, sh};
use crate::common::{Fixture, Registry, TestEnv, User};

/// A tmpfs the test mounts while boxes run (TestEnv::mount_tmpfs needs `&mut`), lazily
/// unmounted when dropped.
struct Unmount(std::path::PathBuf);

impl Unmount {
    fn mount_tmpfs(&self) {
        let target = self.0.to_string_lossy();
        self.run(&[
            "-t",
            "tmpfs",
            "-o",
            "size=1m,mode=0777",
            "box-test",
            &target,
        ]);
    }

    fn run(&self, args: &[&str]) {
        let status = std::process::Command::new("mount")
            .args(args)
            .status()
            .expect("running mount");
        assert!(status.success(), "mount {args:?}");
    }
}

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_read_only_volume_is_read_only_below_its_submounts_too() {
    let mut env = TestEnv::new("vol-ro-rec", User::BoxTest);
    // The source lives outside the home (which the box has writable anyway), with a
    // tmpfs mounted below it on the host, as a USB disk or a tmpfs would be.
    let source = env.dir.join("rotest");
    env.mkdir_owned(&source, 0o755);
    // A shared mount, as / is on a systemd host, so that mounts made below it later
    // propagate to the box's copy (the test machine's / may well be private).
    let shared = Unmount(source.clone());
    shared.run(&[
        "--bind",
        &source.to_string_lossy(),
        &source.to_string_lossy(),
    ]);
    shared.run(&["--make-shared", &source.to_string_lossy()]);
    env.mount_tmpfs(&source.join("sub"), "1m");
    env.mount_tmpfs(&source.join("sub/deeper"), "1m");
    let late = source.join("late");
    env.mkdir_owned(&late, 0o755);
    let late_mount = Unmount(late.clone());
    let env = env;
    let _boxes = Boxes(&env);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &reference]);
    let volume = |opts: &str| format!("{}:/data{opts}", source.display());
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &reference,
            "--volume",
            &volume(":ro"),
            "ro",
        ],
    );
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &reference,
            "--volume",
            &volume(""),
            "rw",
        ],
    );

    let tries = "for f in /data/x /data/sub/y /data/sub/deeper/z /data/late/w; do \
                 if touch $f 2>/dev/null; then echo wrote $f; else echo refused $f; fi; done";
    let out = sh(&env, "ro", tries);
    out.success();
    for path in ["/data/x", "/data/sub/y", "/data/sub/deeper/z"] {
        out.stdout_has(&format!("refused {path}"));
    }
    // A mount the host makes below the source while the box runs must not arrive
    // writable through mount propagation.
    late_mount.mount_tmpfs();
    let out = sh(&env, "ro", tries);
    out.success();
    assert!(!out.stdout.contains("wrote"), "{out}");
    for name in ["x", "sub/y", "sub/deeper/z", "late/w"] {
        assert!(
            !source.join(name).exists(),
            "{name} was written through a read-only volume:\n{out}"
        );
    }
    // The files below are still readable.
    std::fs::write(source.join("sub/deeper/seen"), "below\n").unwrap();
    sh(&env, "ro", "cat /data/sub/deeper/seen")
        .success()
        .stdout_has("below");

    // Without `:ro` every mount below stays writable, and the writes reach the host.
    let out = sh(&env, "rw", tries);
    out.success();
    for path in ["/data/x", "/data/sub/y", "/data/sub/deeper/z"] {
        out.stdout_has(&format!("wrote {path}"));
    }
    assert!(source.join("sub/deeper/z").exists(), "{out}");
}
