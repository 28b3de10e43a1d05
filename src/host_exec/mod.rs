//! `box host-exec`: run a command on the host from inside a box, with the caller's own
//! terminal, descriptors, environment, working directory, signals and exit status.
//!
//! # Design, and why
//!
//! A box's processes live in the box's user and mount namespaces; nothing a process does
//! there can leave them (that is the point of the namespaces). So a process that already
//! runs on the host must start the command: the **host end** ([`server`]), one small
//! process per running box (`box __host-exec-server NAME`), started by the process that
//! starts the box's holder (`runtime::ensure_running`, and the adoption of an orphaned
//! box), detached (own session, stdio on /dev/null, none of the caller's descriptors), in
//! the host's namespaces as the user. It holds a pidfd of the box's holder in its poll
//! loop and ends (unlinking its socket) as soon as the holder ends, so it lives and dies
//! with the box: no daemon outlives its box, no D-Bus service, nothing installed on the
//! host. The starter does not wait for it (the first start of a box pays a fork, not a
//! second start of box); a client that comes before its socket is bound waits for it a
//! little, and one that comes after it failed reads why from a file it left in its
//! directory (`failure`).
//!
//! **The rendezvous** is a Unix socket, `socket`, in a directory of the user's private
//! runtime directory (`$XDG_RUNTIME_DIR/box/NAME/host-exec/`, mode 0700, see
//! [`host_dir`]). The holder bind-mounts that *directory* at [`DIR_IN_BOX`] in the box
//! (a mount of the plan), so the client finds the socket at one fixed path: no variable
//! to inherit (sudo and `env -i` strip the environment), and the mount exists before the
//! host end has bound the socket, so the two start independently.
//!
//! **Who may use it.** The directory is the user's and mode 0700: other host users cannot
//! reach the socket at all. Behind that, the host end checks `SO_PEERCRED` of every
//! connection and serves only the box's own user's host uid (root in a box with
//! subordinate ids is another host uid: refused too, with a message that says so; the
//! fake root of a box without them is the user). The refusal is a message sent back, so
//! a stranger who reaches the socket reads why. The client checks the other way round
//! that the socket's end is a process of its own uid (`SO_PEERCRED`; the owner of the
//! socket file proves nothing, its maker chooses it), so it never hands its environment
//! or terminal to a socket someone else put there. Both ends check the runtime
//! directories on the way to the socket are the user's and writable by nobody else
//! (`Context::check_runtime_dir`, `server::check_private`). Nothing here gives anyone more than the user has:
//! the command runs on the host as that same user, who can already run anything there.
//!
//! **Descriptors, not relays.** The client ([`client`]) sends its stdin, stdout and
//! stderr and its working directory (`O_PATH`) with `SCM_RIGHTS`; the command gets the
//! very same open files: a pipe stays the pipe (no copying, EOF and SIGPIPE as usual), a
//! terminal stays the terminal. box binds the host's `/dev` into every box, so a pty the
//! caller has is a host pty the command can use. The command runs in a process group of
//! its own with no controlling terminal (the terminal is the caller's session's; only
//! root could take it over): `vim`, `less` and line editing work on the descriptors, and
//! the terminal's signals, which reach the caller's process group, are forwarded by the
//! client (SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP then SIGCONT for job
//! control). What needs a controlling terminal (`/dev/tty`, e.g. `sudo`'s password
//! prompt) does not get one.
//!
//! **Status.** The host end waits for the command and sends its exit status or its
//! signal; the client exits with that status, or ends by the same signal as a shell
//! reports it (signals that would dump core become 128+N instead, so box leaves no
//! core file). When the client goes away first (killed, the box stopped), the host end
//! sends the command's group SIGHUP, as a terminal hangup does.
//!
//! **The environment** is the caller's, minus what is the box's own: the variables the
//! box forces (`CONTAINER_ID`, `container`, `HOME` and `BOX_HOST_HOME` of a box with its
//! own home, `XAUTHLOCALHOSTNAME`), the image's `Env` values the caller still has
//! unchanged, and the names box keeps out of boxes ([`crate::host::ENV_DENY`]), whose
//! values come back from the host session that started the box. `HOME`, `SHELL` (the
//! host login shell) and `PATH` are the host's: the box's PATH names the box's
//! directories, and the host's PATH is the one the user had when the box started (the
//! standard entries when that session had none). `PWD` is the host directory.
//!
//! **The working directory** is the host's path of the caller's directory: the box's
//! directory mounts (home, `/tmp`, the runtime directory, volumes, the host root at
//! `/run/host`) map box paths to host paths, longest first, and the host directory must
//! be the very same directory (device and inode) as the one the client sent. A directory
//! only the box has (`/usr/share` of its image) is refused with an error naming it: a
//! command must not silently run elsewhere than asked.
//!
//! **Symlink mode**: `main.rs` runs `box host-exec NAME ARGS...` when box is invoked as
//! NAME (a link to `/usr/local/bin/box` in a box, as distrobox-host-exec's links), which
//! costs the normal path one comparison of argv[0].
//!
//! The protocol is [`crate::sys::protocol`]'s JSON lines over the connection: one
//! [`Request`] (its first byte carries the descriptors), then [`ClientMessage`]s (signals)
//! from the client, and one [`Reply`] from the host end.

