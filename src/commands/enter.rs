//! `box enter`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::EnterArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: EnterArgs) -> Result<ExitCode> {
    bail!("box enter is not implemented yet")
}
