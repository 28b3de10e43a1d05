//! Desktop entries: finding an application in a box, rebuilding its entry for the host,
//! and the box's own "open a terminal" entry.
//!
//! An application's entry is the image author's, and the host's launchers read more of
//! it than `Exec=`: KDE's reader (KConfig, for Plasma's menu and `kioclient exec`) also
//! takes `Exec[$e]`, `Exec[$i]`, a localized `Exec[C]` or `Exec[en_US]`, escaped key
//! and group names (`E\x78ec`, `[Desktop\sEntry]`), `[Desktop Entry][$i]`, and appends
//! `TerminalOptions` to the terminal's command line; GLib activates a `DBusActivatable`
//! app over D-Bus instead of running its Exec line. So the exported entry is **rebuilt
//! from an allow-list**, never edited in place.
//!
//! Invariants of the export ([`Entry::parse`], [`rewrite`]):
//! - The entry is read only when readers agree on it: a control character anywhere (but
//!   a tab, and `\r` before a line break), a group header other than a plain `[NAME]`
//!   (brackets, backslash escapes, `[$i]` flags or text after it), or a second
//!   `[Desktop Entry]`, a second `[Desktop Action ID]` or a key twice in one of them is
//!   refused with an error saying which line: KConfig and GLib decode those differently,
//!   and last-wins readers take a later key.
//! - The host file has exactly two kinds of groups, written by box: `[Desktop Entry]`
//!   and one `[Desktop Action ID]` for each action `Actions=` lists that has an Exec (ids
//!   of letters, digits, `-` and `_`). Other groups go.
//! - Each group's one `Exec` runs `/usr/bin/env BOX_DATA_HOME=DIR [BOX_WORKDIR=DIR]
//!   /path/to/box run NAME -- ARGV`, where ARGV is the plain `Exec` of the same group in
//!   the box, parsed as launchers parse it and written back as the specification says
//!   (double quotes only, which the shell KDE falls back to reads the same way), field
//!   codes kept for the launcher. No other key that can run or change a command is
//!   written: any variant of `Exec`, `TryExec` and `Path` (flags, locales, escapes),
//!   `TerminalOptions`, `DBusActivatable`, `Implements`, `URL`, `Hidden` and every
//!   `X-*` key (`X-KDE-SubstituteUID` and `X-KDE-Username` run through su,
//!   `X-KDE-RunOnDiscreteGpu`, `X-Flatpak`, ...) are left out.
//! - Kept, when the key is plain or localized (`Key[ll_CC.ENC@MOD]`, nothing else) and
//!   its value holds only escapes both readers decode alike and decodes to no control
//!   character: `Name`, `GenericName`, `Comment`, `Keywords` (display), `Icon` (an icon
//!   name, or the host path of the icon's copy), `Categories`, `MimeType`, `OnlyShowIn`,
//!   `NotShowIn`, `StartupWMClass`, `Version`, and the booleans `Terminal`,
//!   `StartupNotify`, `NoDisplay`, `PrefersNonDefaultGPU` and `SingleMainWindow`
//!   (written `true` or `false`). `Terminal=true` runs box's command line in the host's
//!   terminal, which is what the box's menu does with the app's. Comments go.
//!
//! Where the box's keys would name the host's world instead of the box's:
//! - `Path` (the working directory) is the box's (`/opt/app`), which the host may lack,
//!   so the launcher would fail to change to it; box changes to it in the box instead
//!   (`BOX_WORKDIR`, see `runtime::join`), the same for every Exec (GLib runs actions in
//!   the entry's Path too). An assignment on env's command line rather than a shell
//!   script, so launchers that cannot parse escaped quotes (dex) start it too.
//! - `TryExec` tests a program the *host* has, and the program is the box's; box checks
//!   it in the box at export time instead (`export::app_from`).
//!
//! Nothing is added here: the export names the host file after its box and adds the
//! `StartupWMClass` that keeps the window matching its launcher (see
//! `export::exported_id`). Labelled names lose trailing blanks before the label.
//!
//! Launchers run box as `/usr/bin/env BOX_DATA_HOME=DIR /path/to/box ...`: box by its
//! absolute path (a session's PATH may lack it), the data directory pinned so the entry
//! reaches the store it was exported from whatever `XDG_DATA_HOME` the launcher has.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::boxfs::{self, BoxRoot};
use super::exec;
use super::wrapper::Launch;
use crate::error::failure;

/// The directories of a box searched for applications, most important first (the
/// default `$XDG_DATA_DIRS` order, then Flatpak's exports).
pub const APP_DIRS: [&str; 3] = [
    "/usr/local/share/applications",
    "/usr/share/applications",
    "/var/lib/flatpak/exports/share/applications",
];

/// The largest desktop file box reads.
const MAX_DESKTOP_FILE: u64 = 1 << 20;

/// A parsed line of a desktop file, read leniently (for finding applications).
#[derive(Debug, Clone)]
enum Line {
    Group(String),
    Entry {
        key: String,
        locale: Option<String>,
        value: String,
    },
    /// Comments, blank lines, and anything unparsable: kept as is (the caller has the
    /// raw line).
    Other,
}

fn parse_line(line: &str) -> Line {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || trimmed.is_empty() {
        return Line::Other;
    }
    if let Some(group) = trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.trim_end().strip_suffix(']'))
    {
        return Line::Group(group.to_owned());
    }
    let Some((key, value)) = line.split_once('=') else {
        return Line::Other;
    };
    let key = key.trim();
    let (key, locale) = match key.split_once('[') {
        Some((k, rest)) => (k, rest.strip_suffix(']').map(str::to_owned)),
        None => (key, None),
    };
    Line::Entry {
        key: key.to_owned(),
        locale,
        value: value.trim_start().to_owned(),
    }
}

/// The values of one group of a desktop file (unlocalized keys only, general escapes
/// undone), for searching.
#[derive(Debug, Default, Clone)]
pub struct Group(BTreeMap<String, String>);

