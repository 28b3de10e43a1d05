//! `box create`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::CreateArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: CreateArgs) -> Result<ExitCode> {
    bail!("box create is not implemented yet")
}
