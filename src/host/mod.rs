//! What box takes from the host for a box: sockets, files that must follow the host's, the
//! hostname, and the environment a command in a box starts with.
//!
//! # The environment
//!
//! A command in a box gets the caller's environment, minus the names in [`ENV_DENY`], plus
//! a few additions computed when the box starts (see [`compose_env`]):
//!
//! - variables from the image config (`Env`) for names the caller does not set;
//! - `PATH`: the caller's, followed by the standard entries
//!   `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` it lacks;
//! - `CONTAINER_ID=NAME` and `container=box` (what toolbox and distrobox scripts look for);
//! - `HOME` when the box has its own home (`--home`), with `BOX_HOST_HOME` = the host's
//!   (box in the box keeps its data and exports there); `SHELL` = the login shell in the
//!   box;
//! - `XAUTHORITY` = the box's own wildcard copy of the host's X authority file when the
//!   box has another hostname or home (see [`crate::host::xauth`]; a join whose
//!   `XAUTHORITY` is another gets a copy of its own); and `XAUTHLOCALHOSTNAME` =
//!   the host's name when the box has another hostname: openSUSE's libXau reads it, which
//!   helps a session that joins with an authority file of its own (not the box's copy).
//!
//! The deny-list ([`ENV_DENY`]) drops what describes the caller's shell, terminal seat or
//! session rather than the user (the set distrobox drops, plus box's own):
//! - `HOSTNAME`, `HOST`: the box may have its own hostname;
//! - `PWD`, `OLDPWD`, `SHLVL`, `_`: state of the calling shell;
//! - `XDG_SEAT`, `XDG_VTNR`, `XDG_SESSION_ID`, `XDG_SESSION_CLASS`: logind session of the
//!   host (`XDG_SESSION_TYPE` and `XDG_CURRENT_DESKTOP` are kept: toolkits need them);
//! - `CONTAINER_ID`, `container`: replaced by the box's own;
//! - `TERMINFO_DIRS`, `PROMPT_COMMAND`, `PS1`: host shell and terminal set-up naming
//!   host paths and programs;
//! - `LD_PRELOAD`, `LD_LIBRARY_PATH`: host libraries would break the box's programs;
//! - every `BOX_*`: box's own settings.
//!
//! Invariant: nothing here is on `box run`'s hot path except [`compose_env`], which only
//! works on memory.

pub mod cdi;
pub mod fs;
pub mod xauth;

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Variables never passed from the host into a box (see the module doc for why).
pub const ENV_DENY: &[&str] = &[
    "HOSTNAME",
    "HOST",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
    "XDG_SEAT",
    "XDG_VTNR",
    "XDG_SESSION_ID",
    "XDG_SESSION_CLASS",
    "CONTAINER_ID",
    "container",
    "TERMINFO_DIRS",
    "PROMPT_COMMAND",
    "PS1",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
];

/// The standard PATH entries every box gets, in order.
pub const STANDARD_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Whether the host variable `name` is kept out of boxes.
pub fn env_denied(name: &[u8]) -> bool {
    name.starts_with(b"BOX_") || ENV_DENY.iter().any(|d| d.as_bytes() == name)
}

/// The environment of a command in a box: the caller's `host` variables minus the
/// deny-list; `forced` (always set, e.g. `CONTAINER_ID`); `defaults` (the image's `Env`,
/// only for names the caller lacks); PATH merged with [`STANDARD_PATH`]. Returns
/// `NAME=value` byte strings, sorted by name for a stable result.
pub fn compose_env<I>(host: I, forced: &[(String, String)], defaults: &[String]) -> Vec<Vec<u8>>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = host
        .into_iter()
        .filter(|(name, _)| !env_denied(name.as_bytes()))
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let set = |vars: &mut Vec<(Vec<u8>, Vec<u8>)>, name: &[u8], value: &[u8]| match vars
        .iter_mut()
        .find(|(n, _)| n == name)
    {
        Some(slot) => slot.1 = value.to_vec(),
        None => vars.push((name.to_vec(), value.to_vec())),
    };
    for entry in defaults {
        let Some((name, value)) = entry.split_once('=') else {
            continue;
        };
        // The image's PATH is merged below instead of replacing the user's.
        if name == "PATH" || vars.iter().any(|(n, _)| n == name.as_bytes()) {
            continue;
        }
        set(&mut vars, name.as_bytes(), value.as_bytes());
    }
    for (name, value) in forced {
        set(&mut vars, name.as_bytes(), value.as_bytes());
    }
    let path = vars
        .iter()
        .find(|(n, _)| n == b"PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    set(&mut vars, b"PATH", merge_path(&path).as_bytes());
    vars.sort();
    vars.into_iter()
        .map(|(mut n, v)| {
            n.push(b'=');
            n.extend_from_slice(&v);
            n
        })
        .collect()
}

