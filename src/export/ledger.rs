//! The export ledger: which host files box wrote, for which export of which box.
//!
//! Invariants:
//! - Box never overwrites or deletes a host entry it did not write: a path is box's only
//!   while the ledger lists it and it is a regular file with the sha256 box recorded.
//!   Anything else there (the user's file, a symlink even dangling, a fifo, a directory)
//!   is foreign: a clash is an error naming it, unless `--force` (then a file, link or
//!   fifo is replaced and becomes box's; a directory never is). Links are looked at,
//!   never followed.
//! - A file two exports share (an icon both need) stays until the last of them goes.
//! - Every directory box had to create for a file is recorded, and removed again once
//!   box's files there are gone and it is empty: an `--export-path` directory box made,
//!   the missing parents it made for it, and the default places too (`~/.local/bin`,
//!   `applications/`, an icon theme's size directories) when box was the one that
//!   created them. What box did not create is never removed, and neither is a directory
//!   that holds anything else (the user's files, another export's, a cache a desktop
//!   tool wrote there): it stays, still recorded, until it is empty when box next
//!   removes a file there.
//! - A clash names every file in the way, not the first: with `--force` box would
//!   replace them all, the user's own icons included, so the user sees them all first.
//! - The ledger is written atomically after the files; files (and directories) written
//!   by an export that then fails are removed again, so a failed export leaves the host
//!   as it was.
//! - Paths are host paths; all file access goes through [`HostFs`], so the same code
//!   works on the host and inside a box (through `/run/host`).

use std::collections::BTreeSet;
use std::io::{Read as _, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::error::{HintExt, failure};
use crate::host::fs::HostFs;

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

/// The whole ledger (`exports.json` in the store).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    pub exports: Vec<Export>,
    /// Directories box created for exported files (host paths), removed once empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<PathBuf>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::digest::Digest::of(bytes).hex().to_owned()
}

/// What is at a host path, without following a symlink there.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Existing {
    Nothing,
    /// A regular file, with the sha256 of its content.
    File(String),
    /// A directory: never replaced, even with `--force`.
    Dir,
    /// Anything else (a symlink, dangling or not, a fifo, a socket, a device).
    Other(&'static str),
}

/// Look at `local` (where this process reaches the host path) without following a
/// symlink there and without blocking on a fifo.
fn existing(local: &Path, shown: &Path) -> Result<Existing> {
    let meta = match std::fs::symlink_metadata(local) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(err) => {
            let hint = if err.raw_os_error() == Some(libc::ENOTDIR) {
                "a file is where box needs a directory; move it away, or export to another directory"
            } else {
                "check that you can read that directory"
            };
            return Err(err)
                .with_context(|| format!("looking at {}", shown.display()))
                .hint(hint);
        }
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        return Ok(Existing::Dir);
    }
    if !kind.is_file() {
        return Ok(Existing::Other(if kind.is_symlink() {
            "a symbolic link"
        } else if kind.is_fifo() {
            "a named pipe"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a device node"
        }));
    }
    // O_NOFOLLOW | O_NONBLOCK: if the file was swapped for a link or fifo since the
    // lstat, fail (or return at once) instead of following or hanging.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(local)
        .with_context(|| format!("reading {}", shown.display()))?;
    // Hashed as it is read: the user's file there may be large.
    let mut hasher = crate::digest::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", shown.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Existing::File(hasher.finish().hex().to_owned()))
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

/// What [`Ledger::remove`] did.
#[derive(Debug, Default)]
pub struct Removal {
    pub removed: Vec<PathBuf>,
    /// Files the user changed since box wrote them: left in place.
    pub kept_modified: Vec<PathBuf>,
}

