//! Exports: binaries as wrappers on the host PATH, applications as desktop entries with
//! their icons, the box's own menu entry, and the ledger of what was exported.
//!
//! Invariants:
//! - Box files are read only through [`boxfs::BoxRoot`] (openat2 in the box root), never
//!   by joining paths onto `/proc/PID/root`.
//! - Exports land on the host, also when `box export` runs inside a box: every target
//!   is a host path, reached through [`crate::host::fs::HostFs`] (`/run/host` inside a box).
//! - Host files are written only through [`ledger::Ledger::install`], under the
//!   store's `exports` lock: box never replaces a file it did not write without `--force`,
//!   and the ledger says which files are box's.
//! - Wrappers and entries name box by its absolute path, so they work with a minimal PATH,
//!   and pin the data directory they were exported with ([`crate::context::DATA_HOME_ENV`]), so they find
//!   the same store whatever the caller's `XDG_DATA_HOME` (cron, `env -i`, a launcher).
//!   That path is the host's: inside a box a wrapper never runs box (see [`wrapper`]).
//!
//! What an export may write and run on the host (an image's desktop files, icons and
//! file names are its author's; issue 19):
//! - A wrapper runs only box (`exec BOX run NAME -- PATH "$@"`), and an exported entry's
//!   every command line is `/usr/bin/env BOX_DATA_HOME=DIR [BOX_WORKDIR=DIR] BOX run
//!   NAME -- ...`: the box's words come after `--`, quoted so every launcher (and the
//!   shell KDE falls back to) reads them as arguments. Entries are rebuilt from an
//!   allow-list, never copied ([`desktop`]); an entry readers would read differently is
//!   refused.
//! - The only box files copied to the host are icons: read through
//!   [`boxfs::BoxRoot::own_files`] (never from what the box shares with the host), images
//!   by content, and readable by everyone in the box, as the 0644 copy is ([`icons`]).
//! - Host file names and the words of wrappers hold no control character: `--bin`
//!   refuses such a path, and a wrapper quotes every byte of what it interpolates.
//!
//! Submodules: [`boxfs`] (safe reads in a box), [`crate::host::fs`] (host paths from anywhere),
//! [`wrapper`] (the `--bin` script), [`exec`] (the desktop Exec grammar), [`desktop`]
//! (finding and rewriting entries), [`icons`] (icon lookup and host placement),
//! [`ledger`] (what box wrote).

pub mod boxfs;
pub mod desktop;
pub mod exec;
pub mod icons;
pub mod ledger;
pub mod wrapper;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::context::Context;
use crate::error::{HintExt, failure};
use crate::host::fs::{self as hostfs, HostFs};
use crate::store::Store;
use boxfs::BoxRoot;
use ledger::{Kind, Ledger, Planned, Removal};

/// The hint `box run` adds when the box of an exported wrapper is gone: the wrapper sets
/// [`wrapper::WRAPPER_ENV`] to its own path.
pub fn missing_box_hint(name: &str) -> Option<String> {
    let path = crate::sys::env::os(wrapper::WRAPPER_ENV)?;
    Some(format_missing_box_hint(name, Path::new(&path)))
}

fn format_missing_box_hint(name: &str, path: &Path) -> String {
    format!(
        "this wrapper was exported from box {name}, which no longer exists; delete it with `rm {}`",
        wrapper::sh_quote(&path.to_string_lossy())
    )
}

/// The absolute path of the box executable as the host sees it, for wrappers and entries.
pub fn box_exe(ctx: &Context) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the box executable (/proc/self/exe)")?;
    if crate::host::containerenv_box().is_none() {
        return Ok(exe);
    }
    host_path_of(ctx, &exe).with_hint(|| {
        format!(
            "run `box export` on the host instead, or install box in one of {}",
            host_candidates(ctx)
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn host_candidates(ctx: &Context) -> Vec<PathBuf> {
    let mut candidates = vec![
        ctx.dirs.bin_home.join("box"),
        ctx.dirs.home.join(".cargo/bin/box"),
        PathBuf::from("/usr/local/bin/box"),
        PathBuf::from("/usr/bin/box"),
    ];
    // The box executable is bind-mounted into the box; the mount's source path (the
    // "root" field of mountinfo) is its host path when it lives on the host's root fs.
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in info.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.len() > 4 && fields[4] == "/usr/local/bin/box" {
                candidates.insert(0, PathBuf::from(fields[3].replace("\\040", " ")));
            }
        }
    }
    candidates
}

/// Inside a box, find the host path of `exe` through `/run/host` (same device and inode).
fn host_path_of(ctx: &Context, exe: &Path) -> Result<PathBuf> {
    let me = std::fs::metadata(exe).with_context(|| format!("reading {}", exe.display()))?;
    for candidate in host_candidates(ctx) {
        let on_host =
            Path::new("/run/host").join(candidate.strip_prefix("/").unwrap_or(&candidate));
        if let Ok(meta) = std::fs::metadata(&on_host)
            && meta.dev() == me.dev()
            && meta.ino() == me.ino()
        {
            return Ok(candidate);
        }
    }
    bail!(
        "cannot tell where the box executable {} lives on the host",
        exe.display()
    )
}

/// Open box `name` for reading its files: `/` inside that box, else the running box's
/// root (starting it if needed).
fn open_box(ctx: &Context, name: &str) -> Result<BoxRoot> {
    if crate::host::containerenv_box().as_deref() == Some(name) {
        BoxRoot::open(Path::new("/"))
    } else {
        Store::at(&ctx.dirs.store).container(name)?;
        let path = crate::runtime::box_root(ctx, name)?;
        BoxRoot::open(&path)
    }
}

/// Where exports go on the host, and the box executable they run. Every path is a host
/// path (see [`crate::host::fs`]).
#[derive(Debug, Clone)]
pub struct Host {
    /// How this process reaches host paths.
    pub fs: HostFs,
    /// `$XDG_DATA_HOME`: applications/ and icons/.
    pub data_home: PathBuf,
    /// Default directory of wrappers.
    pub bin_home: PathBuf,
    /// The store directory (for the ledger and its lock).
    pub store: PathBuf,
    /// The absolute path of box as the host sees it.
    pub box_exe: PathBuf,
}

impl Host {
    pub fn from_ctx(ctx: &Context) -> Result<Host> {
        Ok(Host {
            fs: HostFs::current(),
            data_home: ctx.dirs.data_home.clone(),
            bin_home: ctx.dirs.bin_home.clone(),
            store: ctx.dirs.store.clone(),
            box_exe: box_exe(ctx)?,
        })
    }

    /// How wrappers and entries run box: its path, and the data home they pin.
    fn launch(&self) -> wrapper::Launch<'_> {
        wrapper::Launch {
            box_exe: &self.box_exe,
            data_home: &self.data_home,
        }
    }
}

