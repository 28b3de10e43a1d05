//! The on-disk store: the only module that knows directory and file names.
//!
//! ```text
//! $XDG_DATA_HOME/box/
//!   lock                    flock: shared by pull/create/rm, exclusive by garbage collection
//!   idmap                   the id mapping the layers were unpacked with
//!   blobs/sha256/<hex>      verified manifests, image configs and compressed layer blobs
//!                           (kept as the registry served them: push and save send them
//!                           unchanged, so an image keeps its digests wherever it goes)
//!   layers/<diffid-hex>/    one unpacked layer = one overlay lowerdir, shared by all boxes;
//!                           with subordinate ids `layers/` belongs to the store owner, an
//!                           id no box maps, mode 0700 (see below)
//!   layers.unguarded/       a `layers/` that was not guarded, set aside (see below)
//!   layer-info/<hex>.json   each layer's own record (its size), written after the layer
//!   locks/<name>            per-layer and per-image locks (flock)
//!   images/<ref>.json       image records (see images.rs)
//!   containers/<name>/      box record box.json, overlay upper/ work/ and mount point root/,
//!                           copy-complete (copy storage: the copy in root/ is whole)
//!                           provision.log (see provision.rs), holder.json (while it
//!                           runs), stopped (empty; its mtime: when it last stopped)
//!   tmp/                    staging on the same filesystem, for atomic renames
//!   notices/<what>          markers of one-time notices already shown
//!   exports.json            the export ledger: host files written by `box export`
//! ```
//!
//! Invariants:
//! - Anything under `layers/`, `blobs/`, `images/` or `containers/` is complete: it is
//!   built under `tmp/` and renamed into place, and records are written with
//!   write-to-temp + fsync + rename. A crash leaves at most debris in `tmp/`, which the
//!   next pull clears.
//! - A layer directory exists only once its diff_id has been verified.
//! - No box can change a layer. With subordinate ids, `layers/` belongs to the store
//!   owner (`IdMapping::store_owner`), a subordinate id that no box maps, with mode 0700:
//!   root in a box has no capability over it and the user is not its owner, so nobody
//!   reaches a layer by any path (the home, `/run/host`, `/proc/PID/root`). Only the store
//!   helper (`image::helper`, which creates it and is the only writer of layers) and a
//!   starting holder's outer namespace (`runtime::holder`) map that id. Processes of box
//!   outside them never look into `layers/`: a layer's record under `layer-info/` stands
//!   for it ([`Store::has_layer`]), written after the layer and removed after it. A
//!   `layers/` that is not guarded (a store from before, or one a box put in its place) is
//!   never adopted: the store helper sets it aside in `layers.unguarded/` and unpacks the
//!   layers again from their kept, verified blobs; garbage collection removes what was
//!   set aside once no box runs (boxes started before may still use it). Without
//!   subordinate ids every box runs as the user, who owns the whole store: the layers are
//!   then as open to a box as the rest of the home.
//! - Nothing is deleted from `layers/` while someone holds the store lock shared.
//! - What nothing refers to any more (layers, their records, blobs) and the debris of
//!   interrupted work are removed by one mechanism, [`Store::garbage`] and `ops::gc::collect`, which
//!   `rmi` and `rm` run (see gc.rs).

pub mod containers;
mod gc;
pub mod images;
pub mod provision;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::digest::Digest;
use crate::error::{HintExt, failure};
use crate::sys::idmap::IdMapping;

/// A handle on the store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What a layer's own record says: enough to list an image whose layer another pull
/// unpacked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    /// Size of the uncompressed tar, padding included (what `box images` adds up).
    pub tar_bytes: u64,
    /// Tar entries applied.
    pub entries: u64,
}

/// What no image record and no box refers to, from [`Store::unreferenced`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unreferenced {
    /// Layer directories (some may be gone: an unused record names one too).
    pub layers: Vec<PathBuf>,
    /// Layer records (`layer-info/<hex>.json`) of those layers, or of layers that are gone:
    /// removed only once the layer is (a record means a layer).
    pub layer_records: Vec<PathBuf>,
    /// Manifests, indexes and configs.
    pub blobs: Vec<PathBuf>,
}

/// A held flock; released on drop.
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    /// Turn this lock exclusive if no other open file holds it; `None` (and no lock at
    /// all: flock(2) may drop the old lock before failing) when one does.
    pub fn try_exclusive(self) -> Result<Option<Lock>> {
        match self.file.try_lock() {
            Ok(()) => Ok(Some(self)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(err)) => Err(err).context("locking the store"),
        }
    }
}

