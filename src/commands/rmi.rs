//! `box rmi IMAGE... | --all`: the work is in [`crate::ops::rmi`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::RmiArgs;
use crate::context::Context;
use crate::ops::rmi::{RmiOptions, rmi};

pub fn exec(ctx: &Context, args: RmiArgs) -> Result<ExitCode> {
    rmi(
        ctx,
        &RmiOptions {
            images: args.references,
            all: args.all,
            force: args.force,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
