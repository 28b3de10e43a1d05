//! X11: the X authority file (the cookie an X server checks), so X clients in a box pass
//! the check. The display's socket comes with `/tmp` (see `host_dirs`).
//!
//! - A box of the host's hostname and the user's home finds the host's cookie file where
//!   clients on the host do (`$XAUTHORITY`, `~/.Xauthority`): a link through `/run/host`
//!   when no bind shows it at its path.
//! - A box with a hostname or home of its own finds none that works (see
//!   [`crate::host::xauth`] for why): it gets a wildcard copy of the host's entries at
//!   [`XAUTHORITY_IN_BOX`], rewritten by the holder whenever the host's file changes, and
//!   `XAUTHORITY` pointing at it; with a hostname of its own also `XAUTHLOCALHOSTNAME` =
//!   the host's name (openSUSE's libXau reads it).
//!
//! At a join whose `XAUTHORITY` is not the one the box started with (a desktop session
//! joins a box started from a script, an ssh session, or an earlier login: GNOME's
//! Xwayland cookie file changes name at every login), the caller's own file must work:
//! in a box of the host's name and home `XAUTHORITY` names it (through `/run/host` when
//! the box does not show it); in a box with a hostname or home of its own the join reads
//! the caller's file with the caller's own rights before it enters the box, and writes a
//! wildcard copy of it in the box's `/run/box` (the tmpfs the holder mounted at `/run`)
//! through [`BoxFs`] (the box's own filesystems by descriptor, see
//! [`crate::sys::boxfs`]): a scratch file created exclusively, filled, made mode 0600,
//! then renamed over the copy, in a directory reached without leaving the box's own
//! `/run`; the file is created with the joining user's own ids, before `--user` changes
//! them. One copy per caller's file
//! (named by a digest of its path), made anew at each join, so it holds the cookie the
//! caller has now. When the caller's file cannot be read or has no entry for this host,
//! `XAUTHORITY` names the caller's file, as in a box of the host's name.
//!
//! A join whose `XAUTHORITY` is the one the box started with, or unset, does nothing.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Caller, Integration, Parts, Start, Step, on_host};
use crate::runtime::plan::FileOp;
use crate::sys::boxfs::BoxFs;

/// Where a box of another hostname or home has its copy of the starting session's X
/// authority file.
pub const XAUTHORITY_IN_BOX: &str = "/run/box/xauthority";

/// The directory of the box's own X authority files, in the holder's `/run`.
const RUN: &str = "/run";
const DIR: &str = "box";

const VAR: &str = "XAUTHORITY";

/// The unit's note for its joins.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Note {
    /// The X authority file the box started with (see
    /// [`crate::host::HostFacts::xauthority`]).
    started: Option<PathBuf>,
    /// Whether the box needs wildcard copies (a hostname or home of its own).
    wildcard: bool,
}

impl Note {
    fn of(note: &Value) -> Note {
        Note::deserialize(note).unwrap_or_default()
    }
}

pub struct X11;

impl Integration for X11 {
    fn name(&self) -> &'static str {
        "x11"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        let host = &the_box.facts.host;
        let wildcard = the_box.own_hostname() || the_box.record.home.is_some();
        if let Some(xauth) = &host.xauthority {
            if wildcard {
                plan.follow(
                    FileOp::XauthorityCopy {
                        path: XAUTHORITY_IN_BOX.into(),
                        host_path: xauth.clone(),
                        hostname: host.hostname.clone(),
                        owner: (the_box.user.uid, the_box.user.gid),
                    },
                    &[xauth],
                );
                plan.set(VAR, XAUTHORITY_IN_BOX);
            } else if !plan.shows(xauth) {
                plan.follow(
                    FileOp::FollowHost {
                        path: xauth.clone(),
                        host_path: xauth.clone(),
                    },
                    &[xauth],
                );
            }
        }
        if the_box.own_hostname() {
            plan.set("XAUTHLOCALHOSTNAME", host.hostname.clone());
        }
        plan.note(Note {
            started: host.xauthority.clone(),
            wildcard,
        });
    }

    fn join(&self, note: &Value, caller: &Caller<'_>) -> Option<Step> {
        let file = caller.path(VAR)?;
        let note = Note::of(note);
        if note.started.as_ref() == Some(&file) {
            return None;
        }
        // Read here, on the host, with the caller's rights and the host's name.
        let copy = if note.wildcard {
            wildcard_copy_of(&file, &crate::host::hostname())
        } else {
            None
        };
        Some(Box::new(move |env| {
            let seen = copy
                .and_then(|bytes| {
                    let fs = BoxFs::of_this_root().ok()?;
                    write_copy(&fs, Path::new(RUN), &file, &bytes).ok()
                })
                .unwrap_or_else(|| seen(&file));
            env.push((VAR.into(), seen.to_string_lossy().into_owned()));
        }))
    }

    fn describe_join(&self, note: &Value) -> Option<String> {
        let note = Note::of(note);
        let other = match &note.started {
            Some(file) => format!("{VAR} other than {}", file.display()),
            None => VAR.to_owned(),
        };
        Some(if note.wildcard {
            format!(
                "{other}: a wildcard copy of that file (for any hostname) at {RUN}/{DIR}/xauthority-DIGEST, named by {VAR}"
            )
        } else {
            format!("{other}: that file, through /run/host when the box does not show it")
        })
    }
}

