//! How host user and group ids map into a box's user namespace.
//!
//! Three layouts, chosen once per invocation by [`IdMapping::for_user`]:
//! - **keep-id** (the user has subordinate ids and `newuidmap`/`newgidmap` exist): inside,
//!   the user's uid U is U itself; 0..U-1 and U+1..65535 land on the subordinate range.
//!   The user is themself in the box, and `sudo` gives a root that can install packages.
//! - **single** (no subordinate ids): only U maps, to U. Files owned by anyone else in the
//!   image show as the user's; root inside is box's fake root (`runtime::fakeroot`). The
//!   reason is kept for the notice.
//! - **root** (box runs as root): the identity over the whole id space.
//!
//! The same mapping is used to unpack layers and to run boxes, so ownership, setuid bits
//! and whiteouts in the store are exactly what the image says. The store records the
//! mapping's [`IdMapping::fingerprint`] to detect a change of subordinate ids.
//!
//! **The store owner.** With keep-id, one subordinate id of each range is mapped by no
//! box: [`IdMapping::store_owner`]. The store's `layers/` directory belongs to it (mode
//! 0700), so that neither root in a box (no capability over an inode whose owner its user
//! namespace does not map) nor the user (not the owner) can reach a layer, by any path.
//! Only namespaces that also map it can: the store helper and a starting holder's outer
//! namespace ([`Reach::Store`]), where it is the inside id [`STORE_OWNER_INSIDE`]. A box
//! maps container ids 0..=65535 but its user's own onto the range, which leaves the
//! range's id after those free when the range has one more (65536 ids for a uid below
//! 65536, the usual size); when it has not, a box maps 0..=65534 only (65535 is no
//! distribution's user) and the range's last id is the store owner. A range smaller still
//! is an error that says what to give the user.
//!
//! Ranges are half-open throughout: a line `inside outside count` covers
//! `inside..inside+count`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::error::{HintExt, failure};

/// The number of ids a box needs inside: 0..=65535, the range every distribution's
/// packages assume (nobody is 65534).
pub const CONTAINER_IDS: u32 = 65536;

/// The inside id of the store owner in the namespaces that map it (see the module doc):
/// far above any id an image uses, and not `(uid_t)-1` or `-2` (`nfsnobody` of old
/// systems). Layer unpacking never gives a file this owner.
pub const STORE_OWNER_INSIDE: u32 = u32::MAX - 2;

/// Which ids a new user namespace maps (see [`IdMapping::apply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A box's ids.
    Box,
    /// A box's ids and the store owner, at [`STORE_OWNER_INSIDE`] (the store helper, a
    /// starting holder's outer namespace).
    Store,
}

/// The host ids that own the store's `layers/` directory with keep-id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOwner {
    pub uid: u32,
    pub gid: u32,
}

/// One line of `/proc/PID/uid_map`: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// A user's entry in `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdMapping {
    /// box runs as root: the identity mapping over all ids.
    Root,
    /// keep-id over the subordinate ranges.
    KeepId {
        uid: u32,
        gid: u32,
        subuid: SubRange,
        subgid: SubRange,
    },
    /// Only the user's own ids; `reason` says why (for the one-time notice).
    Single { uid: u32, gid: u32, reason: String },
}

impl IdMapping {
    /// Pick the mapping for the host user `name` (uid, gid) from `/etc/subuid`,
    /// `/etc/subgid` and the presence of `newuidmap`/`newgidmap`.
    pub fn for_user(uid: u32, gid: u32, name: &str) -> Result<IdMapping> {
        if uid == 0 {
            return Ok(IdMapping::Root);
        }
        let subuid = read_sub_range(Path::new("/etc/subuid"), name, uid)?;
        let subgid = read_sub_range(Path::new("/etc/subgid"), name, uid)?;
        let (subuid, subgid) = match (subuid, subgid) {
            (Some(u), Some(g)) => (u, g),
            (u, g) => {
                let missing = match (u, g) {
                    (None, None) => "/etc/subuid and /etc/subgid have",
                    (None, _) => "/etc/subuid has",
                    _ => "/etc/subgid has",
                };
                return Ok(IdMapping::Single {
                    uid,
                    gid,
                    reason: format!("{missing} no subordinate ids for {name}"),
                });
            }
        };
        for (own, range, file) in [(uid, subuid, "/etc/subuid"), (gid, subgid, "/etc/subgid")] {
            if keep_id_layout(own, range).is_none() {
                let need = smallest_range(own);
                return Err(failure(
                    format!(
                        "the subordinate range of {name} in {file} holds {} ids; box needs {need}: the ids of a box but {name}'s own, and one that owns the store's layers and that no box maps",
                        range.count
                    ),
                    format!(
                        "give {name} a range of 65536 ids instead: `sudo usermod --del-subuids {small} --del-subgids {small_g} {name}`, then `{}`; `box doctor` checks the result",
                        add_subids_command(name),
                        small = range_text(subuid),
                        small_g = range_text(subgid),
                    ),
                ));
            }
        }
        for helper in ["newuidmap", "newgidmap"] {
            if find_map_helper(helper).is_none() {
                return Ok(IdMapping::Single {
                    uid,
                    gid,
                    reason: helper_missing_reason(helper),
                });
            }
        }
        Ok(IdMapping::KeepId {
            uid,
            gid,
            subuid,
            subgid,
        })
    }

