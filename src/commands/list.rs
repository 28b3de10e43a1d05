//! `box list` / `box ls`: every box with its status, image and creation date.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::cli::ListArgs;
use crate::context::Context;
use crate::runtime::state;
use crate::store::{Store, format_time};

#[derive(Serialize)]
struct Row {
    name: String,
    status: &'static str,
    image: String,
    created: String,
    storage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    /// False while its provisioning is pending (interrupted or failed).
    provisioned: bool,
    /// CDI devices asked for at create (`--device`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<String>,
    /// `--nvidia` (true) or `--no-nvidia` (false); absent: automatic.
    #[serde(skip_serializing_if = "Option::is_none")]
    nvidia: Option<bool>,
}

pub fn exec(ctx: &Context, args: ListArgs) -> Result<ExitCode> {
    // A listing in a pipeline ends quietly when the reader does (`box list | head`).
    crate::sys::default_sigpipe();
    let store = Store::at(&ctx.dirs.store);
    let boxes = store.container_listings()?;
    let names: Vec<&str> = boxes.iter().map(|(name, _)| name.as_str()).collect();
    // Every box's state at once: one /proc scan for all boxes whose holder died.
    let statuses = state::statuses(ctx, &store, &names);
    let mut rows = Vec::with_capacity(boxes.len());
    for ((name, listing), status) in boxes.into_iter().zip(statuses) {
        let listing = match listing {
            Ok(listing) => listing,
            // One damaged record must not hide the other boxes (nor itself).
            Err(err) => {
                crate::ui::report::warn(format!(
                    "{} (hint: `box rm --force {name}` removes it)",
                    crate::error::message(&err)
                ));
                rows.push(Row {
                    name,
                    status: "damaged",
                    image: String::new(),
                    created: String::new(),
                    storage: String::new(),
                    pid: None,
                    provisioned: false,
                    devices: Vec::new(),
                    nvidia: None,
                });
                continue;
            }
        };
        // A box whose holder died with processes left in it still runs (its overlay is
        // mounted); the next enter gives it a new holder.
        let (status, pid) = match status {
            state::Status::Running(state) => ("running", Some(state.pid)),
            state::Status::Orphaned { .. } => ("running", None),
            state::Status::Stopped { .. } => ("stopped", None),
        };
        rows.push(Row {
            status,
            pid,
            provisioned: !listing.provision.as_ref().is_some_and(|p| p.is_pending()),
            created: format_time(listing.created),
            image: listing.image,
            storage: listing.storage.to_string(),
            devices: listing.devices,
            nvidia: listing.nvidia,
            name,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let color = !args.no_color && ctx.color_stdout();
    let width =
        |f: fn(&Row) -> usize, title: &str| rows.iter().map(f).max().unwrap_or(0).max(title.len());
    let (wn, ws, wi) = (
        width(|r| r.name.len(), "NAME"),
        width(|r| r.status.len(), "STATUS"),
        width(|r| r.image.len(), "IMAGE"),
    );
    // The whole table in one write, not one per line.
    let mut table = format!(
        "{:wn$}  {:ws$}  {:wi$}  CREATED\n",
        "NAME", "STATUS", "IMAGE"
    );
    for row in &rows {
        let status = format!("{:ws$}", row.status);
        let status = if color && row.status == "running" {
            format!("\x1b[32m{status}\x1b[0m")
        } else {
            status
        };
        let note = if row.provisioned || row.status == "damaged" {
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
