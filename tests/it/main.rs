//! The integration tests: one test binary (one link, one process that starts the loopback
//! registries once) with a module per area. Run them with `sudo tests/run`.

// Tests and their harness may say what they kept or skipped (the library reports
// through `ui::report` only).
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "tests may print")]

// The harness serves every module, including ones that use only part of it.
#[allow(dead_code, unused_imports)]
#[path = "../common/mod.rs"]
mod common;

mod archive;
mod assemble;
mod cdi;
mod cli;
mod clone;
mod commit;
mod confined;
mod doctor;
mod ephemeral;
mod export;
mod fakeroot;
mod frontdoor;
mod generated;
mod habits;
mod harness;
mod host_exec;
mod idmap;
mod inside;
mod install;
mod native;
mod provision;
pub(crate) mod pull;
mod push;
mod registries;
mod rm;
mod runtime;
mod settings;
mod stop;
mod store_guard;
mod volumes;
