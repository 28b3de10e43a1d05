//! distrobox's manifest format (`distrobox.ini`), read as distrobox reads it, into typed
//! box definitions for `box assemble`.
//!
//! The format: `[name]` sections, one per box; `key=value` lines; comments are lines
//! starting with `#` or `;`, and the rest of a line from a `#` that follows whitespace
//! (`[arch] # a comment`, `pull=true # always`), as distrobox's shell parser had it (so
//! a hook's `;` stays: `init_hooks=cmd1; cmd2` runs both). A value wholly in double
//! quotes is unquoted (`"git vim"`); quotes inside a value are kept for the shell
//! (`init_hooks=GOPATH="$HOME/go" go install ...`). Keys of type string list may repeat and
//! add up; `additional_packages`, `exported_apps`, `exported_bins` and `volume` split on
//! whitespace, hooks stay one command per line. `include=NAME` copies the keys of section
//! NAME (recursively, a cycle is an error) before the section's own.
//!
//! Each section is resolved once, after the sections it includes (depth first, with a
//! stack of its own rather than recursion), and a section that includes another takes
//! that one's finished definition: the work is linear in the manifest and its boxes,
//! where expanding every include again for every box that reached it was cubic in a
//! chain of includes (a 222 KB manifest took minutes) and overflowed the stack in a long
//! one. What the includes add up to is bounded ([`MAX_VALUE_BYTES`]): a manifest that
//! includes a section twice, in a section included twice, and so on, doubles its lists
//! at every step.
//!
//! Invariants: a manifest either parses whole or is an error naming the file, the line,
//! the key and the box; nothing is ever silently ignored: an unknown key, a key outside a
//! section, a duplicate section, a bad boolean, an unterminated quote, an include of a
//! missing section are all errors. Which keys box can act on is [`Definition`]'s job
//! (`ops::assemble` refuses what box does not support, e.g. `root=true`).

use std::collections::BTreeMap;

use anyhow::Result;

use crate::error::failure;

/// Every key of distrobox's manifest table, and how its values combine.
const KEYS: &[(&str, Kind)] = &[
    ("image", Kind::Text),
    ("clone", Kind::Text),
    ("home", Kind::Text),
    ("hostname", Kind::Text),
    ("exported_bins_path", Kind::Text),
    ("include", Kind::Include),
    ("additional_packages", Kind::Words),
    ("additional_flags", Kind::Words),
    ("exported_apps", Kind::Words),
    ("exported_bins", Kind::Words),
    ("volume", Kind::Words),
    ("volumes", Kind::Words),
    ("init_hooks", Kind::Lines),
    ("pre_init_hooks", Kind::Lines),
    ("entry", Kind::Bool),
    ("start_now", Kind::Bool),
    ("pull", Kind::Bool),
    ("replace", Kind::Bool),
    ("init", Kind::Bool),
    ("nvidia", Kind::Bool),
    ("root", Kind::Bool),
    ("unshare_groups", Kind::Bool),
    ("unshare_ipc", Kind::Bool),
    ("unshare_netns", Kind::Bool),
    ("unshare_process", Kind::Bool),
    ("unshare_devsys", Kind::Bool),
    ("unshare_all", Kind::Bool),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One value; the last one counts.
    Text,
    /// `true`/`false` (or `1`/`0`); the last one counts.
    Bool,
    /// Whitespace-separated words; repeated keys add up.
    Words,
    /// One command per line; repeated keys add up.
    Lines,
    /// The name of a section whose keys are copied in.
    Include,
}

/// Where a value came from: for errors that point at the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One `key=value` line of a section.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: String,
    origin: Origin,
}

/// One box of a manifest, with every key distrobox knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    /// Where the section starts.
    pub origin: Option<Origin>,
    pub image: Option<String>,
    pub clone: Option<String>,
    pub home: Option<String>,
    pub hostname: Option<String>,
    pub exported_bins_path: Option<String>,
    pub additional_packages: Vec<String>,
    pub additional_flags: Vec<String>,
    pub exported_apps: Vec<String>,
    pub exported_bins: Vec<String>,
    pub volumes: Vec<String>,
    pub init_hooks: Vec<String>,
    pub pre_init_hooks: Vec<String>,
    pub entry: bool,
    pub start_now: bool,
    pub pull: bool,
    pub replace: bool,
    /// `nvidia=true`: the host's NVIDIA GPUs through CDI (`box create --nvidia`).
    pub nvidia: bool,
    /// Boolean keys set to true, with their line: the features box may not support.
    pub enabled: BTreeMap<String, Origin>,
    /// Lines of keys with a value, for errors about them.
    pub lines: BTreeMap<String, Origin>,
}

