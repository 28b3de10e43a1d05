//! `box commit NAME IMAGE`: a box becomes an image in the store. The new image is the
//! box's image, its layers unchanged (same blobs, same diff_ids), plus one layer with the
//! box's changes: its overlay upper directory, packed in the user namespace by the store
//! helper ([`crate::image::pack`]: whiteouts, opaque directories, owners as the box's ids,
//! modes, mtimes, xattrs, hard links; a deterministic tar).
//!
//! What box itself put in the box for this user and this host is left out, so that
//! another user on another machine gets a clean box from the image (its first start sets
//! that user up, as for any image):
//! - the user's lines in `/etc/passwd`, `group`, `shadow`, `gshadow` (and their `-`
//!   backups): the image's lines come back; accounts packages added stay;
//! - `/etc/sudoers.d/box-USER`, box's `sudo` stand-in at `/usr/local/bin/sudo` (boxes
//!   without subordinate ids), `/etc/box/` (the setup marker, the CDI mount point list),
//!   `/etc/ld.so.conf.d/00-box-cdi.conf`;
//! - the files box follows from the host or writes for it: `/etc/resolv.conf`,
//!   `/etc/hosts`, `/etc/localtime`, `/etc/timezone`, `/etc/locale.conf`,
//!   `/etc/default/locale` (the image's own come back);
//! - the mount points of the host's directories, sockets and devices (the home, volumes,
//!   `/usr/local/bin/box`, CDI binds, `/dev`, `/sys`, `/proc`) when they are what box made
//!   (an empty directory or file), with the directories box made above them; and `/run`,
//!   `/tmp` entirely;
//! - package-manager caches: the files under `/var/cache/apt`, `/var/lib/apt/lists`,
//!   `/var/cache/dnf`, `/var/cache/libdnf5`, `/var/cache/yum`, `/var/cache/pacman/pkg`,
//!   `/var/cache/apk` and `/var/cache/zypp` (downloaded packages and package lists: stale
//!   anywhere else, as distribution images ship without them).
//!
//! A box without subordinate ids (box's fake root) commits with every file recorded as
//! root's. A running box is refused (`box stop NAME` first): a commit takes the files at
//! rest, and the box's lock is held meanwhile so nothing starts it.
//!
//! The config is the image's own, with the new diff_id, a history entry, `created`, and
//! labels saying how the box was made ([`LABEL_PROVISIONED`] and the others): `box create`
//! from an image labelled provisioned asks for no provisioning run
//! ([`provisioned_image`]). The manifest is an OCI manifest (layer media types of Docker
//! images become their OCI equivalents; the blobs are the same) annotated with
//! `org.opencontainers.image.base.name` and `.base.digest`.
//!
//! Determinism: with `SOURCE_DATE_EPOCH` set, mtimes later than it and `created` are that
//! time, and committing an unchanged box again gives the same image digest; without it,
//! the layer (diff_id and blob) is still the same, and only `created` is the time of the
//! commit.
//!
//! Order of work (nothing lost on failure): the blob is packed into `tmp/`, then unpacked
//! by the store helper's verified unpack into `layers/` (so boxes can be created from the
//! image), then kept in `blobs/`; the config, the manifest and the image record come last.
//! A failure takes back what was added (as a failed pull does). An existing tag is
//! replaced, as podman does; the old manifest stays while boxes use it.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::failure;
use crate::image::helper::{StoreHelper, UnpackRequest};
use crate::image::pack::accounts::Account;
use crate::image::pack::{Omissions, PackRequest};

pub use crate::image::pack::LayerCompression;
use crate::registry::{PlatformExt, Reference, parse_config};
use crate::store::Store;
use crate::store::containers::{ContainerRecord, StorageKind};
use crate::store::images::{ImageRecord, LayerRecord};
use crate::store::provision::Status;
use crate::ui::progress::{human_bytes, human_duration};
use crate::ui::report::notice;