impl Store {
    /// The store at `root`, created (mode 0700) if missing.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store {
            root: root.to_owned(),
        };
        // `layers/` is the store helper's to make (guarded, with subordinate ids).
        for dir in [
            store.root.clone(),
            store.blobs_dir(),
            store.layer_info_dir(),
            store.images_dir(),
            store.containers_dir(),
            store.tmp_dir(),
            store.root.join("locks"),
        ] {
            ensure_private_dir(&dir)?;
        }
        Ok(store)
    }

    /// The store at `root` without creating anything (for read-only commands).
    pub fn at(root: &Path) -> Store {
        Store {
            root: root.to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// The directory of an unpacked layer (it may not exist).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    /// Where the store helper sets aside a `layers/` that was not guarded (see the
    /// module doc).
    pub fn unguarded_layers_dir(&self) -> PathBuf {
        self.root.join("layers.unguarded")
    }

    /// Whether the layer is in the store: it has a record (a guarded `layers/` cannot be
    /// looked into from here, see the module doc), or its directory can be seen (a store
    /// without subordinate ids, whose layers a box from before unpacked without records).
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_info_path(diff_id).is_file() || self.layer_dir(diff_id).is_dir()
    }

    /// The record of a layer ([`LayerInfo`]). The store helper writes it just after
    /// renaming the layer into place, so a record means a layer.
    pub fn layer_info_path(&self, diff_id: &Digest) -> PathBuf {
        self.layer_info_dir()
            .join(format!("{}.json", diff_id.hex()))
    }

    /// The directory of the layer records.
    pub fn layer_info_dir(&self) -> PathBuf {
        self.root.join("layer-info")
    }

    /// The uncompressed size of a layer in the store, from its own record; `None` when
    /// it has none.
    pub fn layer_size(&self, diff_id: &Digest) -> Option<u64> {
        read_json::<LayerInfo>(&self.layer_info_path(diff_id))
            .ok()
            .filter(|info| &info.diff_id == diff_id)
            .map(|info| info.tar_bytes)
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.containers_dir().join(name)
    }

    /// The record of a running box's holder (see `runtime::state`).
    pub fn holder_record(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("holder.json")
    }

    /// The empty file whose modification time says when box `name` last stopped (what
    /// listings in podman's and distrobox's terms show: `Exited (0) 5 minutes ago`).
    pub fn stopped_marker(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("stopped")
    }

    /// Take the lock that serializes starting, stopping and removing box `name`, for
    /// every session of the user.
    pub fn box_lock(&self, name: &str) -> Result<Lock> {
        let name = format!("box-{name}");
        match self.lock_named(&name) {
            // The first lock of a store: make its directory (only then: `box stop --all`
            // takes one lock per box).
            Err(err)
                if err
                    .root_cause()
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
            {
                let dir = self.root.join("locks");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                self.lock_named(&name)
            }
            result => result,
        }
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The export registry (see `export::registry`).
    pub fn exports_path(&self) -> PathBuf {
        self.root.join("exports.json")
    }

    /// A fresh, unique staging path under `tmp/` (not created).
    pub fn staging_path(&self, what: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir()
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    /// Take the store lock shared (pull, create, rm) or exclusive (garbage collection).
    pub fn lock(&self, exclusive: bool) -> Result<Lock> {
        self.lock_file(&self.root.join("lock"), exclusive)
    }

    /// Take the store lock exclusively if nobody holds it; `None` when someone does.
    pub fn try_lock_exclusive(&self) -> Result<Option<Lock>> {
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lock { file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(err)) => {
                Err(err).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// Take a named lock under `locks/` exclusively (a layer being unpacked, an image
    /// record being written, a box being created).
    pub fn lock_named(&self, name: &str) -> Result<Lock> {
        self.lock_file(&self.root.join("locks").join(name), true)
    }

    fn lock_file(&self, path: &Path, exclusive: bool) -> Result<Lock> {
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("opening lock {}", path.display()))?;
            if exclusive {
                file.lock()
            } else {
                file.lock_shared()
            }
            .with_context(|| format!("locking {}", path.display()))?;
            // Garbage collection unlinks lock files nobody holds (holding them while it
            // does). A file it unlinked between our open and our lock excludes nobody who
            // opens the path afresh: start again with the file the path names now.
            if names_file(path, &file)
                .with_context(|| format!("reading lock {}", path.display()))?
            {
                return Ok(Lock { file });
            }
        }
    }

    /// Check that the layers in the store were unpacked with `mapping`, recording it
    /// when the store has none yet. A different mapping (the user's subordinate ids
    /// changed, or newuidmap went missing) is an error: mixing would give files wrong
    /// owners silently.
    pub fn check_id_mapping(&self, mapping: &IdMapping) -> Result<()> {
        let path = self.root.join("idmap");
        let current = mapping.fingerprint();
        match std::fs::read_to_string(&path) {
            Ok(recorded) if recorded.trim() == current => Ok(()),
            // The same ids, recorded before box left one id of a full range for the
            // store owner (see `IdMapping::fingerprint_before_store_owner`).
            Ok(recorded)
                if mapping.fingerprint_before_store_owner().as_deref() == Some(recorded.trim()) =>
            {
                write_atomic(&path, current.as_bytes())
            }
            Ok(recorded) => {
                if !self.has_layers() {
                    return write_atomic(&path, current.as_bytes());
                }
                let (why, hint) = crate::sys::idmap::explain_change(&recorded, mapping);
                Err(failure(
                    format!(
                        "the store {} was unpacked with the id mapping {} but yours is now {current}: {why}",
                        self.root.display(),
                        recorded.trim()
                    ),
                    hint,
                ))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(&path, current.as_bytes())
            }
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Whether the store may hold layers: a record, or a `layers/` with entries or that
    /// cannot be listed (guarded, see the module doc).
    fn has_layers(&self) -> bool {
        let has_records = std::fs::read_dir(self.layer_info_dir())
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        has_records
            || match std::fs::read_dir(self.layers_dir()) {
                Ok(mut entries) => entries.next().is_some(),
                Err(err) => err.kind() != std::io::ErrorKind::NotFound,
            }
    }

    /// Whether this is the first time `what` is asked about in this store (for notices
    /// shown once). Records the answer.
    pub fn first_time(&self, what: &str) -> bool {
        let dir = self.root.join("notices");
        let _ = ensure_private_dir(&dir);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(what))
            .is_ok()
    }

    /// Store a verified blob (manifest or config) under its digest. Returns whether it
    /// was new.
    /// The config and layer blob digests the stored manifest `manifest` names (none when
    /// it is not in the store or does not parse as an image manifest).
    pub fn manifest_blobs(&self, manifest: &Digest) -> Vec<Digest> {
        #[derive(serde::Deserialize)]
        struct Descriptor {
            digest: String,
        }
        #[derive(serde::Deserialize)]
        struct Manifest {
            config: Descriptor,
            #[serde(default)]
            layers: Vec<Descriptor>,
        }
        let Ok(bytes) = std::fs::read(self.blob_path(manifest)) else {
            return Vec::new();
        };
        let Ok(parsed) = serde_json::from_slice::<Manifest>(&bytes) else {
            return Vec::new();
        };
        std::iter::once(parsed.config)
            .chain(parsed.layers)
            .filter_map(|d| Digest::parse(&d.digest).ok())
            .collect()
    }

    /// Keep the verified blob at `path` (a file of this store's `tmp/`) as the blob
    /// `digest`, by rename. Returns whether it was added (false: it was there already, and
    /// `path` is removed).
    pub fn adopt_blob(&self, digest: &Digest, path: &Path) -> Result<bool> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            let _ = std::fs::remove_file(path);
            return Ok(false);
        }
        std::fs::rename(path, &dest)
            .with_context(|| format!("keeping {} as {}", path.display(), dest.display()))?;
        Ok(true)
    }

    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<bool> {
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(false);
        }
        write_atomic(&path, bytes)?;
        Ok(true)
    }

    /// Leftovers of interrupted work in `tmp/`: entries whose creator is dead (staging
    /// names carry the pid of the box process that made them). Remove them with
    /// `StoreHelper::remove_debris`, which also spares a directory a store helper still
    /// holds locked (one that outlived its box process).
    pub fn clean_tmp(&self) -> Vec<PathBuf> {
        let mut leftovers = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.tmp_dir()) else {
            return leftovers;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Staging names end in `-<pid>-<counter>` (see `staging_path`).
            let pid = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(gc::pid_alive);
            if !alive {
                leftovers.push(entry.path());
            }
        }
        leftovers
    }
}

