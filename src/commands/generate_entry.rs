//! `box generate-entry`.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::GenerateEntryArgs;
use crate::context::Context;

pub fn exec(_ctx: &Context, _args: GenerateEntryArgs) -> Result<ExitCode> {
    bail!("box generate-entry is not implemented yet")
}