    /// Lines of the uid map.
    pub fn uid_map(&self) -> Vec<IdRange> {
        match self {
            IdMapping::Root => vec![full_identity()],
            IdMapping::KeepId { uid, subuid, .. } => keep_id_ranges_of(*uid, *subuid),
            IdMapping::Single { uid, .. } => vec![IdRange {
                inside: *uid,
                outside: *uid,
                count: 1,
            }],
        }
    }

    /// Lines of the gid map.
    pub fn gid_map(&self) -> Vec<IdRange> {
        match self {
            IdMapping::Root => vec![full_identity()],
            IdMapping::KeepId { gid, subgid, .. } => keep_id_ranges_of(*gid, *subgid),
            IdMapping::Single { gid, .. } => vec![IdRange {
                inside: *gid,
                outside: *gid,
                count: 1,
            }],
        }
    }

    /// Whether uid 0 exists inside (so helpers can become root in the namespace).
    pub fn has_root(&self) -> bool {
        !matches!(self, IdMapping::Single { .. })
    }

    /// Whether `uid` and `gid` (ids inside the box) have a mapping.
    pub fn maps(&self, uid: u32, gid: u32) -> bool {
        let has = |ranges: Vec<IdRange>, id: u32| {
            ranges
                .iter()
                .any(|r| id >= r.inside && (id - r.inside) < r.count)
        };
        has(self.uid_map(), uid) && has(self.gid_map(), gid)
    }

    /// A stable text that changes whenever the mapping does (recorded in the store).
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.uid_map(), &self.gid_map())
    }

    /// The host ids that own the store's `layers/` (see the module doc): keep-id only.
    /// Without subordinate ids every box runs as the user, who owns the whole store; as
    /// root, boxes map every id.
    pub fn store_owner(&self) -> Option<StoreOwner> {
        let IdMapping::KeepId {
            uid,
            gid,
            subuid,
            subgid,
        } = self
        else {
            return None;
        };
        if *uid == STORE_OWNER_INSIDE || *gid == STORE_OWNER_INSIDE {
            // The one place the inside id could clash: such a user keeps an unguarded
            // store rather than a wrong mapping.
            return None;
        }
        Some(StoreOwner {
            uid: keep_id_layout(*uid, *subuid)?.owner,
            gid: keep_id_layout(*gid, *subgid)?.owner,
        })
    }

    /// The fingerprint box recorded for this mapping before it kept a store owner, when
    /// it differs from [`IdMapping::fingerprint`]: a range with no id to spare then
    /// mapped container id 65535 too. Such a store is the same store (every id a box maps
    /// now lands where it did); files of 65535, if any, now show as nobody's.
    pub fn fingerprint_before_store_owner(&self) -> Option<String> {
        let IdMapping::KeepId {
            uid,
            gid,
            subuid,
            subgid,
        } = self
        else {
            return None;
        };
        let old = fingerprint_of(
            &keep_id_ranges(*uid, *subuid, CONTAINER_IDS),
            &keep_id_ranges(*gid, *subgid, CONTAINER_IDS),
        );
        (old != self.fingerprint()).then_some(old)
    }

    /// Write this mapping for the process `pid`, which has just unshared its user
    /// namespace; with [`Reach::Store`], the store owner too (keep-id only: other
    /// layouts have none). keep-id goes through the setuid helpers; the other layouts are
    /// written directly, which the kernel allows for a namespace's owner
    /// (user_namespaces(7)).
    pub fn apply(&self, pid: u32, reach: Reach) -> Result<()> {
        match self {
            IdMapping::KeepId { .. } => {
                let owner = self.store_owner().filter(|_| reach == Reach::Store);
                let with = |mut ranges: Vec<IdRange>, id: Option<u32>| {
                    ranges.extend(id.map(|outside| IdRange {
                        inside: STORE_OWNER_INSIDE,
                        outside,
                        count: 1,
                    }));
                    ranges
                };
                run_map_helper(
                    "newuidmap",
                    pid,
                    &with(self.uid_map(), owner.map(|o| o.uid)),
                )?;
                run_map_helper(
                    "newgidmap",
                    pid,
                    &with(self.gid_map(), owner.map(|o| o.gid)),
                )?;
            }
            IdMapping::Single { .. } => {
                // gid_map may only be written by an unprivileged owner once setgroups is
                // denied (CVE-2014-8989).
                write_proc(pid, "setgroups", "deny\n")?;
                write_proc(pid, "uid_map", &map_text(&self.uid_map()))?;
                write_proc(pid, "gid_map", &map_text(&self.gid_map()))?;
            }
            IdMapping::Root => {
                write_proc(pid, "uid_map", &map_text(&self.uid_map()))?;
                write_proc(pid, "gid_map", &map_text(&self.gid_map()))?;
            }
        }
        Ok(())
    }
}