impl Group {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// The `[Desktop Entry]` group of `text`, read leniently: for listing and finding
/// applications. Exports read entries through [`Entry::parse`].
pub fn main_group(text: &str) -> Group {
    let mut group = Group::default();
    let mut in_main = false;
    for line in text.lines().map(parse_line) {
        match line {
            Line::Group(name) => in_main = name == "Desktop Entry",
            Line::Entry {
                key,
                locale: None,
                value,
            } if in_main => {
                group.0.entry(key).or_insert(exec::unescape_string(&value));
            }
            _ => {}
        }
    }
    group
}

/// The name of the main group.
const MAIN: &str = "Desktop Entry";
/// The prefix of action groups' names.
const ACTION: &str = "Desktop Action ";

/// One key of a group, as the file has it.
#[derive(Debug, Clone)]
struct Key {
    /// The name, without its bracketed suffix (`Exec`, `Name`).
    name: String,
    /// What the brackets held (`de`, `$e`, `C`), if any.
    suffix: Option<String>,
    /// The value as written (general escapes not undone).
    raw: String,
}

impl Key {
    /// The plain key `name` (no suffix).
    fn is(&self, name: &str) -> bool {
        self.name == name && self.suffix.is_none()
    }

    /// `[locale]` when the suffix is a locale (`ll`, `ll_CC`, with `.ENCODING` and
    /// `@MODIFIER`), "" when there is none; `None` for anything else (flags such as
    /// `$e`, a `C`, several brackets): keys box never writes.
    fn locale_suffix(&self) -> Option<String> {
        match &self.suffix {
            None => Some(String::new()),
            Some(locale) if is_locale(locale) => Some(format!("[{locale}]")),
            Some(_) => None,
        }
    }
}

/// Whether `s` is a locale as the specification writes them: `lang_COUNTRY.ENCODING@MODIFIER`
/// with the last three optional.
fn is_locale(s: &str) -> bool {
    let (rest, modifier) = match s.split_once('@') {
        Some((rest, m)) => (rest, Some(m)),
        None => (s, None),
    };
    let (rest, encoding) = match rest.split_once('.') {
        Some((rest, e)) => (rest, Some(e)),
        None => (rest, None),
    };
    let (lang, country) = match rest.split_once('_') {
        Some((l, c)) => (l, Some(c)),
        None => (rest, None),
    };
    let word = |s: &str, chars: fn(char) -> bool| !s.is_empty() && s.chars().all(chars);
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_lowercase())
        && country
            .is_none_or(|c| (2..=3).contains(&c.len()) && word(c, |c| c.is_ascii_alphanumeric()))
        && encoding.is_none_or(|e| word(e, |c| c.is_ascii_alphanumeric() || c == '-'))
        && modifier.is_none_or(|m| word(m, |c| c.is_ascii_alphanumeric()))
}

/// Whether `name` is a key name as the specification allows (`A-Za-z0-9-`): the only
/// names box writes, so no escaped or flagged form reaches the host.
fn is_key_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Whether `id` is an action id box writes into a group name.
fn is_action_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One group of the entry box reads: `[Desktop Entry]` or a `[Desktop Action ID]`.
#[derive(Debug, Clone, Default)]
struct Section {
    keys: Vec<Key>,
}

impl Section {
    /// The plain key `name`, general escapes undone.
    fn get(&self, name: &str) -> Option<String> {
        self.keys
            .iter()
            .find(|k| k.is(name))
            .map(|k| exec::unescape_string(&k.raw))
    }
}

/// An application's desktop entry, read as export needs it (see the module doc).
#[derive(Debug, Clone)]
pub struct Entry {
    main: Section,
    /// The plainly named `[Desktop Action ID]` groups, by id.
    actions: BTreeMap<String, Section>,
}

/// The error for line `n` of an entry that readers would take differently.
fn disagreement(n: usize, what: String) -> anyhow::Error {
    failure(
        format!(
            "line {n} {what}, which the host's desktops (KDE's and GLib's readers) read differently, so box does not export it"
        ),
        "export an entry that follows the Desktop Entry Specification (desktop-file-validate shows where it does not); fix it in the box, or copy it, fix it and export that file by its path",
    )
}

impl Entry {
    /// Read desktop file `text`, refusing what readers disagree on (see the module doc).
    pub fn parse(text: &str) -> Result<Entry> {
        let mut main: Option<Section> = None;
        let mut actions: BTreeMap<String, Section> = BTreeMap::new();
        // Where keys go: the main group, an action, or nowhere (another group).
        enum Current {
            None,
            Main,
            Action(String),
        }
        let mut current = Current::None;
        let lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
        for (i, line) in lines.enumerate() {
            let n = i + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
                return Err(disagreement(
                    n,
                    format!("has a control character ({})", c.escape_unicode()),
                ));
            }
            let line = line.trim_matches([' ', '\t']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                let name = line
                    .strip_prefix('[')
                    .and_then(|l| l.strip_suffix(']'))
                    .filter(|name| !name.contains(['[', ']', '\\']));
                let Some(name) = name else {
                    return Err(disagreement(
                        n,
                        format!("has the group header `{line}`, which is not a plain `[NAME]`"),
                    ));
                };
                current = if name == MAIN {
                    if main.is_some() {
                        return Err(disagreement(n, format!("starts `[{MAIN}]` twice")));
                    }
                    main = Some(Section::default());
                    Current::Main
                } else if let Some(id) = name.strip_prefix(ACTION) {
                    if actions.insert(id.to_owned(), Section::default()).is_some() {
                        return Err(disagreement(n, format!("starts `[{name}]` twice")));
                    }
                    Current::Action(id.to_owned())
                } else {
                    Current::None
                };
                continue;
            }
            let section = match &current {
                Current::None => continue,
                Current::Main => main.as_mut(),
                Current::Action(id) => actions.get_mut(id),
            };
            let (Some(section), Some((key, value))) = (section, line.split_once('=')) else {
                continue;
            };
            let key = key.trim_matches([' ', '\t']);
            let (name, suffix) = match key.split_once('[') {
                Some((name, rest)) => (name, Some(rest.strip_suffix(']').unwrap_or(rest))),
                None => (key, None),
            };
            let key = Key {
                name: name.to_owned(),
                suffix: suffix.map(str::to_owned),
                raw: value.trim_start_matches([' ', '\t']).to_owned(),
            };
            if section
                .keys
                .iter()
                .any(|k| k.name == key.name && k.suffix == key.suffix)
            {
                return Err(disagreement(
                    n,
                    format!(
                        "has the key `{}` twice in its group",
                        line.split('=').next().unwrap_or_default().trim()
                    ),
                ));
            }
            section.keys.push(key);
        }
        let Some(main) = main else {
            bail!(failure(
                "it has no [Desktop Entry] group, so it is not a desktop entry",
                "export an application's .desktop file (`box run NAME -- ls /usr/share/applications` lists them)",
            ));
        };
        Ok(Entry { main, actions })
    }

    /// The plain key `name` of `[Desktop Entry]`, general escapes undone.
    pub fn get(&self, name: &str) -> Option<String> {
        self.main.get(name)
    }

    /// The actions box exports, in the order `Actions=` lists them: those with a
    /// plainly named group that has an Exec, under an id box can write.
    fn exported_actions(&self) -> Vec<(&str, &Section)> {
        let listed = self.get("Actions").unwrap_or_default();
        let mut out: Vec<(&str, &Section)> = Vec::new();
        for id in listed.split(';').map(str::trim) {
            if !is_action_id(id) || out.iter().any(|(seen, _)| *seen == id) {
                continue;
            }
            if let Some((id, section)) = self.actions.get_key_value(id)
                && section.get("Exec").is_some()
            {
                out.push((id.as_str(), section));
            }
        }
        out
    }

    /// Every `Icon` value box writes (the entry's and its exported actions', localized
    /// too), unescaped, each once.
    pub fn icon_values(&self) -> Vec<String> {
        let mut icons: Vec<String> = Vec::new();
        let sections =
            std::iter::once(&self.main).chain(self.exported_actions().into_iter().map(|(_, s)| s));
        for section in sections {
            for key in &section.keys {
                if key.name != "Icon" || key.locale_suffix().is_none() {
                    continue;
                }
                if let Some(value) = copyable(&key.raw, false)
                    && !value.is_empty()
                    && !icons.contains(&value)
                {
                    icons.push(value);
                }
            }
        }
        icons
    }
}

