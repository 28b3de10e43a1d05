//! The end-to-end test harness: real registries on loopback, a fault-injecting proxy in
//! front of them, an OCI image builder, the fixture images, and a way to run the `box`
//! binary as an unprivileged test user in a clean, private environment.
//!
//! Invariants:
//! - The test process runs as root (`sudo tests/run`): it runs box as `boxtest` and
//!   `boxnosub`, reads layer files owned by subordinate ids, mounts small tmpfs
//!   filesystems. Run otherwise (`cargo test` as an ordinary user), [`require_root`]
//!   skips them all with one line naming `sudo tests/run`; the unit tests still run.
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

/// Unless the test process is root, skip the end-to-end tests: say so once, naming the
/// command that runs them, and end this test process successfully (libtest has no way
/// for a test to mark itself skipped, and 108 failures would only hide the reason).
pub fn require_root() {
    if !rustix::process::geteuid().is_root() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "end-to-end tests skipped: they run box as unprivileged test users and need root \
             to set those up; run them with `sudo tests/run`"
        );
        std::process::exit(0);
    }
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
