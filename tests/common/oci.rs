//! `ImageBuilder`: OCI / Docker v2 images built in memory from a list of tar entries, and
//! pushed to a registry with the distribution API (monolithic blob uploads).
//!
//! Everything a hostile or broken image can contain is expressible: raw entry names and
//! link names that bypass the tar crate's path checks (`../x`, `/abs`), whiteouts and
//! opaque markers, device nodes, PAX xattrs; and deliberate lies in the metadata (a
//! wrong diff_id, a wrong descriptor size, a truncated blob, an unknown media type).
//! Digests are always computed over the bytes actually pushed, so the registry accepts
//! them and only box can notice what is wrong.

use std::io::Write;

use serde_json::{Value, json};

use super::registry::Registry;
use super::sha256;

pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MT_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MT_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MT_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A fixed, old modification time (2001-09-09) so mtimes are checkable.
pub const DEFAULT_MTIME: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Fifo,
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
}

/// One tar entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// The name as written in the tar header (bytes, unchecked when `raw`).
    pub path: String,
    /// Symlink target or hardlink source.
    pub link: Option<String>,
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Write the name and link name bytes as they are, with no path checks at all.
    pub raw: bool,
}

impl Entry {
    fn new(kind: Kind, path: &str, mode: u32) -> Entry {
        Entry {
            kind,
            path: path.to_owned(),
            link: None,
            content: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            mtime: DEFAULT_MTIME,
            xattrs: Vec::new(),
            raw: false,
        }
    }

    /// A regular file, mode 0644, owned by 0:0.
    pub fn file(path: &str, content: impl AsRef<[u8]>) -> Entry {
        let mut entry = Entry::new(Kind::File, path, 0o644);
        entry.content = content.as_ref().to_vec();
        entry
    }

    /// A directory, mode 0755.
    pub fn dir(path: &str) -> Entry {
        Entry::new(Kind::Dir, path, 0o755)
    }

    /// `path -> target`
    pub fn symlink(path: &str, target: &str) -> Entry {
        let mut entry = Entry::new(Kind::Symlink, path, 0o777);
        entry.link = Some(target.to_owned());
        entry
    }

    /// A hardlink at `path` to the earlier entry `target`.
    pub fn hardlink(path: &str, target: &str) -> Entry {
        let mut entry = Entry::new(Kind::Hardlink, path, 0o644);
        entry.link = Some(target.to_owned());
        entry
    }

    pub fn fifo(path: &str) -> Entry {
        Entry::new(Kind::Fifo, path, 0o644)
    }

    pub fn char_device(path: &str, major: u32, minor: u32) -> Entry {
        Entry::new(Kind::CharDevice { major, minor }, path, 0o666)
    }

    pub fn block_device(path: &str, major: u32, minor: u32) -> Entry {
        Entry::new(Kind::BlockDevice { major, minor }, path, 0o660)
    }

