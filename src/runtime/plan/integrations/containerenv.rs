//! The box's own identity, where container tools look for it: `/run/.containerenv`
//! (podman's format, with box's instance id: see [`crate::runtime::plan::containerenv`])
//! and `CONTAINER_ID=NAME`, `container=box` in every command (what toolbox and
//! distrobox scripts test).

use super::{Integration, Parts, Start};
use crate::runtime::plan::{FileOp, containerenv};

pub struct ContainerEnv;

impl Integration for ContainerEnv {
    fn name(&self) -> &'static str {
        "containerenv"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        let record = the_box.record;
        plan.write(FileOp::Write {
            path: "/run/.containerenv".into(),
            content: containerenv(&record.name, &record.image, the_box.instance),
            mode: 0o644,
        });
        plan.set("CONTAINER_ID", record.name.clone());
        plan.set("container", "box");
    }
}
