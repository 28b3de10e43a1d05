//! `box load`: the images of an archive into the store (see the parent module for what
//! is read and the invariants).
//!
//! Order of work, as pull's: spool and check the whole archive ([`super::spool`],
//! [`super::layout`]) before the store changes; unpack the missing layers (one store
//! helper, each layer under its lock, its diff id verified), while a second thread
//! compresses the uncompressed layers of a docker archive; keep the blobs; write the
//! manifests; write the image records last. A failure puts back the records it replaced
//! and takes back what it added.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result};

use super::layout::{ImagePlan, plan};
use super::spool::spool;
use super::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, UNTAGGED};
use crate::context::Context;
use crate::digest::{Digest, Hasher};
use crate::error::HintExt;
use crate::image::helper::{StoreHelper, UnpackRequest};
use crate::registry::{Platform, PlatformExt};
use crate::store::Store;
use crate::store::images::{ImageRecord, LayerRecord};
use crate::ui::progress::{human_bytes, human_duration};
use crate::ui::report::{notice, warn};

/// Where the archive comes from.
#[derive(Debug, Clone)]
pub enum LoadSource {
    File(PathBuf),
    Stdin,
}

/// One image loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The references it is recorded under.
    pub names: Vec<String>,
    pub manifest_digest: Digest,
}

/// Load every image of the archive at `source` into the store.
pub fn load(ctx: &Context, source: &LoadSource) -> Result<Vec<Loaded>> {
    let started = Instant::now();
    let label = match source {
        LoadSource::File(path) => format!("the archive {}", path.display()),
        LoadSource::Stdin => "the archive on standard input".to_owned(),
    };
    // Open the file before touching the store: a typo changes nothing.
    let input: Box<dyn Read> = match source {
        LoadSource::File(path) => Box::new(
            std::fs::File::open(path)
                .with_context(|| format!("opening {}", path.display()))
                .hint("check the path of the archive (-i FILE)")?,
        ),
        LoadSource::Stdin => Box::new(std::io::stdin().lock()),
    };
    let store = Store::open(&ctx.dirs.store)?;
    let mapping = ctx.id_mapping()?;
    store.check_id_mapping(mapping)?;
    ctx.explain_id_mapping_once();
    let store_lock = store.lock(false)?;

    let staging = Staging::create(store.staging_path("load"))?;
    let archive = spool(input, &staging.0, &label)?;
    let plans = plan(&archive)?;

    let mut work = Import {
        ctx,
        store: &store,
        added_layers: Vec::new(),
        added_blobs: Vec::new(),
        replaced: Vec::new(),
    };
    match work.run(&plans, &staging.0) {
        Ok(loaded) => {
            notice(format!(
                "loaded {} from {label} in {}",
                match loaded.len() {
                    1 => "1 image".to_owned(),
                    n => format!("{n} images"),
                },
                human_duration(started.elapsed())
            ));
            Ok(loaded)
        }
        Err(error) => {
            work.put_back();
            let Import {
                added_layers,
                added_blobs,
                ..
            } = work;
            drop(store_lock);
            super::super::pull::roll_back(ctx, &store, &added_layers, &added_blobs);
            Err(error)
        }
    }
}

/// The staging directory of one load, removed with what is left in it (the spooled
/// members that were not kept as blobs).
struct Staging(PathBuf);

impl Staging {
    fn create(path: PathBuf) -> Result<Staging> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Staging(path))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A layer tar compressed for the store.
struct Compressed {
    path: PathBuf,
    digest: Digest,
    size: u64,
}

/// One load's changes to the store, to take back on failure.
struct Import<'a> {
    ctx: &'a Context,
    store: &'a Store,
    added_layers: Vec<Digest>,
    added_blobs: Vec<Digest>,
    /// References whose records this load wrote, with the record each had before.
    replaced: Vec<(String, Option<ImageRecord>)>,
}

