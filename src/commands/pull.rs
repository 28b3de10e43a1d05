//! `box pull`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::PullArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: PullArgs) -> Result<ExitCode> {
    bail!("box pull is not implemented yet")
}