impl Definition {
    /// Where key `key` was set, as `FILE:LINE`, or the section's start.
    pub fn origin_of(&self, key: &str) -> String {
        self.lines
            .get(key)
            .or(self.origin.as_ref())
            .map_or_else(String::new, Origin::to_string)
    }
}

/// Parse manifest `text`, read from `file` (a path or URL, for messages).
pub fn parse(text: &str, file: &str) -> Result<Vec<Definition>> {
    let sections = read_sections(text, file)?;
    let mut done: Resolved<'_> = BTreeMap::new();
    for name in sections.keys() {
        resolve(name, &sections, &mut done, file)?;
    }
    let mut definitions: Vec<Definition> = done.into_values().map(|(def, _)| def).collect();
    // In the order of the file, as distrobox creates them (a clone's source first).
    definitions.sort_by_key(|d| d.origin.as_ref().map_or(0, |o| o.line));
    Ok(definitions)
}

/// The most bytes the list values of one box may add up to through its includes (16
/// MiB): far more than any real manifest, far less than a doubling one reaches.
pub const MAX_VALUE_BYTES: usize = 16 << 20;

/// The sections resolved so far: their definitions, and the bytes of their list values.
type Resolved<'s> = BTreeMap<&'s str, (Definition, usize)>;

type Sections = BTreeMap<String, (Origin, Vec<Entry>)>;

fn error_at(origin: &Origin, message: impl std::fmt::Display, hint: &str) -> anyhow::Error {
    failure(format!("{origin}: {message}"), hint)
}

const FORMAT_HINT: &str =
    "see `box assemble --help`: sections `[name]`, lines `key=value`, comments after `#`";

/// The sections of `text` with their own lines, in a map by name.
fn read_sections(text: &str, file: &str) -> Result<Sections> {
    let mut sections: Sections = BTreeMap::new();
    let mut current: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let origin = Origin {
            file: file.to_owned(),
            line: index + 1,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some((name, after)) = rest.split_once(']') else {
                return Err(error_at(
                    &origin,
                    "a section header without `]`",
                    FORMAT_HINT,
                ));
            };
            let after = after.trim();
            if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
                return Err(error_at(
                    &origin,
                    format!("unexpected `{after}` after section [{name}]"),
                    FORMAT_HINT,
                ));
            }
            let name = name.trim().to_owned();
            if name.is_empty() {
                return Err(error_at(&origin, "a section without a name", FORMAT_HINT));
            }
            if let Some((first, _)) = sections.get(&name) {
                return Err(error_at(
                    &origin,
                    format!(
                        "box [{name}] is defined twice (first at line {})",
                        first.line
                    ),
                    "give each box one section; merge the two, or rename one",
                ));
            }
            sections.insert(name.clone(), (origin, Vec::new()));
            current = Some(name);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(error_at(
                &origin,
                format!("`{line}` is neither a section nor a key=value line"),
                FORMAT_HINT,
            ));
        };
        let key = key.trim();
        let Some(section) = &current else {
            return Err(error_at(
                &origin,
                format!("key `{key}` is outside any [box] section"),
                "put it under the section of the box it is for",
            ));
        };
        let value = read_value(value.trim(), &origin, key, section)?;
        if !KEYS.iter().any(|(k, _)| *k == key) {
            return Err(error_at(
                &origin,
                format!("unknown key `{key}` in box [{section}]"),
                "the keys are distrobox's: image, additional_packages, init_hooks, pre_init_hooks, home, hostname, volume, clone, entry, start_now, pull, replace, exported_apps, exported_bins, exported_bins_path, include, init, nvidia, root, additional_flags, unshare_*",
            ));
        }
        sections
            .get_mut(section)
            .expect("the current section exists")
            .1
            .push(Entry {
                key: key.to_owned(),
                value,
                origin,
            });
    }
    Ok(sections)
}

