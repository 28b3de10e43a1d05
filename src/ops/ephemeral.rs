//! `box ephemeral`: a temporary box, entered (or one command run in it), then removed with
//! everything it wrote, however the session ends.
//!
//! How, and why:
//! - the box is made with [`super::create`] (no menu entry) under a fresh name;
//! - before anything runs in it, a guard is started: `box __ephemeral-guard PID NAME`, a
//!   fresh process in a process group of its own (Ctrl-C and a closing terminal reach the
//!   foreground group, not it), with SIGHUP and SIGINT ignored and stdio on /dev/null (so
//!   that `box ephemeral ... | cat` ends when box does). It holds a pidfd of this process
//!   and, once this process is gone, for whatever reason (the command ended, kill -9, the
//!   terminal closed, SIGTERM), removes the box if it is still there ([`super::rm`]:
//!   its processes are stopped, its files removed);
//! - the command runs as a child that joins the box ([`super::session::run_child`]), in
//!   this process's group, so it has the terminal, job control and signals as usual; this process ignores
//!   SIGINT and SIGQUIT meanwhile (as a shell's `system()` does) and, when the child ends,
//!   removes the box itself before it exits with the child's status: when `box ephemeral`
//!   returns, the box is gone. The guard then finds nothing left to do.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::create::{CreateOptions, create};
use crate::context::Context;
use crate::ui::prompt::Ask;

/// The internal entry of the guard.
pub const GUARD: &str = "__ephemeral-guard";

/// A fresh name for a temporary box: `ephemeral-` and 8 random hex digits.
pub fn fresh_name() -> Result<String> {
    let mut bytes = [0u8; 4];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())
        .map_err(std::io::Error::from)
        .context("getrandom(2)")?;
    Ok(format!("ephemeral-{}", hex::encode(bytes)))
}

/// Create box `options.name`, run `command` in it (a login shell when empty), remove it;
/// returns the command's exit status (128+N for signal N).
pub fn ephemeral(
    ctx: &Context,
    options: &CreateOptions,
    command: &[std::ffi::OsString],
    no_workdir: bool,
    ask: &dyn Ask,
) -> Result<u8> {
    let created = create(ctx, options, ask)?;
    let name = created.name;
    let exe = std::env::current_exe().context("finding box's own executable")?;
    // The guard first: from here on the box is removed whatever happens to this process.
    let guard = Command::new(&exe)
        .arg(GUARD)
        .arg(std::process::id().to_string())
        .arg(&name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(err) = guard {
        remove(ctx, &name);
        return Err(err).context("starting the guard that removes the temporary box");
    }
    let status = super::session::start(ctx, &name, true).and_then(|state| {
        // As a shell's system(): the terminal's Ctrl-C and Ctrl-\ are for the command.
        let _ignored = crate::sys::ignore_interrupts();
        super::session::run_child(&name, &state, command, no_workdir)
    });
    remove(ctx, &name);
    let status = status.with_context(|| format!("running a command in box `{name}`"))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.saturating_add(signal as u8),
        (None, None) => crate::error::EXIT_BOX_FAILURE,
    })
}

/// Remove box `name` if it is still there; says so when it cannot.
fn remove(ctx: &Context, name: &str) {
    if let Err(err) = super::rm::remove_forced(ctx, name, Duration::from_millis(500)) {
        crate::ui::report::warn(format!(
            "the temporary box `{name}` was not removed: {} (`box rm --force {name}` removes it)",
            crate::error::message(&err)
        ));
    }
}

/// The guard (`box __ephemeral-guard PID NAME`): wait for process PID (its parent) to
/// end, then remove box NAME if it is still there.
pub fn guard_main(args: &[String]) -> Result<std::process::ExitCode> {
    let [pid, name] = args else {
        anyhow::bail!("usage: box {GUARD} PID NAME");
    };
    crate::sys::ignore_hangups();
    let pid: i32 = pid.parse().context("the guarded pid")?;
    // The guarded process is the guard's parent: checked, then awaited through a pidfd.
    crate::sys::wait_for_parent_exit(pid);
    let ctx = Context::from_env()?;
    remove(&ctx, name);
    Ok(std::process::ExitCode::SUCCESS)
}
