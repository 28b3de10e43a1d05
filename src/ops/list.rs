//! The boxes of the store and how each one is, for every listing that shows them
//! (`box list`, `box list --json`).
//!
//! Invariants: one damaged record hides neither the other boxes nor itself (it is listed
//! as damaged, with a warning saying how to remove it); every box's status is found in
//! one pass (one /proc scan for all boxes whose holder died, see `runtime::state`).

use anyhow::Result;
use serde::Serialize;

use crate::context::Context;
use crate::runtime::state;
use crate::store::{Store, format_time};

/// Whether a box runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its holder is alive, or its processes outlived a dead holder (its overlay is
    /// still mounted; the next enter gives it a new holder).
    Running,
    Stopped,
    /// Its record cannot be read.
    Damaged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Damaged => "damaged",
        }
    }
}

/// One box as listings show it.
#[derive(Debug, Clone, Serialize)]
pub struct BoxSummary {
    pub name: String,
    pub status: Status,
    pub image: String,
    /// When it was created (RFC 3339).
    pub created: String,
    pub storage: String,
    /// The holder's pid, while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// False while its provisioning is pending (interrupted or failed).
    pub provisioned: bool,
    /// CDI devices asked for at create (`--device`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// `--nvidia` (true) or `--no-nvidia` (false); absent: automatic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvidia: Option<bool>,
}

/// Every box of the store, sorted by name.
pub fn boxes(ctx: &Context) -> Result<Vec<BoxSummary>> {
    let store = Store::at(&ctx.dirs.store);
    let boxes = store.container_listings()?;
    let names: Vec<&str> = boxes.iter().map(|(name, _)| name.as_str()).collect();
    let statuses = state::statuses(ctx, &store, &names);
    let mut out = Vec::with_capacity(boxes.len());
    for ((name, listing), status) in boxes.into_iter().zip(statuses) {
        let listing = match listing {
            Ok(listing) => listing,
            Err(err) => {
                crate::ui::report::warn(format!(
                    "{} (hint: `box rm --force {name}` removes it)",
                    crate::error::message(&err)
                ));
                out.push(BoxSummary {
                    name,
                    status: Status::Damaged,
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
        let (status, pid) = match status {
            state::Status::Running(state) => (Status::Running, Some(state.pid)),
            state::Status::Orphaned { .. } => (Status::Running, None),
            state::Status::Stopped { .. } => (Status::Stopped, None),
        };
        out.push(BoxSummary {
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
    Ok(out)
}

/// The images of the store.
pub fn images(ctx: &Context) -> Result<Vec<crate::store::images::ImageRecord>> {
    Store::at(&ctx.dirs.store).images()
}

/// A store time (seconds since the epoch) in RFC 3339, as listings show times.
pub fn time_text(seconds: u64) -> String {
    format_time(seconds)
}
