//! `box export`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::ExportArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: ExportArgs) -> Result<ExitCode> {
    bail!("box export is not implemented yet")
}