/// The label saying the image needs no provisioning run (`"true"`).
pub const LABEL_PROVISIONED: &str = "box.provisioned";
/// The packages asked for at the box's create (space-separated).
pub const LABEL_PACKAGES: &str = "box.additional-packages";
/// The hooks, as JSON arrays of strings.
pub const LABEL_PRE_INIT_HOOKS: &str = "box.pre-init-hooks";
pub const LABEL_INIT_HOOKS: &str = "box.init-hooks";
/// Which needs the box was provisioned with (`full` or `base`, `--provision-set`).
pub const LABEL_PROVISION_SET: &str = "box.provision-set";
/// The CDI devices asked for (a JSON array), and `--nvidia`/`--no-nvidia`.
pub const LABEL_DEVICES: &str = "box.devices";
pub const LABEL_NVIDIA: &str = "box.nvidia";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Package-manager caches: the files beneath are left out of a commit.
const CACHES: &[&str] = &[
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/cache/dnf",
    "var/cache/libdnf5",
    "var/cache/yum",
    "var/cache/pacman/pkg",
    "var/cache/apk",
    "var/cache/zypp",
];

/// Files box follows from the host or writes for it: the image's own come back.
const HOST_FILES: &[&str] = &[
    "etc/resolv.conf",
    "etc/hosts",
    "etc/localtime",
    "etc/timezone",
    "etc/locale.conf",
    "etc/default/locale",
];

/// What to commit, and as what.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    /// The box.
    pub name: String,
    /// The new image's reference, as the user wrote it.
    pub image: String,
    pub compression: LayerCompression,
}

/// What a commit made.
#[derive(Debug, Clone)]
pub struct Committed {
    pub reference: String,
    pub manifest_digest: Digest,
}

