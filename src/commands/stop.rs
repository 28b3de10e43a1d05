//! `box stop`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::StopArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: StopArgs) -> Result<ExitCode> {
    bail!("box stop is not implemented yet")
}
