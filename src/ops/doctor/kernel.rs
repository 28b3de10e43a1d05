//! The kernel checks of `box doctor`: the user-namespace sysctls, AppArmor's restriction,
//! and a probe that does what a box start does, in small.
//!
//! The probe is `box __doctor-probe DIR`, a helper in a new user namespace mapped as box
//! maps boxes (the [`crate::sys::userns`] handshake, so `newuidmap` runs for real). It
//! unshares a mount namespace and mounts a tmpfs (what AppArmor's restriction or a
//! seccomp filter forbids), mounts overlayfs with `userxattr` over `DIR/lower` and deletes
//! a lower file through it (a whiteout), removes what it made, then makes the fake root's
//! nested user namespace and installs its seccomp filter, and reports each step
//! ([`ProbeReport`]). `DIR` is on the store's filesystem, whose overlayfs support is what
//! matters.

use std::io::Write as _;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::Check;
use super::ids::Identity;
use crate::context::Context;
use crate::sys::idmap::IdMapping;

/// The hidden subcommand of the probe.
pub const PROBE: &str = "__doctor-probe";

/// What the probe reports: each step's error, `None` when it worked; a step not tried
/// (an earlier one failed) is `Some` of why.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProbeReport {
    mount: Option<String>,
    overlay: Option<String>,
    fake_root: Option<String>,
}

/// The sysctls that switch unprivileged user namespaces off.
const MAX_USER_NAMESPACES: &str = "/proc/sys/user/max_user_namespaces";
const UNPRIVILEGED_USERNS_CLONE: &str = "/proc/sys/kernel/unprivileged_userns_clone";
/// AppArmor's restriction (Ubuntu 23.10 and later).
const APPARMOR_RESTRICT: &str = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns";

