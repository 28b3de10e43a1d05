//! The holder: the one long-lived process of a running box, holding its user, mount and
//! UTS namespaces so that `enter`/`run` can join them.
//!
//! Started by [`start`] as `box __holder` (a fresh exec of `/proc/self/exe`, so it is
//! single-threaded), in a new user namespace set up through the [`crate::userns`]
//! handshake. Then, over the same pipes, one line each way:
//! 1. parent → holder: the [`Plan`] as JSON;
//! 2. holder: unshares mount + UTS namespaces, mounts and pivots as the plan says, writes
//!    the box's files, runs the first-start user setup, forks; the child stays behind as
//!    the holder (new session, stdio on /dev/null, dumpable so the user can open its
//!    `/proc/PID/ns/*`, asleep until killed);
//! 3. holder → parent: `notice TEXT` lines (e.g. the copy fallback), then `ready JSON`
//!    ([`Ready`]) or `error MESSAGE<TAB>HINT`; the forking process exits;
//! 4. parent → holder: `committed`, once the holder is recorded ([`Pending::commit`]).
//!    Until then the holder waits; when its starter dies first (Ctrl-C, kill -9), it reads
//!    end-of-file and ends, so no holder nobody knows of keeps the overlay mounted (the
//!    next start would mount a second one).
//!
//! The holder keeps none of the caller's file descriptors: a holder holding the write
//! end of a pipe would keep `box run NAME -- true | cat` from ever ending.
//!
//! When a holder dies (OOM, kill -9) while processes still run in the box, its overlay
//! is still mounted in their mount namespace: mounting it again would be a second
//! overlay on the same upper directory. [`adopt`] starts a new holder that joins those
//! namespaces instead (`box __holder-adopt`, same protocol without the user namespace
//! handshake), so the box goes on transparently.

use std::io::{BufRead, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use super::plan::{FileOp, MountKind, Plan, Storage};
use super::setup;
use crate::error::{Hint, HintExt, failure};

/// What the holder reports once the box is up.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Ready {
    pub pid: u32,
    pub start_time: u64,
    /// "overlay" or "copy".
    pub storage: String,
    /// The user's login shell inside.
    pub shell: String,
}

/// A holder that is up and waits to be recorded: [`Pending::commit`] once its state is
/// written; dropping it instead ends the holder.
pub struct Pending {
    pub ready: Ready,
    channel: Channel,
}

enum Channel {
    Start(crate::userns::NsHelper),
    Adopt(std::process::Child, std::process::ChildStdin),
}