    /// The OCI whiteout deleting `path` from the layers below (`dir/.wh.name`).
    pub fn whiteout(path: &str) -> Entry {
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (format!("{dir}/"), name),
            None => (String::new(), path),
        };
        Entry::file(&format!("{dir}.wh.{name}"), b"")
    }

    /// The OCI opaque marker for directory `dir` (`dir/.wh..wh..opq`).
    pub fn opaque(dir: &str) -> Entry {
        Entry::file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    /// A regular file whose name is written as is (`../x`, `/abs`, `a/../../x`).
    pub fn raw_file(name: &str, content: impl AsRef<[u8]>) -> Entry {
        Entry::file(name, content).raw()
    }

    /// A symlink whose name and target are written as they are.
    pub fn raw_symlink(name: &str, target: &str) -> Entry {
        Entry::symlink(name, target).raw()
    }

    /// A hardlink whose name and source are written as they are (`../../etc/passwd`).
    pub fn raw_hardlink(name: &str, target: &str) -> Entry {
        Entry::hardlink(name, target).raw()
    }

    pub fn raw(mut self) -> Entry {
        self.raw = true;
        self
    }

    pub fn mode(mut self, mode: u32) -> Entry {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn mtime(mut self, mtime: u64) -> Entry {
        self.mtime = mtime;
        self
    }

    /// An extended attribute, written as a PAX `SCHILY.xattr.<name>` record.
    pub fn xattr(mut self, name: &str, value: impl AsRef<[u8]>) -> Entry {
        self.xattrs.push((name.to_owned(), value.as_ref().to_vec()));
        self
    }
}

/// One PAX record: "<len> <key>=<value>\n", where <len> counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

fn set_raw_bytes(slot: &mut [u8], bytes: &[u8], what: &str) {
    assert!(
        bytes.len() <= slot.len(),
        "raw {what} {:?} is longer than the {}-byte tar field",
        String::from_utf8_lossy(bytes),
        slot.len()
    );
    slot.fill(0);
    slot[..bytes.len()].copy_from_slice(bytes);
}

/// The uncompressed tar of `entries`, in order, with two zero blocks at the end.
pub fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        if !entry.xattrs.is_empty() {
            let mut data = Vec::new();
            for (name, value) in &entry.xattrs {
                data.extend(pax_record(&format!("SCHILY.xattr.{name}"), value));
            }
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::XHeader);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(entry.mtime);
            let short: String = format!("PaxHeaders/{}", entry.path)
                .chars()
                .take(99)
                .collect();
            set_raw_bytes(&mut header.as_old_mut().name, short.as_bytes(), "name");
            header.set_cksum();
            builder.append(&header, &data[..]).unwrap();
        }
        let mut header = tar::Header::new_gnu();
        let (entry_type, data): (tar::EntryType, &[u8]) = match entry.kind {
            Kind::File => (tar::EntryType::Regular, &entry.content),
            Kind::Dir => (tar::EntryType::Directory, b""),
            Kind::Symlink => (tar::EntryType::Symlink, b""),
            Kind::Hardlink => (tar::EntryType::Link, b""),
            Kind::Fifo => (tar::EntryType::Fifo, b""),
            Kind::CharDevice { .. } => (tar::EntryType::Char, b""),
            Kind::BlockDevice { .. } => (tar::EntryType::Block, b""),
        };
        header.set_entry_type(entry_type);
        header.set_size(data.len() as u64);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(entry.mtime);
        if let Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } = entry.kind {
            header.set_device_major(major).unwrap();
            header.set_device_minor(minor).unwrap();
        }
        let name = if entry.kind == Kind::Dir && !entry.path.ends_with('/') {
            format!("{}/", entry.path)
        } else {
            entry.path.clone()
        };
        if entry.raw {
            set_raw_bytes(&mut header.as_old_mut().name, name.as_bytes(), "name");
            if let Some(link) = &entry.link {
                set_raw_bytes(
                    &mut header.as_old_mut().linkname,
                    link.as_bytes(),
                    "link name",
                );
            }
            header.set_cksum();
            builder.append(&header, data).unwrap();
        } else if let Some(link) = &entry.link {
            builder.append_link(&mut header, &name, link).unwrap();
        } else {
            builder.append_data(&mut header, &name, data).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(tar).unwrap();
                encoder.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
        }
    }

    fn media_type(self, format: ManifestFormat) -> &'static str {
        match (self, format) {
            (Compression::Gzip, ManifestFormat::Docker) => MT_DOCKER_LAYER_GZIP,
            (Compression::Gzip, ManifestFormat::Oci) => MT_OCI_LAYER_GZIP,
            (Compression::Zstd, _) => MT_OCI_LAYER_ZSTD,
            (Compression::None, _) => MT_OCI_LAYER,
        }
    }
}

/// One layer: its tar, how it is compressed, and any deliberate lie about it.
#[derive(Debug, Clone)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub compression: Compression,
    /// Replace the blob (after compression) by this function's output; the digest is
    /// computed over the result (a truncated gzip, a corrupt zstd frame).
    pub mangle: Option<fn(Vec<u8>) -> Vec<u8>>,
    /// Put this diff_id in the config instead of the real one.
    pub diff_id_override: Option<String>,
    /// Add this to the size in the manifest descriptor.
    pub size_delta: i64,
    /// Use this media type in the manifest instead of the right one.
    pub media_type_override: Option<String>,
    /// A blob compressed and digested outside the test process (the Debian fixture, by
    /// `tests/run`); `tar` is then empty.
    pub prebuilt: Option<Prebuilt>,
}

/// A layer whose blob and digests were computed ahead of time.
#[derive(Debug, Clone)]
pub struct Prebuilt {
    pub blob: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
    pub tar_size: u64,
}

impl Layer {
    pub fn new(entries: &[Entry], compression: Compression) -> Layer {
        Layer::from_tar(tar_bytes(entries), compression)
    }

    pub fn from_tar(tar: Vec<u8>, compression: Compression) -> Layer {
        Layer {
            tar,
            compression,
            mangle: None,
            diff_id_override: None,
            size_delta: 0,
            media_type_override: None,
            prebuilt: None,
        }
    }

    /// A layer from a blob compressed and digested elsewhere.
    pub fn prebuilt(prebuilt: Prebuilt, compression: Compression) -> Layer {
        let mut layer = Layer::from_tar(Vec::new(), compression);
        layer.prebuilt = Some(prebuilt);
        layer
    }

    /// The size of the uncompressed tar.
    pub fn tar_size(&self) -> u64 {
        match &self.prebuilt {
            Some(p) => p.tar_size,
            None => self.tar.len() as u64,
        }
    }