fn sysctl(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `kernel.x.y` of `/proc/sys/kernel/x/y`.
fn sysctl_name(path: &str) -> String {
    path.trim_start_matches("/proc/sys/").replace('/', ".")
}

fn set_sysctl(path: &str, value: &str) -> String {
    let name = sysctl_name(path);
    format!(
        "`sudo sysctl -w {name}={value}`, and `echo {name}={value} | sudo tee /etc/sysctl.d/90-box.conf` to keep it after a reboot"
    )
}

pub fn check(ctx: &Context, identity: &Identity, out: &mut Vec<Check>) {
    // The sysctls first: they explain a probe that cannot start.
    let mut switched_off = None;
    let max = sysctl(MAX_USER_NAMESPACES);
    let mut settings = Vec::new();
    if let Some(max) = max {
        settings.push(format!("user.max_user_namespaces={max}"));
        if max == 0 {
            switched_off = Some((
                "user.max_user_namespaces is 0: no user namespace can be made".to_owned(),
                set_sysctl(MAX_USER_NAMESPACES, "15000"),
            ));
        }
    }
    if let Some(clone) = sysctl(UNPRIVILEGED_USERNS_CLONE) {
        settings.push(format!("kernel.unprivileged_userns_clone={clone}"));
        if clone == 0 && switched_off.is_none() {
            switched_off = Some((
                "kernel.unprivileged_userns_clone is 0: only root may make user namespaces"
                    .to_owned(),
                set_sysctl(UNPRIVILEGED_USERNS_CLONE, "1"),
            ));
        }
    }

    let Some(uid_gid) = ctx.user().ok().map(|u| (u.uid, u.gid)) else {
        return;
    };
    let single = IdMapping::Single {
        uid: uid_gid.0,
        gid: uid_gid.1,
        reason: String::new(),
    };
    let mapping = identity.mapping.clone().unwrap_or_else(|| single.clone());
    let keep_id = matches!(mapping, IdMapping::KeepId { .. });
    let mut probed = probe(ctx, &mapping);
    if keep_id {
        match &probed {
            Ok(_) => out.push(Check::ok(
                "id-mapping",
                "newuidmap and newgidmap mapped a new user namespace with your subordinate ids",
            )),
            Err(err) => {
                out.push(Check::fail(
                    "id-mapping",
                    format!("mapping a new user namespace with your subordinate ids failed: {err}"),
                    "see the newuidmap, newgidmap and subordinate-ids lines; box tries this mapping at every pull and start",
                ));
                // Whether the kernel itself allows user namespaces: with one id, no helper.
                probed = probe(ctx, &single);
            }
        }
    }
    let settings = if settings.is_empty() {
        String::new()
    } else {
        format!(" ({})", settings.join(", "))
    };
    let report = match (probed, switched_off) {
        (Ok(report), _) => {
            out.push(Check::ok(
                "user-namespaces",
                format!("box's helper made a user namespace{settings}"),
            ));
            Some(report)
        }
        (Err(_), Some((why, fix))) => {
            out.push(Check::fail("user-namespaces", why, fix));
            None
        }
        (Err(err), None) => {
            out.push(Check::fail(
                "user-namespaces",
                format!("making a user namespace failed{settings}: {err}"),
                "the kernel must be built with CONFIG_USER_NS, and nothing box runs under (a container's seccomp profile, a security module) may forbid unshare(CLONE_NEWUSER); run box directly on the host",
            ));
            None
        }
    };
    let mount_error = report.as_ref().and_then(|r| r.mount.clone());
    out.push(apparmor(
        sysctl(APPARMOR_RESTRICT),
        &apparmor_label(),
        report.as_ref().map(|_| mount_error.as_deref()),
        &crate::host::box_binary().unwrap_or_else(|| PathBuf::from("/usr/bin/box")),
    ));
    let Some(report) = report else {
        return;
    };
    out.push(match &report.mount {
        None => Check::ok(
            "mounts",
            "box's helper mounted a tmpfs in a mount namespace of its own",
        ),
        Some(err) => Check::fail(
            "mounts",
            format!("mounting in box's user namespace failed: {err}"),
            if sysctl(APPARMOR_RESTRICT) == Some(1) {
                "lift AppArmor's restriction for box (the apparmor line)".to_owned()
            } else {
                "a seccomp filter or security module box runs under forbids mount(2) in user namespaces (a container's default profile does); run box directly on the host".to_owned()
            },
        ),
    });
    out.push(match &report.overlay {
        None => Check::ok(
            "overlayfs",
            format!(
                "overlayfs with userxattr works on the store's filesystem ({}), whiteouts included",
                store_filesystem(ctx).display()
            ),
        ),
        Some(err) => Check::warn(
            "overlayfs",
            format!(
                "overlayfs in a user namespace failed on the store's filesystem ({}): {err}; boxes are full copies of their images instead (the image's size again on disk, and slower to create)",
                store_filesystem(ctx).display()
            ),
            "Linux 5.11 or later mounts overlayfs in user namespaces; keep the store (XDG_DATA_HOME) on ext4, xfs, btrfs or tmpfs",
        ),
    });
    out.push(match &report.fake_root {
        None => Check::ok(
            "fake-root",
            "a nested user namespace and the fake root's seccomp filter work (root in boxes without subordinate ids)",
        ),
        Some(err) => {
            let detail = format!("box's fake root cannot be made here: {err}");
            let fix = "the fake root needs nested user namespaces and seccomp filters (CONFIG_SECCOMP_FILTER); a container box runs in may forbid them";
            if keep_id {
                // Boxes have a real root: the fake root is not used.
                Check::warn("fake-root", detail, fix)
            } else {
                Check::fail(
                    "fake-root",
                    format!("{detail}; it is the only root in your boxes (no subordinate ids)"),
                    fix,
                )
            }
        }
    });
}

/// The AppArmor line: `restrict` is the sysctl (missing: no such restriction), `label`
/// this process's AppArmor label, `mount` the probe's mount step (`None`: no probe ran,
/// `Some(None)`: it worked), `exe` the box executable.
fn apparmor(restrict: Option<u64>, label: &str, mount: Option<Option<&str>>, exe: &Path) -> Check {
    const CHECK: &str = "apparmor";
    match restrict {
        None => Check::ok(
            CHECK,
            "AppArmor does not restrict user namespaces on this kernel",
        ),
        Some(0) => Check::ok(CHECK, "kernel.apparmor_restrict_unprivileged_userns=0"),
        Some(_) => {
            if mount == Some(None) {
                return Check::ok(
                    CHECK,
                    format!(
                        "kernel.apparmor_restrict_unprivileged_userns=1, and box runs under the profile `{label}`, which allows them"
                    ),
                );
            }
            let name = super::apparmor_profile_name(exe);
            let fix = if exe == Path::new("/usr/bin/box") {
                "reinstall the box package (its /etc/apparmor.d/box lifts the restriction; it needs AppArmor 4), or load it: `sudo apparmor_parser -r /etc/apparmor.d/box`".to_owned()
            } else {
                format!(
                    "install a profile for {exe}: `{exe} doctor --apparmor-profile | sudo tee /etc/apparmor.d/{name} && sudo apparmor_parser -r /etc/apparmor.d/{name}`",
                    exe = exe.display()
                )
            };
            Check::fail(
                CHECK,
                format!(
                    "kernel.apparmor_restrict_unprivileged_userns=1 and {} runs under `{label}`, no profile with the userns rule: its user namespaces get no capabilities",
                    exe.display()
                ),
                fix,
            )
        }
    }
}

/// This process's AppArmor label (`unconfined`, or `box (unconfined)` under box's
/// profile); `unconfined` when AppArmor says nothing.
fn apparmor_label() -> String {
    [
        "/proc/self/attr/apparmor/current",
        "/proc/self/attr/current",
    ]
    .iter()
    .find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        let text = text.trim_end_matches(['\n', '\0']).trim();
        (!text.is_empty()).then(|| text.to_owned())
    })
    .unwrap_or_else(|| "unconfined".to_owned())
}

