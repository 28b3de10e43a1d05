//! The host end of `box host-exec` (see the parent module for the design): started by
//! [`start`] beside a box's holder as `box __host-exec-server NAME`, it binds the box's
//! socket, reports ready and detaches; then it serves connections until the holder ends.
//!
//! The starter forks twice and sends the [`Config`] on the host end's stdin, and does
//! not wait: the host end binds the socket and serves (own session, stdio on /dev/null),
//! or writes why it cannot to [`FAILURE_NAME`] in its directory, where the client finds
//! it.
//!
//! Each accepted connection is checked (`SO_PEERCRED`: the user's own uid only); the
//! host end receives the request and the descriptors, spawns the command (found in the
//! host's PATH first, so std spawns it with posix_spawn: no fork of the host end) in a
//! process group of its own, and keeps it in its poll loop: the client's signals go to
//! that group, and the command's status goes back when its pidfd says it ended. One
//! single-threaded process serves every connection; a client that sends nothing holds
//! it for at most a few seconds (a read timeout), and only the user can connect.
//!
//! The socket is bound through `/proc/self/fd/N/socket`, N a descriptor of its directory:
//! a socket address holds 107 bytes, fewer than a long runtime directory and box name
//! take; the client's path in the box (`/run/host-exec/socket`) is short anyway.
//!
//! Invariants:
//! - the host end keeps none of its starter's descriptors, and ends, unlinking its socket
//!   (when it is still its own), as soon as the holder it was started for ends;
//! - a connection from any other uid gets a [`Reply::Failed`] and nothing else.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use anyhow::{Context as _, Result, bail};
use rustix::event::{PollFd, PollFlags, poll};
use serde::{Deserialize, Serialize};

use super::{BoxEnv, ClientMessage, FORWARDED_SIGNALS, Reply, Request, SOCKET_NAME};
use crate::error::{EXIT_BOX_FAILURE, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, failure};
use crate::sys::protocol::{self, Failure};

/// The hidden subcommand of the host end.
pub const SUBCOMMAND: &str = "__host-exec-server";

/// Starter → host end: the box it serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub name: String,
    /// The holder: the host end lives as long as it.
    pub holder_pid: u32,
    pub holder_start: u64,
    /// The directory of the socket (mounted in the box, see [`super::host_dir`]).
    pub dir: PathBuf,
    /// The box's directory mounts: (path in the box, path on the host).
    pub shared: Vec<(PathBuf, PathBuf)>,
    pub env: BoxEnv,
    /// The user's home and login shell on the host.
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// The file in the host end's directory that says why it could not start (read by the
/// client, which sees the directory in the box).
pub const FAILURE_NAME: &str = "failure";

/// Start the host end of box `config.name`, detached, without waiting for it: the
/// first start of a box must not wait for a second start of box (the client waits for
/// the socket briefly instead, see [`super::client`]). It is nobody's child here
/// ([`crate::sys::spawn_detached`]): the caller goes on to exec the user's command, which
/// must not inherit a child of its own.
///
/// `watch`: the box's inotify instance, which the host end only keeps open until it ends,
/// so that the holder's exit is not the instance's last close (see
/// [`crate::runtime::follow::new_watch`]).
pub fn start(config: &Config, watch: Option<std::os::fd::BorrowedFd<'_>>) -> Result<()> {
    let what = || {
        format!(
            "starting the host end of `box host-exec` for box `{}`",
            config.name
        )
    };
    let mut line = serde_json::to_vec(config).with_context(what)?;
    line.push(b'\n');
    let mut command = std::process::Command::new("/proc/self/exe");
    command
        .arg(SUBCOMMAND)
        .arg(&config.name)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/");
    if let Some(fd) = watch {
        command.arg(fd.as_raw_fd().to_string());
        crate::sys::pass_fd(&mut command, fd);
    }
    let mut child = crate::sys::spawn_detached(&mut command).with_context(what)?;
    // The configuration fits in the pipe: written at once, read whenever it starts.
    let sent = child.stdin.take().map(|mut input| input.write_all(&line));
    child.wait().with_context(what)?;
    match sent {
        Some(Ok(())) => Ok(()),
        Some(Err(err)) => Err(err).with_context(what),
        None => bail!("{}: no pipe to its stdin", what()),
    }
}

