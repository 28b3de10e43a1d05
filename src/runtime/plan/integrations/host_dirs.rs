//! The host's own trees: `/dev`, `/sys`, `/proc` and `/tmp` bound with what is mounted
//! below them (GPUs, sound, USB and input devices; X11's sockets in `/tmp/.X11-unix`), a
//! fresh `/run` of the box's own, and the whole host at `/run/host` (cloned before the
//! box root is mounted, so it does not contain the box; where the other integrations'
//! links and joins reach host files).
//!
//! `/tmp` and `/run/host` are nosuid, with every mount below them: root in a box can
//! leave a setuid file of an id of its own in what it shares with the host, which must
//! give nothing in a box. (`/dev`, `/sys` and `/proc` keep the host's flags: what is
//! there is the kernel's.)

use std::path::{Path, PathBuf};

use super::{Integration, Parts, Start};
use crate::runtime::plan::{Mount, MountKind, Restrictions};

pub struct HostDirs;

impl Integration for HostDirs {
    fn name(&self) -> &'static str {
        "host-dirs"
    }

    fn start(&self, _: &Start<'_>, plan: &mut Parts) {
        for dir in ["/dev", "/sys", "/proc"] {
            plan.mount(Mount::rbind(Path::new(dir), Path::new(dir)));
        }
        plan.mount(Mount::rbind(Path::new("/tmp"), Path::new("/tmp")).nosuid());
        plan.mount(Mount {
            source: PathBuf::from("tmpfs"),
            target: PathBuf::from("/run"),
            kind: MountKind::Tmpfs {
                options: "mode=0755,nosuid,nodev".into(),
            },
            read_only: false,
            hint: None,
            restrict: Restrictions::default(),
        });
        plan.mount(Mount {
            source: PathBuf::from("/"),
            target: PathBuf::from(crate::host::fs::HOST_ROOT_IN_BOX),
            kind: MountKind::HostRoot,
            read_only: false,
            hint: None,
            restrict: Restrictions {
                nosuid: true,
                ..Restrictions::default()
            },
        });
    }
}
