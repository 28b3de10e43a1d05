//! Registry client: references, platforms, manifests, credentials and verified downloads
//! over the OCI distribution API, on std threads (ureq; no async runtime).
//!
//! - [`reference`]: parsing and normalizing `debian:trixie`-style references;
//! - [`platform`]: `os/arch/variant` and choosing an index entry;
//! - [`manifest`]: manifests, indexes and image configs (oci-spec's types, checked);
//! - [`auth`]: credentials from auth files and helpers, `WWW-Authenticate` challenges;
//! - [`certs`]: extra CA certificates from `certs.d` directories;
//! - [`registries_conf`]: the containers registries configuration (mirrors, rewrites,
//!   blocked and insecure registries, short names), as podman reads it;
//! - [`client`]: the HTTP client for one repository, pulling and pushing;
//! - [`redirect`]: redirects followed hop by hop (transport rule, credentials' origin);
//! - [`retry`]: the one retry policy every registry request follows.

pub mod auth;
pub mod certs;
pub mod client;
pub mod manifest;
pub mod platform;
pub mod redirect;
pub mod reference;
pub mod registries_conf;
pub mod retry;

pub use auth::{AuthSources, Credentials};
pub use client::{BlobPush, Client, ClientOptions, FetchedManifest, Pushed, RegistryError};
pub use manifest::{
    Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest, parse_config, parse_manifest,
};
pub use platform::{Platform, PlatformExt, check_image_platform, select_platform};
pub use reference::Reference;