/// The value `raw` unescaped, when it may be copied to the host: every backslash starts
/// an escape both readers decode alike (`\s \n \t \r \\`, and `\;` in a list), and the
/// result has no control character. `None` otherwise.
fn copyable(raw: &str, list: bool) -> Option<String> {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('s' | 'n' | 't' | 'r' | '\\') => {}
                Some(';') if list => {}
                _ => return None,
            }
        }
    }
    let value = exec::unescape_string(raw);
    (!value.chars().any(char::is_control)).then_some(value)
}

/// What the rewrite of an application's entry needs.
#[derive(Debug)]
pub struct Rewrite<'a> {
    pub launch: &'a Launch<'a>,
    pub box_name: &'a str,
    /// Appended to every `Name` of `[Desktop Entry]`; empty for nothing.
    pub label: &'a str,
    /// Host replacements for `Icon=` values (an icon copied to an absolute host path, an
    /// icon name given with an extension).
    pub icons: &'a BTreeMap<String, String>,
}

/// The words that start box as `launch` says: `/usr/bin/env BOX_DATA_HOME=DIR BOX`.
fn launch_words(launch: &Launch) -> Vec<exec::Arg> {
    launch_words_in(launch, None)
}

/// [`launch_words`], with `BOX_WORKDIR=DIR` when there is a working directory.
fn launch_words_in(launch: &Launch, workdir: Option<&str>) -> Vec<exec::Arg> {
    let mut words = vec![
        exec::text("/usr/bin/env"),
        exec::text(&format!(
            "{}={}",
            crate::context::DATA_HOME_ENV,
            launch.data_home.to_string_lossy()
        )),
    ];
    if let Some(dir) = workdir {
        words.push(exec::text(&format!(
            "{}={dir}",
            crate::runtime::join::WORKDIR_ENV
        )));
    }
    words.push(exec::text(&launch.box_exe.to_string_lossy()));
    words
}

/// The `Exec` value that runs `original` (a raw Exec value) in the box, in directory
/// `workdir` of the box when there is one.
pub fn boxed_exec(
    launch: &Launch,
    box_name: &str,
    original: &str,
    workdir: Option<&str>,
) -> Result<String> {
    let args = exec::parse_value(original)?;
    if args.is_empty() {
        bail!("the Exec line is empty");
    }
    let mut boxed = launch_words_in(launch, workdir);
    boxed.extend([exec::text("run"), exec::text(box_name), exec::text("--")]);
    boxed.extend(args);
    Ok(exec::to_value(&boxed))
}

/// Keys copied as they are when their value is [`copyable`]: (name, localizable, list).
const COPIED: [(&str, bool, bool); 9] = [
    ("GenericName", true, false),
    ("Comment", true, false),
    ("Keywords", true, true),
    ("Categories", false, true),
    ("MimeType", false, true),
    ("OnlyShowIn", false, true),
    ("NotShowIn", false, true),
    ("StartupWMClass", false, false),
    ("Version", false, false),
];

/// Boolean keys, written `true` or `false`.
const BOOLEANS: [&str; 5] = [
    "Terminal",
    "StartupNotify",
    "NoDisplay",
    "PrefersNonDefaultGPU",
    "SingleMainWindow",
];

