//! The front door for tools written for distrobox and podman: what distrobox's
//! `--additional-flags` (podman's own flags, passed on) mean for a box ([`additional`]),
//! and the host links that make box answer as `distrobox`, `distrobox-VERB` and `podman`
//! ([`install_names`], [`remove_names`]).
//!
//! Invariants:
//! - an additional flag box cannot honour is refused by name, never dropped: only the
//!   ones that change nothing for a box (`--tty`, `--preserve-fds`: box runs the command
//!   in place, with the caller's terminal and descriptors) are accepted without effect;
//! - a link is installed only where nothing is, and removed only when it is a link to
//!   box: a real distrobox or podman is never replaced or removed; the links are checked
//!   all before any is made, so a refusal leaves the directory as it was.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::error::{HintExt, failure};

/// What `--additional-flags` asked for, in box's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Additional {
    /// `--env K=V`.
    pub env: Vec<(String, String)>,
    /// `--volume SRC:DST[:MODE]` (create only).
    pub volumes: Vec<String>,
    /// `--device VENDOR/CLASS=NAME` (create only; a `/dev` path is the host's already).
    pub devices: Vec<String>,
    /// `--hostname NAME` (create only).
    pub hostname: Option<String>,
    /// `--user NAME` (enter only).
    pub user: Option<String>,
}

/// Where additional flags are given: they are podman create's at `create`, podman exec's
/// at `enter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagsOf {
    Create,
    Enter,
}

/// Read distrobox's `--additional-flags` values (each a string of podman flags, split as
/// a shell would) for `of`.
pub fn additional(values: &[String], of: FlagsOf) -> Result<Additional> {
    let mut words = Vec::new();
    for value in values {
        let split = shlex::split(value).ok_or_else(|| {
            failure(
                format!("--additional-flags `{value}` has an unclosed quote"),
                "quote the flags as a shell would, e.g. --additional-flags \"--env A='x y'\"",
            )
        })?;
        words.extend(split);
    }
    let mut out = Additional::default();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (word.clone(), None),
        };
        let mut value = |what: &str| -> Result<String> {
            inline.clone().or_else(|| words.next()).ok_or_else(|| {
                failure(
                    format!("--additional-flags: {flag} needs {what}"),
                    format!("write it as `{flag} {what}`"),
                )
            })
        };
        match (flag.as_str(), of) {
            ("--env" | "-e", _) => {
                let pair = value("NAME=VALUE")?;
                let (name, val) = match pair.split_once('=') {
                    Some((name, val)) => (name.to_owned(), val.to_owned()),
                    // podman's `--env NAME`: the caller's value.
                    None => match crate::sys::env::text(&pair) {
                        Some(val) => (pair.clone(), val),
                        None => continue,
                    },
                };
                if name.is_empty() {
                    bail!(failure(
                        format!("--additional-flags: --env {pair} has no name"),
                        "write it as --env NAME=VALUE",
                    ));
                }
                out.env.push((name, val));
            }
            ("--volume" | "-v", FlagsOf::Create) => out.volumes.push(value("SRC:DST")?),
            ("--device", FlagsOf::Create) => {
                let device = value("DEVICE")?;
                // /dev is the host's in every box: a device node is there already.
                if !device.starts_with("/dev/") {
                    out.devices.push(device);
                }
            }
            ("--hostname" | "-h", FlagsOf::Create) => out.hostname = Some(value("NAME")?),
            ("--pids-limit", FlagsOf::Create) => {
                let limit = value("N")?;
                // Boxes have no limit of their own on processes: -1 and 0 ask for none.
                if limit != "-1" && limit != "0" {
                    bail!(failure(
                        format!(
                            "--additional-flags: box cannot limit a box's processes (--pids-limit {limit})"
                        ),
                        "leave --pids-limit out, or give -1 (no limit, which is what a box has)",
                    ));
                }
            }
            ("--network" | "--net", FlagsOf::Create)
            | ("--ipc" | "--pid" | "--uts", FlagsOf::Create) => {
                let mode = value("host")?;
                if mode != "host" {
                    bail!(failure(
                        format!(
                            "--additional-flags: a box always has the host's network, IPC, processes and hostname namespaces ({flag} {mode})"
                        ),
                        format!("leave {flag} out (or give `{flag} host`)"),
                    ));
                }
            }
            ("--user" | "-u", FlagsOf::Enter) => out.user = Some(value("USER")?),
            // The command replaces box in place: the terminal, stdin and every inherited
            // descriptor are already the command's.
            ("--tty" | "-t" | "--interactive" | "-i" | "-it" | "-ti", _) => {
                if let Some(v) = &inline
                    && v != "true"
                {
                    bail!(failure(
                        format!("--additional-flags: box cannot take the terminal away ({word})"),
                        format!(
                            "leave {flag} out: the command has the caller's terminal and input"
                        ),
                    ));
                }
            }
            ("--preserve-fds", FlagsOf::Enter) => {
                value("N")?;
            }
            ("--detach-keys", FlagsOf::Enter) => {
                value("KEYS")?;
            }
            _ => bail!(failure(
                format!(
                    "--additional-flags: box has no equivalent of podman's `{word}` for `distrobox {}`",
                    match of {
                        FlagsOf::Create => "create",
                        FlagsOf::Enter => "enter",
                    }
                ),
                match of {
                    FlagsOf::Create =>
                        "box takes --env NAME=VALUE, --volume SRC:DST[:ro], --device VENDOR/CLASS=NAME, --hostname NAME and --pids-limit -1 here (docs/distrobox-compatibility.md)",
                    FlagsOf::Enter =>
                        "box takes --env NAME=VALUE and --user USER here, and accepts --tty, --interactive and --preserve-fds=N (docs/distrobox-compatibility.md)",
                },
            )),
        }
    }
    Ok(out)
}

