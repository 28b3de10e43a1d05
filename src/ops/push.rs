//! Pushing an image of the store to a registry, exactly as it is: the manifest, config and
//! compressed layer blobs pull kept (see [`crate::store`]), so the image keeps its digests
//! wherever it goes.
//!
//! Order of work, and why:
//! 1. the image is named as `box images` shows it (a reference or a digest, see
//!    [`super::rmi`]); the destination is a reference (`docker://` accepted), by default
//!    the image's own. A multi-platform image is pushed as the one platform's manifest box
//!    keeps (its digest, not the index's);
//! 2. one HEAD of the destination's manifest: when the tag already names this manifest,
//!    nothing is sent (an up-to-date push costs one request); when the repository has the
//!    manifest by digest, only the tag is put;
//! 3. a HEAD for every blob (config and layers, a few in parallel); for each missing one,
//!    a mount from another repository of the same registry that has it (the image's own
//!    source, or another image of the store from there), else an upload from the store's
//!    file, in chunks when `chunk_size` is given and the blob is larger;
//! 4. only then the manifest, under the tag (or its digest).
//!
//! Invariants: the manifest is put last, so an interrupted push (Ctrl-C, kill -9) never
//! leaves a tag pointing at missing blobs, and the next push skips what was sent. The
//! store lock is held shared, so `rmi`'s garbage collection never removes a blob being
//! sent. The store is read, except for one case: a layer blob an older box did not keep
//! (it kept only the unpacked layer) is fetched by digest from the image's source
//! registry when the destination needs its bytes, verified, and kept, as pull keeps it.
//! Credentials, certificates (`certs.d`), `insecure-registries` and the retry policy are
//! pull's; of the registries configuration, a push honours the destination's `insecure`
//! (mirrors and rewrites are for pulls, as in podman).

use std::fs::File;
use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::context::Context;
use crate::digest::Digest;
use crate::error::{HintExt, failure};
use crate::registry::manifest::declared_media_type;
use crate::registry::registries_conf::RegistriesConf;
use crate::registry::retry::Policy;
use crate::registry::{
    BlobPush, Client, ClientOptions, Descriptor, Manifest, Pushed, Reference, RegistryError,
    parse_manifest,
};
use crate::store::Store;
use crate::store::images::ImageRecord;
use crate::ui::progress::{ItemBar, Progress, human_bytes, human_duration};
use crate::ui::report::notice;

/// How many blobs are checked or sent at once.
const PARALLEL_BLOBS: usize = 4;

/// The media type of an OCI manifest that does not declare one (it is optional there).
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// What to push, where, and how.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// The image, as `box images` names it: a reference or a (short) manifest digest.
    pub image: String,
    /// Where to: a reference (`docker://` accepted); `None`: the image's own reference.
    pub destination: Option<String>,
    /// Send blobs larger than this in chunks of this many bytes (PATCH requests), for
    /// registries behind a body size limit; `None`: each blob in one request.
    pub chunk_size: Option<u64>,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// The destination, canonical.
    pub reference: String,
    pub digest: Digest,
    /// Blobs whose bytes were sent, and how many bytes that was.
    pub uploaded: usize,
    pub sent_bytes: u64,
    /// Blobs mounted from another repository of the registry.
    pub mounted: usize,
    /// Blobs the destination had already.
    pub present: usize,
}

/// One blob of the image.
struct Blob {
    digest: Digest,
    descriptor: Descriptor,
    /// Another repository of the destination's registry that has it.
    mount_from: Option<String>,
}

