//! Joining a running box: the hot path of every `box enter` and `box run`.
//!
//! From the runtime state alone (no box record, no store access): check the holder's
//! start time, open its `ns/user`, `ns/mnt`, `ns/uts`, re-check the start time (the fds
//! now pin the namespaces, so a pid reused in between is caught), `setns` user first
//! (it grants the capabilities the other two need), then mount, then UTS; change to the
//! caller's directory when the box has it, else to the same directory of the host
//! through `/run/host` (distrobox does the same), else home (a command, unlike a login
//! shell, must be in the very directory: a box directory of the same path that is
//! another one gives way to `/run/host`); build the environment; and `execve` in place.
//!
//! A session other than the one that started the box (the box was started from cron or
//! ssh, now a desktop terminal joins) may have another `XDG_RUNTIME_DIR` or `XAUTHORITY`:
//! only then (string comparisons otherwise) the host integrations act for it, from what
//! they noted at the box's start (the state's `joins`, see
//! [`super::plan::integrations`]): on the host side before `setns` (the caller's X
//! cookie file read with the caller's rights), then in the box right after `setns`, with
//! the capabilities setns(user) grants until execve and before `--user` changes the
//! identity (its runtime directory bound in from `/run/host`, a wildcard copy of its X
//! cookies in the box's `/run/box` for a box of another hostname or home), and with the
//! variables they set for the command (`XAUTHORITY`), which win over the box's own.
//! No thread, no fork, no pty: the command inherits the terminal, the process group,
//! the signals and gives its exit status straight to the caller.
//!
//! An exported desktop entry whose app has a working directory (`Path=`) names it in
//! [`WORKDIR_ENV`]: then the command starts in that directory of the box, or does not
//! start (a clear error, as a launcher fails on a missing `Path`), and the caller's
//! directory is not even looked at.
//!
//! Inside box NAME itself, `box run NAME`/`box enter NAME` skip the join ([`exec_here`]):
//! the process already is where the command must run. Both paths share the command
//! lookup and the 126/127 policy. Arguments are bytes, never required to be UTF-8.

use std::convert::Infallible;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use nix::errno::Errno;
use rustix::thread::LinkNameSpaceType;

use super::plan::integrations;
use super::state::State;
use crate::error::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, Exit, HintExt, failure};

/// The box directory a command starts in, set by exported desktop entries (see
/// `export::desktop`); like every `BOX_*` variable it does not reach the command.
pub const WORKDIR_ENV: &str = "BOX_WORKDIR";

/// The directory [`WORKDIR_ENV`] names, if it is set (one getenv).
fn workdir() -> Option<OsString> {
    crate::sys::env::non_empty(WORKDIR_ENV)
}

/// Change to `dir` of box `name` (the process is in its mount namespace), or the error.
fn enter_workdir(name: &str, dir: &OsStr) -> Result<()> {
    let err = if !dir.as_bytes().starts_with(b"/") {
        None
    } else {
        match rustix::process::chdir(dir) {
            Ok(()) => return Ok(()),
            Err(err) => Some(err),
        }
    };
    let dir = Path::new(dir).display();
    Err(failure(
        match err {
            Some(err) => format!("cannot change to directory {dir} in box `{name}`: {err}"),
            None => format!("{WORKDIR_ENV}={dir} is not an absolute directory"),
        },
        format!(
            "it is the working directory (Path=) of the exported application's entry; create it in box `{name}`, or fix the entry in the box and export it again"
        ),
    ))
}

/// What to run in the box.
#[derive(Debug, Clone, Copy)]
pub enum Command<'a> {
    /// The user's login shell (argv[0] `-bash`).
    LoginShell,
    /// A command and its arguments (any bytes but NUL), found through the box's PATH.
    Exec(&'a [OsString]),
}

/// How a command joins a box: what runs, in which directory, as whom, and with what
/// besides the caller's environment.
#[derive(Debug, Clone, Copy)]
pub struct Join<'a> {
    pub command: Command<'a>,
    /// Start in the home, not in the caller's directory.
    pub no_workdir: bool,
    /// An account of the box's passwd, a name or a uid (`None`: the caller), with that
    /// account's HOME, USER, LOGNAME, SHELL and PATH (see [`super::identity`]). Without
    /// it nothing more is read than for the caller.
    pub user: Option<&'a str>,
    /// Variables set over the caller's environment (provisioning's `LC_ALL=C`).
    pub env: &'a [(String, String)],
}