pub mod client;
pub mod server;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sys::protocol::Failure;

/// Where the host end's directory is mounted in every box.
pub const DIR_IN_BOX: &str = "/run/host-exec";
/// The socket's name in that directory.
pub const SOCKET_NAME: &str = "socket";

/// The host end's directory of box `name` under the runtime directory `runtime` (the
/// box's runtime state directory, `$XDG_RUNTIME_DIR/box/NAME`).
pub fn host_dir(box_runtime_dir: &Path) -> PathBuf {
    box_runtime_dir.join("host-exec")
}

/// The socket's path in the box.
pub fn socket_in_box() -> PathBuf {
    Path::new(DIR_IN_BOX).join(SOCKET_NAME)
}

/// Bytes that travel as a JSON string when they are UTF-8 (nearly always), else as an
/// array of numbers: arguments, variables and paths are bytes, never required to be
/// UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bytes {
    Text(String),
    Raw(Vec<u8>),
}

impl Bytes {
    pub fn from_vec(bytes: Vec<u8>) -> Bytes {
        match String::from_utf8(bytes) {
            Ok(text) => Bytes::Text(text),
            Err(err) => Bytes::Raw(err.into_bytes()),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Bytes::Text(text) => text.as_bytes(),
            Bytes::Raw(raw) => raw,
        }
    }

    pub fn into_os(self) -> OsString {
        match self {
            Bytes::Text(text) => text.into(),
            Bytes::Raw(raw) => OsString::from_vec(raw),
        }
    }
}

/// Client → host end: what to run. Sent with the descriptors stdin, stdout, stderr and
/// the working directory (`O_PATH`), in that order.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The command and its arguments; `None`: the user's login shell.
    pub command: Option<Vec<Bytes>>,
    /// The caller's environment, `NAME=value`.
    pub env: Vec<Bytes>,
    /// The caller's working directory, as the box sees it.
    pub cwd: Bytes,
}

/// Client → host end, after the request.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientMessage {
    /// Send this signal to the command's process group.
    Signal(i32),
}

/// Host end → client: how it ended (the one reply of a connection).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The command exited with this status.
    Exited(i32),
    /// The command was killed by this signal.
    Killed(i32),
    /// Nothing was run: why, and the exit status to end with.
    Failed { failure: Failure, code: u8 },
}

/// The signals the client forwards, and the only ones the host end sends on request.
pub const FORWARDED_SIGNALS: &[nix::sys::signal::Signal] = {
    use nix::sys::signal::Signal::*;
    &[SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT]
};

/// The host path of the box path `dir`, through the box's directory mounts `shared`
/// ((path in the box, path on the host); the deepest mount containing `dir` wins, as it
/// hides those below it). `None` when no mount contains it.
pub fn host_path(dir: &Path, shared: &[(PathBuf, PathBuf)]) -> Option<PathBuf> {
    shared
        .iter()
        .filter(|(in_box, _)| dir.starts_with(in_box))
        .max_by_key(|(in_box, _)| in_box.components().count())
        .map(|(in_box, on_host)| {
            let rest = dir.strip_prefix(in_box).unwrap_or(Path::new(""));
            if rest.as_os_str().is_empty() {
                on_host.clone()
            } else {
                on_host.join(rest)
            }
        })
}

