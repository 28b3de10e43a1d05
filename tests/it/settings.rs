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
