//! box itself in every box, read-only at `/usr/local/bin/box` (what `box export` and
//! `box host-exec` inside a box run): the file the host's box runs from (see
//! [`crate::host::box_binary`]); and at distrobox's command paths
//! ([`crate::runtime::plan::DISTROBOX_COMMANDS`]), optional mounts a box starts without.

use super::{Integration, Parts, Start};
use crate::runtime::plan::{DISTROBOX_COMMANDS, Mount, MountKind, Restrictions};

pub struct BoxExe;

impl Integration for BoxExe {
    fn name(&self) -> &'static str {
        "box-exe"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        let Some(exe) = &the_box.facts.host.box_binary else {
            return;
        };
        plan.mount(Mount {
            hint: Some(format!(
                "box puts its own executable ({}) at /usr/local/bin/box in every box: check that it is still there (reinstall box if not) and that the image has no directory at /usr/local/bin/box",
                exe.display()
            )),
            source: exe.clone(),
            target: "/usr/local/bin/box".into(),
            kind: MountKind::BindFile,
            read_only: true,
            restrict: Restrictions::default(),
        });
        for target in DISTROBOX_COMMANDS {
            plan.mount(Mount {
                hint: None,
                source: exe.clone(),
                target: target.into(),
                kind: MountKind::BindFile,
                read_only: true,
                restrict: Restrictions::default(),
            });
        }
    }
}
