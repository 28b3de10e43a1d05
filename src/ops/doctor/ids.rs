//! The identity checks of `box doctor`: the user's subordinate ids and the setuid helpers
//! that map them (`newuidmap`, `newgidmap`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Check;
use crate::context::Context;
use crate::sys::idmap::{self, CONTAINER_IDS, IdMapping, SubRange};

/// What the identity checks found, for the kernel probe.
pub struct Identity {
    /// The mapping box would use, when it can pick one.
    pub mapping: Option<IdMapping>,
}

/// How to install the helpers on the usual distributions.
const INSTALL_HELPERS: &str = "install them: `sudo apt install uidmap` (Debian, Ubuntu), `sudo dnf install shadow-utils` (Fedora), `sudo pacman -S shadow` (Arch), `sudo zypper install shadow` (openSUSE)";

pub fn check(ctx: &Context, out: &mut Vec<Check>) -> Identity {
    let user = match ctx.user() {
        Ok(user) => user,
        Err(err) => {
            out.push(Check::fail(
                "user",
                format!("who you are: {}", crate::error::message(&err)),
                "run box as a user of this host's user database, or set USER and HOME",
            ));
            return Identity { mapping: None };
        }
    };
    let mapping = ctx.id_mapping().ok().cloned();
    if user.uid == 0 {
        out.push(Check::ok(
            "subordinate-ids",
            "box runs as root: ids map to themselves, no subordinate ids are needed",
        ));
        return Identity { mapping };
    }
    let ranges = idmap::sub_ranges(&user.name, user.uid);
    let has_subids = matches!(ranges, Ok((Some(_), Some(_))));
    out.push(match ranges {
        Ok((uids, gids)) => subids(&user.name, uids, gids, &idmap::add_subids_command(&user.name)),
        Err(err) => Check::fail(
            "subordinate-ids",
            crate::error::message(&err),
            "make /etc/subuid and /etc/subgid readable by everyone (mode 0644), as shadow installs them",
        ),
    });
    for (helper, capability) in [("newuidmap", CAP_SETUID), ("newgidmap", CAP_SETGID)] {
        out.push(map_helper(helper, capability, has_subids));
    }
    Identity { mapping }
}

/// The subordinate-ids check from the user's ranges; `add` is the command that adds a
/// free range.
fn subids(name: &str, uids: Option<SubRange>, gids: Option<SubRange>, add: &str) -> Check {
    const CHECK: &str = "subordinate-ids";
    let describe = |r: SubRange| format!("{} ({} ids)", idmap::range_text(r), r.count);
    match (uids, gids) {
        (Some(u), Some(g)) if u.count >= CONTAINER_IDS - 1 && g.count >= CONTAINER_IDS - 1 => {
            Check::ok(
                CHECK,
                format!("{name} has uids {} and gids {}", describe(u), describe(g)),
            )
        }
        (Some(u), Some(g)) => {
            let (file, small) = if u.count < CONTAINER_IDS - 1 {
                ("/etc/subuid", u)
            } else {
                ("/etc/subgid", g)
            };
            Check::fail(
                CHECK,
                format!(
                    "the range of {name} in {file} is {}; a box needs {} ids",
                    describe(small),
                    CONTAINER_IDS - 1
                ),
                format!(
                    "replace it: `sudo usermod --del-subuids {} --del-subgids {} {name}`, then `{add}`",
                    idmap::range_text(u),
                    idmap::range_text(g)
                ),
            )
        }
        (u, g) => {
            let files = match (u, g) {
                (None, None) => "/etc/subuid and /etc/subgid have",
                (None, _) => "/etc/subuid has",
                _ => "/etc/subgid has",
            };
            Check::warn(
                CHECK,
                format!(
                    "{files} no subordinate ids for {name}: boxes map only your own id, and root in a box is box's fake root"
                ),
                format!(
                    "`{add}` (a range no other user has), then remove your boxes and images and pull again"
                ),
            )
        }
    }
}

/// Capability numbers (capability(7)).
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;