/// Commit box `options.name` as the image `options.image` (see the module doc).
pub fn commit(ctx: &Context, options: &CommitOptions) -> Result<Committed> {
    let started = Instant::now();
    let name = &options.name;
    let reference = Reference::parse(&options.image)?;
    if reference.digest.is_some() {
        bail!(failure(
            format!(
                "`{}` names a digest; a commit makes a new image, with a tag",
                options.image
            ),
            format!(
                "give a name with a tag, e.g. `box commit {name} {}:latest`",
                reference.name()
            ),
        ));
    }
    let canonical = reference.canonical();
    let clamp = source_date_epoch()?;
    let store = Store::open(&ctx.dirs.store)?;
    let record = store.container(name)?;
    if record.storage == StorageKind::Copy {
        bail!(failure(
            format!(
                "box `{name}` keeps its files as a full copy (the kernel refused overlayfs), so its changes cannot be told from its image's"
            ),
            "`box commit` needs a box on overlayfs",
        ));
    }
    if record.provision.as_ref().is_some_and(|p| p.is_pending()) {
        bail!(failure(
            format!(
                "box `{name}` is not provisioned yet (its provisioning was interrupted or failed)"
            ),
            format!("`box enter {name}` resumes it; commit once it is done"),
        ));
    }
    let mapping = ctx.id_mapping()?;
    store.check_id_mapping(mapping)?;
    let store_lock = store.lock(false)?;
    // Held to the end: nobody starts the box while its files are read.
    let _box_lock = store.box_lock(name)?;
    if !crate::runtime::state::status(ctx, &store, name).is_stopped() {
        bail!(failure(
            format!("box `{name}` is running"),
            format!("stop it first (`box stop {name}`): a commit takes the box's files at rest"),
        ));
    }
    let base = Base::read(&store, &record)?;
    let created = crate::store::format_time(clamp.unwrap_or_else(crate::store::now));

    let request = PackRequest {
        upper: store.container_upper(name),
        lowers: record
            .layers
            .iter()
            .rev()
            .map(|l| store.layer_dir(l))
            .collect(),
        blob: store.staging_path("commit"),
        compression: options.compression,
        clamp_mtime: clamp,
        omit: omissions(ctx, &store, &record)?,
        account: Some(account(ctx)?),
        all_root: !mapping.has_root(),
        blob_owner: (ctx.uid, ctx.gid),
        label: format!("box `{name}`"),
    };
    let mut added_layers: Vec<Digest> = Vec::new();
    let mut added_blobs: Vec<Digest> = Vec::new();
    let mut helper = StoreHelper::start(ctx)?;
    let outcome = (|| -> Result<ImageRecord> {
        let packed = helper.pack(&request)?;
        let layer_outcome = (|| {
            let _layer_lock = store.lock_named(&format!("layer-{}", packed.diff_id.hex()))?;
            if !store.has_layer(&packed.diff_id) {
                helper.unpack(&UnpackRequest {
                    blob: request.blob.clone(),
                    media_type: options.compression.media_type().to_owned(),
                    diff_id: packed.diff_id.clone(),
                    staging: store.staging_path(&format!("layer-{}", packed.diff_id.short())),
                    dest: store.layer_dir(&packed.diff_id),
                    info: store.layer_info_path(&packed.diff_id),
                    label: format!("the new layer of box `{name}`"),
                })?;
                added_layers.push(packed.diff_id.clone());
            }
            if store.adopt_blob(&packed.digest, &request.blob)? {
                added_blobs.push(packed.digest.clone());
            }
            anyhow::Ok(())
        })();
        if layer_outcome.is_err() {
            let _ = std::fs::remove_file(&request.blob);
        }
        layer_outcome?;
        if !packed.skipped.is_empty() {
            notice(format!(
                "left out of the commit: {} socket(s), device node(s) or names starting with `.wh.`, which an image cannot hold ({})",
                packed.skipped.len(),
                packed
                    .skipped
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let new_layer = LayerRecord {
            diff_id: packed.diff_id.clone(),
            digest: packed.digest.clone(),
            media_type: options.compression.media_type().to_owned(),
            size: packed.size,
            unpacked_size: packed.tar_bytes,
        };
        let config_bytes = base.config(&new_layer, &created, &labels(&record), name)?;
        let config_digest = Digest::of(&config_bytes);
        let manifest_bytes = base.manifest(&config_digest, config_bytes.len(), &new_layer);
        let manifest_digest = Digest::of(&manifest_bytes);
        for (digest, bytes) in [
            (&config_digest, &config_bytes),
            (&manifest_digest, &manifest_bytes),
        ] {
            if store.put_blob(digest, bytes)? {
                added_blobs.push(digest.clone());
            }
        }
        let config = parse_config(&config_bytes).context("reading the new image's config")?;
        let mut layers = base.layers(&store);
        layers.push(new_layer);
        let image = ImageRecord {
            reference: canonical.clone(),
            manifest_digest,
            index_digest: None,
            config_digest,
            platform: config.platform().display().to_string(),
            layers,
            created: Some(created.clone()),
            pulled: crate::store::now(),
            config: config.runtime(),
        };
        store.put_image(&image)?;
        Ok(image)
    })();
    let finished = helper.finish();
    let image = match outcome.and_then(|image| finished.map(|()| image)) {
        Ok(image) => image,
        Err(error) => {
            drop(store_lock);
            super::pull::roll_back(ctx, &store, &added_layers, &added_blobs);
            let error = error.context(format!("committing box `{name}` as {canonical}"));
            // The helper's errors arrive as text (`sys::protocol::Failure`): its full disk
            // is known by its message.
            if crate::error::is_out_of_space(&error)
                || crate::error::message(&error).contains("no space left on device")
            {
                return Err(error.context(crate::error::Hint(
                    "free some space (`box rmi` unused images, `box rm` old boxes) and commit again"
                        .into(),
                )));
            }
            return Err(error);
        }
    };
    let layer = image.layers.last().expect("the new layer");
    notice(format!(
        "committed box `{name}` as {canonical} ({}, {} layers, the new one {} compressed, {} unpacked) in {}",
        image.manifest_digest,
        image.layers.len(),
        human_bytes(layer.size),
        human_bytes(layer.unpacked_size),
        human_duration(started.elapsed())
    ));
    Ok(Committed {
        reference: canonical,
        manifest_digest: image.manifest_digest,
    })
}

/// `SOURCE_DATE_EPOCH`, when set (reproducible-builds.org's convention).
fn source_date_epoch() -> Result<Option<u64>> {
    match crate::sys::env::text("SOURCE_DATE_EPOCH") {
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => text.trim().parse::<u64>().map(Some).map_err(|_| {
            failure(
                format!("SOURCE_DATE_EPOCH is `{text}`, not a number of seconds since 1970"),
                "set it to a Unix time (e.g. `SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)`) or unset it",
            )
        }),
        None => Ok(None),
    }
}

/// The host user, as the box's setup wrote them into it.
fn account(ctx: &Context) -> Result<Account> {
    let user = ctx.user()?;
    let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(user.gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| user.name.clone());
    Ok(Account {
        user: user.name.clone(),
        uid: user.uid,
        group,
        gid: user.gid,
    })
}

/// What box put in box `record` for this user and host (see the module doc).
fn omissions(ctx: &Context, store: &Store, record: &ContainerRecord) -> Result<Omissions> {
    use crate::runtime::plan::FileOp;
    let user = ctx.user()?;
    // The host as it is now, without the CDI specs: the CDI binds of the box's last start
    // are listed in the box (below), and a device gone since must not stop a commit.
    let facts = crate::runtime::plan::Facts {
        host: crate::host::discover(),
        group: account(ctx)?.group,
        ..Default::default()
    };
    let plan = crate::runtime::plan::build(
        record,
        &crate::runtime::plan::PlanInputs {
            store,
            user,
            mapping: ctx.id_mapping()?,
            facts: &facts,
            instance: String::new(),
            host_exec_dir: Some(crate::host_exec::host_dir(&crate::runtime::state::box_dir(
                ctx,
                &record.name,
            ))),
        },
    );
    let relative =
        |path: &std::path::Path| path.to_string_lossy().trim_start_matches('/').to_owned();
    let mut mount_points: Vec<String> = plan.mounts.iter().map(|m| relative(&m.target)).collect();
    // The CDI binds' mount points of the box's last start, as its record keeps them.
    mount_points.extend(record.device_mount_points.iter().map(|p| relative(p)));
    let mut paths: Vec<String> = HOST_FILES.iter().map(|p| (*p).to_owned()).collect();
    paths.push(format!("etc/sudoers.d/box-{}", user.name));
    paths.push(relative(crate::runtime::devices::LD_SO_CONF.as_ref()));
    for file in &plan.files {
        match &file.op {
            FileOp::FollowHost { path, .. } | FileOp::XauthorityCopy { path, .. } => {
                paths.push(relative(path))
            }
            _ => {}
        }
    }
    mount_points.retain(|p| !p.is_empty());
    paths.sort();
    paths.dedup();
    mount_points.sort();
    mount_points.dedup();
    Ok(Omissions {
        trees: vec!["run".into(), "tmp".into(), "etc/box".into()],
        paths,
        mount_points,
        written_by_box: vec![(
            relative(crate::fakeroot::sudo::SHIM_PATH.as_ref()),
            crate::fakeroot::sudo::SHIM_START.to_owned(),
        )],
        caches: CACHES.iter().map(|c| (*c).to_owned()).collect(),
    })
}

/// The labels saying how box `record` was made.
fn labels(record: &ContainerRecord) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let provisioned = record
        .provision
        .as_ref()
        .is_some_and(|p| p.status != Status::Pending);
    labels.insert(LABEL_PROVISIONED.to_owned(), provisioned.to_string());
    if let Some(p) = &record.provision {
        let set = if p.set.is_full() { "full" } else { "base" };
        labels.insert(LABEL_PROVISION_SET.to_owned(), set.to_owned());
        if !p.additional_packages.is_empty() {
            labels.insert(LABEL_PACKAGES.to_owned(), p.additional_packages.join(" "));
        }
        for (label, hooks) in [
            (LABEL_PRE_INIT_HOOKS, &p.pre_init_hooks),
            (LABEL_INIT_HOOKS, &p.init_hooks),
        ] {
            if !hooks.is_empty() {
                labels.insert(label.to_owned(), Value::from(hooks.clone()).to_string());
            }
        }
    }
    if !record.devices.is_empty() {
        labels.insert(
            LABEL_DEVICES.to_owned(),
            Value::from(record.devices.clone()).to_string(),
        );
    }
    if let Some(nvidia) = record.nvidia {
        labels.insert(LABEL_NVIDIA.to_owned(), nvidia.to_string());
    }
    labels
}

/// What an image labelled by a commit says its provisioning was: the packages and hooks
/// it was made with, when it is labelled provisioned; `None` otherwise (or when its
/// config is not in the store).
pub fn provisioned_image(store: &Store, image: &ImageRecord) -> Option<MadeWith> {
    let bytes = std::fs::read(store.blob_path(&image.config_digest)).ok()?;
    let config: Value = serde_json::from_slice(&bytes).ok()?;
    let labels = config.get("config")?.get("Labels")?.as_object()?;
    let label = |name: &str| labels.get(name).and_then(Value::as_str);
    if label(LABEL_PROVISIONED) != Some("true") {
        return None;
    }
    let hooks = |name: &str| -> Vec<String> {
        label(name)
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    };
    Some(MadeWith {
        packages: label(LABEL_PACKAGES)
            .map(|p| p.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        pre_init_hooks: hooks(LABEL_PRE_INIT_HOOKS),
        init_hooks: hooks(LABEL_INIT_HOOKS),
        // Images labelled before the sets existed: the base set is what is sure.
        full_set: label(LABEL_PROVISION_SET) == Some("full"),
    })
}

/// What a provisioned image was made with (its labels).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MadeWith {
    pub packages: Vec<String>,
    pub pre_init_hooks: Vec<String>,
    pub init_hooks: Vec<String>,
    /// Whether it was provisioned with the full set of needs (desktop ones included).
    pub full_set: bool,
}

impl MadeWith {
    /// Whether a box asking for `wanted` needs nothing this image was not made with.
    pub fn covers(&self, wanted: &crate::store::provision::Provisioning) -> bool {
        (self.full_set || !wanted.set.is_full())
            && wanted
                .additional_packages
                .iter()
                .all(|p| self.packages.contains(p))
            && wanted
                .pre_init_hooks
                .iter()
                .all(|h| self.pre_init_hooks.contains(h))
            && wanted
                .init_hooks
                .iter()
                .all(|h| self.init_hooks.contains(h))
    }
}

/// The box's image as the store has it: its manifest and config.
struct Base {
    reference: String,
    manifest_digest: Digest,
    manifest: Value,
    config: Value,
    diff_ids: Vec<Digest>,
}

impl Base {
    fn read(store: &Store, record: &ContainerRecord) -> Result<Base> {
        let missing = |what: &str, digest: &Digest| {
            failure(
                format!(
                    "the {what} {digest} of image {} (box `{}`'s) is not in the store",
                    record.image, record.name
                ),
                format!(
                    "pull the image again (`box pull {}`) if it still has that digest; boxes made before box kept manifests cannot be committed otherwise",
                    record.image
                ),
            )
        };
        let manifest_bytes = std::fs::read(store.blob_path(&record.image_digest))
            .map_err(|_| missing("manifest", &record.image_digest))?;
        let manifest: Value = serde_json::from_slice(&manifest_bytes)
            .with_context(|| format!("reading the manifest {}", record.image_digest))?;
        let config_digest = manifest
            .get("config")
            .and_then(|c| c.get("digest"))
            .and_then(Value::as_str)
            .and_then(|d| Digest::parse(d).ok())
            .with_context(|| format!("the manifest {} names no config", record.image_digest))?;
        let config_bytes = std::fs::read(store.blob_path(&config_digest))
            .map_err(|_| missing("config", &config_digest))?;
        if Digest::of(&config_bytes) != config_digest
            || Digest::of(&manifest_bytes) != record.image_digest
        {
            bail!(failure(
                format!(
                    "the stored manifest or config of image {} does not match its digest",
                    record.image
                ),
                format!("pull the image again: `box pull {}`", record.image),
            ));
        }
        let parsed = parse_config(&config_bytes)
            .with_context(|| format!("reading the config {config_digest} of {}", record.image))?;
        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if parsed.diff_ids != record.layers || layers != record.layers.len() {
            bail!(failure(
                format!(
                    "box `{}` has {} layers, but its image's manifest and config list {layers} and {}",
                    record.name,
                    record.layers.len(),
                    parsed.diff_ids.len()
                ),
                "the box's record or the store was changed by hand; the box cannot be committed",
            ));
        }
        Ok(Base {
            reference: record.image.clone(),
            manifest_digest: record.image_digest.clone(),
            manifest,
            config: serde_json::from_slice(&config_bytes)?,
            diff_ids: parsed.diff_ids,
        })
    }

    /// The base's layer descriptors, with OCI media types.
    fn descriptors(&self) -> Vec<Value> {
        self.manifest["layers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut layer| {
                if let Some(media_type) = layer.get("mediaType").and_then(Value::as_str) {
                    layer["mediaType"] = Value::from(oci_media_type(media_type));
                }
                layer
            })
            .collect()
    }

    /// The base's layers as an image record lists them.
    fn layers(&self, store: &Store) -> Vec<LayerRecord> {
        self.descriptors()
            .iter()
            .zip(&self.diff_ids)
            .map(|(layer, diff_id)| LayerRecord {
                diff_id: diff_id.clone(),
                digest: layer["digest"]
                    .as_str()
                    .and_then(|d| Digest::parse(d).ok())
                    .unwrap_or_else(|| diff_id.clone()),
                media_type: layer["mediaType"].as_str().unwrap_or_default().to_owned(),
                size: layer["size"].as_u64().unwrap_or(0),
                unpacked_size: store.layer_size(diff_id).unwrap_or(0),
            })
            .collect()
    }

    /// The new config: the base's, with the new layer, its history entry, `created` and
    /// the labels (keys sorted by serde_json: the same inputs give the same bytes).
    fn config(
        &self,
        layer: &LayerRecord,
        created: &str,
        labels: &BTreeMap<String, String>,
        name: &str,
    ) -> Result<Vec<u8>> {
        let mut config = self.config.clone();
        let object = config
            .as_object_mut()
            .context("the image config is not an object")?;
        object.insert("created".into(), Value::from(created));
        let diff_ids: Vec<Value> = self
            .diff_ids
            .iter()
            .chain(std::iter::once(&layer.diff_id))
            .map(|d| Value::from(d.as_str()))
            .collect();
        object.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        // A history that is there counts the layers: it gets the new one's entry.
        if let Some(history) = object.get_mut("history").and_then(Value::as_array_mut) {
            history.push(json!({
                "created": created,
                "created_by": format!("box commit {name}"),
                "comment": "the changes of a box",
            }));
        }
        let settings = object.entry("config").or_insert_with(|| json!({}));
        if settings.is_null() {
            *settings = json!({});
        }
        let settings = settings
            .as_object_mut()
            .context("the image config's `config` is not an object")?;
        let existing = settings.entry("Labels").or_insert_with(|| json!({}));
        if existing.is_null() {
            *existing = json!({});
        }
        let existing = existing
            .as_object_mut()
            .context("the image's labels are not an object")?;
        for (key, value) in labels {
            existing.insert(key.clone(), Value::from(value.as_str()));
        }
        Ok(serde_json::to_vec(&config)?)
    }

    /// The new manifest.
    fn manifest(&self, config: &Digest, config_size: usize, layer: &LayerRecord) -> Vec<u8> {
        let mut layers = self.descriptors();
        layers.push(json!({
            "mediaType": layer.media_type,
            "digest": layer.digest.as_str(),
            "size": layer.size,
        }));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.as_str(), "size": config_size},
            "layers": layers,
            "annotations": {
                "org.opencontainers.image.base.name": self.reference,
                "org.opencontainers.image.base.digest": self.manifest_digest.as_str(),
            },
        });
        serde_json::to_vec(&manifest).expect("a JSON value serializes")
    }
}

