//! `box save IMAGE... [-o FILE]`: the work is in [`crate::ops::archive::save`]; here, the
//! refusal to write a tar archive to a terminal.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::SaveArgs;
use crate::context::Context;
use crate::error::failure;
use crate::ops::archive::{SaveDestination, save};

pub fn exec(ctx: &Context, args: SaveArgs) -> Result<ExitCode> {
    let destination = match args.output {
        Some(path) => SaveDestination::File(path),
        None if rustix::termios::isatty(rustix::stdio::stdout()) => bail!(failure(
            "refusing to write a tar archive to a terminal",
            "name a file with -o FILE, or redirect standard output (`box save IMAGE > FILE`)",
        )),
        None => SaveDestination::Stdout,
    };
    save(ctx, &args.images, &destination)?;
    Ok(ExitCode::SUCCESS)
}
