//! Looking at a box's files from the host without starting it: the directories of its
//! overlay, top first (its `upper/`, then its image's layers, or the one copied root),
//! read as overlayfs would show them.
//!
//! This is what makes "an image that has everything costs a few file checks" true: no
//! holder, a handful of `lstat`s per check. With subordinate ids the layers are in the
//! store's guarded `layers/`, which box looks into only through the store helper (see
//! `store`'s module doc): the lookups are then the helper's ([`StoreHelper::look`], one
//! round trip each, no symlink followed on the host), the logic here stays the same. Symbolic links are followed
//! inside the box (an absolute target restarts from the box's root, so `/bin ->
//! usr/bin` works and nothing resolves on the host), a whiteout (a 0:0 character device)
//! hides what the layers below have. An opaque directory is not looked for: at worst a
//! file a layer deleted that way counts as present, and the package manager was not run
//! for something the box lacks; provisioning never removes anything because of it.

use std::cell::RefCell;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::image::helper::StoreHelper;

/// A box's root seen through its overlay directories.
pub struct Rootfs {
    /// Top first.
    dirs: Vec<PathBuf>,
    /// Who looks: the store helper when the directories are in the guarded store, else
    /// this process.
    helper: Option<RefCell<StoreHelper>>,
}

/// A file found in a box: which directory has it, at which path in there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub index: usize,
    pub relative: PathBuf,
}

/// How many symbolic links one lookup may follow (Linux's own limit, path_resolution(7)).
const MAX_LINKS: usize = 40;

enum Entry {
    Missing,
    /// A symbolic link and its target.
    Link(PathBuf),
    /// Anything else, in the directory of this index.
    Present(usize),
}

impl Rootfs {
    /// `dirs`: the overlay's directories, top first, looked into by this process.
    pub fn new(dirs: Vec<PathBuf>) -> Rootfs {
        Rootfs { dirs, helper: None }
    }

    /// `dirs` (beneath the store root) looked into by the store helper `helper`.
    pub fn through(dirs: Vec<PathBuf>, helper: StoreHelper) -> Rootfs {
        Rootfs {
            dirs,
            helper: Some(RefCell::new(helper)),
        }
    }

    /// Whether `path` (absolute, in the box) exists, following symbolic links.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    /// Whether the regular file `path` names in the box holds `needle`; true when it is
    /// bigger than `max` bytes (taken to hold everything), false when it is missing.
    pub fn contains(&self, path: &str, needle: &str, max: u64) -> bool {
        let Some(found) = self.resolve(path) else {
            return false;
        };
        let dir = &self.dirs[found.index];
        match &self.helper {
            Some(helper) => helper
                .borrow_mut()
                .contains(dir, &found.relative, needle, max)
                .unwrap_or(false),
            None => {
                let file = dir.join(&found.relative);
                match std::fs::metadata(&file) {
                    Ok(meta) if meta.len() > max => true,
                    Ok(_) => std::fs::read(&file).is_ok_and(|bytes| {
                        !needle.is_empty()
                            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
                    }),
                    Err(_) => false,
                }
            }
        }
    }

    /// Where the file `path` names in the box (links followed) is, if it exists.
    pub fn resolve(&self, path: &str) -> Option<Found> {
        let mut pending: Vec<String> = components(path).rev().collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        let mut last = None;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            done.push(part);
            let relative: PathBuf = done.iter().collect();
            match self.lookup(&relative) {
                Entry::Missing => return None,
                Entry::Link(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return None;
                    }
                    let target = target.to_str()?.to_owned();
                    done.pop();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    pending.extend(components(&target).rev());
                    last = None;
                }
                Entry::Present(index) => last = Some(Found { index, relative }),
            }
        }
        last.or_else(|| {
            (!self.dirs.is_empty()).then(|| Found {
                index: 0,
                relative: PathBuf::new(),
            })
        })
    }

    /// The topmost entry at `relative` in the overlay's directories.
    fn lookup(&self, relative: &Path) -> Entry {
        if let Some(helper) = &self.helper {
            return match helper.borrow_mut().look(&self.dirs, relative) {
                Ok(Some(found)) => match found.link {
                    Some(target) => Entry::Link(target),
                    None => Entry::Present(found.index),
                },
                // A helper that fails counts the file as missing: at worst provisioning
                // installs a package the box had.
                Ok(None) | Err(_) => Entry::Missing,
            };
        }
        for (index, dir) in self.dirs.iter().enumerate() {
            let host = dir.join(relative);
            match std::fs::symlink_metadata(&host) {
                Ok(meta) if meta.file_type().is_char_device() && meta.rdev() == 0 => {
                    return Entry::Missing;
                }
                Ok(meta) if meta.file_type().is_symlink() => {
                    return match std::fs::read_link(&host) {
                        Ok(target) => Entry::Link(target),
                        Err(_) => Entry::Missing,
                    };
                }
                Ok(_) => return Entry::Present(index),
                Err(_) => continue,
            }
        }
        Entry::Missing
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        // Let the helper end on its own rather than be killed.
        if let Some(helper) = self.helper.take() {
            let _ = helper.into_inner().finish();
        }
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/').filter(|c| !c.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_resolve_inside_the_box_and_whiteouts_hide() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        for dir in [&upper, &lower] {
            std::fs::create_dir_all(dir.join("usr/bin")).unwrap();
        }
        // merged /usr: /bin -> usr/bin; an absolute link must not leave the box.
        symlink("usr/bin", lower.join("bin")).unwrap();
        std::fs::write(lower.join("usr/bin/sudo"), "").unwrap();
        std::fs::write(lower.join("usr/bin/less"), "").unwrap();
        symlink("/usr/bin/less", upper.join("usr/bin/pager")).unwrap();
        symlink("/etc/passwd", upper.join("usr/bin/escape")).unwrap();
        symlink("loop", upper.join("usr/bin/loop")).unwrap();
        let root = Rootfs::new(vec![upper.clone(), lower.clone()]);
        assert!(root.exists("/bin/sudo"));
        assert!(root.exists("/usr/bin/pager"));
        assert!(root.exists("/usr/bin/../bin/less"));
        assert!(
            !root.exists("/usr/bin/escape"),
            "the host's /etc/passwd is not the box's"
        );
        assert!(!root.exists("/usr/bin/loop"));
        assert!(!root.exists("/usr/bin/man"));
        // A whiteout in the upper directory, as overlayfs writes it (needs CAP_MKNOD
        // outside a user namespace: only checked when the test can make one).
        if rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("usr/bin/sudo"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0),
            0,
        )
        .is_ok()
        {
            assert!(!root.exists("/bin/sudo"));
        }
    }
}
