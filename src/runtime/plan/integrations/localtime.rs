//! The time zone: `/etc/localtime` follows the host's (the box's own zoneinfo file of the
//! host's zone when it has one, else the host's file through `/run/host`), with Debian's
//! `/etc/timezone` kept in step, both renewed when the host changes its zone; the zone
//! name for the first-start user setup.

use std::path::Path;

use super::{Integration, Parts, Start};
use crate::runtime::plan::FileOp;

pub struct Localtime;

const LOCALTIME: &str = "/etc/localtime";

impl Integration for Localtime {
    fn name(&self) -> &'static str {
        "localtime"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        let host = &the_box.facts.host;
        plan.timezone = host.timezone.clone();
        if host.localtime.is_none() {
            return;
        }
        plan.follow(
            FileOp::Localtime {
                host_path: LOCALTIME.into(),
            },
            &[Path::new(LOCALTIME), Path::new("/etc/timezone")],
        );
    }
}
