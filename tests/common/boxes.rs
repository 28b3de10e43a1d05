//! Helpers for tests that run boxes: a guard that removes a test's boxes, creating a box
//! from a fixture, reading `box list`, running box on a pseudo-terminal or from a shell
//! as the test user.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{Fixture, Outcome, Registry, TestEnv, User};

/// Stops and removes every box of an environment when dropped, so that no holder of a
/// failed test lingers.
pub struct Boxes<'a>(pub &'a TestEnv);

impl Drop for Boxes<'_> {
    fn drop(&mut self) {
        // No panic here: this may run while a failed test unwinds.
        let _ = self.0.command(&["rm", "--all", "--force"]).output();
    }
}

#[track_caller]
pub fn ok(env: &TestEnv, args: &[&str]) -> Outcome {
    let out = env.run(args);
    out.success();
    out
}

/// Pull `fixture` and create box `name` from it.
#[track_caller]
pub fn box_from(env: &TestEnv, fixture: Fixture, name: &str) -> String {
    let reference = fixture.push(Registry::plain()).image.reference;
    ok(env, &["pull", &reference]);
    ok(env, &["create", "--no-entry", "--image", &reference, name]);
    reference
}

/// `box run NAME -- sh -c SCRIPT`.
pub fn sh(env: &TestEnv, name: &str, script: &str) -> Outcome {
    env.run(&["run", name, "--", "sh", "-c", script])
}

pub fn list(env: &TestEnv) -> Vec<Value> {
    match ok(env, &["list", "--json"]).json() {
        Value::Array(items) => items,
        other => panic!("`box list --json` is not an array: {other}"),
    }
}

pub fn status_of(env: &TestEnv, name: &str) -> String {
    list(env)
        .iter()
        .find(|b| b["name"] == name)
        .map(|b| b["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no box {name} in `box list --json`"))
}

/// Run `box ARGS` as the environment's user on a new pseudo-terminal (util-linux `script`),
/// typing `keys` one chunk at a time with `pause` between them. Returns the exit status
/// and everything the terminal showed.
pub fn run_on_terminal(
    env: &TestEnv,
    args: &[&str],
    keys: &[&str],
    pause: Duration,
) -> (ExitStatus, String) {
    run_on_terminal_sized(env, args, keys, pause, None)
}

/// [`run_on_terminal`] on a terminal of `(columns, rows)` (`stty` sets it before box
/// starts), for tests that replay what the terminal showed with [`super::screen`].
pub fn run_on_terminal_sized(
    env: &TestEnv,
    args: &[&str],
    keys: &[&str],
    pause: Duration,
    size: Option<(u16, u16)>,
) -> (ExitStatus, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut command_line = std::iter::once(super::box_bin())
        .chain(args.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    if let Some((columns, rows)) = size {
        command_line = format!("stty cols {columns} rows {rows} && exec {command_line}");
    }
    let template = env.command(args);
    let mut script = Command::new("script");
    script
        .args([
            "--quiet",
            "--return",
            "--command",
            &command_line,
            "/dev/null",
        ])
        .env_clear()
        .envs(
            template
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env("TERM", "xterm")
        .current_dir(&env.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if env.user != User::Root {
        script.uid(env.uid).gid(env.gid);
    }
    let mut child = script.spawn().expect("running script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    for chunk in keys {
        std::thread::sleep(pause);
        stdin.write_all(chunk.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    // stdin stays open until the session ends: script ends the session on its EOF.
    let out = env.wait(args, child);
    drop(stdin);
    (out.status, format!("{}{}", out.stdout, out.stderr))
}

/// `sh -c SCRIPT` as the environment's user, with its environment (box is `$BOX`).
pub fn shell_as(env: &TestEnv, script: &str) -> Command {
    let template = env.command(&[]);
    let mut command = Command::new("sh");
    command
        .args(["-c", script])
        .env_clear()
        .envs(
            template
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env("BOX", super::box_bin())
        .current_dir(&env.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if env.user != User::Root {
        command.uid(env.uid).gid(env.gid);
    }
    command
}

/// Run `script` with `shell_as` and return (exit code, stdout, stderr).
pub fn script_output(env: &TestEnv, script: &str) -> (Option<i32>, String, String) {
    let out = shell_as(env, script).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
