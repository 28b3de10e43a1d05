//! Manifests, indexes and image configs: what registries serve, parsed into oci-spec's
//! types ([`ImageManifest`], [`ImageIndex`], [`ImageConfiguration`], [`Descriptor`]),
//! then checked for what box relies on.
//!
//! Accepted: Docker v2 schema 2 manifests and manifest lists, OCI image manifests and
//! indexes (oci-spec reads both: the documents have the same shape, only their media
//! types differ, and those it keeps as [`MediaType::Other`]). The media type of a document
//! is decided in one place, [`manifest_media_type`]: the `Content-Type` header when it
//! names one of those, else the document's `mediaType` field, else (in [`parse_manifest`])
//! its shape. Docker schema 1 (signed, no config blob, no diff ids) is refused with a clear
//! error, as podman does for pushes and modern registries do for pulls.
//!
//! Lenient where the hand-written parser this replaced was: a descriptor without
//! `mediaType`, a document without `schemaVersion` and a config without `os` or
//! `architecture` still parse (as empty strings and version 2), so images that pulled
//! before still pull.
//!
//! Invariants: every digest in a manifest or index from [`parse_manifest`] is a valid
//! sha256 digest (so [`Digest::try_from`] on it succeeds), and so is every diff id of an
//! [`ImageConfig`]; nothing else reaches the store, whose paths are built from digests.

use anyhow::{Context as _, Result, bail};
pub use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Platform,
};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{HintExt, failure};
use crate::store::images::RuntimeConfig;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header value for manifest requests: every type box understands.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// A parsed manifest or index (boxed: oci-spec's types are large, and a value of this
/// type moves between functions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    /// A manifest list / image index: one entry per platform (and attestations).
    Index(Box<ImageIndex>),
}

/// The kinds of document box tells apart by media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image,
    Index,
    Schema1,
}

/// What a (normalized) media type names, if box knows it.
fn kind_of(media_type: &str) -> Option<Kind> {
    match MediaType::from(media_type) {
        MediaType::ImageManifest => Some(Kind::Image),
        MediaType::ImageIndex => Some(Kind::Index),
        MediaType::Other(other) => match other.as_str() {
            DOCKER_MANIFEST => Some(Kind::Image),
            DOCKER_MANIFEST_LIST => Some(Kind::Index),
            DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Some(Kind::Schema1),
            _ => None,
        },
        _ => None,
    }
}

/// The media type of a manifest document: the `Content-Type` header (parameters such as
/// `charset` dropped, lower-cased) when it names a manifest type box knows, else the
/// document's own `declared` `mediaType`, else the header as it is (a vague type such as
/// `application/json`, with a silent document: [`parse_manifest`] decides by shape).
pub fn manifest_media_type(content_type: &str, declared: Option<&str>) -> String {
    let header = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match declared {
        Some(declared) if kind_of(&header).is_none() => declared.to_owned(),
        _ => header,
    }
}

/// The `mediaType` a JSON document declares, if it is an object that has one.
pub fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Sniff {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Sniff>(bytes).ok()?.media_type
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = anyhow::Error;

    /// The project's digest type accepts sha256 only: the store is addressed by it.
    fn try_from(digest: &oci_spec::image::Digest) -> Result<Digest> {
        Digest::parse(digest.as_ref()).map_err(|why| anyhow::anyhow!("{why}"))
    }
}

const INVALID_MANIFEST: &str =
    "the registry sent a manifest that is not valid JSON (or has invalid fields)";
const INVALID_MANIFEST_HINT: &str =
    "the registry or a proxy in front of it is misbehaving; try again or report it";

