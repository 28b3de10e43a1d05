//! `box images`: list the images in the store.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::cli::ImagesArgs;
use crate::context::Context;
use crate::ui::progress::human_bytes;

/// One row of `box images --json`.
#[derive(Serialize)]
struct Row<'a> {
    reference: &'a str,
    digest: &'a str,
    platform: &'a str,
    layers: usize,
    /// Unpacked size in bytes.
    size: u64,
    /// The image's creation date from its config (RFC 3339), if it has one.
    created: Option<&'a str>,
    /// When it was pulled (RFC 3339).
    pulled: String,
}

pub fn exec(ctx: &Context, args: ImagesArgs) -> Result<ExitCode> {
    // A listing in a pipeline ends quietly when the reader does (`box list | head`).
    crate::sys::default_sigpipe();
    let images = crate::ops::list::images(ctx)?;
    let rows: Vec<Row> = images
        .iter()
        .map(|image| Row {
            reference: &image.reference,
            digest: image.manifest_digest.as_str(),
            platform: &image.platform,
            layers: image.layers.len(),
            size: image.size(),
            created: image.created.as_deref(),
            pulled: crate::ops::list::time_text(image.pulled),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            [
                row.reference.to_owned(),
                row.digest[7..19].to_owned(),
                human_bytes(row.size),
                row.created
                    .map(|c| c.get(..19).unwrap_or(c).replace('T', " "))
                    .unwrap_or_else(|| "-".into()),
                row.platform.to_owned(),
            ]
        })
        .collect();
    print_table(
        &["REFERENCE", "DIGEST", "SIZE", "CREATED", "PLATFORM"],
        &table,
    );
    Ok(ExitCode::SUCCESS)
}

/// Print left-aligned columns separated by two spaces.
pub(crate) fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