/// The OCI media type of a layer of a Docker image (the same bytes).
fn oci_media_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.foreign.diff.tar" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar"
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::provision::Provisioning;

    #[test]
    fn docker_layer_types_become_oci_ones() {
        assert_eq!(
            oci_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            oci_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }

    #[test]
    fn an_image_made_with_what_is_asked_covers_it() {
        use crate::settings::config::NeedSet;
        let made = MadeWith {
            packages: vec!["vim".into(), "bc".into()],
            pre_init_hooks: vec![],
            init_hooks: vec!["touch /x".into()],
            full_set: true,
        };
        let wanted = |packages: &[&str], init: &[&str]| Provisioning {
            status: Status::Pending,
            additional_packages: packages.iter().map(|p| (*p).to_owned()).collect(),
            pre_init_hooks: vec![],
            init_hooks: init.iter().map(|h| (*h).to_owned()).collect(),
            set: NeedSet::Full,
        };
        assert!(made.covers(&wanted(&[], &[])));
        assert!(made.covers(&wanted(&["bc"], &["touch /x"])));
        assert!(!made.covers(&wanted(&["figlet"], &[])));
        assert!(!made.covers(&wanted(&[], &["echo"])));
        // An image provisioned with the base set lacks the desktop needs a full box wants.
        let base = MadeWith {
            full_set: false,
            ..made.clone()
        };
        assert!(!base.covers(&wanted(&[], &[])));
        let base_wanted = Provisioning {
            set: NeedSet::Base,
            ..wanted(&[], &[])
        };
        assert!(base.covers(&base_wanted));
        assert!(made.covers(&base_wanted));
    }
}