/// Where `program` is found in the `PATH` value `path` as `execvp` would find it (a name
/// with a slash is taken as it is, relative to `cwd`): the first executable regular
/// file; `None` when there is none.
pub fn find_in_path(program: &OsStr, path: &OsStr, cwd: &Path) -> Option<PathBuf> {
    let executable = |candidate: &Path| {
        candidate.is_file() && rustix::fs::access(candidate, rustix::fs::Access::EXEC_OK).is_ok()
    };
    if program.as_bytes().contains(&b'/') {
        return Some(cwd.join(program));
    }
    if program.is_empty() {
        return None;
    }
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| {
            cwd.join(if dir.is_empty() {
                OsStr::new(".")
            } else {
                OsStr::from_bytes(dir)
            })
        })
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
}

/// What the host end knows of the box for composing a command's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxEnv {
    /// Names of the variables the box forces (`CONTAINER_ID`, ...).
    pub forced: Vec<String>,
    /// The image's `Env` (`NAME=value`).
    pub defaults: Vec<String>,
}

/// Names of [`crate::host::ENV_DENY`] that describe the calling shell rather than the
/// session: not taken back from the host session.
const SHELL_STATE: &[&str] = &["PWD", "OLDPWD", "SHLVL", "_", "CONTAINER_ID", "container"];

/// The environment of a host command (see the module doc): `caller`'s variables minus
/// the box's own, with the host session's (`host`) values of the names box keeps out of
/// boxes, and `HOME`, `SHELL`, `PATH`, `PWD` set for the host. `NAME=value`, sorted.
pub fn host_env(
    caller: &[Bytes],
    boxed: &BoxEnv,
    host: &[(OsString, OsString)],
    home: &Path,
    shell: &Path,
    pwd: &Path,
) -> Vec<(OsString, OsString)> {
    let deny = |name: &[u8]| crate::host::ENV_DENY.iter().any(|d| d.as_bytes() == name);
    let mut vars: Vec<(OsString, OsString)> = caller
        .iter()
        .filter_map(|entry| {
            let bytes = entry.as_bytes();
            let at = bytes.iter().position(|&b| b == b'=')?;
            let name = &bytes[..at];
            let box_own = deny(name)
                || boxed.forced.iter().any(|f| f.as_bytes() == name)
                || boxed.defaults.iter().any(|d| d.as_bytes() == bytes);
            (!box_own && !name.is_empty()).then(|| {
                (
                    OsString::from_vec(name.to_vec()),
                    OsString::from_vec(bytes[at + 1..].to_vec()),
                )
            })
        })
        .collect();
    let mut set = |name: &str, value: OsString| match vars.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => vars.push((name.into(), value)),
    };
    for (name, value) in host {
        let name_bytes = name.as_bytes();
        if deny(name_bytes) && !SHELL_STATE.iter().any(|s| s.as_bytes() == name_bytes) {
            set(&name.to_string_lossy(), value.clone());
        }
    }
    let path = host
        .iter()
        .find(|(n, _)| n == "PATH")
        .map(|(_, v)| v.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| crate::host::STANDARD_PATH.join(":").into());
    set("PATH", path);
    set("HOME", home.into());
    set("SHELL", shell.into());
    set("PWD", pwd.into());
    // The join points XAUTHORITY at the host's file through /run/host when needed.
    if let Some((_, value)) = vars.iter_mut().find(|(n, _)| n == "XAUTHORITY")
        && let Ok(rest) =
            Path::new(value.as_os_str()).strip_prefix(crate::host::fs::HOST_ROOT_IN_BOX)
    {
        *value = Path::new("/").join(rest).into_os_string();
    }
    vars.sort();
    vars
}