impl Import<'_> {
    fn run(&mut self, plans: &[ImagePlan], staging: &Path) -> Result<Vec<Loaded>> {
        let store = self.store;
        // Blobs of layers the store has from earlier loads or pulls, by diff id: an
        // uncompressed layer seen before is not compressed again.
        let records = store.images().unwrap_or_default();
        let mut known: HashMap<Digest, LayerRecord> = HashMap::new();
        for layer in records.iter().flat_map(|r| &r.layers) {
            if store.blob_path(&layer.digest).is_file() {
                known.insert(layer.diff_id.clone(), layer.clone());
            }
        }
        let mut jobs: Vec<(Digest, PathBuf)> = Vec::new();
        for layer in plans.iter().flat_map(|p| &p.layers) {
            if layer.compress
                && !known.contains_key(&layer.diff_id)
                && !jobs.iter().any(|(d, _)| d == &layer.diff_id)
            {
                jobs.push((layer.diff_id.clone(), layer.member.path.clone()));
            }
        }

        let abort = AtomicBool::new(false);
        let (sizes, compressed) = std::thread::scope(|scope| {
            let compressor = (!jobs.is_empty()).then(|| {
                let (jobs, abort) = (&jobs, &abort);
                scope.spawn(move || -> Result<HashMap<Digest, Compressed>> {
                    let mut done = HashMap::new();
                    for (n, (diff_id, source)) in jobs.iter().enumerate() {
                        let target = staging.join(format!("gzip-{n}"));
                        let result = compress(source, &target, abort)
                            .with_context(|| format!("compressing the layer {diff_id}"));
                        if result.is_err() {
                            abort.store(true, Ordering::Relaxed);
                        }
                        done.insert(diff_id.clone(), result?);
                    }
                    Ok(done)
                })
            });
            let sizes = self.unpack(plans, &known, &records);
            if sizes.is_err() {
                abort.store(true, Ordering::Relaxed);
            }
            let compressed = match compressor {
                Some(thread) => thread.join().expect("the compressing thread panicked"),
                None => Ok(HashMap::new()),
            };
            (sizes, compressed)
        });
        let sizes = sizes?;
        let compressed = compressed?;

        let mut kept: HashSet<Digest> = HashSet::new();
        let mut loaded = Vec::new();
        let mut records_to_write = Vec::new();
        for plan in plans {
            let mut layers = Vec::new();
            for layer in &plan.layers {
                let (digest, media_type, size) = if !layer.compress {
                    self.keep(&layer.member.digest, &layer.member.path, &mut kept)?;
                    (
                        layer.member.digest.clone(),
                        layer.media_type.clone(),
                        layer.member.size,
                    )
                } else if let Some(done) = compressed.get(&layer.diff_id) {
                    self.keep(&done.digest, &done.path, &mut kept)?;
                    (done.digest.clone(), OCI_LAYER_GZIP.to_owned(), done.size)
                } else {
                    // The blob of an image pulled or loaded before; the manifest box
                    // writes is OCI's, so its type is too.
                    let record = &known[&layer.diff_id];
                    let media_type = super::oci_media_type(&record.media_type)
                        .map_or_else(|| record.media_type.clone(), str::to_owned);
                    (record.digest.clone(), media_type, record.size)
                };
                layers.push(LayerRecord {
                    diff_id: layer.diff_id.clone(),
                    digest,
                    media_type,
                    size,
                    unpacked_size: sizes.get(&layer.diff_id).copied().unwrap_or(0),
                });
            }
            self.keep(&plan.config.digest, &plan.config.path, &mut kept)?;
            let (manifest_bytes, manifest_digest) = match &plan.manifest {
                Some(kept) => kept.clone(),
                None => {
                    let bytes = manifest_for(plan, &layers)?;
                    let digest = Digest::of(&bytes);
                    (bytes, digest)
                }
            };
            if store.put_blob(&manifest_digest, &manifest_bytes)? {
                self.added_blobs.push(manifest_digest.clone());
            }
            let platform = plan.parsed.platform();
            let host = Platform::host();
            if platform.os() != host.os() || platform.architecture() != host.architecture() {
                warn(format!(
                    "{} is an image for {}, not {}: its programs may not run on this machine",
                    plan.label(),
                    platform.display(),
                    host.display()
                ));
            }
            let names = if plan.names.is_empty() {
                vec![format!("{UNTAGGED}@{manifest_digest}")]
            } else {
                plan.names.clone()
            };
            for name in &names {
                records_to_write.push(ImageRecord {
                    reference: name.clone(),
                    manifest_digest: manifest_digest.clone(),
                    index_digest: None,
                    config_digest: plan.config.digest.clone(),
                    platform: platform.display().to_string(),
                    layers: layers.clone(),
                    created: plan.parsed.created().map(str::to_owned),
                    pulled: crate::store::now(),
                    config: plan.parsed.runtime(),
                });
            }
            let size: u64 = layers.iter().map(|l| l.unpacked_size).sum();
            notice(format!(
                "loaded {} ({manifest_digest}, {} layer{}, {})",
                names.join(", "),
                layers.len(),
                if layers.len() == 1 { "" } else { "s" },
                human_bytes(size)
            ));
            loaded.push(Loaded {
                names,
                manifest_digest,
            });
        }
        // Last: the records (a later image of the archive taking a name wins).
        for record in records_to_write {
            let before = store.image(&record.reference).ok().flatten();
            self.replaced.push((record.reference.clone(), before));
            store.put_image(&record)?;
        }
        Ok(loaded)
    }

    /// Unpack every layer the store lacks; each layer's uncompressed size.
    fn unpack(
        &mut self,
        plans: &[ImagePlan],
        known: &HashMap<Digest, LayerRecord>,
        records: &[ImageRecord],
    ) -> Result<HashMap<Digest, u64>> {
        let store = self.store;
        let mut sizes: HashMap<Digest, u64> = HashMap::new();
        let size_of = |layer: &super::layout::LayerPlan| {
            store
                .layer_size(&layer.diff_id)
                .or_else(|| layer.compress.then_some(layer.member.size))
                .or_else(|| known.get(&layer.diff_id).map(|l| l.unpacked_size))
                .or_else(|| {
                    records
                        .iter()
                        .flat_map(|r| &r.layers)
                        .find(|l| l.diff_id == layer.diff_id && l.unpacked_size > 0)
                        .map(|l| l.unpacked_size)
                })
                .unwrap_or(0)
        };
        let mut helper: Option<StoreHelper> = None;
        let result = (|| -> Result<()> {
            for plan in plans {
                for layer in &plan.layers {
                    if sizes.contains_key(&layer.diff_id) {
                        continue;
                    }
                    if store.has_layer(&layer.diff_id) {
                        sizes.insert(layer.diff_id.clone(), size_of(layer));
                        continue;
                    }
                    let lock = store.lock_named(&format!("layer-{}", layer.diff_id.hex()))?;
                    if store.has_layer(&layer.diff_id) {
                        sizes.insert(layer.diff_id.clone(), size_of(layer));
                        continue;
                    }
                    let helper = match &mut helper {
                        Some(helper) => helper,
                        None => helper.insert(StoreHelper::start(self.ctx)?),
                    };
                    let request = UnpackRequest {
                        blob: layer.member.path.clone(),
                        media_type: if layer.compress {
                            "application/vnd.oci.image.layer.v1.tar".to_owned()
                        } else {
                            layer.media_type.clone()
                        },
                        diff_id: layer.diff_id.clone(),
                        staging: store.staging_path(&format!("layer-{}", layer.diff_id.short())),
                        dest: store.layer_dir(&layer.diff_id),
                        info: store.layer_info_path(&layer.diff_id),
                        label: format!(
                            "layer {} (`{}`) of {}",
                            layer.diff_id,
                            layer.member.name,
                            plan.label()
                        ),
                    };
                    let stats = helper.unpack(&request)?;
                    drop(lock);
                    self.added_layers.push(layer.diff_id.clone());
                    sizes.insert(layer.diff_id.clone(), stats.tar_bytes);
                    super::super::pull::report_unpack_warnings(&request.label, &stats, self.ctx);
                }
            }
            Ok(())
        })();
        let finished = helper.map_or(Ok(()), StoreHelper::finish);
        result?;
        finished?;
        Ok(sizes)
    }

    /// Keep the verified file at `path` as the blob `digest` (once; nothing when the store
    /// has it).
    fn keep(&mut self, digest: &Digest, path: &Path, kept: &mut HashSet<Digest>) -> Result<()> {
        if !kept.insert(digest.clone()) || self.store.blob_path(digest).exists() {
            return Ok(());
        }
        if self.store.adopt_blob(digest, path)? {
            self.added_blobs.push(digest.clone());
        }
        Ok(())
    }

    /// Put back the records this load replaced, and remove those it added.
    fn put_back(&mut self) {
        for (reference, before) in self.replaced.drain(..).rev() {
            let restored = match before {
                Some(record) => self.store.put_image(&record),
                None => self.store.remove_image(&reference).map(|_| ()),
            };
            if let Err(err) = restored {
                warn(format!(
                    "could not put back the record of {reference}: {err:#}"
                ));
            }
        }
    }
}