/// `path` (a PATH value) followed by the [`STANDARD_PATH`] entries it lacks.
pub fn merge_path(path: &[u8]) -> String {
    let path = String::from_utf8_lossy(path);
    let mut entries: Vec<&str> = path.split(':').filter(|e| !e.is_empty()).collect();
    let present: HashSet<String> = entries.iter().map(|e| e.to_string()).collect();
    for std_entry in STANDARD_PATH {
        if !present.contains(*std_entry) {
            entries.push(std_entry);
        }
    }
    entries.join(":")
}

/// The host's name (`uname -n`).
pub fn hostname() -> String {
    String::from_utf8_lossy(rustix::system::uname().nodename().to_bytes()).into_owned()
}

/// Facts about the host a box's mount plan depends on. Gathered when a box starts.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    /// `$XDG_RUNTIME_DIR` when it is an existing directory, else the user's
    /// `/run/user/UID` when logind made one: a box first started from cron or a
    /// systemd unit still gets the desktop's sockets for the sessions that join it.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// The system D-Bus socket, when the host has one.
    pub system_bus: Option<PathBuf>,
    /// The X authority file: `$XAUTHORITY` when it is an existing file, else
    /// `$HOME/.Xauthority` when it exists (where X clients look without the variable).
    pub xauthority: Option<PathBuf>,
    /// Where `/etc/localtime` really is (e.g. `/usr/share/zoneinfo/Europe/Paris`).
    pub localtime: Option<PathBuf>,
    /// The zone name (`Europe/Paris`), from the localtime link or `/etc/timezone`.
    pub timezone: Option<String>,
    /// Real paths of `/etc/resolv.conf` and `/etc/hosts` (they are often symlinks).
    pub resolv_conf: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    /// The box binary, bound read-only at /usr/local/bin/box (see [`box_binary`]).
    pub box_binary: Option<PathBuf>,
}

fn env_dir(name: &str) -> Option<PathBuf> {
    crate::sys::env::absolute_path(name).filter(|p| p.is_dir())
}

/// `/run/user/UID`, when it is a directory of user `uid`'s (logind's runtime directory).
pub fn logind_runtime_dir(uid: u32) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dir = PathBuf::from(format!("/run/user/{uid}"));
    let meta = std::fs::metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid).then_some(dir)
}

/// Look at the host (a few stats and readlinks).
pub fn discover() -> HostFacts {
    let localtime = std::fs::canonicalize("/etc/localtime").ok();
    let timezone = localtime.as_deref().and_then(zone_name).or_else(|| {
        std::fs::read_to_string("/etc/timezone")
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    });
    HostFacts {
        hostname: hostname(),
        xdg_runtime_dir: env_dir("XDG_RUNTIME_DIR")
            .or_else(|| logind_runtime_dir(rustix::process::getuid().as_raw())),
        system_bus: Some(PathBuf::from("/run/dbus/system_bus_socket")).filter(|p| p.exists()),
        xauthority: xauthority(),
        localtime,
        timezone,
        resolv_conf: std::fs::canonicalize("/etc/resolv.conf").ok(),
        hosts: std::fs::canonicalize("/etc/hosts").ok(),
        box_binary: box_binary(),
    }
}

