//! `sudo` in a box without subordinate ids: box's stand-in for the image's sudo, which
//! cannot work there (it is a setuid file owned by the user's own id, the only id the
//! box maps). It runs the command as box's fake root ([`super`]).
//!
//! How it is reached: the holder of such a box writes a small shell shim at
//! [`shim::SHIM_PATH`] (`/usr/local/bin/sudo`, ahead of `/usr/bin` in every usual PATH,
//! Debian's login PATH and sudo's own secure_path) that execs `box __fakeroot sudo ARGS`
//! with the host's box through `/run/host` ([`shim::shim`]). Not a bind over `/usr/bin/sudo`:
//! dpkg replaces that file by rename when sudo is upgraded, which a mount point refuses
//! (EBUSY). A script that calls `/usr/bin/sudo` by its full path gets the image's sudo,
//! which fails.
//!
//! What it understands: sudo's common options, parsed as sudo does (clustered short
//! options, `--opt=value`, `--`, `VAR=value` before the command): `-n`, `-E`,
//! `--preserve-env[=LIST]`, `-H`, `-i`, `-s`, `-u root|0|#0` (or the user's own name:
//! then no root at all), `-g root`, `-D DIR`, `-S`, `-k`/`-K`/`-v` (no password, nothing
//! to cache), `-l`, `-V`, `-h`, and ignores the prompt, askpass, close-from and timeout
//! options. `-u OTHER` fails clearly: the box has no other user. The environment is
//! reset as sudo's default policy does (env_reset, Debian's secure_path), keeping the
//! box's own `CONTAINER_ID`/`container`.
//!
//! Invariant: in a box that maps more than one id (subordinate ids: the image's sudo
//! works), the shim hands over to the image's sudo unchanged, so a stale shim is harmless.

pub mod args;
pub mod env;
pub mod shim;

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::error::{Exit, failure};
pub use args::{Action, Request, USAGE, parse};
pub use env::{Account, Exec, Invoker, SECURE_PATH, account_of, plan};
pub use shim::{Launch, SHIM_PATH, SHIM_START, elf_interpreter, shim};

/// Whom the command runs as.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Root,
    /// The user themself: no fake root.
    Me,
}

fn target(req: &Request, me: &str, uid: u32) -> Result<Target> {
    let is_root = |name: &str| matches!(name, "root" | "0" | "#0");
    let is_me = |name: &str| name == me || name == uid.to_string() || name == format!("#{uid}");
    let user = match req.user.as_deref() {
        None => Target::Root,
        Some(u) if is_root(u) => Target::Root,
        Some(u) if is_me(u) => Target::Me,
        Some(other) => {
            return Err(failure(
                format!("sudo: cannot run a command as `{other}` in this box: it maps only your own user id, so its only users are you and box's fake root"),
                "use `sudo CMD` (root) or no sudo (yourself); a box with subordinate ids (see `box create --help`) has every user of its image",
            )
            .context(Exit(1)));
        }
    };
    if let Some(group) = req.group.as_deref()
        && !is_root(group)
    {
        return Err(failure(
            format!("sudo: cannot run a command with group `{group}` in this box: it maps only your own group id"),
            "leave out -g, or use `-g root`",
        )
        .context(Exit(1)));
    }
    Ok(user)
}

/// What `sudo` answered without running a command (`-l`, `-V`, `-h`, `-v`): the text for
/// stdout, which the caller prints (`commands` owns stdout), empty for none.
pub struct Answer(pub String);

/// Entry point of `box __fakeroot sudo ARGS` (from the shim): runs the command in place,
/// or returns what to print for an option that runs none.
pub fn main(args: &[String]) -> Result<Answer> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    // A box with more than one id has a working sudo of its own.
    if !super::maps_one_id() && !rustix::process::geteuid().is_root() {
        return Err(hand_over(&args));
    }
    let req = parse(&args)?;
    match req.action {
        Action::Run => {}
        Action::Nothing => return Ok(Answer(String::new())),
        Action::List => {
            return Ok(Answer(
                "In this box (no subordinate ids) you may run any command as box's fake root, without a password:\n    (root) NOPASSWD: ALL\n".to_owned(),
            ));
        }
        Action::Version => {
            return Ok(Answer(format!(
                "box {} stand-in for sudo (fake root in a box without subordinate ids)\n",
                env!("CARGO_PKG_VERSION")
            )));
        }
        Action::Help => {
            return Ok(Answer(format!(
                "{USAGE}\n\nbox's stand-in for sudo in a box that maps only your own user id: the command runs as\nroot in a user namespace nested in the box's, where ownership and identity changes are\naccepted and not kept. Every file it writes is yours.\n"
            )));
        }
    }
    let me = crate::sys::env::text("USER").unwrap_or_default();
    let uid = rustix::process::getuid().as_raw();
    let target = target(&req, &me, uid)?;
    if target == Target::Root && !rustix::process::geteuid().is_root() {
        super::become_fake_root()?;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let account = match target {
        Target::Root => account_of(&passwd, 0).unwrap_or_else(|| Account {
            name: "root".into(),
            home: "/root".into(),
            shell: "/bin/sh".into(),
        }),
        Target::Me => account_of(&passwd, uid).unwrap_or_else(|| Account {
            name: me.clone(),
            home: crate::sys::env::text("HOME").unwrap_or_else(|| "/".into()),
            shell: "/bin/sh".into(),
        }),
    };
    let invoker = Invoker {
        name: me,
        uid,
        gid: rustix::process::getgid().as_raw(),
        shell: crate::sys::env::text("SHELL"),
    };
    let plan = plan(&req, &account, &invoker, crate::sys::env::all().collect());
    match exec(plan)? {}
}

