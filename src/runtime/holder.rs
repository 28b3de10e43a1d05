//! The holder: the one long-lived process of a running box, holding its user, mount and
//! UTS namespaces so that `enter`/`run` can join them.
//!
//! Started by [`start`] as `box __holder` (a fresh exec of `/proc/self/exe`, so it is
//! single-threaded), in a new user namespace set up through the [`crate::sys::userns`]
//! handshake. With subordinate ids that namespace also maps the store owner: it mounts the
//! box's root (the only step that reaches the store's guarded layers), and the box gets a
//! user namespace of its own one level down (`holder/outer.rs`), where everything below
//! happens. Then, over the
//! same pipes, in [`crate::sys::protocol`]'s framing:
//! 1. parent → holder: the [`Plan`];
//! 2. holder: unshares mount + UTS namespaces, mounts and pivots as the plan says
//!    (`holder/apply.rs`, through the syscall seam `holder/mountsys.rs`), which leaves it
//!    descriptors of the box's own filesystems; through them alone
//!    ([`crate::sys::boxfs::BoxFs`]) it writes the box's files (`super::follow`), tidies
//!    the CDI mount points and carries out the CDI device hooks (`super::devices`), runs
//!    the first-start user setup (`super::setup`); forks; the child stays behind as the
//!    holder (new session, stdio on /dev/null, dumpable so the user can open its
//!    `/proc/PID/ns/*`, keeping the box's host-following files current through the same
//!    descriptors until killed);
//! 3. holder → parent: [`Report::Notice`]s (e.g. the copy fallback), then
//!    [`Report::Ready`] or [`Report::Failed`]; the forking process exits;
//! 4. parent → holder: [`Commit::Committed`], once the holder is recorded
//!    ([`Pending::commit`]). Until then the holder waits; when its starter dies first
//!    (Ctrl-C, kill -9), it reads end-of-file and ends, so no holder nobody knows of keeps
//!    the overlay mounted (the next start would mount a second one).
//!
//! The holder keeps none of the caller's file descriptors: a holder holding the write
//! end of a pipe would keep `box run NAME -- true | cat` from ever ending.
//!
//! When a holder dies (OOM, kill -9) while processes still run in the box, its overlay
//! is still mounted in their mount namespace: mounting it again would be a second
//! overlay on the same upper directory. [`adopt`] starts a new holder that joins those
//! namespaces instead (`box __holder-adopt`: an [`Adoption`] instead of the plan, then the
//! same steps 3 and 4, without the user namespace handshake), so the box goes on
//! transparently.
//!
//! # Many layers
//!
//! mount(2) takes one page of options (4096 bytes). Named by their 64-hex directory
//! names, about 62 lower layers fit; images of hundreds exist (overlayfs itself stacks up
//! to 500). An image of more than 500 layers gets the copy storage, with a notice that
//! says so (the kernel's EINVAL would have read as "overlayfs refused"). How the layers
//! are named below that depends on who mounts the overlay:
//! - Without subordinate ids, the holder itself, with mount(2): each layer is a short
//!   symlink in the box's own `lowers/` directory (`0`, `1`, ..., bottom first, made by
//!   `Store::link_lowers` before each start), and the holder mounts from inside that
//!   directory: 500 layers take under 2000 bytes, on every kernel box runs on (overlayfs
//!   in a user namespace needs 5.11; Debian 12 has 6.1). podman's `l/` links are the same
//!   idea. A store at so long a path that the upper and work directories alone overflow
//!   the page is an error naming those paths.
//! - With subordinate ids, the outer namespace (`holder/outer.rs`), with fsconfig(2),
//!   which takes at most 255 bytes per value (fs/fsopen.c), and never through the
//!   `lowers/` links, which root in a box can rewrite: each layer by its hex name,
//!   relative to P's descriptor of the guarded `layers/`, one `lowerdir+` each (Linux
//!   6.8; no limit but overlayfs' own). A kernel before 6.8 refuses `lowerdir+` (EINVAL);
//!   there P makes a private tmpfs, detached, of links `0`, `1`, ... to
//!   `/proc/self/fd/<layers/>/<hex>` and gives one `lowerdir` of those names, which fits
//!   88 layers; an image of more gets the copy storage, with a notice naming the kernel.
//!   An upper or work directory whose path is longer than 255 bytes is an error naming it.

