//! The user's home at the same path in every box; a box with a home of its own
//! (`--home`) gets that one too (unless another bind already shows it), `HOME` set to it
//! and `BOX_HOST_HOME` to the host's, so that box itself in the box (`box export`) keeps
//! the host's store and exports. Both nosuid: a setuid file root in a box leaves in a
//! directory shared with the host gives nothing in a box.

use super::{Integration, Parts, Start};
use crate::runtime::plan::Mount;

pub struct Home;

impl Integration for Home {
    fn name(&self) -> &'static str {
        "home"
    }

    fn start(&self, the_box: &Start<'_>, plan: &mut Parts) {
        let user = &the_box.user.home;
        plan.mount(Mount::rbind(user, user).nosuid());
        if !plan.shows(the_box.home) {
            plan.mount(Mount::rbind(the_box.home, the_box.home).nosuid());
        }
        if the_box.record.home.is_some() {
            plan.set("HOME", the_box.home.display().to_string());
            plan.set(crate::context::HOST_HOME_ENV, user.display().to_string());
        }
    }
}