/// The status a client ends with when the command was killed by `signal` and box does
/// not end by the signal itself (see [`client`]): the shell's 128+N.
pub fn signal_status(signal: i32) -> i32 {
    128 + signal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Bytes {
        Bytes::Text(s.into())
    }

    #[test]
    fn bytes_travel_as_text_when_they_can_and_as_numbers_otherwise() {
        for bytes in [b"plain".to_vec(), b"caf\xe9".to_vec(), Vec::new()] {
            let wrapped = Bytes::from_vec(bytes.clone());
            let json = serde_json::to_string(&wrapped).unwrap();
            let back: Bytes = serde_json::from_str(&json).unwrap();
            assert_eq!(back.as_bytes(), bytes.as_slice(), "{json}");
        }
        assert_eq!(
            serde_json::to_string(&text("a b")).unwrap(),
            "\"a b\"",
            "UTF-8 stays readable"
        );
    }

    #[test]
    fn box_paths_map_through_the_deepest_shared_mount() {
        let shared = vec![
            (PathBuf::from("/home/u"), PathBuf::from("/home/u")),
            (PathBuf::from("/tmp"), PathBuf::from("/tmp")),
            (PathBuf::from("/run/host"), PathBuf::from("/")),
            (PathBuf::from("/data"), PathBuf::from("/srv/data")),
            (PathBuf::from("/home/u/mnt"), PathBuf::from("/media/disk")),
        ];
        let map = |p: &str| host_path(Path::new(p), &shared);
        assert_eq!(map("/home/u/src"), Some("/home/u/src".into()));
        assert_eq!(map("/tmp"), Some("/tmp".into()));
        assert_eq!(map("/run/host/etc"), Some("/etc".into()));
        assert_eq!(map("/run/host"), Some("/".into()));
        assert_eq!(map("/data/x/y"), Some("/srv/data/x/y".into()));
        assert_eq!(map("/home/u/mnt/a"), Some("/media/disk/a".into()));
        assert_eq!(map("/usr/share"), None);
        assert_eq!(map("/home/user2"), None, "a prefix of a name is no parent");
    }
    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (name, mode) in [("tool", 0o755), ("plain", 0o644)] {
            std::fs::write(bin.join(name), "").unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        let path = OsString::from(format!("/nonexistent:{}:/usr/bin", bin.display()));
        let find = |p: &str| find_in_path(OsStr::new(p), &path, dir.path());
        assert_eq!(find("tool"), Some(bin.join("tool")));
        assert_eq!(find("plain"), None, "not executable");
        assert_eq!(find("no-such-tool-anywhere"), None);
        assert_eq!(find("bin/tool"), Some(dir.path().join("bin/tool")));
        assert_eq!(find(""), None);
    }

    #[test]
    fn the_environment_loses_the_box_and_gets_the_hosts_back() {
        let caller = [
            "CONTAINER_ID=dev",
            "container=box",
            "HOME=/home/u/boxes/dev",
            "BOX_HOST_HOME=/home/u",
            "HOSTNAME=dev",
            "JAVA_HOME=/usr/lib/jvm",
            "LANG=fr_FR.UTF-8",
            "PATH=/usr/local/bin:/usr/bin",
            "TERM=xterm-256color",
            "EDITOR=vim",
            "XAUTHORITY=/run/host/var/run/gdm/Xauthority",
            "PWD=/usr/share",
            "noequals",
        ]
        .map(text);
        let boxed = BoxEnv {
            forced: ["CONTAINER_ID", "container", "HOME", "BOX_HOST_HOME"]
                .map(String::from)
                .to_vec(),
            defaults: vec!["JAVA_HOME=/usr/lib/jvm".into(), "LANG=C.UTF-8".into()],
        };
        let host: Vec<(OsString, OsString)> = [
            ("PATH", "/home/u/bin:/usr/bin"),
            ("HOSTNAME", "laptop"),
            ("PWD", "/somewhere"),
            ("EDITOR", "nano"),
        ]
        .iter()
        .map(|(n, v)| (n.into(), v.into()))
        .collect();
        let env = host_env(
            &caller,
            &boxed,
            &host,
            Path::new("/home/u"),
            Path::new("/bin/zsh"),
            Path::new("/home/u/src"),
        );
        let env: Vec<String> = env
            .iter()
            .map(|(n, v)| format!("{}={}", n.to_string_lossy(), v.to_string_lossy()))
            .collect();
        assert_eq!(
            env,
            [
                "EDITOR=vim",
                "HOME=/home/u",
                "HOSTNAME=laptop",
                "LANG=fr_FR.UTF-8",
                "PATH=/home/u/bin:/usr/bin",
                "PWD=/home/u/src",
                "SHELL=/bin/zsh",
                "TERM=xterm-256color",
                "XAUTHORITY=/var/run/gdm/Xauthority",
            ]
        );
    }
}
