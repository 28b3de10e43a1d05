//! Box records: what a box was created from and with which options.
//!
//! `containers/<name>/box.json` beside the overlay's `upper/`, `work/`, `lowers/` (short
//! links to the layers, see [`Store::link_lowers`]) and the mount point `root/` (and, with
//! copy storage, `copy-complete` once the copy in `root/` is whole). A box directory is built under `tmp/` and renamed into place with
//! RENAME_NOREPLACE, so two `box create` of one name give one box and one clear error.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::{Store, write_json};
use crate::digest::Digest;
use crate::error::{EXIT_USAGE, Exit, HintExt, failure};

/// A `--volume SRC:DST[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub name: String,
    /// Canonical image reference.
    pub image: String,
    pub image_digest: Digest,
    /// Layer diff_ids, bottom first: the overlay's lower directories.
    pub layers: Vec<Digest>,
    /// Unix seconds.
    pub created: u64,
    /// Hostname inside; `None` means the host's.
    pub hostname: Option<String>,
    /// Home inside the box when not the host's.
    pub home: Option<PathBuf>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Environment from the image config (`KEY=value`).
    #[serde(default)]
    pub image_env: Vec<String>,
    /// Environment given at create (`KEY=value`; distrobox's `--additional-flags
    /// "--env K=V"`): like the image's, for names the caller's environment does not set,
    /// and before the image's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Overlay, or a copy when the kernel refused overlay.
    #[serde(default)]
    pub storage: StorageKind,
    /// Provisioning (see `store::provision`); `None` in records written before box
    /// provisioned boxes, which are never provisioned on a start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision: Option<super::provision::Provisioning>,
    /// CDI devices asked for at create (`--device VENDOR/CLASS=NAME`), as written: the
    /// host's specs are read at each start (see `crate::host::cdi`), so a driver update on the
    /// host reaches the box at its next start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// NVIDIA's GPUs through CDI: `--nvidia` (true), `--no-nvidia` (false), or `None`:
    /// whenever the host has NVIDIA's CDI spec, as toolbox does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvidia: Option<bool>,
    /// The mount points box made in the box (an empty file or directory in its upper
    /// directory) for the binds of its CDI devices, as of its last start: a later start
    /// removes those no spec names any more (the libraries of a driver before its update).
    /// box's own bookkeeping lives here, on the host side, never in a file of the box.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_mount_points: Vec<PathBuf>,
}

/// What `box list` shows of a box: a subset of its [`ContainerRecord`].
#[derive(Debug, Deserialize)]
pub struct Listing {
    pub image: String,
    pub created: u64,
    #[serde(default)]
    pub storage: StorageKind,
    #[serde(default)]
    pub provision: Option<super::provision::Provisioning>,
    #[serde(default)]
    pub devices: Vec<String>,
    #[serde(default)]
    pub nvidia: Option<bool>,
}

/// How a box's root is stored. Records spell it "overlay" or "copy" (records written
/// before this type existed read the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// overlayfs over the shared layers, the box's changes in `upper/`.
    #[default]
    Overlay,
    /// A flattened copy of the layers in `root/`, for kernels that refuse overlayfs in a
    /// user namespace.
    Copy,
}

impl StorageKind {
    /// The name records and `box list --json` use.
    pub fn as_str(&self) -> &'static str {
        match self {
            StorageKind::Overlay => "overlay",
            StorageKind::Copy => "copy",
        }
    }
}

impl std::fmt::Display for StorageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// The names inside `containers/<name>/`, each spelled once.
/// The box's record.
const RECORD: &str = "box.json";
/// The overlay's upper directory.
const UPPER: &str = "upper";
/// The overlay's work directory.
const WORK: &str = "work";
/// The mount point of the root (with copy storage, the root itself).
const ROOT: &str = "root";
/// The short links to the box's layers, named by position: the overlay's lower dirs.
const LOWERS: &str = "lowers";
/// The file beside a copy-storage root that says the copy is complete (see
/// `runtime::copy`): its absence means an interrupted copy, started again.
const COPY_COMPLETE: &str = "copy-complete";

