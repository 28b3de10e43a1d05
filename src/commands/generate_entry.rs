//! `box generate-entry`: add (or with `--delete` remove) the desktop menu entry that
//! opens a terminal in a box. The work is in [`crate::export`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::GenerateEntryArgs;
use crate::context::Context;
use crate::error::notice;

pub fn exec(ctx: &Context, args: GenerateEntryArgs) -> Result<ExitCode> {
    if args.delete {
        crate::export::delete_entry(ctx, &args.name)?;
        notice(format!("removed the menu entry of box `{}`", args.name));
    } else {
        let path = crate::export::generate_entry_with(ctx, &args.name, false)?;
        notice(format!("added {}", path.display()));
    }
    Ok(ExitCode::SUCCESS)
}
