//! `/etc/hosts`: a link to the host's through `/run/host`; for a box with a hostname of
//! its own, the host's lines plus one for that name (so it resolves in the box), written
//! again whenever the host's file changes.

use std::path::Path;

use super::{Integration, Parts, Start};
use crate::runtime::plan::FileOp;

pub struct Hosts;

const HOSTS: &str = "/etc/hosts";

impl Integration for Hosts {
    fn name(&self) -> &'static str {
        "hosts"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        if the_box.facts.host.hosts.is_none() {
            return;
        }
        let op = if the_box.own_hostname() {
            FileOp::HostsWithName {
                host_path: HOSTS.into(),
                hostname: the_box.hostname.to_owned(),
            }
        } else {
            FileOp::FollowHost {
                path: HOSTS.into(),
                host_path: HOSTS.into(),
            }
        };
        plan.follow(op, &[Path::new(HOSTS)]);
    }
}
