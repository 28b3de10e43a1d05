//! distrobox's settings, read as defaults beneath box's own: its configuration files
//! ([`system_files`], then `~/.config/distrobox/distrobox.conf` and `~/.distroboxrc`, each
//! overriding the one before) and its `DBX_*` variables (over the files), turned into
//! box's keys ([`Defaults::table`]) for [`super::config`] to put below box's own files and
//! `BOX_*` variables. A distrobox user who switches keeps their default image, name,
//! homes, volumes, hooks and habits without writing box's config.toml.
//!
//! distrobox's shell versions *sourced* these files; box reads them without running
//! anything: `key=value` lines (`export` allowed; values bare, in double quotes with `\`
//! escapes, or in single quotes), `#` comments, `$NAME`, `${NAME}` and a leading `~`
//! expanded from variables the file set earlier or else the environment, as sourcing
//! would have. A value that needs more of the shell (`$(...)`, backquotes, an unset
//! variable) and every line that is not an assignment (`if`, a command) are left out,
//! with a warning.
//!
//! Invariants:
//! - every key of distrobox's table is either mapped to a box setting ([`MAPPED`]) or
//!   named in a warning that says why box ignores it ([`IGNORED`]); a key that asks for
//!   nothing (an empty value, `container_manager="autodetect"`, `verbose=0`) is no
//!   warning, and neither is a file-local variable a later value uses;
//! - the warnings are data ([`Notice`]: one per file, one per variable), never printed
//!   here: the context shows each once (a note in the store), so a file written for
//!   distrobox does not warn at every command;
//! - nothing here runs on the join path: the context reads settings on first use, and
//!   `box run` of a running box never uses them.

use std::path::{Path, PathBuf};

/// distrobox's system-wide files, least important first (as distrobox lists them).
pub const SYSTEM_FILES: &[&str] = &[
    "/usr/share/distrobox/distrobox.conf",
    "/usr/share/defaults/distrobox/distrobox.conf",
    "/usr/etc/distrobox/distrobox.conf",
    "/usr/local/share/distrobox/distrobox.conf",
    "/etc/distrobox/distrobox.conf",
];

/// The variable that names other system files (colon-separated; empty for none), for
/// tests and for distributions that keep distrobox's files elsewhere.
pub const SYSTEM_FILES_ENV: &str = "BOX_DISTROBOX_SYSTEM_CONFIG";

/// What a box setting takes from a distrobox value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The text itself.
    Text,
    /// Yes or no (distrobox's `1`/`true`/`yes`/`on`, `0`/`false`/`no`/`off`).
    Bool,
    /// A list of the value's whitespace-separated words.
    Words,
    /// A list of one element: the value.
    One,
}

/// distrobox's keys that box has a setting for: (distrobox key, box key, how).
const MAPPED: &[(&str, &str, Kind)] = &[
    ("container_image_default", "default-image", Kind::Text),
    ("container_image", "default-image", Kind::Text),
    ("container_name_default", "default-name", Kind::Text),
    ("container_name", "default-name", Kind::Text),
    ("container_always_pull", "always-pull", Kind::Bool),
    ("container_generate_entry", "generate-entry", Kind::Bool),
    ("container_home_prefix", "home-prefix", Kind::Text),
    ("container_user_custom_home", "default-home", Kind::Text),
    ("container_additional_volumes", "volumes", Kind::Words),
    (
        "container_additional_packages",
        "additional-packages",
        Kind::One,
    ),
    ("container_init_hook", "init-hooks", Kind::One),
    ("container_pre_init_hook", "pre-init-hooks", Kind::One),
    ("non_interactive", "non-interactive", Kind::Bool),
    ("skip_workdir", "skip-workdir", Kind::Bool),
    ("container_skip_workdir", "skip-workdir", Kind::Bool),
];