/// See [`HostFacts::xauthority`].
fn xauthority() -> Option<PathBuf> {
    let path = match crate::sys::env::non_empty("XAUTHORITY") {
        Some(file) => PathBuf::from(file),
        None => PathBuf::from(crate::sys::env::os("HOME")?).join(".Xauthority"),
    };
    (path.is_absolute() && path.is_file()).then_some(path)
}

/// The box executable to bind at `/usr/local/bin/box` in a box: the file box runs from.
///
/// When that file was replaced since box started (an upgrade while it ran),
/// `current_exe()` names `PATH (deleted)`, which does not exist: the file now at PATH is
/// the box the host runs, so that is the one to bind. When nothing is left there, the
/// box starts without `box` inside, and this says so. (`/proc/self/exe` itself cannot be
/// the source: the holder mounts in a mount namespace of its own, and the kernel binds
/// only from mounts of the caller's namespace, EINVAL otherwise; the link names the
/// file on the host's.)
pub fn box_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    if exe.is_file() {
        return Some(exe);
    }
    let replaced = exe
        .as_os_str()
        .as_bytes()
        .strip_suffix(b" (deleted)")
        .map(|path| PathBuf::from(os(path)))
        .filter(|path| path.is_file());
    if replaced.is_none() {
        crate::ui::report::warn(format!(
            "the box executable {} is gone, so `box` will not be available in boxes started now; reinstall box, then `box stop` and start them again to have it back",
            exe.display()
        ));
    }
    replaced
}

/// `Europe/Paris` from `/usr/share/zoneinfo/Europe/Paris` (any `zoneinfo` directory).
pub fn zone_name(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let (_, zone) = text.split_once("/zoneinfo/")?;
    // posix/ and right/ are variants of the same zones.
    let zone = zone
        .strip_prefix("posix/")
        .or_else(|| zone.strip_prefix("right/"))
        .unwrap_or(zone);
    Some(zone.to_owned()).filter(|z| !z.is_empty())
}

/// The variable that names another os-release file than the host's (tests; a host whose
/// own says too little).
pub const OS_RELEASE_ENV: &str = "BOX_OS_RELEASE";

/// The host's os-release text (os-release(5)): the file [`OS_RELEASE_ENV`] names, else
/// `/etc/os-release`, else `/usr/lib/os-release`; inside a box, the host's through
/// `/run/host`. `None` when there is none.
pub fn os_release() -> Option<String> {
    if let Some(path) = crate::sys::env::non_empty(OS_RELEASE_ENV) {
        return std::fs::read_to_string(path).ok();
    }
    let root = if containerenv_box().is_some() {
        "/run/host"
    } else {
        ""
    };
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|path| std::fs::read_to_string(format!("{root}{path}")).ok())
}

/// The name of the box this process runs in, if any.
///
/// Every command in a box has `CONTAINER_ID` (see the module doc), and the host usually
/// has none, so on the host this is one `getenv` and no file read: it sits on
/// `box run`'s hot path. Only when the variable is set is the answer confirmed with
/// [`containerenv_box`] (a distrobox or toolbox container sets it too).
pub fn inside_box() -> Option<String> {
    crate::sys::env::os("CONTAINER_ID")?;
    containerenv_box()
}

/// The name of the box whose `/run/.containerenv` (podman's format) this process sees,
/// when its `engine` is box. Other engines' files, and `/.dockerenv`, do not count: box
/// itself may run inside a docker container. Unlike [`inside_box`], this reads the file
/// even without `CONTAINER_ID`: for error paths, where a file read costs nothing.
pub fn containerenv_box() -> Option<String> {
    containerenv_box_at(Path::new(CONTAINERENV))
}

/// Where podman's format puts the file a container's processes read (`/run/.containerenv`).
const CONTAINERENV: &str = "/run/.containerenv";

/// [`containerenv_box`] of the file at `path`: `None` when it is missing or not box's.
fn containerenv_box_at(path: &Path) -> Option<String> {
    parse_containerenv(&std::fs::read_to_string(path).ok()?)
}