mod apply;
mod mountsys;
mod outer;

use std::io::BufReader;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use super::plan::{BoxFile, Plan};
use super::setup;
use crate::store::containers::StorageKind;
use crate::sys::boxfs::BoxFs;
use crate::sys::protocol::{self, Failure};

/// What the holder reports once the box is up.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    pub pid: u32,
    pub start_time: u64,
    /// The storage the box runs on (overlay, or copy when the kernel refused overlay).
    pub storage: StorageKind,
    /// The user's login shell inside.
    pub shell: String,
    /// The mount points of CDI binds box has made in the box, for the box's record
    /// ([`crate::store::containers::ContainerRecord::device_mount_points`]); None when
    /// this start mounted nothing (a new holder for a running box).
    #[serde(default)]
    pub device_mount_points: Option<Vec<std::path::PathBuf>>,
}

/// Holder → parent (step 3 of the protocol).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Something the user should know (passed on as a notice).
    Notice(String),
    /// The box is up.
    Ready(Ready),
    /// The box could not be started.
    Failed(Failure),
}

/// Parent → holder once the holder is recorded (step 4 of the protocol).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Commit {
    Committed,
}

/// A holder that is up and waits to be recorded: [`Pending::commit`] once its state is
/// written; dropping it instead ends the holder.
pub struct Pending {
    pub ready: Ready,
    channel: Channel,
}

enum Channel {
    Start(crate::sys::userns::NsHelper),
    Adopt(std::process::Child, std::process::ChildStdin),
}

impl Pending {
    /// Tell the holder it is recorded, and wait for the process that forked it.
    pub fn commit(self) -> Result<()> {
        match self.channel {
            Channel::Start(mut helper) => {
                helper.send(&Commit::Committed)?;
                helper.finish()
            }
            Channel::Adopt(mut child, mut input) => {
                protocol::send(&mut input, &Commit::Committed)
                    .context("telling the new holder it is recorded")?;
                drop(input);
                let status = child.wait().context("waiting for the new holder")?;
                if !status.success() {
                    bail!("the new holder's parent failed ({status})");
                }
                Ok(())
            }
        }
    }
}

/// In the forked holder: wait until the starter says the holder is recorded; end when
/// it died first.
fn await_commit() {
    let committed = matches!(
        protocol::recv(&mut std::io::stdin().lock(), "the box process"),
        Ok(Some(Commit::Committed))
    );
    if !committed {
        std::process::exit(0);
    }
}