impl Ledger {
    pub fn load(path: &Path) -> Result<Ledger> {
        // A ledger that cannot be looked up is not a missing one: exports would be lost.
        if !path
            .try_exists()
            .with_context(|| format!("looking up the export ledger {}", path.display()))?
        {
            return Ok(Ledger::default());
        }
        crate::store::read_json(path).hint(
            "the export ledger is damaged; move it away to start afresh (exported files stay)",
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

    /// Whether a file of the export (box, kind, source) at `path` may be written, before
    /// anything is made (`box assemble` checks a manifest's exports first): yes when
    /// nothing is there, or a file this very export wrote, or one an export of a box in
    /// `going` wrote (boxes about to be replaced: their exports go with them). The error
    /// is [`Ledger::install`]'s, naming what is in the way.
    pub fn check_free(
        &self,
        fs: &HostFs,
        (box_name, kind, source): (&str, Kind, &str),
        path: &Path,
        going: &[String],
    ) -> Result<()> {
        let clash = match existing(&fs.file(path)?, path)? {
            Existing::Nothing => None,
            Existing::Dir => Some(Clash::Directory),
            Existing::Other(what) => Some(Clash::Foreign(Some(what))),
            Existing::File(sha) => {
                // The exports whose file it still is (unchanged since box wrote it).
                let holders: Vec<&Export> = self
                    .owners(path, None)
                    .into_iter()
                    .filter(|(_, f)| f.sha256 == sha)
                    .map(|(i, _)| &self.exports[i])
                    .collect();
                let free =
                    |e: &&Export| e.same(box_name, kind, source) || going.contains(&e.box_name);
                match holders.iter().find(|e| !free(e)) {
                    None if !holders.is_empty() => None,
                    None => Some(Clash::Foreign(None)),
                    Some(other) => Some(Clash::Exported {
                        box_name: other.box_name.clone(),
                        kind: other.kind,
                        source: other.source.clone(),
                    }),
                }
            }
        };
        match clash {
            Some(clash) => Err(clash_error(&[(path.to_owned(), clash)])),
            None => Ok(()),
        }
    }

    /// Write `files` for the export (box, kind, source) and record them, replacing what
    /// that export wrote before. Checks every file before writing any.
    pub fn install(
        &mut self,
        fs: &HostFs,
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
        // Decide for each file: write it, share the existing one, or refuse. Every file
        // is looked at before any is refused, so the error lists all clashes.
        let mut to_write: Vec<&Planned> = Vec::new();
        let mut recorded: Vec<HostFile> = Vec::new();
        let mut taken_from_others: Vec<PathBuf> = Vec::new();
        let mut clashes: Vec<(PathBuf, Clash)> = Vec::new();
        for file in &files {
            let new_sha = sha256_hex(&file.bytes);
            let current = match existing(&fs.file(&file.path)?, &file.path)? {
                Existing::Nothing => {
                    to_write.push(file);
                    recorded.push(HostFile {
                        path: file.path.clone(),
                        sha256: new_sha,
                    });
                    continue;
                }
                Existing::File(sha) => sha,
                Existing::Dir => {
                    clashes.push((file.path.clone(), Clash::Directory));
                    continue;
                }
                Existing::Other(what) if !force => {
                    clashes.push((file.path.clone(), Clash::Foreign(Some(what))));
                    continue;
                }
                Existing::Other(_) => {
                    to_write.push(file);
                    recorded.push(HostFile {
                        path: file.path.clone(),
                        sha256: new_sha,
                    });
                    taken_from_others.push(file.path.clone());
                    continue;
                }
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
                clashes.push((
                    file.path.clone(),
                    Clash::Exported {
                        box_name: other.box_name.clone(),
                        kind: other.kind,
                        source: other.source.clone(),
                    },
                ));
            } else {
                clashes.push((file.path.clone(), Clash::Foreign(None)));
            }
        }
        if !clashes.is_empty() {
            return Err(clash_error(&clashes));
        }
        // Write, undoing this run's new files and directories if one write fails.
        let mut written: Vec<PathBuf> = Vec::new();
        let mut created: Vec<PathBuf> = Vec::new();
        for file in &to_write {
            let result = fs.file(&file.path).and_then(|local| {
                let existed = std::fs::symlink_metadata(&local).is_ok();
                created.extend(create_dirs(fs, &file.path)?);
                write_file(&local, &file.path, &file.bytes, file.mode)?;
                if !existed {
                    written.push(local);
                }
                Ok(())
            });
            if let Err(err) = result {
                for path in &written {
                    let _ = std::fs::remove_file(path);
                }
                for dir in created.iter().rev() {
                    if let Ok(local) = fs.dir(dir) {
                        let _ = std::fs::remove_dir(local);
                    }
                }
                return Err(err);
            }
        }
        for dir in created {
            if !self.dirs.contains(&dir) {
                self.dirs.push(dir);
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
                let local = fs.file(&file.path)?;
                if self.owners(&file.path, Some(i)).is_empty()
                    && existing(&local, &file.path)? == Existing::File(file.sha256.clone())
                    && std::fs::remove_file(&local).is_ok()
                {
                    self.prune_dirs(fs, &file.path);
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
    /// hold what box wrote, then the directories box created for them that are left
    /// empty. `None` if there is no such export.
    pub fn remove(
        &mut self,
        fs: &HostFs,
        box_name: &str,
        kind: Kind,
        source: &str,
    ) -> Result<Option<Removal>> {
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
            let local = fs.file(&file.path)?;
            match existing(&local, &file.path)? {
                Existing::Nothing => {}
                Existing::File(sha) if sha == file.sha256 => {
                    std::fs::remove_file(&local)
                        .with_context(|| format!("removing {}", file.path.display()))
                        .hint("check that you can write to its directory")?;
                    removal.removed.push(file.path.clone());
                }
                // Changed since, or replaced by something else (a link): the user's now.
                _ => removal.kept_modified.push(file.path.clone()),
            }
        }
        let export = self.exports.remove(i);
        for file in &export.files {
            self.prune_dirs(fs, &file.path);
        }
        Ok(Some(removal))
    }

    /// Remove the directories box created above `file`, deepest first, while they are
    /// empty; stop at the first one that is not (or that box did not create).
    fn prune_dirs(&mut self, fs: &HostFs, file: &Path) {
        let mut dir = file.parent();
        while let Some(d) = dir {
            let Some(pos) = self.dirs.iter().position(|x| x == d) else {
                return;
            };
            let result = fs.dir(d).map(std::fs::remove_dir);
            match result {
                Ok(Ok(())) => {}
                Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => {}
                // Not empty (the user's files, or another export's): it stays, and so
                // do its parents; it is still box's to remove later.
                _ => return,
            }
            self.dirs.remove(pos);
            dir = d.parent();
        }
    }
}

/// Create the missing directories of host file `path`'s directory; return them (host
/// paths, deepest last): box created them, so box may remove them again when they are
/// empty (see the module doc).
fn create_dirs(fs: &HostFs, path: &Path) -> Result<Vec<PathBuf>> {
    let dir = path.parent().context("a path without a parent")?;
    let mut missing = Vec::new();
    let mut probe = Some(dir);
    while let Some(d) = probe {
        if std::fs::symlink_metadata(fs.dir(d)?).is_ok() {
            break;
        }
        missing.push(d.to_owned());
        probe = d.parent();
    }
    let local = fs.dir(dir)?;
    std::fs::create_dir_all(&local)
        .with_context(|| format!("cannot create directory {}", dir.display()))
        .with_hint(|| {
            format!(
                "check that you can write to {} (or pick another directory)",
                dir.display()
            )
        })?;
    missing.reverse();
    Ok(missing)
}

/// Why a host file is in the way of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Clash {
    /// A directory: never replaced, even with `--force`.
    Directory,
    /// A file box did not write; what it is when it is not a regular file.
    Foreign(Option<&'static str>),
    /// A file another export wrote.
    Exported {
        box_name: String,
        kind: Kind,
        source: String,
    },
}

impl Clash {
    fn describe(&self, path: &Path) -> String {
        let path = path.display();
        match self {
            Clash::Directory => format!("{path} is a directory, where box would write a file"),
            Clash::Foreign(Some(what)) => {
                format!("{path} already exists ({what}) and box did not write it")
            }
            Clash::Foreign(None) => format!("{path} already exists and box did not write it"),
            Clash::Exported {
                box_name,
                kind,
                source,
            } => {
                let what = if source.is_empty() {
                    kind.as_str().to_owned()
                } else {
                    format!("{} {source}", kind.as_str())
                };
                format!("{path} was already exported from box `{box_name}` ({what})")
            }
        }
    }
}

/// The error for the files in the way of an export: each named, with what to do.
fn clash_error(clashes: &[(PathBuf, Clash)]) -> anyhow::Error {
    let message = match clashes {
        [(path, clash)] => clash.describe(path),
        many => format!(
            "{} files are in the way: {}",
            many.len(),
            many.iter()
                .map(|(path, clash)| clash.describe(path))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    let one = clashes.len() == 1;
    let (it, them) = if one {
        ("it", "it")
    } else {
        ("them", "them all")
    };
    let hint = if clashes.iter().any(|(_, c)| *c == Clash::Directory) {
        format!(
            "box never replaces a directory, even with --force: move {it} away, or export to another directory (--export-path)"
        )
    } else if clashes.iter().any(|(_, c)| matches!(c, Clash::Foreign(_))) {
        if one {
            "pass --force to replace it, or move it away".to_owned()
        } else {
            format!("pass --force to replace {them} (your own files too), or move them away")
        }
    } else {
        // Only other exports' files: say how to remove the first of them.
        let remove = clashes
            .iter()
            .find_map(|(_, clash)| match clash {
                Clash::Exported {
                    box_name,
                    kind: Kind::Entry,
                    ..
                } => Some(format!("box generate-entry {box_name} --delete")),
                Clash::Exported { box_name, kind, .. } => Some(format!(
                    "box export {box_name} --delete --{} ...",
                    kind.as_str()
                )),
                _ => None,
            })
            .unwrap_or_default();
        let that = if one { "that export" } else { "those exports" };
        format!("remove {that} first (`{remove}`), or pass --force to replace {them}")
    };
    failure(message, hint)
}

/// Write `bytes` to `local` (where this process reaches host path `shown`) with `mode`,
/// atomically: a temp file in the same directory, then a rename, which replaces a link
/// at the path rather than writing through it.
fn write_file(local: &Path, shown: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = local.parent().context("a path without a parent")?;
    let shown_dir = shown.parent().unwrap_or(shown);
    let mut tmp = tempfile::Builder::new()
        .prefix(".box-tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        // tempfile's error names its random temp file; the user needs the directory.
        .map_err(|err| match err.raw_os_error() {
            Some(errno) => std::io::Error::from_raw_os_error(errno),
            None => std::io::Error::from(err.kind()),
        })
        .with_context(|| format!("cannot write to {}", shown_dir.display()))
        .with_hint(|| {
            format!(
                "check that you can write to {} (or pick another directory)",
                shown_dir.display()
            )
        })?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", shown.display()))
        .hint("check that the disk is not full")?;
    // The umask may have narrowed the mode: set it exactly.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", shown.display()))?;
    tmp.persist(local)
        .map_err(|err| err.error)
        .with_context(|| format!("renaming into {}", shown.display()))
        .with_hint(|| format!("check that you can write to {}", shown_dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: HostFs = HostFs::native();

    fn planned(path: &Path, text: &str, shareable: bool) -> Planned {
        Planned {
            path: path.to_owned(),
            bytes: text.as_bytes().to_vec(),
            mode: 0o644,
            shareable,
        }
    }

    #[test]
    fn a_path_is_checked_free_before_anything_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool");
        let mut reg = Ledger::default();
        let check = |reg: &Ledger, name: &str, going: &[String]| {
            reg.check_free(&N, (name, Kind::Bin, "/usr/bin/tool"), &path, going)
        };
        check(&reg, "dev", &[]).unwrap();
        reg.install(
            &N,
            "dev",
            Kind::Bin,
            "/usr/bin/tool",
            vec![planned(&path, "w", false)],
            false,
        )
        .unwrap();
        // The export's own file is free for it (a re-export), and for another box only
        // when dev is going.
        check(&reg, "dev", &[]).unwrap();
        let err = check(&reg, "other", &[]).unwrap_err();
        assert!(crate::error::message(&err).contains("box `dev`"), "{err:#}");
        check(&reg, "other", &["dev".to_owned()]).unwrap();
        // A file box did not write is in the way of everyone; so is a directory.
        std::fs::write(&path, "changed by the user").unwrap();
        let err = check(&reg, "dev", &[]).unwrap_err();
        assert!(
            crate::error::message(&err).contains("did not write"),
            "{err:#}"
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(check(&reg, "dev", &[]).is_err());
    }

    #[test]
    fn never_overwrites_foreign_files_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin/tool");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "user's own").unwrap();
        let mut reg = Ledger::default();
        let err = reg
            .install(
                &N,
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
            &N,
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
            &N,
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
                &N,
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
        let mut reg = Ledger::default();
        reg.install(
            &N,
            "dev",
            Kind::App,
            "/a",
            vec![planned(&a, "A", false), planned(&icon, "I", true)],
            false,
        )
        .unwrap();
        // A different icon under the same name from another box: the first is kept.
        reg.install(
            &N,
            "two",
            Kind::App,
            "/b",
            vec![planned(&b, "B", false), planned(&icon, "J", true)],
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&icon).unwrap(), "I");
        let removal = reg.remove(&N, "dev", Kind::App, "/a").unwrap().unwrap();
        assert_eq!(removal.removed, [a.as_path()]);
        assert!(icon.exists());
        std::fs::write(&b, "user edit").unwrap();
        let removal = reg.remove(&N, "two", Kind::App, "/b").unwrap().unwrap();
        assert_eq!(removal.removed, [icon.as_path()]);
        assert_eq!(removal.kept_modified, [b.as_path()]);
        assert!(b.exists() && !icon.exists());
        assert!(reg.exports.is_empty());
        assert!(reg.remove(&N, "two", Kind::App, "/b").unwrap().is_none());
    }

    #[test]
    fn a_failed_install_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok");
        // A directory where a file should go: the write fails.
        let bad = dir.path().join("blocked/file");
        std::fs::write(dir.path().join("blocked"), "a file, not a dir").unwrap();
        let mut reg = Ledger::default();
        let err = reg
            .install(
                &N,
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
    fn links_fifos_and_directories_in_the_way_are_foreign() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let mut reg = Ledger::default();
        let install = |reg: &mut Ledger, path: &Path, force: bool| {
            reg.install(
                &N,
                "dev",
                Kind::Bin,
                &format!("/usr/bin/{}", path.file_name().unwrap().to_string_lossy()),
                vec![planned(path, "wrapper", false)],
                force,
            )
        };
        // A dangling link is the user's: named, kept, replaced only with --force.
        let link = bin.join("sh");
        symlink("/nowhere/sh", &link).unwrap();
        let err = install(&mut reg, &link, false).unwrap_err();
        let msg = crate::error::message(&err);
        assert!(
            msg.contains(&link.display().to_string()) && msg.contains("symbolic link"),
            "{msg}"
        );
        assert!(
            err.downcast_ref::<crate::error::Hint>()
                .unwrap()
                .0
                .contains("--force")
        );
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/nowhere/sh"));
        // A link to an existing file: the target is never written through.
        let target = dir.path().join("target");
        std::fs::write(&target, "target").unwrap();
        let link2 = bin.join("ls");
        symlink(&target, &link2).unwrap();
        assert!(install(&mut reg, &link2, false).is_err());
        install(&mut reg, &link2, true).unwrap();
        assert!(!link2.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&link2).unwrap(), "wrapper");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "target");
        // A fifo is foreign too, and looking at it does not block.
        let fifo = bin.join("cat");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let err = install(&mut reg, &fifo, false).unwrap_err();
        assert!(crate::error::message(&err).contains("named pipe"));
        // A directory is never replaced, not even with --force, and the error says why.
        let tail = bin.join("tail");
        std::fs::create_dir(&tail).unwrap();
        for force in [false, true] {
            let err = install(&mut reg, &tail, force).unwrap_err();
            let msg = crate::error::message(&err);
            assert!(
                msg.contains(&tail.display().to_string()) && msg.contains("is a directory"),
                "{msg}"
            );
            assert!(err.downcast_ref::<crate::error::Hint>().is_some());
        }
        assert!(tail.is_dir());
        assert_eq!(reg.exports.len(), 1);
    }

    #[test]
    fn a_link_put_in_place_of_boxs_file_is_kept_on_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool");
        let mut reg = Ledger::default();
        reg.install(
            &N,
            "dev",
            Kind::Bin,
            "/t",
            vec![planned(&path, "w", false)],
            false,
        )
        .unwrap();
        // The user keeps a copy and links to it: same content, but not box's file.
        let copy = dir.path().join("copy");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&copy, &path).unwrap();
        let removal = reg.remove(&N, "dev", Kind::Bin, "/t").unwrap().unwrap();
        assert!(removal.removed.is_empty());
        assert_eq!(removal.kept_modified, [path.as_path()]);
        assert!(path.symlink_metadata().unwrap().file_type().is_symlink());
    }

    #[test]
    fn directories_box_created_go_when_empty_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let icons = dir.path().join("icons");
        let user_dir = icons.join("hicolor/48x48/apps");
        std::fs::create_dir_all(&user_dir).unwrap();
        let icon = |rel: &str, text: &str| planned(&icons.join(rel), text, true);
        let mut reg = Ledger::default();
        reg.install(
            &N,
            "dev",
            Kind::App,
            "/a",
            vec![
                icon("hicolor/48x48/apps/a.png", "A"),
                icon("hicolor/scalable/apps/a.svg", "S"),
                icon("box/dev/logo.png", "L"),
            ],
            false,
        )
        .unwrap();
        // Box created scalable/, scalable/apps, box/ and box/dev, not icons/ or 48x48.
        let mut created = reg.dirs.clone();
        created.sort();
        assert_eq!(
            created,
            [
                icons.join("box"),
                icons.join("box/dev"),
                icons.join("hicolor/scalable"),
                icons.join("hicolor/scalable/apps"),
            ]
        );
        // Another export's icon in a created directory keeps it until that one goes.
        reg.install(
            &N,
            "two",
            Kind::App,
            "/b",
            vec![icon("hicolor/scalable/apps/b.svg", "B")],
            false,
        )
        .unwrap();
        // A user's file in a created directory keeps it, and its parents, for ever.
        std::fs::write(icons.join("box/dev/mine.png"), "user").unwrap();
        reg.remove(&N, "dev", Kind::App, "/a").unwrap().unwrap();
        assert!(user_dir.is_dir(), "a directory box did not create stays");
        assert!(icons.join("hicolor/scalable/apps").is_dir());
        assert!(icons.join("box/dev/mine.png").is_file());
        reg.remove(&N, "two", Kind::App, "/b").unwrap().unwrap();
        assert!(!icons.join("hicolor/scalable").exists());
        assert!(icons.join("hicolor").is_dir() && icons.is_dir());
        assert!(icons.join("box/dev").is_dir());
        // Once the user's file is gone, the next removal of box's files there prunes it.
        std::fs::remove_file(icons.join("box/dev/mine.png")).unwrap();
        reg.install(
            &N,
            "dev",
            Kind::App,
            "/a",
            vec![icon("box/dev/logo.png", "L")],
            false,
        )
        .unwrap();
        reg.remove(&N, "dev", Kind::App, "/a").unwrap().unwrap();
        assert!(!icons.join("box").exists());
        assert!(reg.dirs.is_empty(), "{:?}", reg.dirs);
    }

    #[test]
    fn export_directories_box_created_go_with_their_last_file() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("bin2");
        let existed = dir.path().join("existed");
        std::fs::create_dir(&existed).unwrap();
        let mut reg = Ledger::default();
        for (source, path) in [
            ("/usr/bin/a", made.join("deeper/a")),
            ("/usr/bin/b", made.join("deeper/b")),
            ("/usr/bin/c", existed.join("c")),
        ] {
            reg.install(
                &N,
                "dev",
                Kind::Bin,
                source,
                vec![planned(&path, "w", false)],
                false,
            )
            .unwrap();
        }
        // The export directory box made, with the parent it made for it.
        assert_eq!(reg.dirs, [made.clone(), made.join("deeper")]);
        reg.remove(&N, "dev", Kind::Bin, "/usr/bin/a")
            .unwrap()
            .unwrap();
        assert!(made.join("deeper/b").is_file());
        // A file of the user's there keeps the directories, which stay box's to remove.
        std::fs::write(made.join("mine"), "user").unwrap();
        reg.remove(&N, "dev", Kind::Bin, "/usr/bin/b")
            .unwrap()
            .unwrap();
        assert!(!made.join("deeper").exists() && made.join("mine").is_file());
        assert_eq!(reg.dirs, std::slice::from_ref(&made));
        std::fs::remove_file(made.join("mine")).unwrap();
        reg.install(
            &N,
            "dev",
            Kind::Bin,
            "/usr/bin/a",
            vec![planned(&made.join("a"), "w", false)],
            false,
        )
        .unwrap();
        reg.remove(&N, "dev", Kind::Bin, "/usr/bin/a")
            .unwrap()
            .unwrap();
        assert!(!made.exists());
        // A directory that was there before stays, empty or not.
        reg.remove(&N, "dev", Kind::Bin, "/usr/bin/c")
            .unwrap()
            .unwrap();
        assert!(existed.is_dir() && dir.path().is_dir());
        assert!(reg.dirs.is_empty(), "{:?}", reg.dirs);
    }

    #[test]
    fn a_clash_names_every_file_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let apps = dir.path().join("applications");
        let icons = dir.path().join("icons");
        std::fs::create_dir_all(&apps).unwrap();
        std::fs::create_dir_all(icons.join("a.svg")).unwrap();
        std::fs::write(apps.join("a.desktop"), "user's entry").unwrap();
        std::fs::write(icons.join("a.png"), "user's icon").unwrap();
        std::os::unix::fs::symlink("/nowhere", icons.join("a.xpm")).unwrap();
        let mut reg = Ledger::default();
        let files = || {
            vec![
                planned(&apps.join("a.desktop"), "E", false),
                planned(&icons.join("a.png"), "P", true),
                planned(&icons.join("a.xpm"), "X", true),
                planned(&icons.join("new.png"), "N", true),
            ]
        };
        let err = reg
            .install(&N, "dev", Kind::App, "/a", files(), false)
            .unwrap_err();
        let msg = crate::error::message(&err);
        assert_eq!(
            msg,
            format!(
                "3 files are in the way: {0}/applications/a.desktop already exists and box did not write it; {0}/icons/a.png already exists and box did not write it; {0}/icons/a.xpm already exists (a symbolic link) and box did not write it",
                dir.path().display()
            )
        );
        let hint = &err.downcast_ref::<crate::error::Hint>().unwrap().0;
        assert_eq!(
            hint,
            "pass --force to replace them all (your own files too), or move them away"
        );
        assert!(!icons.join("new.png").exists() && reg.exports.is_empty());
        // A directory among them cannot be forced, and the hint says so first.
        let mut with_dir = files();
        with_dir.push(planned(&icons.join("a.svg"), "S", true));
        let err = reg
            .install(&N, "dev", Kind::App, "/a", with_dir.clone(), true)
            .unwrap_err();
        assert_eq!(
            crate::error::message(&err),
            format!(
                "{}/icons/a.svg is a directory, where box would write a file",
                dir.path().display()
            )
        );
        let err = reg
            .install(&N, "dev", Kind::App, "/a", with_dir, false)
            .unwrap_err();
        assert!(crate::error::message(&err).starts_with("4 files are in the way: "));
        assert!(
            err.downcast_ref::<crate::error::Hint>()
                .unwrap()
                .0
                .starts_with("box never replaces a directory")
        );
        // Other exports' files: named with their export, and how to remove it.
        reg.install(&N, "dev", Kind::App, "/a", files(), true)
            .unwrap();
        let err = reg
            .install(
                &N,
                "two",
                Kind::App,
                "/b",
                vec![planned(&apps.join("a.desktop"), "two's", false)],
                false,
            )
            .unwrap_err();
        assert_eq!(
            crate::error::message(&err),
            format!(
                "{}/applications/a.desktop was already exported from box `dev` (app /a)",
                dir.path().display()
            )
        );
        assert_eq!(
            err.downcast_ref::<crate::error::Hint>().unwrap().0,
            "remove that export first (`box export dev --delete --app ...`), or pass --force to replace it"
        );
    }

    #[test]
    fn a_failed_install_removes_the_directories_it_created() {
        let dir = tempfile::tempdir().unwrap();
        let icons = dir.path().join("icons");
        std::fs::create_dir_all(icons.join("hicolor")).unwrap();
        // A directory nobody can create (not even root: /proc) makes the second write fail.
        let bad = Path::new("/proc/box-no-such-dir/a.png");
        let mut reg = Ledger::default();
        let err = reg
            .install(
                &N,
                "dev",
                Kind::App,
                "/a",
                vec![
                    planned(&icons.join("hicolor/64x64/apps/a.png"), "A", true),
                    planned(bad, "B", true),
                ],
                false,
            )
            .unwrap_err();
        assert!(
            err.downcast_ref::<crate::error::Hint>().is_some(),
            "{err:#}"
        );
        assert!(!icons.join("hicolor/64x64").exists());
        assert!(icons.join("hicolor").is_dir());
        assert!(reg.dirs.is_empty() && reg.exports.is_empty());
    }

    #[test]
    fn ledger_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exports.json");
        let mut reg = Ledger::load(&path).unwrap();
        reg.install(
            &N,
            "dev",
            Kind::Entry,
            "",
            vec![planned(&dir.path().join("e"), "E", false)],
            false,
        )
        .unwrap();
        reg.save(&path).unwrap();
        let back = Ledger::load(&path).unwrap();
        assert_eq!(back.exports, reg.exports);
        let json = std::fs::read_to_string(&path).unwrap();
        assert!(
            json.contains("\"box\": \"dev\"") && json.contains("\"kind\": \"entry\""),
            "{json}"
        );
    }
}
