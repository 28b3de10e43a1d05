//! Removing images: `IMAGE...` or all of them, then collecting the layers and blobs
//! nobody uses ([`super::gc`]).
//!
//! An IMAGE is a reference as for `box pull` (a short name as the registries
//! configuration resolves it: an alias, or the first search registry's image in the
//! store), or a manifest digest as `box images` shows
//! it: the short 12 hex digits, more of them, or the full `sha256:...` (as podman takes an
//! image id). A reference in the store wins over a digest that reads the same.
//!
//! Invariant: every argument is resolved, and checked against the boxes using it, under
//! the exclusive store lock and before anything is removed: a typo in the third must not
//! half-do the first two, and no `box create` can start using an image meanwhile.

use anyhow::Result;

use crate::context::Context;
use crate::error::failure;
use crate::registry::Reference;
use crate::registry::registries_conf::RegistriesConf;
use crate::store::Store;
use crate::store::images::ImageRecord;
use crate::ui::report::notice;

/// Which images to remove, and how.
#[derive(Debug, Clone, Default)]
pub struct RmiOptions {
    /// References or (short) digests.
    pub images: Vec<String>,
    /// Every image in the store.
    pub all: bool,
    /// Remove images boxes were created from (their layers stay while the boxes do),
    /// and every reference of a digest several share.
    pub force: bool,
}

/// Remove the images `options` names; returns the references removed.
pub fn rmi(ctx: &Context, options: &RmiOptions) -> Result<Vec<String>> {
    // No store yet: nothing to lock, and nothing to remove (the errors say so).
    let store = Store::at(&ctx.dirs.store);
    // Decide under the lock: a create meanwhile could start using a chosen image.
    let lock = match ctx.dirs.store.exists() {
        true => Some(store.lock(true)?),
        false => None,
    };
    let images = store.images()?;
    let mut chosen: Vec<String> = Vec::new();
    if options.all {
        chosen.extend(images.iter().map(|i| i.reference.clone()));
    }
    for text in &options.images {
        for reference in resolve(text, &images, options.force)? {
            if !chosen.contains(&reference) {
                chosen.push(reference);
            }
        }
    }
    if !options.force {
        let boxes = store.containers()?;
        for reference in &chosen {
            let users: Vec<&str> = boxes
                .iter()
                .filter(|c| &c.image == reference)
                .map(|c| c.name.as_str())
                .collect();
            if !users.is_empty() {
                return Err(failure(
                    format!(
                        "image {reference} is used by the box(es) {}; nothing was removed",
                        users.join(", ")
                    ),
                    "remove those boxes first (`box rm`), or pass --force to remove the image record and keep the layers they use",
                ));
            }
        }
    }
    if chosen.is_empty() {
        notice("there are no images to remove");
        return Ok(chosen);
    }
    for reference in &chosen {
        store.remove_image(reference)?;
        notice(format!("removed {reference}"));
    }
    if let Some(lock) = lock {
        super::gc::collect(ctx, &store, lock);
    }
    Ok(chosen)
}

/// The fewest hex digits taken as a digest: what `box images` shows.
const SHORT_DIGEST: usize = 12;

