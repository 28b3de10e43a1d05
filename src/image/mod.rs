//! Layer unpacking.
pub mod helper;
