//! What the images of a spooled archive are: their names, manifests, configs and layers,
//! each member checked against the digest that names it (see the parent module for the
//! two layouts and how names are read).
//!
//! Invariants: every [`ImagePlan`] has a config that parses, as many layers as diff ids,
//! and layers of a media type box can unpack; every blob of an OCI layout matches its
//! descriptor's digest and size; an uncompressed layer of a docker archive matches its
//! diff id. Nothing here touches the store.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};

use super::spool::{HOSTILE, Member, Spooled, normalize};
use super::{CONTAINERD_NAME, LAYOUT_VERSION, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, REF_NAME};
use crate::digest::Digest;
use crate::error::failure;
use crate::image::Compression;
use crate::registry::manifest::{DOCKER_MANIFEST, declared_media_type};
use crate::registry::{
    ImageConfig, Manifest, Platform, PlatformExt, Reference, parse_config, parse_manifest,
    select_platform,
};
use crate::ui::report::warn;

/// More images than an archive sensibly holds.
pub const MAX_IMAGES: usize = 1_000;
/// More layers than an image sensibly has (overlayfs stacks far fewer).
pub const MAX_LAYERS: usize = 1_000;

/// One image of the archive, ready to import.
#[derive(Debug)]
pub struct ImagePlan {
    /// Canonical references; none for an image without a name.
    pub names: Vec<String>,
    /// The manifest as the archive has it (an OCI layout), or none (a docker archive:
    /// box writes one).
    pub manifest: Option<(Vec<u8>, Digest)>,
    pub config: Member,
    pub config_bytes: Vec<u8>,
    pub parsed: ImageConfig,
    pub layers: Vec<LayerPlan>,
}

impl ImagePlan {
    /// How messages name the image: its first name, else its config digest.
    pub fn label(&self) -> String {
        match self.names.first() {
            Some(name) => format!("image {name}"),
            None => format!("image {}", self.config.digest),
        }
    }
}

/// One layer of an [`ImagePlan`].
#[derive(Debug, Clone)]
pub struct LayerPlan {
    /// The blob as the archive has it.
    pub member: Member,
    /// Its media type: the manifest's, or for a docker archive what its bytes are.
    pub media_type: String,
    pub diff_id: Digest,
    /// An uncompressed tar of a docker archive (checked against `diff_id` already): the
    /// store keeps it compressed with gzip.
    pub compress: bool,
}

/// The images of `archive`: an OCI layout when it has an `index.json`, else a docker
/// archive.
pub fn plan(archive: &Spooled) -> Result<Vec<ImagePlan>> {
    let plans = if archive.has("index.json") {
        oci(archive)?
    } else if archive.has("manifest.json") {
        docker(archive)?
    } else {
        bail!(failure(
            format!(
                "{} is not an image archive: it has neither an index.json (OCI layout) nor a manifest.json (docker archive)",
                archive.label
            ),
            "box loads what `podman save`, `docker save`, `skopeo copy` (oci-archive, docker-archive) and `box save` write",
        ));
    };
    if plans.is_empty() {
        bail!(failure(
            format!("{} holds no image", archive.label),
            "save an image into it first (`box save IMAGE -o FILE`)",
        ));
    }
    Ok(plans)
}

fn malformed(archive: &Spooled, what: &str, err: impl std::fmt::Display) -> anyhow::Error {
    failure(
        format!("{}: {what} is malformed: {err}", archive.label),
        HOSTILE,
    )
}

fn too_many(archive: &Spooled, what: &str, count: usize, max: usize) -> Result<()> {
    if count > max {
        bail!(failure(
            format!("{}: {count} {what}; box loads at most {max}", archive.label),
            HOSTILE
        ));
    }
    Ok(())
}

/// A name from a docker archive's RepoTags, as docker means it (`busybox:1` is Docker
/// Hub's); `None` (with a warning) when it is not a reference.
fn docker_name(archive: &Spooled, tag: &str) -> Option<String> {
    match Reference::parse(tag) {
        Ok(reference) => Some(reference.canonical()),
        Err(err) => {
            warn(format!(
                "{}: ignoring the name `{tag}`: {}",
                archive.label,
                crate::error::message(&err)
            ));
            None
        }
    }
}

/// A name from an OCI annotation: as it is when it starts with a registry, else
/// `localhost/NAME` (as podman loads it).
fn oci_name(archive: &Spooled, name: &str) -> Option<String> {
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        docker_name(archive, name)
    } else {
        docker_name(archive, &format!("localhost/{name}"))
    }
}

