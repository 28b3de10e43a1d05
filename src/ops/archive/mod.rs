//! Image archives: `box save` writes images of the store into one tar file, `box load`
//! takes images from the tar files podman, docker and skopeo write.
//!
//! What `box save` writes (one archive that every one of those tools reads):
//!
//! ```text
//! oci-layout              {"imageLayoutVersion": "1.0.0"}
//! blobs/sha256/<hex>      every manifest, config and layer blob, once, as the store has it
//! index.json              one entry per reference, `org.opencontainers.image.ref.name`
//!                         (and `io.containerd.image.name`) = the full reference
//! manifest.json           docker's list: Config, RepoTags, Layers as paths into blobs/
//! ```
//!
//! The blobs are the store's own (the registry's bytes, kept by pull), so an image keeps
//! its config and layer digests, and an OCI image its manifest digest too, through save
//! and load. A Docker schema 2 manifest is listed in index.json in its OCI form (the same
//! blobs under OCI's media types, as podman's oci-archive has it): podman and skopeo of
//! Debian 12 find an image of a layout by name only when its entry is an OCI manifest.
//! The Docker manifest is in blobs/ too, and box load takes it back (see [`oci_form`]).
//! Images named by digest only have no tag: their index entry has no name and their
//! RepoTags are empty.
//!
//! What `box load` reads, gzip- or zstd-compressed or not (told by the first bytes):
//! - an OCI image layout (`index.json`, podman's and skopeo's oci-archive, docker 25's
//!   save, box's own), whose manifests are kept byte for byte: names come from the
//!   `io.containerd.image.name` and `org.opencontainers.image.ref.name` annotations (a
//!   name without a registry is `localhost/NAME`, as podman has it) and from the RepoTags
//!   of a `manifest.json` beside it; an entry that is an index gives the host's platform;
//! - else a docker archive (`manifest.json`: podman's and skopeo's docker-archive, docker
//!   save's `<id>/layer.tar` layout; `repositories` and the legacy per-layer directories
//!   are not needed and not read). It has no manifest: box writes an OCI manifest for it.
//!   Its RepoTags mean what they mean to docker (`busybox:1` is Docker Hub's).
//!   Uncompressed layer tars (docker and podman write them so) are checked against their
//!   diff ids, unpacked, and kept in the store compressed with gzip, made alongside the
//!   unpacking: the store keeps compressed blobs as a registry serves them, so that push
//!   and save send compact layers, and disk matters. The fast gzip level keeps the
//!   compression within the unpacking's time on two cores (10% more bytes than level 6,
//!   at less than half the time).
//!
//! Images without a name are recorded as `localhost/untagged@<manifest digest>`.
//!
//! Invariants of load (see [`load`]), the same as pull's:
//! - the archive is read once, as a stream, into a staging directory under the store's
//!   `tmp/`; every member box uses is a regular file that is named by, or checked
//!   against, the digest that refers to it (manifests, configs, layer blobs), and every
//!   layer is checked against its diff id while it is unpacked in the user namespace by
//!   the store helper, with the checks of [`crate::image`] against hostile layers;
//! - an archive whose own structure is hostile is refused before anything reaches the
//!   store: absolute paths or `..`, a member box would read that is (or goes through) a
//!   symlink or a hard link, devices, duplicate members, more members, images, layers or
//!   JSON bytes than any real archive has, a member bigger than the free space;
//! - image records are written last; a failure takes back the records, layers and blobs
//!   the load added ([`super::pull`]'s roll back), so the store is as it was.

use anyhow::{Context as _, Result};

pub mod layout;
pub mod load;
pub mod save;
pub mod spool;

pub use load::{LoadSource, load};
pub use save::{SaveDestination, save};

/// The `imageLayoutVersion` of the OCI image layouts box writes and reads.
const LAYOUT_VERSION: &str = "1.0.0";

/// The annotation with an image's name in an OCI layout (OCI's own).
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and docker write with an image's full name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The media type of the manifests box writes for docker archives, of its index.json,
/// and of the layers it compresses.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The repository of images loaded without a name (recorded by manifest digest).
const UNTAGGED: &str = "localhost/untagged";

/// The OCI media type of the same bytes as a Docker config or layer media type; `None`
/// for a type that is not Docker's.
pub(crate) fn oci_media_type(docker: &str) -> Option<&'static str> {
    Some(match docker {
        "application/vnd.docker.container.image.v1+json" => OCI_CONFIG,
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => OCI_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.foreign.diff.tar" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar"
        }
        _ => return None,
    })
}

/// The OCI form of a Docker schema 2 manifest: the same config and layer blobs under
/// OCI's media types. podman and skopeo (containers/image before 5.30) find an image of
/// an OCI layout by name only when its index entry is an OCI manifest, so the index
/// lists this form, and box save writes the Docker manifest beside it; docker's
/// manifest.json needs no manifest at all. The form is deterministic: box load takes a
/// Docker manifest of the archive back when its OCI form is the manifest listed.
pub(crate) fn oci_form(docker: &[u8]) -> Result<Vec<u8>> {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(docker).context("the manifest is not JSON")?;
    let retype = |descriptor: &mut serde_json::Value| {
        let new = descriptor["mediaType"].as_str().and_then(oci_media_type);
        if let Some(new) = new {
            descriptor["mediaType"] = serde_json::Value::from(new);
        }
    };
    manifest["mediaType"] = serde_json::Value::from(OCI_MANIFEST);
    retype(&mut manifest["config"]);
    if let Some(layers) = manifest["layers"].as_array_mut() {
        layers.iter_mut().for_each(retype);
    }
    serde_json::to_vec(&manifest).context("encoding a manifest")
}