impl<'a> Join<'a> {
    /// `command` as the caller, in the caller's directory, with the caller's environment.
    pub fn new(command: Command<'a>) -> Self {
        Join {
            command,
            no_workdir: false,
            user: None,
            env: &[],
        }
    }
}

/// Join the box `name` held by `state` and run what `join` says in place of this
/// process; returns only on failure.
pub fn exec(name: &str, state: &State, join: &Join<'_>) -> Result<Infallible> {
    let Join {
        command,
        no_workdir,
        user: account,
        env: extra_env,
    } = *join;
    // Taken before setns(mnt) moves us to the box's root: the caller's directory, and
    // for a command (not a login shell) which directory it is. `skip-workdir` comes from
    // the state (the setting when the box started) or BOX_SKIP_WORKDIR: no file read.
    let workdir = workdir();
    let no_workdir = no_workdir
        || workdir.is_some()
        || state.skip_workdir
        || crate::sys::env::flag("BOX_SKIP_WORKDIR") == Some(true);
    let cwd = if no_workdir {
        None
    } else {
        std::env::current_dir().ok()
    };
    let cwd_identity = match command {
        Command::Exec(_) if cwd.is_some() => dir_identity("."),
        _ => None,
    };
    let gone = || {
        failure(
            format!("box `{name}` stopped while being entered"),
            format!("run the command again; `box enter {name}` starts it"),
        )
    };
    // `box run` checks for being in a box up front; a caller that dropped CONTAINER_ID
    // from its environment (sudo, env -i) gets here, and is told by the box's own file.
    let inside = || {
        here_when_box_file_says(name, command, no_workdir, || {
            format!("run a command in box `{name}`")
        })
    };
    let open = |ns: &str| {
        File::open(format!("/proc/{}/ns/{ns}", state.pid))
            .with_context(|| {
                format!(
                    "opening the {ns} namespace of box `{name}` (holder pid {})",
                    state.pid
                )
            })
            .with_hint(|| format!(
                "check that box `{name}` belongs to you; `box stop {name}` then `box enter {name}` starts it afresh"
            ))
    };
    let (user, mnt, uts) = match (open("user"), open("mnt"), open("uts")) {
        (Ok(user), Ok(mnt), Ok(uts)) => (user, mnt, uts),
        (Err(err), ..) | (_, Err(err), _) | (.., Err(err)) => {
            inside()?;
            return Err(err);
        }
    };
    if !state.is_alive() {
        return Err(gone());
    }
    // What the integrations do for another session, prepared on the host side.
    let var = |name: &str| crate::sys::env::os(name);
    let steps = integrations::join_steps(&state.joins, &integrations::Caller::new(&var));
    let setns = |file: &File, kind: LinkNameSpaceType, what: &str| {
        rustix::thread::move_into_link_name_space(file.as_fd(), Some(kind))
            .with_context(|| format!("entering the {what} namespace of box `{name}`"))
    };
    if let Err(err) = setns(&user, LinkNameSpaceType::User, "user") {
        inside()?;
        return Err(err).hint(
            "the box may belong to another user, or your kernel forbids joining user namespaces",
        );
    }
    setns(&mnt, LinkNameSpaceType::Mount, "mount")?;
    setns(&uts, LinkNameSpaceType::HostNameAndNISDomainName, "uts")?;
    drop((user, mnt, uts));
    let mut session_env = Vec::new();
    for step in steps {
        step(&mut session_env);
    }
    // Before the directory change: the target account's permissions decide it.
    let account = match account {
        Some(target) => Some(super::identity::become_user(name, target)?),
        None => None,
    };
    let home = account.as_ref().map_or(state.home.as_str(), |a| &a.home);
    let shell = account.as_ref().map_or(state.shell.as_str(), |a| &a.shell);

    // setns(mnt) put us at the box's root; go where the caller was when possible. A
    // command works on the caller's files: a box directory of the same path that is not
    // the same directory (the box's own /var/tmp or /usr/src) gives way to the host's.
    let on_host = |d: &PathBuf| {
        Path::new(crate::host::fs::HOST_ROOT_IN_BOX).join(d.strip_prefix("/").unwrap_or(d))
    };
    let dir = if let Some(dir) = &workdir {
        enter_workdir(name, dir)?;
        Some(PathBuf::from(dir))
    } else {
        cwd.as_ref()
            .filter(|d| {
                rustix::process::chdir(*d).is_ok()
                    && cwd_identity.is_none_or(|id| dir_identity(".") == Some(id))
            })
            .cloned()
            .or_else(|| {
                let host_dir = on_host(cwd.as_ref()?);
                rustix::process::chdir(&host_dir)
                    .is_ok()
                    .then_some(host_dir)
            })
            .or_else(|| {
                let home = PathBuf::from(home);
                rustix::process::chdir(&home).is_ok().then_some(home)
            })
    };
    if dir.is_none() {
        let _ = rustix::process::chdir("/");
    }

    let mut forced = state.env_forced.clone();
    forced.push(("SHELL".into(), shell.to_owned()));
    if let Some(account) = &account {
        forced.extend([
            ("HOME".into(), account.home.clone()),
            ("USER".into(), account.name.clone()),
            ("LOGNAME".into(), account.name.clone()),
            ("PATH".into(), crate::host::STANDARD_PATH.join(":")),
        ]);
    }
    forced.extend(session_env);
    forced.extend(extra_env.iter().cloned());
    let env = crate::host::compose_env(crate::sys::env::all(), &forced, &state.env_defaults);
    run(name, Path::new(shell), command, env)
}

