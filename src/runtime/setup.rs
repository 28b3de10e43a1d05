//! First-start user setup inside a box: the host user in passwd/group/shadow/gshadow,
//! passwordless sudo, the host's timezone name and locale settings, and the prompt mark
//! that tells a shell in the box from one on the host ([`PROMPT_FILE`]). Runs in the
//! holder after the pivot (the host's root at /run/host), as root inside when there is
//! one.
//!
//! Invariants:
//! - every file is read and written through [`BoxFs`] (see [`crate::sys::boxfs`]): a
//!   symlink of the image (`/etc/sudoers.d -> /home/alice`, `/etc/passwd.box-new ->
//!   ~/.bashrc`) never leads box's writes out of the box's own files; a path that would
//!   is an error, and the setup stops there with a warning naming it (the start goes on);
//!   files are replaced whole by a rename, keeping the mode and owner of the file they
//!   replace;
//! - an image's existing user or group with the host user's uid/gid (ubuntu:24.04 has
//!   `ubuntu` 1000) is renamed and modified, never duplicated; an entry with the user's
//!   name but another id is dropped, so names and ids stay unique;
//! - `/etc/box/setup.json` records who was set up, with which home, by which version of
//!   the setup; later starts of the box skip the setup while it names the same user, uid,
//!   gid and home (`box edit --home` changes the home: the next start sets the user up
//!   again) and the current version (a box set up before the prompt mark existed gets it
//!   at its next start). It describes the box's own files (a copy of the box, `box
//!   commit`, keeps it with them), and an image that ships one only keeps box from
//!   editing that image's own files;
//! - without root inside (no subordinate ids) only what the user can write is done
//!   (the passwd and group entries, so `id -un` works); sudoers is skipped: `sudo` in
//!   such a box is box's stand-in, which needs none (see [`crate::fakeroot::sudo`]).

use std::path::Path;

use anyhow::Result;

use super::plan::UserSpec;
use crate::sys::boxfs::BoxFs;

/// Where the marker of a finished setup lives inside the box.
pub const MARKER: &str = "/etc/box/setup.json";

/// What the setup does, by version: 1 added the home to the marker and the prompt mark.
/// A marker of an older version is a setup to run again.
const VERSION: u32 = 1;

#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct Marker {
    user: String,
    uid: u32,
    gid: u32,
    #[serde(default)]
    home: Option<std::path::PathBuf>,
    #[serde(default)]
    version: u32,
}

impl Marker {
    fn of(user: &UserSpec) -> Marker {
        Marker {
            user: user.name.clone(),
            uid: user.uid,
            gid: user.gid,
            home: Some(user.home.clone()),
            version: VERSION,
        }
    }
}

/// The script that marks interactive shells' prompts in a box, for the shells that read
/// `/etc/profile.d` (bash and sh login shells; zsh where its system profile reads it:
/// Fedora, Arch, openSUSE). Written only where the image has that directory.
pub const PROMPT_FILE: &str = "/etc/profile.d/box-prompt.sh";

/// [`PROMPT_FILE`]'s text. The mark, `📦[NAME] `, is put in front of whatever prompt the
/// shell ends up with, so a prompt the user's own `~/.bashrc` or `~/.zshrc` sets (read
/// after this file) keeps its look with the mark before it: bash through
/// `PROMPT_COMMAND`, zsh through `precmd_functions`, each run before every prompt. The
/// name is `CONTAINER_ID` (box sets it in every session), else the box's
/// `/run/.containerenv` (a `sudo -i` shell has a clean environment). Plain sh, so every
/// shell that sources it parses it; zsh's words go through `eval`.
pub const PROMPT_SCRIPT: &str = r#"# Written by box when it set you up in this box: marks the prompt of interactive shells
# with the box's name, so that a shell in a box does not look like one on the host.
# Without the mark: BOX_PROMPT=off in your ~/.bashrc or ~/.zshrc.
case $- in
*i*)
    __box_name=${CONTAINER_ID:-}
    if [ -z "$__box_name" ] && [ -r /run/.containerenv ]; then
        while IFS='=' read -r __box_key __box_value; do
            if [ "$__box_key" = name ]; then
                __box_value=${__box_value#\"}
                __box_name=${__box_value%\"}
            fi
        done < /run/.containerenv
        unset __box_key __box_value
    fi
    if [ -n "$__box_name" ]; then
        # Run before every prompt: the prompt ~/.bashrc or ~/.zshrc set is marked too.
        __box_prompt() {
            if [ "${BOX_PROMPT:-}" = off ]; then
                PS1=${PS1#"📦[$__box_name] "}
                return 0
            fi
            case "$PS1" in
            "📦[$__box_name] "*) ;;
            *) PS1="📦[$__box_name] $PS1" ;;
            esac
        }
        if [ -n "${BASH_VERSION:-}" ]; then
            case "${PROMPT_COMMAND:-}" in
            *__box_prompt*) ;;
            *) PROMPT_COMMAND="__box_prompt${PROMPT_COMMAND:+;$PROMPT_COMMAND}" ;;
            esac
        elif [ -n "${ZSH_VERSION:-}" ]; then
            # Last, after the hooks registered before it (zsh's own words: eval).
            eval 'precmd_functions=(${precmd_functions:#__box_prompt} __box_prompt)'
        fi
        __box_prompt
    fi
    ;;
