//! Helper processes that live in a new user namespace with box's id mapping.
//!
//! Work that must see ids as a box does (unpacking layers, deleting files owned by
//! subordinate ids, running a box's holder) runs in a fresh exec of box itself
//! (`/proc/self/exe <hidden subcommand>`), because `unshare(CLONE_NEWUSER)` fails with
//! EINVAL in a multi-threaded process and the caller may have threads (pull does).
//!
//! The handshake, over the child's stdin/stdout in [`crate::sys::protocol`]'s framing, one
//! [`Handshake`] message each way:
//! 1. child: `unshare(CLONE_NEWUSER)`, then sends [`Handshake::Unshared`];
//! 2. parent: writes the id maps for the child's pid ([`IdMapping::apply`]), then sends
//!    [`Handshake::Mapped`], saying whether uid 0 exists inside;
//! 3. child: becomes uid/gid 0 inside when it exists, and goes on with its job.
//!
//! After the handshake both sides go on exchanging their own messages over the same
//! pipes ([`NsHelper::send`], [`NsHelper::recv`]).
//!
//! Invariant: a helper never outlives the box process that started it (the holder's
//! forked child is the one exception: fork(2) clears the parent-death signal, which is
//! what lets it stay behind on purpose). The child arms PR_SET_PDEATHSIG first thing and
//! *again after every credential change*, because prctl(2) says the setting is cleared
//! when the effective uid or gid changes (setresuid/setresgid in [`child_handshake`]);
//! after each arming it checks that its parent is still the one it started with, since a
//! parent that died before the arming sent no signal. [`check_parent`] lets a helper ask
//! again before an irreversible step (the store helper, before renaming a layer into
//! place).

use std::io::BufReader;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, bail};
use rustix::process::Pid;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::sys::idmap::{IdMapping, Reach};
use crate::sys::protocol;

/// The messages of the handshake (see the module doc).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handshake {
    /// Child to parent: the new user namespace exists; write its maps.
    Unshared,
    /// Parent to child: the maps are written; whether uid 0 exists inside.
    Mapped { has_root: bool },
}

/// The parent's handle on a helper in a new user namespace.
pub struct NsHelper {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
    what: String,
}

impl NsHelper {
    /// Start `box <subcommand> <args>` in a new user namespace mapped with `mapping`,
    /// over the ids `reach` says; with `pass`, the helper inherits that descriptor, whose
    /// number comes last in its arguments (see [`crate::sys::pass_fd`]).
    ///
    /// The helper is killed when the *thread* calling this ends (PR_SET_PDEATHSIG follows
    /// the thread that forked, prctl(2)): call it from a thread that outlives the helper's
    /// use, such as the main thread.
    pub fn spawn(
        subcommand: &str,
        args: &[String],
        mapping: &IdMapping,
        reach: Reach,
        pass: Option<BorrowedFd<'_>>,
    ) -> Result<NsHelper> {
        NsHelper::spawn_with_stderr(subcommand, args, mapping, reach, pass, Stdio::inherit())
    }

