//! `box run`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::RunArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: RunArgs) -> Result<ExitCode> {
    bail!("box run is not implemented yet")
}
