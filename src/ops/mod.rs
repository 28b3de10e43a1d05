//! The operations: what box does, as functions over typed options, called alike by the
//! commands (`src/commands/`), by manifests and by desktop actions.
//!
//! Invariants:
//! - no clap types and no terminal checks here: an operation that may ask the user
//!   something takes an [`crate::ui::prompt::Ask`], and says what it does through
//!   [`crate::ui::report`]; results go back to the caller, who prints them;
//! - each operation leaves the store as it was when it fails (the store's temp dir +
//!   rename and its locks; see each module's doc).
//!
//! [`pull`] fetches images, [`create`] makes boxes, [`rm`] and [`rmi`] remove boxes and
//! images, [`gc`] collects what they leave unused, [`stop`] ends running boxes,
//! [`export`] puts binaries, apps and a box's own entry on the host, [`assemble`] does all
//! of it for the boxes of a manifest, [`ephemeral`] makes a box that lives as long as one
//! session, [`doctor`] checks what box needs of the host.

pub mod assemble;
pub mod create;
pub mod doctor;
pub mod ephemeral;
pub mod export;
pub mod gc;
pub mod list;
pub mod pull;
pub mod rm;
pub mod rmi;
pub mod session;
pub mod stop;