/// Run `f` on the export ledger under the store's exports lock, saving it after.
fn with_ledger<T>(
    fs: &HostFs,
    store: &Path,
    f: impl FnOnce(&mut Ledger) -> Result<T>,
) -> Result<T> {
    let store = Store::open(&fs.dir(store)?)?;
    let _lock = store.lock_named("exports")?;
    let path = store.exports_path();
    let mut ledger = Ledger::load(&path)?;
    let before = (ledger.exports.clone(), ledger.dirs.clone());
    let result = f(&mut ledger);
    // Save even after an error: files removed before it must leave the ledger.
    if (&ledger.exports, &ledger.dirs) != (&before.0, &before.1) {
        ledger.save(&path)?;
    }
    result
}

/// The ledger file of the store at host path `store`, as this process reaches it.
fn ledger_path(fs: &HostFs, store: &Path) -> Result<PathBuf> {
    Ok(Store::at(&fs.dir(store)?).exports_path())
}

/// The exports of box `name` (from the ledger; the box need not exist).
pub fn list(ctx: &Context, name: &str) -> Result<Vec<ledger::Export>> {
    let ledger = Ledger::load(&ledger_path(&HostFs::current(), &ctx.dirs.store)?)?;
    Ok(ledger.of_box(name).cloned().collect())
}

/// Export binary `path` of box `name` as a wrapper in `dir` (default: the bin home).
/// Returns the wrapper's path.
pub fn export_bin(
    ctx: &Context,
    name: &str,
    path: &str,
    dir: Option<&Path>,
    force: bool,
) -> Result<PathBuf> {
    export_bin_with(ctx, name, path, dir, force, &wrapper::Extra::default())
}

/// [`export_bin`] with what the wrapper adds on the host (`--extra-flags`, `--sudo`).
pub fn export_bin_with(
    ctx: &Context,
    name: &str,
    path: &str,
    dir: Option<&Path>,
    force: bool,
    extra: &wrapper::Extra,
) -> Result<PathBuf> {
    check_bin_path(path)?;
    let root = open_box(ctx, name)?;
    bin_from_with(&Host::from_ctx(ctx)?, &root, name, path, dir, force, extra)
}

/// [`export_bin`] from an opened box root.
pub fn bin_from(
    host: &Host,
    root: &BoxRoot,
    name: &str,
    path: &str,
    dir: Option<&Path>,
    force: bool,
) -> Result<PathBuf> {
    bin_from_with(
        host,
        root,
        name,
        path,
        dir,
        force,
        &wrapper::Extra::default(),
    )
}

/// [`bin_from`] with `extra` (see [`export_bin_with`]).
pub fn bin_from_with(
    host: &Host,
    root: &BoxRoot,
    name: &str,
    path: &str,
    dir: Option<&Path>,
    force: bool,
    extra: &wrapper::Extra,
) -> Result<PathBuf> {
    check_bin_path(path)?;
    check_binary(root, name, path)?;
    // A host directory, from inside a box too; a relative one is below the current
    // directory, which inside a box must then be one the host shares.
    let dir = hostfs::absolute(&host.fs, dir.unwrap_or(&host.bin_home))?;
    let file_name = path.rsplit('/').next().unwrap_or_default();
    let wrapper_path = dir.join(file_name);
    let text = wrapper::script_with(&host.launch(), name, path, &wrapper_path, extra);
    // One wrapper per binary: exporting it to another directory moves it.
    let previous = with_ledger(&host.fs, &host.store, |ledger| {
        let previous = ledger
            .find(name, Kind::Bin, path)
            .and_then(|e| e.files.first())
            .map(|f| f.path.clone())
            .filter(|p| *p != wrapper_path);
        ledger.install(
            &host.fs,
            name,
            Kind::Bin,
            path,
            vec![Planned {
                path: wrapper_path.clone(),
                bytes: text.into_bytes(),
                mode: 0o755,
                shareable: false,
            }],
            force,
        )?;
        Ok(previous)
    })?;
    if let Some(previous) = previous {
        crate::ui::report::notice(format!(
            "the wrapper of {path} moved here from {}",
            previous.display()
        ));
    }
    Ok(wrapper_path)
}

/// Where `box export NAME --bin PATH [--export-path DIR]` would put its wrapper, checked
/// before the box exists (`box assemble`): the path is one box exports, and nothing is in
/// the way there but what this export, or an export of a box in `going`, wrote (see
/// [`Ledger::check_free`]). Returns the wrapper's host path.
pub fn check_bin_target(
    ctx: &Context,
    name: &str,
    path: &str,
    dir: Option<&Path>,
    going: &[String],
) -> Result<PathBuf> {
    check_bin_path(path)?;
    let fs = HostFs::current();
    let dir = hostfs::absolute(&fs, dir.unwrap_or(&ctx.dirs.bin_home))?;
    let wrapper_path = dir.join(path.rsplit('/').next().unwrap_or_default());
    let ledger = Ledger::load(&ledger_path(&fs, &ctx.dirs.store)?)?;
    ledger.check_free(&fs, (name, Kind::Bin, path), &wrapper_path, going)?;
    Ok(wrapper_path)
}

fn check_bin_path(path: &str) -> Result<()> {
    // The file name becomes a host file's, and the path a line of the wrapper's comments.
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        bail!(failure(
            format!(
                "`{}` has a control character ({}), which box does not put in a host file name or a wrapper",
                path.escape_debug(),
                c.escape_unicode()
            ),
            "rename the binary in the box, or link it under a plain name there (`ln -s`) and export the link",
        ));
    }
    if !path.starts_with('/') {
        bail!(failure(
            format!("`{path}` is not an absolute path"),
            format!(
                "give the binary's full path in the box, e.g. `--bin /usr/bin/{path}` (`box run NAME -- which {path}` finds it)"
            ),
        ));
    }
    if path.ends_with('/')
        || path
            .rsplit('/')
            .next()
            .is_some_and(|f| f == "." || f == "..")
    {
        bail!(failure(
            format!("`{path}` does not name a file"),
            "give the path of the binary itself",
        ));
    }
    Ok(())
}