/// The references an IMAGE argument names (see the module doc).
pub(crate) fn resolve(text: &str, images: &[ImageRecord], force: bool) -> Result<Vec<String>> {
    let in_store = |canonical: &str| images.iter().any(|i| i.reference == canonical);
    let reference = Reference::parse(text).map(|r| r.canonical());
    if let Ok(canonical) = &reference
        && in_store(canonical)
    {
        return Ok(vec![canonical.clone()]);
    }
    let Some(hex) = digest_prefix(text) else {
        // A name as `box pull` resolved it: a short-name alias of the registries
        // configuration, or its search registries in order; the first in the store.
        let candidates: Vec<String> = RegistriesConf::from_env()?
            .resolve(text)?
            .candidates()
            .iter()
            .map(Reference::canonical)
            .collect();
        if let Some(found) = candidates.iter().find(|c| in_store(c)) {
            return Ok(vec![found.clone()]);
        }
        return Err(failure(
            format!("no image {} in the store", candidates.join(" or ")),
            "`box images` lists the images, with their digests",
        ));
    };
    let matching: Vec<&ImageRecord> = images
        .iter()
        .filter(|i| {
            i.manifest_digest.hex().starts_with(hex)
                || i.index_digest
                    .as_ref()
                    .is_some_and(|d| d.hex().starts_with(hex))
        })
        .collect();
    let mut digests: Vec<&str> = matching
        .iter()
        .map(|i| i.manifest_digest.as_str())
        .collect();
    digests.sort();
    digests.dedup();
    let references: Vec<String> = matching.iter().map(|i| i.reference.clone()).collect();
    match digests.len() {
        0 => Err(failure(
            format!("no image with digest {text} in the store"),
            "`box images` lists the images, with their digests",
        )),
        1 if references.len() > 1 && !force => Err(failure(
            format!(
                "digest {text} is the image of several references: {}",
                references.join(", ")
            ),
            "name the one to remove by its reference, or pass --force to remove them all",
        )),
        1 => Ok(references),
        _ => Err(failure(
            format!(
                "digest {text} is the start of several images' digests: {}",
                digests.join(", ")
            ),
            "give more of the digest",
        )),
    }
}

/// The hex digits of `text` when it reads as a (possibly shortened) sha256 digest:
/// `sha256:` optional, then at least [`SHORT_DIGEST`] lower-case hex digits.
fn digest_prefix(text: &str) -> Option<&str> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    ((SHORT_DIGEST..=64).contains(&hex.len())
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn image(reference: &str, manifest: &[u8]) -> ImageRecord {
        ImageRecord {
            reference: reference.into(),
            manifest_digest: Digest::of(manifest),
            index_digest: None,
            config_digest: Digest::of(b"config"),
            platform: "linux/amd64".into(),
            layers: Vec::new(),
            created: None,
            pulled: 0,
            config: Default::default(),
        }
    }

    #[test]
    fn images_are_named_by_reference_or_digest() {
        let images = [
            image("docker.io/library/debian:12", b"debian"),
            image("docker.io/library/debian:bookworm", b"debian"),
            image("example.com/tool:1", b"tool"),
        ];
        let tool = Digest::of(b"tool");
        let names = |text: &str, force| {
            resolve(text, &images, force).map_err(|e| crate::error::message(&e))
        };
        assert_eq!(
            names("example.com/tool:1", false).unwrap(),
            ["example.com/tool:1"]
        );
        for text in [tool.short(), tool.hex(), tool.as_str(), &tool.hex()[..20]] {
            assert_eq!(
                names(text, false).unwrap(),
                ["example.com/tool:1"],
                "{text}"
            );
        }
        // One digest, two references: only with --force.
        let debian = Digest::of(b"debian");
        assert!(
            names(debian.short(), false)
                .unwrap_err()
                .contains("several references")
        );
        assert_eq!(names(debian.short(), true).unwrap().len(), 2);
        // Too short to be a digest, or no such image.
        assert!(
            names(&tool.hex()[..8], false)
                .unwrap_err()
                .contains("no image")
        );
        assert!(
            names("000000000000", false)
                .unwrap_err()
                .contains("no image with digest")
        );
        assert!(
            names("Not/A/Ref", false)
                .unwrap_err()
                .contains("invalid image reference")
        );
    }

    #[test]
    fn short_digests_start_at_twelve_hex_digits() {
        assert_eq!(digest_prefix("0123456789ab"), Some("0123456789ab"));
        assert_eq!(digest_prefix("sha256:0123456789ab"), Some("0123456789ab"));
        assert_eq!(digest_prefix("0123456789a"), None);
        assert_eq!(digest_prefix("0123456789aB"), None);
        assert_eq!(digest_prefix("debian"), None);
    }
}