/// `uid=I:O:C,...;gid=...`: what [`IdMapping::fingerprint`] records.
fn fingerprint_of(uid: &[IdRange], gid: &[IdRange]) -> String {
    let fmt = |ranges: &[IdRange]| {
        ranges
            .iter()
            .map(|r| format!("{}:{}:{}", r.inside, r.outside, r.count))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!("uid={};gid={}", fmt(uid), fmt(gid))
}

fn full_identity() -> IdRange {
    IdRange {
        inside: 0,
        outside: 0,
        count: u32::MAX,
    }
}

/// How keep-id lays out one range: the lines of the map, and the store owner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    ranges: Vec<IdRange>,
    /// The host id of the range that no box maps (see the module doc).
    owner: u32,
}

/// How many container ids of `0..top` other than `own` a box maps onto the range.
fn others(own: u32, top: u32) -> u32 {
    if own < top { top - 1 } else { top }
}

/// keep-id for the user's id `own` and its subordinate range `sub`: container ids
/// 0..=65535 when the range has an id to spare after them, else 0..=65534 with the
/// range's last id spare; `None` when the range is smaller still.
fn keep_id_layout(own: u32, sub: SubRange) -> Option<Layout> {
    let full = others(own, CONTAINER_IDS);
    let top = if sub.count > full {
        CONTAINER_IDS
    } else if sub.count == full && own != CONTAINER_IDS - 1 {
        CONTAINER_IDS - 1
    } else {
        return None;
    };
    Some(Layout {
        ranges: keep_id_ranges(own, sub, top),
        // (uid_t)-1 is no id at all (chown(2) takes it as "leave unchanged").
        owner: sub
            .start
            .checked_add(others(own, top))
            .filter(|&id| id != u32::MAX)?,
    })
}

/// The fewest subordinate ids [`keep_id_layout`] accepts for `own`.
fn smallest_range(own: u32) -> u32 {
    let full = others(own, CONTAINER_IDS);
    if own == CONTAINER_IDS - 1 {
        full + 1
    } else {
        full
    }
}

/// The map lines of keep-id for `id` over `sub` ([`keep_id_layout`]; a range it refuses,
/// which [`IdMapping::for_user`] never lets through, gets the full layout).
fn keep_id_ranges_of(id: u32, sub: SubRange) -> Vec<IdRange> {
    keep_id_layout(id, sub)
        .map(|layout| layout.ranges)
        .unwrap_or_else(|| keep_id_ranges(id, sub, CONTAINER_IDS))
}

/// keep-id: `id` maps to itself, every other id of 0..top onto the range.
fn keep_id_ranges(id: u32, sub: SubRange, top: u32) -> Vec<IdRange> {
    let mut ranges = Vec::with_capacity(3);
    if id < top {
        if id > 0 {
            ranges.push(IdRange {
                inside: 0,
                outside: sub.start,
                count: id,
            });
        }
        ranges.push(IdRange {
            inside: id,
            outside: id,
            count: 1,
        });
        let above = top - 1 - id;
        if above > 0 {
            ranges.push(IdRange {
                inside: id + 1,
                outside: sub.start + id,
                count: above,
            });
        }
    } else {
        ranges.push(IdRange {
            inside: 0,
            outside: sub.start,
            count: top,
        });
        ranges.push(IdRange {
            inside: id,
            outside: id,
            count: 1,
        });
    }
    ranges
}

/// Whether this process's user namespace maps the store owner ([`Reach::Store`]): the
/// store helper and a holder read it from their own maps, so nothing has to tell them.
pub fn store_owner_mapped() -> Result<bool> {
    let mapped = |file: &str| -> Result<bool> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        Ok(inside_ids(&text).any(|(inside, _)| inside == STORE_OWNER_INSIDE))
    };
    Ok(mapped("/proc/self/uid_map")? && mapped("/proc/self/gid_map")?)
}

/// The `(inside, count)` of each line of a `/proc/PID/uid_map` text.
pub fn inside_ids(text: &str) -> impl Iterator<Item = (u32, u32)> + '_ {
    text.lines().filter_map(|line| {
        let mut fields = line.split_whitespace().map(str::parse::<u32>);
        let inside = fields.next()?.ok()?;
        let _outside = fields.next()?.ok()?;
        let count = fields.next()?.ok()?;
        Some((inside, count))
    })
}