/// Check that `path` exists in the box and is an executable file.
fn check_binary(root: &BoxRoot, name: &str, path: &str) -> Result<()> {
    match root.meta(path)? {
        None => Err(failure(
            format!("{path} does not exist in box `{name}`"),
            format!("`box run {name} -- which <command>` shows where a command lives"),
        )),
        Some(meta) if !meta.is_executable() => Err(failure(
            format!("{path} in box `{name}` is not an executable file"),
            "export a program, not a directory or a data file",
        )),
        Some(_) => Ok(()),
    }
}

/// The label appended to exported application names.
fn label(ctx: &Context, name: &str, flag: Option<&str>) -> Result<String> {
    let configured = match flag {
        Some(label) => Some(label),
        None => ctx.config()?.export_label.as_deref(),
    };
    Ok(resolve_label(configured, name))
}

/// The label from `--export-label` or the config (`{box}` is the box name; `none` or ""
/// for nothing), defaulting to " (on NAME)".
fn resolve_label(configured: Option<&str>, name: &str) -> String {
    match configured {
        Some("none") => String::new(),
        Some(label) => label.replace("{box}", name),
        None => format!(" (on {name})"),
    }
}

/// Export application `app` of box `name` to the host menu. Returns the entry's path.
pub fn export_app(
    ctx: &Context,
    name: &str,
    app: &str,
    label_flag: Option<&str>,
    force: bool,
) -> Result<PathBuf> {
    export_app_with(
        ctx,
        name,
        app,
        label_flag,
        force,
        &wrapper::Extra::default(),
    )
}

/// [`export_app`] with what its launchers add (`--extra-flags`, `--sudo`).
pub fn export_app_with(
    ctx: &Context,
    name: &str,
    app: &str,
    label_flag: Option<&str>,
    force: bool,
    extra: &wrapper::Extra,
) -> Result<PathBuf> {
    let root = open_box(ctx, name)?;
    let label = label(ctx, name, label_flag)?;
    app_from_with(
        &Host::from_ctx(ctx)?,
        &root,
        name,
        app,
        &label,
        force,
        extra,
    )
}

/// [`export_app`] from an opened box root, with the label resolved.
pub fn app_from(
    host: &Host,
    root: &BoxRoot,
    name: &str,
    app: &str,
    label: &str,
    force: bool,
) -> Result<PathBuf> {
    app_from_with(
        host,
        root,
        name,
        app,
        label,
        force,
        &wrapper::Extra::default(),
    )
}

/// [`app_from`] with `extra` (see [`export_app_with`]).
pub fn app_from_with(
    host: &Host,
    root: &BoxRoot,
    name: &str,
    app: &str,
    label: &str,
    force: bool,
    extra: &wrapper::Extra,
) -> Result<PathBuf> {
    let found = desktop::find_app(root, name, app)?;
    let text = root.read(&found.path, 1 << 20)?;
    let text = String::from_utf8(text)
        .with_context(|| format!("{} in box `{name}` is not UTF-8", found.path))
        .hint("export an application's .desktop file (they are UTF-8 text)")?;
    let cannot = || format!("cannot export {} from box `{name}`", found.path);
    let entry = desktop::Entry::parse(&text).with_context(cannot)?;
    if let Some(try_exec) = entry.get("TryExec") {
        check_try_exec(root, name, &found.id, &try_exec)?;
    }
    let icons_dir = host.data_home.join("icons");
    // Icons come from the box's own files only (see `icons`).
    let own = root.own_files()?;
    let skipped = |skip: icons::Skip| {
        crate::ui::report::warn(format!(
            "icon {} of {} is not copied: {}",
            skip.source, found.id, skip.reason
        ));
    };

    // Icons named anywhere in the exported groups (the entry and its actions).
    let mut files: Vec<Planned> = Vec::new();
    let mut icon_map: BTreeMap<String, String> = BTreeMap::new();
    for icon in entry.icon_values() {
        // (copy, its bytes, whether another export may share it)
        let mut copies: Vec<(icons::IconCopy, Vec<u8>, bool)> = Vec::new();
        let mut missing = false;
        if icon.starts_with('/') {
            match icons::find_path(&own, name, &icon)? {
                icons::PathIcon::Copy(copy, bytes) => {
                    let host = icons_dir.join(&copy.dest);
                    icon_map.insert(icon.clone(), host.to_string_lossy().into_owned());
                    // Its name says which box file it is, and which content: a
                    // different file there is not the same icon, so it is never shared
                    // (see `icons`).
                    copies.push((copy, bytes, false));
                }
                icons::PathIcon::Skipped(skip) => skipped(skip),
                icons::PathIcon::Missing => missing = true,
            }
        } else {
            // `Icon=name.png` is not an icon name, but GTK and KDE look up `name` for it.
            let lookup = icons::without_extension(&icon);
            let found_copies = icons::find_named(&own, lookup)?;
            missing = found_copies.is_empty();
            // Icon names are one namespace for every app: when two boxes ship one, the
            // first copy stays and serves both.
            for copy in found_copies {
                match icons::load(&own, name, &copy.source) {
                    Ok(bytes) => copies.push((copy, bytes, true)),
                    Err(skip) => skipped(skip),
                }
            }
            if lookup != icon && !copies.is_empty() {
                icon_map.insert(icon.clone(), lookup.to_owned());
            }
        }
        if missing {
            crate::ui::report::warn(format!(
                "icon `{icon}` of {} was not found in box `{name}`; the host's theme may lack it",
                found.id
            ));
        }
        for (copy, bytes, shareable) in copies {
            let path = icons_dir.join(&copy.dest);
            if files.iter().any(|f| f.path == path) {
                continue;
            }
            files.push(Planned {
                path,
                bytes,
                // Only world-readable sources get here (`icons::load`).
                mode: 0o644,
                shareable,
            });
        }
    }
    let rewritten = desktop::rewrite(
        &entry,
        &desktop::Rewrite {
            launch: &host.launch(),
            box_name: name,
            label,
            icons: &icon_map,
        },
    )
    .with_context(cannot)?;
    let rewritten = with_launch_extra(&rewritten, extra)?;
    // The file has an id of its own (`exported_id`); StartupWMClass tells the desktop
    // which windows are the app's.
    let rewritten = with_window_class(&rewritten, &found.id);
    let apps_dir = host.data_home.join("applications");
    let entry_path = apps_dir.join(exported_id(name, &found.id));
    files.insert(
        0,
        Planned {
            path: entry_path.clone(),
            bytes: rewritten.into_bytes(),
            mode: 0o644,
            shareable: false,
        },
    );
    with_ledger(&host.fs, &host.store, |ledger| {
        ledger.install(&host.fs, name, Kind::App, &found.path, files, force)
    })?;
    refresh_caches(&host.fs, &host.data_home);
    Ok(entry_path)
}