/// Push the image `options.image` of the store to `options.destination`.
pub fn push(ctx: &Context, options: &PushOptions) -> Result<PushOutcome> {
    let started = Instant::now();
    let store = Store::at(&ctx.dirs.store);
    // Shared: garbage collection waits until the push is done with the blobs.
    let _lock = match ctx.dirs.store.exists() {
        true => Some(store.lock(false)?),
        false => None,
    };
    let images = store.images()?;
    let record = find_image(&options.image, &images, options.destination.is_some())?;
    let (destination, put_as) = destination(record, options.destination.as_deref())?;
    let canonical = destination.canonical();

    let manifest_path = store.blob_path(&record.manifest_digest);
    let manifest = std::fs::read(&manifest_path)
        .with_context(|| {
            format!(
                "reading the manifest of {} ({})",
                record.reference,
                manifest_path.display()
            )
        })
        .hint("the store is damaged: remove the image (`box rmi`) and pull it again")?;
    if Digest::of(&manifest) != record.manifest_digest {
        bail!(failure(
            format!(
                "the manifest of {} in the store ({}) does not match its digest {}",
                record.reference,
                manifest_path.display(),
                record.manifest_digest
            ),
            "the store is damaged: remove the image (`box rmi`) and pull it again",
        ));
    }
    let media_type = declared_media_type(&manifest).unwrap_or_else(|| OCI_MANIFEST.to_owned());
    let Manifest::Image(image) = parse_manifest(&manifest, &media_type)
        .with_context(|| format!("reading the manifest of {} in the store", record.reference))?
    else {
        bail!(failure(
            format!(
                "the manifest {} of {} in the store is an index, not an image",
                record.manifest_digest, record.reference
            ),
            "the store is damaged: remove the image (`box rmi`) and pull it again",
        ));
    };
    if let Some(index) = &record.index_digest {
        notice(format!(
            "{} came from the multi-platform index {index}; pushing its {} image, {}",
            record.reference, record.platform, record.manifest_digest
        ));
    }

    let mut blobs: Vec<Blob> = Vec::new();
    for descriptor in std::iter::once(image.config()).chain(image.layers()) {
        let digest = Digest::try_from(descriptor.digest())?;
        if blobs.iter().any(|b| b.digest == digest) {
            continue;
        }
        blobs.push(Blob {
            mount_from: mount_source(record, &images, &destination, &digest),
            digest,
            descriptor: descriptor.clone(),
        });
    }
    let mut mount_from: Vec<String> = blobs.iter().filter_map(|b| b.mount_from.clone()).collect();
    mount_from.sort();
    mount_from.dedup();

    let registries = RegistriesConf::from_env()?;
    let client_options = ClientOptions {
        insecure: registries
            .find(&destination)
            .is_some_and(|entry| entry.endpoint.insecure),
        ..ClientOptions::from_env()
    };
    let client =
        Client::with_options(&destination, ctx.config()?, client_options)?.for_push(mount_from);

    let mut outcome = PushOutcome {
        reference: canonical.clone(),
        digest: record.manifest_digest.clone(),
        uploaded: 0,
        sent_bytes: 0,
        mounted: 0,
        present: 0,
    };
    if client.manifest_digest(&put_as)?.as_ref() == Some(&record.manifest_digest) {
        outcome.present = blobs.len();
        notice(format!(
            "{canonical} is up to date ({}): nothing to push",
            record.manifest_digest
        ));
        return Ok(outcome);
    }
    let has_manifest = put_as != record.manifest_digest.as_str()
        && client
            .manifest_digest(record.manifest_digest.as_str())?
            .is_some();
    if has_manifest {
        // The registry has the manifest, hence every blob it names (it checks them).
        outcome.present = blobs.len();
    } else {
        send_blobs(
            ctx,
            &store,
            record,
            &client,
            &blobs,
            options.chunk_size,
            &mut outcome,
        )?;
    }
    client
        .put_manifest(&put_as, &manifest, &media_type)
        .with_context(|| format!("pushing {} to {canonical}", record.reference))?;
    let mut parts = Vec::new();
    if outcome.uploaded > 0 {
        parts.push(format!(
            "{} sent ({})",
            count(outcome.uploaded, "blob"),
            human_bytes(outcome.sent_bytes)
        ));
    }
    if outcome.mounted > 0 {
        parts.push(format!("{} mounted", outcome.mounted));
    }
    if outcome.present > 0 {
        parts.push(format!("{} already there", outcome.present));
    }
    notice(format!(
        "pushed {} to {canonical} ({}; {}) in {}",
        record.reference,
        record.manifest_digest,
        parts.join(", "),
        human_duration(started.elapsed())
    ));
    Ok(outcome)
}

/// The image `text` names (see [`super::rmi`]'s IMAGE). A digest several references
/// share names one image: fine when a destination is given, ambiguous when the
/// destination would be the image's own reference.
fn find_image<'a>(
    text: &str,
    images: &'a [ImageRecord],
    has_destination: bool,
) -> Result<&'a ImageRecord> {
    let references = super::rmi::resolve(text, images, true)?;
    if references.len() > 1 && !has_destination {
        bail!(failure(
            format!(
                "{text} is the image of several references: {}",
                references.join(", ")
            ),
            "name the image by one of those references, or give the destination",
        ));
    }
    let first = &references[0];
    Ok(images
        .iter()
        .find(|i| &i.reference == first)
        .expect("resolve returns references of these records"))
}

