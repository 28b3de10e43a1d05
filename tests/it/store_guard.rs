//! The store is out of a box's reach: root in a box cannot change a layer that other boxes
//! are built from (issue 19, item 4), by any path, and a `layers/` a box puts in place of
//! the store's own is never built from.
//!
//! With subordinate ids the store's `layers/` belongs to an id no box maps, mode 0700
//! (the store owner: for `boxtest`, uid and gid 100000 + 65535). The attacks are those
//! that worked before: root in a box (`--user root`, what `sudo` gives) writing a layer
//! file through the home path, through `/run/host`, and through `/proc/PID/root` of a
//! host process of the user, looking the path up as the user (`setfsuid`, which passes the
//! ptrace check of `/proc/PID/root`) and opening the file as root; and a program in a box
//! renaming `layers/` away and putting its own in its place.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::boxes::{Boxes, ok};
use crate::common::{Fixture, Registry, TestEnv, User, hex_of};

/// A static program run as root in a box: `poke UID GID PATH TEXT` replaces the content of
/// PATH with TEXT, looking up its directory and then opening it with each pair of
/// filesystem ids among root's and the user's. Exit 0 when one write went through, 1
/// when none did; each try is printed.
const POKE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <unistd.h>

static void become(unsigned id, unsigned gid) { setfsgid(gid); setfsuid(id); }

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    unsigned uid = atoi(argv[1]), gid = atoi(argv[2]);
    char dir[4096], base[4096];
    snprintf(dir, sizeof dir, "%s", argv[3]);
    snprintf(base, sizeof base, "%s", argv[3]);
    const char *d = dirname(dir), *b = basename(base);
    unsigned ids[2][2] = {{0, 0}, {uid, gid}};
    int wrote = 0;
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            become(ids[i][0], ids[i][1]);
            int dfd = open(d, O_PATH | O_DIRECTORY);
            int err = errno;
            become(ids[j][0], ids[j][1]);
            if (dfd < 0) {
                printf("look up as %u: %s\n", ids[i][0], strerror(err));
                continue;
            }
            int fd = openat(dfd, b, O_WRONLY | O_TRUNC);
            if (fd < 0) {
                printf("look up as %u, open as %u: %s\n", ids[i][0], ids[j][0], strerror(errno));
                close(dfd);
                continue;
            }
            if (write(fd, argv[4], strlen(argv[4])) > 0) wrote = 1;
            printf("look up as %u, open as %u: written\n", ids[i][0], ids[j][0]);
            close(fd);
            close(dfd);
        }
    }
    become(0, 0);
    return wrote ? 0 : 1;
}
"#;

/// Build [`POKE`] into the user's home (shared with the box), owned by the user.
fn build_poke(env: &TestEnv) -> PathBuf {
    let source = env.dir.join("poke.c");
    std::fs::write(&source, POKE).unwrap();
    let program = env.home.join("poke");
    let status = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&program)
        .arg(&source)
        .status()
        .expect("running cc (gcc and libc6-dev: run sudo tests/run)");
    assert!(status.success(), "compiling {}", source.display());
    std::os::unix::fs::chown(&program, Some(env.uid), Some(env.gid)).unwrap();
    program
}

/// The busybox image with boxes `one` and `two` of it; the layer's diff_id.
fn two_boxes(env: &TestEnv) -> String {
    let pushed = Fixture::Busybox.push(Registry::plain()).image;
    ok(env, &["pull", &pushed.reference]);
    for name in ["one", "two"] {
        ok(
            env,
            &["create", "--no-entry", "--image", &pushed.reference, name],
        );
    }
    pushed.layers[0].1.clone()
}

const ORIGINAL: &str = "PRETTY_NAME=\"box test busybox\"";

/// What box `name` shows in its `/etc/os-release`.
fn os_release(env: &TestEnv, name: &str) -> String {
    ok(env, &["run", name, "--", "cat", "/etc/os-release"]).stdout
}