esac
"#;

/// The login shell to use inside: the host's when the box has it, else bash, else sh.
pub fn pick_shell(host_shell: &Path, exists: impl Fn(&Path) -> bool) -> String {
    for candidate in [host_shell, Path::new("/bin/bash"), Path::new("/bin/sh")] {
        if candidate.is_absolute() && exists(candidate) {
            return candidate.display().to_string();
        }
    }
    "/bin/sh".into()
}

/// Put `user` into a passwd text: rewrite the entry with its uid (renaming it), drop other
/// entries with its name, or append one.
pub fn edit_passwd(text: &str, user: &UserSpec, shell: &str) -> String {
    let entry = format!(
        "{}:x:{}:{}:{}:{}:{}",
        user.name,
        user.uid,
        user.gid,
        user.name,
        user.home.display(),
        shell
    );
    edit_db(text, &user.name, user.uid, |old| match old {
        // Keep the image's GECOS field when renaming its user: it may mean something.
        Some(fields) if fields.len() >= 7 && !fields[4].is_empty() => format!(
            "{}:x:{}:{}:{}:{}:{}",
            user.name,
            user.uid,
            user.gid,
            fields[4],
            user.home.display(),
            shell
        ),
        _ => entry.clone(),
    })
}

/// Put the user's primary group into a group text (same rules as [`edit_passwd`]).
pub fn edit_group(text: &str, group: &str, gid: u32, member: &str) -> String {
    edit_db(text, group, gid, |old| {
        let members = old
            .filter(|f| f.len() >= 4)
            .map(|f| f[3].to_owned())
            .unwrap_or_default();
        let members = if members.split(',').any(|m| m == member) || member == group {
            members
        } else if members.is_empty() {
            member.to_owned()
        } else {
            format!("{members},{member}")
        };
        format!("{group}:x:{gid}:{members}")
    })
}

/// Put a shadow-style entry (`shadow` or `gshadow`) for `name`, replacing any entry of
/// `old_name` (the image's user that was renamed) or `name`.
pub fn edit_shadow(text: &str, name: &str, old_name: Option<&str>, entry: &str) -> String {
    let mut out = String::with_capacity(text.len() + entry.len() + 1);
    let mut written = false;
    for line in text.lines() {
        let first = line.split(':').next().unwrap_or("");
        if first == name || Some(first) == old_name {
            if !written {
                out.push_str(entry);
                out.push('\n');
                written = true;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !written {
        out.push_str(entry);
        out.push('\n');
    }
    out
}

/// The name of the entry holding `id` (third field) in a passwd/group text.
pub fn name_of_id(text: &str, id: u32) -> Option<String> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 3 && f[2].parse::<u32>().ok() == Some(id)).then(|| f[0].to_owned())
    })
}

/// Shared rule of passwd and group: the entry with `id` becomes `make(Some(old fields))`,
/// entries with `name` and another id go, and a new entry is appended if none had `id`.
fn edit_db(text: &str, name: &str, id: u32, make: impl Fn(Option<&[&str]>) -> String) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut written = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let line_id = fields.get(2).and_then(|i| i.parse::<u32>().ok());
        if fields.len() >= 3 && line_id == Some(id) {
            if !written {
                out.push_str(&make(Some(&fields)));
                out.push('\n');
                written = true;
            }
            continue;
        }
        if fields[0] == name {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !written {
        out.push_str(&make(None));
        out.push('\n');
    }
    out
}