/// Where a spawned command's standard streams go: this process's own, or the given
/// descriptors (stdin `None` is /dev/null when `null_stdin`).
#[derive(Debug, Default)]
pub struct Stdio {
    pub null_stdin: bool,
    pub stdout: Option<std::os::fd::OwnedFd>,
    pub stderr: Option<std::os::fd::OwnedFd>,
}

/// Run what `join` says in box `name` as a child of this process, for callers that go on
/// once it ends (`box ephemeral` removes its box, provisioning reads a step's output):
/// fork, then, in the child, the same join as [`exec`]. Returns the child's pid, to wait
/// for with [`wait`]. SIGINT and SIGQUIT get their default action back in the child (a
/// caller that ignores them while the command has the terminal, as `system(3)` does,
/// must not hand that on: an ignored signal stays ignored across execve).
pub fn spawn(name: &str, state: &State, join: &Join<'_>, stdio: Stdio) -> Result<u32> {
    let forked = crate::sys::fork_single_threaded()
        .with_context(|| format!("starting a command in box `{name}`"))?;
    if let Some(pid) = forked {
        return Ok(pid);
    }
    // The child: whatever happens, it ends here, never returning into the caller's work.
    let outcome = (|| -> Result<Infallible> {
        use std::os::fd::AsFd as _;
        if stdio.null_stdin {
            let null = File::open("/dev/null").context("opening /dev/null")?;
            rustix::stdio::dup2_stdin(null.as_fd()).context("dup2")?;
        }
        if let Some(fd) = &stdio.stdout {
            rustix::stdio::dup2_stdout(fd.as_fd()).context("dup2")?;
        }
        if let Some(fd) = &stdio.stderr {
            rustix::stdio::dup2_stderr(fd.as_fd()).context("dup2")?;
        }
        drop(stdio);
        crate::sys::default_interrupts();
        exec(name, state, join)
    })();
    let Err(err) = outcome;
    crate::error::report(&err);
    crate::sys::exit_now(crate::error::exit_code(&err))
}

