//! The session's runtime directory (`$XDG_RUNTIME_DIR`: Wayland, PipeWire/PulseAudio,
//! the session bus, keyring, gpg and ssh agents) at the same path in the box.
//!
//! The box keeps the directory of the session that started it (see
//! [`crate::host::HostFacts::xdg_runtime_dir`]); a join from a session with another one
//! (the box was started from cron or ssh, now a desktop terminal joins) makes that one
//! visible at its own path too: a bind from `/run/host`, nosuid as the box's own, its
//! mount point created in the box's own files ([`crate::sys::boxfs::BoxFs`]: never
//! through a symlink into what the box shares with the host), made with the capabilities
//! setns(user) grants until execve. Best effort: without it the command still runs, only
//! without the sockets in it.
//!
//! The runtime directory is shared with the host: it is mounted nosuid (as every
//! directory the box shares with the host), so a setuid file root in the box leaves in
//! it gives nothing in a box.

use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_json::Value;

use super::{Caller, Integration, Parts, Start, Step, on_host};
use crate::runtime::plan::Mount;

pub struct RuntimeDir;

const VAR: &str = "XDG_RUNTIME_DIR";

/// The note: the directory the box started with.
fn started(note: &Value) -> Option<PathBuf> {
    Option::<PathBuf>::deserialize(note).ok().flatten()
}

impl Integration for RuntimeDir {
    fn name(&self) -> &'static str {
        "runtime-dir"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        let dir = &the_box.facts.host.xdg_runtime_dir;
        if let Some(dir) = dir {
            plan.mount(Mount::rbind(dir, dir).nosuid());
        }
        plan.note(dir);
    }

    fn join(&self, note: &Value, caller: &Caller<'_>) -> Option<Step> {
        let dir = caller.path(VAR)?;
        if started(note).as_ref() == Some(&dir) {
            return None;
        }
        Some(Box::new(move |_| show(&dir, &on_host(&dir))))
    }

    fn describe_join(&self, note: &Value) -> Option<String> {
        Some(match started(note) {
            Some(dir) => format!(
                "{VAR} other than {}: that directory bound at its own path",
                dir.display()
            ),
            None => format!("{VAR}: that directory bound at its own path"),
        })
    }
}

/// Make the caller's runtime directory `dir` (the host's, at `host_dir` in the box)
/// visible at the same path in the box when it is not: bind it, nosuid, creating the
/// mount point in the box's own files.
fn show(dir: &Path, host_dir: &Path) {
    if dir.is_dir() || !host_dir.is_dir() {
        return;
    }
    let Ok(fs) = crate::sys::boxfs::BoxFs::of_this_root() else {
        return;
    };
    let Ok(point) = fs.create_dir_all(dir, 0o700) else {
        return;
    };
    let _ = crate::sys::bind_tree(
        host_dir,
        &point,
        crate::sys::MountAttrs {
            nosuid: true,
            ..Default::default()
        },
    );
}
