//! `box pull REF`: download an image into the store.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::PullArgs;
use crate::context::Context;

pub fn exec(ctx: &Context, args: PullArgs) -> Result<ExitCode> {
    let record = crate::ops::pull::pull(ctx, &args.reference, args.platform.as_deref())?;
    // Like podman, print the image's identity on stdout for scripts.
    println!("{}", record.manifest_digest);
    Ok(ExitCode::SUCCESS)
}