/// Rebuild the desktop entry of an application so it runs in the box, from the keys the
/// module doc lists.
pub fn rewrite(entry: &Entry, params: &Rewrite) -> Result<String> {
    // Links and directories have no command to run in the box; exporting them would
    // only put the box's URLs in the host menu.
    match entry.get("Type").as_deref() {
        Some("Application") | None => {}
        Some(other) => bail!(failure(
            format!("it is of Type={other}; only applications can be exported"),
            "export an application's entry (Type=Application)",
        )),
    }
    if entry.get("Exec").is_none() {
        bail!(failure(
            "it has no Exec= line (it may only be D-Bus activatable), so it cannot be run through box",
            "export the application's binary with --bin instead",
        ));
    }
    let workdir = entry.get("Path").filter(|dir| !dir.is_empty());
    if let Some(dir) = &workdir
        && (!dir.starts_with('/') || dir.chars().any(char::is_control))
    {
        bail!(failure(
            format!(
                "its Path={} is not an absolute directory",
                dir.escape_debug()
            ),
            "fix the entry's Path in the box (or copy the entry, fix it and export that file by its path)",
        ));
    }
    let exec_of = |section: &Section, group: &str| -> Result<String> {
        let raw = section
            .keys
            .iter()
            .find(|k| k.is("Exec"))
            .map(|k| k.raw.as_str());
        boxed_exec(
            params.launch,
            params.box_name,
            raw.unwrap_or_default(),
            workdir.as_deref(),
        )
        .map_err(|err| {
            err.context(format!("cannot rewrite Exec= of [{group}]"))
                .context(crate::error::Hint(
                    "the entry's Exec line breaks the Desktop Entry rules; fix it in the box (or copy the entry, fix it and export that file by its path)".into(),
                ))
        })
    };
    let icon_line = |key: &Key, locale: &str| -> Option<String> {
        let value = copyable(&key.raw, false)?;
        let host = match params.icons.get(&value) {
            Some(host) => host.clone(),
            // A name the box has no file for: the host's theme may have it. A path
            // that was not copied would name a host file: left out.
            None if super::icons::is_plain_name(&value) => value,
            None => return None,
        };
        Some(format!("Icon{locale}={}\n", exec::escape_string(&host)))
    };
    let label = exec::escape_appended(params.label);
    let actions = entry.exported_actions();

    let mut out = format!("[{MAIN}]\nType=Application\n");
    for key in &entry.main.keys {
        let Some(locale) = key.locale_suffix() else {
            continue;
        };
        let plain = locale.is_empty();
        let line = match key.name.as_str() {
            "Exec" if plain => Some(format!("Exec={}\n", exec_of(&entry.main, MAIN)?)),
            "Name" => copyable(&key.raw, false).map(|_| {
                // `Name=Editor  ` would read `Editor   (on dev)`.
                format!("Name{locale}={}{label}\n", key.raw.trim_end())
            }),
            "Icon" => icon_line(key, &locale),
            "Actions" if plain && !actions.is_empty() => {
                let ids: Vec<&str> = actions.iter().map(|(id, _)| *id).collect();
                Some(format!("Actions={};\n", ids.join(";")))
            }
            name if plain && BOOLEANS.contains(&name) => match key.raw.as_str() {
                "true" | "1" => Some(format!("{name}=true\n")),
                "false" | "0" => Some(format!("{name}=false\n")),
                _ => None,
            },
            name => COPIED
                .iter()
                .find(|(copied, localized, _)| *copied == name && (plain || *localized))
                .filter(|_| is_key_name(name))
                .and_then(|(_, _, list)| copyable(&key.raw, *list))
                .map(|_| format!("{name}{locale}={}\n", key.raw)),
        };
        out.push_str(&line.unwrap_or_default());
    }
    for (id, section) in actions {
        let group = format!("{ACTION}{id}");
        out.push_str(&format!("\n[{group}]\n"));
        for key in &section.keys {
            let Some(locale) = key.locale_suffix() else {
                continue;
            };
            let line = match key.name.as_str() {
                "Exec" if locale.is_empty() => {
                    Some(format!("Exec={}\n", exec_of(section, &group)?))
                }
                "Name" => copyable(&key.raw, false).map(|_| format!("Name{locale}={}\n", key.raw)),
                "Icon" => icon_line(key, &locale),
                _ => None,
            };
            out.push_str(&line.unwrap_or_default());
        }
    }
    Ok(out)
}

/// An application found in a box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// The desktop file id (`org.gnome.Calculator.desktop`).
    pub id: String,
    /// The desktop file's path in the box.
    pub path: String,
    /// `Name=` (unlocalized).
    pub name: String,
    /// The basename of the program `Exec=` runs.
    pub program: String,
}

/// Every application entry in the box's application directories; an id found in two
/// directories counts once, from the more important one (as the spec's lookup does).
pub fn list_apps(root: &BoxRoot) -> Result<Vec<App>> {
    let mut apps: BTreeMap<String, App> = BTreeMap::new();
    for dir in APP_DIRS {
        let mut found = Vec::new();
        walk(root, dir, "", 0, &mut found)?;
        for (id, path) in found {
            if apps.contains_key(&id) {
                continue;
            }
            let app = describe(root, &id, &path);
            apps.insert(id, app);
        }
    }
    Ok(apps.into_values().collect())
}