fn map_text(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

fn write_proc(pid: u32, file: &str, text: &str) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, text).with_context(|| format!("writing {path}"))
}

fn run_map_helper(helper: &str, pid: u32, ranges: &[IdRange]) -> Result<()> {
    let program = find_map_helper(helper)
        .with_context(|| helper_missing_reason(helper))
        .hint("install the uidmap package (`sudo apt install uidmap`)")?;
    let mut cmd = Command::new(&program);
    cmd.arg(pid.to_string());
    for r in ranges {
        cmd.args([
            r.inside.to_string(),
            r.outside.to_string(),
            r.count.to_string(),
        ]);
    }
    let output = cmd
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(failure(
            format!(
                "{} {pid} {} failed ({}): {}",
                program.display(),
                map_text(ranges).trim().replace('\n', " "),
                output.status,
                stderr.trim()
            ),
            "check that /etc/subuid and /etc/subgid give your user a range and that newuidmap/newgidmap are setuid root (or have file capabilities); `box doctor` checks both and says how to fix them",
        ));
    }
    Ok(())
}

/// Where `newuidmap`/`newgidmap` are looked for when `$PATH` lacks them. box is also
/// started with a bare environment (systemd units, cron, desktop launchers, `env -i`);
/// choosing the single-id mapping there would give a mapping that does not match the
/// store's, although nothing on the machine changed.
const HELPER_DIRS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"];

/// Find the setuid helper `name` (`newuidmap`, `newgidmap`): in `$PATH` first, so an
/// installation elsewhere (/usr/local, nix) is honoured, then in [`HELPER_DIRS`].
pub fn find_map_helper(name: &str) -> Option<PathBuf> {
    find_helper_in(super::env::os("PATH").as_deref(), name)
}