/// Entry point of `box __host-exec-server NAME [WATCH_FD]`.
pub fn main(args: &[String]) -> Result<ExitCode> {
    // It outlives its starter: none of the starter's descriptors may stay open here, but
    // the box's inotify instance, passed on purpose, which it keeps until it ends.
    let watch_fd = args.get(1).and_then(|fd| fd.parse().ok());
    // SAFETY: first thing in this fresh exec of box, single-threaded: nothing of this
    // process has opened a descriptor yet, so every one above 2 is the starter's leftover
    // or the watch it passed on purpose, which is kept and then taken once, here.
    let _watch = unsafe {
        crate::sys::close_inherited_fds_except(watch_fd);
        crate::sys::take_passed_fd(watch_fd)
    };
    let config: Config = protocol::recv(&mut std::io::stdin().lock(), "the box process")
        .context("reading the host end's configuration")?
        .context("the box process sent no configuration")?;
    let failure_file = config.dir.join(FAILURE_NAME);
    match prepare(&config) {
        Ok((listener, holder)) => {
            let _ = std::fs::remove_file(&failure_file);
            serve(&config, &listener, &holder)
        }
        Err(err) => {
            // Nobody waits for this process: the client reports it.
            let _ = std::fs::write(&failure_file, crate::error::message(&err));
            Ok(ExitCode::from(EXIT_BOX_FAILURE))
        }
    }
}

/// Pin the holder (a pidfd, checked against its start time) and bind the socket.
fn prepare(config: &Config) -> Result<(UnixListener, OwnedFd)> {
    let pid = rustix::process::Pid::from_raw(config.holder_pid as i32)
        .context("the holder's pid is 0")?;
    let holder = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .with_context(|| {
            format!(
                "opening the holder (pid {}) of box `{}`",
                config.holder_pid, config.name
            )
        })?;
    if crate::sys::proc::start_time(config.holder_pid) != Some(config.holder_start) {
        bail!("the holder of box `{}` ended meanwhile", config.name);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.dir)
        .with_context(|| format!("creating {}", config.dir.display()))?;
    check_private(&config.dir)?;
    let path = config.dir.join(SOCKET_NAME);
    // A socket left by a host end that was killed: nobody listens on it any more.
    match std::fs::remove_file(&path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("removing the old socket {}", path.display()));
        }
        _ => {}
    }
    // A socket's address holds 107 bytes, and the runtime directory alone may be longer
    // (a long XDG_RUNTIME_DIR, a long box name): bind through the directory's descriptor,
    // a short path to the very directory checked above.
    let dir = rustix::fs::open(
        &config.dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(std::io::Error::from)
    .with_context(|| format!("opening {}", config.dir.display()))?;
    let short = format!("/proc/self/fd/{}/{SOCKET_NAME}", dir.as_raw_fd());
    let listener =
        UnixListener::bind(&short).with_context(|| format!("binding {}", path.display()))?;
    drop(dir);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    Ok((listener, holder))
}

/// Check that nobody else can reach into the socket's directory, `<runtime>/box/NAME/
/// host-exec`: it and the two directories above it (box's own) are private, and nothing
/// above those can be changed by anyone but root and the user. Whoever could would put a
/// socket of their own in its place, and receive what the box's clients send.
fn check_private(dir: &Path) -> Result<()> {
    let uid = rustix::process::getuid().as_raw();
    let mut ours = dir.ancestors();
    let mut top = dir;
    for dir in ours.by_ref().take(3) {
        crate::store::check_private_dir(dir, uid)?;
        top = dir;
    }
    match ours.next() {
        Some(above) => crate::store::check_safe_path(above, top, uid),
        None => Ok(()),
    }
}

/// A command being run for a client.
struct Session {
    /// The client; `None` once it went away (the command is still reaped).
    stream: Option<UnixStream>,
    child: std::process::Child,
    pidfd: OwnedFd,
    /// Bytes read from the client and not yet a whole message.
    pending: Vec<u8>,
}

impl Session {
    fn group(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Act on the client's whole messages (signals for the command's group).
    fn forward_signals(&mut self) {
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if let Ok(ClientMessage::Signal(number)) =
                serde_json::from_slice::<ClientMessage>(&line[..end])
                && let Some(signal) = FORWARDED_SIGNALS.iter().find(|s| **s as i32 == number)
            {
                let _ = nix::sys::signal::killpg(self.group(), *signal);
            }
        }
    }
}

