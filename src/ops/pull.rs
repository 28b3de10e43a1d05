//! Pulling an image: registry → verified blobs → layers unpacked in the user namespace →
//! image record.
//!
//! Order of work, and why:
//! 0. the registries configuration (see [`crate::registry::registries_conf`]) says what
//!    the name means (an alias, the search registries for a short name) and where to ask
//!    (mirrors first, then the registry's location); the first source that serves the
//!    manifest serves the whole pull, and a failing mirror is a notice, not an error.
//!    The image is recorded under the name the user asked for, resolved: a mirror or a
//!    rewrite is transport only;
//! 1. one manifest request; if the store already has this exact manifest (or index) for
//!    the reference and all its layers, stop: an up-to-date pull costs one request;
//! 2. resolve an index to the wanted platform, fetch and verify the config, check every
//!    layer's media type *before* downloading anything;
//! 3. download the missing layers in parallel (a few std threads; this is the only
//!    multi-threaded part of box and never runs on the enter/run path) into `tmp/`, each
//!    verified against its size and digest, while one store helper in the user namespace
//!    unpacks finished downloads (verifying the diff_id) and renames them into `layers/`;
//! 4. only then write the manifest, config and image record.
//!
//! Invariants: the image record is written last, so an interrupted or failed pull never
//! leaves a half-registered image; layers already complete stay (they are verified,
//! content-addressed, and make the next attempt faster). Each layer is unpacked by one
//! process at a time (a per-layer lock), so concurrent pulls of images sharing layers
//! neither duplicate work nor corrupt the store. The store lock is held shared, so
//! `rmi`'s garbage collection never removes a layer a pull is about to reference.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::{HintExt, failure};
use crate::image::Compression;
use crate::image::helper::{StoreHelper, UnpackRequest};
use crate::registry::registries_conf::{RegistriesConf, Resolution};
use crate::registry::retry::Policy;
use crate::registry::{
    Client, ClientOptions, Descriptor, FetchedManifest, Manifest, Platform, PlatformExt, Reference,
    check_image_platform, parse_config, parse_manifest, select_platform,
};
use crate::store::images::{ImageRecord, LayerRecord};
use crate::store::{Lock, Store, now};
use crate::sys::idmap::IdMapping;
use crate::ui::progress::{Progress, human_bytes, human_duration};
use crate::ui::report::{notice, warn};

/// How many layers download at once.
const PARALLEL_DOWNLOADS: usize = 4;

