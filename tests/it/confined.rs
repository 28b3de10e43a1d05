//! A hostile image or box reaches no further than the box (issue 19, items 1, 5 and 6),
//! end to end with images the harness builds: symlinks an image places where box writes
//! at a box's start (its user setup, its files, the fake root's apt setting, its mount
//! points, CDI hooks and mount points) lead box nowhere outside the box's own files,
//! and a setuid file root in a box leaves in a shared directory gives no privilege in a
//! box.
//!
//! Each test builds its image with the test's own home in its symlinks (an attacker who
//! knows the user name knows the home), pushes it, starts a box of it and checks that
//! the home (the store aside) and `/tmp` are exactly as they were.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::boxes::{Boxes, ok, sh};
use crate::common::fixtures::busybox;
use crate::common::{Compression, Entry, Fixture, Registry, StoreState, TestEnv, User};

/// Push busybox with `layer` on top as `confined/REPO`; pull it as `env`'s user.
fn image_with(env: &TestEnv, repo: &str, layer: &[Entry]) -> String {
    let reference = busybox()
        .entries(layer, Compression::Gzip)
        .push(Registry::plain(), &format!("confined/{repo}"), "latest")
        .reference;
    ok(env, &["pull", &reference]);
    reference
}

/// The user's home as it is, box's store and settings aside.
fn home_state(env: &TestEnv) -> StoreState {
    StoreState::capture_except(&env.home, &[".local", ".config", ".cache"])
}

#[track_caller]
fn assert_home_unchanged(env: &TestEnv, before: &StoreState, context: &str) {
    let diff = before.diff(&home_state(env));
    assert!(
        diff.is_empty(),
        "box changed the user's home ({context}):\n{}",
        diff.join("\n")
    );
}