/// The id/name/program of a desktop file (unreadable files still get an id).
fn describe(root: &BoxRoot, id: &str, path: &str) -> App {
    let text = root
        .read(path, MAX_DESKTOP_FILE)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let group = main_group(&text);
    let program = group
        .get("Exec")
        .and_then(|e| exec::parse(e).ok())
        .and_then(|args| exec::program(&args))
        .map(|p| p.rsplit('/').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    App {
        id: id.to_owned(),
        path: path.to_owned(),
        name: group.get("Name").unwrap_or_default().to_owned(),
        program,
    }
}

/// Collect `(desktop id, box path)` under `dir`: the id is the path below the
/// applications directory with `/` replaced by `-` (the spec's desktop file id rule).
fn walk(
    root: &BoxRoot,
    dir: &str,
    prefix: &str,
    depth: usize,
    out: &mut Vec<(String, String)>,
) -> Result<()> {
    // Deep trees are not application directories; stop rather than wander.
    if depth > 4 {
        return Ok(());
    }
    for (name, _) in root.list(dir)? {
        let path = boxfs::join(dir, &name);
        if name.ends_with(".desktop") {
            if root.meta(&path)?.is_some_and(|m| m.is_file()) {
                out.push((format!("{prefix}{name}"), path));
            }
        } else if root.is_dir(&path) {
            walk(root, &path, &format!("{prefix}{name}-"), depth + 1, out)?;
        }
    }
    Ok(())
}

/// Find the application `query` names: a desktop file path in the box, a desktop file
/// id (with or without `.desktop`), or an application name (`Name=`, case-insensitive,
/// or the basename of the program it runs).
pub fn find_app(root: &BoxRoot, box_name: &str, query: &str) -> Result<App> {
    if query.starts_with('/') {
        if !root.meta(query)?.is_some_and(|m| m.is_file()) {
            bail!(failure(
                format!("there is no desktop file {query} in box `{box_name}`"),
                format!(
                    "`box run {box_name} -- ls /usr/share/applications` lists its applications"
                ),
            ));
        }
        // Keep the spec's id when the file lies in an application directory.
        let id = APP_DIRS
            .iter()
            .find_map(|dir| query.strip_prefix(&format!("{dir}/")))
            .map(|rel| rel.replace('/', "-"))
            .unwrap_or_else(|| query.rsplit('/').next().unwrap_or(query).to_owned());
        return Ok(describe(root, &id, query));
    }
    let apps = list_apps(root)?;
    let id = if query.ends_with(".desktop") {
        query.to_owned()
    } else {
        format!("{query}.desktop")
    };
    if let Some(app) = apps.iter().find(|a| a.id == id) {
        return Ok(app.clone());
    }
    let wanted = query.to_lowercase();
    let matches: Vec<&App> = apps
        .iter()
        .filter(|a| a.name.to_lowercase() == wanted || a.program == query)
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let close = close_names(&apps, query);
            let hint = if apps.is_empty() {
                format!(
                    "box `{box_name}` has no desktop files in {}; install the application there first",
                    APP_DIRS.join(", ")
                )
            } else if close.is_empty() {
                format!("`box run {box_name} -- ls /usr/share/applications` lists its applications")
            } else {
                format!("close names: {}", close.join(", "))
            };
            Err(failure(
                format!("no application `{query}` in box `{box_name}`"),
                hint,
            ))
        }
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|a| format!("{} ({})", a.id, a.path))
                .collect();
            Err(failure(
                format!(
                    "`{query}` matches several applications in box `{box_name}`: {}",
                    list.join(", ")
                ),
                format!("pass the desktop file id, e.g. `--app {}`", many[0].id),
            ))
        }
    }
}

/// Up to five ids or names that look like `query` (substring either way, or a small
/// edit distance).
fn close_names(apps: &[App], query: &str) -> Vec<String> {
    let q = query.to_lowercase();
    let q = q.trim_end_matches(".desktop");
    let mut scored: Vec<(usize, String)> = Vec::new();
    for app in apps {
        let id = app.id.trim_end_matches(".desktop").to_lowercase();
        for candidate in [id.as_str(), &app.name.to_lowercase(), app.program.as_str()] {
            if candidate.is_empty() {
                continue;
            }
            let distance = if candidate.contains(q) || q.contains(candidate) {
                0
            } else {
                edit_distance(q, candidate)
            };
            if distance <= 2 + q.len() / 4 {
                scored.push((distance, app.id.clone()));
                break;
            }
        }
    }
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, id)| id).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

