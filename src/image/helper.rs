//! `box __store-helper`: store work that must happen inside the user namespace (unpacking
//! layers with their owners, removing trees owned by subordinate ids), and the parent's
//! handle on it. (Being written.)

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::context::Context;

/// Entry point of the hidden subcommand.
pub fn main(_args: &[String]) -> Result<ExitCode> {
    bail!("the store helper is not implemented yet")
}

/// The parent's handle on a running store helper.
pub struct StoreHelper {}

impl StoreHelper {
    /// Start a helper in a user namespace with the context's id mapping.
    pub fn start(_ctx: &Context) -> Result<StoreHelper> {
        bail!("the store helper is not implemented yet")
    }

    /// Remove `path` and everything under it, whoever owns it inside the namespace.
    pub fn remove(&mut self, _path: &Path) -> Result<()> {
        bail!("the store helper is not implemented yet")
    }

    /// Close the helper and wait for it.
    pub fn finish(self) -> Result<()> {
        Ok(())
    }
}