/// Wait for child `pid` of [`spawn`] to end: its status, as [`std::process::Command`]
/// gives it.
pub fn wait(pid: u32) -> Result<std::process::ExitStatus> {
    use nix::sys::wait::{WaitStatus, waitpid};
    use std::os::unix::process::ExitStatusExt as _;
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    loop {
        // The raw wait status (wait(2)): the exit code in the second byte, a signal in
        // the low seven bits.
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => {
                return Ok(std::process::ExitStatus::from_raw((code & 0xff) << 8));
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return Ok(std::process::ExitStatus::from_raw(signal as i32));
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(err) => return Err(err).context("waiting for a command in a box"),
        }
    }
}

/// (device, inode) of directory `path`.
fn dir_identity(path: &str) -> Option<(u64, u64)> {
    let stat = rustix::fs::stat(path).ok()?;
    Some((stat.st_dev, stat.st_ino))
}

/// When this process runs inside a box (one getenv on the host, see
/// [`crate::host::inside_box`]): run `command` right here when that box is `name`, else
/// the error that `what` (e.g. "enter box `two`") is for the host. `Ok` on the host.
pub fn here_when_inside(
    name: &str,
    command: Command<'_>,
    no_workdir: bool,
    what: impl FnOnce() -> String,
) -> Result<()> {
    here_if_in(crate::host::inside_box(), name, command, no_workdir, what)
}

/// [`here_when_inside`] for a caller whose environment lost `CONTAINER_ID` (sudo,
/// `env -i`): asks the box's `/run/.containerenv` itself. For the paths where box would
/// otherwise fail (no running box to join, a join refused), where a file read is free.
pub fn here_when_box_file_says(
    name: &str,
    command: Command<'_>,
    no_workdir: bool,
    what: impl FnOnce() -> String,
) -> Result<()> {
    here_if_in(
        crate::host::containerenv_box(),
        name,
        command,
        no_workdir,
        what,
    )
}

fn here_if_in(
    current: Option<String>,
    name: &str,
    command: Command<'_>,
    no_workdir: bool,
    what: impl FnOnce() -> String,
) -> Result<()> {
    let Some(current) = current else {
        return Ok(());
    };
    if current == name {
        match exec_here(name, command, no_workdir)? {}
    }
    Err(super::from_host_only(&current, name, &what()))
}

/// Run `command` in box `name` from inside that box: no namespace to join, the caller's
/// environment is already the box's (`CONTAINER_ID`, PATH, SHELL), and the working
/// directory is the caller's, or the home with `no_workdir`.
pub fn exec_here(name: &str, command: Command<'_>, no_workdir: bool) -> Result<Infallible> {
    if let Some(dir) = workdir() {
        enter_workdir(name, &dir)?;
    } else if no_workdir && let Some(home) = crate::sys::env::os("HOME") {
        let _ = rustix::process::chdir(Path::new(&home));
    }
    // As on a join: box's own variables (an exported launcher's BOX_DATA_HOME) stay out
    // but for the one the box itself sets in it, and PATH has the standard entries
    // (`env -i` leaves none).
    let mut env: Vec<Vec<u8>> = crate::sys::env::all()
        .filter(|(n, _)| {
            n != "PATH"
                && (!n.as_bytes().starts_with(b"BOX_") || n == crate::context::HOST_HOME_ENV)
        })
        .map(|(n, v)| [n.as_bytes(), b"=", v.as_bytes()].concat())
        .collect();
    let path = crate::sys::env::search_path();
    env.push(format!("PATH={}", crate::host::merge_path(path.as_bytes())).into_bytes());
    let shell = crate::sys::env::os("SHELL")
        .filter(|s| Path::new(s).is_absolute())
        .unwrap_or_else(|| "/bin/sh".into());
    run(name, Path::new(&shell), command, env)
}

