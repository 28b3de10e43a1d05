//! The integration tests: one test binary (one link, one process that starts the loopback
//! registries once) with a module per area. Run them with `sudo tests/run`.

// The harness serves every module, including ones that use only part of it.
#[allow(dead_code, unused_imports)]
#[path = "../common/mod.rs"]
mod common;

mod assemble;
mod cdi;
mod cli;
mod clone;
mod doctor;
mod ephemeral;
mod export;
mod fakeroot;
mod generated;
mod harness;
mod host_exec;
mod idmap;
mod inside;
mod install;
mod native;
mod provision;
pub(crate) mod pull;
mod registries;
mod rm;
mod runtime;
mod settings;
mod stop;
mod volumes;
