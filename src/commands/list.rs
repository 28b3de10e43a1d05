//! `box list`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::ListArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: ListArgs) -> Result<ExitCode> {
    bail!("box list is not implemented yet")
}