/// The caller's file `file` as a wildcard copy of its entries for the host `hostname`:
/// the bytes to write, or None when it cannot be read or holds no such entry.
fn wildcard_copy_of(file: &Path, hostname: &str) -> Option<Vec<u8>> {
    let entries = crate::host::xauth::parse(&std::fs::read(file).ok()?).ok()?;
    let copy = crate::host::xauth::wildcard_copy(&entries, hostname);
    (!copy.is_empty()).then(|| crate::host::xauth::write(&copy))
}

/// The caller's `file` as seen in the box: at its own path when the box shows it, else
/// through `/run/host`.
fn seen(file: &Path) -> PathBuf {
    if file.exists() {
        file.to_owned()
    } else {
        on_host(file)
    }
}

/// Write `bytes`, the copy of the caller's `file`, at `run`/box/xauthority-DIGEST in the
/// box `fs` (see the module doc for how); returns its path in the box.
fn write_copy(fs: &BoxFs, run: &Path, file: &Path, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let dir = run.join(DIR);
    fs.create_dir_all(&dir, 0o755)?;
    let digest = crate::digest::Digest::of(file.as_os_str().as_bytes());
    let path = dir.join(format!("xauthority-{}", &digest.hex()[..16]));
    fs.write(&path, bytes, 0o600, None)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::xauth::{Entry, FAMILY_LOCAL, FAMILY_WILD};

    fn entry(family: u16, address: &str, cookie: &[u8]) -> Entry {
        Entry {
            family,
            address: address.as_bytes().to_vec(),
            number: b"0".to_vec(),
            name: b"MIT-MAGIC-COOKIE-1".to_vec(),
            data: cookie.to_vec(),
        }
    }

    fn caller_with(xauthority: &Path) -> impl Fn(&str) -> Option<std::ffi::OsString> {
        let value = xauthority.as_os_str().to_owned();
        move |name| (name == VAR).then(|| value.clone())
    }

    #[test]
    fn a_join_with_the_starting_sessions_file_or_none_does_nothing() {
        let started = Path::new("/run/user/1000/xauth_x");
        let note = serde_json::to_value(Note {
            started: Some(started.into()),
            wildcard: true,
        })
        .unwrap();
        let var = caller_with(started);
        assert!(X11.join(&note, &Caller::new(&var)).is_none());
        assert!(X11.join(&note, &Caller::new(&|_| None)).is_none());
        // A relative path means nothing in the box.
        let relative = caller_with(Path::new("xauth"));
        assert!(X11.join(&note, &Caller::new(&relative)).is_none());
        // Another session's file: a step, whatever the box started with.
        let other = caller_with(Path::new("/nonexistent/.mutter-Xwaylandauth.ABC"));
        assert!(X11.join(&note, &Caller::new(&other)).is_some());
        assert!(X11.join(&Value::Null, &Caller::new(&other)).is_some());
    }

    #[test]
    fn the_join_copy_is_a_private_file_of_the_callers_entries_renamed_over_the_old() {
        let run = tempfile::tempdir().unwrap();
        let session = run.path().join("session");
        let entries = [
            entry(FAMILY_LOCAL, "laptop", b"mine"),
            entry(FAMILY_LOCAL, "other", b"theirs"),
        ];
        std::fs::write(&session, crate::host::xauth::write(&entries)).unwrap();
        let bytes = wildcard_copy_of(&session, "laptop").unwrap();
        assert_eq!(
            crate::host::xauth::parse(&bytes).unwrap(),
            [entry(FAMILY_WILD, "laptop", b"mine")]
        );
        assert_eq!(wildcard_copy_of(&session, "elsewhere"), None);
        assert_eq!(
            wildcard_copy_of(&run.path().join("missing"), "laptop"),
            None
        );

        // The box's /run: a directory of its own here.
        let open = |p: &Path| {
            rustix::fs::open(
                p,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .unwrap()
        };
        let fs = BoxFs::new(open(run.path()));
        let in_box = write_copy(&fs, Path::new("/"), &session, &bytes).unwrap();
        assert!(
            in_box.parent() == Some(Path::new("/box"))
                && in_box.to_string_lossy().starts_with("/box/xauthority-"),
            "{}",
            in_box.display()
        );
        let copy = run.path().join(in_box.strip_prefix("/").unwrap());
        assert_eq!(std::fs::read(&copy).unwrap(), bytes);
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(&copy).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(meta.uid(), rustix::process::geteuid().as_raw());
        // A symlink planted at the copy's name is replaced, never written through.
        let target = run.path().join("target");
        std::fs::write(&target, b"untouched").unwrap();
        std::fs::remove_file(&copy).unwrap();
        std::os::unix::fs::symlink(&target, &copy).unwrap();
        assert_eq!(
            write_copy(&fs, Path::new("/"), &session, &bytes).unwrap(),
            in_box
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
        assert!(!std::fs::symlink_metadata(&copy).unwrap().is_symlink());
        let names: Vec<_> = std::fs::read_dir(run.path().join("box"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // Another file of the caller's: another copy.
        let again = write_copy(&fs, Path::new("/"), &run.path().join("session2"), &bytes).unwrap();
        assert_ne!(again, in_box);
        // A `box` that is a symlink out of the box's tree leads nowhere outside it.
        let run2 = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(run.path(), run2.path().join("box")).unwrap();
        let fs2 = BoxFs::new(open(run2.path()));
        assert!(write_copy(&fs2, Path::new("/"), &session, &bytes).is_err());
        assert_eq!(
            std::fs::read_dir(run.path().join("box")).unwrap().count(),
            2
        );
    }
}