/// distrobox's verbs box answers to as `distrobox-VERB`.
pub const DISTROBOX_VERBS: &[&str] = &[
    "create",
    "enter",
    "list",
    "rm",
    "stop",
    "upgrade",
    "ephemeral",
    "generate-entry",
    "assemble",
];

/// Every name [`install_names`] links: `distrobox`, `distrobox-VERB`, `distrobox-export`
/// and `distrobox-host-exec` (distrobox installs them all on the host).
pub fn distrobox_names() -> Vec<String> {
    std::iter::once("distrobox".to_owned())
        .chain(
            DISTROBOX_VERBS
                .iter()
                .chain(&["export", "host-exec"])
                .map(|verb| format!("distrobox-{verb}")),
        )
        .collect()
}

/// What [`install_names`] did.
#[derive(Debug, Clone, Default)]
pub struct Installed {
    /// The directory.
    pub dir: PathBuf,
    /// Links made (or already there).
    pub linked: Vec<String>,
    /// `podman` was left out: a podman is on PATH (its path).
    pub podman_elsewhere: Option<PathBuf>,
    /// Whether `dir` is on the caller's PATH.
    pub on_path: bool,
}

/// The directory names go to: `prefix`, else the first of /usr/local/bin and
/// ~/.local/bin that is on `path` and writable.
pub fn names_dir(prefix: Option<&Path>, home: &Path, path: &std::ffi::OsStr) -> Result<PathBuf> {
    if let Some(prefix) = prefix {
        if !prefix.is_absolute() {
            bail!(failure(
                format!("--prefix {} is not an absolute path", prefix.display()),
                "give the directory's full path, e.g. --prefix ~/.local/bin",
            ));
        }
        return Ok(prefix.to_owned());
    }
    let on_path: Vec<PathBuf> = std::env::split_paths(path).collect();
    let candidates = [PathBuf::from("/usr/local/bin"), home.join(".local/bin")];
    for dir in &candidates {
        if on_path.contains(dir) && writable(dir) {
            return Ok(dir.clone());
        }
    }
    Err(failure(
        "neither /usr/local/bin (writable) nor ~/.local/bin is on your PATH",
        "name the directory: `box install-distrobox-names --prefix DIR` (as root, /usr/local/bin reaches every session, Flatpak'd tools included)",
    ))
}

fn writable(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
}

/// Whether `path` is a symbolic link to box (`exe`, or any file named `box`).
fn links_to_box(path: &Path, exe: &Path) -> bool {
    let Ok(target) = std::fs::read_link(path) else {
        return false;
    };
    let same = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    same(path, exe) || target.file_name().is_some_and(|n| n == "box")
}

/// The first `program` on `path` that is not a link to box, if any.
pub fn find_other(program: &str, path: &std::ffi::OsStr, exe: &Path) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file())
                && !links_to_box(candidate, exe)
                && std::fs::canonicalize(candidate).ok().as_deref() != Some(exe)
        })
}

