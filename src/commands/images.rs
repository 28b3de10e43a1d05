//! `box images`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::ImagesArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: ImagesArgs) -> Result<ExitCode> {
    bail!("box images is not implemented yet")
}