impl Pending {
    /// Tell the holder it is recorded, and wait for the process that forked it.
    pub fn commit(self) -> Result<()> {
        match self.channel {
            Channel::Start(mut helper) => {
                helper.send(COMMITTED)?;
                helper.finish()
            }
            Channel::Adopt(mut child, mut input) => {
                writeln!(input, "{COMMITTED}").context("telling the new holder it is recorded")?;
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

/// The line that lets a holder go on (step 4 of the protocol).
const COMMITTED: &str = "committed";

/// In the forked holder: wait until the starter says the holder is recorded; end when
/// it died first.
fn await_commit() {
    let mut line = String::new();
    let committed = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .is_ok_and(|_| line.trim_end() == COMMITTED);
    if !committed {
        std::process::exit(0);
    }
}

/// Start the holder of a box whose plan is `plan`; returns what it reported, after
/// passing its notices on to the user.
pub fn start(plan: &Plan, mapping: &crate::idmap::IdMapping) -> Result<Pending> {
    let mut helper = crate::userns::NsHelper::spawn("__holder", &[], mapping)
        .with_context(|| format!("starting box `{}`", plan.name))?;
    helper.send(&serde_json::to_string(plan).context("serializing the plan")?)?;
    let ready = await_ready(&plan.name, "starting", || helper.recv())?;
    Ok(Pending {
        ready,
        channel: Channel::Start(helper),
    })
}

/// Read a holder's reply (`notice` lines, passed on to the user, then `ready JSON` or
/// `error MESSAGE<TAB>HINT`) with `next_line`; `doing` names the job in errors.
fn await_ready(
    name: &str,
    doing: &str,
    mut next_line: impl FnMut() -> Result<String>,
) -> Result<Ready> {
    loop {
        let line = next_line()?;
        if let Some(text) = line.strip_prefix("notice ") {
            crate::report::notice(text);
        } else if let Some(json) = line.strip_prefix("ready ") {
            return serde_json::from_str(json)
                .with_context(|| format!("the holder of `{name}` sent {json:?}"));
        } else if let Some(error) = line.strip_prefix("error ") {
            let (message, hint) = error.split_once('\t').unwrap_or((error, ""));
            let err = anyhow::anyhow!("{doing} box `{name}`: {message}");
            return Err(if hint.is_empty() {
                err
            } else {
                err.context(Hint(hint.to_owned()))
            });
        } else {
            bail!("the holder of `{name}` sent {line:?}");
        }
    }
}

/// What [`adopt`] sends the new holder.
#[derive(serde::Serialize, serde::Deserialize)]
struct Adoption {
    plan: Plan,
    /// A process in the box's own mount namespace, and its start time.
    member: u32,
    member_start: u64,
    /// The storage the box runs on ("overlay" or "copy"), to report back.
    storage: String,
    shell: String,
}

/// Start a new holder for a box whose holder died, in the namespaces of `member` (a
/// process of the box in its own mount namespace, see `members`).
pub fn adopt(plan: &Plan, member: u32, storage: &str, shell: &str) -> Result<Pending> {
    let what = || format!("restarting the holder of box `{}`", plan.name);
    let member_start = super::state::start_time(member)
        .with_context(|| format!("process {member} of box `{}` has ended", plan.name))
        .with_context(what)?;
    let mut child = std::process::Command::new("/proc/self/exe")
        .arg("__holder-adopt")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(what)?;
    let message = serde_json::to_string(&Adoption {
        plan: plan.clone(),
        member,
        member_start,
        storage: storage.to_owned(),
        shell: shell.to_owned(),
    })?;
    let mut input = child.stdin.take().expect("piped stdin");
    writeln!(input, "{message}").with_context(what)?;
    let mut output = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let reply = await_ready(&plan.name, "restarting the holder of", || {
        let mut line = String::new();
        match output.read_line(&mut line).with_context(what)? {
            0 => bail!("{}: the new holder ended without a word", what()),
            _ => Ok(line.trim_end().to_owned()),
        }
    });
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
    crate::sys::close_inherited_fds();
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
    if super::state::start_time(pid) != Some(adoption.member_start) {
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
        crate::userns::become_root()?;
    }
    rustix::process::chdir("/").context("chdir /")?;
    super::follow::apply_all(adoption.plan.files.iter().filter(|op| op.follows_host()))?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
        .context("prctl(PR_SET_DUMPABLE)")?;
    match crate::sys::fork().context("fork")? {
        None => {
            await_commit();
            hold(&adoption.plan.files)
        }
        Some(pid) => Ok(Ready {
            pid,
            start_time: super::state::start_time(pid)
                .with_context(|| format!("reading /proc/{pid}/stat of the new holder"))?,
            storage: adoption.storage.clone(),
            shell: adoption.shell.clone(),
        }),
    }
}

/// Say `ready JSON` or `error MESSAGE<TAB>HINT` on stdout: the end of both protocols.
fn report(outcome: Result<Ready>) -> Result<ExitCode> {
    match outcome {
        Ok(ready) => {
            say(&format!("ready {}", serde_json::to_string(&ready)?));
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            let hint = err
                .downcast_ref::<Hint>()
                .map(|h| h.0.clone())
                .unwrap_or_default();
            let message = crate::error::message(&err).replace(['\t', '\n'], " ");
            say(&format!(
                "error {message}\t{}",
                hint.replace(['\t', '\n'], " ")
            ));
            Ok(ExitCode::from(crate::error::EXIT_BOX_FAILURE))
        }
    }
}

/// Entry point of `box __holder`.
pub fn main(_args: &[String]) -> Result<ExitCode> {
    // The holder outlives its caller: it must keep none of the caller's descriptors.
    crate::sys::close_inherited_fds();
    let has_root = crate::userns::child_handshake()?;
    let plan: Plan = read_message("the plan")?;
    report(run(&plan, has_root))
}

/// Read the one JSON line (`what`) the starter sends on stdin.
fn read_message<T: serde::de::DeserializeOwned>(what: &str) -> Result<T> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading {what}"))?;
    serde_json::from_str(&line).with_context(|| format!("parsing {what}"))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Set the box up. Returns what to report in the process that reports back; the forked
/// holder never returns.
fn run(plan: &Plan, has_root: bool) -> Result<Ready> {
    use rustix::thread::UnshareFlags;
    crate::sys::unshare_namespaces(UnshareFlags::NEWNS | UnshareFlags::NEWUTS)
        .context("unshare(CLONE_NEWNS | CLONE_NEWUTS)")?;
    // Nothing mounted in the box may propagate to the host; host mounts still reach us.
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .context("making / a recursive slave mount")?;
    rustix::system::sethostname(plan.hostname.as_bytes())
        .with_context(|| format!("setting the hostname {}", plan.hostname))?;
    // The host tree for /run/host, taken before the box root exists so the clone does
    // not contain the box itself.
    let host_root = rustix::mount::open_tree(
        rustix::fs::CWD,
        "/",
        rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
            | rustix::mount::OpenTreeFlags::AT_RECURSIVE,
    )
    .context("cloning the host's mount tree")?;

    let storage = mount_root(plan, has_root)?;
    let root_fd = rustix::fs::open(
        &plan.root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", plan.root.display()))?;
    for m in &plan.mounts {
        mount_one(&root_fd, m, &host_root).map_err(|err| match &m.hint {
            // The mount's own hint says more than a generic one from below.
            Some(hint) => err.context(crate::error::Hint(hint.clone())),
            None => err,
        })?;
        detach_copied_root(&root_fd, m, &plan.root)?;
    }
    drop(host_root);

    rustix::process::fchdir(&root_fd).context("entering the box root")?;
    drop(root_fd);
    rustix::process::pivot_root(".", ".").context("pivot_root into the box root")?;
    // The old root is stacked on "."; detach it so only the box is left.
    rustix::mount::unmount(".", UnmountFlags::DETACH).context("detaching the host root")?;
    rustix::process::chdir("/").context("chdir /")?;

    super::follow::apply_all(&plan.files)?;
    if !setup::done(&plan.user)
        && let Err(err) = setup::run(&plan.user, has_root, plan.timezone.as_deref())
    {
        say(&format!(
            "notice warning: setting up user {} in box {} failed: {}",
            plan.user.name,
            plan.name,
            crate::error::message(&err).replace('\n', " ")
        ));
    }
    let shell = setup::login_of(&plan.user.name)
        .map(|(shell, _)| shell)
        .filter(|s| Path::new(s).is_absolute())
        .unwrap_or_else(|| setup::pick_shell(&plan.user.host_shell, |p| p.exists()));

    // The fork's child inherits the dumpable flag; it was cleared by the uid change.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
        .context("prctl(PR_SET_DUMPABLE)")?;
    match crate::sys::fork().context("fork")? {
        None => {
            await_commit();
            hold(&plan.files)
        }
        Some(pid) => {
            let start_time = super::state::start_time(pid)
                .with_context(|| format!("reading /proc/{pid}/stat of the new holder"))?;
            Ok(Ready {
                pid,
                start_time,
                storage: storage.into(),
                shell,
            })
        }
    }
}

/// The holder's life: detach from the caller, then keep the box's host-following files
/// current until killed.
fn hold(files: &[FileOp]) -> ! {
    // `ps -o comm` then names the process for what it is.
    let _ = rustix::thread::set_name(c"box-holder");
    let _ = rustix::process::setsid();
    if let Ok(null) = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
    super::follow::keep_current(files)
}

/// Detach the copy of the box root a recursive bind brought along (see
/// [`super::plan::Mount::copied_root`]): with its `/proc` and the whole host at
/// `run/host` in it, `du ~` or `find ~` in the box would walk the host's whole tree.
fn detach_copied_root(root: &OwnedFd, m: &super::plan::Mount, box_root: &Path) -> Result<()> {
    let Some(copy) = m.copied_root(box_root) else {
        return Ok(());
    };
    let relative = copy.strip_prefix("/").unwrap_or(&copy);
    let fd = match rustix::fs::openat2(
        root,
        relative,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(err) => {
            return Err(std::io::Error::from(err))
                .with_context(|| format!("opening {} in the box", copy.display()));
        }
    };
    match rustix::mount::unmount(fd_path(&fd).as_str(), UnmountFlags::DETACH) {
        // EINVAL: nothing is mounted there (the box root was not below this bind).
        Ok(()) | Err(Errno::INVAL) => Ok(()),
        Err(err) => Err(std::io::Error::from(err)).with_context(|| {
            format!(
                "detaching the copy of the box root at {} in the box",
                copy.display()
            )
        }),
    }
}

/// Mount the box root at `plan.root`. Returns the storage actually used.
fn mount_root(plan: &Plan, has_root: bool) -> Result<&'static str> {
    let marker = plan
        .root
        .parent()
        .context("box root without a parent")?
        .join("copy-complete");
    if let Storage::Overlay {
        layers_dir,
        lowers,
        upper,
        work,
    } = &plan.storage
    {
        if has_root {
            // `/` of the box is the upper dir's root: make it root's, as images expect.
            for dir in [upper, work] {
                let meta =
                    std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
                if meta.uid() != 0 {
                    std::os::unix::fs::chown(dir, Some(0), Some(0))
                        .with_context(|| format!("changing the owner of {}", dir.display()))?;
                }
            }
        }
        rustix::process::chdir(layers_dir)
            .with_context(|| format!("entering {}", layers_dir.display()))?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            lowers.join(":"),
            upper.display(),
            work.display()
        );
        let data = std::ffi::CString::new(options).context("overlay options")?;
        match rustix::mount::mount(
            "overlay",
            &plan.root,
            "overlay",
            MountFlags::empty(),
            data.as_c_str(),
        ) {
            Ok(()) => return Ok("overlay"),
            Err(err)
                if [Errno::INVAL, Errno::PERM, Errno::OPNOTSUPP, Errno::NODEV].contains(&err) =>
            {
                say(&format!(
                    "notice the kernel refused overlayfs for box {} ({err}); using a full copy of the image instead: it takes the image's size on disk again and a while to build once",
                    plan.name
                ));
            }
            Err(err) => {
                return Err(std::io::Error::from(err))
                    .with_context(|| format!("mounting overlayfs at {} ({})", plan.root.display(), data.to_string_lossy()))
                    .hint("the layer directories must exist; `box rm` the box and create it again if the image was removed");
            }
        }
    }
    if super::copy::ensure_copy(&plan.layer_dirs, &plan.root, &marker)? && has_root {
        std::os::unix::fs::chown(&plan.root, Some(0), Some(0))
            .with_context(|| format!("changing the owner of {}", plan.root.display()))?;
    }
    rustix::mount::mount_bind(&plan.root, &plan.root)
        .with_context(|| format!("bind-mounting {} onto itself", plan.root.display()))?;
    Ok("copy")
}

/// Open (creating it if missing) the mount point `target` inside the root `root`,
/// resolving every component inside the box (symlinks in the image cannot point the
/// mount outside of it).
fn prepare_target(root: &OwnedFd, target: &Path, file: bool) -> Result<OwnedFd> {
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let parts: Vec<&std::ffi::OsStr> = target
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    let mut current = rustix::fs::openat2(root, ".", flags, Mode::empty(), resolve)?;
    let mut prefix = PathBuf::new();
    for (i, part) in parts.iter().enumerate() {
        prefix.push(part);
        match rustix::fs::openat2(root, &prefix, flags, Mode::empty(), resolve) {
            Ok(fd) => current = fd,
            Err(Errno::NOENT) => {
                let last = i + 1 == parts.len();
                let parent_path = prefix
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let parent = rustix::fs::openat2(
                    root,
                    parent_path,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                    resolve,
                )?;
                if last && file {
                    rustix::fs::openat(
                        &parent,
                        *part,
                        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )?;
                } else {
                    match rustix::fs::mkdirat(&parent, *part, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                current = rustix::fs::openat2(root, &prefix, flags, Mode::empty(), resolve)?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(current)
}

fn fd_path(fd: &OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The flags a read-only remount must keep: in a user namespace the kernel refuses to
/// clear nosuid/nodev/noexec/atime flags locked by the mount's creator.
fn locked_flags(path: &str) -> MountFlags {
    use rustix::fs::StatVfsMountFlags as S;
    let Ok(st) = rustix::fs::statvfs(path) else {
        return MountFlags::empty();
    };
    let mut flags = MountFlags::empty();
    for (s, m) in [
        (S::NOSUID, MountFlags::NOSUID),
        (S::NODEV, MountFlags::NODEV),
        (S::NOEXEC, MountFlags::NOEXEC),
        (S::NOATIME, MountFlags::NOATIME),
        (S::NODIRATIME, MountFlags::NODIRATIME),
        (S::RELATIME, MountFlags::RELATIME),
    ] {
        if st.f_flag.contains(s) {
            flags |= m;
        }
    }
    flags
}

fn mount_one(root: &OwnedFd, m: &super::plan::Mount, host_root: &OwnedFd) -> Result<()> {
    let what = || {
        format!(
            "mounting {} at {} in the box",
            m.source.display(),
            m.target.display()
        )
    };
    let is_file = matches!(m.kind, MountKind::BindFile);
    if matches!(m.kind, MountKind::BindDir { .. } | MountKind::BindFile) && !m.source.exists() {
        return Err(failure(
            format!(
                "{} does not exist (to be mounted at {} in the box)",
                m.source.display(),
                m.target.display()
            ),
            m.hint
                .clone()
                .unwrap_or_else(|| "create it on the host, then start the box again".into()),
        ));
    }
    let target = prepare_target(root, &m.target, is_file)
        .with_context(|| format!("creating the mount point {} in the box", m.target.display()))?;
    let target_path = fd_path(&target);
    match &m.kind {
        MountKind::BindDir { recursive } => {
            let flags = MountFlags::BIND
                | if *recursive {
                    MountFlags::REC
                } else {
                    MountFlags::empty()
                };
            rustix::mount::mount(&m.source, &target_path, "", flags, None).with_context(what)?;
        }
        MountKind::BindFile => {
            rustix::mount::mount_bind(&m.source, &target_path).with_context(what)?;
        }
        MountKind::Tmpfs { options } => {
            let mut flags = MountFlags::empty();
            let mut data = Vec::new();
            for opt in options.split(',') {
                match opt {
                    "nosuid" => flags |= MountFlags::NOSUID,
                    "nodev" => flags |= MountFlags::NODEV,
                    "noexec" => flags |= MountFlags::NOEXEC,
                    other => data.push(other),
                }
            }
            let data = std::ffi::CString::new(data.join(",")).context("tmpfs options")?;
            rustix::mount::mount("tmpfs", &target_path, "tmpfs", flags, data.as_c_str())
                .with_context(what)?;
        }
        MountKind::HostRoot => {
            rustix::mount::move_mount(
                host_root.as_fd(),
                "",
                target.as_fd(),
                "",
                rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                    | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .with_context(what)?;
        }
    }
    if m.read_only {
        // The fd still names the directory under the new mount; reopen to reach the mount.
        let mounted = prepare_target(root, &m.target, is_file)?;
        make_read_only(&mounted, &m.target)?;
    }
    Ok(())
}

/// Make the mount whose root `mounted` is, and every mount below it, read-only: a
/// `--volume SRC:DST:ro` whose source has mounts below it (a tmpfs, a USB disk) must not
/// be writable through them. The mounts also become private, so that a mount the host
/// makes below the source later (which would arrive writable through propagation) does
/// not show up in the box; podman's volumes are private by default too.
fn make_read_only(mounted: &OwnedFd, target: &Path) -> Result<()> {
    let what = || format!("making {} read-only in the box", target.display());
    match crate::sys::mount_tree_read_only_private(mounted.as_fd()) {
        Ok(()) => return Ok(()),
        Err(err) if err.raw_os_error() != Some(libc::ENOSYS) => {
            return Err(err).with_context(what);
        }
        // Before Linux 5.12 there is no mount_setattr(2): do the same mount by mount.
        Err(_) => {}
    }
    let path = fd_path(mounted);
    rustix::mount::mount_change(
        &path,
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .with_context(what)?;
    let top = std::fs::read_link(&path)
        .with_context(|| format!("reading {path} (the mount at {})", target.display()))
        .with_context(what)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("reading /proc/self/mountinfo")
        .with_context(what)?;
    let below = mounts_below(&mountinfo, &top);
    for point in std::iter::once(PathBuf::from(&path)).chain(below) {
        let point = point.to_string_lossy().into_owned();
        let flags = MountFlags::BIND | MountFlags::RDONLY | locked_flags(&point);
        rustix::mount::mount_remount(point.as_str(), flags, "")
            .with_context(|| format!("remounting {point} read-only"))
            .with_context(what)
            .hint("a read-only volume is never left writable; remove the mounts below its source, or create the box without `:ro`")?;
    }
    Ok(())
}

/// The mount points strictly below `top` listed in `mountinfo` (proc_pid_mountinfo(5)),
/// outermost first as the kernel lists them.
fn mounts_below(mountinfo: &str, top: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point != top && point.starts_with(top))
        .collect()
}

/// Undo the octal escapes (`\040` for a space) the kernel writes in mountinfo paths.
fn unescape_mountinfo(field: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |n, d| n.wrapping_mul(8).wrapping_add(d - b'0')),
                );
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mounts_below_a_volume_come_from_mountinfo_unescaped() {
        let mountinfo = "\
22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw
30 22 0:30 / /srv/ro rw - ext4 /dev/sda1 rw
31 30 0:31 / /srv/ro/sub rw - tmpfs tmpfs rw
32 31 0:32 / /srv/ro/sub/deeper rw - tmpfs tmpfs rw
33 22 0:33 / /srv/ro\\040two/x rw - tmpfs tmpfs rw
34 22 0:34 / /srv/rother rw - tmpfs tmpfs rw
";
        assert_eq!(
            mounts_below(mountinfo, Path::new("/srv/ro")),
            vec![
                PathBuf::from("/srv/ro/sub"),
                PathBuf::from("/srv/ro/sub/deeper")
            ]
        );
        assert_eq!(
            mounts_below(mountinfo, Path::new("/srv/ro two")),
            vec![PathBuf::from("/srv/ro two/x")]
        );
        assert_eq!(unescape_mountinfo("a\\134b\\011c\\9"), "a\\b\tc\\9");
    }
}