/// distrobox's keys box has no use for: (key, the values that ask for nothing, why box
/// ignores any other). A value of `false` asks for nothing for yes/no keys.
const IGNORED: &[(&str, &[&str], &str)] = &[
    (
        "container_manager",
        &["autodetect"],
        "box is its own container engine",
    ),
    (
        "container_manager_additional_flags",
        &[],
        "box has no engine to pass flags to; its own flags (--volume, --device, --hostname) do what they did",
    ),
    (
        "distrobox_sudo_program",
        &["sudo"],
        "box runs boxes rootless and needs no sudo for them",
    ),
    (
        "sudo_program",
        &["sudo"],
        "box runs boxes rootless and needs no sudo for them",
    ),
    ("verbose", &["false"], "box has no verbose mode"),
    (
        "userns_nolimit",
        &["false"],
        "box maps ids itself (`box create --dry-run` shows the mapping)",
    ),
    (
        "container_clean_path",
        &["false"],
        "PATH in a box is always the host's followed by the box's standard directories",
    ),
    (
        "rm_home",
        &["false"],
        "`box rm` leaves a box's own home in place: remove it yourself",
    ),
    (
        "container_hostname",
        &[],
        "a hostname is given per box: `box create --hostname NAME`",
    ),
    (
        "container_platform",
        &[],
        "a platform is given per box: `box create --platform OS/ARCH`",
    ),
    ("PATH", &[], "box needs no container engine on PATH"),
];

/// distrobox's variables and the key each stands for (distrobox reads them over its
/// files).
const VARIABLES: &[(&str, &str)] = &[
    ("DBX_CONTAINER_IMAGE", "container_image"),
    ("DBX_CONTAINER_NAME", "container_name"),
    ("DBX_CONTAINER_ALWAYS_PULL", "container_always_pull"),
    ("DBX_CONTAINER_GENERATE_ENTRY", "container_generate_entry"),
    ("DBX_CONTAINER_HOME_PREFIX", "container_home_prefix"),
    ("DBX_CONTAINER_CUSTOM_HOME", "container_user_custom_home"),
    ("DBX_NON_INTERACTIVE", "non_interactive"),
    ("DBX_SKIP_WORKDIR", "skip_workdir"),
    ("DBX_CONTAINER_MANAGER", "container_manager"),
    ("DBX_CONTAINER_HOSTNAME", "container_hostname"),
    ("DBX_SUDO_PROGRAM", "sudo_program"),
    ("DBX_SUDO_COMMAND", "sudo_program"),
    ("DBX_VERBOSE", "verbose"),
    ("DBX_USERNS_NOLIMIT", "userns_nolimit"),
    ("DBX_CONTAINER_CLEAN_PATH", "container_clean_path"),
    ("DBX_CONTAINER_RM_CUSTOM_HOME", "rm_home"),
];

/// Something distrobox's settings asked that box does not do: one per file or variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The file, or `DBX_NAME=value`.
    pub origin: String,
    /// What was left out and why, `; `-separated.
    pub text: String,
}

impl Notice {
    /// The warning line.
    pub fn message(&self) -> String {
        format!(
            "{}: distrobox settings box does not use: {}",
            self.origin, self.text
        )
    }
}

/// distrobox's settings as box's keys, and what was left out.
#[derive(Debug, Default)]
pub struct Defaults {
    /// Box keys (`default-image`, ...) with typed values, the later source's value kept.
    pub table: toml::Table,
    pub notices: Vec<Notice>,
}

/// The system files: those [`SYSTEM_FILES_ENV`] names, else [`SYSTEM_FILES`].
pub fn system_files() -> Vec<PathBuf> {
    match crate::sys::env::os(SYSTEM_FILES_ENV) {
        Some(list) => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => SYSTEM_FILES.iter().map(PathBuf::from).collect(),
    }
}

/// Every file, least important first: the system's, then the user's in `config_home`
/// (`$XDG_CONFIG_HOME`) and `home`.
pub fn files(config_home: &Path, home: &Path) -> Vec<PathBuf> {
    let mut files = system_files();
    files.push(config_home.join("distrobox/distrobox.conf"));
    files.push(home.join(".distroboxrc"));
    files
}