/// The text of box file `path`: empty when it does not exist; an error when it leads
/// out of the box's own files.
fn read(fs: &BoxFs, path: &str) -> Result<String> {
    let bytes = fs.read(Path::new(path), 64 << 20)?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Replace box file `path` with `content`, keeping its mode (and, as root in the box,
/// its owner); `default_mode` for a new file.
fn rewrite(fs: &BoxFs, path: &str, content: &str, default_mode: u32, has_root: bool) -> Result<()> {
    let path = Path::new(path);
    let (mode, owner) = match fs.lstat(path)? {
        Some(old) if old.is_file() => (old.mode, Some((old.uid, old.gid))),
        _ => (default_mode, None),
    };
    // Without root inside, everything is the user's anyway.
    fs.write(path, content.as_bytes(), mode, owner.filter(|_| has_root))
}

/// Whether the setup already ran for this user and home, in this version.
pub fn done(fs: &BoxFs, user: &UserSpec) -> bool {
    let Ok(Some(bytes)) = fs.read(Path::new(MARKER), 4096) else {
        return false;
    };
    serde_json::from_slice::<Marker>(&bytes).ok() == Some(Marker::of(user))
}

/// Run the setup inside the box `fs` (after the pivot). `has_root`: whether we are root
/// inside and may write root's files.
pub fn run(fs: &BoxFs, user: &UserSpec, has_root: bool, timezone: Option<&str>) -> Result<()> {
    let shell = pick_shell(&user.host_shell, |p| p.exists());
    let passwd = read(fs, "/etc/passwd")?;
    let old_user = name_of_id(&passwd, user.uid).filter(|n| *n != user.name);
    rewrite(
        fs,
        "/etc/passwd",
        &edit_passwd(&passwd, user, &shell),
        0o644,
        has_root,
    )?;
    let group = read(fs, "/etc/group")?;
    let old_group = name_of_id(&group, user.gid).filter(|n| *n != user.group);
    rewrite(
        fs,
        "/etc/group",
        &edit_group(&group, &user.group, user.gid, &user.name),
        0o644,
        has_root,
    )?;
    let exists = |path: &str| fs.stat(Path::new(path)).is_ok_and(|s| s.is_some());
    if has_root {
        // `*`: no password login; sudo below needs none.
        let days = crate::store::now() / 86400;
        if fs.stat(Path::new("/etc/shadow"))?.is_some() {
            let shadow = read(fs, "/etc/shadow")?;
            let entry = format!("{}:*:{days}:0:99999:7:::", user.name);
            rewrite(
                fs,
                "/etc/shadow",
                &edit_shadow(&shadow, &user.name, old_user.as_deref(), &entry),
                0o640,
                has_root,
            )?;
        }
        if fs.stat(Path::new("/etc/gshadow"))?.is_some() {
            let gshadow = read(fs, "/etc/gshadow")?;
            let entry = format!("{}:!::{}", user.group, user.name);
            rewrite(
                fs,
                "/etc/gshadow",
                &edit_shadow(&gshadow, &user.group, old_group.as_deref(), &entry),
                0o640,
                has_root,
            )?;
        }
        let has_sudo = ["/usr/bin/sudo", "/bin/sudo", "/usr/sbin/sudo"]
            .iter()
            .any(|p| exists(p));
        let sudoers = Path::new("/etc/sudoers.d");
        if has_sudo || fs.is_dir(sudoers)? {
            fs.create_dir_all(sudoers, 0o755)?;
            let text = format!(
                "# Written by box: {} is themself in this box and may act as root.\n{} ALL=(ALL:ALL) NOPASSWD: ALL\n",
                user.name, user.name
            );
            // sudo insists on exactly 0440.
            fs.write(
                &sudoers.join(format!("box-{}", user.name)),
                text.as_bytes(),
                0o440,
                None,
            )?;
        }
    }
    // With a single-id mapping the box's files are the user's: these need no root.
    if let Some(zone) = timezone {
        fs.write(
            Path::new("/etc/timezone"),
            format!("{zone}\n").as_bytes(),
            0o644,
            None,
        )?;
    }
    let host_locale = |path: &str| std::fs::read_to_string(Path::new("/run/host").join(path));
    if let Some(settings) = locale_settings(
        host_locale("etc/locale.conf").ok(),
        host_locale("etc/default/locale").ok(),
    ) {
        // systemd's file everywhere; Debian's where the box has /etc/default.
        fs.write(
            Path::new("/etc/locale.conf"),
            settings.as_bytes(),
            0o644,
            None,
        )?;
        if fs.is_dir(Path::new("/etc/default"))? {
            fs.write(
                Path::new("/etc/default/locale"),
                settings.as_bytes(),
                0o644,
                None,
            )?;
        }
    }
    // Images without /etc/profile.d (busybox) have no shell that would read it.
    if fs.is_dir(Path::new(PROMPT_FILE).parent().unwrap_or(Path::new("/")))? {
        fs.write(
            Path::new(PROMPT_FILE),
            PROMPT_SCRIPT.as_bytes(),
            0o644,
            None,
        )?;
    }
    fs.create_dir_all(Path::new("/etc/box"), 0o755)?;
    let marker = serde_json::to_vec(&Marker::of(user))?;
    fs.write(Path::new(MARKER), &marker, 0o644, None)
}

/// The host's locale settings (`LANG=...` lines) for the box: its /etc/locale.conf
/// (systemd hosts) or else its /etc/default/locale (Debian family); both use the same
/// format. None when the host has no setting, so the image's own stays.
fn locale_settings(locale_conf: Option<String>, default_locale: Option<String>) -> Option<String> {
    let has_setting = |text: &String| {
        text.lines()
            .any(|l| l.trim_start().starts_with("LANG") || l.trim_start().starts_with("LC_"))
    };
    locale_conf
        .filter(has_setting)
        .or_else(|| default_locale.filter(has_setting))
}

/// The login shell and home of `name` in the box's passwd (after setup).
pub fn login_of(name: &str) -> Option<(String, String)> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[0] == name).then(|| (f[6].to_owned(), f[5].to_owned()))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn locale_settings_come_from_the_hosts_files() {
        let conf = Some("LANG=de_DE.UTF-8\n".to_owned());
        let default = Some("#  File generated by update-locale\nLANG=fr_FR.UTF-8\n".to_owned());
        assert_eq!(
            locale_settings(conf.clone(), default.clone()).as_deref(),
            Some("LANG=de_DE.UTF-8\n")
        );
        assert_eq!(
            locale_settings(None, default.clone()).as_deref(),
            default.as_deref()
        );
        // A file with comments only says nothing: the image keeps its own.
        let comments = Some("#  File generated by update-locale\n".to_owned());
        assert_eq!(locale_settings(comments.clone(), comments), None);
        assert_eq!(locale_settings(None, None), None);
    }

    use super::*;

    #[test]
    fn the_prompt_script_is_plain_sh() {
        // Every shell that sources profile.d must parse it: sh -n parses without running.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box-prompt.sh");
        std::fs::write(&path, PROMPT_SCRIPT).unwrap();
        let status = std::process::Command::new("/bin/sh")
            .arg("-n")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn alice() -> UserSpec {
        UserSpec {
            name: "alice".into(),
            uid: 1000,
            gid: 1000,
            group: "alice".into(),
            home: "/home/alice".into(),
            host_shell: "/bin/zsh".into(),
        }
    }

    #[test]
    fn a_new_user_is_appended() {
        let text = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        let out = edit_passwd(text, &alice(), "/bin/bash");
        assert_eq!(
            out,
            format!("{text}alice:x:1000:1000:alice:/home/alice:/bin/bash\n")
        );
        // Idempotent.
        assert_eq!(edit_passwd(&out, &alice(), "/bin/bash"), out);
    }

    #[test]
    fn the_images_user_with_our_uid_is_renamed_not_duplicated() {
        let text =
            "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n";
        let out = edit_passwd(text, &alice(), "/bin/zsh");
        assert_eq!(
            out,
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Ubuntu:/home/alice:/bin/zsh\n"
        );
        assert_eq!(name_of_id(text, 1000).as_deref(), Some("ubuntu"));
        let group = "root:x:0:\nubuntu:x:1000:\nsudo:x:27:ubuntu\n";
        assert_eq!(
            edit_group(group, "alice", 1000, "alice"),
            "root:x:0:\nalice:x:1000:\nsudo:x:27:ubuntu\n"
        );
    }

    #[test]
    fn an_entry_with_our_name_but_another_id_goes() {
        let text = "alice:x:1500:1500::/home/alice:/bin/sh\n";
        assert_eq!(
            edit_passwd(text, &alice(), "/bin/sh"),
            "alice:x:1000:1000:alice:/home/alice:/bin/sh\n"
        );
        assert_eq!(
            edit_group("alice:x:1500:\n", "alice", 1000, "alice"),
            "alice:x:1000:\n"
        );
    }

    #[test]
    fn shadow_entries_replace_the_renamed_user() {
        let text = "root:*:1::::::\nubuntu:!:1::::::\n";
        assert_eq!(
            edit_shadow(text, "alice", Some("ubuntu"), "alice:*:2:0:99999:7:::"),
            "root:*:1::::::\nalice:*:2:0:99999:7:::\n"
        );
        assert_eq!(
            edit_shadow("root:*:1::::::\n", "alice", None, "alice:*:2:0:99999:7:::"),
            "root:*:1::::::\nalice:*:2:0:99999:7:::\n"
        );
    }

    #[test]
    fn the_shell_is_the_hosts_when_the_box_has_it() {
        let has =
            |list: &'static [&'static str]| move |p: &Path| list.iter().any(|x| Path::new(x) == p);
        assert_eq!(
            pick_shell(Path::new("/bin/zsh"), has(&["/bin/zsh", "/bin/bash"])),
            "/bin/zsh"
        );
        assert_eq!(
            pick_shell(Path::new("/bin/zsh"), has(&["/bin/bash", "/bin/sh"])),
            "/bin/bash"
        );
        assert_eq!(
            pick_shell(Path::new("/bin/zsh"), has(&["/bin/sh"])),
            "/bin/sh"
        );
    }
}
