//! `box commit NAME IMAGE`: the work is in [`crate::ops::commit`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{CommitArgs, CompressionArg};
use crate::context::Context;
use crate::ops::commit::{CommitOptions, LayerCompression, commit};

pub fn exec(ctx: &Context, args: CommitArgs) -> Result<ExitCode> {
    let committed = commit(
        ctx,
        &CommitOptions {
            name: args.name,
            image: args.image,
            compression: match args.compression {
                CompressionArg::Gzip => LayerCompression::Gzip,
                CompressionArg::Zstd => LayerCompression::Zstd,
            },
        },
    )?;
    // Like podman, print the image's identity on stdout for scripts.
    println!("{}", committed.manifest_digest);
    Ok(ExitCode::SUCCESS)
}
