//! The export registry: which host files box wrote, for which export of which box.
//!
//! Invariants:
//! - Box never overwrites or deletes a host file it did not write: a file is box's only
//!   while the registry lists it with the sha256 it still has. A clash with any other
//!   file is an error naming it, unless `--force` (then the replaced file is box's).
//! - A file two exports share (an icon both need) stays until the last of them goes.
//! - The registry is written atomically after the files; files written by an export
//!   that then fails are removed again, so a failed export leaves the host as it was.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{HintExt, failure};

/// What an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A wrapper script for a binary.
    Bin,
    /// A desktop entry and its icons.
    App,
    /// The box's own terminal entry (`box generate-entry`).
    Entry,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bin => "bin",
            Kind::App => "app",
            Kind::Entry => "entry",
        }
    }
}

/// A host file an export wrote, with the digest of what box wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// One export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    #[serde(rename = "box")]
    pub box_name: String,
    pub kind: Kind,
    /// The binary or desktop file path in the box (empty for `entry`).
    pub source: String,
    /// Unix seconds of the last export.
    pub created: u64,
    pub files: Vec<HostFile>,
}

impl Export {
    fn same(&self, box_name: &str, kind: Kind, source: &str) -> bool {
        self.box_name == box_name && self.kind == kind && self.source == source
    }
}

/// The whole registry (`exports.json` in the store).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Registry {
    pub exports: Vec<Export>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The sha256 of the file at `path`, `None` if there is none.
