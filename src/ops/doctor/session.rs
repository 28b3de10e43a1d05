//! The session checks of `box doctor`: `XDG_RUNTIME_DIR`, cgroup delegation for boxes
//! with an init, and the display, audio and D-Bus sockets a box would get (every box
//! gets the host's `XDG_RUNTIME_DIR`, `/tmp` and the system bus, see `runtime::plan`).

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::Check;
use crate::context::Context;

pub fn check(ctx: &Context, out: &mut Vec<Check>) {
    out.push(runtime_dir(ctx.uid));
    out.push(cgroups(
        ctx.uid,
        &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        Path::new("/sys/fs/cgroup"),
    ));
    let runtime = crate::host::discover().xdg_runtime_dir;
    out.push(display(runtime.as_deref()));
    out.push(audio(runtime.as_deref()));
    out.push(dbus(runtime.as_deref()));
}

fn runtime_dir(uid: u32) -> Check {
    const CHECK: &str = "runtime-dir";
    let Some(dir) = crate::sys::env::os("XDG_RUNTIME_DIR").map(PathBuf::from) else {
        let fallback = crate::host::logind_runtime_dir(uid).map_or_else(
            || {
                format!(
                    "a private directory under {}",
                    crate::sys::env::temp_dir().display()
                )
            },
            |dir| dir.display().to_string(),
        );
        return Check::warn(
            CHECK,
            format!(
                "XDG_RUNTIME_DIR is not set: box keeps running boxes' state in {fallback}, and boxes get no session sockets (Wayland, audio, D-Bus)"
            ),
            "log in through a session manager (systemd-logind sets it), or set XDG_RUNTIME_DIR=/run/user/$(id -u)",
        );
    };
    let fix = "XDG_RUNTIME_DIR must be an absolute path to a directory of yours, mode 0700 (logind's /run/user/UID)";
    if !dir.is_absolute() {
        return Check::fail(
            CHECK,
            format!("XDG_RUNTIME_DIR={} is not an absolute path", dir.display()),
            fix,
        );
    }
    match std::fs::metadata(&dir) {
        Err(err) => Check::fail(
            CHECK,
            format!("XDG_RUNTIME_DIR={}: {err}", dir.display()),
            fix,
        ),
        Ok(meta) if !meta.is_dir() => Check::fail(
            CHECK,
            format!("XDG_RUNTIME_DIR={} is not a directory", dir.display()),
            fix,
        ),
        Ok(meta) if meta.uid() != uid => Check::fail(
            CHECK,
            format!(
                "XDG_RUNTIME_DIR={} belongs to uid {}, not to you ({uid})",
                dir.display(),
                meta.uid()
            ),
            fix,
        ),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Check::warn(
            CHECK,
            format!(
                "XDG_RUNTIME_DIR={} has mode {:o}: others can reach your sessions' sockets",
                dir.display(),
                meta.permissions().mode() & 0o7777
            ),
            format!("`chmod 700 {}`", dir.display()),
        ),
        Ok(_) => Check::ok(CHECK, format!("XDG_RUNTIME_DIR={}", dir.display())),
    }
}

