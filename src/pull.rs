//! Pulling an image: registry → verified blobs → layers unpacked in the user namespace →
//! image record. (Being written.)

use anyhow::{Result, bail};

use crate::context::Context;
use crate::store::images::ImageRecord;

/// Pull `reference` (as the user typed it) into the store, with progress on a terminal.
/// Returns the image record once every layer is in place.
pub fn pull(_ctx: &Context, _reference: &str, _platform: Option<&str>) -> Result<ImageRecord> {
    bail!("pull is not implemented yet")
}

/// The record of `reference` (as the user typed it) if it is already in the store.
pub fn find_local(_ctx: &Context, _reference: &str) -> Result<Option<ImageRecord>> {
    bail!("find_local is not implemented yet")
}