/// Read `files` (missing ones are skipped) and the `DBX_*` variables `env` gives.
pub fn read(files: &[PathBuf], env: &dyn Fn(&str) -> Option<String>) -> Defaults {
    let mut defaults = Defaults::default();
    for path in files {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                defaults.notices.push(Notice {
                    origin: path.display().to_string(),
                    text: format!("the file cannot be read ({err})"),
                });
                continue;
            }
        };
        let (assignments, mut left_out) = parse(&text, env);
        for (line, key, value) in &assignments {
            if let Err(why) = defaults.apply(key, value) {
                left_out.push((*line, format!("{key} ({why})")));
            }
        }
        // Assignments only other values use are the file's own variables, not settings.
        left_out.retain(|(_, text)| !text.is_empty());
        left_out.sort_by_key(|(line, _)| *line);
        if !left_out.is_empty() {
            defaults.notices.push(Notice {
                origin: path.display().to_string(),
                text: left_out
                    .into_iter()
                    .map(|(line, text)| format!("line {line}: {text}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
    }
    for (variable, key) in VARIABLES {
        let Some(value) = env(variable).filter(|v| !v.is_empty()) else {
            continue;
        };
        if let Err(why) = defaults.apply(key, &value) {
            defaults.notices.push(Notice {
                origin: format!("{variable}={value}"),
                text: why,
            });
        }
    }
    defaults
}

impl Defaults {
    /// Put distrobox's `key` with `value` into the table; why not, when it is not.
    fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        if value.is_empty() {
            return Ok(());
        }
        if let Some((_, box_key, kind)) = MAPPED.iter().find(|(k, _, _)| *k == key) {
            let value = match kind {
                Kind::Text => toml::Value::String(value.to_owned()),
                Kind::Bool => toml::Value::Boolean(
                    yes_or_no(value).ok_or_else(|| format!("`{value}` is not yes or no"))?,
                ),
                Kind::Words => toml::Value::Array(
                    value
                        .split_whitespace()
                        .map(|w| toml::Value::String(w.to_owned()))
                        .collect(),
                ),
                Kind::One => toml::Value::Array(vec![toml::Value::String(value.to_owned())]),
            };
            self.table.insert((*box_key).to_owned(), value);
            return Ok(());
        }
        match IGNORED.iter().find(|(k, _, _)| *k == key) {
            Some((_, inert, why)) => {
                let asks_nothing = inert.iter().any(|i| value.eq_ignore_ascii_case(i))
                    || (inert.contains(&"false") && yes_or_no(value) == Some(false));
                if asks_nothing {
                    Ok(())
                } else {
                    Err((*why).to_owned())
                }
            }
            None => Err("not a distrobox setting box knows".to_owned()),
        }
    }
}

/// distrobox's yes/no values.
fn yes_or_no(value: &str) -> Option<bool> {
    if crate::sys::env::is_yes(value) {
        return Some(true);
    }
    ["0", "false", "no", "off"]
        .iter()
        .any(|no| value.eq_ignore_ascii_case(no))
        .then_some(false)
}

/// One assignment: (line number, key, value).
type Assignment = (usize, String, String);

/// The assignments of a file, and its lines that are not (line number, why; an empty
/// why for an assignment whose key no setting uses: see [`read`]).
fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Assignment>, Vec<(usize, String)>) {
    let mut assignments: Vec<Assignment> = Vec::new();
    let mut left_out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let shell = || format!("`{}` is shell code, which box does not run", short(line));
        let Some((key, rest)) = split_assignment(line) else {
            left_out.push((number, shell()));
            continue;
        };
        let lookup = |name: &str| {
            assignments
                .iter()
                .rev()
                .find(|(_, k, _)| k == name)
                .map(|(_, _, v)| v.clone())
                .or_else(|| env(name))
        };
        match value(rest, &lookup) {
            Ok(value) => assignments.push((number, key.to_owned(), value)),
            Err(why) => left_out.push((number, format!("{key} ({why})"))),
        }
    }
    // A key that is neither box's nor distrobox's but that a later value used is the
    // file's own variable: no warning for it.
    let used: Vec<String> = text.lines().flat_map(variables_named).collect::<Vec<_>>();
    for (number, key, _) in &assignments {
        let known =
            MAPPED.iter().any(|(k, _, _)| k == key) || IGNORED.iter().any(|(k, _, _)| k == key);
        if !known && used.iter().any(|u| u == key) {
            left_out.push((*number, String::new()));
        }
    }
    let local: Vec<usize> = left_out
        .iter()
        .filter(|(_, why)| why.is_empty())
        .map(|(n, _)| *n)
        .collect();
    let assignments = assignments
        .into_iter()
        .filter(|(n, _, _)| !local.contains(n))
        .collect();
    (assignments, left_out)
}

/// `KEY=rest` (after an optional `export`), with KEY a shell variable name.
fn split_assignment(line: &str) -> Option<(&str, &str)> {
    let line = line
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map_or(line, str::trim_start);
    let (key, rest) = line.split_once('=')?;
    let mut chars = key.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((key, rest))
}

/// The names of the variables `line` expands (`$NAME`, `${NAME}`).
fn variables_named(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let braced = rest.strip_prefix('{');
        let text = braced.unwrap_or(rest);
        let name: String = text
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
}

/// The first 40 characters of a line, for warnings.
fn short(line: &str) -> String {
    match line.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_owned(),
    }
}