/// The destination reference, and the tag (or digest) to put the manifest under.
fn destination(record: &ImageRecord, text: Option<&str>) -> Result<(Reference, String)> {
    let Some(text) = text else {
        // The image's own name; a digest in it may be its index's: the tag decides.
        let mut own = Reference::parse(&record.reference)?;
        own.digest = None;
        let put_as = match &own.tag {
            Some(tag) => tag.clone(),
            None => record.manifest_digest.to_string(),
        };
        return Ok((own, put_as));
    };
    let text = text.strip_prefix("docker://").unwrap_or(text);
    let reference = Reference::parse(text)?;
    if let Some(digest) = &reference.digest
        && digest != &record.manifest_digest
    {
        bail!(failure(
            format!(
                "the destination {text} names the digest {digest}, but the manifest of {} is {}",
                record.reference, record.manifest_digest
            ),
            "leave the digest out of the destination (a registry names a manifest by the digest of its bytes)",
        ));
    }
    let put_as = match &reference.tag {
        Some(tag) => tag.clone(),
        None => record.manifest_digest.to_string(),
    };
    Ok((reference, put_as))
}

/// A repository of the destination's registry, other than the destination's, that has
/// `digest` as far as the store knows: the image's own source first, then the sources
/// of the other images in the store.
fn mount_source(
    record: &ImageRecord,
    images: &[ImageRecord],
    destination: &Reference,
    digest: &Digest,
) -> Option<String> {
    std::iter::once(record)
        .chain(images.iter().filter(|i| i.reference != record.reference))
        .filter(|image| {
            &image.config_digest == digest || image.layers.iter().any(|l| &l.digest == digest)
        })
        .filter_map(|image| Reference::parse(&image.reference).ok())
        .find(|source| {
            source.registry == destination.registry && source.repository != destination.repository
        })
        .map(|source| source.repository)
}

/// Make every blob present at the destination: HEAD each, then mount or upload those
/// missing, a few at a time.
fn send_blobs(
    ctx: &Context,
    store: &Store,
    record: &ImageRecord,
    client: &Client,
    blobs: &[Blob],
    chunk_size: Option<u64>,
    outcome: &mut PushOutcome,
) -> Result<()> {
    let present = in_parallel(blobs, |blob| {
        client
            .has_blob(&blob.digest)
            .with_context(|| format!("pushing {} to {}", record.reference, outcome.reference))
    })?;
    let missing: Vec<&Blob> = blobs
        .iter()
        .zip(&present)
        .filter(|(_, present)| !**present)
        .map(|(blob, _)| blob)
        .collect();
    outcome.present = blobs.len() - missing.len();
    if missing.is_empty() {
        return Ok(());
    }
    let total: u64 = missing.iter().map(|b| b.descriptor.size()).sum();
    let progress = Progress::new("total", total);
    crate::ui::report::line(format!(
        "pushing {} to {}: {} of {}, {}",
        record.reference,
        outcome.reference,
        missing.len(),
        count(blobs.len(), "blob"),
        human_bytes(total)
    ));
    let bars: Vec<ItemBar> = missing
        .iter()
        .map(|b| progress.item(b.digest.short(), b.descriptor.size()))
        .collect();
    let source = Mutex::new(None::<Client>);
    let indexed: Vec<(usize, &Blob)> = missing.iter().copied().enumerate().collect();
    let results = in_parallel(&indexed, |&(index, blob)| {
        let bar = &bars[index];
        let size = blob.descriptor.size();
        // The most sent so far: an upload that starts again counts once in the total.
        let most = AtomicU64::new(0);
        let report = |done: u64| {
            bar.set(done);
            let before = most.fetch_max(done, Ordering::Relaxed);
            if done > before {
                progress.advance(done - before);
            }
        };
        let open = || open_blob(ctx, store, record, &source, blob, bar);
        let pushed = client
            .push_blob(&BlobPush {
                digest: &blob.digest,
                size,
                mount_from: blob.mount_from.as_deref(),
                chunk_size,
                open: &open,
                progress: &report,
            })
            .map_err(|error| explain_upload_error(store, blob, error))
            .with_context(|| format!("pushing {} to {}", record.reference, outcome.reference))?;
        bar.finish(match pushed {
            Pushed::Present => "already there",
            Pushed::Mounted => "mounted",
            Pushed::Uploaded => "done",
        });
        Ok((pushed, size))
    });
    progress.finish();
    for (pushed, size) in results? {
        match pushed {
            Pushed::Present => outcome.present += 1,
            Pushed::Mounted => outcome.mounted += 1,
            Pushed::Uploaded => {
                outcome.uploaded += 1;
                outcome.sent_bytes += size;
            }
        }
    }
    Ok(())
}

