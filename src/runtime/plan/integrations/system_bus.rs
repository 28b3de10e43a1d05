//! The system D-Bus: its socket at the usual path, a link to the host's through
//! `/run/host` (a restarted dbus-daemon makes a new socket; a bind would keep the old).

use super::{Integration, Parts, Start};
use crate::runtime::plan::FileOp;

pub struct SystemBus;

impl Integration for SystemBus {
    fn name(&self) -> &'static str {
        "system-bus"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        let Some(socket) = &the_box.facts.host.system_bus else {
            return;
        };
        plan.follow(
            FileOp::FollowHost {
                path: "/run/dbus/system_bus_socket".into(),
                host_path: socket.clone(),
            },
            &[socket],
        );
    }
}
