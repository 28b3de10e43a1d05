//! Configured defaults end to end: the system's settings file (`BOX_SYSTEM_CONFIG` names
//! it here, `/etc/box/config.toml` otherwise), the user's, the environment, and flags, in
//! that order; an unknown key is a warning naming it.

use crate::common::boxes::{Boxes, ok};
use crate::common::{Fixture, Outcome, Registry, TestEnv, User};

/// Run box with one more environment variable; it must succeed.
fn with_env(env: &TestEnv, (key, value): (&str, &str), args: &[&str]) -> Outcome {
    let out = env.wait(args, env.command(args).env(key, value).spawn().unwrap());
    out.success();
    out
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn settings_give_defaults_in_layers_and_unknown_keys_are_named() {
    let mut env = TestEnv::new("settings", User::BoxTest);
    let system = env.dir.join("system.toml");
    env.set_env("BOX_SYSTEM_CONFIG", system.clone());
    let _boxes = Boxes(&env);
    let image = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);
    std::fs::write(
        &system,
        format!(
            "default-image = \"{image}\"\ndefault-name = \"from-system\"\nhome-prefix = \"{}\"\n",
            env.home.join("boxes").display()
        ),
    )
    .unwrap();
    // The user's file overrides the system's name, and has a key box does not know.
    env.write_user_file(
        &env.home.join(".config/box/config.toml"),
        "provision = false\ndefault-name = \"mybox\"\nfrobnicate = 1\n",
        0o644,
    );

    let out = ok(&env, &["create", "--no-entry"]);
    out.stdout_has("Created box mybox from")
        .stderr_has("unknown setting `frobnicate`");
    // Its own home under the prefix.
    let home = env.home.join("boxes/mybox");
    assert!(home.is_dir(), "home-prefix gave no home: {out}");
    // `box enter` without a name enters the default box.
    ok(
        &env,
        &["enter", "--", "sh", "-c", "echo \"$CONTAINER_ID $HOME\""],
    )
    .stdout_has(&format!("mybox {}", home.display()));

    // The environment overrides the files: BOX_SKIP_WORKDIR starts in the box's home.
    let out = ok(&env, &["run", "mybox", "--", "sh", "-c", "pwd"]);
    assert_eq!(out.stdout.trim(), env.home.display().to_string(), "{out}");
    let out = with_env(
        &env,
        ("BOX_SKIP_WORKDIR", "1"),
        &["run", "mybox", "--", "sh", "-c", "pwd"],
    );
    assert_eq!(out.stdout.trim(), home.display().to_string(), "{out}");

    // BOX_ALWAYS_PULL: create asks the registry even though the image is in the store.
    with_env(
        &env,
        ("BOX_ALWAYS_PULL", "true"),
        &["create", "--no-entry", "second"],
    )
    .stderr_has("is up to date");

    // A value of the wrong type is an error naming the file.
    std::fs::write(&system, "always-pull = \"maybe\"\n").unwrap();
    env.run(&["create", "--no-entry", "third"])
        .status(125)
        .stderr_has(&system.display().to_string());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn distrobox_s_settings_are_defaults_beneath_box_s_own() {
    let mut env = TestEnv::new("settings-dbx", User::BoxTest);
    let system = env.dir.join("distrobox-system.conf");
    env.set_env("BOX_DISTROBOX_SYSTEM_CONFIG", system.clone());
    let _boxes = Boxes(&env);
    let image = Fixture::Busybox.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);
    let shared = env.home.join("shared");
    env.mkdir_owned(&shared, 0o755);
    env.write_user_file(&shared.join("note"), "from the host\n", 0o644);
    // distrobox's files as users write them (they were shell once): the system's, then
    // the user's two, each over the one before.
    std::fs::write(
        &system,
        format!(
            "container_image_default=\"{image}\"\ncontainer_name_default=\"from-system\"\ncontainer_manager=\"podman\"\n"
        ),
    )
    .unwrap();
    env.write_user_file(
        &env.home.join(".config/distrobox/distrobox.conf"),
        "# mine\ncontainer_name_default=\"from-dbx-user\"\ncontainer_generate_entry=0\nif [ -x /usr/bin/podman ]; then\n  container_manager=podman\nfi\n",
        0o644,
    );
    env.write_user_file(
        &env.home.join(".distroboxrc"),
        "export container_additional_volumes=\"$HOME/shared:/shared:ro\"\n",
        0o644,
    );
    let out = ok(&env, &["create"]);
    out.stdout_has("Created box from-dbx-user from")
        // Each file that asks what box does not do says so, naming key and line.
        .stderr_has(&format!("{}: distrobox settings box does not use: line 3: container_manager (box is its own container engine)", system.display()))
        .stderr_has("distrobox.conf: distrobox settings box does not use: line 4: `if [ -x /usr/bin/podman ]; then` is shell code");
    // container_generate_entry=0: no menu entry; the volume is there, read-only.
    assert!(
        !env.home
            .join(".local/share/applications/box-from-dbx-user.desktop")
            .exists(),
        "{out}"
    );
    ok(&env, &["run", "from-dbx-user", "--", "cat", "/shared/note"]).stdout_has("from the host");

    // Said once: the next command that reads the settings is quiet about them.
    let out = with_env(&env, ("DBX_CONTAINER_NAME", "from-dbx-env"), &["create"]);
    out.stdout_has("Created box from-dbx-env from");
    assert!(!out.stderr.contains("distrobox settings"), "{out}");

    // box's own settings are over distrobox's, DBX_* included; BOX_* over box's files.
    env.write_user_file(
        &env.home.join(".config/box/config.toml"),
        "provision = false\ndefault-name = \"from-box\"\n",
        0o644,
    );
    with_env(&env, ("DBX_CONTAINER_NAME", "from-dbx-env2"), &["create"])
        .stdout_has("Created box from-box from");
    with_env(&env, ("BOX_DEFAULT_NAME", "from-box-env"), &["create"])
        .stdout_has("Created box from-box-env from");
    // A variable box does not use is named once too.
    let out = with_env(
        &env,
        ("DBX_CONTAINER_MANAGER", "docker"),
        &["create", "last"],
    );
    out.stderr_has("DBX_CONTAINER_MANAGER=docker: distrobox settings box does not use: box is its own container engine");
    // `box run` of a running box reads none of these files: a broken one changes
    // nothing there.
    std::fs::write(&system, "container_name_default=\"$(nope)\"\n").unwrap();
    let out = ok(&env, &["run", "from-dbx-user", "--", "true"]);
    assert!(out.stderr.is_empty(), "{out}");
}
