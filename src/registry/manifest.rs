//! Manifests, indexes and image configs: parsing what registries serve into the few
//! fields box uses.
//!
//! Accepted: Docker v2 schema 2 manifests and manifest lists, OCI image manifests and
//! indexes. The media type comes from the `Content-Type` header when it names one of those,
//! else from the document's `mediaType` field, else from its shape. Docker schema 1
//! (signed, no config blob, no diff ids) is refused with a clear error, as podman does
//! for pushes and modern registries do for pulls.
//!
//! Invariant: every digest in a parsed manifest is a valid sha256 [`Digest`].

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{HintExt, failure};
use crate::registry::platform::Platform;
use crate::store::images::RuntimeConfig;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header value for manifest requests: every type box understands.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// A pointer to content: its type, digest and exact size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// Set on index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Alternative download locations (non-distributable layers); box does not use them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    /// A manifest list / image index: one entry per platform (and attestations).
    Index(Vec<Descriptor>),
}

/// Whether `media_type` is one of the four manifest types box can parse.
pub fn is_manifest_type(media_type: &str) -> bool {
    [
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        OCI_INDEX,
    ]
    .contains(&media_type)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    // Only schema 1 has these.
    fs_layers: Option<serde_json::Value>,
}

/// Parse a manifest or index served with `content_type` (parameters like `charset` are
/// ignored; a vague type such as `application/json` defers to the document).
pub fn parse_manifest(bytes: &[u8], content_type: &str) -> Result<Manifest> {
    let header = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let raw: RawManifest = serde_json::from_slice(bytes)
        .context("the registry sent a manifest that is not valid JSON (or has invalid fields)")
        .hint("the registry or a proxy in front of it is misbehaving; try again or report it")?;

    let schema1 = |_| {
        failure(
            "the image uses Docker's manifest schema 1, which box does not support",
            "schema 1 images are deprecated; push the image again with a current docker or podman",
        )
    };
    let media_type =
        if is_manifest_type(&header) || header == DOCKER_SCHEMA1 || header == DOCKER_SCHEMA1_SIGNED
        {
            header
        } else if let Some(declared) = raw.media_type.clone() {
            declared
        } else if raw.schema_version == Some(1) || raw.fs_layers.is_some() {
            return Err(schema1(()));
        } else if raw.manifests.is_some() {
            OCI_INDEX.to_owned()
        } else if raw.config.is_some() && raw.layers.is_some() {
            OCI_MANIFEST.to_owned()
        } else {
            bail!(
                "the registry sent a document of type `{content_type}` that is neither an image \
             manifest nor an index"
            );
        };

    match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let (Some(config), Some(layers)) = (raw.config, raw.layers) else {
                bail!("the image manifest ({media_type}) has no config or no layers list");
            };
            Ok(Manifest::Image(ImageManifest { config, layers }))
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let Some(entries) = raw.manifests else {
                bail!("the index ({media_type}) has no manifests list");
            };
            Ok(Manifest::Index(entries))
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(schema1(())),
        other => Err(failure(
            format!("unsupported manifest media type `{other}`"),
            "box pulls OCI and Docker v2 images; this reference may point at something else \
             (a Helm chart, a signature, an artifact)",
        )),
    }
}

/// The parts of an image config box needs.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub created: Option<String>,
    pub config: RuntimeConfig,
    /// Digests of the uncompressed layers, bottom first.
    pub diff_ids: Vec<Digest>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
    created: Option<String>,
    // Images built `FROM scratch` with no settings have `"config": null` or none at all.
    config: Option<RawRuntime>,
    rootfs: RawRootfs,
}

/// Docker writes `null` for unset lists, so each field is an Option here.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRuntime {
    env: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(rename = "type")]
    kind: String,
    diff_ids: Vec<Digest>,
}

/// Parse an image config blob.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig> {
    let raw: RawConfig = serde_json::from_slice(bytes)
        .context("the image config is not valid JSON (or lacks rootfs.diff_ids)")
        .hint("the image is malformed; rebuild and push it again")?;
    if raw.rootfs.kind != "layers" {
        bail!(
            "the image config has rootfs type `{}` (expected `layers`)",
            raw.rootfs.kind
        );
    }
    let runtime = raw
        .config
        .map_or_else(RuntimeConfig::default, |c| RuntimeConfig {
            env: c.env.unwrap_or_default(),
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
        });
    Ok(ImageConfig {
        os: raw.os,
        architecture: raw.architecture,
        variant: raw.variant.filter(|v| !v.is_empty()),
        created: raw.created,
        config: runtime,
        diff_ids: raw.rootfs.diff_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(m.config.digest.to_string(), d(1));
            assert_eq!(m.config.size, 12);
            assert_eq!(m.layers.len(), 2);
            assert_eq!(
                m.layers[1].media_type,
                "application/vnd.oci.image.layer.v1.tar+zstd"
            );
            assert_eq!(m.layers[1].size, 56);
        }
    }

    #[test]
    fn indexes_keep_platforms() {
        for mt in [OCI_INDEX, DOCKER_MANIFEST_LIST] {
            for header in [mt, "application/octet-stream"] {
                let Manifest::Index(entries) =
                    parse_manifest(index_json(mt).as_bytes(), header).unwrap()
                else {
                    panic!()
                };
                assert_eq!(entries.len(), 3);
                assert_eq!(
                    entries[0].platform.as_ref().unwrap().to_string(),
                    "linux/arm/v7"
                );
                assert_eq!(
                    entries[1].platform.as_ref().unwrap().to_string(),
                    "linux/amd64"
                );
                assert_eq!(
                    entries[2].annotations["vnd.docker.reference.type"],
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
        assert_eq!(
            (c.os.as_str(), c.architecture.as_str(), c.variant.as_deref()),
            ("linux", "arm64", Some("v8"))
        );
        assert_eq!(c.created.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(c.config.env, ["PATH=/bin"]);
        assert!(c.config.entrypoint.is_empty());
        assert_eq!(c.config.cmd, ["sh"]);
        assert_eq!(c.config.working_dir, "/w");
        assert_eq!(c.config.user, "1000");
        assert_eq!(c.diff_ids.len(), 2);

        let bare = format!(
            r#"{{"os": "linux", "architecture": "amd64", "rootfs": {{"type": "layers", "diff_ids": ["{}"]}}}}"#,
            d(9)
        );
        let c = parse_config(bare.as_bytes()).unwrap();
        assert!(c.config.cmd.is_empty() && c.variant.is_none());

        let err = parse_config(b"{\"os\": \"linux\"}").unwrap_err();
        assert!(crate::error::message(&err).contains("diff_ids"));
        let err =
            parse_config(b"{\"rootfs\": {\"type\": \"other\", \"diff_ids\": []}}").unwrap_err();
        assert!(crate::error::message(&err).contains("rootfs type"));
    }
}