/// The store's file of `blob`, checked for its size; a layer blob an older box did not
/// keep is first fetched from the image's source (see the module doc).
fn open_blob(
    ctx: &Context,
    store: &Store,
    record: &ImageRecord,
    source: &Mutex<Option<Client>>,
    blob: &Blob,
    bar: &ItemBar,
) -> Result<File> {
    let path = store.blob_path(&blob.digest);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            bar.status("fetching");
            fetch_blob(ctx, store, record, source, blob)?;
            bar.status("");
            File::open(&path).with_context(|| format!("opening {}", path.display()))?
        }
        Err(err) => return Err(err).with_context(|| format!("opening {}", path.display())),
    };
    let size = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size != blob.descriptor.size() {
        bail!(failure(
            format!(
                "blob {} of {} in the store ({}) has {size} bytes, not the {} its manifest says",
                blob.digest,
                record.reference,
                path.display(),
                blob.descriptor.size()
            ),
            "the store is damaged: remove the image (`box rmi`) and pull it again",
        ));
    }
    Ok(file)
}

/// Fetch `blob` from the image's source registry (mirrors first, as pull would) into the
/// store, verified. `source` keeps the client of the source that served, for the next.
fn fetch_blob(
    ctx: &Context,
    store: &Store,
    record: &ImageRecord,
    source: &Mutex<Option<Client>>,
    blob: &Blob,
) -> Result<()> {
    let missing = || {
        format!(
            "blob {} of {} is not in the store (a box older than this one kept only the unpacked \
             layer) and could not be fetched from its registry",
            blob.digest, record.reference
        )
    };
    let hint = || {
        format!(
            "check that {} is reachable, or remove the image (`box rmi {}`, after the boxes that use \
             it) and pull it again",
            Reference::parse(&record.reference)
                .map_or_else(|_| record.reference.clone(), |r| r.registry),
            record.reference
        )
    };
    let fetch = |client: &Client| -> Result<()> {
        let staging = store.staging_path(&format!("blob-{}", blob.digest.short()));
        let file =
            File::create(&staging).with_context(|| format!("creating {}", staging.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let written = client
            .download_blob(&blob.descriptor, &mut out, &|_| {})
            .and_then(|()| {
                out.flush()
                    .with_context(|| format!("writing {}", staging.display()))
            });
        if let Err(error) = written {
            let _ = std::fs::remove_file(&staging);
            return Err(error);
        }
        store.adopt_blob(&blob.digest, &staging)?;
        Ok(())
    };
    let mut kept = source.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(client) = kept.as_ref() {
        return fetch(client).with_context(missing).with_hint(hint);
    }
    let logical = Reference::parse(&record.reference)?;
    let sources = RegistriesConf::from_env()?.pull_sources(&logical)?;
    let mut last = None;
    for place in sources {
        let options = ClientOptions {
            insecure: place.insecure,
            retry: if place.mirror {
                Policy::MIRROR
            } else {
                Policy::REGISTRY
            },
            ..ClientOptions::from_env()
        };
        let outcome = Client::with_options(&place.reference, ctx.config()?, options)
            .and_then(|client| fetch(&client).map(|()| client));
        match outcome {
            Ok(client) => {
                *kept = Some(client.with_retry(Policy::REGISTRY));
                return Ok(());
            }
            Err(error) => last = Some(error),
        }
    }
    Err(last
        .expect("the sources end with the registry itself")
        .context(missing())
        .context(crate::error::Hint(hint())))
}

/// A registry that says the bytes do not match the digest (400): say so when the store's
/// copy is what is wrong.
fn explain_upload_error(store: &Store, blob: &Blob, error: anyhow::Error) -> anyhow::Error {
    let bad_request = error
        .downcast_ref::<RegistryError>()
        .is_some_and(|e| e.status() == Some(400));
    if !bad_request {
        return error;
    }
    let path = store.blob_path(&blob.digest);
    match std::fs::read(&path).map(|bytes| Digest::of(&bytes)) {
        Ok(actual) if actual != blob.digest => failure(
            format!(
                "blob {} in the store ({}) is corrupt: its content has digest {actual}",
                blob.digest,
                path.display()
            ),
            "remove the image (`box rmi`) and pull it again",
        ),
        _ => error,
    }
}

/// Run `work` on every item, [`PARALLEL_BLOBS`] at a time, results in the items' order.
/// The first error stops the handing out of items and is returned.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..items.len().min(PARALLEL_BLOBS) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else {
                        return;
                    };
                    match work(item) {
                        Ok(result) => {
                            results.lock().unwrap_or_else(|p| p.into_inner())[index] = Some(result);
                        }
                        Err(error) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(error);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(error) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(error);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was worked on"))
        .collect())
}