fn find_helper_in(path: Option<&std::ffi::OsStr>, name: &str) -> Option<PathBuf> {
    path.into_iter()
        .flat_map(std::env::split_paths)
        .chain(HELPER_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn helper_missing_reason(helper: &str) -> String {
    format!(
        "{helper} was found neither in $PATH nor in {} (it is in the uidmap package: `sudo apt install uidmap`, `sudo dnf install shadow-utils`)",
        HELPER_DIRS.join(", ")
    )
}

/// Find `name` in `$PATH` (what `execvp` would run).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = super::env::os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a store's recorded mapping and the current one look like, for explaining a
/// change (see [`explain_change`]).
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    /// The identity over all ids (box as root).
    Root,
    /// Only `id` mapped, to itself.
    Single { id: u32 },
    /// keep-id: `id` on itself, the rest on the subordinate range from `sub_start`.
    KeepId { id: u32, sub_start: u32 },
    /// Anything else (a fingerprint box did not write).
    Other,
}

fn shape(ranges: &[IdRange]) -> Shape {
    if ranges == [full_identity()] {
        return Shape::Root;
    }
    if let [only] = ranges
        && only.count == 1
        && only.inside == only.outside
    {
        return Shape::Single { id: only.inside };
    }
    let own = ranges
        .iter()
        .find(|r| r.count == 1 && r.inside == r.outside && r.inside != 0);
    let sub = ranges.iter().find(|r| r.inside == 0);
    match (own, sub) {
        (Some(own), Some(sub)) => Shape::KeepId {
            id: own.inside,
            sub_start: sub.outside,
        },
        _ => Shape::Other,
    }
}

/// Parse one side of a [`IdMapping::fingerprint`] (`inside:outside:count,...`).
fn parse_ranges(text: &str) -> Option<Vec<IdRange>> {
    text.split(',')
        .map(|r| {
            let mut f = r.split(':').map(str::parse::<u32>);
            let range = IdRange {
                inside: f.next()?.ok()?,
                outside: f.next()?.ok()?,
                count: f.next()?.ok()?,
            };
            f.next().is_none().then_some(range)
        })
        .collect()
}

/// Why the store's layers, unpacked with the mapping whose fingerprint is `recorded`,
/// cannot be used with `current`: `(what changed, what to do)`.
///
/// Deleting the boxes and images is recommended only when the subordinate ids (or the
/// user's own ids) really changed; a helper that cannot be found is fixed by finding it
/// again, with nothing lost.
pub fn explain_change(recorded: &str, current: &IdMapping) -> (String, String) {
    const START_AGAIN: &str =
        "remove the boxes and images (`box rm --all`, then `box rmi` each image) and pull again";
    let recorded_maps = recorded.trim().split_once(';').and_then(|(u, g)| {
        Some((
            parse_ranges(u.strip_prefix("uid=")?)?,
            parse_ranges(g.strip_prefix("gid=")?)?,
        ))
    });
    let Some((old_uid, old_gid)) = recorded_maps else {
        return (
            format!(
                "the recorded mapping `{}` is not one box writes",
                recorded.trim()
            ),
            format!("if the store was copied from elsewhere, {START_AGAIN}"),
        );
    };
    if let IdMapping::Single { reason, .. } = current
        && !matches!(shape(&old_uid), Shape::Single { .. })
    {
        // Both reasons for Single come from this module: a helper not found, or no
        // subordinate ids in /etc/subuid or /etc/subgid.
        return if reason.contains("newuidmap") || reason.contains("newgidmap") {
            (
                format!("box maps only your own id now, because {reason}"),
                "nothing in the store needs to change: install newuidmap/newgidmap again (or put their directory in PATH) and the boxes and images work as before".to_owned(),
            )
        } else {
            // The ranges the store was unpacked with are in its record: give those back.
            let had = match (shape(&old_uid), shape(&old_gid)) {
                (Shape::KeepId { sub_start: u, .. }, Shape::KeepId { sub_start: g, .. }) => {
                    let full = |start| SubRange {
                        start,
                        count: CONTAINER_IDS,
                    };
                    format!(
                        "`sudo usermod --add-subuids {} --add-subgids {} $USER`",
                        range_text(full(u)),
                        range_text(full(g))
                    )
                }
                _ => "`sudo usermod --add-subuids FIRST-LAST --add-subgids FIRST-LAST $USER`, with the ranges you had".to_owned(),
            };
            (
                format!("box maps only your own id now, because {reason}"),
                format!(
                    "put your subordinate ids back in /etc/subuid and /etc/subgid ({had}), or, if they were removed on purpose, {START_AGAIN}"
                ),
            )
        };
    }
    let mut changes = Vec::new();
    let mut ids_changed = false;
    let mut gained = false;
    for (what, file, old, new) in [
        ("uid", "/etc/subuid", &old_uid, current.uid_map()),
        ("gid", "/etc/subgid", &old_gid, current.gid_map()),
    ] {
        if *old == new {
            continue;
        }
        ids_changed = true;
        changes.push(match (shape(old), shape(&new)) {
            (Shape::KeepId { id: a, .. }, Shape::KeepId { id: b, .. }) if a != b => {
                format!("your {what} changed from {a} to {b}")
            }
            (Shape::KeepId { sub_start: a, .. }, Shape::KeepId { sub_start: b, .. }) => {
                format!("your subordinate {what}s in {file} start at {b} now, not at {a}")
            }
            (Shape::Single { .. }, Shape::KeepId { .. }) => {
                gained = true;
                format!(
                    "the store was unpacked mapping only your own {what} (no subordinate ids or no newuidmap then), and your subordinate {what}s are mapped now"
                )
            }
            _ => format!("the {what} map differs"),
        });
    }
    if !ids_changed {
        return (
            "the recorded mapping is written differently".to_owned(),
            START_AGAIN.to_owned(),
        );
    }
    let hint = if gained {
        format!(
            "{START_AGAIN}, so that the images' files get their real owners and sudo works in the boxes"
        )
    } else {
        format!("restore the ids the store was unpacked with, or {START_AGAIN}")
    };
    (changes.join("; "), hint)
}

/// Where subordinate ranges start, and where they must end, as shadow's `useradd`
/// allocates them (`SUB_UID_MIN`, `SUB_UID_MAX` in login.defs(5)).
const SUB_ID_MIN: u32 = 100_000;
const SUB_ID_MAX: u32 = 600_100_000;

/// `FIRST-LAST` of a range, as usermod(8) takes it.
pub fn range_text(range: SubRange) -> String {
    format!(
        "{}-{}",
        range.start,
        range.start.saturating_add(range.count.saturating_sub(1))
    )
}

/// The command that gives `name` a subordinate range no other user's overlaps (see
/// [`free_range`]), for hints and `box doctor`. A fixed range would overlap another
/// user's on a machine with several, and users whose ranges overlap can reach each
/// other's box files.
pub fn add_subids_command(name: &str) -> String {
    let range = range_text(free_range());
    format!("sudo usermod --add-subuids {range} --add-subgids {range} {name}")
}

/// A range of [`CONTAINER_IDS`] ids that no line of `/etc/subuid` or `/etc/subgid`
/// overlaps (one range for both, so a box's uids and gids line up); unreadable files
/// count as empty.
pub fn free_range() -> SubRange {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    free_range_in(&[&read("/etc/subuid"), &read("/etc/subgid")])
}

/// [`free_range`] over the texts of the files: the lowest start at or above
/// [`SUB_ID_MIN`] (it, or the end of a taken range) whose [`CONTAINER_IDS`] ids overlap
/// no taken range, as `useradd` picks one.
fn free_range_in(files: &[&str]) -> SubRange {
    let taken: Vec<(u64, u64)> = files
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|line| {
            let mut fields = line.trim().split(':').skip(1);
            let start: u64 = fields.next()?.parse().ok()?;
            let count: u64 = fields.next()?.parse().ok()?;
            Some((start, start + count))
        })
        .collect();
    let count = u64::from(CONTAINER_IDS);
    let mut starts: Vec<u64> = std::iter::once(u64::from(SUB_ID_MIN))
        .chain(taken.iter().map(|&(_, end)| end))
        .filter(|&start| start >= u64::from(SUB_ID_MIN))
        .collect();
    starts.sort_unstable();
    let start = starts
        .into_iter()
        .find(|&start| {
            start + count <= u64::from(SUB_ID_MAX)
                && taken.iter().all(|&(a, b)| b <= start || start + count <= a)
        })
        // Every range up to SUB_ID_MAX is taken: past the highest end, as far as ids go.
        .or_else(|| {
            let end = taken.iter().map(|&(_, end)| end).max()?;
            (end + count <= u64::from(u32::MAX)).then_some(end)
        })
        .unwrap_or(u64::from(SUB_ID_MIN));
    SubRange {
        start: u32::try_from(start).unwrap_or(SUB_ID_MIN),
        count: CONTAINER_IDS,
    }
}