/// Add `name` to `names` unless it is there.
fn add_name(names: &mut Vec<String>, name: Option<String>) {
    if let Some(name) = name
        && !names.contains(&name)
    {
        names.push(name);
    }
}

/// The layout's images: each index entry's manifest (an index's entry for the host
/// platform), named by its annotations and a docker `manifest.json` beside it.
fn oci(archive: &Spooled) -> Result<Vec<ImagePlan>> {
    if archive.has("oci-layout") {
        #[derive(serde::Deserialize)]
        struct Layout {
            #[serde(rename = "imageLayoutVersion")]
            version: String,
        }
        let member = archive.file("oci-layout", "the layout marker")?;
        let bytes = archive.read_json(member, "the layout marker")?;
        let layout: Layout = serde_json::from_slice(&bytes)
            .map_err(|e| malformed(archive, "the layout marker `oci-layout`", e))?;
        if layout.version != LAYOUT_VERSION {
            bail!(failure(
                format!(
                    "{} is an OCI image layout of version {}; box reads version {LAYOUT_VERSION}",
                    archive.label, layout.version
                ),
                "save the image again with a current podman, skopeo or docker",
            ));
        }
    }
    let member = archive.file("index.json", "the index")?;
    let bytes = archive.read_json(member, "the index")?;
    let index = match parse_manifest(&bytes, OCI_INDEX) {
        Ok(Manifest::Index(index)) => index,
        Ok(Manifest::Image(_)) => bail!(malformed(archive, "index.json", "it is not an index")),
        Err(err) => bail!(malformed(
            archive,
            "index.json",
            crate::error::message(&err)
        )),
    };
    too_many(
        archive,
        "images in index.json",
        index.manifests().len(),
        MAX_IMAGES,
    )?;
    let repo_tags = docker_tags(archive);
    let docker_forms = docker_manifests(archive)?;
    let mut plans: Vec<ImagePlan> = Vec::new();
    let mut by_manifest: BTreeMap<Digest, usize> = BTreeMap::new();
    for entry in index.manifests() {
        let mut names = Vec::new();
        if let Some(annotations) = entry.annotations() {
            for key in [CONTAINERD_NAME, REF_NAME] {
                if let Some(name) = annotations.get(key) {
                    let name = if key == CONTAINERD_NAME {
                        docker_name(archive, name)
                    } else {
                        oci_name(archive, name)
                    };
                    add_name(&mut names, name);
                }
            }
            // docker writes the full name in containerd's annotation and only the tag in
            // OCI's: the tag alone is no name of its own then.
            if annotations.contains_key(CONTAINERD_NAME) && names.len() > 1 {
                names.truncate(1);
            }
        }
        let mut digest = Digest::try_from(entry.digest())?;
        let mut member = archive.blob(&digest, Some(entry.size()), "the manifest")?;
        let mut bytes = archive.read_json(member, "the manifest")?;
        let mut parsed = parse_manifest(&bytes, entry.media_type().as_ref()).map_err(|e| {
            malformed(
                archive,
                &format!("the manifest {digest}"),
                crate::error::message(&e),
            )
        })?;
        if let Manifest::Index(inner) = &parsed {
            let chosen = select_platform(inner.manifests(), &Platform::host(), &archive.label)?;
            digest = Digest::try_from(chosen.digest())?;
            member = archive.blob(&digest, Some(chosen.size()), "the manifest")?;
            bytes = archive.read_json(member, "the manifest")?;
            parsed = parse_manifest(&bytes, chosen.media_type().as_ref()).map_err(|e| {
                malformed(
                    archive,
                    &format!("the manifest {digest}"),
                    crate::error::message(&e),
                )
            })?;
        }
        let Manifest::Image(image) = parsed else {
            bail!(failure(
                format!(
                    "{}: the index entry {} is an index of indexes",
                    archive.label,
                    entry.digest()
                ),
                "box follows one level of image index; this image is not supported",
            ));
        };
        // The Docker manifest box save wrote beside this OCI form of it.
        if let Some((docker_bytes, docker_digest)) = docker_forms.get(&digest) {
            bytes = docker_bytes.clone();
            digest = docker_digest.clone();
        }
        if let Some(&at) = by_manifest.get(&digest) {
            for name in names {
                add_name(&mut plans[at].names, Some(name));
            }
            continue;
        }
        too_many(
            archive,
            "layers in one image",
            image.layers().len(),
            MAX_LAYERS,
        )?;
        let config_digest = Digest::try_from(image.config().digest())?;
        let config = archive
            .blob(
                &config_digest,
                Some(image.config().size()),
                "the image config",
            )?
            .clone();
        let config_bytes = archive.read_json(&config, "the image config")?;
        let parsed = parse_config(&config_bytes).map_err(|e| {
            malformed(
                archive,
                &format!("the image config {config_digest}"),
                crate::error::message(&e),
            )
        })?;
        if parsed.diff_ids.len() != image.layers().len() {
            bail!(failure(
                format!(
                    "{}: the manifest {digest} lists {} layers but its config lists {} diff ids",
                    archive.label,
                    image.layers().len(),
                    parsed.diff_ids.len()
                ),
                HOSTILE,
            ));
        }
        for tag in repo_tags.get(&config_digest).into_iter().flatten() {
            add_name(&mut names, docker_name(archive, tag));
        }
        let mut layers = Vec::new();
        for (descriptor, diff_id) in image.layers().iter().zip(&parsed.diff_ids) {
            let layer_digest = Digest::try_from(descriptor.digest())?;
            let media_type = descriptor.media_type().to_string();
            Compression::from_media_type(&media_type)
                .with_context(|| format!("{}: layer {layer_digest}", archive.label))?;
            let member = archive.blob(&layer_digest, Some(descriptor.size()), "the layer")?;
            layers.push(LayerPlan {
                member: member.clone(),
                media_type,
                diff_id: diff_id.clone(),
                compress: false,
            });
        }
        by_manifest.insert(digest.clone(), plans.len());
        plans.push(ImagePlan {
            names,
            manifest: Some((bytes, digest)),
            config,
            config_bytes,
            parsed,
            layers,
        });
    }
    Ok(plans)
}