/// The host end's life: serve connections until the holder ends. One process, one poll
/// loop over the listener, the holder's pidfd and each session's client and command
/// (pidfd): a request costs one spawn, no fork of the host end.
fn serve(config: &Config, listener: &UnixListener, holder: &OwnedFd) -> ! {
    let _ = rustix::thread::set_name(c"box-host-exec");
    let _ = rustix::process::setsid();
    if let Ok(null) = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
    // No SIGHUP/SIGINT to ignore (it has no terminal), and none may be: an ignored
    // signal stays ignored in the commands it spawns, and a shell cannot trap it.
    let path = config.dir.join(SOCKET_NAME);
    let ours = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()));
    let mut sessions: Vec<Session> = Vec::new();
    loop {
        let (ready, holder_ended, incoming) = {
            let mut fds = vec![
                PollFd::new(listener, PollFlags::IN),
                PollFd::new(holder, PollFlags::IN),
            ];
            for session in &sessions {
                fds.push(PollFd::new(&session.pidfd, PollFlags::IN));
                match &session.stream {
                    Some(stream) => fds.push(PollFd::new(stream, PollFlags::IN)),
                    None => fds.push(PollFd::new(&session.pidfd, PollFlags::empty())),
                }
            }
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
            let ready: Vec<(bool, bool)> = fds[2..]
                .chunks(2)
                .map(|pair| (!pair[0].revents().is_empty(), !pair[1].revents().is_empty()))
                .collect();
            (
                ready,
                !fds[1].revents().is_empty(),
                fds[0].revents().contains(PollFlags::IN),
            )
        };
        if holder_ended {
            break;
        }
        // Back to front, so that removing one keeps the others' indices.
        for (index, (ended, readable)) in ready.into_iter().enumerate().rev() {
            let session = &mut sessions[index];
            if ended {
                let reply = match session.child.wait() {
                    Ok(status) => match status.signal() {
                        Some(signal) => Reply::Killed(signal),
                        None => Reply::Exited(status.code().unwrap_or(EXIT_BOX_FAILURE as i32)),
                    },
                    Err(err) => {
                        failed(&anyhow::Error::from(err).context("waiting for the command"))
                    }
                };
                if let Some(stream) = &session.stream {
                    let _ = protocol::send(&mut &*stream, &reply);
                }
                sessions.swap_remove(index);
                continue;
            }
            if readable && let Some(stream) = &session.stream {
                let mut chunk = [0u8; 256];
                match (&mut &*stream).read(&mut chunk) {
                    Ok(n) if n > 0 => {
                        session.pending.extend_from_slice(&chunk[..n]);
                        session.forward_signals();
                    }
                    _ => {
                        // The caller is gone (killed, its box stopped): hang up, as a
                        // terminal does; the command is still reaped when it ends.
                        let _ = nix::sys::signal::killpg(session.group(), nix::sys::signal::SIGHUP);
                        let _ =
                            nix::sys::signal::killpg(session.group(), nix::sys::signal::SIGCONT);
                        session.stream = None;
                    }
                }
            }
        }
        if incoming
            && let Ok((stream, _)) = listener.accept()
            && let Some(session) = admit(config, stream)
        {
            sessions.push(session);
        }
    }
    // The box is gone. A newer host end (the box started again meanwhile) may own the
    // path by now: remove only our own socket.
    if std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino())) == ours {
        let _ = std::fs::remove_file(&path);
    }
    std::process::exit(0)
}

/// The reply that reports `err`, with the exit status it carries.
fn failed(err: &anyhow::Error) -> Reply {
    Reply::Failed {
        failure: Failure::from_error(err),
        code: crate::error::exit_code(err),
    }
}

/// Check who connected: start the box's own user's command, refuse others.
fn admit(config: &Config, stream: UnixStream) -> Option<Session> {
    let own = rustix::process::getuid().as_raw();
    let peer = rustix::net::sockopt::socket_peercred(&stream).map(|c| c.uid.as_raw());
    if peer.as_ref().ok() != Some(&own) {
        let who = match peer {
            Ok(uid) => format!("uid {uid}"),
            Err(err) => format!("a process whose credentials cannot be read ({err})"),
        };
        let refusal = failure(
            format!(
                "box host-exec refused: box `{}` runs host commands only for its owner (uid {own}), and this connection comes from {who}",
                config.name
            ),
            format!(
                "only the user who owns box `{}` can use it, as that user (not as root in the box through sudo)",
                config.name
            ),
        );
        let _ = stream.set_nonblocking(true);
        let _ = protocol::send(
            &mut &stream,
            &Reply::Failed {
                failure: Failure::from_error(&refusal),
                code: EXIT_BOX_FAILURE,
            },
        );
        return None;
    }
    // The box's own client sends its request at once; a stalled one must not stall the
    // host end for long.
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    match start_command(config, &stream) {
        Ok((child, pidfd, pending)) => {
            let _ = stream.set_read_timeout(None);
            let mut session = Session {
                stream: Some(stream),
                child,
                pidfd,
                pending,
            };
            session.forward_signals();
            Some(session)
        }
        Err(err) => {
            let _ = protocol::send(&mut &stream, &failed(&err));
            None
        }
    }
}

/// The descriptors a request carries: stdin, stdout, stderr, the working directory.
const REQUEST_FDS: usize = 4;

