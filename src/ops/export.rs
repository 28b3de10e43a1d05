//! Exporting from a box: a binary as a wrapper on the host PATH, an application as a
//! menu entry, their removal, and the box's own menu entry (`box generate-entry`). The
//! files themselves are [`crate::export`]'s work; this layer picks the box, says what was
//! done, and is what `box export`, `box create` and manifests call.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::context::Context;
use crate::error::failure;
use crate::export;
use crate::store::Store;
use crate::ui::report::notice;

pub use crate::export::EntryFile;
pub use crate::export::desktop::main_group;
pub use crate::export::ledger::Kind;
pub use crate::export::wrapper::Extra;
pub use crate::host::containerenv_box as current_box;

/// One export change.
#[derive(Debug, Clone)]
pub enum Request<'a> {
    /// `--bin PATH [--export-path DIR] [--force]`
    Bin {
        path: &'a str,
        export_path: Option<&'a Path>,
        force: bool,
        /// What the wrapper adds on the host (distrobox-export's `-ef`, `-S`).
        extra: export::wrapper::Extra<'a>,
    },
    /// `--app APP [--export-label L] [--force]`
    App {
        app: &'a str,
        label: Option<&'a str>,
        force: bool,
        /// What the launchers add (distrobox-export's `-ef`, `-S`).
        extra: export::wrapper::Extra<'a>,
    },
    /// `--delete --bin PATH`
    DeleteBin(&'a str),
    /// `--delete --app APP`
    DeleteApp(&'a str),
}

/// The box to act on: the one named, or inside a box, that box.
pub fn box_name(named: Option<&str>) -> Result<String> {
    let current = crate::host::containerenv_box();
    match (named, current) {
        (Some(name), Some(current)) if name != current => Err(failure(
            format!("cannot export from box `{name}` while inside box `{current}`"),
            "run `box export` on the host, or leave out the name to export from this box",
        )),
        (Some(name), _) => Ok(name.to_owned()),
        (None, Some(current)) => Ok(current),
        (None, None) => Err(failure(
            "which box? name it: `box export NAME ...`",
            "`box list` shows your boxes",
        )),
    }
}

/// Carry out `request` for box `name`, saying what was done.
pub fn export(ctx: &Context, name: &str, request: Request) -> Result<PathBuf> {
    export_quietly(ctx, name, request, true)
}

/// [`export`], saying what was done when `say` (distrobox-export says it its own way).
/// Returns the host file written (for a removal, the first file removed, or nothing).
pub fn export_quietly(ctx: &Context, name: &str, request: Request, say: bool) -> Result<PathBuf> {
    let notice = |text: String| {
        if say {
            notice(text)
        }
    };
    match request {
        Request::DeleteBin(bin) => {
            let removal = export::delete_bin(ctx, name, bin)?;
            if say {
                report_removal(&removal);
            }
            Ok(removal.removed.first().cloned().unwrap_or_default())
        }
        Request::DeleteApp(app) => {
            let removal = export::delete_app(ctx, name, app)?;
            if say {
                report_removal(&removal);
            }
            Ok(removal.removed.first().cloned().unwrap_or_default())
        }
        Request::Bin {
            path,
            export_path,
            force,
            extra,
        } => {
            let wrapper = export::export_bin_with(ctx, name, path, export_path, force, &extra)?;
            notice(format!(
                "exported {path} from box `{name}` as {}{}",
                wrapper.display(),
                if crate::host::containerenv_box().is_some() {
                    " on the host"
                } else {
                    ""
                }
            ));
            let dir = wrapper.parent().unwrap_or(&wrapper);
            let on_path = std::env::split_paths(&crate::sys::env::search_path()).any(|d| d == dir);
            if !on_path {
                notice(format!(
                    "{} is not on your PATH; add it to run `{}` by name",
                    dir.display(),
                    wrapper.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
            Ok(wrapper)
        }
        Request::App {
            app,
            label,
            force,
            extra,
        } => {
            let entry = export::export_app_with(ctx, name, app, label, force, &extra)?;
            notice(format!(
                "exported {app} from box `{name}` to the menu: {}",
                entry.display()
            ));
            Ok(entry)
        }
    }
}

fn report_removal(removal: &export::ledger::Removal) {
    for path in &removal.removed {
        notice(format!("removed {}", path.display()));
    }
    export::warn_kept(removal);
}

/// Add the menu entry that opens a terminal in box `name` (`force`: replace a file at
/// The exports of box `name`. A name with neither a box nor exports is most likely a
/// typo: the "no box named" error then.
pub fn list(ctx: &Context, name: &str) -> Result<Vec<export::ledger::Export>> {
    let exports = export::list(ctx, name)?;
    let store = Store::at(&ctx.dirs.store);
    if exports.is_empty() && !store.has_container(name) {
        store.container(name)?;
    }
    Ok(exports)
}

/// its path that box did not write); returns its path.
pub fn add_entry(ctx: &Context, name: &str, force: bool) -> Result<PathBuf> {
    add_entry_as(ctx, name, force, export::EntryFile::Box, None)
}

/// [`add_entry`] as the file `file` (box's or distrobox's name), with `icon` (an icon
/// name, or an absolute path of an image on the host) instead of box's.
pub fn add_entry_as(
    ctx: &Context,
    name: &str,
    force: bool,
    file: export::EntryFile,
    icon: Option<&str>,
) -> Result<PathBuf> {
    if let Some(icon) = icon
        && icon.contains('/')
        && !(Path::new(icon).is_absolute() && Path::new(icon).is_file())
    {
        return Err(failure(
            format!("the icon {icon} is not an image file on the host"),
            "give an icon's name (`utilities-terminal`) or the absolute path of an image file",
        ));
    }
    let path = export::generate_entry_as(ctx, name, force, file, icon)?;
    notice(format!("added {}", path.display()));
    Ok(path)
}

/// Remove box `name`'s menu entry. Nothing to remove is not an error (as with
/// distrobox): the goal, no entry, holds.
pub fn remove_entry(ctx: &Context, name: &str) -> Result<()> {
    match export::remove_entry(ctx, name)? {
        Some(removal) => {
            for path in &removal.removed {
                notice(format!("removed {}", path.display()));
            }
        }
        None if Store::at(&ctx.dirs.store).has_container(name) => {
            notice(format!("box `{name}` has no menu entry; nothing to remove"))
        }
        None => notice(format!(
            "there is no box `{name}` and no menu entry for it; nothing to remove"
        )),
    }
    Ok(())
}