    /// The blob as pushed, and its digest.
    pub fn blob_and_digest(&self) -> (Vec<u8>, String) {
        match &self.prebuilt {
            Some(p) => (p.blob.clone(), p.digest.clone()),
            None => {
                let blob = self.blob();
                let digest = sha256(&blob);
                (blob, digest)
            }
        }
    }

    /// The true diff_id (digest of the uncompressed tar).
    pub fn diff_id(&self) -> String {
        if let Some(p) = &self.prebuilt {
            return p.diff_id.clone();
        }
        sha256(&self.tar)
    }

    /// The blob as pushed.
    pub fn blob(&self) -> Vec<u8> {
        let blob = self.compression.compress(&self.tar);
        match self.mangle {
            Some(mangle) => mangle(blob),
            None => blob,
        }
    }
}

/// `os/arch[/variant]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    fn json(&self) -> Value {
        let mut value = json!({"os": self.os, "architecture": self.architecture});
        if let Some(variant) = &self.variant {
            value["variant"] = json!(variant);
        }
        value
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    Docker,
    Oci,
}

/// An image being described.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    pub layers: Vec<Layer>,
    pub format: ManifestFormat,
    pub platform: Platform,
    pub created: String,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
}

/// What was pushed: enough to find everything in the store and in the proxy's counts.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// `127.0.0.1:PORT/<repo>:<tag>` on the registry it was pushed to.
    pub reference: String,
    pub repo: String,
    pub tag: String,
    /// Digest of what the tag points at (the index for a multi-platform image).
    pub digest: String,
    pub config_digest: String,
    /// Per layer, bottom first: (blob digest, true diff_id).
    pub layers: Vec<(String, String)>,
    /// Sum of the uncompressed layer tar sizes.
    pub tar_size: u64,
}

impl ImageBuilder {
    /// An empty image for the host's platform, Docker v2 manifest.
    pub fn new() -> ImageBuilder {
        ImageBuilder {
            layers: Vec::new(),
            format: ManifestFormat::Docker,
            platform: super::host_platform(),
            created: "2024-01-02T03:04:05Z".to_owned(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: vec!["/bin/sh".into()],
        }
    }

    pub fn layer(mut self, layer: Layer) -> ImageBuilder {
        self.layers.push(layer);
        self
    }

    /// A layer from entries.
    pub fn entries(self, entries: &[Entry], compression: Compression) -> ImageBuilder {
        self.layer(Layer::new(entries, compression))
    }

    pub fn format(mut self, format: ManifestFormat) -> ImageBuilder {
        self.format = format;
        self
    }

    pub fn platform(mut self, platform: Platform) -> ImageBuilder {
        self.platform = platform;
        self
    }

    /// The config blob.
    pub fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|l| l.diff_id_override.clone().unwrap_or_else(|| l.diff_id()))
            .collect();
        let mut config = json!({
            "created": self.created,
            "os": self.platform.os,
            "architecture": self.platform.architecture,
            "config": {"Env": self.env, "Cmd": self.cmd},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": self.layers.iter().map(|_| json!({"created": self.created, "created_by": "box tests"})).collect::<Vec<_>>(),
        });
        if let Some(variant) = &self.platform.variant {
            config["variant"] = json!(variant);
        }
        serde_json::to_vec(&config).unwrap()
    }

    /// Push the blobs and the manifest (by digest), without tagging. Returns the manifest
    /// bytes, its media type and the pushed image description (reference left empty).
    fn push_untagged(
        &self,
        registry: &Registry,
        repo: &str,
    ) -> (Vec<u8>, &'static str, PushedImage) {
        let client = Client::new(registry);
        let config = self.config();
        let config_digest = sha256(&config);
        client.put_blob(repo, &config);
        let mut descriptors = Vec::new();
        let mut layers = Vec::new();
        let mut tar_size = 0;
        for layer in &self.layers {
            let (blob, digest) = layer.blob_and_digest();
            client.put_blob_with_digest(repo, &blob, &digest);
            let media_type = layer
                .media_type_override
                .clone()
                .unwrap_or_else(|| layer.compression.media_type(self.format).to_owned());
            descriptors.push(json!({
                "mediaType": media_type,
                "size": blob.len() as i64 + layer.size_delta,
                "digest": digest,
            }));
            tar_size += layer.tar_size();
            layers.push((digest, layer.diff_id()));
        }
        let (manifest_type, config_type) = match self.format {
            ManifestFormat::Docker => (MT_DOCKER_MANIFEST, MT_DOCKER_CONFIG),
            ManifestFormat::Oci => (MT_OCI_MANIFEST, MT_OCI_CONFIG),
        };
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "size": config.len(), "digest": config_digest},
            "layers": descriptors,
        }))
        .unwrap();
        let digest = sha256(&manifest);
        client.put_manifest(repo, &digest, &manifest, manifest_type);
        let pushed = PushedImage {
            reference: String::new(),
            repo: repo.to_owned(),
            tag: String::new(),
            digest,
            config_digest,
            layers,
            tar_size,
        };
        (manifest, manifest_type, pushed)
    }

    /// Push the image and tag it `repo:tag`.
    pub fn push(&self, registry: &Registry, repo: &str, tag: &str) -> PushedImage {
        let (manifest, manifest_type, mut pushed) = self.push_untagged(registry, repo);
        Client::new(registry).put_manifest(repo, tag, &manifest, manifest_type);
        pushed.reference = registry.reference(repo, tag);
        pushed.tag = tag.to_owned();
        pushed
    }
}

