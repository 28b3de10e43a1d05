//! The end-to-end test harness: real registries on loopback, a fault-injecting proxy in
//! front of them, an OCI image builder, the fixture images, and a way to run the `box`
//! binary as an unprivileged test user in a clean, private environment.
//!
//! Invariants:
//! - The test process runs as root (`sudo tests/run`): it runs box as `boxtest` and
//!   `boxnosub`, reads layer files owned by subordinate ids, mounts small tmpfs
//!   filesystems. Every end-to-end test is marked [`END_TO_END`] (`#[ignore = ...]`), and
//!   `tests/run` runs them with `--include-ignored`: a plain `cargo test` as an ordinary
//!   user reports them ignored, not passed, and runs the unit tests. A test that lacks the
//!   mark fails `harness::every_end_to_end_test_is_ignored_without_tests_run`; one run
//!   without root anyway fails in [`require_root`], naming `sudo tests/run`.
//! - Registries are started once per test process from a thread that never exits, so
//!   they live exactly as long as the process (PR_SET_PDEATHSIG).
//! - Every test gets its own directory under [`TEST_ROOT`] (its own HOME, runtime dir and
//!   store), removed when the test passes and kept for inspection when it fails.

pub mod boxes;
pub mod fixtures;
pub mod oci;
pub mod proxy;
pub mod registry;
pub mod screen;
pub mod standin;
pub mod sys;
pub mod token;
pub mod user;

use sha2::{Digest as _, Sha256};

pub use fixtures::Fixture;
pub use oci::{Compression, Entry, ImageBuilder, ManifestFormat, Platform, PushedImage};
pub use proxy::{Fault, FaultProxy};
pub use registry::Registry;
pub use user::{Outcome, StoreState, TestEnv, User};

/// Where per-test directories live: reachable by the test users, on a real disk
/// (/tmp may be a tmpfs without room for the Debian image).
pub const TEST_ROOT: &str = "/var/tmp/box-tests";

/// Where `tests/run` caches what is expensive to build (the Debian rootfs tarball).
pub const CACHE_DIR: &str = "/var/cache/box-tests";

/// The box binary under test.
pub fn box_bin() -> &'static str {
    env!("CARGO_BIN_EXE_box")
}

/// The reason every end-to-end test is ignored by a plain `cargo test`; the attribute
/// each carries is `#[ignore = "end-to-end: needs root, run with sudo tests/run"]` (an
/// attribute takes no constant: the guard test compares this text with it).
pub const END_TO_END: &str = "end-to-end: needs root, run with sudo tests/run";

/// Fail an end-to-end test run without root (`cargo test -- --include-ignored` as an
/// ordinary user), saying what runs it: it would fail later with a less clear error, or
/// pass without checking anything.
#[track_caller]
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "{END_TO_END}: it runs box as unprivileged test users and needs root to set those up"
    );
}

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:<hex>` digest.
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The platform of the machine the tests run on, as an OCI platform.
pub fn host_platform() -> Platform {
    match std::env::consts::ARCH {
        "x86_64" => Platform::new("linux", "amd64", None),
        "aarch64" => Platform::new("linux", "arm64", Some("v8")),
        other => panic!("no fixture platform for host architecture {other}"),
    }
}

/// A platform that is not the host's (the other half of the multi-platform fixture).
pub fn other_platform() -> Platform {
    match std::env::consts::ARCH {
        "x86_64" => Platform::new("linux", "arm64", Some("v8")),
        _ => Platform::new("linux", "amd64", None),
    }
}
