//! `box load [-i FILE]`: the work is in [`crate::ops::archive::load`]; here, one
//! `Loaded image: NAME` line per name on stdout, as podman prints them for scripts.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::LoadArgs;
use crate::context::Context;
use crate::ops::archive::{LoadSource, load};

pub fn exec(ctx: &Context, args: LoadArgs) -> Result<ExitCode> {
    let source = match args.input {
        Some(path) => LoadSource::File(path),
        None => LoadSource::Stdin,
    };
    for image in load(ctx, &source)? {
        for name in &image.names {
            println!("Loaded image: {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
