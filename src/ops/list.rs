//! The boxes of the store and how each one is, for every listing that shows them
//! (`box list`, `box list --json`, and in distrobox's and podman's terms `distrobox list`
//! and `podman ps`: [`BoxSummary::id`], [`BoxSummary::status_text`]).
//!
//! Invariants: one damaged record hides neither the other boxes nor itself (it is listed
//! as damaged, with a warning saying how to remove it); every box's status is found in
//! one pass (one /proc scan for all boxes whose holder died, see `runtime::state`).

use anyhow::Result;
use serde::Serialize;

use crate::context::Context;
use crate::runtime::state;
use crate::store::Store;
use crate::store::containers::StorageKind;

// What podman's and distrobox's listings show besides the summaries: the records, the
// host's name and box's clock and time format, so the verbs that print those listings
// name the operations only.
pub use crate::host::hostname as host_name;
pub use crate::store::containers::ContainerRecord;
pub use crate::store::images::ImageRecord;
pub use crate::store::{format_time, now};

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
    /// When it was created (Unix seconds).
    #[serde(skip)]
    pub created_at: u64,
    /// When it last started or stopped, as far as box saw (Unix seconds): while it runs,
    /// its start; stopped, its stop; `None`: never started (or not known).
    #[serde(skip)]
    pub since: Option<u64>,
}

impl BoxSummary {
    /// The box's id in podman's and distrobox's terms (64 hex digits; they show the first
    /// 12): a digest of its name and creation time, so it stays the same for the box's
    /// life and a new box of the same name gets another.
    pub fn id(&self) -> String {
        box_id(&self.name, self.created_at)
    }

    /// The box's state as podman says it: `running`, `exited`, `created` (never started).
    pub fn state_word(&self) -> &'static str {
        match (self.status, self.since) {
            (Status::Running, _) => "running",
            (Status::Damaged, _) => "exited",
            (Status::Stopped, Some(_)) => "exited",
            (Status::Stopped, None) => "created",
        }
    }

    /// The box's status as podman (and so distrobox) shows it at `now`: `Up 5 minutes`,
    /// `Exited (0) 2 hours ago`, `Created`.
    pub fn status_text(&self, now: u64) -> String {
        let age = |at: u64| human_duration(now.saturating_sub(at));
        match (self.status, self.since) {
            (Status::Running, Some(at)) => format!("Up {}", age(at)),
            (Status::Running, None) => "Up".to_owned(),
            (Status::Stopped, Some(at)) => format!("Exited (0) {} ago", age(at)),
            (Status::Stopped, None) => "Created".to_owned(),
            (Status::Damaged, _) => "Exited (125) damaged record".to_owned(),
        }
    }
}

/// See [`BoxSummary::id`].
pub fn box_id(name: &str, created: u64) -> String {
    crate::digest::Digest::of(format!("box\n{name}\n{created}").as_bytes())
        .hex()
        .to_owned()
}