/// Pull `reference` (as the user typed it) into the store, with progress on a terminal.
/// Returns the image record once every layer is in place.
pub fn pull(ctx: &Context, reference: &str, platform: Option<&str>) -> Result<ImageRecord> {
    let started = Instant::now();
    let registries = RegistriesConf::from_env()?;
    let resolution = registries.resolve(reference)?;
    // A blocked or unrewritable name fails before the store is touched.
    if let [only] = resolution.candidates().as_slice() {
        registries.pull_sources(only)?;
    }
    let explicit_platform = platform.is_some();
    let platform = match platform {
        Some(text) => Platform::parse(text)?,
        None => Platform::host(),
    };
    let store = Store::open(&ctx.dirs.store)?;
    let mapping = ctx.id_mapping()?;
    store.check_id_mapping(mapping)?;
    ctx.explain_id_mapping_once();
    let store_lock = store.lock(false)?;

    let Located {
        reference,
        client,
        top,
        mirror,
    } = locate(ctx, registries, &resolution)?;
    let canonical = reference.canonical();

    if let Some(existing) = store.image(&canonical)? {
        let same_manifest = existing.manifest_digest == top.digest
            || existing.index_digest.as_ref() == Some(&top.digest);
        let same_platform =
            existing.index_digest.is_none() || existing.platform == platform.display().to_string();
        if same_manifest
            && same_platform
            && existing.layers.iter().all(|l| store.has_layer(&l.diff_id))
        {
            notice(format!(
                "{canonical} is up to date ({})",
                existing.manifest_digest
            ));
            return Ok(existing);
        }
    }

    let (manifest, index) = match parse_manifest(&top.bytes, &top.media_type)
        .with_context(|| format!("reading the manifest of {canonical}"))?
    {
        Manifest::Index(index) => {
            let chosen = select_platform(index.manifests(), &platform, &canonical)?;
            let manifest = client.get_manifest(chosen.digest().as_ref())?;
            (manifest, Some(top))
        }
        Manifest::Image(_) => (top, None),
    };
    let Manifest::Image(image) = parse_manifest(&manifest.bytes, &manifest.media_type)
        .with_context(|| format!("reading the manifest {} of {canonical}", manifest.digest))?
    else {
        bail!(failure(
            format!(
                "the index of {canonical} points at another index ({})",
                manifest.digest
            ),
            "box follows one level of image index; this image is not supported",
        ));
    };
    // parse_manifest checked that every digest in the manifest is sha256.
    let config_digest = Digest::try_from(image.config().digest())?;
    let config_bytes = client
        .get_blob(image.config())
        .with_context(|| format!("fetching the config of {canonical}"))?;
    let config = parse_config(&config_bytes)
        .with_context(|| format!("reading the config {config_digest} of {canonical}"))?;
    let image_platform = config.platform();
    if index.is_none() {
        check_image_platform(&image_platform, &platform, explicit_platform, &canonical)?;
    }
    if config.diff_ids.len() != image.layers().len() {
        bail!(failure(
            format!(
                "the manifest of {canonical} lists {} layers but its config lists {} diff_ids",
                image.layers().len(),
                config.diff_ids.len()
            ),
            "the image is malformed; ask its publisher to rebuild it",
        ));
    }
    // Refuse unknown layer formats before downloading anything.
    for layer in image.layers() {
        Compression::from_media_type(layer.media_type().as_ref())
            .with_context(|| format!("layer {} of {canonical}", layer.digest()))?;
    }

    let layers: Vec<Layer> = image
        .layers()
        .iter()
        .zip(&config.diff_ids)
        .map(|(descriptor, diff_id)| {
            Ok(Layer {
                digest: Digest::try_from(descriptor.digest())?,
                descriptor: descriptor.clone(),
                diff_id: diff_id.clone(),
            })
        })
        .collect::<Result<_>>()?;
    // What this pull adds, so a failure can take it back out.
    let mut added_layers: Vec<Digest> = Vec::new();
    let mut added_blobs: Vec<Digest> = Vec::new();
    let outcome = (|| -> Result<ImageRecord> {
        let stats = fetch_layers(
            ctx,
            &store,
            &client,
            &canonical,
            &layers,
            &mut added_layers,
            &mut added_blobs,
        )?;
        let blobs = [
            Some((&manifest.digest, &manifest.bytes)),
            index.as_ref().map(|i| (&i.digest, &i.bytes)),
            Some((&config_digest, &config_bytes)),
        ];
        for (digest, bytes) in blobs.into_iter().flatten() {
            if store.put_blob(digest, bytes)? {
                added_blobs.push(digest.clone());
            }
        }
        let record = ImageRecord {
            reference: canonical.clone(),
            manifest_digest: manifest.digest.clone(),
            index_digest: index.as_ref().map(|i| i.digest.clone()),
            config_digest: config_digest.clone(),
            platform: if index.is_some() {
                platform.display().to_string()
            } else {
                image_platform.display().to_string()
            },
            layers: layers
                .iter()
                .zip(&stats)
                .map(|(layer, unpacked)| LayerRecord {
                    diff_id: layer.diff_id.clone(),
                    digest: layer.digest.clone(),
                    media_type: layer.descriptor.media_type().to_string(),
                    size: layer.descriptor.size(),
                    unpacked_size: *unpacked,
                })
                .collect(),
            created: config.created().map(str::to_owned),
            pulled: now(),
            config: config.runtime(),
        };
        store.put_image(&record)?;
        Ok(record)
    })();
    let record = match outcome {
        Ok(done) => done,
        Err(error) => {
            drop(store_lock);
            roll_back(ctx, &store, &added_layers, &added_blobs);
            return Err(error);
        }
    };
    let downloaded: u64 = layers
        .iter()
        .filter(|layer| added_layers.contains(&layer.diff_id))
        .map(|layer| layer.descriptor.size())
        .sum();
    notice(format!(
        "pulled {canonical}{} ({}, {}, {} downloaded) in {}",
        mirror
            .map(|m| format!(" from mirror {m}"))
            .unwrap_or_default(),
        record.manifest_digest,
        layer_count(record.layers.len()),
        human_bytes(downloaded),
        human_duration(started.elapsed())
    ));
    Ok(record)
}

