//! `box export`: put a box's binary on the host PATH or its application in the host
//! menu, remove such an export, or list them. The work is in [`crate::ops::export`];
//! the listing's table is this file's.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::cli::ExportArgs;
use crate::context::Context;
use crate::ops::export::{self, Request};

pub fn exec(ctx: &Context, args: ExportArgs) -> Result<ExitCode> {
    let name = export::box_name(args.name.as_deref())?;
    if args.list {
        // A listing in a pipeline ends quietly when the reader does (`box list | head`).
        crate::sys::default_sigpipe();
        return list(ctx, &name, args.json);
    }
    let request = match (&args.bin, &args.app) {
        (Some(bin), None) if args.delete => Request::DeleteBin(bin),
        (None, Some(app)) if args.delete => Request::DeleteApp(app),
        (Some(bin), None) => Request::Bin {
            path: bin,
            export_path: args.export_path.as_deref(),
            force: args.force,
            extra: Default::default(),
        },
        (None, Some(app)) => Request::App {
            app,
            label: args.export_label.as_deref(),
            force: args.force,
            extra: Default::default(),
        },
        // clap requires one of --bin, --app, --list, and --list was handled above.
        (None, None) | (Some(_), Some(_)) => {
            unreachable!("clap requires exactly one of --bin and --app without --list")
        }
    };
    export::export(ctx, &name, request)?;
    Ok(ExitCode::SUCCESS)
}

fn list(ctx: &Context, name: &str, json: bool) -> Result<ExitCode> {
    let exports = export::list(ctx, name)?;
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
