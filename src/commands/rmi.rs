//! `box rmi`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::RmiArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: RmiArgs) -> Result<ExitCode> {
    bail!("box rmi is not implemented yet")
}