/// Exec the image's own sudo with the same arguments (a box with subordinate ids).
fn hand_over(args: &[OsString]) -> anyhow::Error {
    for candidate in ["/usr/bin/sudo", "/bin/sudo", "/usr/sbin/sudo"] {
        if Path::new(candidate).exists() {
            let mut argv = vec![c"sudo".to_owned()];
            argv.extend(args.iter().filter_map(|a| CString::new(a.as_bytes()).ok()));
            let env: Vec<CString> = crate::sys::env::all()
                .filter_map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()).ok())
                .collect();
            let path = CString::new(candidate).expect("no NUL");
            let err = nix::unistd::execve(&path, &argv, &env).unwrap_err();
            return failure(
                format!("sudo: executing {candidate} failed: {}", err.desc()),
                "check the box's sudo package",
            )
            .context(Exit(1));
        }
    }
    failure(
        "sudo: this box has no sudo of its own",
        "install it in the box (`box run NAME --user root -- apt-get install sudo`, or your distribution's equivalent)",
    )
    .context(Exit(1))
}

/// Carry out `plan`: change directory, find the program in the new PATH, exec it.
fn exec(plan: Exec) -> Result<std::convert::Infallible> {
    if let Some(dir) = &plan.cwd {
        // sudo -i goes home; a home the box lacks is not worth failing the command for,
        // but -D is an explicit request.
        if let Err(err) = rustix::process::chdir(dir.as_str()) {
            if plan
                .argv
                .first()
                .is_some_and(|a| a.as_bytes().starts_with(b"-"))
            {
                let _ = rustix::process::chdir("/");
            } else {
                return Err(failure(
                    format!("sudo: unable to change directory to {dir}: {err}"),
                    "check the directory given with -D",
                )
                .context(Exit(1)));
            }
        }
    }
    let cstr = |b: &[u8]| CString::new(b).context("sudo: an argument contains a NUL byte");
    let argv = plan
        .argv
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    let env = plan
        .env
        .iter()
        .map(|(k, v)| cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Result<Vec<_>>>()?;
    crate::sys::default_sigpipe();
    let program = plan.program.as_bytes();
    let candidates: Vec<PathBuf> = if program.contains(&b'/') {
        vec![PathBuf::from(&plan.program)]
    } else {
        SECURE_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(&plan.program))
            .collect()
    };
    let mut denied = None;
    for candidate in candidates {
        let path = cstr(candidate.as_os_str().as_bytes())?;
        match nix::unistd::execve(&path, &argv, &env).unwrap_err() {
            nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => {}
            nix::errno::Errno::EACCES => denied = Some(candidate),
            other => {
                return Err(failure(
                    format!("sudo: {}: {}", candidate.display(), other.desc()),
                    "check that it is an executable for this box",
                )
                .context(Exit(1)));
            }
        }
    }
    let name = plan.program.to_string_lossy();
    Err(match denied {
        Some(path) => failure(
            format!("sudo: {}: Permission denied", path.display()),
            "check the file's mode (`ls -l` it)",
        )
        .context(Exit(1)),
        None => failure(
            format!("sudo: {name}: command not found"),
            format!("sudo looks in {SECURE_PATH}; install it or give its full path"),
        )
        .context(Exit(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(list: &[&str]) -> Request {
        let args: Vec<OsString> = list.iter().map(OsString::from).collect();
        parse(&args).unwrap_or_else(|e| panic!("{list:?}: {e:#}"))
    }

    #[test]
    fn only_root_or_the_user_themself_can_be_the_target() {
        let with_user = |u: &str| Request {
            user: Some(u.into()),
            ..parsed(&["true"])
        };
        assert_eq!(
            target(&parsed(&["true"]), "alice", 1000).unwrap(),
            Target::Root
        );
        for root in ["root", "0", "#0"] {
            assert_eq!(
                target(&with_user(root), "alice", 1000).unwrap(),
                Target::Root
            );
        }
        for me in ["alice", "1000", "#1000"] {
            assert_eq!(target(&with_user(me), "alice", 1000).unwrap(), Target::Me);
        }
        let err = target(&with_user("www-data"), "alice", 1000).unwrap_err();
        assert!(crate::error::message(&err).contains("www-data"));
        assert_eq!(crate::error::exit_code(&err), 1);
    }
}