    /// [`NsHelper::spawn`] with the helper's stderr sent to `stderr` (`box doctor` keeps
    /// a failed helper's message to itself, to say it on its own line).
    pub fn spawn_with_stderr(
        subcommand: &str,
        args: &[String],
        mapping: &IdMapping,
        reach: Reach,
        pass: Option<BorrowedFd<'_>>,
        stderr: Stdio,
    ) -> Result<NsHelper> {
        let what = format!("box {subcommand}");
        let mut command = Command::new("/proc/self/exe");
        command
            .arg(subcommand)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(fd) = pass {
            command.arg(fd.as_raw_fd().to_string());
            crate::sys::pass_fd(&mut command, fd);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let input = child.stdin.take().expect("piped stdin");
        let output = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut helper = NsHelper {
            child,
            input: Some(input),
            output,
            what,
        };
        let first: Handshake = helper.recv()?;
        if first != Handshake::Unshared {
            bail!("{} sent {first:?} instead of `unshared`", helper.what);
        }
        mapping
            .apply(helper.pid(), reach)
            .with_context(|| format!("setting up the id mapping of {}", helper.what))?;
        helper.send(&Handshake::Mapped {
            has_root: mapping.has_root(),
        })?;
        Ok(helper)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send one message to the helper.
    pub fn send<T: Serialize>(&mut self, message: &T) -> Result<()> {
        let input = self.input.as_mut().context("helper input already closed")?;
        protocol::send(input, message)
            .with_context(|| format!("{} stopped unexpectedly", self.what))
    }

    /// Receive one message from the helper; its end is an error.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T> {
        match protocol::recv(&mut self.output, &self.what)? {
            Some(message) => Ok(message),
            None => {
                let status = self.child.wait().ok();
                bail!(
                    "{} ended unexpectedly{}",
                    self.what,
                    status.map(|s| format!(" ({s})")).unwrap_or_default()
                );
            }
        }
    }

    /// Close the helper's input and wait for it to end successfully.
    pub fn finish(mut self) -> Result<()> {
        drop(self.input.take());
        let status = self
            .child
            .wait()
            .with_context(|| format!("waiting for {}", self.what))?;
        if !status.success() {
            bail!("{} failed ({status})", self.what);
        }
        Ok(())
    }
}

impl Drop for NsHelper {
    fn drop(&mut self) {
        // A helper abandoned on an error path must not outlive us.
        if self.input.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The parent this helper was started by, recorded by [`child_handshake`].
static PARENT: OnceLock<Option<Pid>> = OnceLock::new();

/// The child's side of the handshake: unshare the user namespace, wait for the maps,
/// become root inside if there is one. Returns whether uid 0 exists inside.
///
/// Must be called while the process is single-threaded (it is a fresh exec).
pub fn child_handshake() -> Result<bool> {
    // Read before arming: if the parent is already gone, this is its reaper and the
    // handshake below fails anyway (nobody reads `unshared`, nobody writes the maps).
    PARENT.get_or_init(rustix::process::getppid);
    die_with_parent()?;
    crate::sys::unshare_namespaces(rustix::thread::UnshareFlags::NEWUSER)
        .context("unshare(CLONE_NEWUSER)")
        .map_err(|e| {
            e.context(crate::error::Hint(
                "unprivileged user namespaces may be disabled (the sysctls user.max_user_namespaces and kernel.unprivileged_userns_clone); `box doctor` checks this host and says how to fix it".into(),
            ))
        })?;
    protocol::send(&mut std::io::stdout().lock(), &Handshake::Unshared)?;
    let has_root = match protocol::recv(&mut std::io::stdin().lock(), "the parent")? {
        Some(Handshake::Mapped { has_root }) => has_root,
        other => bail!("unexpected handshake message {other:?}"),
    };
    if has_root {
        become_root()?;
        // setresgid/setresuid just cleared the parent-death signal (prctl(2)).
        die_with_parent()?;
    }
    Ok(has_root)
}

/// Fail when the process that started this helper is gone (the helper was reparented).
/// Only meaningful after [`child_handshake`].
pub fn check_parent() -> Result<()> {
    match PARENT.get() {
        Some(&parent) if rustix::process::getppid() == parent => Ok(()),
        Some(_) => Err(crate::error::failure(
            "the box process that started this helper is gone; stopping without finishing its work",
            "run the command again",
        )),
        None => bail!("check_parent called before the handshake"),
    }
}

/// Arm PR_SET_PDEATHSIG (SIGKILL), then check that the parent did not die before it was
/// armed: a death in between sends no signal, and the helper would run on as an orphan.
fn die_with_parent() -> Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .context("prctl(PR_SET_PDEATHSIG)")?;
    check_parent()
}

/// Become uid/gid 0 inside the user namespace we are in, with no supplementary groups.
/// Clears the parent-death signal: [`child_handshake`] arms it again (the holder adopting
/// a box wants none: it outlives its caller).
pub fn become_root() -> Result<()> {
    use rustix::process::{Gid, Uid};
    // Groups first: dropping the uid first would drop CAP_SETGID with it.
    rustix::thread::set_thread_groups(&[]).context("setgroups([])")?;
    rustix::thread::set_thread_res_gid(Gid::ROOT, Gid::ROOT, Gid::ROOT).context("setresgid(0)")?;
    rustix::thread::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).context("setresuid(0)")?;
    Ok(())
}
