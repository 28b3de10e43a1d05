//! Exports: binaries as wrappers on the host PATH, applications as desktop entries with
//! their icons, the box's own menu entry, and the registry of what was exported.
//! (Being written.)

use anyhow::{Result, bail};

use crate::context::Context;

/// Remove every export of box `name` (called by `box rm`).
pub fn remove_box_exports(_ctx: &Context, _name: &str) -> Result<()> {
    bail!("exports are not implemented yet")
}

/// Write the desktop menu entry that opens a terminal in box `name` (called by `box create`).
pub fn generate_entry(_ctx: &Context, _name: &str) -> Result<()> {
    bail!("exports are not implemented yet")
}

/// Remove the menu entry of box `name`.
pub fn delete_entry(_ctx: &Context, _name: &str) -> Result<()> {
    bail!("exports are not implemented yet")
}