/// The Docker schema 2 manifests among an OCI layout's blobs, by the digest of their OCI
/// form ([`super::oci_form`]).
fn docker_manifests(archive: &Spooled) -> Result<BTreeMap<Digest, (Vec<u8>, Digest)>> {
    /// Bigger blobs are layers or configs, not manifests worth a look.
    const SMALL: u64 = 1 << 20;
    let mut out = BTreeMap::new();
    for member in archive.files("blobs/sha256/") {
        if member.size > SMALL {
            continue;
        }
        let Ok(digest) = Digest::parse(&format!("sha256:{}", &member.name[13..])) else {
            continue;
        };
        if member.digest != digest {
            continue;
        }
        let bytes = archive.read_json(member, "a blob")?;
        if declared_media_type(&bytes).as_deref() != Some(DOCKER_MANIFEST) {
            continue;
        }
        if let Ok(oci) = super::oci_form(&bytes) {
            out.insert(Digest::of(&oci), (bytes, digest));
        }
    }
    Ok(out)
}

/// One entry of a docker archive's `manifest.json`.
#[derive(Debug, serde::Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn docker_entries(archive: &Spooled) -> Result<Vec<DockerEntry>> {
    let member = archive.file("manifest.json", "the docker manifest")?;
    let bytes = archive.read_json(member, "the docker manifest")?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&bytes).map_err(|e| malformed(archive, "manifest.json", e))?;
    too_many(
        archive,
        "images in manifest.json",
        entries.len(),
        MAX_IMAGES,
    )?;
    Ok(entries)
}

/// The RepoTags of a `manifest.json` beside an OCI layout, by config digest (its Config
/// paths are `blobs/sha256/<hex>`). Nothing when there is none or it does not read.
fn docker_tags(archive: &Spooled) -> BTreeMap<Digest, Vec<String>> {
    let mut out = BTreeMap::new();
    if !archive.has("manifest.json") {
        return out;
    }
    let Ok(entries) = docker_entries(archive) else {
        return out;
    };
    for entry in entries {
        let hex = normalize(entry.config.as_bytes())
            .ok()
            .and_then(|p| p.strip_prefix("blobs/sha256/").map(str::to_owned));
        if let Some(digest) = hex.and_then(|h| Digest::parse(&format!("sha256:{h}")).ok()) {
            out.entry(digest)
                .or_insert_with(Vec::new)
                .extend(entry.repo_tags.unwrap_or_default());
        }
    }
    out
}

/// The digest a member's path promises: `blobs/sha256/<hex>` or `<hex>.json`.
fn named_digest(name: &str) -> Option<Digest> {
    let hex = name
        .strip_prefix("blobs/sha256/")
        .or_else(|| name.strip_suffix(".json").filter(|h| !h.contains('/')))?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// A member named by a path of `manifest.json`.
fn docker_member<'a>(archive: &'a Spooled, path: &str, what: &str) -> Result<&'a Member> {
    let name = normalize(path.as_bytes()).map_err(|why| {
        failure(
            format!(
                "{}: manifest.json names {what} `{path}`, which {why}",
                archive.label
            ),
            HOSTILE,
        )
    })?;
    archive.file(&name, what)
}

