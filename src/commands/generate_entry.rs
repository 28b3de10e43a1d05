//! `box generate-entry`: add (or with `--delete` remove) the desktop menu entry that
//! opens a terminal in a box; `--force` replaces a file at its path that box did not
//! write (distrobox has no such flag, but box never overwrites a user's file without
//! one). The work is in [`crate::export`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::GenerateEntryArgs;
use crate::context::Context;
use crate::report::notice;
use crate::store::Store;

pub fn exec(ctx: &Context, args: GenerateEntryArgs) -> Result<ExitCode> {
    if args.delete {
        // Nothing to remove is not an error (as with distrobox): the goal, no entry, holds.
        match crate::export::remove_entry(ctx, &args.name)? {
            Some(removal) => {
                for path in &removal.removed {
                    notice(format!("removed {}", path.display()));
                }
            }
            None if Store::at(&ctx.dirs.store).has_container(&args.name) => notice(format!(
                "box `{}` has no menu entry; nothing to remove",
                args.name
            )),
            None => notice(format!(
                "there is no box `{}` and no menu entry for it; nothing to remove",
                args.name
            )),
        }
    } else {
        let path = crate::export::generate_entry_with(ctx, &args.name, args.force)?;
        notice(format!("added {}", path.display()));
    }
    Ok(ExitCode::SUCCESS)
}
