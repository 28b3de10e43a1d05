//! Layer decompression (gzip, zstd) and safe unpacking of OCI layer tars into the store;
//! packing a box's changes into a new layer ([`pack`], for `box commit`).
//!
//! A layer is unpacked into an empty staging directory, which the store helper then
//! renames to `layers/<diffid-hex>/` (see [`helper`]). Each layer directory is used as one
//! overlayfs lowerdir, mounted with `userxattr` in the box's user namespace, so OCI
//! whiteouts are translated into overlay's own format while unpacking:
//!
//! - `DIR/.wh.NAME` ("NAME was deleted") becomes an overlay *whiteout*: a character device
//!   with device number 0:0 named `DIR/NAME`. Creating one needs no privilege since
//!   Linux 5.8, so it works in a user namespace.
//! - `DIR/.wh..wh..opq` ("DIR hides what the layers below have in it") becomes the xattr
//!   `user.overlay.opaque=y` on `DIR`. overlayfs normally reads `trusted.overlay.opaque`,
//!   but `trusted.*` xattrs need CAP_SYS_ADMIN in the *initial* user namespace; with the
//!   `userxattr` mount option (Linux 5.11) overlay reads `user.overlay.*` instead, which
//!   the owner of a file may set from inside a user namespace.
//!
//! Invariants of [`unpack_layer`]:
//! - nothing is written outside `dest`: every entry's parent is opened with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` from a
//!   descriptor of `dest`, and the last component is created relative to that parent
//!   without following symlinks; `..` components are refused;
//! - the uncompressed stream (all of it, padding included) is hashed and must equal the
//!   image config's diff_id, else the unpack fails (and the caller throws `dest` away);
//! - overlay metadata xattrs (`user.overlay.*`, `trusted.overlay.*`) carried in the tar
//!   are never applied: only whiteout entries may produce them.

pub mod copy;
pub mod helper;
pub mod pack;
mod tree;
mod unpack;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::digest::Digest;
use crate::error::failure;

pub use unpack::unpack_layer_at;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression of a layer from its media type (OCI or Docker schema 2).
    pub fn from_media_type(media_type: &str) -> Result<Compression> {
        const OCI: &str = "application/vnd.oci.image.layer.v1.tar";
        const OCI_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
        const DOCKER: &str = "application/vnd.docker.image.rootfs.diff.tar";
        const DOCKER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
        let compression = match media_type {
            OCI | OCI_NONDIST | DOCKER => Some(Compression::None),
            DOCKER_FOREIGN => Some(Compression::None),
            _ => None,
        };
        if let Some(compression) = compression {
            return Ok(compression);
        }
        for base in [OCI, OCI_NONDIST] {
            if let Some(suffix) = media_type.strip_prefix(base) {
                match suffix {
                    "+gzip" => return Ok(Compression::Gzip),
                    "+zstd" => return Ok(Compression::Zstd),
                    _ => {}
                }
            }
        }
        for base in [DOCKER, DOCKER_FOREIGN] {
            if media_type.strip_prefix(base) == Some(".gzip") {
                return Ok(Compression::Gzip);
            }
        }
        Err(failure(
            format!("unsupported layer media type `{media_type}`"),
            "box can unpack tar layers that are uncompressed, gzip or zstd \
             (application/vnd.oci.image.layer.v1.tar[+gzip|+zstd] and the Docker equivalents); \
             this image may be an artifact (Helm chart, WASM, signature) rather than a container image",
        ))
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// What the first bytes of `data` look like.
    fn sniff(data: &[u8]) -> Option<Compression> {
        if data.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    /// Wrap `input` in the matching streaming decoder, after checking that the data's
    /// magic bytes agree with the declared compression.
    fn decoder<'a, R: Read + 'a>(self, input: R, label: &str) -> Result<Box<dyn Read + 'a>> {
        // A big buffer: the input is usually a file read sequentially.
        let mut input = BufReader::with_capacity(1 << 20, input);
        let head = input
            .fill_buf()
            .with_context(|| format!("reading {label}"))?;
        let looks_like = Compression::sniff(head);
        let matches = match self {
            Compression::None => looks_like.is_none(),
            declared => looks_like == Some(declared) || head.is_empty(),
        };
        if !matches {
            let message = match (self, looks_like) {
                (Compression::None, Some(actual)) => format!(
                    "{label} claims to be an uncompressed tar but is {} data",
                    actual.name()
                ),
                (declared, Some(actual)) => format!(
                    "{label} claims {} but is {} data",
                    declared.name(),
                    actual.name()
                ),
                (declared, None) => format!(
                    "{label} claims {} but is not {} data",
                    declared.name(),
                    declared.name()
                ),
            };
            return Err(failure(
                message,
                "the image's manifest gives the layer a wrong media type, or the registry served \
                 something else; rebuild or re-push the image",
            ));
        }
        Ok(match self {
            Compression::None => Box::new(input),
            // Multi-member gzip (pigz, concatenated streams) is valid gzip.
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(input)
                    .with_context(|| format!("starting the zstd decoder for {label}"))?,
            ),
        })
    }
}