/// A duration as podman words it (`Less than a second`, `About a minute`, `5 minutes`,
/// `3 days`): the same steps, so tools that read one read the other.
pub fn human_duration(seconds: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    match seconds {
        0 => "Less than a second".to_owned(),
        s if s < 60 => plural(s, "second"),
        s if s < 2 * 60 => "About a minute".to_owned(),
        s if s < 60 * 60 => plural(minutes, "minute"),
        s if s < 2 * 3600 => "About an hour".to_owned(),
        s if s < 48 * 3600 => plural(hours, "hour"),
        s if s < 14 * 86400 => plural(days, "day"),
        s if s < 60 * 86400 => plural(days / 7, "week"),
        s if s < 2 * 365 * 86400 => plural(days / 30, "month"),
        _ => plural(days / 365, "year"),
    }
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
                    created_at: 0,
                    since: None,
                });
                continue;
            }
        };
        let (status, pid) = match status {
            state::Status::Running(state) => (Status::Running, Some(state.pid)),
            state::Status::Orphaned { .. } => (Status::Running, None),
            state::Status::Stopped { .. } => (Status::Stopped, None),
        };
        let since = match status {
            Status::Running => state::started_at(&store, &name),
            _ => last_stop(&store, &name, &listing.storage),
        };
        out.push(BoxSummary {
            created_at: listing.created,
            since,
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

/// When stopped box `name` last stopped, as far as box can tell: its stop marker; a
/// holder's record left by a holder that died (from its start); or, for a box stopped
/// before box kept the marker, its first start (the user setup's marker in the box).
/// `None`: it never started.
fn last_stop(store: &Store, name: &str, storage: &StorageKind) -> Option<u64> {
    state::stopped_at(store, name)
        .or_else(|| state::started_at(store, name))
        .or_else(|| {
            let top = match storage {
                StorageKind::Overlay => store.container_upper(name),
                StorageKind::Copy => store.container_root(name),
            };
            let marker = top.join(crate::runtime::setup::MARKER.trim_start_matches('/'));
            let modified = std::fs::metadata(marker).ok()?.modified().ok()?;
            Some(
                modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_secs(),
            )
        })
}

/// The images of the store.
pub fn images(ctx: &Context) -> Result<Vec<crate::store::images::ImageRecord>> {
    Store::at(&ctx.dirs.store).images()
}

/// A store time (seconds since the epoch) in RFC 3339, as listings show times.
pub fn time_text(seconds: u64) -> String {
    format_time(seconds)
}

/// A box's record (what `box create` stored), as the listings that show its mounts read it.
pub fn record(ctx: &Context, name: &str) -> Result<ContainerRecord> {
    Store::at(&ctx.dirs.store).container(name)
}

/// The boxes `names` names, or every box with `all`, each checked to exist.
pub fn box_names(ctx: &Context, all: bool, names: &[String]) -> Result<Vec<String>> {
    Store::at(&ctx.dirs.store).named_containers(all, names)
}

/// Every box's name with its image, from the records alone (no lock, no state): what a
/// shell's completion shows. A record that does not read has no image.
pub fn names_and_images(ctx: &Context) -> Result<Vec<(String, Option<String>)>> {
    Ok(Store::at(&ctx.dirs.store)
        .container_listings()?
        .into_iter()
        .map(|(name, listing)| (name, listing.ok().map(|l| l.image)))
        .collect())
}

/// Every image reference in the store, sorted (the names of its records only).
pub fn image_references(ctx: &Context) -> Result<Vec<String>> {
    Store::at(&ctx.dirs.store).image_references()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: Status, since: Option<u64>) -> BoxSummary {
        BoxSummary {
            name: "dev".into(),
            status,
            image: "docker.io/library/debian:trixie".into(),
            created: String::new(),
            storage: "overlay".into(),
            pid: None,
            provisioned: true,
            devices: Vec::new(),
            nvidia: None,
            created_at: 1_700_000_000,
            since,
        }
    }

    #[test]
    fn statuses_read_as_podman_words_them() {
        let now = 1_700_010_000;
        assert_eq!(
            summary(Status::Running, Some(now - 300)).status_text(now),
            "Up 5 minutes"
        );
        assert_eq!(
            summary(Status::Stopped, Some(now - 7300)).status_text(now),
            "Exited (0) 2 hours ago"
        );
        assert_eq!(summary(Status::Stopped, None).status_text(now), "Created");
        assert_eq!(summary(Status::Stopped, None).state_word(), "created");
        assert_eq!(summary(Status::Stopped, Some(1)).state_word(), "exited");
        assert_eq!(summary(Status::Running, None).state_word(), "running");
        for (seconds, words) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (125, "2 minutes"),
            (3600, "About an hour"),
            (7200, "2 hours"),
            (3 * 86400, "3 days"),
            (21 * 86400, "3 weeks"),
            (90 * 86400, "3 months"),
            (3 * 365 * 86400, "3 years"),
        ] {
            assert_eq!(human_duration(seconds), words);
        }
    }

    #[test]
    fn ids_are_stable_per_box_and_differ_between_boxes() {
        let id = box_id("dev", 1);
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, box_id("dev", 1));
        assert_ne!(id, box_id("dev", 2));
        assert_ne!(id, box_id("dev2", 1));
    }
}