/// A value as written after `=`: unquoted when wholly in double quotes, without a
/// trailing comment (`#` after whitespace, outside quotes).
fn read_value(text: &str, origin: &Origin, key: &str, section: &str) -> Result<String> {
    if let Some(quoted) = text.strip_prefix('"') {
        let Some(end) = quoted.find('"') else {
            return Err(error_at(
                origin,
                format!("the value of `{key}` in box [{section}] has no closing `\"`"),
                "close the quote at the end of the value",
            ));
        };
        let rest = quoted[end + 1..].trim();
        if rest.is_empty() || rest.starts_with('#') {
            return Ok(quoted[..end].to_owned());
        }
        // `"a" "b"` and the like: the quotes are the shell's, keep the text as it is.
    }
    let mut in_quotes = false;
    let mut previous_blank = false;
    for (at, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '#' if previous_blank && !in_quotes => return Ok(text[..at].trim_end().to_owned()),
            _ => {}
        }
        previous_blank = c.is_whitespace();
    }
    if in_quotes {
        return Err(error_at(
            origin,
            format!("the value of `{key}` in box [{section}] has an unterminated `\"`"),
            "close the quote, or write the value without it",
        ));
    }
    Ok(text.to_owned())
}

/// Resolve section `root` and the sections it includes, each once, into `done`: depth
/// first along the includes, with the path as an explicit stack (a chain of includes may
/// be as long as the manifest).
fn resolve<'s>(
    root: &'s str,
    sections: &'s Sections,
    done: &mut Resolved<'s>,
    file: &str,
) -> Result<()> {
    // The include path from `root`: each section with the index of its next entry to
    // look at, and the same names as a set for the cycle check.
    let mut path: Vec<(&'s str, usize)> = vec![(root, 0)];
    let mut on_path: std::collections::HashSet<&'s str> = [root].into();
    while let Some(&(name, next)) = path.last() {
        if done.contains_key(name) {
            on_path.remove(name);
            path.pop();
            continue;
        }
        let (origin, own) = &sections[name];
        if let Some(offset) = own[next..].iter().position(|e| e.key == "include") {
            let entry = &own[next + offset];
            path.last_mut().expect("the path is not empty").1 = next + offset + 1;
            let Some((included, _)) = sections.get_key_value(entry.value.as_str()) else {
                return Err(error_at(
                    &entry.origin,
                    format!(
                        "box [{name}] includes [{}], which the manifest does not have",
                        entry.value
                    ),
                    "include=NAME copies the keys of section [NAME] of the same file",
                ));
            };
            let included = included.as_str();
            if done.contains_key(included) {
                continue;
            }
            if on_path.contains(included) {
                let mut names: Vec<&str> = path.iter().map(|(n, _)| *n).collect();
                let start = names.iter().position(|n| *n == included).unwrap_or(0);
                names.drain(..start);
                names.push(included);
                return Err(failure(
                    format!("{file}: include cycle: [{}]", names.join("] includes [")),
                    "remove one of the includes so that no box includes itself",
                ));
            }
            on_path.insert(included);
            path.push((included, 0));
            continue;
        }
        // Every section it includes is resolved: its keys first, then the section's own.
        let mut def = Definition {
            name: name.to_owned(),
            origin: Some(origin.clone()),
            ..Definition::default()
        };
        let mut bytes = 0;
        for entry in own.iter().filter(|e| e.key == "include") {
            let (included, included_bytes) = &done[entry.value.as_str()];
            bytes += included_bytes;
            if bytes > MAX_VALUE_BYTES {
                return Err(too_much(name, &entry.origin));
            }
            merge(&mut def, included);
        }
        for entry in own.iter().filter(|e| e.key != "include") {
            bytes += apply(&mut def, name, entry)?;
        }
        if bytes > MAX_VALUE_BYTES {
            return Err(too_much(name, origin));
        }
        done.insert(name, (def, bytes));
        on_path.remove(name);
        path.pop();
    }
    Ok(())
}

/// The error of a box whose includes add up to more than [`MAX_VALUE_BYTES`].
fn too_much(name: &str, origin: &Origin) -> anyhow::Error {
    error_at(
        origin,
        format!(
            "box [{name}] adds up to more than {} MiB of values through its includes",
            MAX_VALUE_BYTES >> 20
        ),
        "the manifest includes the same sections over and over; include each one once",
    )
}

/// Apply the finished definition `included` to `def`, as its entries one by one would:
/// the keys it sets replace `def`'s (text and booleans), its lists add up.
fn merge(def: &mut Definition, included: &Definition) {
    for (mine, theirs) in [
        (&mut def.image, &included.image),
        (&mut def.clone, &included.clone),
        (&mut def.home, &included.home),
        (&mut def.hostname, &included.hostname),
        (&mut def.exported_bins_path, &included.exported_bins_path),
    ] {
        if theirs.is_some() {
            mine.clone_from(theirs);
        }
    }
    for (mine, theirs) in [
        (&mut def.additional_packages, &included.additional_packages),
        (&mut def.additional_flags, &included.additional_flags),
        (&mut def.exported_apps, &included.exported_apps),
        (&mut def.exported_bins, &included.exported_bins),
        (&mut def.volumes, &included.volumes),
        (&mut def.init_hooks, &included.init_hooks),
        (&mut def.pre_init_hooks, &included.pre_init_hooks),
    ] {
        mine.extend(theirs.iter().cloned());
    }
    for (key, mine, theirs) in [
        ("entry", &mut def.entry, included.entry),
        ("start_now", &mut def.start_now, included.start_now),
        ("pull", &mut def.pull, included.pull),
        ("replace", &mut def.replace, included.replace),
        ("nvidia", &mut def.nvidia, included.nvidia),
    ] {
        if included.lines.contains_key(key) {
            *mine = theirs;
        }
    }
    // Every boolean it sets ends as it says: on (in its `enabled`) or off.
    for key in included.lines.keys() {
        def.enabled.remove(key);
    }
    def.enabled
        .extend(included.enabled.iter().map(|(k, o)| (k.clone(), o.clone())));
    def.lines
        .extend(included.lines.iter().map(|(k, o)| (k.clone(), o.clone())));
}

/// Apply one `key=value` line of box `name` to `def`; returns the bytes it added to a
/// list.
fn apply(def: &mut Definition, name: &str, entry: &Entry) -> Result<usize> {
    let kind = KEYS
        .iter()
        .find(|(k, _)| *k == entry.key)
        .map(|(_, kind)| *kind)
        .expect("keys were checked while reading");
    def.lines.insert(entry.key.clone(), entry.origin.clone());
    let value = entry.value.clone();
    let mut added = 0;
    match kind {
        Kind::Include => {}
        Kind::Text => {
            let slot = match entry.key.as_str() {
                "image" => &mut def.image,
                "clone" => &mut def.clone,
                "home" => &mut def.home,
                "hostname" => &mut def.hostname,
                _ => &mut def.exported_bins_path,
            };
            *slot = Some(value);
        }
        Kind::Words => {
            let list = match entry.key.as_str() {
                "additional_packages" => &mut def.additional_packages,
                "additional_flags" => &mut def.additional_flags,
                "exported_apps" => &mut def.exported_apps,
                "exported_bins" => &mut def.exported_bins,
                _ => &mut def.volumes,
            };
            for word in value.split_whitespace() {
                added += word.len() + 1;
                list.push(word.to_owned());
            }
        }
        Kind::Lines => {
            let list = match entry.key.as_str() {
                "init_hooks" => &mut def.init_hooks,
                _ => &mut def.pre_init_hooks,
            };
            if !value.is_empty() {
                added += value.len() + 1;
                list.push(value);
            }
        }
        Kind::Bool => {
            let on = match value.as_str() {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                other => {
                    return Err(error_at(
                        &entry.origin,
                        format!(
                            "`{}` in box [{name}] is `{other}`, not true or false",
                            entry.key
                        ),
                        "write true or false",
                    ));
                }
            };
            match entry.key.as_str() {
                "entry" => def.entry = on,
                "start_now" => def.start_now = on,
                "pull" => def.pull = on,
                "replace" => def.replace = on,
                "nvidia" => def.nvidia = on,
                other => {
                    if on {
                        def.enabled.insert(other.to_owned(), entry.origin.clone());
                    } else {
                        def.enabled.remove(other);
                    }
                }
            }
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Vec<Definition> {
        parse(text, "m.ini").unwrap_or_else(|e| panic!("{}", crate::error::message(&e)))
    }

    fn parse_err(text: &str) -> String {
        crate::error::message(&parse(text, "m.ini").unwrap_err())
    }

    #[test]
    fn distrobox_s_first_example_reads_as_distrobox_reads_it() {
        let text = r#"[ubuntu]
additional_packages="git vim tmux nodejs"
image=ubuntu:latest
init=false
nvidia=false
pull=true
root=false
replace=true
start_now=false

# You can add comments using this #
[arch] # also inline comments are supported
additional_packages="git vim tmux nodejs"
home=/tmp/home
image=archlinux:latest
init=false
start_now=true
init_hooks="touch /init-normal"
nvidia=true
pre_init_hooks="touch /pre-init"
pull=true
root=false
replace=false
volume="/tmp/test:/run/a /tmp/test:/run/b"
"#;
        let defs = parse_ok(text);
        assert_eq!(defs.len(), 2);
        let (ubuntu, arch) = (&defs[0], &defs[1]);
        assert_eq!(ubuntu.name, "ubuntu");
        assert_eq!(ubuntu.image.as_deref(), Some("ubuntu:latest"));
        assert_eq!(ubuntu.additional_packages, ["git", "vim", "tmux", "nodejs"]);
        assert!(ubuntu.pull && ubuntu.replace && !ubuntu.start_now);
        assert!(ubuntu.enabled.is_empty(), "false values are accepted");
        assert_eq!(arch.home.as_deref(), Some("/tmp/home"));
        assert_eq!(arch.init_hooks, ["touch /init-normal"]);
        assert_eq!(arch.pre_init_hooks, ["touch /pre-init"]);
        assert_eq!(arch.volumes, ["/tmp/test:/run/a", "/tmp/test:/run/b"]);
        assert!(arch.nvidia && !ubuntu.nvidia);
        assert!(arch.enabled.is_empty(), "{:?}", arch.enabled);
    }

    #[test]
    fn lists_add_up_hooks_keep_their_shell_text_and_comments_go() {
        let text = r#"
[tw]
image=registry.opensuse.org/opensuse/distrobox
additional_packages="acpi bash-completion"
additional_packages="git"  # and git
init_hooks=GOPATH="${HOME}/.local/share/system-go" GOBIN=/usr/local/bin go install x@latest;
init_hooks=ln -sf /usr/bin/distrobox-host-exec /usr/local/bin/podman; echo done
exported_bins="/usr/bin/htop /usr/bin/git"
exported_bins_path="~/.local/bin"
"#;
        let def = &parse_ok(text)[0];
        assert_eq!(def.additional_packages, ["acpi", "bash-completion", "git"]);
        assert_eq!(
            def.init_hooks,
            [
                r#"GOPATH="${HOME}/.local/share/system-go" GOBIN=/usr/local/bin go install x@latest;"#,
                "ln -sf /usr/bin/distrobox-host-exec /usr/local/bin/podman; echo done",
            ]
        );
        assert_eq!(def.exported_bins, ["/usr/bin/htop", "/usr/bin/git"]);
        assert_eq!(def.exported_bins_path.as_deref(), Some("~/.local/bin"));
    }

    #[test]
    fn includes_copy_keys_first_and_cycles_are_refused() {
        let text = "[ubuntu]\nimage=ubuntu:latest\nadditional_packages=\"git\"\n\n[ubuntu-nvidia]\ninclude=ubuntu\nadditional_packages=vim\nnvidia=true\n";
        let defs = parse_ok(text);
        assert_eq!(defs[1].image.as_deref(), Some("ubuntu:latest"));
        assert_eq!(defs[1].additional_packages, ["git", "vim"]);
        let err = parse_err("[a]\ninclude=b\n[b]\ninclude=c\n[c]\ninclude=a\n");
        assert!(
            err.contains("include cycle: [a] includes [b] includes [c] includes [a]"),
            "{err}"
        );
        let err = parse_err("[a]\ninclude=nope\n");
        assert!(err.contains("m.ini:2: box [a] includes [nope]"), "{err}");
    }

    #[test]
    fn included_definitions_apply_as_their_lines_would() {
        // [c] includes [b] (which includes [a]) and [a] again: a's lines, b's, a's, c's.
        let text = "\
[a]
image=a:1
additional_packages=git
init=true
nvidia=true
init_hooks=echo a
[b]
include=a
image=b:1
additional_packages=vim
init=false
root=true
nvidia=false
[c]
include=b
include=a
hostname=c
additional_packages=make
";
        let defs = parse_ok(text);
        let c = &defs[2];
        assert_eq!(c.image.as_deref(), Some("a:1"), "the last include wins");
        assert_eq!(c.hostname.as_deref(), Some("c"));
        assert_eq!(c.additional_packages, ["git", "vim", "git", "make"]);
        assert_eq!(c.init_hooks, ["echo a", "echo a"]);
        assert!(c.nvidia, "a's nvidia=true came last");
        let enabled: Vec<&str> = c.enabled.keys().map(String::as_str).collect();
        assert_eq!(
            enabled,
            ["init", "root"],
            "a's init=true came after b's init=false"
        );
        assert_eq!(c.origin_of("image"), "m.ini:2");
        assert_eq!(c.origin_of("root"), "m.ini:12");
        let b = &defs[1];
        assert_eq!(b.image.as_deref(), Some("b:1"));
        assert!(!b.nvidia);
        assert_eq!(b.enabled.keys().collect::<Vec<_>>(), ["root"]);
    }

    #[test]
    fn long_chains_read_at_once_and_doubling_includes_are_refused() {
        let mut text = String::from("[b0]\nimage=x\n");
        for n in 1..20_000 {
            text.push_str(&format!("[b{n}]\ninclude=b{}\nhostname=h{n}\n", n - 1));
        }
        let defs = parse_ok(&text);
        assert_eq!(defs.len(), 20_000);
        assert_eq!(defs[19_999].image.as_deref(), Some("x"));
        assert_eq!(defs[19_999].hostname.as_deref(), Some("h19999"));

        // Each section includes the one before twice: 2^40 copies of one hook.
        let mut text = format!("[d0]\nimage=x\ninit_hooks=echo {}\n", "x".repeat(1000));
        for n in 1..40 {
            let before = n - 1;
            text.push_str(&format!("[d{n}]\ninclude=d{before}\ninclude=d{before}\n"));
        }
        let err = parse_err(&text);
        assert!(
            err.contains("adds up to more than 16 MiB of values through its includes"),
            "{err}"
        );
    }

    #[test]
    fn bad_manifests_name_file_line_key_and_box() {
        let err = parse_err("[a]\nimage=x\nfrobnicate=1\n");
        assert!(
            err.contains("m.ini:3: unknown key `frobnicate` in box [a]"),
            "{err}"
        );
        let err = parse_err("[a]\nimage=\"x\n");
        assert!(
            err.contains("m.ini:2: the value of `image` in box [a] has no closing"),
            "{err}"
        );
        let err = parse_err("[a]\nimage=x\n[a]\nimage=y\n");
        assert!(
            err.contains("m.ini:3: box [a] is defined twice (first at line 1)"),
            "{err}"
        );
        let err = parse_err("image=x\n[a]\n");
        assert!(
            err.contains("m.ini:1: key `image` is outside any [box] section"),
            "{err}"
        );
        let err = parse_err("[a]\npull=yes\n");
        assert!(err.contains("m.ini:2: `pull` in box [a] is `yes`"), "{err}");
        let err = parse_err("[a\n");
        assert!(
            err.contains("m.ini:1: a section header without `]`"),
            "{err}"
        );
        let err = parse_err("[a]\njust words\n");
        assert!(
            err.contains("neither a section nor a key=value line"),
            "{err}"
        );
    }
}
