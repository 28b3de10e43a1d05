//! Taking the user's account back out of a box's account files (`/etc/passwd`, `group`,
//! `shadow`, `gshadow` and their `-` backups), for a committed layer: what box's
//! first-start setup (`runtime::setup`) wrote for this user is replaced by the lines the
//! image had there, and everything else (accounts packages added) stays.
//!
//! What the setup does, and so what is undone here, file by file:
//! - passwd and group: the line holding the user's id is rewritten under the user's name
//!   (an image's `ubuntu` 1000 becomes the user), lines of the user's name with another id
//!   are dropped, or a line is appended. Undone: the user's line becomes the image's lines
//!   of that id or name, at its place;
//! - shadow and gshadow: the lines of the user's name and of the image's name for that
//!   id are replaced by one line of the user's. Undone the same way;
//! - the user's name in the member lists of other groups (group's 4th field, gshadow's
//!   3rd and 4th: `usermod -aG` in the box, or a package's postinst) goes, unless the
//!   image's line of that group had it.

/// Whose account to take out: the host user the box was set up for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    pub user: String,
    pub uid: u32,
    /// The primary group's name and id.
    pub group: String,
    pub gid: u32,
}

/// Which account file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Passwd,
    Group,
    Shadow,
    Gshadow,
}

impl Database {
    /// The account file at `path` (relative to the root: `etc/passwd`, or a backup
    /// `etc/passwd-`), if it is one.
    pub fn of(path: &[u8]) -> Option<Database> {
        let name = path.strip_prefix(b"etc/")?;
        let name = name.strip_suffix(b"-").unwrap_or(name);
        match name {
            b"passwd" => Some(Database::Passwd),
            b"group" => Some(Database::Group),
            b"shadow" => Some(Database::Shadow),
            b"gshadow" => Some(Database::Gshadow),
            _ => None,
        }
    }

    /// The main file whose names say which image name held the account's id (passwd
    /// for shadow, group for gshadow).
    pub fn names_from(self) -> Database {
        match self {
            Database::Passwd | Database::Shadow => Database::Passwd,
            Database::Group | Database::Gshadow => Database::Group,
        }
    }

    /// The member-list fields (0-based) of the file's lines.
    fn member_fields(self) -> &'static [usize] {
        match self {
            Database::Passwd | Database::Shadow => &[],
            Database::Group => &[3],
            Database::Gshadow => &[2, 3],
        }
    }
}

/// The name of the line holding id `id` (3rd field) in a passwd or group text.
pub fn name_of_id(text: &str, id: u32) -> Option<&str> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 3 && fields[2].parse::<u32>().ok() == Some(id)).then_some(fields[0])
    })
}

/// `upper` (the box's file) without what the setup wrote for `account`, given the
/// image's version of the file (`None`: the image has none) and, for shadow and
/// gshadow, `old_name`: the image's name for the account's id (from its passwd or
/// group). Lines end with `\n`.
pub fn restore(
    db: Database,
    upper: &str,
    image: Option<&str>,
    account: &Account,
    old_name: Option<&str>,
) -> String {
    let (own, id) = match db {
        Database::Passwd => (account.user.as_str(), Some(account.uid)),
        Database::Shadow => (account.user.as_str(), None),
        Database::Group => (account.group.as_str(), Some(account.gid)),
        Database::Gshadow => (account.group.as_str(), None),
    };
    let image_lines: Vec<&str> = image.map(|t| t.lines().collect()).unwrap_or_default();
    let first = |line: &str| line.split(':').next().unwrap_or("").to_owned();
    // The image's lines the setup replaced or dropped.
    let replaced: Vec<&str> = image_lines
        .iter()
        .copied()
        .filter(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let name = fields[0];
            name == own
                || old_name == Some(name)
                || (id.is_some() && fields.len() >= 3 && fields[2].parse::<u32>().ok() == id)
        })
        .collect();
    let upper_lines: Vec<&str> = upper.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(upper_lines.len() + replaced.len());
    let mut restored = false;
    for line in &upper_lines {
        if first(line) == own {
            if !restored {
                for original in &replaced {
                    if !upper_lines.contains(original) {
                        out.push((*original).to_owned());
                    }
                }
                restored = true;
            }
            continue;
        }
        out.push(strip_member(
            line,
            db.member_fields(),
            &account.user,
            &image_lines,
        ));
    }
    let mut text = out.join("\n");
    if !out.is_empty() {
        text.push('\n');
    }
    text
}

