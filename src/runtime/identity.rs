//! Becoming another account of a box (`--user`): the one place where a join changes
//! its identity, used by `box enter/run --user`, provisioning and `box upgrade` (which run
//! the package manager through `box run --user root`).
//!
//! Runs in the joining process after `setns` into the box's user and mount namespaces:
//! setns(2) into a user namespace grants the full capability set *in that namespace*, so
//! the joiner may setgroups/setgid/setuid to any id the namespace maps, and keeps the
//! capabilities across execve(2) exactly when the target is uid 0 (capabilities(7):
//! a non-root uid loses them at execve). Nothing is granted that the user does not
//! already have on the host: the ids are the user's own subordinate ids.
//!
//! Invariants:
//! - the account comes from the box's own `/etc/passwd` (a name or a uid), its groups
//!   from the box's `/etc/group`; nothing of the host's is consulted;
//! - groups are set before the gid and the gid before the uid (dropping the uid first
//!   would drop CAP_SETGID with it);
//! - an id the box's user namespace does not map is a clear error, never a silent
//!   fallback to the caller's identity. uid 0 without subordinate ids (the single-id
//!   mapping) is box's fake root ([`crate::fakeroot`]: a nested user namespace mapping 0
//!   to the user, with a seccomp filter); [`root_unavailable`] is left for a mapping
//!   that is neither.

use anyhow::{Context as _, Result};

use crate::error::failure;

/// An account of a box's passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Find `user` (a name, or a uid) in a passwd text.
pub fn find_account(passwd: &str, user: &str) -> Option<Account> {
    let by_uid = user.parse::<u32>().ok();
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let uid = f[2].parse::<u32>().ok()?;
        let gid = f[3].parse::<u32>().ok()?;
        (f[0] == user || by_uid == Some(uid)).then(|| Account {
            name: f[0].to_owned(),
            uid,
            gid,
            home: f[5].to_owned(),
            shell: f[6].to_owned(),
        })
    })
}

/// The supplementary groups of `name` in a group text (primary `gid` first).
pub fn groups_of(group: &str, name: &str, gid: u32) -> Vec<u32> {
    let mut out = vec![gid];
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4
            && f[3].split(',').any(|m| m == name)
            && let Ok(id) = f[2].parse::<u32>()
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

/// Whether `id` is mapped by an id map text (`/proc/PID/uid_map` format).
pub fn is_mapped(map: &str, id: u32) -> bool {
    map.lines().any(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&u64::from(id))
    })
}

/// The error for root in box `name` when its user namespace maps neither uid 0 nor only
/// the user's own id (a mapping box does not make).
pub fn root_unavailable(name: &str) -> anyhow::Error {
    failure(
        format!(
            "root in box `{name}` is not available: the box's user namespace does not map uid 0"
        ),
        format!(
            "add a subordinate id range for your user to /etc/subuid and /etc/subgid (`{}`), then `box rm` and create the box again",
            crate::sys::idmap::add_subids_command("$USER")
        ),
    )
}

/// `--user` from inside a box: the process is already in the box's user namespace, as
/// the user, without the capabilities a join gets; becoming another account there is
/// sudo's job. Asks only when `user` was given (one getenv).
pub fn refuse_inside(user: Option<&str>, name: &str) -> Result<()> {
    match (user, crate::host::inside_box()) {
        (Some(user), Some(current)) => Err(failure(
            format!("--user {user} works from the host, not from inside box `{current}`"),
            format!(
                "inside the box use `sudo -u {user}` (or `sudo` for root); from the host, `box run {name} --user {user} -- CMD`"
            ),
        )),
        _ => Ok(()),
    }
}

/// Become `user` (a name or uid of the box's passwd) in the box this process joined.
/// Call after setns(user) and setns(mnt), before execve.
pub fn become_user(name: &str, user: &str) -> Result<Account> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .with_context(|| format!("reading /etc/passwd of box `{name}`"))?;
    let account = find_account(&passwd, user).ok_or_else(|| {
        failure(
            format!("no user `{user}` in box `{name}`"),
            format!(
                "give a user name or uid of the box's /etc/passwd (`box run {name} -- getent passwd` lists them), e.g. --user root"
            ),
        )
    })?;
    // Oneself: nothing to change (and with the single-id mapping setgroups is denied).
    if account.uid == rustix::process::getuid().as_raw()
        && account.gid == rustix::process::getgid().as_raw()
    {
        return Ok(account);
    }
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let gid_map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    if !is_mapped(&uid_map, account.uid) || !is_mapped(&gid_map, account.gid) {
        if account.uid == 0 && crate::fakeroot::maps_one_id() {
            // Without subordinate ids: box's fake root (a nested user namespace mapping 0
            // to the user, with the seccomp filter); every file stays the user's.
            crate::fakeroot::become_fake_root()
                .with_context(|| format!("becoming root in box `{name}`"))?;
            return Ok(account);
        }
        if account.uid == 0 {
            return Err(root_unavailable(name));
        }
        return Err(failure(
            format!(
                "user `{}` (uid {}, gid {}) of box `{name}` has no id on this host: the box maps only {}",
                account.name,
                account.uid,
                account.gid,
                uid_map
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            "give subordinate ids to your user (/etc/subuid, /etc/subgid) and create the box again",
        ));
    }
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let groups: Vec<rustix::process::Gid> = groups_of(&group, &account.name, account.gid)
        .into_iter()
        .filter(|g| is_mapped(&gid_map, *g))
        .map(rustix::process::Gid::from_raw)
        .collect();
    let what = |call: &str| format!("{call} for user `{}` in box `{name}`", account.name);
    // Groups first: dropping the uid first would drop CAP_SETGID with it.
    rustix::thread::set_thread_groups(&groups).with_context(|| what("setgroups"))?;
    let gid = rustix::process::Gid::from_raw(account.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).with_context(|| what("setresgid"))?;
    let uid = rustix::process::Uid::from_raw(account.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid).with_context(|| what("setresuid"))?;
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nalice:x:1000:1000:Alice:/home/alice:/bin/zsh\n";

    #[test]
    fn accounts_are_found_by_name_or_uid() {
        let root = find_account(PASSWD, "root").unwrap();
        assert_eq!((root.uid, root.home.as_str()), (0, "/root"));
        assert_eq!(find_account(PASSWD, "0").unwrap().name, "root");
        assert_eq!(find_account(PASSWD, "1000").unwrap().shell, "/bin/zsh");
        assert_eq!(find_account(PASSWD, "nobody"), None);
    }

    #[test]
    fn groups_and_maps() {
        let group = "root:x:0:\nsudo:x:27:alice,bob\nusers:x:100:bob\nalice:x:1000:\n";
        assert_eq!(groups_of(group, "alice", 1000), vec![1000, 27]);
        let keep_id = "         0     100000       1000\n      1000       1000          1\n      1001     101001      64535\n";
        assert!(is_mapped(keep_id, 0) && is_mapped(keep_id, 1000) && is_mapped(keep_id, 65535));
        assert!(!is_mapped(keep_id, 65536));
        let single = "      1000       1000          1\n";
        assert!(!is_mapped(single, 0) && is_mapped(single, 1000));
    }
}
