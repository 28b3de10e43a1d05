//! `box generate-entry`: add (or with `--delete` remove) the desktop menu entry that
//! opens a terminal in a box; `--force` replaces a file at its path that box did not
//! write (distrobox has no such flag, but box never overwrites a user's file without
//! one). The work is in [`crate::ops::export`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::GenerateEntryArgs;
use crate::context::Context;
use crate::ops::export;

pub fn exec(ctx: &Context, args: GenerateEntryArgs) -> Result<ExitCode> {
    if args.delete {
        export::remove_entry(ctx, &args.name)?;
    } else {
        export::add_entry(ctx, &args.name, args.force)?;
    }
    Ok(ExitCode::SUCCESS)
}