/// Start the holder of a box whose plan is `plan`; returns what it reported, after
/// passing its notices on to the user. `watch`: the inotify instance the holder keeps
/// the host-following files current with (see [`super::follow::new_watch`]).
pub fn start(
    plan: &Plan,
    mapping: &crate::sys::idmap::IdMapping,
    watch: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<Pending> {
    let mut helper = crate::sys::userns::NsHelper::spawn(
        "__holder",
        &[],
        mapping,
        crate::sys::idmap::Reach::Store,
        watch,
    )
    .with_context(|| format!("starting box `{}`", plan.name))?;
    helper.send(plan)?;
    let ready = await_ready(&plan.name, "starting", || helper.recv())?;
    Ok(Pending {
        ready,
        channel: Channel::Start(helper),
    })
}

/// Read a holder's reports with `next` (notices, passed on to the user, then the box
/// ready or its failure); `doing` names the job in errors.
fn await_ready(name: &str, doing: &str, mut next: impl FnMut() -> Result<Report>) -> Result<Ready> {
    loop {
        match next()? {
            Report::Notice(text) => crate::ui::report::notice(text),
            Report::Ready(ready) => return Ok(ready),
            Report::Failed(failure) => {
                return Err(Failure {
                    message: format!("{doing} box `{name}`: {}", failure.message),
                    hint: failure.hint,
                }
                .into_error());
            }
        }
    }
}

/// What [`adopt`] sends the new holder.
#[derive(Serialize, Deserialize)]
pub struct Adoption {
    plan: Plan,
    /// A process in the box's own mount namespace, and its start time.
    member: u32,
    member_start: u64,
    /// The storage the box runs on, to report back.
    storage: StorageKind,
    shell: String,
}

/// Start a new holder for a box whose holder died, in the namespaces of `member` (a
/// process of the box in its own mount namespace, see `members`).
pub fn adopt(plan: &Plan, member: u32, storage: &StorageKind, shell: &str) -> Result<Pending> {
    let what = || format!("restarting the holder of box `{}`", plan.name);
    let member_start = crate::sys::proc::start_time(member)
        .with_context(|| format!("process {member} of box `{}` has ended", plan.name))
        .with_context(what)?;
    let mut child = std::process::Command::new("/proc/self/exe")
        .arg("__holder-adopt")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(what)?;
    let mut input = child.stdin.take().expect("piped stdin");
    protocol::send(
        &mut input,
        &Adoption {
            plan: plan.clone(),
            member,
            member_start,
            storage: storage.clone(),
            shell: shell.to_owned(),
        },
    )
    .with_context(what)?;
    let mut output = BufReader::new(child.stdout.take().expect("piped stdout"));
    let peer = format!("the holder of `{}`", plan.name);
    let reply = await_ready(
        &plan.name,
        "restarting the holder of",
        || match protocol::recv(&mut output, &peer).with_context(what)? {
            Some(report) => Ok(report),
            None => bail!("{}: the new holder ended without a word", what()),
        },
    );
    match reply {
        Ok(ready) => Ok(Pending {
            ready,
            channel: Channel::Adopt(child, input),
        }),
        Err(err) => {
            drop(input);
            let _ = child.wait();
            Err(err)
        }
    }
}

/// Entry point of `box __holder-adopt`: join the namespaces of a process of the box, then
/// hold them as [`main`]'s holder does.
pub fn adopt_main(_args: &[String]) -> Result<ExitCode> {
    // SAFETY: first thing in this fresh exec of box, single-threaded: nothing of this
    // process has opened a descriptor yet, so every one above 2 is the starter's leftover
    // (std opens none at startup but, when 0-2 are closed, /dev/null on those).
    unsafe { crate::sys::close_inherited_fds() };
    let adoption: Adoption = read_message("the adoption")?;
    report(join_and_fork(&adoption))
}

fn join_and_fork(adoption: &Adoption) -> Result<Ready> {
    use rustix::thread::LinkNameSpaceType as Ns;
    let pid = adoption.member;
    let open = |ns: &str| {
        std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
            .with_context(|| format!("opening /proc/{pid}/ns/{ns}"))
    };
    let (user, mnt, uts) = (open("user")?, open("mnt")?, open("uts")?);
    // The fds pin the namespaces: a pid reused since the caller looked is caught here.
    if crate::sys::proc::start_time(pid) != Some(adoption.member_start) {
        bail!("process {pid} of the box ended meanwhile");
    }
    for (file, kind) in [
        (&user, Ns::User),
        (&mnt, Ns::Mount),
        (&uts, Ns::HostNameAndNISDomainName),
    ] {
        rustix::thread::move_into_link_name_space(file.as_fd(), Some(kind))
            .with_context(|| format!("entering the namespaces of process {pid}"))?;
    }
    if adoption.plan.has_root {
        // Files the holder renews (/etc/hosts) stay root's, as at the first start.
        crate::sys::userns::become_root()?;
    }
    rustix::process::chdir("/").context("chdir /")?;
    let fs = BoxFs::of_this_root()?;
    super::follow::apply_all(&fs, adoption.plan.files.iter().filter(|f| f.follows_host()))?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
        .context("prctl(PR_SET_DUMPABLE)")?;
    // SAFETY: the holder (`box __holder-adopt`, a fresh exec of box) never starts a
    // thread: it runs its steps in turn on the main thread, so it is single-threaded here.
    match unsafe { crate::sys::fork() }.context("fork")? {
        None => {
            await_commit();
            hold(&adoption.plan.files, None, &fs)
        }
        Some(pid) => Ok(Ready {
            pid,
            start_time: crate::sys::proc::start_time(pid)
                .with_context(|| format!("reading /proc/{pid}/stat of the new holder"))?,
            storage: adoption.storage.clone(),
            shell: adoption.shell.clone(),
            // Nothing mounted anew.
            device_mount_points: None,
        }),
    }
}

/// Tell the starter how it went: [`Report::Ready`] or [`Report::Failed`], the end of
/// both protocols.
fn report(outcome: Result<Ready>) -> Result<ExitCode> {
    match outcome {
        Ok(ready) => {
            say(&Report::Ready(ready));
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            say(&Report::Failed(one_line_failure(&err)));
            Ok(ExitCode::from(crate::error::EXIT_BOX_FAILURE))
        }
    }
}

/// The failure the holder reports for `err`: message and hint on one line each, as the
/// holder's errors have always read.
fn one_line_failure(err: &anyhow::Error) -> Failure {
    let failure = Failure::from_error(err);
    let one_line = |text: String| text.replace(['\t', '\n'], " ");
    Failure {
        message: one_line(failure.message),
        hint: failure.hint.map(one_line),
    }
}

/// Entry point of `box __holder [WATCH_FD]`.
pub fn main(args: &[String]) -> Result<ExitCode> {
    // The holder outlives its caller: it must keep none of the caller's descriptors but
    // the inotify instance passed on purpose (see `follow::new_watch`).
    let watch_fd = args.first().and_then(|fd| fd.parse().ok());
    // SAFETY: first thing in this fresh exec of box, single-threaded: nothing of this
    // process has opened a descriptor yet, so every one above 2 is the starter's leftover
    // or the watch it passed on purpose, which is kept and then taken once, here.
    let watch = unsafe {
        crate::sys::close_inherited_fds_except(watch_fd);
        crate::sys::take_passed_fd(watch_fd)
    };
    let has_root = crate::sys::userns::child_handshake()?;
    let plan: Plan = read_message("the plan")?;
    if !crate::sys::idmap::store_owner_mapped()? {
        return report(run(&plan, has_root, watch, None));
    }
    // With subordinate ids: this is the outer namespace, the box is one level down.
    match outer::nest(&plan, has_root, &mut |text| say(&Report::Notice(text))) {
        Ok(outer::Nested::Inner { storage, tree }) => {
            // Closed once attached: the holder keeps no descriptor it does not need.
            let mut tree = Some(tree);
            let mut attach = || {
                let tree = tree.take().context("the box's root was attached already")?;
                outer::attach(&tree, &plan.root).with_context(|| {
                    format!(
                        "mounting the root of box {} at {}",
                        plan.name,
                        plan.root.display()
                    )
                })?;
                Ok(storage.clone())
            };
            report(run(&plan, has_root, watch, Some(&mut attach)))
        }
        Ok(outer::Nested::Outer(code)) => Ok(code),
        Err(err) => report(Err(err)),
    }
}

/// Read the one message (`what`) the starter sends on stdin.
fn read_message<T: serde::de::DeserializeOwned>(what: &str) -> Result<T> {
    protocol::recv(&mut std::io::stdin().lock(), "the box process")
        .with_context(|| format!("reading {what}"))?
        .with_context(|| format!("reading {what}: the box process sent nothing"))
}

/// Send a report to the starter; a starter that is gone is noticed at the commit.
fn say(report: &Report) {
    let _ = protocol::send(&mut std::io::stdout().lock(), report);
}

/// Set the box up. Returns what to report in the process that reports back; the forked
/// holder never returns. `mount_root`: mounts the root made by the outer namespace (see
/// `outer`), in place of the plan's storage.
fn run(
    plan: &Plan,
    has_root: bool,
    watch: Option<std::os::fd::OwnedFd>,
    mount_root: Option<&mut dyn FnMut() -> Result<crate::store::containers::StorageKind>>,
) -> Result<Ready> {
    let applied = apply::apply(
        &mut mountsys::Kernel,
        plan,
        has_root,
        mount_root,
        &mut |text| say(&Report::Notice(text)),
    )?;
    // From here on, box writes in the box through its own filesystems only.
    let fs = applied
        .own
        .into_iter()
        .fold(BoxFs::new(applied.root), |fs, (at, fd)| {
            fs.with_own_mount(&at, fd)
        });
    super::follow::apply_all(&fs, &plan.files)?;
    let device_mount_points = super::devices::tidy_mount_points(
        &fs,
        &plan.made_device_mount_points,
        &plan.device_mount_points,
        &applied.made,
    );
    super::devices::run_hooks(
        &fs,
        &plan.device_hooks,
        &super::devices::BoxState {
            name: &plan.name,
            bundle: plan.root.parent().unwrap_or(&plan.root),
        },
        &mut |text| say(&Report::Notice(text)),
    )?;
    if !setup::done(&fs, &plan.user)
        && let Err(err) = setup::run(&fs, &plan.user, has_root, plan.timezone.as_deref())
    {
        say(&Report::Notice(format!(
            "warning: setting up user {} in box {} failed: {}",
            plan.user.name,
            plan.name,
            crate::error::message(&err).replace('\n', " ")
        )));
    }
    let shell = setup::login_of(&plan.user.name)
        .map(|(shell, _)| shell)
        .filter(|s| Path::new(s).is_absolute())
        .unwrap_or_else(|| setup::pick_shell(&plan.user.host_shell, |p| p.exists()));

    // The fork's child inherits the dumpable flag; it was cleared by the uid change.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
        .context("prctl(PR_SET_DUMPABLE)")?;
    // SAFETY: the holder (`box __holder`, a fresh exec of box) never starts a thread:
    // the setup above (mounts, hooks run to completion, the user's setup) runs on the
    // main thread, so it is single-threaded here.
    match unsafe { crate::sys::fork() }.context("fork")? {
        None => {
            await_commit();
            hold(&plan.files, watch, &fs)
        }
        Some(pid) => {
            let start_time = crate::sys::proc::start_time(pid)
                .with_context(|| format!("reading /proc/{pid}/stat of the new holder"))?;
            Ok(Ready {
                pid,
                start_time,
                storage: applied.storage,
                shell,
                device_mount_points: Some(device_mount_points),
            })
        }
    }
}

/// The holder's life: detach from the caller, then keep the box's host-following files
/// current until killed.
fn hold(files: &[BoxFile], watch: Option<std::os::fd::OwnedFd>, fs: &BoxFs) -> ! {
    // `ps -o comm` then names the process for what it is.
    let _ = rustix::thread::set_name(c"box-holder");
    let _ = rustix::process::setsid();
    if let Ok(null) = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
    super::follow::keep_current(fs, files, watch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Hint, HintExt};

    #[test]
    fn notices_pass_and_a_failure_reads_as_the_starters_own_error() {
        let err: Result<()> = Err(anyhow::anyhow!("Permission denied\n(os error 13)"))
            .context("mounting /srv at /data in the box")
            .hint("create /srv\ton the host");
        // Through the framing, as the starter reads them.
        let mut pipe = Vec::new();
        for report in [
            Report::Notice("using a copy".into()),
            Report::Failed(one_line_failure(&err.unwrap_err())),
        ] {
            protocol::send(&mut pipe, &report).unwrap();
        }
        let mut input = std::io::Cursor::new(pipe);
        let err = await_ready("dev", "starting", || {
            Ok(protocol::recv(&mut input, "box __holder")?.unwrap())
        })
        .unwrap_err();
        assert_eq!(
            crate::error::message(&err),
            "starting box `dev`: mounting /srv at /data in the box: Permission denied (os error 13)"
        );
        assert_eq!(
            err.downcast_ref::<Hint>().unwrap().0,
            "create /srv on the host"
        );

        let ready = Report::Ready(Ready {
            pid: 7,
            start_time: 9,
            storage: StorageKind::Copy,
            shell: "/bin/bash".into(),
            device_mount_points: None,
        });
        let mut pipe = Vec::new();
        protocol::send(&mut pipe, &ready).unwrap();
        assert!(String::from_utf8_lossy(&pipe).contains("\"storage\":\"copy\""));
        let mut input = std::io::Cursor::new(pipe);
        let ready = await_ready("dev", "starting", || {
            Ok(protocol::recv(&mut input, "box __holder")?.unwrap())
        })
        .unwrap();
        assert_eq!((ready.pid, ready.storage), (7, StorageKind::Copy));
    }
}