/// Parse a manifest or index served with `content_type` (parameters like `charset` are
/// ignored; a vague type such as `application/json` defers to the document).
pub fn parse_manifest(bytes: &[u8], content_type: &str) -> Result<Manifest> {
    let mut document: Value = serde_json::from_slice(bytes)
        .context(INVALID_MANIFEST)
        .hint(INVALID_MANIFEST_HINT)?;
    let field = |name: &str| document.get(name).filter(|v| !v.is_null());
    let declared = field("mediaType").and_then(Value::as_str);
    let schema1 = || {
        failure(
            "the image uses Docker's manifest schema 1, which box does not support",
            "schema 1 images are deprecated; push the image again with a current docker or podman",
        )
    };
    let media_type = manifest_media_type(content_type, declared);
    let media_type = match kind_of(&media_type) {
        Some(_) => media_type,
        // Declared, but not a manifest box knows: refused below.
        None if declared.is_some() => media_type,
        None if field("schemaVersion").and_then(Value::as_u64) == Some(1)
            || field("fsLayers").is_some() =>
        {
            return Err(schema1());
        }
        None if field("manifests").is_some() => MediaType::ImageIndex.to_string(),
        None if field("config").is_some() && field("layers").is_some() => {
            MediaType::ImageManifest.to_string()
        }
        None => bail!(
            "the registry sent a document of type `{content_type}` that is neither an image \
             manifest nor an index"
        ),
    };
    let manifest = match kind_of(&media_type) {
        Some(Kind::Image) => {
            if field("config").is_none() || field("layers").is_none() {
                bail!("the image manifest ({media_type}) has no config or no layers list");
            }
            lenient_defaults(&mut document, &["config"], &["layers"]);
            let image: ImageManifest = serde_json::from_value(document)
                .context(INVALID_MANIFEST)
                .hint(INVALID_MANIFEST_HINT)?;
            check_digests(std::iter::once(image.config()).chain(image.layers()))?;
            Manifest::Image(Box::new(image))
        }
        Some(Kind::Index) => {
            if field("manifests").is_none() {
                bail!("the index ({media_type}) has no manifests list");
            }
            lenient_defaults(&mut document, &[], &["manifests"]);
            let index: ImageIndex = serde_json::from_value(document)
                .context(INVALID_MANIFEST)
                .hint(INVALID_MANIFEST_HINT)?;
            check_digests(index.manifests())?;
            Manifest::Index(Box::new(index))
        }
        Some(Kind::Schema1) => return Err(schema1()),
        None => {
            return Err(failure(
                format!("unsupported manifest media type `{media_type}`"),
                "box pulls OCI and Docker v2 images; this reference may point at something else \
                 (a Helm chart, a signature, an artifact)",
            ));
        }
    };
    Ok(manifest)
}

/// Fill in what oci-spec requires but registries (and the parser before it) did without:
/// `schemaVersion` (2) and the `mediaType` of the descriptors in the named `single`
/// fields and `lists` (empty: an unknown type, refused where it matters, for layers).
fn lenient_defaults(document: &mut Value, single: &[&str], lists: &[&str]) {
    let Some(object) = document.as_object_mut() else {
        return;
    };
    object
        .entry("schemaVersion")
        .or_insert_with(|| Value::from(2));
    let fill = |descriptor: &mut Value| {
        if let Some(d) = descriptor.as_object_mut() {
            d.entry("mediaType").or_insert_with(|| Value::from(""));
        }
    };
    for name in single {
        if let Some(descriptor) = object.get_mut(*name) {
            fill(descriptor);
        }
    }
    for name in lists {
        if let Some(Value::Array(entries)) = object.get_mut(*name) {
            entries.iter_mut().for_each(fill);
        }
    }
}

/// Every descriptor's digest must be sha256 (oci-spec also accepts sha512 and others).
fn check_digests<'a>(descriptors: impl IntoIterator<Item = &'a Descriptor>) -> Result<()> {
    for descriptor in descriptors {
        Digest::try_from(descriptor.digest())
            .with_context(|| format!("{INVALID_MANIFEST}: digest {}", descriptor.digest()))
            .hint(INVALID_MANIFEST_HINT)?;
    }
    Ok(())
}

/// An image config as oci-spec parses it, with its diff ids checked as sha256 digests.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub spec: ImageConfiguration,
    /// Digests of the uncompressed layers, bottom first.
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// The platform the image is for (`os/architecture[/variant]`).
    pub fn platform(&self) -> Platform {
        let variant = self.spec.variant().clone().filter(|v| !v.is_empty());
        let mut platform = Platform::default();
        platform.set_os(self.spec.os().clone());
        platform.set_architecture(self.spec.architecture().clone());
        platform.set_variant(variant);
        platform
    }

    /// The creation date (RFC 3339), if the config has one.
    pub fn created(&self) -> Option<&str> {
        self.spec.created().as_deref()
    }

    /// The settings a box uses when running commands, as the store records them (Docker
    /// writes `null` for unset lists: those are empty).
    pub fn runtime(&self) -> RuntimeConfig {
        let Some(c) = self.spec.config() else {
            return RuntimeConfig::default();
        };
        RuntimeConfig {
            env: c.env().clone().unwrap_or_default(),
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
        }
    }
}

const INVALID_CONFIG: &str = "the image config is not valid JSON (or lacks rootfs.diff_ids)";
const INVALID_CONFIG_HINT: &str = "the image is malformed; rebuild and push it again";