/// Exec `command` with the environment `env` (`NAME=value`), searching its PATH;
/// returns only the error to report.
fn run(name: &str, shell: &Path, command: Command<'_>, env: Vec<Vec<u8>>) -> Result<Infallible> {
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .map(|p| p.to_vec())
        .unwrap_or_default();
    let env: Vec<CString> = env
        .into_iter()
        .filter_map(|e| CString::new(e).ok())
        .collect();

    // From here on only exec: the command gets SIGPIPE's default action, as on the host.
    crate::sys::default_sigpipe();
    match command {
        Command::LoginShell => {
            let base = shell.file_name().map(|b| b.as_bytes()).unwrap_or(b"sh");
            let mut argv0 = b"-".to_vec();
            argv0.extend_from_slice(base);
            let argv = [CString::new(argv0).context("shell name")?];
            let program = cstring(shell.as_os_str().as_bytes())?;
            let err = nix::unistd::execve(&program, &argv, &env).unwrap_err();
            Err(exec_error(name, shell.as_os_str(), err))
        }
        Command::Exec(args) => {
            let argv = args
                .iter()
                .map(|a| cstring(a.as_bytes()))
                .collect::<Result<Vec<_>>>()?;
            let Some(program) = args.first() else {
                bail!("no command given");
            };
            Err(exec_search(name, program, &argv, &env, &path))
        }
    }
}

fn cstring(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).context("an argument contains a NUL byte")
}

/// `execvp` with the box's PATH (glibc's would search the caller's). Returns the error
/// to report when nothing could be executed.
fn exec_search(
    name: &str,
    program: &OsStr,
    argv: &[CString],
    env: &[CString],
    path: &[u8],
) -> anyhow::Error {
    if program.as_bytes().contains(&b'/') {
        let Ok(c) = cstring(program.as_bytes()) else {
            return anyhow::anyhow!("the command contains a NUL byte");
        };
        return exec_error(
            name,
            program,
            nix::unistd::execve(&c, argv, env).unwrap_err(),
        );
    }
    if program.is_empty() {
        return exec_error(name, program, Errno::ENOENT);
    }
    let mut denied = None;
    for dir in path.split(|&b| b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let mut full = dir.to_vec();
        full.push(b'/');
        full.extend_from_slice(program.as_bytes());
        let Ok(c) = CString::new(full) else { continue };
        match nix::unistd::execve(&c, argv, env).unwrap_err() {
            // Not there, or a path component is not a directory: keep looking.
            Errno::ENOENT | Errno::ENOTDIR | Errno::ESTALE | Errno::ENODEV | Errno::ETIMEDOUT => {}
            // Found but not executable: remember, as execvp does, and keep looking.
            Errno::EACCES => denied = Some(OsString::from(crate::host::os(&c.into_bytes()))),
            other => return exec_error(name, crate::host::os(c.as_bytes()), other),
        }
    }
    match denied {
        Some(path) => exec_error(name, &path, Errno::EACCES),
        None => exec_error(name, program, Errno::ENOENT),
    }
}

fn exec_error(name: &str, program: &OsStr, err: Errno) -> anyhow::Error {
    let program = program.to_string_lossy();
    let (message, code, hint) = match err {
        Errno::ENOENT => (
            format!("command `{program}` not found in box `{name}`"),
            EXIT_NOT_FOUND,
            format!(
                "install it in the box (`box enter {name}`, then the package manager), or check the spelling"
            ),
        ),
        Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR => (
            format!(
                "`{program}` cannot be executed in box `{name}`: {}",
                err.desc()
            ),
            EXIT_NOT_EXECUTABLE,
            "check that it is an executable file for this architecture (`ls -l` it in the box)"
                .to_owned(),
        ),
        other => (
            format!(
                "executing `{program}` in box `{name}` failed: {}",
                other.desc()
            ),
            EXIT_NOT_EXECUTABLE,
            String::from("check the command"),
        ),
    };
    failure(message, hint).context(Exit(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_relative_workdir_is_a_clear_error() {
        // Neither changes this process's directory, which the tests share.
        let err = enter_workdir("dev", OsStr::new("relative/dir")).unwrap_err();
        assert_eq!(
            crate::error::message(&err),
            "BOX_WORKDIR=relative/dir is not an absolute directory"
        );
        let err = enter_workdir("dev", OsStr::new("/no/such/dir/for/box")).unwrap_err();
        let msg = crate::error::message(&err);
        assert!(
            msg.starts_with("cannot change to directory /no/such/dir/for/box in box `dev`: "),
            "{msg}"
        );
        let hint = &err.downcast_ref::<crate::error::Hint>().unwrap().0;
        assert!(hint.contains("Path="), "{hint}");
    }
}