/// Cgroup delegation: a box with its own init (systemd) needs a cgroup subtree of its
/// own, which the user's systemd manager (`user@UID.service`) has when it is delegated
/// (`Delegate=yes`: the directory is then the user's). `cgroup` is `/proc/self/cgroup`,
/// `root` where cgroup2 is mounted.
fn cgroups(uid: u32, cgroup: &str, root: &Path) -> Check {
    const CHECK: &str = "cgroups";
    let manager = format!("user@{uid}.service");
    let fix_session = format!(
        "run box from your desktop or a login session that systemd manages (its cgroup is under {manager}), or through `systemd-run --user --scope box ...`"
    );
    // cgroup v2: one line `0::/path`.
    let Some(path) = cgroup.lines().find_map(|l| l.strip_prefix("0::")) else {
        return Check::warn(
            CHECK,
            "no cgroup v2 hierarchy (unified): boxes with an init cannot get a cgroup of their own",
            "boot with the unified cgroup hierarchy (systemd.unified_cgroup_hierarchy=1, the default of current distributions)",
        );
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some(at) = parts.iter().position(|p| *p == manager) else {
        return Check::warn(
            CHECK,
            format!(
                "box runs in the cgroup {path}, outside your systemd manager ({manager}): boxes with an init cannot get a delegated cgroup"
            ),
            fix_session,
        );
    };
    let dir = root.join(parts[..=at].join("/"));
    let delegated = std::fs::metadata(&dir).is_ok_and(|m| m.uid() == uid);
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    if !delegated {
        return Check::warn(
            CHECK,
            format!(
                "{} is not delegated to you: boxes with an init cannot get a cgroup of their own",
                dir.display()
            ),
            "`sudo systemctl edit user@.service` and add `[Service]` `Delegate=yes` (then log in again); most distributions do this already",
        );
    }
    Check::ok(
        CHECK,
        format!(
            "{} is delegated to you (controllers: {})",
            dir.display(),
            if controllers.trim().is_empty() {
                "none"
            } else {
                controllers.trim()
            }
        ),
    )
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// A path from a variable that may be relative to the runtime directory.
fn in_runtime(runtime: Option<&Path>, name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    if path.is_absolute() {
        Some(path.to_owned())
    } else {
        runtime.map(|r| r.join(path))
    }
}

fn display(runtime: Option<&Path>) -> Check {
    const CHECK: &str = "display";
    let mut found = Vec::new();
    let mut missing = Vec::new();
    if let Some(name) = crate::sys::env::text("WAYLAND_DISPLAY").filter(|v| !v.is_empty()) {
        match in_runtime(runtime, &name) {
            Some(socket) if is_socket(&socket) => {
                found.push(format!("Wayland {}", socket.display()))
            }
            _ => missing.push(format!("WAYLAND_DISPLAY={name} names no socket")),
        }
    }
    if let Some(display) = crate::sys::env::text("DISPLAY").filter(|v| !v.is_empty()) {
        // `:N` or `:N.S` is the local socket /tmp/.X11-unix/XN; `host:N` is TCP.
        match display
            .strip_prefix(':')
            .and_then(|d| d.split('.').next())
            .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        {
            Some(n) => {
                let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
                if is_socket(&socket) {
                    found.push(format!("X11 {}", socket.display()));
                } else {
                    // Xwayland and some servers listen on the abstract socket only.
                    found.push(format!("X11 {display} (abstract socket)"));
                }
            }
            None => found.push(format!("X11 {display} (over the network)")),
        }
    }
    match (found.is_empty(), missing.is_empty()) {
        (true, true) => Check::info(
            CHECK,
            "none: neither WAYLAND_DISPLAY nor DISPLAY is set, so graphical programs in boxes have no display (fine on a server)",
        ),
        (_, false) => Check::warn(
            CHECK,
            missing.join("; "),
            "run box from your desktop session, where these variables name its sockets",
        ),
        (false, true) => Check::ok(CHECK, format!("boxes get {}", found.join(" and "))),
    }
}

fn audio(runtime: Option<&Path>) -> Check {
    const CHECK: &str = "audio";
    let candidates = [("PipeWire", "pipewire-0"), ("PulseAudio", "pulse/native")];
    let found: Vec<String> = candidates
        .iter()
        .filter_map(|(what, name)| {
            let socket = in_runtime(runtime, name)?;
            is_socket(&socket).then(|| format!("{what} {}", socket.display()))
        })
        .collect();
    if found.is_empty() {
        Check::info(
            CHECK,
            "none: no PipeWire or PulseAudio socket in XDG_RUNTIME_DIR, so programs in boxes play no sound (fine on a server)",
        )
    } else {
        Check::ok(CHECK, format!("boxes get {}", found.join(" and ")))
    }
}

fn dbus(runtime: Option<&Path>) -> Check {
    const CHECK: &str = "dbus";
    let session = crate::sys::env::text("DBUS_SESSION_BUS_ADDRESS")
        .and_then(|address| {
            address.split(';').find_map(|a| {
                a.strip_prefix("unix:")?
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("path=").map(PathBuf::from))
            })
        })
        .or_else(|| in_runtime(runtime, "bus"))
        .filter(|p| is_socket(p));
    let system = Some(PathBuf::from("/run/dbus/system_bus_socket")).filter(|p| is_socket(p));
    let mut found = Vec::new();
    if let Some(session) = &session {
        found.push(format!("the session bus {}", session.display()));
    }
    if let Some(system) = &system {
        found.push(format!("the system bus {}", system.display()));
    }
    if found.is_empty() {
        Check::info(
            CHECK,
            "none: no session or system D-Bus socket, so desktop programs in boxes cannot reach the desktop's services (fine on a server)",
        )
    } else {
        Check::ok(CHECK, format!("boxes get {}", found.join(" and ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::doctor::Status;

    #[test]
    fn cgroup_delegation_is_found_from_the_process_cgroup() {
        let root = tempfile::tempdir().unwrap();
        let uid = rustix::process::getuid().as_raw();
        let manager = root
            .path()
            .join(format!("user.slice/user-{uid}.slice/user@{uid}.service"));
        std::fs::create_dir_all(manager.join("app.slice")).unwrap();
        std::fs::write(manager.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let cgroup =
            format!("0::/user.slice/user-{uid}.slice/user@{uid}.service/app.slice/term.scope\n");
        let ok = cgroups(uid, &cgroup, root.path());
        assert_eq!(ok.status, Status::Ok, "{ok:?}");
        assert!(ok.detail.contains("cpu memory pids"), "{}", ok.detail);
        // Someone else's directory: not delegated.
        let stranger = uid + 1;
        let theirs = format!(
            "0::/user.slice/user-{stranger}.slice/user@{stranger}.service/app.slice/x.scope\n"
        );
        std::fs::create_dir_all(root.path().join(format!(
            "user.slice/user-{stranger}.slice/user@{stranger}.service"
        )))
        .unwrap();
        let other = cgroups(stranger, &theirs, root.path());
        assert_eq!(other.status, Status::Warn);
        let outside = cgroups(
            uid,
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            root.path(),
        );
        assert_eq!(outside.status, Status::Warn);
        assert!(
            outside.detail.contains("session-3.scope"),
            "{}",
            outside.detail
        );
        assert!(outside.fix.unwrap().contains("systemd-run --user --scope"));
        let v1 = cgroups(uid, "12:pids:/user.slice\n", root.path());
        assert_eq!(v1.status, Status::Warn);
    }

    #[test]
    fn relative_socket_names_are_in_the_runtime_dir() {
        assert_eq!(
            in_runtime(Some(Path::new("/run/user/7")), "wayland-0"),
            Some(PathBuf::from("/run/user/7/wayland-0"))
        );
        assert_eq!(in_runtime(None, "/tmp/w"), Some(PathBuf::from("/tmp/w")));
        assert_eq!(in_runtime(None, "wayland-0"), None);
    }
}
