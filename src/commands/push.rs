//! `box push IMAGE [DESTINATION]`: send an image of the store to a registry; the work is
//! in [`crate::ops::push`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::PushArgs;
use crate::context::Context;
use crate::ops::push::{PushOptions, push};

pub fn exec(ctx: &Context, args: PushArgs) -> Result<ExitCode> {
    let outcome = push(
        ctx,
        &PushOptions {
            image: args.image,
            destination: args.destination,
            chunk_size: args.chunk_size,
        },
    )?;
    // As pull does: the image's identity on stdout, for scripts.
    println!("{}", outcome.digest);
    Ok(ExitCode::SUCCESS)
}
