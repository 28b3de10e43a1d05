//! box: rootless, daemon-less containers that run other distributions' userlands as if
//! they were native. `main.rs` is a thin shell around [`commands::dispatch`].
//!
//! The layers, each naming only those below it (a test, `src/layering.rs`, keeps it so):
//!
//! ```text
//! commands          one file per verb: parse, ask, call one operation, print
//!    |
//! ops               create, rm, rmi, pull, stop, export, gc over typed options
//!    |
//! export            wrappers, desktop entries, icons, the export registry
//!    |
//! runtime           mount plan, holder, join, stop, fake root and its sudo
//!    |
//! registry, image   references, auth, manifests, downloads | safe layer unpacking
//!    |
//! context           what one invocation resolves: directories, user, id mapping
//!    |
//! store             the only module that knows file names: records, locks, garbage
//!    |
//! leaves            error, report, prompt, digest, idmap, sys, userns, protocol, host,
//!                   hostfs, xauth, config, distro, progress, manifest, seccomp, cli, cdi
//! ```
//!
//! Map of the crate:
//! - [`cli`]: clap definitions (help, man pages, completions come from here);
//! - [`commands`]: one module per verb, turning arguments into one operation;
//! - [`ops`]: the operations, with no clap types and no terminal checks;
//! - [`context`], [`config`]: what is resolved once per invocation;
//! - [`registry`]: references, authentication, manifests, verified downloads;
//! - [`image`]: layer decompression and safe unpacking with whiteouts;
//! - [`store`]: the only module that knows directory names; records and locks;
//! - [`idmap`], [`userns`]: id mappings and helpers in a user namespace;
//! - [`protocol`]: the one framing of every parent/child exchange, and errors across it;
//! - [`runtime`]: mount plan, the holder process, joining a running box;
//! - [`seccomp`]: the filter of the fake root in boxes without subordinate ids;
//! - [`provision`]: installing what a box lacks with its package manager, once;
//! - [`cdi`]: the host's CDI specs and the edits of the devices a box asks for;
//! - [`host`]: discovery of the host's sockets, devices and environment;
//! - [`hostfs`]: host paths reached from the host or from inside a box (`/run/host`);
//! - [`xauth`]: X authority files, and the wildcard copy for boxes of another hostname;
//! - [`export`]: wrappers, desktop entries and icons on the host;
//! - [`report`], [`prompt`]: the one way to tell the user something, and to ask.

pub mod cdi;
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
pub mod manifest;
pub mod ops;
pub mod progress;
pub mod prompt;
pub mod protocol;
pub mod provision;
pub mod registry;
pub mod report;
pub mod runtime;
pub mod seccomp;
pub mod store;
pub mod sys;
pub mod userns;
pub mod xauth;

#[cfg(test)]
mod layering;
