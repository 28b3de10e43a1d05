//! Box records: what a box was created from and with which options.
//!
//! `containers/<name>/box.json` beside the overlay's `upper/`, `work/` and the mount
//! point `root/`. A box directory is built under `tmp/` and renamed into place with
//! RENAME_NOREPLACE, so two `box create` of one name give one box and one clear error.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::{Store, read_json, write_json};
use crate::digest::Digest;
use crate::error::{HintExt, failure};

/// A `--volume SRC:DST[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub name: String,
    /// Canonical image reference.
    pub image: String,
    pub image_digest: Digest,
    /// Layer diff_ids, bottom first: the overlay's lower directories.
    pub layers: Vec<Digest>,
    /// Unix seconds.
    pub created: u64,
    /// Hostname inside; `None` means the host's.
    pub hostname: Option<String>,
    /// Home inside the box when not the host's.
    pub home: Option<PathBuf>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Environment from the image config (`KEY=value`).
    #[serde(default)]
    pub image_env: Vec<String>,
    /// Storage: "overlay", or "copy" when the kernel refused overlay.
    #[serde(default = "default_storage")]
    pub storage: String,
    /// Provisioning (see `store::provision`); `None` in records written before box
    /// provisioned boxes, which are never provisioned on a start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision: Option<super::provision::Provisioning>,
}

fn default_storage() -> String {
    "overlay".into()
}

/// Check a box name: what podman accepts, so names work as hostnames and file names.
pub fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if !valid {
        bail!(failure(
            format!("`{name}` is not a valid box name"),
            "use up to 64 letters, digits, `_`, `.` or `-`, starting with a letter or digit",
        ));
    }
    Ok(())
}

impl Store {
    pub fn container_record_path(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("box.json")
    }

    pub fn container_upper(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("upper")
    }

    pub fn container_work(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("work")
    }

    /// The mount point of the box's root (and, with copy storage, the root itself).
    pub fn container_root(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("root")
    }

    /// The record of box `name`, or a clear error if there is none.
    pub fn container(&self, name: &str) -> Result<ContainerRecord> {
        validate_name(name)?;
        let path = self.container_record_path(name);
        if !path.exists() {
            bail!(failure(
                format!("no box named `{name}`"),
                format!(
                    "`box list` shows your boxes; `box create --image IMAGE {name}` makes one (or `box create DISTRO`, e.g. `box create debian`)"
                ),
            ));
        }
        read_json(&path).with_hint(|| {
            format!(
                "the record of box `{name}` is damaged; `box rm --force {name}` removes the box"
            )
        })
    }

    /// Whether box `name` exists.
    pub fn has_container(&self, name: &str) -> bool {
        self.container_record_path(name).exists()
    }

    /// Create the directory of a new box with its record. Fails cleanly, leaving
    /// nothing behind, if the name is taken (even by a concurrent create).
    pub fn create_container(&self, record: &ContainerRecord) -> Result<()> {
        validate_name(&record.name)?;
        let staging = self.staging_path(&format!("box-{}", record.name));
        let result = (|| {
            std::fs::create_dir(&staging)
                .with_context(|| format!("creating {}", staging.display()))?;
            for sub in ["upper", "work", "root"] {
                std::fs::create_dir(staging.join(sub))
                    .with_context(|| format!("creating {}/{sub}", staging.display()))?;
            }
            write_json(&staging.join("box.json"), record)?;
            let target = self.container_dir(&record.name);
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                &staging,
                rustix::fs::CWD,
                &target,
                rustix::fs::RenameFlags::NOREPLACE,
            )
            .map_err(|err| {
                if err == rustix::io::Errno::EXIST || err == rustix::io::Errno::NOTEMPTY {
                    failure(
                        format!("a box named `{}` already exists", record.name),
                        "pick another name with --name, or remove the old box with `box rm`",
                    )
                } else {
                    anyhow::Error::from(std::io::Error::from(err))
                        .context(format!("renaming {} into place", staging.display()))
                }
            })
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result
    }

    /// Rewrite the record of an existing box.
    pub fn update_container(&self, record: &ContainerRecord) -> Result<()> {
        write_json(&self.container_record_path(&record.name), record)
    }

    /// Every box record, sorted by name.
    /// The boxes a command names: every box with `all`, else `names`, each checked to
    /// exist first (a typo must not act on half of the list).
    /// The boxes `names` (each must exist), or every box with `all`. A box whose record
    /// is damaged counts: stop and rm need only its name and directory.
    pub fn named_containers(&self, all: bool, names: &[String]) -> Result<Vec<String>> {
        if all {
            return self.container_names();
        }
        for name in names {
            if !self.has_container(name) {
                self.container(name)?;
            }
        }
        Ok(names.to_vec())
    }

    /// The names of every box (a directory with a record), sorted.
    pub fn container_names(&self) -> Result<Vec<String>> {
        let dir = self.containers_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            if entry.path().join("box.json").exists()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every box's record. Fails on a damaged one: callers decide about layers from
    /// these, and a record that cannot be read may use any of them.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        self.container_names()?
            .iter()
            .map(|name| self.container(name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> ContainerRecord {
        ContainerRecord {
            name: name.into(),
            image: "127.0.0.1:5000/x:latest".into(),
            image_digest: Digest::of(b"m"),
            layers: vec![Digest::of(b"l")],
            created: 0,
            hostname: None,
            home: None,
            volumes: vec![],
            image_env: vec![],
            storage: default_storage(),
            provision: None,
        }
    }

    #[test]
    fn names_are_checked() {
        for good in ["a", "dev", "ubuntu-24.04", "x_1"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "-a", "../x", "a/b", "a b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_clash_is_one_clear_error_and_leaves_no_debris() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_container(&record("dev")).unwrap();
        let err = store.create_container(&record("dev")).unwrap_err();
        assert!(crate::error::message(&err).contains("already exists"));
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        assert_eq!(store.containers().unwrap().len(), 1);
    }
}