#[track_caller]
fn assert_guarded(env: &TestEnv) {
    let meta = std::fs::symlink_metadata(env.store().join("layers")).unwrap();
    // boxtest: subordinate ids 100000:65536, uid 1001 < 65536: the range's last id.
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (165535, 165535, 0o700),
        "layers/ must belong to the store owner, mode 0700"
    );
    assert!(meta.is_dir());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn root_in_a_box_cannot_change_a_layer_by_any_path() {
    let env = TestEnv::new("store-guard-root", User::BoxTest);
    let _boxes = Boxes(&env);
    let poke = build_poke(&env);
    let diff_id = two_boxes(&env);
    let file = env.layer_dir(&diff_id).join("etc/os-release");
    let before = std::fs::read(&file).unwrap();
    assert!(os_release(&env, "one").contains(ORIGINAL));

    // A host process of the user, whose /proc/PID/root the box may open.
    let mut host = Command::new("sleep")
        .arg("600")
        .uid(env.uid)
        .gid(env.gid)
        .spawn()
        .unwrap();
    let store = env.store();
    let relative = file.strip_prefix("/").unwrap();
    let paths = [
        file.clone(),
        Path::new("/run/host").join(relative),
        Path::new(&format!("/proc/{}/root", host.id())).join(relative),
    ];
    let (uid, gid) = (env.uid.to_string(), env.gid.to_string());
    for path in &paths {
        let path = path.to_str().unwrap();
        let out = env.run(&[
            "run",
            "one",
            "--user",
            "root",
            "--",
            poke.to_str().unwrap(),
            &uid,
            &gid,
            path,
            "tampered\n",
        ]);
        assert_eq!(out.code(), Some(1), "root in the box wrote {path}:\n{out}");
        // The user in the box, plainly.
        let out = env.run(&[
            "run",
            "one",
            "--",
            "sh",
            "-c",
            &format!("echo tampered > '{path}'"),
        ]);
        assert!(
            !out.status.success(),
            "the user in the box wrote {path}:\n{out}"
        );
    }
    // Nor can root in the box list or enter the directory, or change its owner or mode.
    let layers = store.join("layers");
    let layers = layers.to_str().unwrap();
    for script in [
        format!("ls {layers}"),
        format!("chmod 777 {layers}"),
        format!("chown 0:0 {layers}"),
        format!("touch {layers}/new"),
    ] {
        let out = env.run(&["run", "one", "--user", "root", "--", "sh", "-c", &script]);
        assert!(
            !out.status.success(),
            "`{script}` as root in the box:\n{out}"
        );
    }
    let _ = host.kill();
    let _ = host.wait();

    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert!(os_release(&env, "two").contains(ORIGINAL));
    assert_guarded(&env);
    // The boxes of the guarded store work as ever: root can write its own files.
    ok(
        &env,
        &[
            "run",
            "one",
            "--user",
            "root",
            "--",
            "sh",
            "-c",
            "echo mine > /etc/os-release",
        ],
    );
    assert_eq!(os_release(&env, "one"), "mine\n");
    assert!(os_release(&env, "two").contains(ORIGINAL));
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_layers_directory_a_box_puts_in_place_is_never_built_from() {
    let env = TestEnv::new("store-guard-swap", User::BoxTest);
    let _boxes = Boxes(&env);
    let diff_id = two_boxes(&env);
    let store = env.store();
    let s = store.to_str().unwrap();
    let hex = hex_of(&diff_id);
    // Root in box one puts its own layers/ in place, under the name of the image's layer.
    let swap = format!(
        "set -e; mv {s}/layers {s}/layers.moved; mkdir -p {s}/layers/{hex}/etc; \
         echo tampered > {s}/layers/{hex}/etc/os-release"
    );
    ok(
        &env,
        &["run", "one", "--user", "root", "--", "sh", "-c", &swap],
    );
    ok(&env, &["stop", "one"]);

    // The next start sets it aside and unpacks the layer again from its verified blob.
    let out = ok(&env, &["run", "two", "--", "cat", "/etc/os-release"]);
    assert!(out.stdout.contains(ORIGINAL), "{out}");
    out.stderr_has("unpacked again from their verified blobs");
    assert_guarded(&env);
    assert!(os_release(&env, "one").contains(ORIGINAL));
    let counterfeit = std::fs::read_dir(store.join("layers.unguarded"))
        .unwrap()
        .count();
    assert_eq!(counterfeit, 1, "what the box put there is set aside");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_store_from_before_is_guarded_and_its_layers_unpacked_again() {
    let env = TestEnv::new("store-guard-migrate", User::BoxTest);
    let _boxes = Boxes(&env);
    let diff_id = two_boxes(&env);
    let store = env.store();
    // What box made before: layers/ the user's, mode 0700.
    let layers = store.join("layers");
    std::os::unix::fs::chown(&layers, Some(env.uid), Some(env.gid)).unwrap();
    let file = env.layer_dir(&diff_id).join("etc/os-release");
    std::fs::write(&file, "changed before the upgrade\n").unwrap();

    let out = ok(&env, &["run", "one", "--", "cat", "/etc/os-release"]);
    assert!(out.stdout.contains(ORIGINAL), "{out}");
    out.stderr_has("unpacked again from their verified blobs");
    assert_guarded(&env);
    assert!(std::fs::read_to_string(&file).unwrap().contains(ORIGINAL));
    // Once: the next start says nothing.
    let again = ok(&env, &["run", "two", "--", "true"]);
    assert!(!again.stderr.contains("verified blobs"), "{again}");

    // What was set aside stays while a box runs (one started before could use it)...
    let set_aside = store.join("layers.unguarded");
    assert!(set_aside.exists());
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(
        &env,
        &["create", "--no-entry", "--image", &reference, "three"],
    );
    ok(&env, &["rm", "three"]);
    assert!(set_aside.exists(), "removed while boxes run");
    // ...and goes with the next collection once none runs.
    ok(&env, &["stop", "--all"]);
    ok(&env, &["rm", "two"]);
    assert!(!set_aside.exists(), "still there once no box runs");
    assert!(os_release(&env, "one").contains(ORIGINAL));
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn without_subordinate_ids_the_store_is_the_users_and_boxes_work_as_before() {
    let env = TestEnv::new("store-guard-nosub", User::BoxNoSub);
    let _boxes = Boxes(&env);
    let diff_id = two_boxes(&env);
    let meta = std::fs::symlink_metadata(env.store().join("layers")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (env.uid, env.gid, 0o700)
    );
    assert!(env.layer_dir(&diff_id).join("etc/os-release").is_file());
    assert!(os_release(&env, "one").contains(ORIGINAL));
    ok(
        &env,
        &[
            "run",
            "one",
            "--user",
            "root",
            "--",
            "sh",
            "-c",
            "echo mine > /etc/os-release",
        ],
    );
    assert_eq!(os_release(&env, "one"), "mine\n");
    assert!(os_release(&env, "two").contains(ORIGINAL));
    ok(&env, &["rm", "--force", "one", "two"]);
    let reference = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["rmi", &reference]);
    assert_eq!(env.layer_dirs(), Vec::<String>::new());
}