/// What unpacking a layer did, for the caller's warnings and progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnpackStats {
    /// Bytes of uncompressed tar read (the whole stream, padding included).
    pub tar_bytes: u64,
    /// Tar entries applied (files, directories, links, whiteouts...).
    pub entries: u64,
    /// Device nodes that were not created (a box gets the host's /dev).
    pub skipped_devices: Vec<String>,
    /// Entries whose owner or group has no mapping in this user namespace (left owned by
    /// the unpacking user).
    pub unmapped_owners: u64,
    /// Extended attributes of the layer the filesystem or the namespace refused (EPERM,
    /// EACCES, EOPNOTSUPP, E2BIG, ERANGE: `trusted.*` outside the initial namespace,
    /// `user.*` on a symlink, a filesystem without user xattrs, a value too big).
    pub refused_xattrs: u64,
    /// A few of those, as "NAME on PATH (reason)", for the warning.
    pub refused_xattr_examples: Vec<String>,
    /// Overlay metadata xattrs (`*.overlay.*`) in the tar, which box never applies.
    pub overlay_xattrs: u64,
}

/// How many refused xattrs [`UnpackStats::refused_xattr_examples`] keeps.
pub const XATTR_EXAMPLES: usize = 3;

impl UnpackStats {
    /// The one warning about the xattrs a layer did not get, if any were left out.
    pub fn xattr_warning(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.refused_xattrs > 0 {
            let more = if self.refused_xattrs > self.refused_xattr_examples.len() as u64 {
                ", ..."
            } else {
                ""
            };
            parts.push(format!(
                "{} refused by the filesystem ({}{more})",
                self.refused_xattrs,
                self.refused_xattr_examples.join(", ")
            ));
        }
        if self.overlay_xattrs > 0 {
            parts.push(format!(
                "{} overlay attribute(s) box never takes from a layer",
                self.overlay_xattrs
            ));
        }
        (!parts.is_empty()).then(|| {
            format!(
                "{} extended attribute(s) were not kept: {}",
                self.refused_xattrs + self.overlay_xattrs,
                parts.join("; ")
            )
        })
    }
}

/// Unpack one layer tar from `input` into `dest`, an existing empty directory.
///
/// `label` names the layer in errors ("layer sha256:ab12… of example.com/x:1"). Fails if
/// the uncompressed stream's digest is not `expected_diff_id`; on any failure `dest` holds
/// partial content that the caller must remove.
pub fn unpack_layer(
    input: impl Read,
    compression: Compression,
    expected_diff_id: &Digest,
    dest: &Path,
    label: &str,
) -> Result<UnpackStats> {
    use rustix::fs::{Mode, OFlags};
    let dir = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)
    .with_context(|| format!("opening {}", dest.display()))?;
    unpack_layer_at(input, compression, expected_diff_id, dir, dest, label)
}

#[cfg(test)]
mod tests;
