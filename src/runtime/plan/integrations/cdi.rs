//! The box's CDI devices (`--device`, the NVIDIA GPU): the binds, variables and hooks
//! the host's CDI specs ask for, as the facts read them for this start (see
//! [`crate::host::cdi`]). Last among the mounts: their targets (a library in
//! `/usr/lib`) are in the box's own tree; their variables win over the host's.

use super::{Integration, Parts, Start};
use crate::runtime::plan::{Mount, MountKind, Restrictions};

pub struct Devices;

impl Integration for Devices {
    fn name(&self) -> &'static str {
        "cdi"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        let facts = the_box.facts;
        let devices = &facts.devices;
        for bind in &devices.binds {
            let kind = if facts.is_dir(&bind.host_path) {
                MountKind::BindDir {
                    recursive: bind.recursive,
                }
            } else {
                MountKind::BindFile
            };
            plan.mount(Mount {
                source: bind.host_path.clone(),
                target: bind.container_path.clone(),
                kind,
                read_only: bind.read_only,
                hint: Some(format!(
                    "it is asked for by the {}; regenerate the spec if the driver changed, or remove the box and create it again without that device",
                    bind.origin
                )),
                restrict: Restrictions {
                    nosuid: bind.nosuid,
                    nodev: bind.nodev,
                    noexec: bind.noexec,
                },
            });
        }
        plan.env.extend(devices.env.iter().cloned());
        plan.device_hooks = devices.hooks.clone();
        plan.device_mount_points = devices
            .binds
            .iter()
            .map(|b| b.container_path.clone())
            .collect();
    }
}
