//! Name resolution: `/etc/resolv.conf` a link to the host's, through `/run/host`, renewed
//! when the host replaces it (resolvconf and NetworkManager write it by rename; a bind
//! would pin the file the host had at the start).

use std::path::Path;

use super::{Integration, Parts, Start};
use crate::runtime::plan::FileOp;

pub struct Resolv;

const RESOLV_CONF: &str = "/etc/resolv.conf";

impl Integration for Resolv {
    fn name(&self) -> &'static str {
        "resolv"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        if the_box.facts.host.resolv_conf.is_none() {
            return;
        }
        plan.follow(
            FileOp::FollowHost {
                path: RESOLV_CONF.into(),
                host_path: RESOLV_CONF.into(),
            },
            &[Path::new(RESOLV_CONF)],
        );
    }
}
