//! Changing a box after `box create` (`box edit`): its volumes, CDI devices, NVIDIA GPUs,
//! hostname and home. Each of these is read from the box's record at every start (the
//! mount plan, the hostname of its UTS namespace, the home of its user setup), so a
//! change is a new record, and the next start applies it; the box's files are untouched.
//! (distrobox cannot do this: its answer is a clone.)
//!
//! Invariants:
//! - every change is checked as `box create` checks it (the same functions: volume
//!   syntax and source, hostname, device names and the host's CDI specs, an absolute
//!   home) before the record is written, and a change that cannot be made changes
//!   nothing;
//! - a running box is refused (its mounts and hostname are those of its start): the
//!   record is rewritten under the box's lock with the box stopped, so no start reads a
//!   record half-way, and what `box list`/`--dry-run` show is what the box has;
//! - [`apply`] is also what `box create --clone` applies to the copy's record.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::context::Context;
use crate::error::failure;
use crate::store::Store;
use crate::store::containers::ContainerRecord;

/// What to change; empty fields change nothing.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Volumes to add, as the user writes them (`SRC:DST[:ro]`); one at a DST the box
    /// has already replaces it.
    pub add_volumes: Vec<String>,
    /// Volumes to remove, by their path in the box (DST) or as `SRC:DST`.
    pub remove_volumes: Vec<String>,
    /// CDI devices to add (`VENDOR/CLASS=NAME`).
    pub add_devices: Vec<String>,
    /// CDI devices to remove.
    pub remove_devices: Vec<String>,
    /// NVIDIA's GPUs: `Some(Some(true))` always, `Some(Some(false))` never,
    /// `Some(None)` whenever the host has their spec (the default).
    pub nvidia: Option<Option<bool>>,
    /// The hostname: `Some(None)` is the host's.
    pub hostname: Option<Option<String>>,
    /// The home in the box: `Some(None)` is your own (the host's).
    pub home: Option<Option<PathBuf>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.add_volumes.is_empty()
            && self.remove_volumes.is_empty()
            && self.add_devices.is_empty()
            && self.remove_devices.is_empty()
            && self.nvidia.is_none()
            && self.hostname.is_none()
            && self.home.is_none()
    }
}

/// What [`edit`] did (or with `dry_run`, would do).
pub struct Edited {
    /// Each change, for the user (`added volume /srv:/data`).
    pub changes: Vec<String>,
    /// With `dry_run`: the plan of the box's next start.
    pub plan: Option<crate::runtime::plan::Plan>,
}