/// The user's ranges in `/etc/subuid` and `/etc/subgid` (see [`read_sub_range`]).
pub fn sub_ranges(name: &str, uid: u32) -> Result<(Option<SubRange>, Option<SubRange>)> {
    Ok((
        read_sub_range(Path::new("/etc/subuid"), name, uid)?,
        read_sub_range(Path::new("/etc/subgid"), name, uid)?,
    ))
}

/// The first range of at least [`CONTAINER_IDS`]-1 ids for the user (by name or uid),
/// else the largest one, else `None`.
fn read_sub_range(file: &Path, name: &str, uid: u32) -> Result<Option<SubRange>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
    };
    Ok(parse_sub_ranges(&text, name, uid))
}

fn parse_sub_ranges(text: &str, name: &str, uid: u32) -> Option<SubRange> {
    let uid_text = uid.to_string();
    let ranges: Vec<SubRange> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let owner = fields.next()?;
            if owner != name && owner != uid_text {
                return None;
            }
            let start = fields.next()?.parse().ok()?;
            let count = fields.next()?.parse().ok()?;
            Some(SubRange { start, count })
        })
        .collect();
    ranges
        .iter()
        .find(|r| r.count >= CONTAINER_IDS - 1)
        .or_else(|| ranges.iter().max_by_key(|r| r.count))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_id_puts_the_user_on_itself_and_the_rest_on_the_range() {
        let ranges = keep_id_ranges_of(
            1000,
            SubRange {
                start: 100000,
                count: 65536,
            },
        );
        assert_eq!(
            ranges,
            vec![
                IdRange {
                    inside: 0,
                    outside: 100000,
                    count: 1000
                },
                IdRange {
                    inside: 1000,
                    outside: 1000,
                    count: 1
                },
                IdRange {
                    inside: 1001,
                    outside: 101000,
                    count: 64535
                },
            ]
        );
        let total: u32 = ranges.iter().map(|r| r.count).sum();
        assert_eq!(total, CONTAINER_IDS);
    }

    #[test]
    fn keep_id_for_a_high_uid_maps_it_beside_the_range() {
        let ranges = keep_id_ranges(
            70000,
            SubRange {
                start: 200000,
                count: 65536,
            },
            CONTAINER_IDS,
        );
        assert_eq!(
            ranges[0],
            IdRange {
                inside: 0,
                outside: 200000,
                count: 65536
            }
        );
        assert_eq!(
            ranges[1],
            IdRange {
                inside: 70000,
                outside: 70000,
                count: 1
            }
        );
    }

    /// The ids of `ranges` on the host side, each once.
    fn outside_ids(ranges: &[IdRange]) -> std::collections::BTreeSet<u32> {
        ranges
            .iter()
            .flat_map(|r| r.outside..r.outside + r.count)
            .collect()
    }

    #[test]
    fn the_store_owner_is_the_id_of_the_range_no_box_maps() {
        let range = SubRange {
            start: 100000,
            count: 65536,
        };
        // A uid below 65536: a box maps 65535 ids of the range, the range's last is spare.
        let layout = keep_id_layout(1000, range).unwrap();
        assert_eq!(layout.owner, 165535);
        assert_eq!(layout.ranges, keep_id_ranges(1000, range, CONTAINER_IDS));
        let used = outside_ids(&layout.ranges);
        assert!(!used.contains(&layout.owner));
        assert_eq!(used.len(), 65536, "65535 of the range and the user's own");
        assert!(
            used.iter()
                .all(|&id| id == 1000 || (100000..165535).contains(&id))
        );
        // A bigger range: the id right after what boxes map.
        let big = SubRange {
            start: 100000,
            count: 200000,
        };
        assert_eq!(keep_id_layout(1000, big).unwrap().owner, 165535);
        assert_eq!(keep_id_layout(70000, big).unwrap().owner, 165536);
        let mapping = IdMapping::KeepId {
            uid: 1000,
            gid: 1000,
            subuid: range,
            subgid: SubRange {
                start: 300000,
                count: 65536,
            },
        };
        assert_eq!(
            mapping.store_owner(),
            Some(StoreOwner {
                uid: 165535,
                gid: 365535
            })
        );
        assert_eq!(mapping.fingerprint_before_store_owner(), None);
        assert_eq!(IdMapping::Root.store_owner(), None);
        let single = IdMapping::Single {
            uid: 1000,
            gid: 1000,
            reason: String::new(),
        };
        assert_eq!(single.store_owner(), None);
    }

    #[test]
    fn a_range_with_no_id_to_spare_gives_its_last_and_maps_one_id_fewer() {
        // A uid of 65536 or more takes no id out of 0..=65535: 65536 ids of the range
        // would be used, so container id 65535 goes unmapped and the last id owns the store.
        let range = SubRange {
            start: 200000,
            count: 65536,
        };
        let layout = keep_id_layout(70000, range).unwrap();
        assert_eq!(layout.owner, 265535);
        assert_eq!(
            layout.ranges,
            vec![
                IdRange {
                    inside: 0,
                    outside: 200000,
                    count: 65535
                },
                IdRange {
                    inside: 70000,
                    outside: 70000,
                    count: 1
                },
            ]
        );
        assert!(!outside_ids(&layout.ranges).contains(&layout.owner));
        // The same for a range of exactly 65535 ids and a uid below 65535.
        let small = SubRange {
            start: 100000,
            count: 65535,
        };
        let layout = keep_id_layout(1000, small).unwrap();
        assert_eq!(layout.owner, 165534);
        assert_eq!(outside_ids(&layout.ranges).len(), 65534 + 1);
        assert!(!outside_ids(&layout.ranges).contains(&165534));
        assert!(
            layout
                .ranges
                .iter()
                .all(|r| r.inside + r.count < CONTAINER_IDS || r.inside == 1000)
        );
        // Stores unpacked before kept the full layout: its fingerprint is recognized.
        let mapping = IdMapping::KeepId {
            uid: 70000,
            gid: 70000,
            subuid: range,
            subgid: range,
        };
        let before = mapping.fingerprint_before_store_owner().unwrap();
        assert!(
            before.starts_with("uid=0:200000:65536,70000:70000:1;"),
            "{before}"
        );
        assert_ne!(before, mapping.fingerprint());
    }

    #[test]
    fn a_range_too_small_for_a_box_and_the_store_owner_is_refused() {
        let range = |count| SubRange {
            start: 100000,
            count,
        };
        assert_eq!(keep_id_layout(1000, range(65534)), None);
        assert_eq!(smallest_range(1000), 65535);
        assert_eq!(keep_id_layout(70000, range(65535)), None);
        assert_eq!(smallest_range(70000), 65536);
        // uid 65535 is the one container id that cannot be left out: it is the user.
        assert_eq!(keep_id_layout(65535, range(65535)), None);
        assert_eq!(smallest_range(65535), 65536);
        assert_eq!(keep_id_layout(65535, range(65536)).unwrap().owner, 165535);
        // A range at the very top of the id space has no room past its end.
        assert_eq!(
            keep_id_layout(
                1000,
                SubRange {
                    start: u32::MAX - 65535,
                    count: 65536
                }
            )
            .map(|l| l.owner),
            None
        );
    }

    #[test]
    fn subuid_lines_match_by_name_or_uid_and_prefer_a_big_range() {
        let text = "alice:100000:65536\nbob:165536:1000\n1002:300000:65536\nbob:400000:65536\n";
        assert_eq!(
            parse_sub_ranges(text, "alice", 1000),
            Some(SubRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            parse_sub_ranges(text, "bob", 1001),
            Some(SubRange {
                start: 400000,
                count: 65536
            })
        );
        assert_eq!(
            parse_sub_ranges(text, "carol", 1002),
            Some(SubRange {
                start: 300000,
                count: 65536
            })
        );
        assert_eq!(parse_sub_ranges(text, "dave", 1003), None);
    }

    #[test]
    fn a_free_range_overlaps_no_other_users_in_either_file() {
        let r = |start| SubRange {
            start,
            count: CONTAINER_IDS,
        };
        assert_eq!(free_range_in(&["", ""]), r(100000));
        let subuid = "alice:100000:65536\nbob:165536:65536\n";
        let subgid = "alice:100000:65536\ncarol:231072:1000\n";
        // 231072 is bob's end in subuid but carol's start in subgid: past both.
        assert_eq!(free_range_in(&[subuid, subgid]), r(232072));
        // A gap big enough between two ranges is used.
        assert_eq!(
            free_range_in(&["a:100000:65536\nb:300000:65536\n"]),
            r(165536)
        );
        // Ranges below the minimum do not matter; a range straddling it does.
        assert_eq!(free_range_in(&["a:1000:500\n"]), r(100000));
        assert_eq!(free_range_in(&["a:99000:2000\n"]), r(101000));
        // Malformed lines are skipped, not fatal.
        assert_eq!(free_range_in(&["# comment\nx:y:z\n"]), r(100000));
        assert_eq!(range_text(r(100000)), "100000-165535");
    }

    #[test]
    fn the_restore_hint_gives_back_the_recorded_ranges() {
        let recorded = keep_id(300000).fingerprint();
        let now = IdMapping::Single {
            uid: 1004,
            gid: 1004,
            reason: "/etc/subuid has no subordinate ids for alice".into(),
        };
        let (_, hint) = explain_change(&recorded, &now);
        assert!(
            hint.contains("--add-subuids 300000-365535 --add-subgids 100000-165535"),
            "{hint}"
        );
    }

    #[test]
    fn single_maps_only_the_user() {
        let m = IdMapping::Single {
            uid: 1000,
            gid: 1000,
            reason: String::new(),
        };
        assert!(m.maps(1000, 1000));
        assert!(!m.maps(0, 0));
        assert!(!m.has_root());
        assert!(IdMapping::Root.maps(12345, 0));
    }

    fn keep_id(start: u32) -> IdMapping {
        IdMapping::KeepId {
            uid: 1004,
            gid: 1004,
            subuid: SubRange {
                start,
                count: 65536,
            },
            subgid: SubRange {
                start: 100000,
                count: 65536,
            },
        }
    }

    #[test]
    fn a_missing_newuidmap_is_explained_without_asking_to_delete_anything() {
        let recorded = keep_id(100000).fingerprint();
        let now = IdMapping::Single {
            uid: 1004,
            gid: 1004,
            reason: helper_missing_reason("newuidmap"),
        };
        let (why, hint) = explain_change(&recorded, &now);
        assert!(why.contains("only your own id"), "{why}");
        assert!(
            why.contains("newuidmap was found neither in $PATH nor in /usr/bin"),
            "{why}"
        );
        assert!(!hint.contains("rm"), "{hint}");
        assert!(
            hint.contains("nothing in the store needs to change"),
            "{hint}"
        );
    }

    #[test]
    fn removed_subordinate_ids_are_named_and_deletion_is_the_last_resort() {
        let recorded = keep_id(100000).fingerprint();
        let now = IdMapping::Single {
            uid: 1004,
            gid: 1004,
            reason: "/etc/subuid has no subordinate ids for alice".into(),
        };
        let (why, hint) = explain_change(&recorded, &now);
        assert!(why.contains("/etc/subuid has no subordinate ids"), "{why}");
        assert!(hint.starts_with("put your subordinate ids back"), "{hint}");
        assert!(hint.contains("box rm --all"), "{hint}");
    }

    #[test]
    fn a_moved_subordinate_range_names_the_part_and_both_starts() {
        let (why, hint) = explain_change(&keep_id(100000).fingerprint(), &keep_id(200000));
        assert_eq!(
            why,
            "your subordinate uids in /etc/subuid start at 200000 now, not at 100000"
        );
        assert!(hint.contains("box rm --all"), "{hint}");
        let single = IdMapping::Single {
            uid: 1004,
            gid: 1004,
            reason: String::new(),
        };
        let (why, hint) = explain_change(&single.fingerprint(), &keep_id(100000));
        assert!(why.contains("only your own uid"), "{why}");
        assert!(why.contains("only your own gid"), "{why}");
        assert!(hint.starts_with("remove the boxes and images"), "{hint}");
        let (why, _) = explain_change("garbage", &keep_id(100000));
        assert!(why.contains("`garbage`"), "{why}");
    }

    #[test]
    fn map_helpers_are_found_without_path() {
        let found = find_helper_in(None, "newuidmap").unwrap_or_else(|| {
            panic!(
                "newuidmap is not installed in {}: this test needs it (tests/run installs \
                 it; on Debian `apt install uidmap`)",
                HELPER_DIRS.join(", ")
            )
        });
        assert!(
            HELPER_DIRS.iter().any(|d| found.starts_with(d)),
            "{found:?}"
        );
        let elsewhere = find_helper_in(Some("/nonexistent:/proc".as_ref()), "newgidmap");
        assert!(elsewhere.is_some());
        assert_eq!(find_helper_in(None, "no-such-helper"), None);
    }
}