/// The record of `reference` (as the user typed it; a short name as the registries
/// configuration resolves it, each candidate in order) if it is already in the store.
pub fn find_local(ctx: &Context, reference: &str) -> Result<Option<ImageRecord>> {
    let candidates = RegistriesConf::from_env()?.resolve(reference)?.candidates();
    let store = Store::at(&ctx.dirs.store);
    for candidate in candidates {
        if let Some(record) = store.image(&candidate.canonical())?
            && record.layers.iter().all(|l| store.has_layer(&l.diff_id))
        {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// Where an image was found: the reference it is recorded under, the client of the
/// source that served its manifest, that manifest, and the mirror's registry when a
/// mirror served it.
struct Located {
    reference: Reference,
    client: Client,
    top: FetchedManifest,
    mirror: Option<String>,
}

/// Ask each candidate of `resolution` in order, and for each, its sources (mirrors, then
/// the registry's location) in order, for the manifest. A failing mirror, and a failing
/// search candidate when more follow, are notices; the last failure is the error.
fn locate(ctx: &Context, registries: &RegistriesConf, resolution: &Resolution) -> Result<Located> {
    let candidates = resolution.candidates();
    let mut failed: Vec<String> = Vec::new();
    for (index, logical) in candidates.iter().enumerate() {
        let last_candidate = index + 1 == candidates.len();
        let outcome = (|| -> Result<Located> {
            let sources = registries.pull_sources(logical)?;
            let mut sources = sources.iter().peekable();
            while let Some(source) = sources.next() {
                let options = ClientOptions {
                    insecure: source.insecure,
                    retry: if source.mirror {
                        Policy::MIRROR
                    } else {
                        Policy::REGISTRY
                    },
                    ..ClientOptions::from_env()
                };
                let attempt = Client::with_options(&source.reference, ctx.config()?, options)
                    .and_then(|client| {
                        let top = client.get_manifest(&source.reference.tag_or_digest())?;
                        Ok((client, top))
                    });
                match attempt {
                    Ok((client, top)) => {
                        return Ok(Located {
                            reference: logical.clone(),
                            // The mirror chosen, its blobs get the usual retries.
                            client: client.with_retry(Policy::REGISTRY),
                            top,
                            mirror: source.mirror.then(|| source.reference.registry.clone()),
                        });
                    }
                    Err(error) if source.mirror => {
                        let next = sources
                            .peek()
                            .map_or_else(String::new, |n| n.reference.name());
                        notice(format!(
                            "mirror {} failed for {logical} ({}); trying {next}",
                            source.reference.name(),
                            crate::error::message(&error)
                        ));
                    }
                    Err(error) => return Err(error),
                }
            }
            unreachable!("the sources end with the registry itself")
        })();
        match outcome {
            Ok(located) => return Ok(located),
            Err(error) if !last_candidate => {
                notice(format!(
                    "{logical}: {}; trying the next search registry",
                    crate::error::message(&error)
                ));
                failed.push(logical.canonical());
            }
            Err(error) => {
                return match resolution {
                    Resolution::Search { origin, .. } if !failed.is_empty() => Err(error).context(
                        format!(
                            "no search registry has it (tried {} and {}; unqualified-search-registries of {origin})",
                            failed.join(", "),
                            logical.canonical()
                        ),
                    ),
                    _ => Err(error),
                };
            }
        }
    }
    unreachable!("a resolution has at least one candidate")
}

/// "1 layer", "3 layers".
fn layer_count(n: usize) -> String {
    format!("{n} layer{}", if n == 1 { "" } else { "s" })
}

/// One layer of the image being pulled.
struct Layer {
    descriptor: Descriptor,
    /// The blob's digest (sha256, as parse_manifest checked).
    digest: Digest,
    /// The digest of the uncompressed tar, from the config.
    diff_id: Digest,
}

/// Take back what a failed pull (or commit) added (layers and blobs no record refers
/// to), so a failed pull leaves the store as it was. Only done when no other box process holds
/// the store: a concurrent pull may be about to refer to a layer we added; then the
/// layers stay (verified, reusable) until a later `box rmi` collects them.
pub(crate) fn roll_back(ctx: &Context, store: &Store, layers: &[Digest], blobs: &[Digest]) {
    if layers.is_empty() && blobs.is_empty() {
        return;
    }
    let Ok(Some(_lock)) = store.try_lock_exclusive() else {
        return;
    };
    let Ok(unused) = store.unreferenced() else {
        return;
    };
    for blob in blobs {
        let path = store.blob_path(blob);
        if unused.blobs.contains(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
    let doomed: Vec<_> = layers
        .iter()
        .filter(|l| unused.layers.contains(&store.layer_dir(l)))
        .collect();
    if !doomed.is_empty() {
        let removed = StoreHelper::start(ctx).and_then(|mut helper| {
            for layer in &doomed {
                helper.remove(&store.layer_dir(layer))?;
            }
            helper.finish()
        });
        if let Err(err) = removed {
            warn(format!(
                "could not take back the layers of the failed pull: {err:#}"
            ));
            // A record means a layer: the records stay with them.
            return;
        }
    }
    for layer in layers {
        let path = store.layer_info_path(layer);
        if unused.layer_records.contains(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// One finished download, handed from a download thread to the unpacking thread.
enum Downloaded {
    /// The blob is at `path`; `lock` is the layer's lock, held until it is unpacked.
    Blob {
        index: usize,
        path: PathBuf,
        lock: Lock,
    },
    /// Another pull unpacked this layer while we waited for its lock.
    AlreadyThere {
        index: usize,
    },
    Failed {
        error: anyhow::Error,
    },
}

/// Make every layer present in the store. Returns each layer's unpacked size (for a
/// layer already there, from its own record, else from an image record that lists it).
fn fetch_layers(
    ctx: &Context,
    store: &Store,
    client: &Client,
    canonical: &str,
    layers: &[Layer],
    added: &mut Vec<Digest>,
    added_blobs: &mut Vec<Digest>,
) -> Result<Vec<u64>> {
    let mut sizes = vec![0u64; layers.len()];
    // Layers unpacked by a box that wrote no layer records: their size is known only
    // from the image records that list them.
    let known: Vec<LayerRecord> = store
        .images()
        .unwrap_or_default()
        .into_iter()
        .flat_map(|r| r.layers)
        .collect();
    let size_of = |diff_id: &Digest| {
        store.layer_size(diff_id).unwrap_or_else(|| {
            known
                .iter()
                .find(|l| &l.diff_id == diff_id && l.unpacked_size > 0)
                .map_or(0, |l| l.unpacked_size)
        })
    };
    let mut missing = VecDeque::new();
    for (index, layer) in layers.iter().enumerate() {
        if store.has_layer(&layer.diff_id) {
            sizes[index] = size_of(&layer.diff_id);
        } else {
            missing.push_back(index);
        }
    }
    let leftovers = store.clean_tmp();
    if missing.is_empty() && leftovers.is_empty() {
        return Ok(sizes);
    }

    let mut helper = StoreHelper::start(ctx)?;
    for leftover in &leftovers {
        // A staging directory a live helper still holds locked is not debris, whatever
        // the pid in its name says.
        if let Err(err) = helper.remove_debris(leftover) {
            warn(format!(
                "could not remove the leftover {}: {err:#}",
                leftover.display()
            ));
        }
    }
    if missing.is_empty() {
        helper.finish()?;
        return Ok(sizes);
    }

    let total: u64 = missing.iter().map(|&i| layers[i].descriptor.size()).sum();
    let progress = Progress::new("total", total);
    crate::ui::report::line(format!(
        "pulling {canonical}: {} of {}, {}",
        missing.len(),
        layer_count(layers.len()),
        human_bytes(total)
    ));
    let bars: Vec<_> = layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            if missing.contains(&i) {
                Some(progress.item(layer.digest.short(), layer.descriptor.size()))
            } else {
                None
            }
        })
        .collect();
    let workers = missing.len().min(PARALLEL_DOWNLOADS);
    let queue = Mutex::new(missing);
    let abort = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<Downloaded>();

    let result: Result<()> = std::thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (queue, abort, bars, progress) = (&queue, &abort, &bars, &progress);
            scope.spawn(move || {
                loop {
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some(index) = queue.lock().expect("queue lock").pop_front() else {
                        return;
                    };
                    let bar = bars[index].as_ref().expect("bar of a missing layer");
                    let message = match download_one(
                        store,
                        client,
                        canonical,
                        &layers[index],
                        bar,
                        progress,
                        abort,
                    ) {
                        Ok(Some((path, lock))) => Downloaded::Blob { index, path, lock },
                        Ok(None) => Downloaded::AlreadyThere { index },
                        Err(error) => {
                            abort.store(true, Ordering::Relaxed);
                            Downloaded::Failed { error }
                        }
                    };
                    if sender.send(message).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);

        let mut first_error: Option<anyhow::Error> = None;
        for message in receiver {
            match message {
                Downloaded::Blob { index, path, lock } => {
                    let Layer {
                        descriptor,
                        digest,
                        diff_id,
                    } = &layers[index];
                    let bar = bars[index].as_ref().expect("bar of a missing layer");
                    if first_error.is_some() {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    bar.status("unpacking");
                    let request = UnpackRequest {
                        blob: path.clone(),
                        media_type: descriptor.media_type().to_string(),
                        diff_id: diff_id.clone(),
                        staging: store.staging_path(&format!("layer-{}", diff_id.short())),
                        dest: store.layer_dir(diff_id),
                        info: store.layer_info_path(diff_id),
                        label: format!("layer {digest} of {canonical}"),
                    };
                    let outcome = helper.unpack(&request);
                    // The verified blob is kept (push and save send it as it is); a
                    // failed unpack leaves nothing.
                    let outcome = outcome.and_then(|stats| {
                        if store.adopt_blob(digest, &path)? {
                            added_blobs.push(digest.clone());
                        }
                        Ok(stats)
                    });
                    let _ = std::fs::remove_file(&path);
                    drop(lock);
                    match outcome {
                        Ok(stats) => {
                            sizes[index] = stats.tar_bytes;
                            added.push(diff_id.clone());
                            bar.finish("done");
                            report_unpack_warnings(&request.label, &stats, ctx);
                        }
                        Err(error) => {
                            abort.store(true, Ordering::Relaxed);
                            first_error = Some(error);
                        }
                    }
                }
                Downloaded::AlreadyThere { index } => {
                    sizes[index] = size_of(&layers[index].diff_id);
                    if let Some(bar) = &bars[index] {
                        bar.finish("already there");
                    }
                }
                Downloaded::Failed { error } => {
                    if first_error.is_none() {
                        first_error = Some(error);
                    }
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    });
    progress.finish();
    let finished = helper.finish();
    result?;
    finished?;
    Ok(sizes)
}

/// Download one layer blob into `tmp/`, verified. `Ok(None)` when another process
/// unpacked the layer while we waited for its lock.
fn download_one(
    store: &Store,
    client: &Client,
    canonical: &str,
    layer: &Layer,
    bar: &crate::ui::progress::ItemBar,
    progress: &Progress,
    abort: &AtomicBool,
) -> Result<Option<(PathBuf, Lock)>> {
    let Layer {
        descriptor,
        digest,
        diff_id,
    } = layer;
    let lock = store.lock_named(&format!("layer-{}", diff_id.hex()))?;
    if store.has_layer(diff_id) {
        return Ok(None);
    }
    let path = store.staging_path(&format!("blob-{}", digest.short()));
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = AbortableWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        abort,
    };
    let last = std::cell::Cell::new(0u64);
    let outcome = client
        .download_blob(descriptor, &mut out, &|done| {
            bar.set(done);
            progress.advance(done.saturating_sub(last.replace(done)));
        })
        .and_then(|()| {
            out.inner
                .flush()
                .with_context(|| format!("writing {}", path.display()))
                .hint("check the disk box keeps its store on: is it full or read-only?")
        })
        .with_context(|| format!("downloading layer {digest} of {canonical}"));
    if let Err(error) = outcome {
        let _ = std::fs::remove_file(&path);
        if crate::error::is_out_of_space(&error) {
            return Err(failure(
                format!(
                    "no space left on device while downloading layer {digest} of {canonical} into {}",
                    store.tmp_dir().display()
                ),
                crate::error::FREE_SPACE_HINT,
            ));
        }
        return Err(error);
    }
    Ok(Some((path, lock)))
}

/// A writer that fails once another layer's failure asked everyone to stop.
struct AbortableWriter<'a, W> {
    inner: W,
    abort: &'a AtomicBool,
}

impl<W: Write> Write for AbortableWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("stopped: another layer failed"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The warnings about what an unpack left out (the reporter prints them above the bars).
pub(crate) fn report_unpack_warnings(
    label: &str,
    stats: &crate::image::UnpackStats,
    ctx: &Context,
) {
    if !stats.skipped_devices.is_empty() {
        let shown: Vec<&str> = stats
            .skipped_devices
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        warn(format!(
            "{label}: skipped {} device node(s) ({}{}); boxes get the host's /dev",
            stats.skipped_devices.len(),
            shown.join(", "),
            if stats.skipped_devices.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        ));
    }
    if let Some(xattrs) = stats.xattr_warning() {
        warn(format!("{label}: {xattrs}"));
    }
    let keep_id = matches!(ctx.id_mapping(), Ok(IdMapping::KeepId { .. }));
    if keep_id && stats.unmapped_owners > 0 {
        warn(format!(
            "{label}: {} file(s) are owned by ids beyond your 65536 subordinate ids; they keep the unpacker's owner",
            stats.unmapped_owners
        ));
    }
}