impl Store {
    /// Layer directories, their records and blobs no image record and no box refers to:
    /// what garbage collection may remove. Call with the store lock held exclusively.
    pub fn unreferenced(&self) -> Result<Unreferenced> {
        use std::collections::HashSet;
        let images = self.images()?;
        let boxes = self.containers()?;
        let mut layers: HashSet<String> = HashSet::new();
        let mut blobs: HashSet<String> = HashSet::new();
        for image in &images {
            layers.extend(image.layers.iter().map(|l| l.diff_id.hex().to_owned()));
            blobs.insert(image.manifest_digest.hex().to_owned());
            blobs.insert(image.config_digest.hex().to_owned());
            if let Some(index) = &image.index_digest {
                blobs.insert(index.hex().to_owned());
            }
        }
        for image in &images {
            blobs.extend(image.layers.iter().map(|l| l.digest.hex().to_owned()));
        }
        for record in &boxes {
            layers.extend(record.layers.iter().map(|d| d.hex().to_owned()));
            // A box outlives its image record (`rmi --force`): its image's manifest,
            // config and layer blobs stay, so that `box commit` can still build on them.
            blobs.insert(record.image_digest.hex().to_owned());
            blobs.extend(
                self.manifest_blobs(&record.image_digest)
                    .into_iter()
                    .map(|d| d.hex().to_owned()),
            );
        }
        let is_digest = |hex: &str| Digest::parse(&format!("sha256:{hex}")).is_ok();
        let names = |dir: PathBuf| -> Result<Vec<(String, PathBuf)>> {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                // A guarded `layers/`: its records say what it holds.
                Err(err)
                    if err.kind() == std::io::ErrorKind::PermissionDenied
                        && dir == self.layers_dir() =>
                {
                    return Ok(Vec::new());
                }
                Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
            };
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
                out.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    entry.path(),
                ));
            }
            out.sort();
            Ok(out)
        };
        let mut unreferenced = Unreferenced::default();
        let mut unused_layers = std::collections::BTreeSet::new();
        for (name, _) in names(self.layers_dir())? {
            if is_digest(&name) && !layers.contains(&name) {
                unused_layers.insert(name);
            }
        }
        for (name, path) in names(self.layer_info_dir())? {
            if let Some(hex) = name.strip_suffix(".json")
                && is_digest(hex)
                && !layers.contains(hex)
            {
                unreferenced.layer_records.push(path);
                // The layer may be there (records are written after layers); removing a
                // missing one is no error.
                unused_layers.insert(hex.to_owned());
            }
        }
        unreferenced.layers = unused_layers
            .into_iter()
            .map(|hex| self.layers_dir().join(hex))
            .collect();
        for (name, path) in names(self.blobs_dir())? {
            if is_digest(&name) && !blobs.contains(&name) {
                unreferenced.blobs.push(path);
            }
        }
        Ok(unreferenced)
    }
}

