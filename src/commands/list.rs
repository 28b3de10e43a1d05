//! `box list` / `box ls`: every box with its status, image and creation date.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ListArgs;
use crate::context::Context;
use crate::ops::list::{BoxSummary, Status};

pub fn exec(ctx: &Context, args: ListArgs) -> Result<ExitCode> {
    // A listing in a pipeline ends quietly when the reader does (`box list | head`).
    crate::sys::default_sigpipe();
    let rows = crate::ops::list::boxes(ctx)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let color = !args.no_color && ctx.color_stdout();
    let width = |f: fn(&BoxSummary) -> usize, title: &str| {
        rows.iter().map(f).max().unwrap_or(0).max(title.len())
    };
    let (wn, ws, wi) = (
        width(|r| r.name.len(), "NAME"),
        width(|r| r.status.as_str().len(), "STATUS"),
        width(|r| r.image.len(), "IMAGE"),
    );
    // The whole table in one write, not one per line.
    let mut table = format!(
        "{:wn$}  {:ws$}  {:wi$}  CREATED\n",
        "NAME", "STATUS", "IMAGE"
    );
    for row in &rows {
        let status = format!("{:ws$}", row.status.as_str());
        let status = if color && row.status == Status::Running {
            format!("\x1b[32m{status}\x1b[0m")
        } else {
            status
        };
        let note = if row.provisioned || row.status == Status::Damaged {
            ""
        } else {
            "  (not provisioned)"
        };
        table.push_str(&format!(
            "{:wn$}  {status}  {:wi$}  {}{note}\n",
            row.name, row.image, row.created
        ));
    }
    std::io::stdout().lock().write_all(table.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