impl Default for ImageBuilder {
    fn default() -> Self {
        ImageBuilder::new()
    }
}

/// Push several single-platform images and an index (OCI) or manifest list (Docker) over
/// them, tagged `repo:tag`. Returns the index digest and each platform's pushed image.
pub fn push_index(
    registry: &Registry,
    repo: &str,
    tag: &str,
    images: &[ImageBuilder],
    format: ManifestFormat,
) -> (String, Vec<PushedImage>) {
    let mut manifests = Vec::new();
    let mut pushed_images = Vec::new();
    for image in images {
        let (manifest, manifest_type, mut pushed) = image.push_untagged(registry, repo);
        manifests.push(json!({
            "mediaType": manifest_type,
            "size": manifest.len(),
            "digest": pushed.digest,
            "platform": image.platform.json(),
        }));
        pushed.reference = format!("{}/{repo}@{}", registry.host, pushed.digest);
        pushed_images.push(pushed);
    }
    let index_type = match format {
        ManifestFormat::Docker => MT_DOCKER_LIST,
        ManifestFormat::Oci => MT_OCI_INDEX,
    };
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": index_type,
        "manifests": manifests,
    }))
    .unwrap();
    let digest = sha256(&index);
    Client::new(registry).put_manifest(repo, tag, &index, index_type);
    (digest, pushed_images)
}

/// The pushing side of the distribution API.
struct Client<'a> {
    registry: &'a Registry,
    agent: ureq::Agent,
}

impl<'a> Client<'a> {
    fn new(registry: &'a Registry) -> Client<'a> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(300)))
            .build()
            .into();
        Client { registry, agent }
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.registry.url())
        }
    }

    /// Upload a blob unless the repository already has it.
    fn put_blob(&self, repo: &str, blob: &[u8]) {
        self.put_blob_with_digest(repo, blob, &sha256(blob));
    }

    fn put_blob_with_digest(&self, repo: &str, blob: &[u8], digest: &str) {
        let base = self.registry.url();
        let mut head = self.agent.head(format!("{base}/v2/{repo}/blobs/{digest}"));
        if let Some(auth) = self.registry.push_authorization(repo) {
            head = head.header("Authorization", auth);
        }
        if head.call().is_ok_and(|r| r.status() == 200) {
            return;
        }
        let mut post = self.agent.post(format!("{base}/v2/{repo}/blobs/uploads/"));
        if let Some(auth) = self.registry.push_authorization(repo) {
            post = post.header("Authorization", auth);
        }
        let response = post.send_empty().expect("starting a blob upload");
        assert_eq!(
            response.status(),
            202,
            "POST blob upload to {repo}: {response:?}"
        );
        let location = response
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .expect("upload Location header")
            .to_owned();
        let location = self.absolute(&location);
        let separator = if location.contains('?') { '&' } else { '?' };
        let mut put = self
            .agent
            .put(format!("{location}{separator}digest={digest}"))
            .header("Content-Type", "application/octet-stream");
        if let Some(auth) = self.registry.push_authorization(repo) {
            put = put.header("Authorization", auth);
        }
        let mut response = put.send(blob).expect("uploading a blob");
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, 201, "PUT blob {digest} to {repo}: {body}");
    }

    fn put_manifest(&self, repo: &str, reference: &str, manifest: &[u8], media_type: &str) {
        let mut put = self
            .agent
            .put(format!(
                "{}/v2/{repo}/manifests/{reference}",
                self.registry.url()
            ))
            .header("Content-Type", media_type);
        if let Some(auth) = self.registry.push_authorization(repo) {
            put = put.header("Authorization", auth);
        }
        let mut response = put.send(manifest).expect("pushing a manifest");
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(
            status,
            201,
            "PUT manifest {repo}:{reference} ({media_type}): {body}\n{}",
            String::from_utf8_lossy(manifest)
        );
    }
}
