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
//! [`pull`] fetches images, [`commit`] makes one of a box, [`create`] makes boxes, [`edit`] changes them, [`rm`] and [`rmi`] remove boxes and
//! images, [`gc`] collects what they leave unused, [`stop`] ends running boxes,
//! [`export`] puts binaries, apps and a box's own entry on the host, [`assemble`] does all
//! of it for the boxes of a manifest, [`ephemeral`] makes a box that lives as long as one
//! session, [`archive`] writes images to the archives podman and docker load and loads
//! theirs.
//!
//! [`push`] sends an image of the store to a registry, unchanged. [`front_door`] reads distrobox's `--additional-flags` and installs the names
//! box answers to for tools written for distrobox; [`usage`] measures running boxes; [`doctor`] checks what box needs of the host.

pub mod archive;
pub mod assemble;
pub mod commit;
pub mod create;
pub mod doctor;
pub mod edit;
pub mod ephemeral;
pub mod export;
pub mod front_door;
pub mod gc;
pub mod list;
pub mod pull;
pub mod push;
pub mod rm;
pub mod rmi;
pub mod session;
pub mod shape;
pub mod stop;
pub mod upgrade;
pub mod usage;