/// Link `distrobox_names()` (and `podman`, when `path` has no podman) to `exe` in `dir`.
/// Refuses, changing nothing, when any of those names is there and not a link to box.
pub fn install_names(dir: &Path, exe: &Path, path: &std::ffi::OsStr) -> Result<Installed> {
    let mut names = distrobox_names();
    let podman_elsewhere = find_other("podman", path, exe);
    if podman_elsewhere.is_none() {
        names.push("podman".to_owned());
    }
    let mut in_the_way = Vec::new();
    for name in &names {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_ok() && !links_to_box(&link, exe) {
            in_the_way.push(link.display().to_string());
        }
    }
    if !in_the_way.is_empty() {
        bail!(failure(
            format!(
                "{} {} there and not box: box never replaces them",
                in_the_way.join(", "),
                if in_the_way.len() == 1 { "is" } else { "are" }
            ),
            "a real distrobox (or podman) there is what desktop tools use; to have them use box, remove it first (your package manager's), or install box's names in another directory with --prefix",
        ));
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {}", dir.display()))
        .hint("check that you can write there, or pick another directory with --prefix")?;
    let mut linked = Vec::new();
    for name in &names {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_ok() {
            // A link to box (checked above): pointed at this box.
            std::fs::remove_file(&link).with_context(|| format!("replacing {}", link.display()))?;
        }
        std::os::unix::fs::symlink(exe, &link)
            .with_context(|| format!("linking {} to {}", link.display(), exe.display()))
            .hint("check that you can write to the directory, or pick another with --prefix")?;
        linked.push(name.clone());
    }
    let on_path = std::env::split_paths(path).any(|d| d == dir);
    Ok(Installed {
        dir: dir.to_owned(),
        linked,
        podman_elsewhere,
        on_path,
    })
}

/// Remove the links to box named like [`install_names`]'s from `dir`; returns the names
/// removed. Anything else of those names (a real distrobox) stays.
pub fn remove_names(dir: &Path, exe: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in distrobox_names().into_iter().chain(["podman".to_owned()]) {
        let link = dir.join(&name);
        if links_to_box(&link, exe) {
            std::fs::remove_file(&link)
                .with_context(|| format!("removing {}", link.display()))
                .hint("check that you can write to the directory")?;
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(line: &str, of: FlagsOf) -> Result<Additional> {
        additional(&[line.to_owned()], of)
    }

    #[test]
    fn the_flags_distrobox_documents_mean_what_they_say() {
        let create = flags(
            "--env MY_VAR=value --env=B='x y' --volume /opt:/o:ro --pids-limit -1 --device nvidia.com/gpu=all --device /dev/kvm --hostname h",
            FlagsOf::Create,
        )
        .unwrap();
        assert_eq!(
            create.env,
            [
                ("MY_VAR".to_owned(), "value".to_owned()),
                ("B".to_owned(), "x y".to_owned())
            ]
        );
        assert_eq!(create.volumes, ["/opt:/o:ro"]);
        assert_eq!(create.devices, ["nvidia.com/gpu=all"]);
        assert_eq!(create.hostname.as_deref(), Some("h"));
        // Ptyxis' flags change nothing for a box.
        let enter = flags("--tty --preserve-fds=2 -u root", FlagsOf::Enter).unwrap();
        assert_eq!(enter.user.as_deref(), Some("root"));
        assert!(enter.env.is_empty());
    }

    #[test]
    fn what_a_box_cannot_do_is_refused_by_name() {
        for (line, of, needle) in [
            ("--privileged", FlagsOf::Create, "--privileged"),
            ("--volume /a:/b", FlagsOf::Enter, "--volume"),
            ("--pids-limit 100", FlagsOf::Create, "--pids-limit 100"),
            ("--network none", FlagsOf::Create, "--network none"),
            ("--env", FlagsOf::Create, "needs NAME=VALUE"),
            ("--env 'x", FlagsOf::Create, "unclosed quote"),
        ] {
            let err = flags(line, of).unwrap_err();
            let message = crate::error::message(&err);
            assert!(message.contains(needle), "{line}: {message}");
            assert!(err.downcast_ref::<crate::error::Hint>().is_some(), "{line}");
        }
    }

    #[test]
    fn names_go_where_nothing_else_is_and_leave_real_programs_alone() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("opt/box");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        std::fs::write(&exe, "box").unwrap();
        let bin = dir.path().join("bin");
        let path = std::ffi::OsString::from(bin.as_os_str());
        let installed = install_names(&bin, &exe, &path).unwrap();
        assert!(installed.on_path && installed.podman_elsewhere.is_none());
        assert_eq!(installed.linked.len(), 13);
        assert_eq!(
            std::fs::read_link(bin.join("distrobox-enter")).unwrap(),
            exe
        );
        assert_eq!(std::fs::read_link(bin.join("podman")).unwrap(), exe);
        // Again: nothing in the way (they are box's).
        install_names(&bin, &exe, &path).unwrap();
        // A real distrobox there: refused, nothing changed.
        std::fs::remove_file(bin.join("distrobox")).unwrap();
        std::fs::write(bin.join("distrobox"), "#!/bin/sh\n").unwrap();
        let err = install_names(&bin, &exe, &path).unwrap_err();
        assert!(crate::error::message(&err).contains("distrobox"));
        assert_eq!(
            std::fs::read_to_string(bin.join("distrobox")).unwrap(),
            "#!/bin/sh\n"
        );
        // Removal takes box's links only.
        let removed = remove_names(&bin, &exe).unwrap();
        assert_eq!(removed.len(), 12);
        assert!(bin.join("distrobox").exists());
        assert!(std::fs::symlink_metadata(bin.join("podman")).is_err());
        // A podman elsewhere on PATH: no podman link.
        let other = dir.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("podman"), "").unwrap();
        std::fs::remove_file(bin.join("distrobox")).unwrap();
        let path = std::env::join_paths([&bin, &other]).unwrap();
        let installed = install_names(&bin, &exe, &path).unwrap();
        assert_eq!(installed.podman_elsewhere, Some(other.join("podman")));
        assert!(std::fs::symlink_metadata(bin.join("podman")).is_err());
    }
}
