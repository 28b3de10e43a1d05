//! What the store keeps about a box's provisioning: the `provision` part of its record
//! (what to install, whether it is done) and the names of its log and lock.
//!
//! `containers/<name>/provision.log` collects the whole output of every provisioning
//! and upgrade run of the box (appended, a header line per run); `locks/provision-<name>`
//! serializes provisioning runs of one box (a resume waits for a run in progress, and a
//! run killed with -9 releases it with its death).
//!
//! Invariant: a record's status is `Done` only after every step of a run succeeded; a
//! record without the `provision` part (boxes made before box provisioned) is never
//! provisioned by a start.

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Lock, Store};
pub use crate::settings::config::NeedSet;

/// Where a box's provisioning stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Not (completely) done: the next start of the box resumes it.
    Pending,
    /// Every step succeeded.
    Done,
    /// Nothing could be installed: the box has no package manager box knows (a
    /// warning said what is missing). Not retried on start.
    NoPackageManager,
}

/// The `provision` part of a box record: the options it was created with, kept so that
/// a resumed run does what the interrupted one was asked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Provisioning {
    pub status: Status,
    /// `--additional-packages`, one package name each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_packages: Vec<String>,
    /// `--pre-init-hooks`: shell commands run as root before the packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_init_hooks: Vec<String>,
    /// `--init-hooks`: shell commands run as root after the packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_hooks: Vec<String>,
    /// `--provision-set`: which needs the box gets.
    #[serde(default, skip_serializing_if = "NeedSet::is_full")]
    pub set: NeedSet,
}

impl Provisioning {
    /// Whether the provisioning has yet to succeed (interrupted or failed).
    pub fn is_pending(&self) -> bool {
        self.status == Status::Pending
    }
}

impl Store {
    /// The log of box `name`'s provisioning and upgrades.
    pub fn provision_log(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("provision.log")
    }

    /// Take the lock that serializes provisioning runs of box `name`.
    pub fn provision_lock(&self, name: &str) -> Result<Lock> {
        let locks = self.root.join("locks");
        std::fs::create_dir_all(&locks)
            .map_err(|e| anyhow::Error::from(e).context(format!("creating {}", locks.display())))?;
        self.lock_named(&format!("provision-{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_part_round_trips_and_stays_small() {
        let p = Provisioning {
            status: Status::Pending,
            additional_packages: vec!["vim".into()],
            pre_init_hooks: vec![],
            init_hooks: vec!["touch /x".into()],
            set: NeedSet::Full,
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"status":"pending","additional-packages":["vim"],"init-hooks":["touch /x"]}"#
        );
        assert_eq!(serde_json::from_str::<Provisioning>(&text).unwrap(), p);
        let base = Provisioning {
            set: NeedSet::Base,
            ..p
        };
        let text = serde_json::to_string(&base).unwrap();
        assert!(text.ends_with(r#","set":"base"}"#), "{text}");
        assert_eq!(serde_json::from_str::<Provisioning>(&text).unwrap(), base);
    }
}