/// Whether `path` names the open `file` (it was not unlinked or replaced since).
fn names_file(path: &Path, file: &File) -> std::io::Result<bool> {
    let ours = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.ino() == ours.ino() && now.dev() == ours.dev()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Check that `dir` is a real directory (not a symlink) of this user that nobody else may
/// write to: what a runtime directory, and every directory box makes in it, must be before
/// box trusts what is there (the state of running boxes, the host-exec socket). Someone
/// else who may write there could swap a state file or the socket for their own. `uid`:
/// this user's (the caller has it: the join path makes no call to ask again).
pub fn check_private_dir(dir: &Path, uid: u32) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut flaws = Vec::new();
    if meta.is_symlink() {
        flaws.push("a symlink".to_owned());
    } else if !meta.is_dir() {
        flaws.push("not a directory".to_owned());
    }
    if meta.uid() != uid {
        flaws.push(format!("owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 && !meta.is_symlink() {
        flaws.push(format!(
            "writable by {}, mode {:o}",
            writers(meta.mode()),
            meta.mode() & 0o7777
        ));
    }
    if flaws.is_empty() {
        return Ok(());
    }
    let hint = if meta.uid() == uid && meta.is_dir() {
        format!(
            "if nobody else should write there, `chmod go-w {}`; else set XDG_RUNTIME_DIR to \
             your session's runtime directory (usually /run/user/{uid})",
            dir.display()
        )
    } else {
        format!(
            "set XDG_RUNTIME_DIR to your session's runtime directory (usually /run/user/{uid}), \
             or remove {} if it is yours",
            dir.display()
        )
    };
    Err(failure(
        format!(
            "{} is not a private directory of yours ({}): box keeps the state of running \
             boxes and their host-exec sockets there, and will not trust it",
            dir.display(),
            flaws.join(", "),
        ),
        hint,
    ))
}

/// Check that nobody but root and this user can change `dir` or a directory above it, to
/// put their own in place of `protected` (in `dir`): each is owned by root or the user, and
/// not writable by group or others unless sticky (as /tmp is: others cannot rename there
/// what is not theirs). A symlink on the way is followed, and where it leads is checked
/// too.
pub fn check_safe_path(dir: &Path, protected: &Path, uid: u32) -> Result<()> {
    for ancestor in dir.ancestors() {
        let meta = std::fs::symlink_metadata(ancestor)
            .with_context(|| format!("reading {}", ancestor.display()))?;
        let owner_ok = meta.uid() == 0 || meta.uid() == uid;
        // A symlink's own mode means nothing: only its directory and owner can change it.
        let mode_ok = meta.is_symlink() || meta.mode() & 0o022 == 0 || meta.mode() & 0o1000 != 0;
        if !owner_ok || !mode_ok {
            return Err(failure(
                format!(
                    "{} (owner uid {}, mode {:o}) can be changed by {}, who could then put \
                     their own {} {} in place of yours",
                    ancestor.display(),
                    meta.uid(),
                    meta.mode() & 0o7777,
                    if owner_ok {
                        writers(meta.mode())
                    } else {
                        "its owner"
                    },
                    protected.display(),
                    if protected.parent() == Some(ancestor) {
                        "in it"
                    } else {
                        "below it"
                    },
                ),
                format!(
                    "use a runtime directory that only root and you can change, nor any \
                     directory above it: set XDG_RUNTIME_DIR to your session's (usually \
                     /run/user/{uid})"
                ),
            ));
        }
        if meta.is_symlink() {
            let target = std::fs::canonicalize(ancestor)
                .with_context(|| format!("resolving {}", ancestor.display()))?;
            check_safe_path(&target, protected, uid)?;
        }
    }
    Ok(())
}

/// Who besides the owner may write to a directory of `mode`.
fn writers(mode: u32) -> &'static str {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and others",
        (true, false) => "its group",
        _ => "others",
    }
}

