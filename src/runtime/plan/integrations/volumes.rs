//! The box's volumes (`--volume SRC:DST[:ro]`): each host path bound at its target, as a
//! directory (with what is mounted below it) or as one file, as the facts found it; a
//! read-only one read-only all the way down (see the holder's apply step); all nosuid,
//! as everything the box shares with the host.

use super::{Integration, Parts, Start};
use crate::runtime::plan::{Mount, MountKind, Restrictions};

pub struct Volumes;

impl Integration for Volumes {
    fn name(&self) -> &'static str {
        "volumes"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        for volume in &the_box.record.volumes {
            let kind = if the_box.facts.is_dir(&volume.source) {
                MountKind::BindDir { recursive: true }
            } else {
                MountKind::BindFile
            };
            plan.mount(Mount {
                source: volume.source.clone(),
                target: volume.target.clone(),
                kind,
                read_only: volume.read_only,
                hint: Some(format!(
                    "create {} on the host, or remove the box and create it again without that volume",
                    volume.source.display()
                )),
                restrict: Restrictions {
                    nosuid: true,
                    ..Restrictions::default()
                },
            });
        }
    }
}