/// The value of an assignment as the shell would assign it, from the text after `=`:
/// quotes removed, escapes and variables resolved; an error for what needs more of the
/// shell. `lookup` gives a variable's value.
fn value(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    // A leading `~` (alone or before `/`) is the home directory, as the shell has it.
    if text == "~" || text.starts_with("~/") {
        chars.next();
        out.push_str(&lookup("HOME").ok_or("HOME is not set")?);
    }
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                // After the value only a comment may follow; `K=v cmd` runs a command.
                let rest: String = chars.collect();
                let rest = rest.trim_start();
                if rest.is_empty() || rest.starts_with('#') {
                    return Ok(out);
                }
                return Err("a command after the value, which box does not run".into());
            }
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("an unterminated `'`".into()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('$' | '`' | '"' | '\\')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("an unterminated `\"`".into()),
                    },
                    Some('$') => expand(&mut chars, &mut out, lookup)?,
                    Some('`') => return Err("command substitution, which box does not run".into()),
                    Some(c) => out.push(c),
                    None => return Err("an unterminated `\"`".into()),
                }
            },
            '\\' => {
                if let Some(c) = chars.next() {
                    out.push(c);
                }
            }
            '$' => expand(&mut chars, &mut out, lookup)?,
            '`' => return Err("command substitution, which box does not run".into()),
            ';' | '|' | '&' | '<' | '>' | '(' | ')' => {
                return Err(format!("shell code (`{c}`), which box does not run"));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Expand the variable after a `$` (`NAME` or `{NAME}`) into `out`; a `$` before
/// anything else is itself.
fn expand(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let braced = match chars.peek() {
        Some('(') => return Err("command substitution, which box does not run".into()),
        Some('{') => {
            chars.next();
            true
        }
        _ => false,
    };
    let mut name = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
            chars.next();
        } else {
            break;
        }
    }
    if braced && chars.next() != Some('}') {
        return Err("a `${...}` form box does not expand (only `${NAME}`)".into());
    }
    if name.is_empty() {
        out.push('$');
        return Ok(());
    }
    match lookup(&name) {
        Some(value) => {
            out.push_str(&value);
            Ok(())
        }
        None => Err(format!("${name} is not set")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "DBX_CONTAINER_NAME" => Some("from-env".into()),
            "DBX_CONTAINER_MANAGER" => Some("docker".into()),
            "DBX_VERBOSE" => Some("0".into()),
            _ => None,
        }
    }

    fn no_env(name: &str) -> Option<String> {
        (name == "HOME").then(|| "/home/u".to_owned())
    }

    #[test]
    fn values_read_as_the_shell_assigns_them() {
        let lookup = |name: &str| match name {
            "HOME" => Some("/home/u".to_owned()),
            "base" => Some("/srv".to_owned()),
            _ => None,
        };
        let v = |text: &str| value(text, &lookup);
        assert_eq!(v("plain").unwrap(), "plain");
        assert_eq!(v("\"two words\"").unwrap(), "two words");
        assert_eq!(v("'$HOME stays'").unwrap(), "$HOME stays");
        assert_eq!(v("\"$HOME/x\"").unwrap(), "/home/u/x");
        assert_eq!(v("${base}/y # a comment").unwrap(), "/srv/y");
        assert_eq!(v("~/boxes").unwrap(), "/home/u/boxes");
        assert_eq!(v("\"a \\\"q\\\" \\$b\"").unwrap(), "a \"q\" $b");
        assert_eq!(v("\"1\"").unwrap(), "1");
        assert_eq!(v("").unwrap(), "");
        assert!(
            v("\"$(id -u)\"")
                .unwrap_err()
                .contains("command substitution")
        );
        assert!(v("`id`").unwrap_err().contains("command substitution"));
        assert!(v("$NOPE").unwrap_err().contains("$NOPE is not set"));
        assert!(v("\"open").unwrap_err().contains("unterminated"));
        assert!(
            v("a cmd")
                .unwrap_err()
                .contains("a command after the value")
        );
        assert!(v("a;b").unwrap_err().contains("shell code"));
    }

    #[test]
    fn distrobox_s_documented_example_maps_or_is_named() {
        // distrobox's README example, as users copy it.
        let text = r#"container_always_pull="1"
container_generate_entry=0
container_manager="docker"
container_image_default="registry.opensuse.org/opensuse/toolbox:latest"
container_name_default="test-name-1"
container_user_custom_home="$HOME/.local/share/container-home-test"
container_init_hook="~/.local/distrobox/a_custom_default_init_hook.sh"
container_pre_init_hook="~/a_custom_default_pre_init_hook.sh"
container_manager_additional_flags="--env-file /path/to/file --custom-flag"
container_additional_volumes="/example:/example1 /example2:/example3:ro"
non_interactive="1"
skip_workdir="0"
PATH="$PATH:/path/to/custom/podman"
"#;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("distrobox.conf");
        std::fs::write(&file, text).unwrap();
        let with_path = |name: &str| match name {
            "PATH" => Some("/usr/bin".to_owned()),
            other => no_env(other),
        };
        let d = read(std::slice::from_ref(&file), &with_path);
        let t = &d.table;
        assert_eq!(t["always-pull"], toml::Value::Boolean(true));
        assert_eq!(t["generate-entry"], toml::Value::Boolean(false));
        assert_eq!(
            t["default-image"].as_str(),
            Some("registry.opensuse.org/opensuse/toolbox:latest")
        );
        assert_eq!(t["default-name"].as_str(), Some("test-name-1"));
        assert_eq!(
            t["default-home"].as_str(),
            Some("/home/u/.local/share/container-home-test")
        );
        // Inside double quotes `~` is literal, as in the shell.
        assert_eq!(
            t["init-hooks"].as_array().unwrap()[0].as_str(),
            Some("~/.local/distrobox/a_custom_default_init_hook.sh")
        );
        assert_eq!(t["volumes"].as_array().unwrap().len(), 2);
        assert_eq!(t["non-interactive"], toml::Value::Boolean(true));
        assert_eq!(t["skip-workdir"], toml::Value::Boolean(false));
        // One notice for the file, naming each key box ignores, with why.
        assert_eq!(d.notices.len(), 1, "{:?}", d.notices);
        let notice = &d.notices[0];
        assert_eq!(notice.origin, file.display().to_string());
        for named in [
            "line 3: container_manager (box is its own container engine)",
            "line 9: container_manager_additional_flags",
            "line 13: PATH",
        ] {
            assert!(notice.text.contains(named), "{named}: {}", notice.text);
        }
        assert!(!notice.text.contains("line 1:"), "{}", notice.text);
    }

    #[test]
    fn later_files_and_then_variables_win_and_shell_code_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.conf");
        let user = dir.path().join("user.conf");
        std::fs::write(
            &system,
            "container_name_default=sys\ncontainer_image_default=fedora\nverbose=false\ncontainer_manager=autodetect\n",
        )
        .unwrap();
        std::fs::write(
            &user,
            "# mine\nexport container_image_default=\"debian\"\nbase=/srv\ncontainer_home_prefix=\"$base/homes\"\nif [ -n \"$X\" ]; then\nfi\ncontainer_hostname=$(hostname)\nfrobnicate=1\n",
        )
        .unwrap();
        let d = read(
            &[
                dir.path().join("missing.conf"),
                system.clone(),
                user.clone(),
            ],
            &env,
        );
        assert_eq!(d.table["default-image"].as_str(), Some("debian"));
        assert_eq!(d.table["home-prefix"].as_str(), Some("/srv/homes"));
        // DBX_CONTAINER_NAME over the files.
        assert_eq!(d.table["default-name"].as_str(), Some("from-env"));
        // The system file asks for nothing box ignores: no notice; DBX_VERBOSE=0 neither.
        let origins: Vec<&str> = d.notices.iter().map(|n| n.origin.as_str()).collect();
        assert_eq!(
            origins,
            [
                user.display().to_string().as_str(),
                "DBX_CONTAINER_MANAGER=docker"
            ]
        );
        let text = &d.notices[0].text;
        for named in [
            "line 5: `if [ -n \"$X\" ]; then` is shell code",
            "line 6: `fi` is shell code",
            "line 7: container_hostname (command substitution",
            "line 8: frobnicate (not a distrobox setting box knows)",
        ] {
            assert!(text.contains(named), "{named}: {text}");
        }
        // `base` is the file's own variable.
        assert!(!text.contains("base"), "{text}");
        assert!(
            d.notices[1]
                .message()
                .contains("box is its own container engine")
        );
    }

    #[test]
    fn bad_yes_no_values_are_named_and_others_keep_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.conf");
        std::fs::write(&file, "non_interactive=maybe\ncontainer_always_pull=yes\n").unwrap();
        let d = read(&[file], &no_env);
        assert!(!d.table.contains_key("non-interactive"));
        assert_eq!(d.table["always-pull"], toml::Value::Boolean(true));
        assert!(d.notices[0].text.contains("`maybe` is not yes or no"));
    }
}