/// The existing directory the store is in, or would be created under.
fn store_filesystem(ctx: &Context) -> PathBuf {
    ctx.dirs
        .store
        .ancestors()
        .find(|dir| dir.is_dir())
        .unwrap_or(Path::new("/"))
        .to_owned()
}

/// Run the probe with `mapping`: its report, or why it could not start.
fn probe(ctx: &Context, mapping: &IdMapping) -> std::result::Result<ProbeReport, String> {
    let store = crate::store::Store::at(&ctx.dirs.store);
    // Under tmp/ when the store exists: an interrupted probe's files go with the next
    // pull's debris (they may belong to subordinate ids the user cannot remove).
    let dir = if store.tmp_dir().is_dir() {
        let dir = store.staging_path("doctor");
        std::fs::create_dir(&dir)
            .map(|()| Scratch(dir.clone()))
            .map_err(|e| format!("creating {}: {e}", dir.display()))?
    } else {
        let parent = store_filesystem(ctx);
        let dir = tempfile::Builder::new()
            .prefix(".box-doctor-")
            .tempdir_in(&parent)
            .map_err(|e| format!("creating a directory in {}: {e}", parent.display()))?;
        Scratch(dir.keep())
    };
    let lower = dir.0.join("lower");
    std::fs::create_dir(&lower)
        .and_then(|()| std::fs::write(lower.join("file"), b"lower\n"))
        .map_err(|e| format!("creating {}: {e}", lower.display()))?;
    let stderr_path = dir.0.join("stderr");
    let stderr = std::fs::File::create(&stderr_path)
        .map_err(|e| format!("creating {}: {e}", stderr_path.display()))?;
    let started = crate::sys::userns::NsHelper::spawn_with_stderr(
        PROBE,
        &[dir.0.to_string_lossy().into_owned()],
        mapping,
        crate::sys::idmap::Reach::Box,
        None,
        stderr.into(),
    );
    let said = || {
        // The helper's own error (`box: error: ...`), when it said one.
        std::fs::read_to_string(&stderr_path).ok().and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("box: error: "))
                .map(str::to_owned)
        })
    };
    let mut helper = started.map_err(|e| said().unwrap_or_else(|| crate::error::message(&e)))?;
    let report: ProbeReport = helper
        .recv()
        .map_err(|e| said().unwrap_or_else(|| crate::error::message(&e)))?;
    let _ = helper.finish();
    Ok(report)
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `box __doctor-probe DIR`: the probe's side (module docs).
pub fn probe_main(args: &[String]) -> Result<ExitCode> {
    let dir = PathBuf::from(args.first().context("usage: box __doctor-probe DIR")?);
    crate::sys::userns::child_handshake()?;
    // Becoming root inside cleared the dumpable flag, which hands /proc/self/* to the
    // host's root: the fake root's own map writes need them to be this process's again.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
        .context("prctl(PR_SET_DUMPABLE)")?;
    let report = run_probe(&dir);
    let mut out = std::io::stdout().lock();
    crate::sys::protocol::send(&mut out, &report)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn run_probe(dir: &Path) -> ProbeReport {
    let not_tried = |why: &str| Some(format!("not tried: {why}"));
    let mount = mount_namespace(dir).err();
    let overlay = match &mount {
        None => overlay(dir).err(),
        Some(_) => not_tried("mounting failed"),
    };
    // What the helper made as root of its namespace, the user may not remove.
    for made in ["tmpfs", "upper", "work", "merged"] {
        let _ = std::fs::remove_dir_all(dir.join(made));
    }
    let fake_root = fake_root(dir).err();
    ProbeReport {
        mount,
        overlay,
        fake_root,
    }
}

fn mount_namespace(dir: &Path) -> std::result::Result<(), String> {
    use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
    crate::sys::unshare_namespaces(rustix::thread::UnshareFlags::NEWNS)
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .map_err(|e| format!("making / a recursive slave mount: {e}"))?;
    let target = dir.join("tmpfs");
    std::fs::create_dir(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    rustix::mount::mount("tmpfs", &target, "tmpfs", MountFlags::empty(), None)
        .map_err(|e| format!("mounting a tmpfs on {}: {e}", target.display()))?;
    rustix::mount::unmount(&target, UnmountFlags::DETACH)
        .map_err(|e| format!("unmounting {}: {e}", target.display()))
}

fn overlay(dir: &Path) -> std::result::Result<(), String> {
    use rustix::mount::{MountFlags, UnmountFlags};
    // Relative names, as the holder mounts: the options stay short whatever DIR is.
    rustix::process::chdir(dir).map_err(|e| format!("entering {}: {e}", dir.display()))?;
    for made in ["upper", "work", "merged"] {
        std::fs::create_dir(made).map_err(|e| format!("creating {made}: {e}"))?;
    }
    rustix::mount::mount(
        "overlay",
        "merged",
        "overlay",
        MountFlags::empty(),
        Some(c"lowerdir=lower,upperdir=upper,workdir=work,userxattr"),
    )
    .map_err(|e| format!("mount -t overlay -o userxattr: {e}"))?;
    let used = std::fs::write("merged/new", b"upper\n")
        .map_err(|e| format!("writing through the overlay: {e}"))
        .and_then(|()| {
            std::fs::remove_file("merged/file")
                .map_err(|e| format!("deleting a lower file through the overlay: {e}"))
        })
        .and_then(|()| {
            let meta = std::fs::symlink_metadata("upper/file")
                .map_err(|e| format!("the whiteout in the upper directory: {e}"))?;
            if meta.file_type().is_char_device() {
                Ok(())
            } else {
                Err("deleting a lower file left no whiteout in the upper directory".to_owned())
            }
        });
    let unmounted = rustix::mount::unmount("merged", UnmountFlags::DETACH)
        .map_err(|e| format!("unmounting the overlay: {e}"));
    used.and(unmounted)
}

fn fake_root(dir: &Path) -> std::result::Result<(), String> {
    crate::fakeroot::nested_root().map_err(|e| crate::error::message(&e))?;
    crate::fakeroot::seccomp::install().map_err(|e| crate::error::message(&e))?;
    // A chown to an id the nested namespace does not map: the filter answers success.
    let file = dir.join("lower/file");
    rustix::fs::chown(
        &file,
        Some(rustix::process::Uid::from_raw(4242)),
        Some(rustix::process::Gid::from_raw(4242)),
    )
    .map_err(|e| format!("chown under the fake root's filter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::doctor::Status;

    #[test]
    fn apparmor_fails_only_when_it_restricts_and_the_probe_could_not_mount() {
        let exe = Path::new("/usr/bin/box");
        assert_eq!(
            apparmor(None, "unconfined", Some(None), exe).status,
            Status::Ok
        );
        assert_eq!(
            apparmor(Some(0), "unconfined", Some(Some("EPERM")), exe).status,
            Status::Ok
        );
        let lifted = apparmor(Some(1), "box (unconfined)", Some(None), exe);
        assert_eq!(lifted.status, Status::Ok);
        assert!(
            lifted.detail.contains("`box (unconfined)`"),
            "{}",
            lifted.detail
        );
        let packaged = apparmor(Some(1), "unconfined", Some(Some("EPERM")), exe);
        assert_eq!(packaged.status, Status::Fail);
        assert!(
            packaged
                .fix
                .unwrap()
                .contains("apparmor_parser -r /etc/apparmor.d/box")
        );
        let local = apparmor(
            Some(1),
            "unconfined",
            None,
            Path::new("/home/ann/.local/bin/box"),
        );
        assert_eq!(local.status, Status::Fail);
        let fix = local.fix.unwrap();
        assert!(
            fix.contains("/home/ann/.local/bin/box doctor --apparmor-profile | sudo tee /etc/apparmor.d/box-home.ann..local.bin.box"),
            "{fix}"
        );
    }

    #[test]
    fn sysctl_fixes_name_the_setting_and_keep_it() {
        let fix = set_sysctl(MAX_USER_NAMESPACES, "15000");
        assert!(
            fix.contains("sudo sysctl -w user.max_user_namespaces=15000"),
            "{fix}"
        );
        assert!(fix.contains("/etc/sysctl.d/"), "{fix}");
        assert_eq!(
            sysctl_name(APPARMOR_RESTRICT),
            "kernel.apparmor_restrict_unprivileged_userns"
        );
    }
}
