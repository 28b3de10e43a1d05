//! `box doctor`: check each thing box needs on this host, and say how to fix what is
//! wrong.
//!
//! Each check gives one [`Check`]: what was found, and for anything short of `ok` the fix,
//! as a command the user can run where there is one. The checks, in the order printed:
//! - identity ([`ids`]): the user's subordinate ids and their size, `newuidmap` and
//!   `newgidmap` and their privileges (setuid root or a file capability);
//! - kernel ([`kernel`]): the user-namespace sysctls, AppArmor's restriction of
//!   unprivileged user namespaces and the profile that lifts it, and a probe: a helper in
//!   a new user namespace with the user's own mapping, which mounts, mounts overlayfs with
//!   `userxattr` on the store's filesystem (whiteouts included), and makes the fake root's
//!   nested user namespace with its seccomp filter;
//! - session ([`session`]): `XDG_RUNTIME_DIR`, cgroup delegation (for boxes with an
//!   init), the display, audio and D-Bus sockets a box would get;
//! - files ([`files`]): registries.conf and credential files parse, CDI specs parse, the
//!   store is whole and its filesystem has room.
//!
//! [`Status::Fail`] means box cannot work here (a command would fail), [`Status::Warn`]
//! that it works with less (single-id fallback, a copy instead of overlayfs, no `--init`),
//! [`Status::Info`] a fact (no display); the command's exit status is non-zero exactly
//! when a check failed ([`blocks`]).
//!
//! Invariants: the checks change nothing but a temporary directory of the probe, removed
//! again (under the store's `tmp/` when the store exists, so an interrupted probe's
//! leftovers go with the next pull's debris); nothing touches the network; the probe's
//! helper is killed with its parent, as every helper is.

mod files;
mod ids;
mod kernel;
mod session;

use std::path::Path;

use serde::Serialize;

pub use kernel::{PROBE, probe_main};

use crate::context::Context;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As box needs it.
    Ok,
    /// A fact worth knowing, not a problem (no display on a server).
    Info,
    /// box works, with less (see the module docs).
    Warn,
    /// box cannot work here until it is fixed.
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// A stable name, for tools (`subordinate-ids`, `newuidmap`, ...).
    pub check: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (none for `ok`).
    pub fix: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn info(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            status: Status::Info,
            ..Check::ok(check, detail)
        }
    }

    fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            ..Check::warn(check, detail, fix)
        }
    }
}

/// Run every check for the user of `ctx`.
pub fn run(ctx: &Context) -> Vec<Check> {
    let mut checks = Vec::new();
    let identity = ids::check(ctx, &mut checks);
    kernel::check(ctx, &identity, &mut checks);
    session::check(ctx, &mut checks);
    files::check(ctx, &mut checks);
    checks
}

/// Whether something blocks box (a check failed).
pub fn blocks(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// The AppArmor profile that lets the box executable at `exe` use unprivileged user
/// namespaces where AppArmor restricts them (Ubuntu 23.10 and later,
/// `kernel.apparmor_restrict_unprivileged_userns=1`): an unconfined profile with the
/// `userns` rule, as AppArmor's own package ships for podman, buildah and crun. It needs
/// AppArmor 4 (`abi/4.0`; AppArmor 3 parsers reject the rule), which the packages'
/// scripts check before installing it. The packaged file
/// (`packaging/apparmor/box`) is this text for `/usr/bin/box`, kept so by a test.
pub fn apparmor_profile(exe: &Path) -> String {
    let name = apparmor_profile_name(exe);
    format!(
        "# AppArmor profile of box: box creates unprivileged user\n\
         # namespaces for its containers. Where AppArmor restricts them\n\
         # (kernel.apparmor_restrict_unprivileged_userns=1), a program needs a profile with the\n\
         # `userns` rule to get capabilities in its namespaces. Unconfined otherwise.\n\
         abi <abi/4.0>,\n\
         include <tunables/global>\n\
         \n\
         profile {name} {exe} flags=(unconfined) {{\n\
         \x20 userns,\n\
         \n\
         \x20 # Site-specific additions and overrides. See local/README for details.\n\
         \x20 include if exists <local/{name}>\n\
         }}\n",
        exe = quoted(&exe.to_string_lossy())
    )
}

/// A path as AppArmor's profile language takes it: in quotes when it has white space.
fn quoted(path: &str) -> String {
    if path.contains(char::is_whitespace) {
        format!("\"{path}\"")
    } else {
        path.to_owned()
    }
}

/// The profile's name: `box` for the packages' `/usr/bin/box`, else one derived from the
/// path (`box-home.alice..local.bin.box`), so that a copy elsewhere gets a profile of
/// its own beside the packaged one.
pub fn apparmor_profile_name(exe: &Path) -> String {
    if exe == Path::new("/usr/bin/box") {
        return "box".to_owned();
    }
    let path = exe.to_string_lossy();
    let flat: String = path
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c == '/' {
                '.'
            } else if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("box-{flat}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_profile_is_the_one_doctor_describes() {
        let packaged = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/apparmor/box"),
        )
        .unwrap();
        assert_eq!(packaged, apparmor_profile(Path::new("/usr/bin/box")));
        assert!(packaged.contains("profile box /usr/bin/box flags=(unconfined) {\n  userns,\n"));
    }

    #[test]
    fn profiles_of_other_paths_get_names_of_their_own() {
        assert_eq!(
            apparmor_profile_name(Path::new("/home/alice/.local/bin/box")),
            "box-home.alice..local.bin.box"
        );
        assert_eq!(
            apparmor_profile_name(Path::new("/opt/my box/box")),
            "box-opt.my_box.box"
        );
        let text = apparmor_profile(Path::new("/home/alice/.local/bin/box"));
        assert!(text.contains("profile box-home.alice..local.bin.box /home/alice/.local/bin/box "));
        let text = apparmor_profile(Path::new("/opt/my box/box"));
        assert!(text.contains("profile box-opt.my_box.box \"/opt/my box/box\" "));
    }

    #[test]
    fn only_a_failure_blocks() {
        let checks = vec![
            Check::ok("a", "x"),
            Check::warn("b", "y", "z"),
            Check::info("c", "w"),
        ];
        assert!(!blocks(&checks));
        let mut failing = checks;
        failing.push(Check::fail("d", "v", "u"));
        assert!(blocks(&failing));
    }
}