/// Apply `changes` to `record`, each checked as `box create` checks it; returns what
/// changed, for the user. Makes no directory: see [`make_home`].
pub fn apply(record: &mut ContainerRecord, changes: &Changes) -> Result<Vec<String>> {
    let name = record.name.clone();
    let mut said = Vec::new();
    for text in &changes.remove_volumes {
        let before = record.volumes.len();
        record.volumes.retain(|v| {
            let target = v.target.display().to_string();
            target != *text
                && format!("{}:{target}", v.source.display()) != *text
                && target != text.trim_end_matches('/')
        });
        if record.volumes.len() == before {
            let have: Vec<String> = record
                .volumes
                .iter()
                .map(|v| v.target.display().to_string())
                .collect();
            bail!(failure(
                format!("box `{name}` has no volume at {text}"),
                match have.as_slice() {
                    [] => "it has no volumes".to_owned(),
                    some => format!("its volumes are at {}", some.join(", ")),
                },
            ));
        }
        said.push(format!("removed the volume at {text}"));
    }
    for text in &changes.add_volumes {
        let volume = super::shape::parse_volume(text)?;
        let replaced = record
            .volumes
            .iter()
            .position(|v| v.target == volume.target);
        said.push(match replaced {
            Some(_) => format!("replaced the volume at {}", volume.target.display()),
            None => format!("added the volume {text}"),
        });
        if let Some(at) = replaced {
            record.volumes.remove(at);
        }
        record.volumes.push(volume);
    }
    for device in &changes.remove_devices {
        let before = record.devices.len();
        record.devices.retain(|d| d != device);
        if record.devices.len() == before {
            bail!(failure(
                format!("box `{name}` has no device {device}"),
                match record.devices.as_slice() {
                    [] => "it was given no CDI device".to_owned(),
                    some => format!("its devices are {}", some.join(", ")),
                },
            ));
        }
        said.push(format!("removed the device {device}"));
    }
    for device in &changes.add_devices {
        crate::host::cdi::parse_device_name(device)?;
        if !record.devices.contains(device) {
            record.devices.push(device.clone());
            said.push(format!("added the device {device}"));
        }
    }
    if let Some(nvidia) = changes.nvidia {
        record.nvidia = nvidia;
        said.push(
            match nvidia {
                Some(true) => "the host's NVIDIA GPUs: always",
                Some(false) => "the host's NVIDIA GPUs: never",
                None => "the host's NVIDIA GPUs: whenever the host has their CDI spec",
            }
            .to_owned(),
        );
    }
    // The devices asked for must be in the host's specs now, as at create.
    let asks_devices = !changes.add_devices.is_empty() || changes.nvidia == Some(Some(true));
    if asks_devices {
        crate::host::cdi::for_box(
            &record.devices,
            record.nvidia,
            &crate::host::cdi::spec_dirs(),
        )
        .with_context(|| format!("the devices of box `{name}`"))?;
    }
    if let Some(hostname) = &changes.hostname {
        if let Some(hostname) = hostname {
            super::shape::validate_hostname(hostname)?;
        }
        record.hostname = hostname.clone();
        said.push(match hostname {
            Some(hostname) => format!("hostname {hostname}"),
            None => "the host's hostname".to_owned(),
        });
    }
    if let Some(home) = &changes.home {
        if let Some(dir) = home
            && !dir.is_absolute()
        {
            bail!(failure(
                format!("--home {} is not an absolute path", dir.display()),
                "give the full path of the home directory to use in the box",
            ));
        }
        record.home = home.clone();
        said.push(match home {
            Some(dir) => format!("home {}", dir.display()),
            None => "your own home".to_owned(),
        });
    }
    Ok(said)
}

/// Create the home directory a record names, if it has one of its own.
pub fn make_home(record: &ContainerRecord) -> Result<()> {
    if let Some(dir) = &record.home {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the home {}", dir.display()))?;
    }
    Ok(())
}