fn file_sha(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(sha256_hex(&bytes))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// A file an export wants on the host.
#[derive(Debug, Clone)]
pub struct Planned {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub mode: u32,
    /// Icons: when another export of box already put a different file here, keep it
    /// and share it rather than fail (two boxes exporting one app).
    pub shareable: bool,
}

/// What [`Registry::remove`] did.
#[derive(Debug, Default)]
pub struct Removal {
    pub removed: Vec<PathBuf>,
    /// Files the user changed since box wrote them: left in place.
    pub kept_modified: Vec<PathBuf>,
}

impl Registry {
    pub fn load(path: &Path) -> Result<Registry> {
        if !path.exists() {
            return Ok(Registry::default());
        }
        crate::store::read_json(path).hint(
            "the export registry is damaged; move it away to start afresh (exported files stay)",
        )
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::store::write_json(path, self)
    }

    pub fn find(&self, box_name: &str, kind: Kind, source: &str) -> Option<&Export> {
        self.exports.iter().find(|e| e.same(box_name, kind, source))
    }

    /// The exports of one box.
    pub fn of_box<'a>(&'a self, box_name: &'a str) -> impl Iterator<Item = &'a Export> + 'a {
        self.exports.iter().filter(move |e| e.box_name == box_name)
    }

    /// The exports (other than `except`) that list `path`, with the digest they recorded.
    fn owners<'a>(&'a self, path: &Path, except: Option<usize>) -> Vec<(usize, &'a HostFile)> {
        self.exports
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except)
            .filter_map(|(i, e)| e.files.iter().find(|f| f.path == path).map(|f| (i, f)))
            .collect()
    }

    /// Write `files` for the export (box, kind, source) and record them, replacing what
    /// that export wrote before. Checks every file before writing any.
    pub fn install(
        &mut self,
        box_name: &str,
        kind: Kind,
        source: &str,
        files: Vec<Planned>,
        force: bool,
    ) -> Result<()> {
        let this = self
            .exports
            .iter()
            .position(|e| e.same(box_name, kind, source));
        let mine = |path: &Path| -> Option<&HostFile> {
            this.and_then(|i| self.exports[i].files.iter().find(|f| f.path == path))
        };
        // Decide for each file: write it, share the existing one, or refuse.
        let mut to_write: Vec<&Planned> = Vec::new();
        let mut recorded: Vec<HostFile> = Vec::new();
        let mut taken_from_others: Vec<PathBuf> = Vec::new();
        for file in &files {
            let new_sha = sha256_hex(&file.bytes);
            let current = file_sha(&file.path)?;
            let Some(current) = current else {
                to_write.push(file);
                recorded.push(HostFile {
                    path: file.path.clone(),
                    sha256: new_sha,
                });
                continue;
            };
            let owned_by_me = mine(&file.path).is_some_and(|f| f.sha256 == current);
            let others = self.owners(&file.path, this);
            let owned_by_others = others.iter().any(|(_, f)| f.sha256 == current);
            if owned_by_me && (others.is_empty() || current == new_sha) {
                if current != new_sha {
                    to_write.push(file);
                }
                recorded.push(HostFile {
                    path: file.path.clone(),
                    sha256: new_sha,
                });
            } else if owned_by_others && (current == new_sha || file.shareable) {
                // Another export wrote it: share it as it is.
                recorded.push(HostFile {
                    path: file.path.clone(),
                    sha256: current,
                });
            } else if force {
                to_write.push(file);
                recorded.push(HostFile {
                    path: file.path.clone(),
                    sha256: new_sha,
                });
                taken_from_others.push(file.path.clone());
            } else if owned_by_others {
                let other = &self.exports[others[0].0];
                return Err(failure(
                    format!(
                        "{} was already exported from box `{}` ({} {})",
                        file.path.display(),
                        other.box_name,
                        other.kind.as_str(),
                        other.source
                    ),
                    format!(
                        "remove that export first (`box export {} --delete --{} ...`), or pass --force to replace it",
                        other.box_name,
                        if other.kind == Kind::App {
                            "app"
                        } else {
                            "bin"
                        }
                    ),
                ));
            } else {
                return Err(failure(
                    format!(
                        "{} already exists and box did not write it",
                        file.path.display()
                    ),
                    "pass --force to replace it, or move it away",
                ));
            }
        }
        // Write, undoing this run's new files if one write fails.
        let mut written: Vec<PathBuf> = Vec::new();
        for file in &to_write {
            let existed = file.path.exists();
            if let Err(err) = write_file(&file.path, &file.bytes, file.mode) {
                for path in &written {
                    let _ = std::fs::remove_file(path);
                }
                return Err(err);
            }
            if !existed {
                written.push(file.path.clone());
            }
        }
        // Files this export had before and no longer writes are removed (if unchanged
        // and unshared): a re-export after the app's icons changed leaves no debris.
        let kept: BTreeSet<&PathBuf> = recorded.iter().map(|f| &f.path).collect();
        if let Some(i) = this {
            let stale: Vec<HostFile> = self.exports[i]
                .files
                .iter()
                .filter(|f| !kept.contains(&f.path))
                .cloned()
                .collect();
            for file in stale {
                if self.owners(&file.path, Some(i)).is_empty()
                    && file_sha(&file.path)?.as_deref() == Some(file.sha256.as_str())
                {
                    let _ = std::fs::remove_file(&file.path);
                }
            }
        }
        // A forced file belongs to this export alone now.
        for path in &taken_from_others {
            for (i, export) in self.exports.iter_mut().enumerate() {
                if Some(i) != this {
                    export.files.retain(|f| &f.path != path);
                }
            }
        }
        let export = Export {
            box_name: box_name.to_owned(),
            kind,
            source: source.to_owned(),
            created: crate::store::now(),
            files: recorded,
        };
        match this {
            Some(i) => self.exports[i] = export,
            None => self.exports.push(export),
        }
        Ok(())
    }

    /// Remove the export (box, kind, source) and the files only it used, if they still
    /// hold what box wrote. `None` if there is no such export.
    pub fn remove(&mut self, box_name: &str, kind: Kind, source: &str) -> Result<Option<Removal>> {
        let Some(i) = self
            .exports
            .iter()
            .position(|e| e.same(box_name, kind, source))
        else {
            return Ok(None);
        };
        let mut removal = Removal::default();
        for file in &self.exports[i].files {
            if !self.owners(&file.path, Some(i)).is_empty() {
                continue;
            }
            match file_sha(&file.path)? {
                None => {}
                Some(sha) if sha == file.sha256 => {
                    std::fs::remove_file(&file.path)
                        .with_context(|| format!("removing {}", file.path.display()))?;
                    removal.removed.push(file.path.clone());
                }
                Some(_) => removal.kept_modified.push(file.path.clone()),
            }
        }
        self.exports.remove(i);
        Ok(Some(removal))
    }
}

