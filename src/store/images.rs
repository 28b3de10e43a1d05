//! Image records: what a pulled reference resolved to, and the layers it needs.
//!
//! One JSON file per reference under `images/`, named by the canonical reference with
//! `/`, `:` and `@` percent-encoded. A record is written only after every layer it lists
//! is in `layers/`, so a record never points at missing data.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::{Store, read_json, write_json};
use crate::digest::Digest;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the uncompressed tar (the name of the layer directory).
    pub diff_id: Digest,
    /// Digest of the blob as the registry serves it.
    pub digest: Digest,
    pub media_type: String,
    /// Size of the blob as downloaded.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub unpacked_size: u64,
}

/// The parts of the image config a box uses when running commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub user: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Canonical reference, e.g. `docker.io/library/debian:trixie`.
    pub reference: String,
    pub manifest_digest: Digest,
    /// The image index (manifest list) the manifest was picked from, if any.
    pub index_digest: Option<Digest>,
    pub config_digest: Digest,
    /// `os/arch[/variant]`
    pub platform: String,
    /// Bottom layer first.
    pub layers: Vec<LayerRecord>,
    /// The image's creation date from its config (RFC 3339), if it has one.
    pub created: Option<String>,
    /// When this record was written (Unix seconds).
    pub pulled: u64,
    #[serde(default)]
    pub config: RuntimeConfig,
}

impl ImageRecord {
    /// Total uncompressed size of the layers.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.unpacked_size).sum()
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
}

/// The reference a record's file name stands for (see [`encode_reference`]); `None` for
/// a name [`encode_reference`] does not write.
fn decode_reference(file_name: &str) -> Option<String> {
    let stem = file_name.strip_suffix(".json")?;
    let mut bytes = Vec::with_capacity(stem.len());
    let mut rest = stem.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// File name for a reference: percent-encode the characters that are not safe.
fn encode_reference(reference: &str) -> String {
    let mut out = String::with_capacity(reference.len() + 8);
    for c in reference.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => out.push(c),
            other => {
                let mut buf = [0u8; 4];
                for byte in other.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
        }
    }
    out
}

impl Store {
    fn image_path(&self, reference: &str) -> PathBuf {
        self.images_dir()
            .join(format!("{}.json", encode_reference(reference)))
    }

    /// The record of a canonical reference, if pulled.
    pub fn image(&self, reference: &str) -> Result<Option<ImageRecord>> {
        let path = self.image_path(reference);
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// Write (or replace) an image record atomically.
    pub fn put_image(&self, record: &ImageRecord) -> Result<()> {
        write_json(&self.image_path(&record.reference), record)
    }

    /// Remove an image record. Returns whether there was one.
    pub fn remove_image(&self, reference: &str) -> Result<bool> {
        match std::fs::remove_file(self.image_path(reference)) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err).with_context(|| format!("removing the record of {reference}")),
        }
    }

    /// The references of the images in the store, sorted, from the file names alone (no
    /// record is read: what shell completion asks for on every TAB).
    pub fn image_references(&self) -> Result<Vec<String>> {
        let dir = self.images_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        };
        let mut references: Vec<String> = entries
            .filter_map(|entry| entry.ok()?.file_name().to_str().and_then(decode_reference))
            .collect();
        references.sort();
        Ok(references)
    }

    /// Every image record, sorted by reference.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut records = Vec::new();
        let dir = self.images_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(records),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                records.push(read_json::<ImageRecord>(&path)?);
            }
        }
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_safe_file_names() {
        assert_eq!(
            encode_reference("127.0.0.1:5000/a/b:1.0"),
            "127.0.0.1%3A5000%2Fa%2Fb%3A1.0"
        );
        assert!(!encode_reference("x@sha256:ab/../..").contains('/'));
    }

    #[test]
    fn file_names_decode_to_their_references() {
        for reference in [
            "127.0.0.1:5000/a/b:1.0",
            "docker.io/library/debian@sha256:0123abcd",
            "quay.io/fedora/fedora:41",
        ] {
            let name = format!("{}.json", encode_reference(reference));
            assert_eq!(decode_reference(&name).as_deref(), Some(reference));
        }
        assert_eq!(decode_reference("x.tmp"), None);
        assert_eq!(decode_reference("bad%4.json"), None);
    }
}