/// Refuse an entry whose `TryExec` program box `name` lacks: the box's own menu hides
/// it (the program is not installed), and its Exec line would fail. The host entry drops
/// the key (see [`desktop`]), so this is where it is tested. A name without `/` is looked
/// up as a command run in the box finds it: the caller's PATH, then the standard
/// directories box adds (`host::compose_env`).
fn check_try_exec(root: &BoxRoot, name: &str, id: &str, try_exec: &str) -> Result<()> {
    let candidates: Vec<String> = if try_exec.starts_with('/') {
        vec![try_exec.to_owned()]
    } else {
        let path = crate::sys::env::search_path();
        std::env::split_paths(&path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.to_string_lossy().into_owned())
            .chain(crate::host::STANDARD_PATH.iter().map(|d| d.to_string()))
            .map(|dir| boxfs::join(&dir, try_exec))
            .collect()
    };
    for candidate in &candidates {
        if root.meta(candidate)?.is_some_and(|m| m.is_executable()) {
            return Ok(());
        }
    }
    Err(failure(
        format!(
            "{id} in box `{name}` has TryExec={try_exec}, which is not installed there (the box's own menu hides this entry)"
        ),
        format!(
            "install the application in box `{name}` first; `box run {name} -- which <command>` shows what is installed"
        ),
    ))
}

/// The desktop id of box `name`'s export of the application with id `id`:
/// `NAME-ID.desktop`, as distrobox names it, so that the desktop tools that show a box's
/// apps as exported find it (they look for that name), two boxes can export the same
/// application, and an export never hides the host's own entry of that id (a file of the
/// same id in `~/.local/share/applications` would replace it in the menu).
pub fn exported_id(name: &str, id: &str) -> String {
    format!("{name}-{id}")
}

/// `text` with `StartupWMClass` set to the application's own id (`org.gnome.Foo` of
/// `org.gnome.Foo.desktop`) when the entry has none: desktops match a window to its
/// entry by the window's class (X11) or app_id (Wayland), which an application sets to
/// its own desktop id; the exported entry has another id ([`exported_id`]), and
/// `StartupWMClass` is how GNOME Shell, KDE Plasma and most docks are told which windows
/// are its (toolbox #1018 is what breaks without it: no icon, no grouping).
fn with_window_class(text: &str, id: &str) -> String {
    if desktop::main_group(text).get("StartupWMClass").is_some() {
        return text.to_owned();
    }
    let class = id.strip_suffix(".desktop").unwrap_or(id);
    let mut out = String::with_capacity(text.len() + class.len() + 16);
    let mut added = false;
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if !added && line.trim() == "[Desktop Entry]" {
            out.push_str(&format!("StartupWMClass={}\n", exec::escape_string(class)));
            added = true;
        }
    }
    out
}

/// `text` (an entry rewritten for the host) with `extra` in every launcher's `Exec`:
/// `--user root` after `box run` for `as_root`, and the extra arguments before the first
/// one with a field code (where the files' `%U` and friends go), or last.
fn with_launch_extra(text: &str, extra: &wrapper::Extra) -> Result<String> {
    if extra.args.is_empty() && !extra.as_root {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut boxed = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(group) = trimmed.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            boxed = group == "Desktop Entry" || group.starts_with("Desktop Action ");
        }
        let exec_value = line
            .split_once('=')
            .filter(|(key, _)| boxed && key.trim() == "Exec")
            .map(|(_, value)| value);
        let Some(value) = exec_value else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let mut args = exec::parse_value(value)?;
        if extra.as_root
            && let Some(run) = args
                .iter()
                .position(|a| exec::literal(a).as_deref() == Some("run"))
        {
            args.splice(run + 1..run + 1, [exec::text("--user"), exec::text("root")]);
        }
        let at = args
            .iter()
            .position(|a| a.iter().any(|p| matches!(p, exec::Piece::Code(_))))
            .unwrap_or(args.len());
        args.splice(at..at, extra.args.iter().map(|a| exec::text(a)));
        out.push_str(&format!("Exec={}\n", exec::to_value(&args)));
    }
    Ok(out)
}

/// Remove the wrapper of binary `path` exported from box `name`.
pub fn delete_bin(ctx: &Context, name: &str, path: &str) -> Result<Removal> {
    let fs = HostFs::current();
    with_ledger(&fs, &ctx.dirs.store, |ledger| {
        ledger.remove(&fs, name, Kind::Bin, path)?.ok_or_else(|| {
            failure(
                format!("box `{name}` has no exported binary {path}"),
                format!("`box export {name} --list` shows its exports"),
            )
        })
    })
}

/// Remove the exported application `app` (its path in the box, its desktop id, or the
/// name it was exported by) of box `name`, with the icons only it used.
pub fn delete_app(ctx: &Context, name: &str, app: &str) -> Result<Removal> {
    let fs = HostFs::current();
    let removal = with_ledger(&fs, &ctx.dirs.store, |ledger| {
        let id = if app.ends_with(".desktop") {
            app.to_owned()
        } else {
            format!("{app}.desktop")
        };
        // By its source, its file (the exported id, or the app's own id that exports
        // made before box named them after their box had), or the app's id.
        let exported = exported_id(name, &id);
        let source = ledger
            .of_box(name)
            .filter(|e| e.kind == Kind::App)
            .find(|e| {
                e.source == app
                    || e.files.first().is_some_and(|f| {
                        f.path
                            .file_name()
                            .is_some_and(|n| *n == *id || *n == *exported)
                    })
            })
            .map(|e| e.source.clone());
        let source = match source {
            Some(source) => source,
            // An application name: resolve it in the box, if the box is there.
            None => open_box(ctx, name)
                .and_then(|root| desktop::find_app(&root, name, app))
                .map(|found| found.path)
                .unwrap_or_default(),
        };
        ledger
            .remove(&fs, name, Kind::App, &source)?
            .ok_or_else(|| {
                failure(
                    format!("box `{name}` has no exported application `{app}`"),
                    format!("`box export {name} --list` shows its exports"),
                )
            })
    })?;
    refresh_caches(&fs, &ctx.dirs.data_home);
    Ok(removal)
}

