//! Desktop entries: finding an application in a box, rewriting its entry for the host,
//! and the box's own "open a terminal" entry.
//!
//! Invariants of the rewrite: lines box does not need to change (comments, other keys,
//! localized keys, group order, unknown groups) are kept byte for byte; every `Exec=` of
//! `[Desktop Entry]` and of each `[Desktop Action *]` runs through `box run NAME --` with
//! its field codes intact. Three keys go, because on the host they would name the host's
//! world instead of the box's:
//! - `DBusActivatable`: host D-Bus activation cannot find an app that lives in a box;
//! - `Path` (the working directory): the directory is the box's (`/opt/app`), which the
//!   host may lack, so the launcher would fail to change to it; instead the command
//!   changes to it inside the box, first thing (`/bin/sh -c 'cd -- "$1" && shift && exec
//!   "$@"' sh DIR CMD...`, the shell replaced by the command, no process in between);
//! - `TryExec`: it tests a program the *host* has, and the program is the box's; box
//!   checks it in the box at export time instead (`export::app_from`), and pointing it
//!   at box itself would only repeat what the Exec line's absolute path already says.
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

/// A parsed line of a desktop file.
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

/// The `[Desktop Entry]` group of `text`.
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
    vec![
        exec::text("/usr/bin/env"),
        exec::text(&format!(
            "{}={}",
            crate::context::DATA_HOME_ENV,
            launch.data_home.to_string_lossy()
        )),
        exec::text(&launch.box_exe.to_string_lossy()),
    ]
}

/// The shell script that runs its arguments after the first in the directory the first
/// names (see the module doc on `Path`); `--` so a directory named `-` is one.
const IN_DIR: &str = r#"cd -- "$1" && shift && exec "$@""#;

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
    let mut boxed = launch_words(launch);
    boxed.extend([exec::text("run"), exec::text(box_name), exec::text("--")]);
    if let Some(dir) = workdir {
        boxed.extend(["/bin/sh", "-c", IN_DIR, "sh", dir].map(exec::text));
    }
    boxed.extend(args);
    Ok(exec::to_value(&boxed))
}

