//! The command line as a user meets it: help, version, usage errors. These run the binary
//! as the unprivileged test user, like a user would.

use crate::common::{TestEnv, User};

/// Every visible subcommand.
fn subcommands() -> Vec<String> {
    box_cli::cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .collect()
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn help_and_version_work_as_an_unprivileged_user() {
    let env = TestEnv::new("cli_help", User::BoxTest);
    let help = env.run(&["--help"]);
    help.success().no_animation();
    help.stdout_has("Usage: box");
    for sub in subcommands() {
        help.stdout_has(&sub);
    }
    assert!(
        !help.stdout.contains("__holder") && !help.stdout.contains("__store-helper"),
        "internal subcommands must not be listed:\n{help}"
    );
    let version = env.run(&["--version"]);
    version.success();
    assert_eq!(
        version.stdout.trim(),
        format!("box {}", env!("CARGO_PKG_VERSION")),
        "{version}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn every_subcommand_has_help() {
    let env = TestEnv::new("cli_sub_help", User::BoxNoSub);
    let subs = subcommands();
    assert!(
        subs.len() >= 10,
        "expected the full command set, got {subs:?}"
    );
    for sub in subs {
        let out = env.run(&[&sub, "--help"]);
        out.success();
        out.stdout_has(&format!("Usage: box {sub}"));
        let about = box_cli::cli::command()
            .find_subcommand(&sub)
            .and_then(|c| c.get_about().map(|a| a.to_string()))
            .unwrap_or_else(|| panic!("subcommand {sub} has no description"));
        out.stdout_has(&about);
        // `box help <sub>` says the same.
        env.run(&["help", &sub]).success().stdout_has(&about);
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn usage_errors_exit_2() {
    let env = TestEnv::new("cli_usage", User::BoxTest);
    for args in [
        &["--no-such-flag"][..],
        &["no-such-command"],
        &["pull"],
        &["rmi"],
        &["pull", "a", "b"],
        &["run", "name"],
    ] {
        let out = env.run(args);
        out.status(2);
        assert!(out.stdout.is_empty(), "usage errors go to stderr:\n{out}");
        out.stderr_has("usage");
    }
}