/// Whether the export ledger exists; one that cannot be looked up is an error, not "no
/// exports".
fn ledger_exists(fs: &HostFs, store: &Path) -> Result<bool> {
    let path = ledger_path(fs, store)?;
    path.try_exists()
        .with_context(|| format!("looking up the export ledger {}", path.display()))
}

/// Remove every export of box `name` (called by `box rm`). Files the user changed are
/// left in place, with a warning naming them.
pub fn remove_box_exports(ctx: &Context, name: &str) -> Result<()> {
    let fs = HostFs::current();
    if !ledger_exists(&fs, &ctx.dirs.store)? {
        return Ok(());
    }
    let mut any_app = false;
    with_ledger(&fs, &ctx.dirs.store, |ledger| {
        let exports: Vec<(Kind, String)> = ledger
            .of_box(name)
            .map(|e| (e.kind, e.source.clone()))
            .collect();
        for (kind, source) in exports {
            any_app |= kind != Kind::Bin;
            if let Some(removal) = ledger.remove(&fs, name, kind, &source)? {
                warn_kept(&removal);
            }
        }
        Ok(())
    })?;
    if any_app {
        refresh_caches(&fs, &ctx.dirs.data_home);
    }
    Ok(())
}

/// Warn about files left in place because the user changed them.
pub fn warn_kept(removal: &Removal) {
    for path in &removal.kept_modified {
        crate::ui::report::warn(format!(
            "kept {}: it was changed after box wrote it; remove it yourself if you no longer need it",
            path.display()
        ));
    }
}

/// Which file a box's own menu entry is: box's `box-NAME.desktop` (a name no
/// application's entry has), or distrobox's `NAME.desktop` (for `distrobox create` and
/// `distrobox generate-entry`, which write it there). A box has one entry: writing it
/// under the other name moves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EntryFile {
    #[default]
    Box,
    Distrobox,
}

/// The path of box `name`'s terminal entry.
fn entry_path(ctx: &Context, name: &str, file: EntryFile) -> PathBuf {
    let file_name = match file {
        EntryFile::Box => format!("box-{name}.desktop"),
        EntryFile::Distrobox => format!("{name}.desktop"),
    };
    ctx.dirs.data_home.join("applications").join(file_name)
}

/// Write the desktop menu entry that opens a terminal in box `name` (called by `box create`).
pub fn generate_entry(ctx: &Context, name: &str) -> Result<()> {
    generate_entry_with(ctx, name, false).map(|_| ())
}

/// [`generate_entry`], optionally replacing a file box did not write. Returns its path.
pub fn generate_entry_with(ctx: &Context, name: &str, force: bool) -> Result<PathBuf> {
    generate_entry_as(ctx, name, force, EntryFile::Box, None)
}

/// [`generate_entry_with`] as the file `file`, with the icon `icon` (an icon name, or an
/// absolute path of a host file) instead of box's.
pub fn generate_entry_as(
    ctx: &Context,
    name: &str,
    force: bool,
    file: EntryFile,
    icon: Option<&str>,
) -> Result<PathBuf> {
    crate::store::containers::validate_name(name)?;
    if crate::host::containerenv_box().as_deref() != Some(name) {
        Store::at(&ctx.dirs.store).container(name)?;
    }
    let host = Host::from_ctx(ctx)?;
    let path = entry_path(ctx, name, file);
    let text = desktop::terminal_entry(&host.launch(), name);
    let text = match icon {
        Some(icon) => with_icon(&text, icon),
        None => text,
    };
    with_ledger(&host.fs, &host.store, |ledger| {
        ledger.install(
            &host.fs,
            name,
            Kind::Entry,
            "",
            vec![Planned {
                path: path.clone(),
                bytes: text.into_bytes(),
                mode: 0o644,
                shareable: false,
            }],
            force,
        )
    })?;
    refresh_caches(&host.fs, &ctx.dirs.data_home);
    Ok(path)
}