/// Receive the request line and its descriptors; returns what was read past the line.
fn receive(stream: &UnixStream) -> Result<(Request, Vec<OwnedFd>, Vec<u8>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let mut fds = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(REQUEST_FDS))];
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = recvmsg(
            stream,
            &mut [std::io::IoSliceMut::new(&mut chunk)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .context("receiving the request")?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if got.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            bail!(
                "the request came with more descriptors than stdin, stdout, stderr and a directory"
            );
        }
        if got.bytes == 0 {
            bail!("the client ended before its request was complete");
        }
        buf.extend_from_slice(&chunk[..got.bytes]);
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let rest = buf.split_off(end + 1);
            let line = String::from_utf8_lossy(&buf[..end]);
            let request: Request = protocol::decode(&line, "box host-exec")?;
            return Ok((request, fds, rest));
        }
    }
}

/// Receive a request and spawn its command; returns the command, its pidfd and what the
/// client sent past the request.
fn start_command(
    config: &Config,
    stream: &UnixStream,
) -> Result<(std::process::Child, OwnedFd, Vec<u8>)> {
    let (request, fds, pending) = receive(stream)?;
    let Ok([stdin, stdout, stderr, cwd]) = <[OwnedFd; REQUEST_FDS]>::try_from(fds) else {
        bail!("the request did not carry stdin, stdout, stderr and the working directory");
    };
    let dir = working_directory(config, Path::new(&request.cwd.clone().into_os()), &cwd)?;
    drop(cwd);
    let host: Vec<_> = crate::sys::env::all().collect();
    let env = super::host_env(
        &request.env,
        &config.env,
        &host,
        &config.home,
        &config.shell,
        &dir,
    );
    let (program, mut command) = match request.command {
        None => {
            let base = config.shell.file_name().unwrap_or("sh".as_ref());
            let mut argv0 = std::ffi::OsString::from("-");
            argv0.push(base);
            let mut command = std::process::Command::new(&config.shell);
            command.arg0(argv0);
            (config.shell.clone().into_os_string(), command)
        }
        Some(args) => {
            let mut args = args.into_iter().map(super::Bytes::into_os);
            let program = args.next().context("an empty command")?;
            // Found here, in the host's PATH: std then spawns it without a fork of the
            // host end (posix_spawn), which it cannot do for a name and a PATH of the
            // command's own.
            let path = env
                .iter()
                .find(|(n, _)| n == "PATH")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let found = super::find_in_path(&program, &path, &dir).ok_or_else(|| {
                spawn_error(&program, std::io::Error::from(std::io::ErrorKind::NotFound))
            })?;
            let mut command = std::process::Command::new(found);
            command.arg0(&program).args(args);
            (program, command)
        }
    };
    command
        .env_clear()
        .envs(env)
        .current_dir(&dir)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    let child = command.spawn().map_err(|err| spawn_error(&program, err))?;
    let pid = rustix::process::Pid::from_raw(child.id() as i32).context("the command's pid")?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .context("watching the command")?;
    Ok((child, pidfd, pending))
}

/// The host directory the command starts in: the host path of the box path `cwd`, when
/// it is the very directory the client sent (`fd`); else a clear refusal.
fn working_directory(config: &Config, cwd: &Path, fd: &OwnedFd) -> Result<PathBuf> {
    let sent = rustix::fs::fstat(fd).context("reading the working directory sent")?;
    let same = |path: &Path| {
        rustix::fs::stat(path).is_ok_and(|s| s.st_dev == sent.st_dev && s.st_ino == sent.st_ino)
    };
    if let Some(host) = super::host_path(cwd, &config.shared).filter(|p| same(p)) {
        return Ok(host);
    }
    // A directory the join made visible since the box started (another session's
    // runtime directory) is at the same path on the host.
    if same(cwd) {
        return Ok(cwd.to_owned());
    }
    Err(failure(
        format!(
            "the working directory {} is box `{}`'s own, not a directory it shares with the host",
            cwd.display(),
            config.name
        ),
        "change to a directory the host shares with the box (your home, /tmp, a volume, or the host's own files under /run/host) and run it again",
    )
    .context(crate::error::Exit(EXIT_BOX_FAILURE)))
}

/// The error for a command that could not be started on the host.
fn spawn_error(program: &std::ffi::OsStr, err: std::io::Error) -> anyhow::Error {
    let program = program.to_string_lossy();
    let (message, code, hint) = match err.kind() {
        std::io::ErrorKind::NotFound => (
            format!("command `{program}` not found on the host"),
            EXIT_NOT_FOUND,
            "install it on the host, or check the spelling (the host's PATH is the one of the session that started the box)".to_owned(),
        ),
        std::io::ErrorKind::PermissionDenied => (
            format!("`{program}` cannot be executed on the host: {err}"),
            EXIT_NOT_EXECUTABLE,
            "check that it is an executable file (`ls -l` it on the host)".to_owned(),
        ),
        _ => (
            format!("running `{program}` on the host failed: {err}"),
            EXIT_NOT_EXECUTABLE,
            "check the command".to_owned(),
        ),
    };
    failure(message, hint).context(crate::error::Exit(code))
}
