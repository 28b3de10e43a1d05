//! The fake root's `sudo` in a box without subordinate ids, where the image's sudo
//! cannot work: a shim at [`crate::fakeroot::sudo::SHIM_PATH`] that runs the host's box
//! as box's fake root (see [`crate::fakeroot::sudo`]). Its text depends on how the host
//! starts box (its ELF interpreter), which the facts found.

use super::{Integration, Parts, Start};
use crate::runtime::plan::FileOp;

pub struct SudoShim;

impl Integration for SudoShim {
    fn name(&self) -> &'static str {
        "sudo-shim"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        if the_box.has_root {
            return;
        }
        let Some(launch) = &the_box.facts.box_launch else {
            return;
        };
        plan.write(FileOp::Write {
            path: crate::fakeroot::sudo::SHIM_PATH.into(),
            content: crate::fakeroot::sudo::shim(launch),
            mode: 0o755,
        });
    }
}