/// `text` (a box's terminal entry) with `Icon=` of `[Desktop Entry]` set to `icon`.
fn with_icon(text: &str, icon: &str) -> String {
    let mut in_main = false;
    let mut out = String::with_capacity(text.len() + icon.len());
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_main = trimmed == "[Desktop Entry]";
        }
        if in_main
            && line
                .split_once('=')
                .is_some_and(|(k, _)| k.trim() == "Icon")
        {
            out.push_str(&format!("Icon={}\n", exec::escape_string(icon)));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Remove the menu entry of box `name` (nothing to do if there is none).
pub fn delete_entry(ctx: &Context, name: &str) -> Result<()> {
    remove_entry(ctx, name).map(|_| ())
}

/// [`delete_entry`], saying what it removed: `None` when there was no entry.
pub fn remove_entry(ctx: &Context, name: &str) -> Result<Option<Removal>> {
    let fs = HostFs::current();
    if !ledger_exists(&fs, &ctx.dirs.store)? {
        return Ok(None);
    }
    let removal = with_ledger(&fs, &ctx.dirs.store, |ledger| {
        ledger.remove(&fs, name, Kind::Entry, "")
    })?;
    if let Some(removal) = &removal {
        warn_kept(removal);
        refresh_caches(&fs, &ctx.dirs.data_home);
    }
    Ok(removal)
}

/// How long a cache tool may take before box stops waiting for it.
const CACHE_TOOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Refresh the host's menu and icon caches where the tools exist; their absence,
/// failure or output costs only a stale cache (desktops also rebuild their caches when
/// the directories change), so they run quietly and never fail the export.
fn refresh_caches(fs: &HostFs, data_home: &Path) {
    let path = crate::sys::env::search_path();
    for (program, args) in cache_commands(fs, data_home, &path) {
        run_quietly(&program, &args, CACHE_TOOL_TIMEOUT);
    }
}

/// The cache tools to run, with their arguments, for the tools found in `path`.
///
/// - `update-desktop-database DIR` (the MIME cache of the applications directory) and
///   `gtk-update-icon-cache -q THEME` (only for themes with an index.theme: it refuses
///   others) write into the directories themselves, so they are right from inside a box
///   too (through `/run/host`).
/// - `xdg-desktop-menu forceupdate` (xdg-utils; it knows the running desktop), or
///   without it `kbuildsycoca6`/`kbuildsycoca5` (KDE's menu cache), rebuild the
///   session's menu from the *caller's* view of every data directory: inside a box that
///   is the box's `XDG_DATA_DIRS`, and a KDE cache built there would lose the host's
///   applications. They run on the host only.
fn cache_commands(
    fs: &HostFs,
    data_home: &Path,
    path: &std::ffi::OsStr,
) -> Vec<(PathBuf, Vec<std::ffi::OsString>)> {
    let mut commands = Vec::new();
    let mut add = |program: &str, args: Vec<std::ffi::OsString>| match find_in_path(path, program) {
        Some(found) => {
            commands.push((found, args));
            true
        }
        None => false,
    };
    if let Ok(apps) = fs.dir(&data_home.join("applications"))
        && apps.is_dir()
    {
        add("update-desktop-database", vec![apps.into()]);
    }
    if let Ok(icons) = fs.dir(&data_home.join("icons"))
        && let Ok(themes) = std::fs::read_dir(&icons)
    {
        let mut themes: Vec<PathBuf> = themes.flatten().map(|t| t.path()).collect();
        themes.sort();
        for dir in themes {
            if dir.join("index.theme").is_file() {
                add("gtk-update-icon-cache", vec!["-q".into(), dir.into()]);
            }
        }
    }
    if !fs.is_remote() && !add("xdg-desktop-menu", vec!["forceupdate".into()]) {
        for program in ["kbuildsycoca6", "kbuildsycoca5"] {
            add(program, Vec::new());
        }
    }
    commands
}

/// Run `program` with no input and its output discarded, waiting at most `timeout`
/// (then it is killed): a cache tool must not hang or clutter an export.
fn run_quietly(program: &Path, args: &[std::ffi::OsString], timeout: std::time::Duration) {
    let Ok(mut child) = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return;
    };
    let deadline = std::time::Instant::now() + timeout;
    while let Ok(None) = child.try_wait() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn find_in_path(path: &std::ffi::OsStr, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerenv_must_say_box() {
        use crate::host::parse_containerenv;
        assert_eq!(
            parse_containerenv("engine=\"box\"\nname=\"dev\"\n").as_deref(),
            Some("dev")
        );
        assert_eq!(
            parse_containerenv("engine=\"podman-4.3\"\nname=\"dev\"\n"),
            None
        );
        assert_eq!(parse_containerenv("name=\"dev\"\n"), None);
        assert_eq!(parse_containerenv("engine=\"box\"\n"), None);
        assert_eq!(parse_containerenv("engine=\"box\"\nname=\"\"\n"), None);
    }

    #[test]
    fn bin_paths_must_be_absolute_files() {
        let err = check_bin_path("rg").unwrap_err();
        assert!(crate::error::message(&err).contains("not an absolute path"));
        assert!(check_bin_path("/usr/bin/").is_err());
        check_bin_path("/usr/bin/rg").unwrap();
    }

    #[test]
    fn missing_and_non_executable_binaries_name_path_and_box() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        std::fs::write(dir.path().join("usr/bin/data"), "x").unwrap();
        let root = BoxRoot::open(dir.path()).unwrap();
        let err = check_binary(&root, "dev", "/usr/bin/nope").unwrap_err();
        assert_eq!(
            crate::error::message(&err),
            "/usr/bin/nope does not exist in box `dev`"
        );
        let err = check_binary(&root, "dev", "/usr/bin/data").unwrap_err();
        assert!(crate::error::message(&err).contains("not an executable"));
        assert!(check_binary(&root, "dev", "/usr/bin").is_err());
    }

    #[test]
    fn labels_default_substitute_and_can_be_turned_off() {
        assert_eq!(resolve_label(None, "dev"), " (on dev)");
        assert_eq!(resolve_label(Some(" [{box}]"), "dev"), " [dev]");
        assert_eq!(resolve_label(Some("none"), "dev"), "");
        assert_eq!(resolve_label(Some(""), "dev"), "");
    }

    #[test]
    fn icon_values_come_from_entry_and_actions() {
        let text = "[Desktop Entry]\nIcon=app\nIcon[de]=app-de\n[Desktop Action x]\nIcon=/opt/a.png\n[X-Other]\nIcon=no\n";
        let entry = desktop::Entry::parse(text).unwrap();
        assert_eq!(entry.icon_values(), ["app", "app-de"]);
        let text = text.replace("[Desktop Entry]\n", "[Desktop Entry]\nActions=x;\n");
        let entry = desktop::Entry::parse(&text).unwrap();
        assert_eq!(entry.icon_values(), ["app", "app-de"]);
        let text = text.replace("[Desktop Action x]\n", "[Desktop Action x]\nExec=a\n");
        let entry = desktop::Entry::parse(&text).unwrap();
        assert_eq!(entry.icon_values(), ["app", "app-de", "/opt/a.png"]);
    }

    #[test]
    fn missing_box_hint_names_the_wrapper() {
        assert_eq!(
            format_missing_box_hint("dev", Path::new("/home/u/.local/bin/my tool")),
            "this wrapper was exported from box dev, which no longer exists; delete it with `rm '/home/u/.local/bin/my tool'`"
        );
    }

    #[test]
    fn cache_tools_run_where_found_and_session_wide_ones_only_on_the_host() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = |name: &str| {
            let path = bin.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        for name in [
            "update-desktop-database",
            "gtk-update-icon-cache",
            "kbuildsycoca6",
        ] {
            tool(name);
        }
        // Not executable: not a tool.
        std::fs::write(bin.join("kbuildsycoca5"), "").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("applications")).unwrap();
        std::fs::create_dir_all(data.join("icons/hicolor")).unwrap();
        std::fs::create_dir_all(data.join("icons/MyTheme")).unwrap();
        std::fs::write(data.join("icons/MyTheme/index.theme"), "[Icon Theme]\n").unwrap();
        let names = |fs: &HostFs| -> Vec<String> {
            cache_commands(fs, &data, bin.as_os_str())
                .into_iter()
                .map(|(p, args)| {
                    let mut words = vec![p.file_name().unwrap().to_string_lossy().into_owned()];
                    words.extend(args.iter().map(|a| a.to_string_lossy().into_owned()));
                    words.join(" ")
                })
                .collect()
        };
        let apps = data.join("applications").display().to_string();
        let theme = data.join("icons/MyTheme").display().to_string();
        assert_eq!(
            names(&HostFs::native()),
            [
                format!("update-desktop-database {apps}"),
                format!("gtk-update-icon-cache -q {theme}"),
                "kbuildsycoca6".to_owned(),
            ]
        );
        // xdg-desktop-menu knows the desktop: it replaces the KDE tools.
        tool("xdg-desktop-menu");
        assert_eq!(
            names(&HostFs::native())[2..],
            ["xdg-desktop-menu forceupdate".to_owned()]
        );
        // Inside a box (a host root elsewhere), only the per-directory tools run.
        let remote = HostFs::at(Path::new("/"));
        assert_eq!(names(&remote).len(), 2, "{:?}", names(&remote));
    }

    #[test]
    fn a_hanging_cache_tool_is_stopped_and_a_noisy_failing_one_is_quiet() {
        let start = std::time::Instant::now();
        run_quietly(
            Path::new("/bin/sleep"),
            &["30".into()],
            std::time::Duration::from_millis(200),
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // Output goes nowhere and a failure is ignored (this would print into the
        // test's output otherwise, and must not panic).
        run_quietly(
            Path::new("/bin/sh"),
            &["-c".into(), "echo noise; echo noise >&2; exit 3".into()],
            std::time::Duration::from_secs(5),
        );
        run_quietly(
            Path::new("/no/such/tool"),
            &[],
            std::time::Duration::from_secs(1),
        );
    }

    /// A fake box with Debian's xterm files and a host with temporary XDG dirs.
    fn fake(dir: &Path) -> (Host, BoxRoot) {
        let root = dir.join("box");
        let put = |path: &str, bytes: &[u8], mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let p = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        put("/usr/bin/xterm", b"\x7fELF", 0o755);
        put(
            "/usr/share/applications/debian-xterm.desktop",
            b"# xterm\n[Desktop Entry]\nName=XTerm\nComment=standard terminal emulator for the X window system\nExec=xterm\nTerminal=false\nType=Application\nIcon=mini.xterm\nCategories=System;TerminalEmulator;\nKeywords=shell;prompt;command;commandline;cmd;\nStartupWMClass=XTerm\nX-Desktop-File-Install-Version=0.26\n",
            0o644,
        );
        put(
            "/usr/share/icons/hicolor/scalable/apps/mini.xterm.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            0o644,
        );
        put(
            "/usr/share/pixmaps/mini.xterm_32x32.xpm",
            b"/* XPM */\nstatic char * x[] = {\n\"32 32 1 1\",\n};\n",
            0o644,
        );
        let host = Host {
            fs: HostFs::native(),
            data_home: dir.join("data"),
            bin_home: dir.join("bin"),
            store: dir.join("data/box"),
            box_exe: PathBuf::from("/opt/box/bin/box"),
        };
        (host, BoxRoot::open(&root).unwrap())
    }

    #[test]
    fn app_export_writes_a_valid_entry_and_icons_and_removal_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let (host, root) = fake(dir.path());
        let entry = app_from(&host, &root, "dev", "xterm", " (on dev)", false).unwrap();
        // Named after its box (what desktop tools look for), matching windows through
        // the entry's own StartupWMClass.
        assert_eq!(
            entry,
            host.data_home.join("applications/dev-debian-xterm.desktop")
        );
        let text = std::fs::read_to_string(&entry).unwrap();
        let exec_line = format!(
            "\nExec=/usr/bin/env BOX_DATA_HOME={} /opt/box/bin/box run dev -- xterm\n",
            host.data_home.display()
        );
        assert!(text.contains(&exec_line), "{text}");
        assert!(text.contains("\nName=XTerm (on dev)\n"), "{text}");
        assert!(text.contains("\nStartupWMClass=XTerm\n"), "{text}");
        // Rebuilt by box: no comment, no key outside the allow-list.
        assert!(text.starts_with("[Desktop Entry]\nType=Application\nName=XTerm"));
        assert!(!text.contains('#') && !text.contains("X-Desktop-File-Install-Version"));
        desktop::tests::assert_validates(&entry);
        let icon = host
            .data_home
            .join("icons/hicolor/scalable/apps/mini.xterm.svg");
        assert!(icon.is_file());

        let wrapper = bin_from(&host, &root, "dev", "/usr/bin/xterm", None, false).unwrap();
        assert_eq!(wrapper, host.bin_home.join("xterm"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&wrapper).unwrap().permissions().mode() & 0o777,
            0o755
        );

        // Another box exports the same app beside it, sharing the icon.
        let second = app_from(&host, &root, "two", "xterm", "", false).unwrap();
        assert_eq!(
            second,
            host.data_home.join("applications/two-debian-xterm.desktop")
        );
        // A user's own file in the way is named, and --force replaces it.
        let own = host.bin_home.join("mine");
        std::fs::write(&own, "user").unwrap();
        let err = bin_from(&host, &root, "two", "/usr/bin/xterm", None, false).unwrap_err();
        assert!(crate::error::message(&err).contains(&wrapper.display().to_string()));

        let mut ledger = Ledger::load(&Store::at(&host.store).exports_path()).unwrap();
        assert_eq!(ledger.of_box("dev").count(), 2);
        for (kind, source) in [
            (Kind::App, "/usr/share/applications/debian-xterm.desktop"),
            (Kind::Bin, "/usr/bin/xterm"),
        ] {
            let removal = ledger
                .remove(&HostFs::native(), "dev", kind, source)
                .unwrap()
                .unwrap();
            assert!(removal.kept_modified.is_empty());
        }
        // The icon stays while box `two`'s export uses it.
        assert!(!entry.exists() && icon.exists() && !wrapper.exists());
        ledger
            .remove(
                &HostFs::native(),
                "two",
                Kind::App,
                "/usr/share/applications/debian-xterm.desktop",
            )
            .unwrap()
            .unwrap();
        assert!(!second.exists() && !icon.exists());
        assert!(own.exists());
    }

    #[test]
    fn an_entry_without_a_window_class_gets_the_app_s_own_id_and_extras_reach_every_exec() {
        let dir = tempfile::tempdir().unwrap();
        let (host, root) = fake(dir.path());
        let put = |path: &str, bytes: &str| {
            let p = dir.path().join("box").join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
        };
        put(
            "/usr/share/applications/org.example.Viewer.desktop",
            "[Desktop Entry]\nType=Application\nName=Viewer\nExec=xterm --view %U\nActions=New;\n\n[Desktop Action New]\nName=New\nExec=xterm --new\n",
        );
        let extra_args = ["--foreground".to_owned()];
        let extra = wrapper::Extra {
            args: &extra_args,
            as_root: true,
        };
        let entry =
            app_from_with(&host, &root, "dev", "org.example.Viewer", "", false, &extra).unwrap();
        assert_eq!(entry.file_name().unwrap(), "dev-org.example.Viewer.desktop");
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            text.starts_with("[Desktop Entry]\nStartupWMClass=org.example.Viewer\n"),
            "{text}"
        );
        assert_eq!(text.matches("StartupWMClass").count(), 1, "{text}");
        let prefix = format!(
            "/usr/bin/env BOX_DATA_HOME={} /opt/box/bin/box run --user root dev --",
            host.data_home.display()
        );
        assert!(
            text.contains(&format!("\nExec={prefix} xterm --view --foreground %U\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("\nExec={prefix} xterm --new --foreground\n")),
            "{text}"
        );
        desktop::tests::assert_validates(&entry);
        // Removed by the app's own id as well as by the exported one.
        let removal = with_ledger(&host.fs, &host.store, |ledger| {
            ledger.remove(
                &host.fs,
                "dev",
                Kind::App,
                "/usr/share/applications/org.example.Viewer.desktop",
            )
        })
        .unwrap();
        assert!(removal.is_some() && !entry.exists());
    }

    #[test]
    fn a_terminal_entry_takes_a_custom_icon() {
        let text =
            "[Desktop Entry]\nName=x\nIcon=utilities-terminal\n\n[Desktop Action R]\nIcon=keep\n";
        assert_eq!(
            with_icon(text, "/home/u/my icon.png"),
            "[Desktop Entry]\nName=x\nIcon=/home/u/my icon.png\n\n[Desktop Action R]\nIcon=keep\n"
        );
    }

    #[test]
    fn apps_with_same_named_icon_files_each_get_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let (host, root) = fake(dir.path());
        let put = |path: &str, bytes: &[u8]| {
            let p = dir.path().join("box").join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
        };
        for app in ["appx", "appy", "appz"] {
            // appz uses appx's very file.
            let icon = if app == "appz" { "appx" } else { app };
            put(
                &format!("/usr/share/applications/{app}.desktop"),
                format!("[Desktop Entry]\nType=Application\nName={app}\nExec=xterm\nIcon=/opt/{icon}/icon.png\n").as_bytes(),
            );
        }
        let icon = |marker: &[u8]| [&b"\x89PNG\r\n\x1a\n"[..], marker].concat();
        put("/opt/appx/icon.png", &icon(b"x's icon"));
        put("/opt/appy/icon.png", &icon(b"y's icon"));
        let icon_of = |app: &str| -> PathBuf {
            let entry = app_from(&host, &root, "dev", app, "", false).unwrap();
            let text = std::fs::read_to_string(entry).unwrap();
            PathBuf::from(desktop::main_group(&text).get("Icon").unwrap())
        };
        let (x, y, z) = (icon_of("appx"), icon_of("appy"), icon_of("appz"));
        assert_ne!(x, y);
        assert_eq!(std::fs::read(&x).unwrap(), icon(b"x's icon"));
        assert_eq!(std::fs::read(&y).unwrap(), icon(b"y's icon"));
        assert!(x.starts_with(host.data_home.join("icons/box/dev")), "{x:?}");
        // The same box file is one host file, shared, kept until its last user goes.
        assert_eq!(z, x);
        let mut ledger = Ledger::load(&Store::at(&host.store).exports_path()).unwrap();
        for app in ["appx", "appz"] {
            let source = format!("/usr/share/applications/{app}.desktop");
            assert!(x.exists());
            ledger
                .remove(&HostFs::native(), "dev", Kind::App, &source)
                .unwrap()
                .unwrap();
        }
        assert!(!x.exists() && y.exists());
    }

    #[test]
    fn try_exec_is_checked_in_the_box_and_path_is_not_the_host_s() {
        let dir = tempfile::tempdir().unwrap();
        let (host, root) = fake(dir.path());
        let put = |name: &str, extra: &str| {
            let p = dir
                .path()
                .join("box/usr/share/applications")
                .join(format!("{name}.desktop"));
            std::fs::write(
                &p,
                format!("[Desktop Entry]\nType=Application\nName={name}\nExec=xterm\n{extra}"),
            )
            .unwrap();
        };
        put("gone", "TryExec=/usr/bin/gone\n");
        let err = app_from(&host, &root, "dev", "gone", "", false).unwrap_err();
        assert_eq!(
            crate::error::message(&err),
            "gone.desktop in box `dev` has TryExec=/usr/bin/gone, which is not installed there (the box's own menu hides this entry)"
        );
        assert!(err.downcast_ref::<crate::error::Hint>().is_some());
        assert!(!host.data_home.join("applications/gone.desktop").exists());
        put("gone-too", "TryExec=no-such-program\n");
        assert!(app_from(&host, &root, "dev", "gone-too", "", false).is_err());
        // Found by name in the box's PATH, or by its path; no TryExec on the host.
        put("here", "TryExec=xterm\nPath=/opt/only-in-the-box\n");
        put("here-too", "TryExec=/usr/bin/xterm\n");
        for app in ["here", "here-too"] {
            let entry = app_from(&host, &root, "dev", app, "", false).unwrap();
            let text = std::fs::read_to_string(&entry).unwrap();
            assert!(
                !text.contains("TryExec") && !text.contains("Path="),
                "{text}"
            );
            desktop::tests::assert_validates(&entry);
        }
    }

    #[test]
    fn bad_bin_exports_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (host, root) = fake(dir.path());
        let err = bin_from(&host, &root, "dev", "/usr/bin/nope", None, false).unwrap_err();
        assert_eq!(
            crate::error::message(&err),
            "/usr/bin/nope does not exist in box `dev`"
        );
        let err = bin_from(&host, &root, "dev", "xterm", None, false).unwrap_err();
        assert!(crate::error::message(&err).contains("not an absolute path"));
        // An export directory that cannot be created (even root cannot write in /proc).
        let bad = Path::new("/proc/box-no-such-dir");
        let err = bin_from(&host, &root, "dev", "/usr/bin/xterm", Some(bad), false).unwrap_err();
        let msg = crate::error::message(&err);
        assert!(msg.contains("/proc/box-no-such-dir"), "{msg}");
        assert!(err.downcast_ref::<crate::error::Hint>().is_some());
        let err = app_from(&host, &root, "dev", "nothing-like-it", "", false).unwrap_err();
        assert!(
            crate::error::message(&err).contains("no application `nothing-like-it` in box `dev`")
        );
    }
}
