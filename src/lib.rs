//! box: rootless, daemon-less containers that run other distributions' userlands as if
//! they were native. `main.rs` is a thin shell around [`commands::dispatch`].
//!
//! The layers, each naming only those below it (`src/layering.rs` keeps it so, and finds
//! circles between modules at any depth):
//!
//! ```text
//! commands        one file per verb: parse, ask, call one operation, print
//!    |
//! ops, provision  the operations over typed options (session, create, rm, pull, stop,
//!    |            export, assemble, ...); provisioning a box with its package manager
//! export          wrappers, desktop entries, icons, the ledger of what box wrote
//!    |
//! runtime         a box's lifecycle: mount plan and its host integrations, holder,
//!    |            join, state, members, stop
//! fakeroot,       root in a box without subordinate ids (nested namespace, seccomp
//! host_exec       filter, sudo stand-in) | host commands run from inside a box
//!    |
//! registry, image references, auth, manifests, downloads | safe layer unpacking, packing
//!    |
//! context         what one invocation resolves: directories, user, id mapping
//!    |
//! store           the only module that knows file names: records, locks, garbage
//!    |
//! sys, settings,  process and namespace plumbing (syscalls, /proc, user namespaces, id
//! host            maps, the parent/child protocol, the environment's one reader) |
//!    |            settings and the distro catalogue | host facts, host paths from
//!    |            inside a box, X authority, CDI specs
//! error, digest,  errors and exit codes | content digests | report, prompt, progress |
//! ui, cli         clap definitions (help, man pages, completions come from here)
//! ```

pub mod cli;
#[allow(
    clippy::print_stdout,
    reason = "the commands print their results on stdout; everything else goes through ui::report"
)]
pub mod commands;
pub mod context;
pub mod digest;
pub mod error;
pub mod export;
pub mod fakeroot;
pub mod host;
pub mod host_exec;
pub mod image;
pub mod ops;
pub mod provision;
pub mod registry;
pub mod runtime;
pub mod settings;
pub mod store;
pub mod sys;
pub mod ui;

#[cfg(test)]
mod layering;
