//! `box host-exec`: the directory of the host end's socket (see [`crate::host_exec`])
//! bound at [`crate::host_exec::DIR_IN_BOX`], nosuid (it is in the runtime directory,
//! shared with the host). A directory, not the socket: the host end binds its socket
//! there once the box is up, and again should it be restarted.

use std::path::Path;

use super::{Integration, Parts, Start};
use crate::runtime::plan::Mount;

pub struct HostExec;

impl Integration for HostExec {
    fn name(&self) -> &'static str {
        "host-exec"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        let Some(dir) = the_box.host_exec_dir else {
            return;
        };
        plan.mount(
            Mount::rbind(dir, Path::new(crate::host_exec::DIR_IN_BOX))
                .nosuid()
                .hint(format!(
                "box creates {} for `box host-exec`: check that your runtime directory is writable",
                dir.display()
            )),
        );
        plan.host_exec_dir = Some(dir.to_owned());
    }
}