/// Check a box name: what podman accepts, so names work as hostnames and file names. An
/// invalid name is a usage error (exit status 2), wherever the user wrote it.
pub fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if !valid {
        bail!(
            failure(
                format!("`{name}` is not a valid box name"),
                "use up to 64 letters, digits, `_`, `.` or `-`, starting with a letter or digit",
            )
            .context(Exit(EXIT_USAGE))
        );
    }
    Ok(())
}

/// The marker of the "no box named" error: callers that branch on a missing box find it
/// with `downcast_ref`, never by the message's text.
#[derive(Debug, thiserror::Error)]
#[error("")]
pub struct NoSuchBox(pub String);

/// The names in `names` closest to `wanted` when they are close enough to be a typo of it
/// (one edit for names of up to four characters, two for longer ones; a swap of two
/// neighbours counts as one), sorted; none when nothing is that close.
pub fn close_names<'n>(wanted: &str, names: &'n [String]) -> Vec<&'n str> {
    let allowed = if wanted.chars().count() <= 4 { 1 } else { 2 };
    let distances: Vec<(usize, &str)> = names
        .iter()
        .filter(|name| name.as_str() != wanted)
        .map(|name| (strsim::damerau_levenshtein(wanted, name), name.as_str()))
        .filter(|(distance, _)| *distance <= allowed)
        .collect();
    let Some(best) = distances.iter().map(|(d, _)| *d).min() else {
        return Vec::new();
    };
    let mut close: Vec<&str> = distances
        .into_iter()
        .filter(|(d, _)| *d == best)
        .map(|(_, name)| name)
        .collect();
    close.sort_unstable();
    close
}

impl Store {
    pub fn container_record_path(&self, name: &str) -> PathBuf {
        self.container_dir(name).join(RECORD)
    }

    pub fn container_upper(&self, name: &str) -> PathBuf {
        self.container_dir(name).join(UPPER)
    }

    pub fn container_work(&self, name: &str) -> PathBuf {
        self.container_dir(name).join(WORK)
    }

    /// The mount point of the box's root (and, with copy storage, the root itself).
    pub fn container_root(&self, name: &str) -> PathBuf {
        self.container_dir(name).join(ROOT)
    }

    /// The directory of the short links to box `name`'s layers (see [`Store::link_lowers`]).
    pub fn container_lowers(&self, name: &str) -> PathBuf {
        self.container_dir(name).join(LOWERS)
    }

    /// The name of the link to the layer at `index` (bottom first) in
    /// [`Store::container_lowers`].
    pub fn lower_link_name(index: usize) -> String {
        index.to_string()
    }