/// The box name from a `.containerenv` text, when `engine` is box.
pub fn parse_containerenv(text: &str) -> Option<String> {
    (containerenv_value(text, "engine")? == "box")
        .then(|| containerenv_value(text, "name"))
        .flatten()
        .filter(|name| !name.is_empty())
}

/// The value of `key` in a `.containerenv` text (`key="value"` lines).
pub fn containerenv_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Whether `path` is `dir` or below it.
pub fn is_under(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir)
}

/// An `OsStr` view of bytes (for building paths from environment values).
pub fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_containerenv_of_box_names_a_box() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("run/.containerenv");
        std::fs::create_dir(root.path().join("run")).unwrap();
        // Docker's marker alone, as on a host that runs in a docker container.
        std::fs::write(root.path().join(".dockerenv"), "").unwrap();
        assert_eq!(containerenv_box_at(&file), None);
        std::fs::write(&file, "engine=\"podman-4.3\"\nname=\"dev\"\n").unwrap();
        assert_eq!(containerenv_box_at(&file), None);
        std::fs::write(&file, "engine=\"box\"\nname=\"dev\"\n").unwrap();
        assert_eq!(containerenv_box_at(&file).as_deref(), Some("dev"));
        // And this machine (these tests run on hosts with /.dockerenv, and in boxes): the
        // answer is its own file's, none without one.
        let expected = std::fs::read_to_string(CONTAINERENV)
            .ok()
            .and_then(|text| parse_containerenv(&text));
        assert_eq!(containerenv_box(), expected);
    }

    fn host(vars: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        vars.iter()
            .map(|(n, v)| (OsString::from(n), OsString::from(v)))
            .collect()
    }

    fn as_text(env: Vec<Vec<u8>>) -> Vec<String> {
        env.into_iter()
            .map(|e| String::from_utf8(e).unwrap())
            .collect()
    }

    #[test]
    fn env_drops_the_deny_list_and_keeps_the_rest() {
        let env = as_text(compose_env(
            host(&[
                ("HOME", "/home/u"),
                ("HOSTNAME", "h"),
                ("SHLVL", "2"),
                ("BOX_DEBUG", "1"),
                ("DISPLAY", ":0"),
                ("PATH", "/home/u/bin:/usr/bin"),
            ]),
            &[("CONTAINER_ID".into(), "dev".into())],
            &[
                "LANG=C.UTF-8".into(),
                "DISPLAY=:9".into(),
                "PATH=/opt/x".into(),
            ],
        ));
        assert_eq!(
            env,
            vec![
                "CONTAINER_ID=dev",
                "DISPLAY=:0",
                "HOME=/home/u",
                "LANG=C.UTF-8",
                "PATH=/home/u/bin:/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin",
            ]
        );
    }

    #[test]
    fn forced_values_win_over_the_host() {
        let env = as_text(compose_env(
            host(&[("HOME", "/home/u")]),
            &[("HOME".into(), "/srv/h".into())],
            &[],
        ));
        assert!(env.contains(&"HOME=/srv/h".to_string()), "{env:?}");
        assert!(env.iter().any(|e| e.starts_with("PATH=/usr/local/sbin")));
    }

    #[test]
    fn only_boxs_own_containerenv_means_inside_a_box() {
        let ours = crate::runtime::plan::containerenv("dev", "debian:12", "0123abcd");
        assert_eq!(
            containerenv_value(&ours, "instance").as_deref(),
            Some("0123abcd")
        );
        assert_eq!(parse_containerenv(&ours).as_deref(), Some("dev"));
        assert_eq!(
            parse_containerenv("engine=\"podman-5.0\"\nname=\"x\"\n"),
            None
        );
        assert_eq!(parse_containerenv(""), None);
    }

    #[test]
    fn zone_names_come_from_zoneinfo_paths() {
        assert_eq!(
            zone_name(Path::new("/usr/share/zoneinfo/Europe/Paris")).as_deref(),
            Some("Europe/Paris")
        );
        assert_eq!(
            zone_name(Path::new("/usr/share/zoneinfo/posix/UTC")).as_deref(),
            Some("UTC")
        );
        assert_eq!(zone_name(Path::new("/etc/localtime")), None);
    }
}