/// The OCI manifest box writes for an image of a docker archive (which has none).
fn manifest_for(plan: &ImagePlan, layers: &[LayerRecord]) -> Result<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct Descriptor<'a> {
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        digest: &'a Digest,
        size: u64,
    }
    #[derive(serde::Serialize)]
    struct Manifest<'a> {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        config: Descriptor<'a>,
        layers: Vec<Descriptor<'a>>,
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config: Descriptor {
            media_type: OCI_CONFIG,
            digest: &plan.config.digest,
            size: plan.config.size,
        },
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: &l.media_type,
                digest: &l.digest,
                size: l.size,
            })
            .collect(),
    };
    serde_json::to_vec(&manifest).context("encoding a manifest")
}

/// Compress the tar at `source` with gzip into `target`; its digest and size.
fn compress(source: &Path, target: &Path, abort: &AtomicBool) -> Result<Compressed> {
    struct Abortable<'a, R> {
        inner: R,
        abort: &'a AtomicBool,
    }
    impl<R: Read> Read for Abortable<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.abort.load(Ordering::Relaxed) {
                return Err(std::io::Error::other("stopped: unpacking failed"));
            }
            self.inner.read(buf)
        }
    }
    /// Hashes and counts what it writes on.
    struct Tee<W> {
        inner: W,
        hasher: Hasher,
    }
    impl<W: Write> Write for Tee<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hasher.update(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let input =
        std::fs::File::open(source).with_context(|| format!("opening {}", source.display()))?;
    let mut input = Abortable {
        inner: std::io::BufReader::with_capacity(1 << 20, input),
        abort,
    };
    let output =
        std::fs::File::create(target).with_context(|| format!("creating {}", target.display()))?;
    let tee = Tee {
        inner: std::io::BufWriter::with_capacity(1 << 20, output),
        hasher: Hasher::new(),
    };
    // No name and no time in the header: the same tar always gives the same blob.
    let mut encoder = flate2::GzBuilder::new().write(tee, flate2::Compression::fast());
    std::io::copy(&mut input, &mut encoder)
        .and_then(|_| encoder.try_finish())
        .with_context(|| format!("writing {}", target.display()))
        .hint("check the disk box keeps its store on: is it full?")?;
    let mut tee = encoder
        .finish()
        .with_context(|| format!("writing {}", target.display()))?;
    tee.flush()
        .with_context(|| format!("writing {}", target.display()))?;
    let size = tee.hasher.bytes;
    Ok(Compressed {
        path: target.to_owned(),
        digest: tee.hasher.finish(),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_deterministic_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("layer.tar");
        std::fs::write(&source, vec![7u8; 100_000]).unwrap();
        let abort = AtomicBool::new(false);
        let a = compress(&source, &dir.path().join("a"), &abort).unwrap();
        let b = compress(&source, &dir.path().join("b"), &abort).unwrap();
        assert_eq!(a.digest, b.digest);
        let bytes = std::fs::read(&a.path).unwrap();
        assert_eq!(Digest::of(&bytes), a.digest);
        assert_eq!(bytes.len() as u64, a.size);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, vec![7u8; 100_000]);
        abort.store(true, Ordering::Relaxed);
        assert!(compress(&source, &dir.path().join("c"), &abort).is_err());
    }
}
