//! What a box's plan needs to know of the host, gathered once per start, before the plan
//! is built ([`Facts::gather`]): the host's facts ([`crate::host::discover`]), the user's
//! group, the box's CDI devices as the host's specs describe them now, which of the host
//! paths the box binds are directories, and how the sudo shim starts the host's box.
//!
//! Invariant: this is the only part of [`super`] that reads the host; the plan and its
//! integrations work on a [`Facts`] value alone, so tests make one by hand. Nothing here
//! is on the join path: a start reads it, a join never does.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::context::HostUser;
use crate::host::HostFacts;
use crate::host::cdi::Edits;
use crate::store::containers::ContainerRecord;
use crate::sys::idmap::IdMapping;

/// What the host is like for one start of a box.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub host: HostFacts,
    /// The host user's primary group name.
    pub group: String,
    /// The edits of the box's CDI devices, read from the host's specs for this start.
    pub devices: Edits,
    /// Of the host paths the box binds (volume sources, CDI binds), those that are
    /// directories now (bound as directories; anything else as one file).
    pub directories: Vec<PathBuf>,
    /// How the sudo shim starts the host's box, for a box without subordinate ids (whose
    /// image's sudo cannot work); none otherwise, or without a box executable.
    pub box_launch: Option<crate::fakeroot::sudo::Launch>,
}

impl Facts {
    /// Whether the host path `path` (a volume source, a CDI bind) is a directory.
    pub fn is_dir(&self, path: &Path) -> bool {
        self.directories.iter().any(|d| d == path)
    }

    /// Look at the host for a start of box `record` by `user` with `mapping`: a few stats
    /// and readlinks, the CDI specs when the box has devices, the box executable's ELF
    /// header when the box needs the sudo shim. The CDI specs' warnings are in
    /// `devices.warnings`, for the caller to show.
    pub fn gather(record: &ContainerRecord, user: &HostUser, mapping: &IdMapping) -> Result<Facts> {
        let host = crate::host::discover();
        let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(user.gid))
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_else(|| user.name.clone());
        // Read at each start (never on the join path): a driver update reaches the next start.
        let devices = crate::host::cdi::for_box(
            &record.devices,
            record.nvidia,
            &crate::host::cdi::spec_dirs(),
        )
        .with_context(|| format!("the devices of box `{}`", record.name))?;
        let directories = record
            .volumes
            .iter()
            .map(|v| &v.source)
            .chain(devices.binds.iter().map(|b| &b.host_path))
            .filter(|p| p.is_dir())
            .cloned()
            .collect();
        let box_launch = match &host.box_binary {
            Some(exe) if !mapping.has_root() => Some(crate::fakeroot::sudo::Launch::of(exe)),
            _ => None,
        };
        Ok(Facts {
            host,
            group,
            devices,
            directories,
            box_launch,
        })
    }
}