/// "1 blob", "3 blobs".
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::images::LayerRecord;

    fn record(reference: &str, layers: &[&[u8]]) -> ImageRecord {
        ImageRecord {
            reference: reference.into(),
            manifest_digest: Digest::of(reference.as_bytes()),
            index_digest: None,
            config_digest: Digest::of(b"config"),
            platform: "linux/amd64".into(),
            layers: layers
                .iter()
                .map(|l| LayerRecord {
                    diff_id: Digest::of(b"diff"),
                    digest: Digest::of(l),
                    media_type: String::new(),
                    size: 1,
                    unpacked_size: 1,
                })
                .collect(),
            created: None,
            pulled: 0,
            config: Default::default(),
        }
    }

    #[test]
    fn destinations_default_to_the_image_and_accept_docker_urls() {
        let image = record("quay.io/team/app:1", &[]);
        let (own, put_as) = destination(&image, None).unwrap();
        assert_eq!(own.canonical(), "quay.io/team/app:1");
        assert_eq!(put_as, "1");
        let (other, put_as) = destination(&image, Some("docker://ghcr.io/me/app:2")).unwrap();
        assert_eq!(other.canonical(), "ghcr.io/me/app:2");
        assert_eq!(put_as, "2");
        let (hub, put_as) = destination(&image, Some("me/app")).unwrap();
        assert_eq!(hub.canonical(), "docker.io/me/app:latest");
        assert_eq!(put_as, "latest");
        // A digest: this manifest's only.
        let by_digest = format!("ghcr.io/me/app@{}", image.manifest_digest);
        let (_, put_as) = destination(&image, Some(&by_digest)).unwrap();
        assert_eq!(put_as, image.manifest_digest.as_str());
        let wrong = format!("ghcr.io/me/app@{}", Digest::of(b"other"));
        let err = destination(&image, Some(&wrong)).unwrap_err();
        assert!(crate::error::message(&err).contains("names the digest"));
        // Pulled by digest (an index's, maybe): put under the manifest's own digest.
        let pinned = record(&format!("quay.io/team/app@{}", Digest::of(b"index")), &[]);
        let (own, put_as) = destination(&pinned, None).unwrap();
        assert_eq!(put_as, pinned.manifest_digest.as_str());
        assert_eq!(own.digest, None);
    }

    #[test]
    fn mounts_come_from_another_repository_of_the_same_registry() {
        let base = record("reg.io/library/debian:12", &[b"base"]);
        let app = record("reg.io/team/app:1", &[b"base", b"app"]);
        let elsewhere = record("other.io/team/app:1", &[b"app"]);
        let images = [base.clone(), app.clone(), elsewhere];
        let to = |text: &str| Reference::parse(text).unwrap();
        let base_layer = Digest::of(b"base");
        let app_layer = Digest::of(b"app");
        // The image's own repository first.
        assert_eq!(
            mount_source(&app, &images, &to("reg.io/team/copy:1"), &base_layer).as_deref(),
            Some("team/app")
        );
        // Its own repository is no source: another image's is.
        assert_eq!(
            mount_source(&app, &images, &to("reg.io/team/app:2"), &base_layer).as_deref(),
            Some("library/debian")
        );
        assert_eq!(
            mount_source(&app, &images, &to("reg.io/team/app:2"), &app_layer),
            None
        );
        // Another registry's repositories are no sources.
        assert_eq!(
            mount_source(&app, &images, &to("new.io/team/app:1"), &app_layer),
            None
        );
    }

    #[test]
    fn several_references_of_one_digest_need_a_destination() {
        let a = record("reg.io/a:1", &[]);
        let mut b = record("reg.io/b:1", &[]);
        b.manifest_digest = a.manifest_digest.clone();
        let images = [a.clone(), b];
        let short = a.manifest_digest.short().to_owned();
        let err = find_image(&short, &images, false).unwrap_err();
        assert!(crate::error::message(&err).contains("several references"));
        assert_eq!(
            find_image(&short, &images, true).unwrap().reference,
            "reg.io/a:1"
        );
        assert_eq!(
            find_image("reg.io/b:1", &images, false).unwrap().reference,
            "reg.io/b:1"
        );
    }

    #[test]
    fn parallel_work_keeps_the_order_and_stops_at_an_error() {
        let items: Vec<u32> = (0..20).collect();
        assert_eq!(in_parallel(&items, |i| Ok(i * 2)).unwrap()[7], 14);
        let done = AtomicUsize::new(0);
        let err = in_parallel(&items, |&i| {
            done.fetch_add(1, Ordering::Relaxed);
            if i == 0 {
                bail!("first");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            Ok(i)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "first");
        assert!(done.load(Ordering::Relaxed) < items.len());
    }
}