/// The desktop entry that opens a terminal in box `name` (`box generate-entry`).
///
/// Its Remove action runs `box rm --interactive`: GNOME (GLib) and KDE (KIO) run an
/// action in a terminal when the entry has `Terminal=true`, and there box asks before
/// removing the box; a desktop that gives the action no terminal gets a refusal, never a
/// box deleted in one click.
///
/// `Categories=System;`: one main category (desktop-file-validate hints at two, and the
/// entry would show twice in some menus); not `TerminalEmulator`, which would offer the
/// entry as the session's terminal program.
pub fn terminal_entry(launch: &Launch, name: &str) -> String {
    let with = |args: &[&str]| {
        let mut words = launch_words(launch);
        words.extend(args.iter().map(|a| exec::text(a)));
        exec::to_value(&words)
    };
    let enter = with(&["enter", name]);
    let remove = with(&["rm", "--interactive", name]);
    let try_exec = exec::escape_string(&launch.box_exe.to_string_lossy());
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name={name} (box)\n\
         GenericName=Terminal in box {name}\n\
         Comment=Open a shell in box {name}\n\
         Exec={enter}\n\
         TryExec={try_exec}\n\
         Terminal=true\n\
         Icon=utilities-terminal\n\
         Categories=System;\n\
         Keywords=box;container;shell;{name};\n\
         Actions=Remove;\n\
         \n\
         [Desktop Action Remove]\n\
         Name=Remove box {name}\n\
         Exec={remove}\n"
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    const GIMP: &str = "\
# a comment, which goes
[Desktop Entry]
Version=1.0
Type=Application
Name=GNU Image Manipulation Program
Name[de]=GNU Bildbearbeitungsprogramm
GenericName=Image Editor
Comment=Create images
Comment[fr]=Créer des images
Exec=env BABL_PATH=/x \"/opt/gimp app/bin/gimp-2.10\" --title \"say \\\\\"hi\\\\\"\" 100%% %U
TryExec=gimp-2.10
Icon=gimp
DBusActivatable=true
Actions=new;

[Desktop Action new]
Name=New Window
Exec=gimp-2.10 --new %f

[X-Other Group]
Exec=untouched %u
";

    fn launch() -> Launch<'static> {
        Launch {
            box_exe: Path::new("/home/u/.cargo/bin/box"),
            data_home: Path::new("/home/u/.local/share"),
        }
    }

    fn params<'a>(launch: &'a Launch<'a>, icons: &'a BTreeMap<String, String>) -> Rewrite<'a> {
        Rewrite {
            launch,
            box_name: "dev",
            label: " (on dev)",
            icons,
        }
    }

    /// Parse and rebuild `text` with `params`.
    fn rebuild(text: &str, params: &Rewrite) -> Result<String> {
        rewrite(&Entry::parse(text)?, params)
    }

    const BOXED: &str =
        "/usr/bin/env BOX_DATA_HOME=/home/u/.local/share /home/u/.cargo/bin/box run dev --";

    #[test]
    fn rewrite_boxes_every_exec_and_keeps_only_the_allowed_keys() {
        let icons = BTreeMap::from([("gimp".to_owned(), "/h/icons/gimp.png".to_owned())]);
        let out = rebuild(GIMP, &params(&launch(), &icons)).unwrap();
        let expected = format!(
            "\
[Desktop Entry]
Type=Application
Version=1.0
Name=GNU Image Manipulation Program (on dev)
Name[de]=GNU Bildbearbeitungsprogramm (on dev)
GenericName=Image Editor
Comment=Create images
Comment[fr]=Créer des images
Exec={BOXED} env BABL_PATH=/x \"/opt/gimp app/bin/gimp-2.10\" --title \"say \\\\\"hi\\\\\"\" 100%% %U
Icon=/h/icons/gimp.png
Actions=new;

[Desktop Action new]
Name=New Window
Exec={BOXED} gimp-2.10 --new %f
"
        );
        assert_eq!(out, expected);
        // The boxed line parses back to box's argv followed by the original argv.
        let args = exec::parse_value(&exec::escape_string(
            &Entry::parse(&out).unwrap().get("Exec").unwrap(),
        ))
        .unwrap();
        let original = exec::parse_value(
            "env BABL_PATH=/x \"/opt/gimp app/bin/gimp-2.10\" --title \"say \\\\\"hi\\\\\"\" 100%% %U",
        )
        .unwrap();
        assert_eq!(
            exec::literal(&args[1]).as_deref(),
            Some("BOX_DATA_HOME=/home/u/.local/share")
        );
        assert_eq!(args[6..], original[..]);
    }

    #[test]
    fn existing_wm_class_is_kept_and_empty_label_adds_nothing() {
        let text =
            "[Desktop Entry]\nName=XTerm\nExec=xterm\nType=Application\nStartupWMClass=XTerm\n";
        let icons = BTreeMap::new();
        let launch = launch();
        let mut p = params(&launch, &icons);
        p.label = "";
        let out = rebuild(text, &p).unwrap();
        assert_eq!(
            out,
            format!(
                "[Desktop Entry]\nType=Application\nName=XTerm\nExec={BOXED} xterm\nStartupWMClass=XTerm\n"
            )
        );
    }

    #[test]
    fn path_becomes_the_box_s_working_directory_and_names_lose_trailing_blanks() {
        let text = "[Desktop Entry]\nType=Application\nName=Tool  \nName[de]=Werkzeug \t\nPath=/opt/my app/100%\nTryExec=tool\nExec=tool --open %f\nActions=more;\n\n[Desktop Action more]\nName=More \nExec=tool --more\n";
        let icons = BTreeMap::new();
        let out = rebuild(text, &params(&launch(), &icons)).unwrap();
        // The host may lack the box's directory: no Path, no TryExec on the host.
        assert!(!out.contains("Path="), "{out}");
        assert!(!out.contains("TryExec"), "{out}");
        assert!(out.contains("\nName=Tool (on dev)\n"), "{out}");
        assert!(out.contains("\nName[de]=Werkzeug (on dev)\n"), "{out}");
        // Only the entry's names are labelled; an action's name stays as it was.
        assert!(out.contains("\nName=More\n"), "{out}");
        // Every Exec, the action's too, names the directory for box, before box: an
        // assignment on env's command line, no script with quotes to escape.
        let execs: Vec<Vec<exec::Arg>> = out
            .lines()
            .filter_map(|l| l.strip_prefix("Exec="))
            .map(|v| exec::parse_value(v).unwrap())
            .collect();
        assert_eq!(execs.len(), 2);
        for (args, tail) in execs
            .iter()
            .zip([&["tool", "--open"][..], &["tool", "--more"]])
        {
            let words: Vec<String> = args.iter().filter_map(exec::literal).collect();
            assert_eq!(
                words[..7],
                [
                    "/usr/bin/env",
                    "BOX_DATA_HOME=/home/u/.local/share",
                    "BOX_WORKDIR=/opt/my app/100%",
                    "/home/u/.cargo/bin/box",
                    "run",
                    "dev",
                    "--",
                ]
            );
            assert_eq!(words[7..], *tail);
        }
        assert!(out.contains(" \"BOX_WORKDIR=/opt/my app/100%%\" "), "{out}");
        // The field code is still a code, for the launcher to expand.
        assert_eq!(execs[0].last().unwrap(), &vec![exec::Piece::Code('f')]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool.desktop");
        std::fs::write(&path, &out).unwrap();
        assert_validates(&path);
        // A Path that is no absolute directory is refused.
        let err = rebuild(
            &text.replace("Path=/opt/my app/100%", "Path=relative"),
            &params(&launch(), &icons),
        )
        .unwrap_err();
        assert!(
            crate::error::message(&err).contains("Path=relative is not an absolute directory"),
            "{err:#}"
        );
    }

    #[test]
    fn shell_single_quotes_keep_their_argument() {
        // Not valid per the spec, but GLib and KDE accept it and real entries use it.
        let text =
            "[Desktop Entry]\nType=Application\nName=X\nExec=sh -c 'echo one two > /tmp/x' %U\n";
        let icons = BTreeMap::new();
        let out = rebuild(text, &params(&launch(), &icons)).unwrap();
        assert!(
            out.contains(" run dev -- sh -c \"echo one two > /tmp/x\" %U\n"),
            "{out}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quoted.desktop");
        std::fs::write(&path, &out).unwrap();
        assert_validates(&path);
    }

    #[test]
    fn entries_without_exec_are_refused() {
        let icons = BTreeMap::new();
        let launch = launch();
        let hint = |err: &anyhow::Error| err.downcast_ref::<crate::error::Hint>().is_some();
        let err = rebuild(
            "[Desktop Entry]\nName=X\nDBusActivatable=true\n",
            &params(&launch, &icons),
        )
        .unwrap_err();
        assert!(crate::error::message(&err).contains("no Exec"), "{err:#}");
        assert!(hint(&err));
        let err = rebuild("Name=X\n", &params(&launch, &icons)).unwrap_err();
        assert!(
            crate::error::message(&err).contains("no [Desktop Entry] group"),
            "{err:#}"
        );
        assert!(hint(&err));
        let err = rebuild(
            "[Desktop Entry]\nType=Link\nName=X\nURL=file:///etc\n",
            &params(&launch, &icons),
        )
        .unwrap_err();
        assert!(crate::error::message(&err).contains("Type=Link"), "{err:#}");
        assert!(hint(&err));
        let err = rebuild(
            "[Desktop Entry]\nName=X\nExec=app \"unterminated\n",
            &params(&launch, &icons),
        )
        .unwrap_err();
        assert!(
            crate::error::message(&err).contains("unterminated"),
            "{err:#}"
        );
        assert!(hint(&err));
    }

    /// What KConfig or GLib take for a command, a su or a D-Bus activation, next to a
    /// plain Exec: none of it reaches the host file, only box's launcher does.
    #[test]
    fn keys_that_can_run_a_command_never_reach_the_host() {
        let hostile = "\
[Desktop Entry]
Type=Application
Name=App
Exec=app %u
Exec[$e]=payload
Exec[$i]=payload
Exec[C]=payload
Exec[en_US]=payload
Exec[de][$e]=payload
E\\x78ec=payload
Exec\\s=payload
TryExec=app
TryExec[$e]=payload
Path[$e]=/payload
Path[de]=/payload
Terminal=true
TerminalOptions=-e payload
X-KDE-SubstituteUID=true
X-KDE-Username=root
X-KDE-RunOnDiscreteGpu=true
DBusActivatable=true
Implements=org.example.Payload;
Hidden=false
URL=payload
Name[$e]=payload
Name[C]=payload
Icon[$i]=payload
Comment=fine\\x41payload
Categories=Utility;
Terminal[de]=payload
Actions=act;other;payload]x;

[Desktop Action act]
Name=Act
Exec=app --act
Exec[$e]=payload
TerminalOptions=payload

[Desktop Action other]
Name=No command here

[Desktop Action unlisted]
Exec=payload

[X-KDE Something]
Exec=payload
";
        let icons = BTreeMap::new();
        let out = rebuild(hostile, &params(&launch(), &icons)).unwrap();
        assert_eq!(
            out,
            format!(
                "\
[Desktop Entry]
Type=Application
Name=App (on dev)
Exec={BOXED} app %u
Terminal=true
Categories=Utility;
Actions=act;

[Desktop Action act]
Name=Act
Exec={BOXED} app --act
"
            )
        );
    }

    /// Lines readers split, trim or decode differently: refused, saying which line.
    #[test]
    fn what_readers_read_differently_is_refused() {
        let base = "[Desktop Entry]\nType=Application\nName=X\nExec=app\n";
        for (extra, needle) in [
            (
                "[Desktop\\sEntry]\nExec=payload\n",
                "line 5 has the group header `[Desktop\\sEntry]`",
            ),
            (
                "[Desktop Entry][$i]\nExec=payload\n",
                "`[Desktop Entry][$i]`, which is not a plain",
            ),
            (
                "[Desktop Action a][$i]\nExec=payload\n",
                "`[Desktop Action a][$i]`",
            ),
            ("[X-Foo\nExec=payload\n", "`[X-Foo`"),
            ("[X] trailing\n", "`[X] trailing`"),
            (
                "[Desktop Entry]\nExec=payload\n",
                "line 5 starts `[Desktop Entry]` twice",
            ),
            (
                "[Desktop Action a]\n[Desktop Action a]\n",
                "line 6 starts `[Desktop Action a]` twice",
            ),
            ("Exec=payload\n", "line 5 has the key `Exec` twice"),
            ("  Exec  =payload\n", "line 5 has the key `Exec` twice"),
            (
                "Exec[$e]=a\nExec[$e]=payload\n",
                "line 6 has the key `Exec[$e]` twice",
            ),
            (
                "Comment=a\rExec=payload\n",
                "line 5 has a control character (\\u{d})",
            ),
            ("Comment=a\u{b}b\n", "control character"),
            ("Comment=a\u{85}b\n", "control character"),
            ("# \u{0}\n", "control character"),
        ] {
            let err = Entry::parse(&format!("{base}{extra}")).unwrap_err();
            let msg = crate::error::message(&err);
            assert!(msg.contains(needle), "{extra:?}: {msg}");
            assert!(msg.contains("read differently"), "{msg}");
            assert!(err.downcast_ref::<crate::error::Hint>().is_some());
        }
        // CRLF line ends, blank lines, comments and tabs are fine; keys of other groups
        // may repeat.
        let entry = Entry::parse(
            "# c\r\n[Desktop Entry]\r\n\tType=Application\r\nName=X\r\nExec=app\r\n[X-A]\nk=1\nk=2\n",
        )
        .unwrap();
        assert_eq!(entry.get("Exec").as_deref(), Some("app"));
    }

    #[test]
    fn values_are_copied_only_when_readers_decode_them_alike() {
        assert_eq!(copyable("a\\sb", false).as_deref(), Some("a b"));
        assert_eq!(copyable("a\\\\b", false).as_deref(), Some("a\\b"));
        assert_eq!(copyable("a\\;b;", true).as_deref(), Some("a\\;b;"));
        assert_eq!(copyable("a\\;b", false), None);
        // KConfig decodes \xHH, GLib does not.
        assert_eq!(copyable("\\x41", false), None);
        // Decoding to a control character.
        assert_eq!(copyable("a\\nb", false), None);
        assert_eq!(copyable("trailing\\", false), None);
        for locale in [
            "de",
            "pt_BR",
            "sr@latin",
            "ca@valencia",
            "es_419",
            "zh_CN.UTF-8",
        ] {
            assert!(is_locale(locale), "{locale}");
        }
        for locale in ["C", "$e", "$i", "de][$e", "", "DE", "en_US.", "x@"] {
            assert!(!is_locale(locale), "{locale}");
        }
    }

    #[test]
    fn icons_are_the_host_copy_an_icon_name_or_nothing() {
        let text = "[Desktop Entry]\nType=Application\nName=X\nExec=x\nIcon=/opt/x/icon.png\nIcon[de]=x-de\nIcon[fr]=/opt/x/missing.png\nIcon[$e]=/home/u/secret\n";
        let icons = BTreeMap::from([(
            "/opt/x/icon.png".to_owned(),
            "/h/icons/box/dev/icon-1.png".to_owned(),
        )]);
        let entry = Entry::parse(text).unwrap();
        assert_eq!(
            entry.icon_values(),
            ["/opt/x/icon.png", "x-de", "/opt/x/missing.png"]
        );
        let out = rewrite(&entry, &params(&launch(), &icons)).unwrap();
        assert!(
            out.ends_with("\nIcon=/h/icons/box/dev/icon-1.png\nIcon[de]=x-de\n"),
            "{out}"
        );
    }

    fn fake_box() -> (tempfile::TempDir, BoxRoot) {
        let dir = tempfile::tempdir().unwrap();
        let apps = dir.path().join("usr/share/applications");
        std::fs::create_dir_all(apps.join("kde")).unwrap();
        let entry = |name: &str, exec: &str| {
            format!("[Desktop Entry]\nType=Application\nName={name}\nExec={exec}\n")
        };
        std::fs::write(apps.join("debian-xterm.desktop"), entry("XTerm", "xterm")).unwrap();
        std::fs::write(
            apps.join("debian-uxterm.desktop"),
            entry("UXTerm", "uxterm"),
        )
        .unwrap();
        std::fs::write(
            apps.join("kde/konsole.desktop"),
            entry("Konsole", "konsole %u"),
        )
        .unwrap();
        std::fs::write(apps.join("editor-a.desktop"), entry("Editor", "ed-a")).unwrap();
        std::fs::write(apps.join("editor-b.desktop"), entry("Editor", "ed-b")).unwrap();
        let local = dir.path().join("usr/local/share/applications");
        std::fs::create_dir_all(&local).unwrap();
        std::fs::write(
            local.join("debian-xterm.desktop"),
            entry("Local XTerm", "xterm"),
        )
        .unwrap();
        let root = BoxRoot::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn apps_are_found_by_id_name_program_and_path() {
        let (_dir, root) = fake_box();
        let by = |q: &str| find_app(&root, "dev", q).unwrap();
        // /usr/local wins over /usr for the same id.
        assert_eq!(
            by("debian-xterm.desktop").path,
            "/usr/local/share/applications/debian-xterm.desktop"
        );
        assert_eq!(by("debian-xterm").name, "Local XTerm");
        assert_eq!(by("uxterm").id, "debian-uxterm.desktop");
        assert_eq!(by("konsole").id, "kde-konsole.desktop");
        assert_eq!(
            by("kde-konsole").path,
            "/usr/share/applications/kde/konsole.desktop"
        );
        let app = by("/usr/share/applications/kde/konsole.desktop");
        assert_eq!(app.id, "kde-konsole.desktop");
        assert_eq!(app.program, "konsole");
    }

    #[test]
    fn not_found_and_ambiguous_apps_are_clear_errors() {
        let (_dir, root) = fake_box();
        let err = find_app(&root, "dev", "konsol").unwrap_err();
        assert!(crate::error::message(&err).contains("no application `konsol` in box `dev`"));
        let hint = &err.downcast_ref::<crate::error::Hint>().unwrap().0;
        assert!(hint.contains("kde-konsole.desktop"), "{hint}");
        let err = find_app(&root, "dev", "editor").unwrap_err();
        let msg = crate::error::message(&err);
        assert!(
            msg.contains("editor-a.desktop (/usr/share/applications/editor-a.desktop)"),
            "{msg}"
        );
        assert!(msg.contains("editor-b.desktop"), "{msg}");
        let hint = &err.downcast_ref::<crate::error::Hint>().unwrap().0;
        assert!(hint.contains("desktop file id"), "{hint}");
        assert!(find_app(&root, "dev", "/usr/share/applications/none.desktop").is_err());
    }

    #[test]
    fn terminal_entry_validates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box-dev.desktop");
        let launch = Launch {
            box_exe: Path::new("/opt/my box/box"),
            data_home: Path::new("/home/J Doe/.local/share"),
        };
        std::fs::write(&path, terminal_entry(&launch, "dev")).unwrap();
        assert_validates_cleanly(&path);
    }

    #[test]
    fn the_remove_action_asks_on_a_terminal() {
        let launch = Launch {
            box_exe: Path::new("/usr/bin/box"),
            data_home: Path::new("/d"),
        };
        let entry = terminal_entry(&launch, "dev");
        assert!(entry.contains("\nTerminal=true\n"), "{entry}");
        let action = entry.split("[Desktop Action Remove]").nth(1).unwrap();
        assert!(
            action.contains(
                "\nExec=/usr/bin/env BOX_DATA_HOME=/d /usr/bin/box rm --interactive dev\n"
            ),
            "{action}"
        );
        assert!(!entry.contains("--yes"), "{entry}");
    }

    /// desktop-file-validate's verdict on `path`: (passed, what it printed). Fails the
    /// test when the tool cannot be run: a validation that did not run must not pass.
    fn validate(path: &Path) -> (bool, String) {
        let out = std::process::Command::new("desktop-file-validate")
            .arg(path)
            .output()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot run desktop-file-validate ({err}): these tests need it (tests/run \
                     installs it; on Debian `apt install desktop-file-utils`)"
                )
            });
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success() && !text.contains("error"), text)
    }

    /// Assert `path` validates (warnings and hints allowed: the box's own entries may
    /// have them).
    pub(crate) fn assert_validates(path: &Path) {
        let (ok, text) = validate(path);
        assert!(
            ok,
            "{}:\n{text}\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap()
        );
    }

    /// Assert `path` validates without a single error, warning or hint.
    fn assert_validates_cleanly(path: &Path) {
        let (ok, text) = validate(path);
        assert!(
            ok && text.trim().is_empty(),
            "{}:\n{text}\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap()
        );
    }

    #[test]
    fn rewritten_entries_validate() {
        let dir = tempfile::tempdir().unwrap();
        let icons = BTreeMap::new();
        let launch = Launch {
            box_exe: Path::new("/opt/my box/box"),
            data_home: Path::new("/home/J Doe/.local/share"),
        };
        let p = params(&launch, &icons);
        let path = dir.path().join("gimp.desktop");
        std::fs::write(&path, rebuild(GIMP, &p).unwrap()).unwrap();
        assert_validates(&path);
    }
}
