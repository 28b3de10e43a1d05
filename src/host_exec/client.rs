//! The client of `box host-exec`, inside a box (see the parent module for the design):
//! connect to the box's socket at its fixed path, send the request with stdin, stdout,
//! stderr and the working directory, forward the terminal's signals, and end as the
//! command ended.
//!
//! It needs neither the store nor the network nor a thread: one connect, one sendmsg,
//! then a poll loop over the connection and a signalfd.

use std::ffi::OsString;
use std::io::{BufReader, IoSlice, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{PollFd, PollFlags, poll};

use super::{Bytes, ClientMessage, FORWARDED_SIGNALS, Reply, Request};
use crate::error::{Exit, failure};
use crate::sys::protocol;

/// Signals whose default action dumps core: a command killed by one makes box exit with
/// 128+N rather than leave a core file of its own.
const CORE_SIGNALS: &[Signal] = &[
    Signal::SIGQUIT,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGABRT,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGSEGV,
    Signal::SIGSYS,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
];

/// Run `command` (empty: the login shell) on the host; returns the command's status.
pub fn run(command: &[OsString]) -> Result<ExitCode> {
    let path = super::socket_in_box();
    let stream = connect(&path)?;
    check_peer(&path, &stream)?;

    // From here on the terminal's signals are for the host command: they are read from
    // a signalfd and forwarded.
    let mut signals = SigSet::empty();
    for signal in FORWARDED_SIGNALS {
        signals.add(*signal);
    }
    signals.thread_block().context("blocking signals")?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC).context("signalfd(2)")?;

    let cwd = std::env::current_dir()
        .context("reading the working directory")
        .map_err(|err| {
            failure(
                crate::error::message(&err),
                "change to an existing directory and run it again",
            )
        })?;
    let request = Request {
        command: (!command.is_empty()).then(|| {
            command
                .iter()
                .map(|a| Bytes::from_vec(a.clone().into_vec()))
                .collect()
        }),
        env: crate::sys::env::all()
            .map(|(name, value)| {
                let mut entry = name.into_vec();
                entry.push(b'=');
                entry.extend(value.into_vec());
                Bytes::from_vec(entry)
            })
            .collect(),
        cwd: Bytes::from_vec(cwd.into_os_string().into_vec()),
    };
    let here = rustix::fs::open(
        ".",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .context("opening the working directory")?;
    let sent = send_request(&stream, &request, &here);
    drop(here);
    let mut replies = BufReader::new(&stream);
    if let Err(err) = sent {
        // A refusal comes at once, and the host end closes: it may close before the
        // request is written. Its reason is the error to report, when it is there.
        return match protocol::recv::<Reply>(&mut replies, "the host end of box host-exec") {
            Ok(Some(Reply::Failed { failure, code })) => {
                Err(failure.into_error().context(Exit(code)))
            }
            _ => Err(err),
        };
    }

    loop {
        let mut fds = [
            PollFd::new(&stream, PollFlags::IN),
            PollFd::new(&signal_fd, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(std::io::Error::from(err)).context("poll(2)"),
        }
        if !fds[1].revents().is_empty()
            && let Ok(Some(info)) = signal_fd.read_signal()
        {
            let number = info.ssi_signo as i32;
            protocol::send(&mut &stream, &ClientMessage::Signal(number))
                .context("forwarding a signal to the host command")?;
            if number == Signal::SIGTSTP as i32 {
                // Stop as the command did, so the shell's job control sees it; SIGCONT
                // (from `fg`) is forwarded when it arrives.
                let _ = nix::sys::signal::raise(Signal::SIGSTOP);
            }
        }
        if !fds[0].revents().is_empty() {
            break;
        }
    }
    let reply: Option<Reply> = protocol::recv(&mut replies, "the host end of box host-exec")?;
    match reply {
        Some(Reply::Exited(code)) => Ok(ExitCode::from(code as u8)),
        Some(Reply::Killed(number)) => {
            if let Ok(signal) = Signal::try_from(number)
                && !CORE_SIGNALS.contains(&signal)
            {
                crate::sys::die_by(signal);
            }
            Ok(ExitCode::from(super::signal_status(number) as u8))
        }
        Some(Reply::Failed { failure, code }) => Err(failure.into_error().context(Exit(code))),
        None => Err(failure(
            "the host end of box host-exec ended without saying how the command ended",
            "the box was probably stopped; enter it again from the host",
        )),
    }
}

/// Check that the socket's end is a process of this very user (`SO_PEERCRED`, seen from
/// this user namespace): the host end runs as the box's user, who is this user in the
/// box. Anyone else (a stranger who put a socket of their own at that path; the owner
/// of the socket file proves nothing, as its maker chooses it) gets nothing: not the
/// environment, not the terminal. Root in a box with subordinate ids is another host
/// uid than the host end's, and stops here too.
fn check_peer(path: &Path, stream: &UnixStream) -> Result<()> {
    let own = rustix::process::getuid().as_raw();
    let peer = rustix::net::sockopt::socket_peercred(stream)
        .map(|c| c.uid.as_raw())
        .with_context(|| format!("reading who serves {}", path.display()))?;
    if peer == own {
        return Ok(());
    }
    let name = crate::host::containerenv_box().unwrap_or_else(|| "this box".to_owned());
    let hint = if own == 0 {
        format!("run it as the user who owns box `{name}`, not as root in the box through sudo")
    } else {
        format!(
            "if you own box `{name}`, someone else replaced its socket: check who can write \
             to your runtime directory, and run `box stop {name}` on the host"
        )
    };
    Err(failure(
        format!(
            "box host-exec refused: {} is served by uid {peer}, and you are uid {own}: box \
             `{name}` runs host commands only for its owner, as that user",
            path.display()
        ),
        hint,
    ))
}

/// Send `request` as one line, with stdin, stdout, stderr and `cwd` attached.
fn send_request(stream: &UnixStream, request: &Request, cwd: &impl AsFd) -> Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let mut line = serde_json::to_vec(request).context("serializing the request")?;
    line.push(b'\n');
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let fds = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd(), cwd.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let sent = sendmsg(
        stream,
        &[IoSlice::new(&line)],
        &mut control,
        SendFlags::empty(),
    )
    .context("sending the request to the host end (is stdin, stdout or stderr closed?)")?;
    (&mut &*stream)
        .write_all(&line[sent..])
        .context("sending the request to the host end")?;
    Ok(())
}

/// How long a client waits for the socket of a host end that is starting: the first
/// start of a box does not wait for it (see `server::start`).
const STARTING: Duration = Duration::from_secs(3);

/// Connect to the host end at `path`, waiting for it while it starts: its directory is
/// mounted in the box (so the box has a host end) but the socket is not bound yet, and
/// it has not said why it could not start.
fn connect(path: &Path) -> Result<UnixStream> {
    let dir = Path::new(super::DIR_IN_BOX);
    let deadline = Instant::now() + STARTING;
    loop {
        let err = match UnixStream::connect(path) {
            Ok(stream) => return Ok(stream),
            Err(err) => err,
        };
        let starting = matches!(
            err.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
        ) && dir.is_dir()
            && !dir.join(super::server::FAILURE_NAME).exists();
        if !starting || Instant::now() >= deadline {
            return Err(unreachable(path, err));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Why the socket could not be reached: not in a box, a box without a host end, or a
/// host end that could not start or has ended.
fn unreachable(path: &Path, err: std::io::Error) -> anyhow::Error {
    let Some(name) = crate::host::containerenv_box() else {
        return failure(
            "box host-exec runs a command on the host from inside a box, and this is not a box",
            "on the host, run the command itself; in a box (`box enter NAME`), `box host-exec CMD` runs CMD on the host",
        );
    };
    let restart = format!(
        "run `box stop {name}` on the host, then enter the box again: its host end starts with it"
    );
    let dir = Path::new(super::DIR_IN_BOX);
    if !dir.is_dir() {
        return failure(
            format!(
                "box `{name}` has no host end for box host-exec ({} is missing)",
                dir.display()
            ),
            format!("it was started by a box without host-exec: {restart}"),
        );
    }
    match std::fs::read_to_string(dir.join(super::server::FAILURE_NAME)) {
        Ok(why) => failure(
            format!(
                "the host end of box `{name}` could not start: {}",
                why.trim()
            ),
            restart,
        ),
        Err(_) => failure(
            format!(
                "the host end of box `{name}` does not answer ({}: {err})",
                path.display()
            ),
            restart,
        ),
    }
}