/// Create `dir` and its parents; a new final directory gets mode 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
        .with_hint(|| {
            format!(
                "check that you can write to {}",
                dir.parent().unwrap_or(dir).display()
            )
        })
}

/// Write `bytes` to `path` atomically: temp file in the same directory, fsync, rename.
///
/// The temp file is named `.tmp-<pid>-<random>`, so that garbage collection can tell the
/// debris of a killed writer from a write in progress.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path without a parent")?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{ATOMIC_PREFIX}{}-", std::process::id()))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))
        .hint("is the disk full?")?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// How the temp files of [`write_atomic`] start.
const ATOMIC_PREFIX: &str = ".tmp-";

/// Serialize `value` as pretty JSON and write it atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).context("serializing a record")?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Read a JSON record.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a valid record", path.display()))
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Format Unix seconds as an RFC 3339 UTC timestamp.
pub fn format_time(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_json(&path, &vec![1, 2, 3]).unwrap();
        let back: Vec<i32> = read_json(&path).unwrap();
        assert_eq!(back, vec![1, 2, 3]);
        // No temp files left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn clean_tmp_spares_staging_of_live_processes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let live = store.staging_path("layer-ab12-cd34");
        std::fs::create_dir(&live).unwrap();
        let dead = store
            .tmp_dir()
            .join(format!("layer-ab12-{}-0", u32::MAX - 1));
        std::fs::create_dir(&dead).unwrap();
        assert_eq!(store.clean_tmp(), vec![dead]);
    }

    #[test]
    fn layer_records_give_sizes_and_go_with_unreferenced_layers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = Digest::of(b"layer");
        let gone = Digest::of(b"gone");
        assert_eq!(store.layer_size(&layer), None);
        std::fs::create_dir_all(store.layer_dir(&layer)).unwrap();
        for digest in [&layer, &gone] {
            let info = LayerInfo {
                diff_id: digest.clone(),
                tar_bytes: 10240,
                entries: 3,
            };
            write_json(&store.layer_info_path(digest), &info).unwrap();
        }
        assert_eq!(store.layer_size(&layer), Some(10240));
        // A record under another layer's name says nothing about this one.
        std::fs::copy(store.layer_info_path(&gone), store.layer_info_path(&layer)).unwrap();
        assert_eq!(store.layer_size(&layer), None);
        let unused = store.unreferenced().unwrap();
        // The gone layer's record names it too: removing what is not there is no error.
        let mut layers = vec![store.layer_dir(&layer), store.layer_dir(&gone)];
        layers.sort();
        assert_eq!(unused.layers, layers);
        let mut records = vec![store.layer_info_path(&layer), store.layer_info_path(&gone)];
        records.sort();
        assert_eq!(unused.layer_records, records);
    }

    #[test]
    fn private_dirs_are_ours_and_writable_by_nobody_else() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let top = tempfile::tempdir().unwrap();
        let (a, b) = (top.path().join("a"), top.path().join("b"));
        let dir = a.join("run");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir(&b).unwrap();
        for (bits, private) in [
            (0o700, true),
            (0o755, true),
            (0o770, false),
            (0o1777, false),
        ] {
            mode(&dir, bits);
            let got = check_private_dir(&dir, rustix::process::getuid().as_raw());
            assert_eq!(got.is_ok(), private, "mode {bits:o}: {got:?}");
        }
        let via = b.join("via");
        std::os::unix::fs::symlink(&dir, &via).unwrap();
        let err = check_private_dir(&via, rustix::process::getuid().as_raw()).unwrap_err();
        assert!(crate::error::message(&err).contains("a symlink"), "{err:?}");

        // Above it: sticky directories are safe (others cannot rename what is not
        // theirs), others writable ones are not, wherever they are on the way. (Only
        // whether these directories are blamed is checked: what is above the temporary
        // directory is the machine's.)
        let blames = |result: Result<()>, dir: &Path| {
            result.is_err_and(|err| {
                crate::error::message(&err).starts_with(&format!("{} (owner", dir.display()))
            })
        };
        mode(&dir, 0o700);
        let inner = dir.join("box");
        std::fs::create_dir(&inner).unwrap();
        mode(&a, 0o1777);
        assert!(!blames(
            check_safe_path(&dir, &inner, rustix::process::getuid().as_raw()),
            &a
        ));
        mode(&a, 0o777);
        let err = check_safe_path(&dir, &inner, rustix::process::getuid().as_raw()).unwrap_err();
        let message = crate::error::message(&err);
        assert!(
            message.starts_with(&format!("{} (owner", a.display())),
            "{message}"
        );
        assert!(message.contains("below it"), "{message}");
        mode(&a, 0o755);
        mode(&dir, 0o770);
        assert!(blames(
            check_safe_path(&dir, &inner, rustix::process::getuid().as_raw()),
            &dir
        ));
        mode(&dir, 0o700);
        // A symlink on the way is followed: where it leads is checked too.
        assert!(!blames(
            check_safe_path(&via, &via.join("box"), rustix::process::getuid().as_raw()),
            &a
        ));
        mode(&a, 0o777);
        assert!(blames(
            check_safe_path(&via, &via.join("box"), rustix::process::getuid().as_raw()),
            &a
        ));
        mode(&a, 0o700);
    }

    #[test]
    fn id_mapping_change_is_detected_only_when_layers_exist() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = IdMapping::Single {
            uid: 1000,
            gid: 1000,
            reason: String::new(),
        };
        let b = IdMapping::Root;
        store.check_id_mapping(&a).unwrap();
        store.check_id_mapping(&b).unwrap(); // no layers yet: re-recorded
        std::fs::create_dir_all(store.layers_dir().join("x")).unwrap();
        let err = store.check_id_mapping(&a).unwrap_err();
        assert!(crate::error::message(&err).contains("id mapping"));
        // A guarded `layers/` cannot be listed: it counts as holding layers.
        std::fs::remove_dir(store.layers_dir().join("x")).unwrap();
        assert!(!store.has_layers());
        write_json(
            &store.layer_info_path(&Digest::of(b"l")),
            &LayerInfo {
                diff_id: Digest::of(b"l"),
                tar_bytes: 1,
                entries: 1,
            },
        )
        .unwrap();
        assert!(store.has_layers());
    }

    #[test]
    fn a_store_recorded_before_the_store_owner_keeps_working() {
        use crate::sys::idmap::SubRange;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let range = SubRange {
            start: 200000,
            count: 65536,
        };
        let mapping = IdMapping::KeepId {
            uid: 70000,
            gid: 70000,
            subuid: range,
            subgid: range,
        };
        let before = mapping.fingerprint_before_store_owner().unwrap();
        write_atomic(&dir.path().join("idmap"), before.as_bytes()).unwrap();
        std::fs::create_dir_all(store.layers_dir().join("x")).unwrap();
        store.check_id_mapping(&mapping).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("idmap")).unwrap(),
            mapping.fingerprint()
        );
    }
}