/// The check of one setuid helper: found, and privileged to map ids.
fn map_helper(helper: &'static str, capability: u32, has_subids: bool) -> Check {
    let Some(path) = idmap::find_map_helper(helper) else {
        return Check::warn(
            helper,
            format!(
                "{helper} is in neither $PATH nor /usr/bin, /usr/sbin, /bin, /sbin: boxes map only your own id"
            ),
            INSTALL_HELPERS,
        );
    };
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(err) => {
            return Check::fail(
                helper,
                format!("{}: {err}", path.display()),
                INSTALL_HELPERS,
            );
        }
    };
    let setuid_root = meta.uid() == 0 && meta.mode() & 0o4000 != 0;
    if setuid_root {
        return Check::ok(helper, format!("{} is setuid root", path.display()));
    }
    if file_capability(&path, capability) {
        return Check::ok(
            helper,
            format!(
                "{} has the file capability {}",
                path.display(),
                capability_name(capability)
            ),
        );
    }
    let detail = format!(
        "{} is neither setuid root nor has the file capability {}: it cannot write another user's id map",
        path.display(),
        capability_name(capability)
    );
    let owner = if meta.uid() == 0 {
        String::new()
    } else {
        format!("sudo chown root {} && ", path.display())
    };
    let fix = format!(
        "`{owner}sudo chmod u+s {path}` (or `sudo setcap {cap}=ep {path}`), or reinstall the package it came from",
        path = path.display(),
        cap = capability_name(capability)
    );
    if has_subids {
        Check::fail(helper, detail, fix)
    } else {
        // Without subordinate ids box never runs it (single-id mapping).
        Check::warn(helper, detail, fix)
    }
}

fn capability_name(capability: u32) -> &'static str {
    if capability == CAP_SETUID {
        "cap_setuid"
    } else {
        "cap_setgid"
    }
}

/// Whether `path` carries `capability` as a permitted and effective file capability
/// (the `security.capability` attribute, `struct vfs_cap_data` of <linux/capability.h>).
fn file_capability(path: &Path, capability: u32) -> bool {
    let mut buf = [0u8; 32];
    let Ok(len) = rustix::fs::getxattr(path, "security.capability", &mut buf) else {
        return false;
    };
    has_capability(&buf[..len], capability)
}

fn has_capability(data: &[u8], capability: u32) -> bool {
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 1;
    let word = |i: usize| {
        data.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (Some(magic), Some(permitted)) = (word(0), word(1)) else {
        return false;
    };
    magic & VFS_CAP_FLAGS_EFFECTIVE != 0 && permitted & (1 << capability) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::doctor::Status;

    fn range(start: u32, count: u32) -> Option<SubRange> {
        Some(SubRange { start, count })
    }

    #[test]
    fn subordinate_ids_are_ok_small_or_missing_each_with_its_fix() {
        let add = "sudo usermod --add-subuids 231072-296607 --add-subgids 231072-296607 ann";
        let ok = subids("ann", range(100000, 65536), range(100000, 65536), add);
        assert_eq!(ok.status, Status::Ok);
        assert!(
            ok.detail.contains("uids 100000-165535 (65536 ids)"),
            "{}",
            ok.detail
        );
        let small = subids("ann", range(100000, 1000), range(100000, 65536), add);
        assert_eq!(small.status, Status::Fail);
        assert!(
            small.detail.contains("/etc/subuid is 100000-100999"),
            "{}",
            small.detail
        );
        let fix = small.fix.unwrap();
        assert!(
            fix.contains("--del-subuids 100000-100999 --del-subgids 100000-165535 ann"),
            "{fix}"
        );
        assert!(fix.contains(add), "{fix}");
        let missing = subids("ann", None, range(100000, 65536), add);
        assert_eq!(missing.status, Status::Warn);
        assert!(
            missing
                .detail
                .starts_with("/etc/subuid has no subordinate ids for ann")
        );
        assert!(missing.fix.unwrap().contains(add));
    }

    #[test]
    fn file_capabilities_are_read_from_vfs_cap_data() {
        // VFS_CAP_REVISION_2 | effective, permitted = cap_setuid, inheritable = 0, ...
        let mut data = Vec::new();
        for word in [0x0200_0001u32, 1 << CAP_SETUID, 0, 0, 0] {
            data.extend(word.to_le_bytes());
        }
        assert!(has_capability(&data, CAP_SETUID));
        assert!(!has_capability(&data, CAP_SETGID));
        // Permitted but not effective: the kernel does not raise it at exec.
        data[0] = 0;
        assert!(!has_capability(&data, CAP_SETUID));
        assert!(!has_capability(&[1, 0], CAP_SETUID));
    }
}