/// Rewrite the desktop file `text` of an application so it runs in the box.
pub fn rewrite(text: &str, params: &Rewrite) -> Result<String> {
    // Links and directories have no command to run in the box; exporting them would
    // only put the box's URLs in the host menu.
    let main = main_group(text);
    match main.get("Type") {
        Some("Application") | None => {}
        Some(other) => bail!(failure(
            format!("it is of Type={other}; only applications can be exported"),
            "export an application's entry (Type=Application)",
        )),
    }
    // Launchers run actions in the entry's Path too (GLib does): every Exec gets it.
    let workdir = main.get("Path").filter(|dir| !dir.is_empty());
    let label = exec::escape_appended(params.label);
    let mut out = String::with_capacity(text.len() + 256);
    // The group we are in: None before the first.
    let mut group: Option<String> = None;
    let mut saw_main = false;
    let mut exec_count = 0;
    for raw in text.lines() {
        let line = parse_line(raw);
        if let Line::Group(name) = &line {
            saw_main |= name == "Desktop Entry";
            group = Some(name.clone());
            out.push_str(raw);
            out.push('\n');
            continue;
        }
        let boxed_group = group
            .as_deref()
            .is_some_and(|g| g == "Desktop Entry" || g.starts_with("Desktop Action "));
        let Line::Entry { key, locale, value } = line else {
            out.push_str(raw);
            out.push('\n');
            continue;
        };
        if !boxed_group {
            out.push_str(raw);
            out.push('\n');
            continue;
        }
        let is_main = group.as_deref() == Some("Desktop Entry");
        let locale_suffix = locale
            .as_ref()
            .map(|l| format!("[{l}]"))
            .unwrap_or_default();
        match key.as_str() {
            "Exec" if locale.is_none() => {
                let value = boxed_exec(params.launch, params.box_name, &value, workdir)
                    .map_err(|err| {
                        err.context(format!(
                            "cannot rewrite Exec= of [{}]",
                            group.as_deref().unwrap_or_default()
                        ))
                        .context(crate::error::Hint(
                            "the entry's Exec line breaks the Desktop Entry rules; fix it in the box (or copy the entry, fix it and export that file by its path)".into(),
                        ))
                    })?;
                exec_count += 1;
                out.push_str(&format!("Exec={value}\n"));
            }
            // See the module doc for why these go.
            "TryExec" | "DBusActivatable" => {}
            "Path" if is_main => {}
            "Icon" => {
                let name = exec::unescape_string(&value);
                match params.icons.get(&name) {
                    Some(host) => out.push_str(&format!(
                        "Icon{locale_suffix}={}\n",
                        exec::escape_string(host)
                    )),
                    None => {
                        out.push_str(raw);
                        out.push('\n');
                    }
                }
            }
            "Name" if is_main && !label.is_empty() => {
                // `Name=Editor  ` would read `Editor   (on dev)`.
                let value = value.trim_end();
                out.push_str(&format!("Name{locale_suffix}={value}{label}\n"));
            }
            _ => {
                out.push_str(raw);
                out.push('\n');
            }
        }
    }
    if !saw_main {
        bail!(failure(
            "it has no [Desktop Entry] group, so it is not a desktop entry",
            "export an application's .desktop file (`box run NAME -- ls /usr/share/applications` lists them)",
        ));
    }
    if exec_count == 0 {
        bail!(failure(
            "it has no Exec= line (it may only be D-Bus activatable), so it cannot be run through box",
            "export the application's binary with --bin instead",
        ));
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
# a comment that must survive
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

    #[test]
    fn rewrite_boxes_every_exec_and_keeps_the_rest() {
        let icons = BTreeMap::from([("gimp".to_owned(), "/h/icons/gimp.png".to_owned())]);
        let out = rewrite(GIMP, &params(&launch(), &icons)).unwrap();
        let expected = "\
# a comment that must survive
[Desktop Entry]
Version=1.0
Type=Application
Name=GNU Image Manipulation Program (on dev)
Name[de]=GNU Bildbearbeitungsprogramm (on dev)
GenericName=Image Editor
Comment=Create images
Comment[fr]=Créer des images
Exec=/usr/bin/env BOX_DATA_HOME=/home/u/.local/share /home/u/.cargo/bin/box run dev -- env BABL_PATH=/x \"/opt/gimp app/bin/gimp-2.10\" --title \"say \\\\\"hi\\\\\"\" 100%% %U
Icon=/h/icons/gimp.png
Actions=new;

[Desktop Action new]
Name=New Window
Exec=/usr/bin/env BOX_DATA_HOME=/home/u/.local/share /home/u/.cargo/bin/box run dev -- gimp-2.10 --new %f

[X-Other Group]
Exec=untouched %u
";
        assert_eq!(out, expected);
        // No StartupWMClass was invented: the kept desktop id does the matching.
        assert!(!out.contains("StartupWMClass"), "{out}");
        // The boxed line parses back to box's argv followed by the original argv.
        let args = exec::parse_value(
            main_group(&out)
                .get("Exec")
                .map(exec::escape_string)
                .as_deref()
                .unwrap(),
        )
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
        let out = rewrite(text, &p).unwrap();
        assert!(out.contains("Name=XTerm\n"));
        assert_eq!(out.matches("StartupWMClass").count(), 1);
        assert!(out.contains("StartupWMClass=XTerm"));
        assert!(out.contains(
            "Exec=/usr/bin/env BOX_DATA_HOME=/home/u/.local/share /home/u/.cargo/bin/box run dev -- xterm\n"
        ));
    }

    #[test]
    fn path_becomes_a_cd_in_the_box_and_names_lose_trailing_blanks() {
        let text = "[Desktop Entry]\nType=Application\nName=Tool  \nName[de]=Werkzeug \t\nPath=/opt/my app/100%\nTryExec=tool\nExec=tool --open %f\nActions=more;\n\n[Desktop Action more]\nName=More \nExec=tool --more\n";
        let icons = BTreeMap::new();
        let out = rewrite(text, &params(&launch(), &icons)).unwrap();
        // The host may lack the box's directory: no Path, no TryExec on the host.
        assert!(!out.contains("Path="), "{out}");
        assert!(!out.contains("TryExec"), "{out}");
        assert!(out.contains("\nName=Tool (on dev)\n"), "{out}");
        assert!(out.contains("\nName[de]=Werkzeug (on dev)\n"), "{out}");
        // Only the entry's names are labelled; an action's name stays as it was.
        assert!(out.contains("\nName=More \n"), "{out}");
        // Every Exec, the action's too, changes to the directory in the box first.
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
                words[3..11],
                [
                    "run",
                    "dev",
                    "--",
                    "/bin/sh",
                    "-c",
                    IN_DIR,
                    "sh",
                    "/opt/my app/100%"
                ]
            );
            assert_eq!(words[11..], *tail);
        }
        // The field code is still a code, for the launcher to expand.
        assert_eq!(execs[0].last().unwrap(), &vec![exec::Piece::Code('f')]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool.desktop");
        std::fs::write(&path, &out).unwrap();
        assert_validates(&path);
        // What the shell does with it: the command runs in the directory, with its
        // arguments as they were.
        let target = dir.path().join("work dir");
        std::fs::create_dir(&target).unwrap();
        let run = std::process::Command::new("/bin/sh")
            .args(["-c", IN_DIR, "sh"])
            .arg(&target)
            .args([
                "sh",
                "-c",
                "printf '%s|' \"$(pwd)\" \"$@\"",
                "x",
                "a b",
                "-",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&run.stdout),
            format!("{}|a b|-|", target.display())
        );
    }

    #[test]
    fn shell_single_quotes_keep_their_argument() {
        // Not valid per the spec, but GLib and KDE accept it and real entries use it.
        let text =
            "[Desktop Entry]\nType=Application\nName=X\nExec=sh -c 'echo one two > /tmp/x' %U\n";
        let icons = BTreeMap::new();
        let out = rewrite(text, &params(&launch(), &icons)).unwrap();
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
        let err = rewrite(
            "[Desktop Entry]\nName=X\nDBusActivatable=true\n",
            &params(&launch, &icons),
        )
        .unwrap_err();
        assert!(crate::error::message(&err).contains("no Exec"), "{err:#}");
        assert!(hint(&err));
        let err = rewrite("Name=X\n", &params(&launch, &icons)).unwrap_err();
        assert!(
            crate::error::message(&err).contains("no [Desktop Entry] group"),
            "{err:#}"
        );
        assert!(hint(&err));
        let err = rewrite(
            "[Desktop Entry]\nType=Link\nName=X\nURL=file:///etc\n",
            &params(&launch, &icons),
        )
        .unwrap_err();
        assert!(crate::error::message(&err).contains("Type=Link"), "{err:#}");
        assert!(hint(&err));
        let err = rewrite(
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

    /// desktop-file-validate's verdict on `path`: (passed, what it printed). `None`
    /// when it is not installed (it is on the project's machines).
    fn validate(path: &Path) -> Option<(bool, String)> {
        let Ok(out) = std::process::Command::new("desktop-file-validate")
            .arg(path)
            .output()
        else {
            eprintln!("desktop-file-validate not installed; skipping");
            return None;
        };
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        Some((out.status.success() && !text.contains("error"), text))
    }

    /// Assert `path` validates (warnings and hints allowed: the box's own entries may
    /// have them).
    pub(crate) fn assert_validates(path: &Path) {
        if let Some((ok, text)) = validate(path) {
            assert!(
                ok,
                "{}:\n{text}\n{}",
                path.display(),
                std::fs::read_to_string(path).unwrap()
            );
        }
    }

    /// Assert `path` validates without a single error, warning or hint.
    fn assert_validates_cleanly(path: &Path) {
        if let Some((ok, text)) = validate(path) {
            assert!(
                ok && text.trim().is_empty(),
                "{}:\n{text}\n{}",
                path.display(),
                std::fs::read_to_string(path).unwrap()
            );
        }
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
        std::fs::write(
            &path,
            rewrite(GIMP.replace("TryExec=gimp-2.10\n", "").as_str(), &p).unwrap(),
        )
        .unwrap();
        assert_validates(&path);
    }
}