/// `line` without `user` in its member fields `fields`, unless the image's line of the
/// same name has it there.
fn strip_member(line: &str, fields: &[usize], user: &str, image_lines: &[&str]) -> String {
    if fields.is_empty() {
        return line.to_owned();
    }
    let mut parts: Vec<String> = line.split(':').map(str::to_owned).collect();
    let image_parts: Option<Vec<&str>> = image_lines
        .iter()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|p| p[0] == parts[0]);
    let mut changed = false;
    for &field in fields {
        let Some(members) = parts.get(field) else {
            continue;
        };
        let image_has = image_parts
            .as_ref()
            .and_then(|p| p.get(field))
            .is_some_and(|m| m.split(',').any(|x| x == user));
        if image_has || !members.split(',').any(|m| m == user) {
            continue;
        }
        let kept: Vec<&str> = members.split(',').filter(|m| *m != user).collect();
        parts[field] = kept.join(",");
        changed = true;
    }
    if changed {
        parts.join(":")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Account {
        Account {
            user: "alice".into(),
            uid: 1000,
            group: "alice".into(),
            gid: 1000,
        }
    }

    #[test]
    fn account_files_are_known_with_their_backups() {
        assert_eq!(Database::of(b"etc/passwd"), Some(Database::Passwd));
        assert_eq!(Database::of(b"etc/gshadow-"), Some(Database::Gshadow));
        assert_eq!(Database::of(b"etc/passwd.box-new"), None);
        assert_eq!(Database::of(b"usr/etc/passwd"), None);
    }

    #[test]
    fn an_appended_user_goes_and_accounts_packages_added_stay() {
        let image = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/sh\n";
        let upper = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/sh\n\
                     alice:x:1000:1000:alice:/home/alice:/bin/bash\n\
                     messagebus:x:100:101::/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(
            restore(Database::Passwd, upper, Some(image), &alice(), None),
            format!("{image}messagebus:x:100:101::/nonexistent:/usr/sbin/nologin\n")
        );
        // Nothing else changed: the image's file exactly.
        let only_setup = format!("{image}alice:x:1000:1000:alice:/home/alice:/bin/bash\n");
        assert_eq!(
            restore(Database::Passwd, &only_setup, Some(image), &alice(), None),
            image
        );
    }

    #[test]
    fn the_images_user_of_that_id_comes_back_in_its_place() {
        let image =
            "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n";
        let upper =
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Ubuntu:/home/alice:/bin/zsh\n";
        assert_eq!(
            restore(Database::Passwd, upper, Some(image), &alice(), None),
            image
        );
        let image_shadow = "root:*:19000:0:99999:7:::\nubuntu:!:19000:0:99999:7:::\n";
        let upper_shadow = "root:*:19000:0:99999:7:::\nalice:*:20000:0:99999:7:::\n";
        assert_eq!(
            name_of_id(image, 1000),
            Some("ubuntu"),
            "the old name comes from the image's passwd"
        );
        assert_eq!(
            restore(
                Database::Shadow,
                upper_shadow,
                Some(image_shadow),
                &alice(),
                Some("ubuntu")
            ),
            image_shadow
        );
    }

    #[test]
    fn membership_the_image_did_not_have_goes() {
        let image = "root:x:0:\nsudo:x:27:\nusers:x:100:bob\n";
        let upper = "root:x:0:\nsudo:x:27:alice\nusers:x:100:bob,alice\nalice:x:1000:alice\n";
        assert_eq!(
            restore(Database::Group, upper, Some(image), &alice(), None),
            image
        );
        let image_g = "root:*::\nsudo:*::alice\n";
        let upper_g = "root:*::\nsudo:*:alice:alice\nalice:!::alice\n";
        assert_eq!(
            restore(Database::Gshadow, upper_g, Some(image_g), &alice(), None),
            "root:*::\nsudo:*::alice\n",
            "the image's own member stays"
        );
    }

    #[test]
    fn a_file_the_image_lacked_keeps_only_what_others_added() {
        let upper = "alice:*:20000:0:99999:7:::\n";
        assert_eq!(restore(Database::Shadow, upper, None, &alice(), None), "");
    }
}