/// The images of a docker archive.
fn docker(archive: &Spooled) -> Result<Vec<ImagePlan>> {
    let mut plans = Vec::new();
    for entry in docker_entries(archive)? {
        let config = docker_member(archive, &entry.config, "the image config")?.clone();
        if let Some(named) = named_digest(&config.name) {
            archive.check_digest(&config, &named, "the image config")?;
        }
        let config_bytes = archive.read_json(&config, "the image config")?;
        let parsed = parse_config(&config_bytes).map_err(|e| {
            malformed(
                archive,
                &format!("the image config `{}`", config.name),
                crate::error::message(&e),
            )
        })?;
        too_many(
            archive,
            "layers in one image",
            entry.layers.len(),
            MAX_LAYERS,
        )?;
        if parsed.diff_ids.len() != entry.layers.len() {
            bail!(failure(
                format!(
                    "{}: manifest.json lists {} layers for `{}` but its config lists {} diff ids",
                    archive.label,
                    entry.layers.len(),
                    config.name,
                    parsed.diff_ids.len()
                ),
                HOSTILE,
            ));
        }
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(&parsed.diff_ids) {
            let member = docker_member(archive, path, "the layer")?;
            if let Some(named) = named_digest(&member.name) {
                archive.check_digest(member, &named, "the layer")?;
            }
            let head = archive.head(member)?;
            let (media_type, compress) = if head.starts_with(&[0x1f, 0x8b]) {
                (OCI_LAYER_GZIP, false)
            } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                (OCI_LAYER_ZSTD, false)
            } else {
                // An uncompressed tar: its digest is its diff id.
                if &member.digest != diff_id {
                    bail!(failure(
                        format!(
                            "{}: the layer `{}` has digest {}, but the image config says its diff id is {diff_id}",
                            archive.label, member.name, member.digest
                        ),
                        "the archive is damaged or was tampered with; save it again",
                    ));
                }
                (OCI_LAYER_GZIP, true)
            };
            layers.push(LayerPlan {
                member: member.clone(),
                media_type: media_type.to_owned(),
                diff_id: diff_id.clone(),
                compress,
            });
        }
        let mut names = Vec::new();
        for tag in entry.repo_tags.iter().flatten() {
            add_name(&mut names, docker_name(archive, tag));
        }
        plans.push(ImagePlan {
            names,
            manifest: None,
            config,
            config_bytes,
            parsed,
            layers,
        });
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive() -> Spooled {
        let dir = tempfile::tempdir().unwrap();
        let bytes = {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_path("oci-layout-not").unwrap();
            header.set_cksum();
            builder.append(&header, &b""[..]).unwrap();
            builder.into_inner().unwrap()
        };
        super::super::spool::spool(&bytes[..], dir.path(), "the archive t.tar").unwrap()
    }

    #[test]
    fn names_mean_what_their_format_says() {
        let a = archive();
        assert_eq!(
            docker_name(&a, "busybox:1").as_deref(),
            Some("docker.io/library/busybox:1")
        );
        assert_eq!(oci_name(&a, "bb:1").as_deref(), Some("localhost/bb:1"));
        assert_eq!(
            oci_name(&a, "localhost/bb:1").as_deref(),
            Some("localhost/bb:1")
        );
        assert_eq!(
            oci_name(&a, "127.0.0.1:5000/fixtures/busybox:latest").as_deref(),
            Some("127.0.0.1:5000/fixtures/busybox:latest")
        );
        assert_eq!(
            oci_name(&a, "latest").as_deref(),
            Some("localhost/latest:latest")
        );
        assert_eq!(docker_name(&a, "Not/A/Ref"), None);
    }

    #[test]
    fn member_names_promise_digests() {
        let d = Digest::of(b"x");
        assert_eq!(
            named_digest(&format!("blobs/sha256/{}", d.hex())),
            Some(d.clone())
        );
        assert_eq!(named_digest(&format!("{}.json", d.hex())), Some(d.clone()));
        assert_eq!(named_digest(&format!("a/{}.json", d.hex())), None);
        assert_eq!(named_digest("abc/layer.tar"), None);
    }

    #[test]
    fn an_archive_without_images_is_refused() {
        let message = crate::error::message(&plan(&archive()).unwrap_err());
        assert!(message.contains("not an image archive"), "{message}");
    }
}