/// Parse an image config blob.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig> {
    // The rootfs is checked first, so that its errors are the ones reported.
    #[derive(serde::Deserialize)]
    struct Rootfs {
        rootfs: RawRootfs,
    }
    #[derive(serde::Deserialize)]
    struct RawRootfs {
        #[serde(rename = "type")]
        kind: String,
        diff_ids: Vec<Digest>,
    }
    let Rootfs { rootfs } = serde_json::from_slice(bytes)
        .context(INVALID_CONFIG)
        .hint(INVALID_CONFIG_HINT)?;
    if rootfs.kind != "layers" {
        bail!(
            "the image config has rootfs type `{}` (expected `layers`)",
            rootfs.kind
        );
    }
    let mut document: Value = serde_json::from_slice(bytes)
        .context(INVALID_CONFIG)
        .hint(INVALID_CONFIG_HINT)?;
    if let Some(object) = document.as_object_mut() {
        for required in ["os", "architecture"] {
            object.entry(required).or_insert_with(|| Value::from(""));
        }
        // Images built `FROM scratch` with no settings have `"config": null`.
        if object.get("config").is_some_and(Value::is_null) {
            object.remove("config");
        }
    }
    let spec: ImageConfiguration = serde_json::from_value(document)
        .context(INVALID_CONFIG)
        .hint(INVALID_CONFIG_HINT)?;
    Ok(ImageConfig {
        spec,
        diff_ids: rootfs.diff_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::platform::PlatformExt as _;

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

    fn d(n: u8) -> String {
        Digest::of(&[n]).to_string()
    }

    fn image_json(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!("\"mediaType\": \"{m}\","))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion": 2, {mt}
              "config": {{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "{}", "size": 12}},
              "layers": [{{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "{}", "size": 34}},
                         {{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": "{}", "size": 56}}]}}"#,
            d(1),
            d(2),
            d(3)
        )
    }

    fn index_json(media_type: &str) -> String {
        format!(
            r#"{{"schemaVersion": 2, "mediaType": "{media_type}", "manifests": [
              {{"mediaType": "{OCI_MANIFEST}", "digest": "{}", "size": 500,
                "platform": {{"architecture": "arm", "os": "linux", "variant": "v7"}}}},
              {{"mediaType": "{OCI_MANIFEST}", "digest": "{}", "size": 501,
                "platform": {{"architecture": "amd64", "os": "linux", "os.features": ["x"]}}}},
              {{"mediaType": "{OCI_MANIFEST}", "digest": "{}", "size": 502,
                "annotations": {{"vnd.docker.reference.type": "attestation-manifest"}},
                "platform": {{"architecture": "unknown", "os": "unknown"}}}}]}}"#,
            d(4),
            d(5),
            d(6)
        )
    }

    #[test]
    fn image_manifests_by_header_field_or_shape() {
        for (body, header) in [
            (image_json(Some(OCI_MANIFEST)), OCI_MANIFEST),
            (
                image_json(Some(DOCKER_MANIFEST)),
                "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
            ),
            (image_json(Some(DOCKER_MANIFEST)), "application/json"),
            (image_json(None), OCI_MANIFEST),
            (image_json(None), "text/plain"),
            (image_json(None), ""),
        ] {
            let Manifest::Image(m) = parse_manifest(body.as_bytes(), header).unwrap() else {
                panic!("{header}")
            };
            assert_eq!(m.config().digest().to_string(), d(1));
            assert_eq!(m.config().size(), 12);
            assert_eq!(m.layers().len(), 2);
            assert_eq!(
                m.layers()[1].media_type().as_ref(),
                "application/vnd.oci.image.layer.v1.tar+zstd"
            );
            assert_eq!(m.layers()[1].size(), 56);
        }
    }

    #[test]
    fn indexes_keep_platforms() {
        for mt in [OCI_INDEX, DOCKER_MANIFEST_LIST] {
            for header in [mt, "application/octet-stream"] {
                let Manifest::Index(index) =
                    parse_manifest(index_json(mt).as_bytes(), header).unwrap()
                else {
                    panic!()
                };
                let entries = index.manifests();
                assert_eq!(entries.len(), 3);
                assert_eq!(
                    entries[0]
                        .platform()
                        .as_ref()
                        .unwrap()
                        .display()
                        .to_string(),
                    "linux/arm/v7"
                );
                assert_eq!(
                    entries[1]
                        .platform()
                        .as_ref()
                        .unwrap()
                        .display()
                        .to_string(),
                    "linux/amd64"
                );
                assert_eq!(
                    entries[2].annotations().as_ref().unwrap()["vnd.docker.reference.type"],
                    "attestation-manifest"
                );
            }
        }
        // An index without mediaType is recognized by its shape.
        let body = index_json(OCI_INDEX).replace(&format!("\"mediaType\": \"{OCI_INDEX}\","), "");
        assert!(matches!(
            parse_manifest(body.as_bytes(), "application/json").unwrap(),
            Manifest::Index(_)
        ));
    }

    #[test]
    fn one_media_type_decision_for_header_and_document() {
        let decide = manifest_media_type;
        // A known header wins, without its parameters and in lower case.
        assert_eq!(
            decide(
                "Application/VND.oci.image.index.v1+json; charset=utf-8",
                Some(OCI_MANIFEST)
            ),
            OCI_INDEX
        );
        assert_eq!(decide(DOCKER_SCHEMA1_SIGNED, None), DOCKER_SCHEMA1_SIGNED);
        // A vague header defers to the document, and stays when the document is silent.
        assert_eq!(
            decide("application/json", Some(DOCKER_MANIFEST)),
            DOCKER_MANIFEST
        );
        assert_eq!(decide("Text/Plain; x=y", None), "text/plain");
        assert_eq!(decide("", None), "");
        assert_eq!(
            declared_media_type(image_json(Some(DOCKER_MANIFEST)).as_bytes()).as_deref(),
            Some(DOCKER_MANIFEST)
        );
        assert_eq!(declared_media_type(b"[1]"), None);
    }

    #[test]
    fn refusals() {
        let msg = |r: Result<Manifest>| crate::error::message(&r.unwrap_err());
        let schema1 =
            r#"{"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": [], "history": []}"#;
        assert!(msg(parse_manifest(schema1.as_bytes(), "application/json")).contains("schema 1"));
        assert!(
            msg(parse_manifest(schema1.as_bytes(), DOCKER_SCHEMA1_SIGNED)).contains("schema 1")
        );
        let helm = r#"{"schemaVersion": 2, "mediaType": "application/vnd.cncf.helm.chart.v1+json", "config": null}"#;
        assert!(msg(parse_manifest(helm.as_bytes(), "application/json")).contains("vnd.cncf.helm"));
        assert!(msg(parse_manifest(b"<html>", "text/html")).contains("not valid JSON"));
        let bad_digest = image_json(None).replace(&d(2), "sha256:1234");
        assert!(
            msg(parse_manifest(bad_digest.as_bytes(), OCI_MANIFEST)).contains("not valid JSON")
        );
        assert!(msg(parse_manifest(b"{}", "application/json")).contains("neither"));
        let no_layers = format!(r#"{{"config": {{"digest": "{}", "size": 1}}}}"#, d(1));
        assert!(
            msg(parse_manifest(no_layers.as_bytes(), OCI_MANIFEST))
                .contains("no config or no layers")
        );
    }

    #[test]
    fn configs_with_nulls_and_without_runtime_settings() {
        let body = format!(
            r#"{{"architecture": "arm64", "os": "linux", "variant": "v8", "created": "2024-01-01T00:00:00Z",
                "config": {{"Env": ["PATH=/bin"], "Entrypoint": null, "Cmd": ["sh"], "WorkingDir": "/w", "User": "1000"}},
                "rootfs": {{"type": "layers", "diff_ids": ["{}", "{}"]}}, "history": []}}"#,
            d(7),
            d(8)
        );
        let c = parse_config(body.as_bytes()).unwrap();
        let p = c.platform();
        assert_eq!(
            (
                p.os().to_string(),
                p.architecture().to_string(),
                p.variant().as_deref()
            ),
            ("linux".to_owned(), "arm64".to_owned(), Some("v8"))
        );
        assert_eq!(c.created(), Some("2024-01-01T00:00:00Z"));
        let runtime = c.runtime();
        assert_eq!(runtime.env, ["PATH=/bin"]);
        assert!(runtime.entrypoint.is_empty());
        assert_eq!(runtime.cmd, ["sh"]);
        assert_eq!(runtime.working_dir, "/w");
        assert_eq!(runtime.user, "1000");
        assert_eq!(c.diff_ids.len(), 2);

        let bare = format!(
            r#"{{"os": "linux", "architecture": "amd64", "rootfs": {{"type": "layers", "diff_ids": ["{}"]}}}}"#,
            d(9)
        );
        let c = parse_config(bare.as_bytes()).unwrap();
        assert!(c.runtime().cmd.is_empty() && c.platform().variant().is_none());

        let err = parse_config(b"{\"os\": \"linux\"}").unwrap_err();
        assert!(crate::error::message(&err).contains("diff_ids"));
        let err =
            parse_config(b"{\"rootfs\": {\"type\": \"other\", \"diff_ids\": []}}").unwrap_err();
        assert!(crate::error::message(&err).contains("rootfs type"));
    }
}