/// Change box `name` as `changes` says (with `dry_run`, only say what its next start
/// would be). The box must be stopped.
pub fn edit(ctx: &Context, name: &str, changes: &Changes, dry_run: bool) -> Result<Edited> {
    if changes.is_empty() {
        bail!(
            failure(
                format!("nothing to change in box `{name}`"),
                "say what: --volume, --remove-volume, --device, --remove-device, --nvidia, --no-nvidia, --auto-nvidia, --hostname, --no-hostname, --home or --no-home",
            )
            .context(crate::error::Exit(crate::error::EXIT_USAGE))
        );
    }
    let store = Store::at(&ctx.dirs.store);
    let mut record = store.container(name)?;
    let said = apply(&mut record, changes)?;
    if dry_run {
        let plan = crate::runtime::plan_for(ctx, &store, &record)?;
        return Ok(Edited {
            changes: said,
            plan: Some(plan),
        });
    }
    let store = Store::open(&ctx.dirs.store)?;
    // Under the box's lock no start reads the record while it changes (a start re-reads
    // it under the same lock).
    let _lock = store.box_lock(name)?;
    if !crate::runtime::state::status(ctx, &store, name).is_stopped() {
        bail!(failure(
            format!("box `{name}` is running, so it was not changed"),
            format!(
                "its mounts, devices and hostname are those of its start: stop it first (`box stop {name}`), then edit it; the change applies at its next start"
            ),
        ));
    }
    // Again under the lock: the record may have changed meanwhile.
    let mut record = store.container(name)?;
    let said = apply(&mut record, changes)?;
    make_home(&record)?;
    store.update_container(&record)?;
    Ok(Edited {
        changes: said,
        plan: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::store::containers::{StorageKind, Volume};

    fn record() -> ContainerRecord {
        ContainerRecord {
            name: "dev".into(),
            image: "127.0.0.1:5000/x:latest".into(),
            image_digest: Digest::of(b"m"),
            layers: vec![],
            created: 0,
            hostname: None,
            home: None,
            volumes: vec![Volume {
                source: "/tmp".into(),
                target: "/data".into(),
                read_only: false,
            }],
            image_env: vec![],
            env: vec![],
            storage: StorageKind::Overlay,
            provision: None,
            devices: vec![],
            nvidia: None,
            device_mount_points: vec![],
        }
    }

    #[test]
    fn volumes_hostname_home_and_nvidia_change_as_create_checks_them() {
        let mut r = record();
        let said = apply(
            &mut r,
            &Changes {
                add_volumes: vec!["/tmp:/more:ro".into()],
                remove_volumes: vec!["/data".into()],
                hostname: Some(Some("devbox".into())),
                home: Some(Some("/home/u/boxhome".into())),
                nvidia: Some(Some(false)),
                ..Changes::default()
            },
        )
        .unwrap();
        assert_eq!(r.volumes.len(), 1);
        assert_eq!(r.volumes[0].target, PathBuf::from("/more"));
        assert!(r.volumes[0].read_only);
        assert_eq!(r.hostname.as_deref(), Some("devbox"));
        assert_eq!(r.home, Some(PathBuf::from("/home/u/boxhome")));
        assert_eq!(r.nvidia, Some(false));
        assert_eq!(said.len(), 5, "{said:?}");
        // Back to the host's.
        apply(
            &mut r,
            &Changes {
                hostname: Some(None),
                home: Some(None),
                nvidia: Some(None),
                ..Changes::default()
            },
        )
        .unwrap();
        assert_eq!((r.hostname, r.home, r.nvidia), (None, None, None));
    }

    #[test]
    fn a_bad_change_is_create_s_error_and_a_missing_one_names_what_there_is() {
        let bad = |changes: Changes| {
            let mut r = record();
            let err = apply(&mut r, &changes).unwrap_err();
            crate::error::message(&err)
        };
        assert!(
            bad(Changes {
                add_volumes: vec!["/no/such/dir:/x".into()],
                ..Changes::default()
            })
            .contains("/no/such/dir does not exist")
        );
        assert!(
            bad(Changes {
                hostname: Some(Some("a b".into())),
                ..Changes::default()
            })
            .contains("not a valid hostname")
        );
        assert!(
            bad(Changes {
                home: Some(Some("rel".into())),
                ..Changes::default()
            })
            .contains("not an absolute path")
        );
        assert!(
            bad(Changes {
                add_devices: vec!["gpu".into()],
                ..Changes::default()
            })
            .contains("gpu")
        );
        let mut r = record();
        let err = apply(
            &mut r,
            &Changes {
                remove_volumes: vec!["/elsewhere".into()],
                ..Changes::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.downcast_ref::<crate::error::Hint>().unwrap().0,
            "its volumes are at /data"
        );
        // A volume at a target the box has replaces it; SRC:DST removes too.
        apply(
            &mut r,
            &Changes {
                add_volumes: vec!["/:/data".into()],
                ..Changes::default()
            },
        )
        .unwrap();
        assert_eq!(r.volumes.len(), 1);
        assert_eq!(r.volumes[0].source, PathBuf::from("/"));
        apply(
            &mut r,
            &Changes {
                remove_volumes: vec!["/:/data".into()],
                ..Changes::default()
            },
        )
        .unwrap();
        assert!(r.volumes.is_empty());
    }
}
