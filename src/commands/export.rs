//! `box export`: put a box's binary on the host PATH or its application in the host
//! menu, remove such an export, or list them. The work is in [`crate::export`].

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::cli::ExportArgs;
use crate::context::Context;
use crate::error::failure;
use crate::report::notice;
use crate::export;

pub fn exec(ctx: &Context, args: ExportArgs) -> Result<ExitCode> {
    let name = box_name(args.name.as_deref())?;
    if args.list {
        // A listing in a pipeline ends quietly when the reader does (`box list | head`).
        crate::sys::default_sigpipe();
        return list(ctx, &name, args.json);
    }
    match (&args.bin, &args.app) {
        (Some(bin), None) if args.delete => {
            let removal = export::delete_bin(ctx, &name, bin)?;
            report_removal(&removal);
        }
        (None, Some(app)) if args.delete => {
            let removal = export::delete_app(ctx, &name, app)?;
            report_removal(&removal);
        }
        (Some(bin), None) => {
            let wrapper =
                export::export_bin(ctx, &name, bin, args.export_path.as_deref(), args.force)?;
            notice(format!(
                "exported {bin} from box `{name}` as {}{}",
                wrapper.display(),
                if export::current_box().is_some() {
                    " on the host"
                } else {
                    ""
                }
            ));
            let dir = wrapper.parent().unwrap_or(&wrapper);
            let on_path = std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d == dir));
            if !on_path {
                notice(format!(
                    "{} is not on your PATH; add it to run `{}` by name",
                    dir.display(),
                    wrapper.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
        }
        (None, Some(app)) => {
            let entry =
                export::export_app(ctx, &name, app, args.export_label.as_deref(), args.force)?;
            notice(format!(
                "exported {app} from box `{name}` to the menu: {}",
                entry.display()
            ));
        }
        // clap requires one of --bin, --app, --list, and --list was handled above.
        (None, None) | (Some(_), Some(_)) => {
            unreachable!("clap requires exactly one of --bin and --app without --list")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The box to act on: the one named, or inside a box, that box.
fn box_name(named: Option<&str>) -> Result<String> {
    let current = export::current_box();
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

fn report_removal(removal: &crate::export::registry::Removal) {
    for path in &removal.removed {
        notice(format!("removed {}", path.display()));
    }
    export::warn_kept(removal);
}

fn list(ctx: &Context, name: &str, json: bool) -> Result<ExitCode> {
    let exports = export::list(ctx, name)?;
    if exports.is_empty() && !crate::store::Store::at(&ctx.dirs.store).has_container(name) {
        // No record and no exports: most likely a typo.
        crate::store::Store::at(&ctx.dirs.store).container(name)?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &exports).context("writing JSON")?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 3]> = exports
        .iter()
        .map(|e| {
            [
                e.kind.as_str().to_owned(),
                if e.source.is_empty() {
                    "-".to_owned()
                } else {
                    e.source.clone()
                },
                e.files
                    .first()
                    .map(|f| f.path.display().to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w0, w1) = (width(0).max(4), width(1).max(6));
    writeln!(out, "{:w0$}  {:w1$}  HOST FILE", "KIND", "SOURCE")?;
    for row in rows {
        writeln!(out, "{:w0$}  {:w1$}  {}", row[0], row[1], row[2])?;
    }
    Ok(ExitCode::SUCCESS)
}
