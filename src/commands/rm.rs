//! `box rm`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::RmArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: RmArgs) -> Result<ExitCode> {
    bail!("box rm is not implemented yet")
}
