//! box: rootless, daemon-less containers that run other distributions' userlands as if
//! they were native. `main.rs` is a thin shell around [`commands::dispatch`].
//!
//! Map of the crate:
//! - [`cli`]: clap definitions (help, man pages, completions come from here);
//! - [`commands`]: one module per verb, turning arguments into library calls;
//! - [`context`], [`config`]: what is resolved once per invocation;
//! - [`registry`]: references, authentication, manifests, verified downloads;
//! - [`image`]: layer decompression and safe unpacking with whiteouts;
//! - [`store`]: the only module that knows directory names; records and locks;
//! - [`idmap`], [`userns`]: id mappings and helpers in a user namespace;
//! - [`runtime`]: mount plan, the holder process, joining a running box;
//! - [`provision`]: installing what a box lacks with its package manager, once;
//! - [`host`]: discovery of the host's sockets, devices and environment;
//! - [`hostfs`]: host paths reached from the host or from inside a box (`/run/host`);
//! - [`export`]: wrappers, desktop entries and icons on the host.

pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod digest;
pub mod distro;
pub mod error;
pub mod export;
pub mod host;
pub mod hostfs;
pub mod idmap;
pub mod image;
pub mod progress;
pub mod provision;
pub mod pull;
pub mod registry;
pub mod runtime;
pub mod store;
pub mod sys;
pub mod userns;
