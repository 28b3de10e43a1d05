//! Garbage collection, the deciding half: what nothing refers to any more (layers, their
//! records, blobs) and the debris interrupted work leaves behind ([`Store::garbage`]).
//! The removing half is [`crate::ops::gc`], since layers hold files of subordinate ids
//! that only the store helper in the user namespace can remove. `box rmi` runs it after
//! removing image records and `box rm` after removing boxes, so the layers of an image
//! removed with `rmi --force` go with its last box.
//!
//! Invariants:
//! - it runs only with the store lock held exclusively, so no pull, create or rm is under
//!   way: a layer a pull has unpacked but not yet recorded in an image is never taken.
//!   When another box process holds the store, the collection is skipped (the next `rmi`
//!   or `rm` does it);
//! - debris is only what a dead process left: staging entries in `tmp/` and the temp
//!   files of atomic writes carry their creator's pid, and a staging directory a store
//!   helper still holds locked is spared whatever its name says;
//! - a lock file under `locks/` is unlinked only while held by the collector, and lockers
//!   check after locking that the path still names their file (`Store::lock_file`);
//! - failures do not undo the command that asked for the collection: what could not be
//!   removed is named in a warning and left for the next one.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{ATOMIC_PREFIX, Lock, Store};

/// Whether a process with this pid exists (a pid reused since errs on the safe side).
pub(super) fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid in the name of an atomic write's temp file (`.tmp-<pid>-<random>`).
fn atomic_writer(name: &str) -> Option<u32> {
    name.strip_prefix(ATOMIC_PREFIX)?
        .split_once('-')?
        .0
        .parse()
        .ok()
}

/// What garbage collection removes, decided under the exclusive store lock it carries:
/// hold it until everything is removed ([`crate::ops::gc`] does the removing).
pub struct Garbage {
    /// The store lock, exclusive.
    pub lock: Lock,
    /// The user's own files (unused blobs, temp files of dead atomic writers): removed
    /// from the host.
    pub files: Vec<PathBuf>,
    /// Unused layer records: removed from the host once their layers are gone (a record
    /// means a layer, see the store's module doc), the layers being in [`Garbage::layers`].
    pub layer_records: Vec<PathBuf>,
    /// Unheld `locks/layer-*` files, each held by us until unlinked.
    pub layer_locks: Vec<(PathBuf, std::fs::File)>,
    /// Unused layer directories: files of subordinate ids, removed by the store helper.
    pub layers: Vec<PathBuf>,
    /// Staging trees of dead processes under `tmp/`: removed by the store helper too.
    pub staging: Vec<PathBuf>,
    /// The unguarded `layers/` directories set aside (`layers.unguarded/`), if there are
    /// any: removed by the store helper once no box runs (see the store's module doc).
    pub set_aside: Option<PathBuf>,
}

impl Store {
    /// What nothing refers to any more, and the debris of interrupted work (see the
    /// module doc). `lock` is this process's store lock, shared or exclusive; it is made
    /// exclusive, or `Ok(None)` says another box process holds the store and the
    /// collection must wait for the next `rmi` or `rm`.
    pub fn garbage(&self, lock: Lock) -> Result<Option<Garbage>> {
        let Some(lock) = lock.try_exclusive()? else {
            return Ok(None);
        };
        let unused = self.unreferenced()?;
        let mut files = unused.blobs;
        files.extend(self.atomic_write_debris());
        let set_aside = self.unguarded_layers_dir();
        Ok(Some(Garbage {
            lock,
            files,
            layer_records: unused.layer_records,
            layer_locks: self.unheld_layer_locks(),
            layers: unused.layers,
            staging: self.clean_tmp(),
            set_aside: set_aside.symlink_metadata().is_ok().then_some(set_aside),
        }))
    }

    /// Temp files of atomic writes whose writer is dead, in the directories of records
    /// and blobs.
    fn atomic_write_debris(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in [
            self.root.clone(),
            self.images_dir(),
            self.blobs_dir(),
            self.layer_info_dir(),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if atomic_writer(&name).is_some_and(|pid| !pid_alive(pid)) {
                    out.push(entry.path());
                }
            }
        }
        out.sort();
        out
    }

    /// The `locks/layer-*` files nobody holds, each returned locked by us (so nobody can
    /// take it before it is unlinked).
    fn unheld_layer_locks(&self) -> Vec<(PathBuf, std::fs::File)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.root.join("locks")) else {
            return out;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with("layer-") {
                continue;
            }
            let path = entry.path();
            let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                out.push((path, file));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_temp_files_name_their_writer() {
        assert_eq!(atomic_writer(".tmp-1234-AbC9xz"), Some(1234));
        assert_eq!(atomic_writer(".tmp-AbC9xz"), None);
        assert_eq!(atomic_writer("x.json"), None);
    }

    #[test]
    fn debris_of_dead_writers_is_found_and_live_ones_are_spared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let dead = u32::MAX - 1;
        let me = std::process::id();
        let debris = [
            store.images_dir().join(format!(".tmp-{dead}-aaaaaa")),
            store.blobs_dir().join(format!(".tmp-{dead}-bbbbbb")),
            dir.path().join(format!(".tmp-{dead}-cccccc")),
        ];
        let live = [
            store.images_dir().join(format!(".tmp-{me}-dddddd")),
            store.images_dir().join("ref.json"),
            store.images_dir().join(".tmp-old-style"),
        ];
        for file in debris.iter().chain(&live) {
            std::fs::write(file, b"x").unwrap();
        }
        let mut expected = debris.to_vec();
        expected.sort();
        assert_eq!(store.atomic_write_debris(), expected);
    }

    #[test]
    fn only_layer_locks_nobody_holds_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let held = store.lock_named("layer-held").unwrap();
        drop(store.lock_named("layer-free").unwrap());
        drop(store.box_lock("dev").unwrap());
        let found: Vec<PathBuf> = store
            .unheld_layer_locks()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(found, vec![store.root.join("locks/layer-free")]);
        drop(held);
    }

    #[test]
    fn a_lock_file_unlinked_by_the_collector_is_told_from_its_successor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let path = store.root.join("locks/layer-x");
        // A locker opened the file just before the collector unlinked it.
        let opened = std::fs::File::create(&path).unwrap();
        assert!(super::super::names_file(&path, &opened).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(!super::super::names_file(&path, &opened).unwrap());
        let successor = store.lock_named("layer-x").unwrap();
        assert!(!super::super::names_file(&path, &opened).unwrap());
        assert!(super::super::names_file(&path, &successor.file).unwrap());
    }
}