/// An empty directory of the user's in `/tmp`, of this test only: where an image's
/// symlink points box.
fn tmp_target(env: &TestEnv) -> PathBuf {
    let dir = PathBuf::from(format!(
        "/tmp/box-confined-{}",
        env.dir.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    env.mkdir_owned(&dir, 0o700);
    dir
}

/// The names in `dir`.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_first_start_writes_nothing_through_the_images_symlinks() {
    let env = TestEnv::new("cf-writes", User::BoxTest);
    let _boxes = Boxes(&env);
    let home = env.home.display().to_string();
    env.write_user_file(&env.home.join(".bashrc"), "# my shell\n", 0o600);
    env.write_user_file(&env.home.join("private"), "secret\n", 0o600);
    env.mkdir_owned(&env.home.join("sudoers"), 0o700);
    env.mkdir_owned(&env.home.join("default"), 0o700);
    env.write_user_file(&env.home.join("empty-file"), "", 0o600);
    env.mkdir_owned(&env.home.join("empty-dir"), 0o700);
    // What box once took for its list of CDI mount points to tidy (and rewrote).
    env.write_user_file(
        &env.home.join("list"),
        format!("{home}/empty-file\n{home}/empty-dir\n"),
        0o600,
    );
    let image = image_with(
        &env,
        "writes",
        &[
            Entry::dir("etc"),
            // A line for the user's shell, should box copy the passwd file there.
            Entry::file(
                "etc/passwd",
                format!(
                    "root:x:0:0:root:/root:/bin/sh\necho planted > {home}/planted\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
                ),
            ),
            Entry::symlink("etc/passwd.box-new", &format!("{home}/.bashrc")),
            Entry::symlink("etc/group.box-new", &format!("{home}/private")),
            Entry::symlink("etc/shadow.box-new", &format!("{home}/private")),
            Entry::file("etc/shadow", "root:*:1::::::\n"),
            Entry::symlink("etc/sudoers.d", &format!("{home}/sudoers")),
            Entry::symlink("etc/default", &format!("{home}/default")),
            Entry::dir("etc/box"),
            Entry::symlink("etc/box/cdi-mount-points", &format!("{home}/list")),
        ],
    );
    ok(&env, &["create", "--no-entry", "--image", &image, "w"]);
    let before = home_state(&env);

    // Nothing of the image runs: box's own start-up is all there is.
    let out = env.run(&["run", "w", "--", "/no/such/command"]);
    assert_eq!(out.code(), Some(127), "{out}");
    assert_home_unchanged(&env, &before, "the first start");
    let meta = std::fs::metadata(env.home.join("private")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    // The setup did what it could in the box's own files, and said what it did not.
    out.stderr_has("/etc/sudoers.d");
    sh(
        &env,
        "w",
        "grep -c ^boxtest: /etc/passwd; ls -l /etc/passwd.box-new",
    )
    .success()
    .stdout_has("1\n")
    .stdout_has(&format!("-> {home}/.bashrc"));
    ok(&env, &["stop", "w"]);
    ok(&env, &["run", "w", "--", "true"]);
    assert_home_unchanged(&env, &before, "a second start");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn mount_points_never_follow_the_images_symlinks_into_the_home_or_tmp() {
    let env = TestEnv::new("cf-mounts", User::BoxTest);
    let _boxes = Boxes(&env);
    let home = env.home.display().to_string();
    let tmp = tmp_target(&env);
    let volume = env.dir.join("volume");
    env.mkdir_owned(&volume, 0o755);
    env.mkdir_owned(&env.home.join("local"), 0o700);
    let image = image_with(
        &env,
        "mounts",
        &[
            Entry::dir("usr"),
            // box's own executable is mounted at /usr/local/bin/box in every box.
            Entry::symlink("usr/local", &format!("{home}/local")),
            Entry::dir("opt"),
            Entry::symlink("opt/data", &tmp.display().to_string()),
        ],
    );
    ok(&env, &["create", "--no-entry", "--image", &image, "exe"]);
    let target = "/opt/data/v";
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &image,
            "--volume",
            &format!("{}:{target}", volume.display()),
            "vol",
        ],
    );
    let before = home_state(&env);
    env.run(&["run", "exe", "--", "true"])
        .box_error(&["/usr/local/bin/box", &format!("/usr/local -> {home}/local")]);
    env.run(&["run", "vol", "--", "true"])
        .box_error(&[target, &format!("/opt/data -> {}", tmp.display())]);
    assert_home_unchanged(&env, &before, "refused starts");
    assert!(names_in(&tmp).is_empty(), "box wrote in {}", tmp.display());
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_fake_roots_files_and_the_setup_stay_in_the_box_without_subordinate_ids() {
    let env = TestEnv::new("cf-fakeroot", User::BoxNoSub);
    let _boxes = Boxes(&env);
    let home = env.home.display().to_string();
    env.write_user_file(&env.home.join(".bashrc"), "# my shell\n", 0o600);
    env.mkdir_owned(&env.home.join("aptconf"), 0o700);
    env.mkdir_owned(&env.home.join("bin"), 0o700);
    let image = image_with(
        &env,
        "fakeroot",
        &[
            Entry::dir("etc"),
            Entry::symlink("etc/passwd.box-new", &format!("{home}/.bashrc")),
            Entry::symlink("etc/group.box-new", &format!("{home}/.bashrc")),
            Entry::dir("etc/apt"),
            Entry::symlink("etc/apt/apt.conf.d", &format!("{home}/aptconf")),
            Entry::dir("usr/local"),
            // Where a box without subordinate ids gets its sudo.
            Entry::dir("usr/local/bin"),
            Entry::symlink("usr/local/bin/sudo", &format!("{home}/bin/sudo")),
        ],
    );
    ok(&env, &["create", "--no-entry", "--image", &image, "n"]);
    let before = home_state(&env);
    let out = sh(&env, "n", "sudo id -u");
    out.success().stdout_has("0\n");
    out.stderr_has("/etc/apt/apt.conf.d");
    assert_home_unchanged(&env, &before, "the start and sudo");
}

/// The test vendor's spec of `example.com/hostile`, in `specs`: each device does one
/// thing to paths behind the image's symlink `/opt/hostile` (into the home) or in the
/// home itself.
fn write_hostile_spec(env: &TestEnv, specs: &Path) {
    let home = env.home.display();
    let source = env.dir.join("vendor-file");
    std::fs::write(&source, "from the vendor\n").unwrap();
    std::fs::create_dir_all(specs).unwrap();
    std::fs::write(
        specs.join("hostile.yaml"),
        format!(
            r#"cdiVersion: 0.6.0
kind: example.com/hostile
devices:
- name: chmod
  containerEdits:
    hooks:
    - hookName: createContainer
      path: /usr/bin/nvidia-cdi-hook
      args: [nvidia-cdi-hook, chmod, --mode, "777", --path, /opt/hostile/secret, --path, {home}/direct]
- name: link
  containerEdits:
    hooks:
    - hookName: createContainer
      path: /usr/bin/nvidia-cdi-hook
      args: [nvidia-cdi-hook, create-symlinks, --link, "/etc/hostname::/opt/hostile/link"]
- name: mount
  containerEdits:
    mounts:
    - hostPath: {source}
      containerPath: /opt/hostile/mnt
      options: [ro, bind]
"#,
            source = source.display(),
        ),
    )
    .unwrap();
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn cdi_hooks_and_mount_points_act_only_on_the_boxs_own_files() {
    let mut env = TestEnv::new("cf-cdi", User::BoxTest);
    let specs = env.dir.join("cdi");
    write_hostile_spec(&env, &specs);
    env.set_env("BOX_CDI_SPEC_DIRS", &specs);
    let _boxes = Boxes(&env);
    let home = env.home.display().to_string();
    env.mkdir_owned(&env.home.join("cdi"), 0o700);
    env.write_user_file(&env.home.join("cdi/secret"), "secret\n", 0o600);
    env.write_user_file(&env.home.join("direct"), "secret\n", 0o600);
    let image = image_with(
        &env,
        "cdi",
        &[
            Entry::dir("opt"),
            Entry::symlink("opt/hostile", &format!("{home}/cdi")),
        ],
    );
    for device in ["chmod", "link", "mount"] {
        ok(
            &env,
            &[
                "create",
                "--no-entry",
                "--no-nvidia",
                "--image",
                &image,
                "--device",
                &format!("example.com/hostile={device}"),
                device,
            ],
        );
    }
    let before = home_state(&env);
    // A chmod of a path the box shares with the host keeps the host's mode: a notice.
    let out = env.run(&["run", "chmod", "--", "true"]);
    out.success()
        .stderr_has("/opt/hostile/secret")
        .stderr_has(&format!("{home}/direct"));
    for file in ["cdi/secret", "direct"] {
        let mode = std::fs::metadata(env.home.join(file)).unwrap().mode();
        assert_eq!(mode & 0o7777, 0o600, "{file}");
    }
    env.run(&["run", "link", "--", "true"])
        .box_error(&["/opt/hostile/link", &format!("/opt/hostile -> {home}/cdi")]);
    env.run(&["run", "mount", "--", "true"])
        .box_error(&["/opt/hostile/mnt", &format!("/opt/hostile -> {home}/cdi")]);
    assert_home_unchanged(&env, &before, "the starts of boxes with hostile devices");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn shared_directories_are_nosuid_in_a_box() {
    let env = TestEnv::new("cf-nosuid", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = Fixture::Debian.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);
    let volume = env.dir.join("volume");
    env.mkdir_owned(&volume, 0o777);
    let tmp = tmp_target(&env);
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &image,
            "--volume",
            &format!("{}:/vol", volume.display()),
            "s",
        ],
    );
    let home = env.home.display().to_string();
    let runtime = env.runtime_dir.display().to_string();
    // Root in the box leaves setuid copies of `id`, owned by its uid 0 (a subordinate id
    // on the host), in each directory the box shares with the host.
    let places = [
        format!("{home}/id-suid"),
        format!("{}/id-suid", tmp.display()),
        "/vol/id-suid".to_owned(),
        format!("{runtime}/id-suid"),
    ];
    let script = format!(
        "for f in {}; do cp /usr/bin/id $f && chmod 4755 $f; done",
        places.join(" ")
    );
    ok(
        &env,
        &["run", "s", "--user", "root", "--", "sh", "-c", &script],
    );
    for place in &places {
        let out = ok(&env, &["run", "s", "--", place, "-u"]);
        assert_eq!(out.stdout.trim(), env.uid.to_string(), "{place}:\n{out}");
    }
    // And so is every other mount of the host's: its root at /run/host.
    let out = sh(&env, "s", "cat /proc/self/mountinfo");
    out.success();
    for target in [home.as_str(), "/tmp", "/vol", &runtime, "/run/host"] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(target))
            .unwrap_or_else(|| panic!("no mount at {target}:\n{out}"));
        let options = line.split(' ').nth(5).unwrap();
        assert!(
            options.split(',').any(|o| o == "nosuid"),
            "{target} is not nosuid: {line}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