    /// Make `lowers/` of box `name` hold one symlink per layer, named by its position
    /// (bottom first: `0`, `1`, ...) and leading to `layers/<hex>`, and nothing else. The
    /// overlay's lower dirs are then given as these names, relative to `lowers/`: a few
    /// bytes each instead of 64, so that the 500 layers overlayfs stacks at most fit in
    /// the one page of mount options (see `runtime::holder`). Links already right are
    /// kept: a start costs one readlink per layer.
    pub fn link_lowers(&self, name: &str, layers: &[Digest]) -> Result<()> {
        let dir = self.container_lowers(name);
        super::ensure_private_dir(&dir)?;
        let what = || format!("linking the layers of box `{name}` in {}", dir.display());
        for (index, layer) in layers.iter().enumerate() {
            let link = dir.join(Self::lower_link_name(index));
            // From containers/<name>/lowers/ up to the store.
            let target = Path::new("../../../layers").join(layer.hex());
            match std::fs::read_link(&link) {
                Ok(current) if current == target => continue,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                _ => std::fs::remove_file(&link).with_context(what)?,
            }
            std::os::unix::fs::symlink(&target, &link).with_context(what)?;
        }
        for entry in std::fs::read_dir(&dir).with_context(what)? {
            let entry = entry.with_context(what)?;
            let index = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<usize>().ok());
            if index.is_none_or(|index| index >= layers.len()) {
                std::fs::remove_file(entry.path()).with_context(what)?;
            }
        }
        Ok(())
    }

    /// The marker of a complete copy-storage root of box `name`.
    pub fn container_copy_marker(&self, name: &str) -> PathBuf {
        self.container_dir(name).join(COPY_COMPLETE)
    }

    /// The record of box `name`, or a clear error if there is none.
    pub fn container(&self, name: &str) -> Result<ContainerRecord> {
        validate_name(name)?;
        self.read_container(name)?
            .ok_or_else(|| self.missing_container(name))
    }

    /// The error for box `name` that does not exist: "did you mean" a box of a close
    /// name when there is one (a typo), else how to make one. Reads the list of boxes: for
    /// error paths only.
    pub fn missing_container(&self, name: &str) -> anyhow::Error {
        let names = self.container_names().unwrap_or_default();
        let hint = match close_names(name, &names).as_slice() {
            [] => format!(
                "`box list` shows your boxes; `box create --image IMAGE {name}` makes one (or `box create DISTRO`, e.g. `box create debian`)"
            ),
            close => format!(
                "did you mean `{}`? (`box list` shows your boxes)",
                close.join("` or `")
            ),
        };
        failure(format!("no box named `{name}`"), hint).context(NoSuchBox(name.to_owned()))
    }

    /// The existing box whose name is close to `name` (a typo of it), if any.
    pub fn close_container_names(&self, name: &str) -> Vec<String> {
        let names = self.container_names().unwrap_or_default();
        close_names(name, &names)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The record of box `name`, `None` when there is no such box; one read.
    fn read_container(&self, name: &str) -> Result<Option<ContainerRecord>> {
        let path = self.container_record_path(name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(err).with_context(|| format!("reading {}", path.display()));
            }
        };
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid record", path.display()))
            .with_hint(|| {
                format!(
                    "the record of box `{name}` is damaged; `box rm --force {name}` removes the box"
                )
            })
            .map(Some)
    }

    /// Every box with what `box list` shows of it, or why its record cannot be read,
    /// sorted by name. One read per box into one buffer; serde skips the fields a
    /// listing does not show (layers, environment, volumes) without building them.
    pub fn container_listings(&self) -> Result<Vec<(String, Result<Listing>)>> {
        let mut boxes = Vec::new();
        // Room for any record, so each is one read plus the one that sees its end.
        let mut buffer = vec![0; 16 * 1024];
        for name in self.box_dir_names()? {
            let path = self.container_record_path(&name);
            let listing = match crate::sys::proc::read_into(&path, &mut buffer) {
                // A directory without a record is not a box (yet, or any more).
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
                Ok(len) => serde_json::from_slice(&buffer[..len])
                    .with_context(|| format!("{} is not a valid record", path.display())),
            };
            boxes.push((name, listing));
        }
        Ok(boxes)
    }

    /// Whether box `name` exists.
    pub fn has_container(&self, name: &str) -> bool {
        self.container_record_path(name).exists()
    }

    /// Create the directory of a new box with its record. Fails cleanly, leaving
    /// nothing behind, if the name is taken (even by a concurrent create).
    pub fn create_container(&self, record: &ContainerRecord) -> Result<()> {
        let staging = self.stage_container(record)?;
        let result = self.commit_container(&staging, &record.name);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result
    }

    /// The directory of a new box, built under `tmp/` (its `upper/`, `work/`, `root/`
    /// and record), for the caller to fill before [`Store::commit_container`]. Nothing
    /// is left behind when this fails; once it succeeded, the caller removes the staging
    /// directory when it gives up.
    pub fn stage_container(&self, record: &ContainerRecord) -> Result<PathBuf> {
        validate_name(&record.name)?;
        let staging = self.staging_path(&format!("box-{}", record.name));
        let result = (|| {
            std::fs::create_dir(&staging)
                .with_context(|| format!("creating {}", staging.display()))?;
            for sub in [UPPER, WORK, ROOT] {
                std::fs::create_dir(staging.join(sub))
                    .with_context(|| format!("creating {}/{sub}", staging.display()))?;
            }
            write_json(&staging.join(RECORD), record)
        })();
        if let Err(err) = result {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(err);
        }
        Ok(staging)
    }

    /// What a clone of box `source` (stored as `kind`) copies into the staged directory
    /// `staging`: (directory of the source, directory in the staging) pairs: the
    /// overlay's upper directory, or with copy storage the whole root.
    pub fn clone_parts(
        &self,
        source: &str,
        kind: &StorageKind,
        staging: &Path,
    ) -> Vec<(PathBuf, PathBuf)> {
        match kind {
            StorageKind::Overlay => vec![(self.container_upper(source), staging.join(UPPER))],
            StorageKind::Copy => vec![(self.container_root(source), staging.join(ROOT))],
        }
    }

    /// Mark a staged copy-storage root complete (after [`Store::clone_parts`] copied it).
    pub fn mark_staged_copy_complete(&self, staging: &Path) -> Result<()> {
        std::fs::write(staging.join(COPY_COMPLETE), b"")
            .with_context(|| format!("writing {}", staging.join(COPY_COMPLETE).display()))
    }

    /// Move a staged box directory into place as box `name`; a clear error when the name
    /// was taken meanwhile (the staging directory is then still the caller's).
    pub fn commit_container(&self, staging: &Path, name: &str) -> Result<()> {
        let target = self.container_dir(name);
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            staging,
            rustix::fs::CWD,
            &target,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(|err| {
            if err == rustix::io::Errno::EXIST || err == rustix::io::Errno::NOTEMPTY {
                failure(
                    format!("a box named `{name}` already exists"),
                    "pick another name with --name, or remove the old box with `box rm`",
                )
            } else {
                anyhow::Error::from(std::io::Error::from(err))
                    .context(format!("renaming {} into place", staging.display()))
            }
        })
    }

    /// Rewrite the record of an existing box.
    pub fn update_container(&self, record: &ContainerRecord) -> Result<()> {
        write_json(&self.container_record_path(&record.name), record)
    }

    /// Every box record, sorted by name.
    /// The boxes a command names: every box with `all`, else `names`, each checked to
    /// exist first (a typo must not act on half of the list).
    /// The boxes `names` (each must exist), or every box with `all`. A box whose record
    /// is damaged counts: stop and rm need only its name and directory.
    pub fn named_containers(&self, all: bool, names: &[String]) -> Result<Vec<String>> {
        if all {
            return self.container_names();
        }
        for name in names {
            if !self.has_container(name) {
                self.container(name)?;
            }
        }
        Ok(names.to_vec())
    }

    /// The names of every box (a directory with a record), sorted.
    pub fn container_names(&self) -> Result<Vec<String>> {
        let mut names = self.box_dir_names()?;
        names.retain(|name| self.has_container(name));
        Ok(names)
    }

    /// The names of the directories in `containers/`, sorted.
    fn box_dir_names(&self) -> Result<Vec<String>> {
        let dir = self.containers_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every box's record. Fails on a damaged one: callers decide about layers from
    /// these, and a record that cannot be read may use any of them.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        self.container_names()?
            .iter()
            .map(|name| self.container(name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> ContainerRecord {
        ContainerRecord {
            name: name.into(),
            image: "127.0.0.1:5000/x:latest".into(),
            image_digest: Digest::of(b"m"),
            layers: vec![Digest::of(b"l")],
            created: 0,
            hostname: None,
            home: None,
            volumes: vec![],
            image_env: vec![],
            env: vec![],
            storage: StorageKind::Overlay,
            provision: None,
            devices: vec![],
            nvidia: None,
            device_mount_points: vec![],
        }
    }

    #[test]
    fn a_typo_finds_the_closest_box_names() {
        let names: Vec<String> = ["trixie", "bookworm", "dev", "deb", "fedora-40", "alpine"]
            .map(String::from)
            .to_vec();
        assert_eq!(close_names("trixe", &names), ["trixie"]);
        assert_eq!(close_names("trxiie", &names), ["trixie"]);
        assert_eq!(close_names("bookwrom", &names), ["bookworm"]);
        assert_eq!(close_names("fedora-41", &names), ["fedora-40"]);
        // Both at one edit: both named.
        assert_eq!(close_names("dex", &names), ["deb", "dev"]);
        // Short names allow one edit only; far names are no typo; a name is not its own.
        assert!(close_names("xyz", &names).is_empty());
        assert!(close_names("ubuntu", &names).is_empty());
        assert!(close_names("trixie", &names).is_empty());
    }

    #[test]
    fn a_missing_box_suggests_a_close_name_or_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_container(&record("trixie")).unwrap();
        let err = store.container("trixe").unwrap_err();
        assert_eq!(crate::error::message(&err), "no box named `trixe`");
        assert_eq!(
            err.downcast_ref::<crate::error::Hint>().unwrap().0,
            "did you mean `trixie`? (`box list` shows your boxes)"
        );
        let err = store.container("sid").unwrap_err();
        let hint = &err.downcast_ref::<crate::error::Hint>().unwrap().0;
        assert!(
            hint.contains("`box create --image IMAGE sid` makes one"),
            "{hint}"
        );
        assert_eq!(store.close_container_names("trixe"), ["trixie"]);
    }

    #[test]
    fn lower_links_lead_to_the_layers_and_nothing_else_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::fs::create_dir_all(store.container_dir("dev")).unwrap();
        // The store helper's to make in a store (see the store's module doc).
        std::fs::create_dir(store.layers_dir()).unwrap();
        let layers: Vec<Digest> = (0..12).map(|i| Digest::of(&[i])).collect();
        for layer in &layers {
            std::fs::create_dir(store.layer_dir(layer)).unwrap();
            std::fs::write(store.layer_dir(layer).join("id"), layer.hex()).unwrap();
        }
        let lowers = store.container_lowers("dev");
        let check = |layers: &[Digest]| {
            let mut names: Vec<String> = std::fs::read_dir(&lowers)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort_by_key(|n| n.parse::<usize>().unwrap());
            let expected: Vec<String> = (0..layers.len()).map(Store::lower_link_name).collect();
            assert_eq!(names, expected);
            for (index, layer) in layers.iter().enumerate() {
                let through = lowers.join(Store::lower_link_name(index)).join("id");
                assert_eq!(std::fs::read_to_string(through).unwrap(), layer.hex());
            }
        };
        store.link_lowers("dev", &layers).unwrap();
        check(&layers);
        // Again with other layers (fewer, reordered): wrong links replaced, extra ones and
        // strangers gone.
        std::fs::write(lowers.join("stray"), "").unwrap();
        let fewer: Vec<Digest> = layers[..5].iter().rev().cloned().collect();
        store.link_lowers("dev", &fewer).unwrap();
        check(&fewer);
    }

    #[test]
    fn names_are_checked() {
        for good in ["a", "dev", "ubuntu-24.04", "x_1"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "-a", "../x", "a/b", "a b", &"x".repeat(65)] {
            let err = validate_name(bad).unwrap_err();
            // A usage error, as README's exit statuses say, with its message and hint.
            assert_eq!(crate::error::exit_code(&err), 2, "{bad}");
            assert_eq!(
                crate::error::message(&err),
                format!("`{bad}` is not a valid box name")
            );
            assert!(err.downcast_ref::<crate::error::Hint>().is_some(), "{bad}");
        }
    }

    #[test]
    fn storage_kinds_read_and_write_as_the_strings_records_always_had() {
        let mut json = serde_json::to_value(record("dev")).unwrap();
        assert_eq!(json["storage"], "overlay");
        json["storage"] = "copy".into();
        let back: ContainerRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.storage, StorageKind::Copy);
        assert_eq!(back.storage.to_string(), "copy");
        // Records from before the field existed are overlay boxes.
        json.as_object_mut().unwrap().remove("storage");
        let old: ContainerRecord = serde_json::from_value(json).unwrap();
        assert_eq!(old.storage, StorageKind::Overlay);
    }

    #[test]
    fn a_name_clash_is_one_clear_error_and_leaves_no_debris() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_container(&record("dev")).unwrap();
        let err = store.create_container(&record("dev")).unwrap_err();
        assert!(crate::error::message(&err).contains("already exists"));
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        assert_eq!(store.containers().unwrap().len(), 1);
    }
}
