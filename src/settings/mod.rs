//! What users and the catalogue configure: box's settings in layers ([`config`]),
//! distrobox's settings read as defaults beneath them ([`distrobox`]), and the catalogue
//! of distributions, their images and aliases ([`distro`]).
//!
//! Invariant: settings are read once per invocation, through the context, never on the
//! join path.

pub mod config;
pub mod distro;
pub mod distrobox;