/// Write `bytes` to `path` with `mode`, atomically (temp file in the same directory,
/// then rename), creating the directory if needed.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().context("a path without a parent")?;
    let hint = || {
        format!(
            "check that you can write to {} (or pick another directory)",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
        .with_hint(hint)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".box-tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .with_context(|| format!("cannot write to {}", dir.display()))
        .with_hint(hint)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    // The umask may have narrowed the mode: set it exactly.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(path: &Path, text: &str, shareable: bool) -> Planned {
        Planned {
            path: path.to_owned(),
            bytes: text.as_bytes().to_vec(),
            mode: 0o644,
            shareable,
        }
    }

    #[test]
    fn never_overwrites_foreign_files_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin/tool");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "user's own").unwrap();
        let mut reg = Registry::default();
        let err = reg
            .install(
                "dev",
                Kind::Bin,
                "/usr/bin/tool",
                vec![planned(&path, "w", false)],
                false,
            )
            .unwrap_err();
        let msg = crate::error::message(&err);
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("did not write"),
            "{msg}"
        );
        assert!(
            err.downcast_ref::<crate::error::Hint>()
                .unwrap()
                .0
                .contains("--force")
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "user's own");
        assert!(reg.exports.is_empty());
        reg.install(
            "dev",
            Kind::Bin,
            "/usr/bin/tool",
            vec![planned(&path, "w", false)],
            true,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "w");
        // Now it is box's: a re-export updates it without --force.
        reg.install(
            "dev",
            Kind::Bin,
            "/usr/bin/tool",
            vec![planned(&path, "w2", false)],
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "w2");
        assert_eq!(reg.exports.len(), 1);
        // Another box's export of the same name clashes.
        let err = reg
            .install(
                "other",
                Kind::Bin,
                "/usr/bin/tool",
                vec![planned(&path, "o", false)],
                false,
            )
            .unwrap_err();
        assert!(crate::error::message(&err).contains("already exported from box `dev`"));
    }

    #[test]
    fn shared_files_stay_until_the_last_user_goes_and_modified_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let icon = dir.path().join("icons/x.png");
        let a = dir.path().join("apps/a.desktop");
        let b = dir.path().join("apps/b.desktop");
        let mut reg = Registry::default();
        reg.install(
            "dev",
            Kind::App,
            "/a",
            vec![planned(&a, "A", false), planned(&icon, "I", true)],
            false,
        )
        .unwrap();
        // A different icon under the same name from another box: the first is kept.
        reg.install(
            "two",
            Kind::App,
            "/b",
            vec![planned(&b, "B", false), planned(&icon, "J", true)],
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&icon).unwrap(), "I");
        let removal = reg.remove("dev", Kind::App, "/a").unwrap().unwrap();
        assert_eq!(removal.removed, [a.as_path()]);
        assert!(icon.exists());
        std::fs::write(&b, "user edit").unwrap();
        let removal = reg.remove("two", Kind::App, "/b").unwrap().unwrap();
        assert_eq!(removal.removed, [icon.as_path()]);
        assert_eq!(removal.kept_modified, [b.as_path()]);
        assert!(b.exists() && !icon.exists());
        assert!(reg.exports.is_empty());
        assert!(reg.remove("two", Kind::App, "/b").unwrap().is_none());
    }

    #[test]
    fn a_failed_install_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        // A directory where a file should go: the write fails.
        let bad = dir.path().join("blocked/file");
        std::fs::write(dir.path().join("blocked"), "a file, not a dir").unwrap();
        let mut reg = Registry::default();
        let err = reg
            .install(
                "dev",
                Kind::App,
                "/a",
                vec![planned(&ok, "x", false), planned(&bad, "y", false)],
                false,
            )
            .unwrap_err();
        assert!(format!("{err:#}").contains("blocked"), "{err:#}");
        assert!(!ok.exists());
        assert!(reg.exports.is_empty());
    }

    #[test]
    fn registry_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exports.json");
        let mut reg = Registry::load(&path).unwrap();
        reg.install(
            "dev",
            Kind::Entry,
            "",
            vec![planned(&dir.path().join("e"), "E", false)],
            false,
        )
        .unwrap();
        reg.save(&path).unwrap();
        let back = Registry::load(&path).unwrap();
        assert_eq!(back.exports, reg.exports);
        let json = std::fs::read_to_string(&path).unwrap();
        assert!(
            json.contains("\"box\": \"dev\"") && json.contains("\"kind\": \"entry\""),
            "{json}"
        );
    }
}
