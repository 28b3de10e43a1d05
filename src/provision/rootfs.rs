//! Looking at a box's files from the host without starting it: the directories of its
//! overlay, top first (its `upper/`, then its image's layers, or the one copied root),
//! read as overlayfs would show them.
//!
//! This is what makes "an image that has everything costs a few file checks" true: no
//! holder, no namespace, a handful of `lstat`s per check. Symbolic links are followed
//! inside the box (an absolute target restarts from the box's root, so `/bin ->
//! usr/bin` works and nothing resolves on the host), a whiteout (a 0:0 character device)
//! hides what the layers below have. An opaque directory is not looked for: at worst a
//! file a layer deleted that way counts as present, and the package manager was not run
//! for something the box lacks; provisioning never removes anything because of it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A box's root seen through its overlay directories.
#[derive(Debug, Clone)]
pub struct Rootfs {
    /// Top first.
    dirs: Vec<PathBuf>,
}

/// How many symbolic links one lookup may follow (Linux's own limit, path_resolution(7)).
const MAX_LINKS: usize = 40;

enum Entry {
    Missing,
    Present(std::fs::Metadata, PathBuf),
}

impl Rootfs {
    /// `dirs`: the overlay's directories, top first.
    pub fn new(dirs: Vec<PathBuf>) -> Rootfs {
        Rootfs { dirs }
    }

    /// Whether `path` (absolute, in the box) exists, following symbolic links.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    /// The host path of the file `path` names in the box (links followed), if any.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
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
                Entry::Present(meta, host) => {
                    if meta.file_type().is_symlink() {
                        links += 1;
                        if links > MAX_LINKS {
                            return None;
                        }
                        let target = std::fs::read_link(&host).ok()?;
                        let target = target.to_str()?.to_owned();
                        done.pop();
                        if target.starts_with('/') {
                            done.clear();
                        }
                        pending.extend(components(&target).rev());
                        last = None;
                    } else {
                        last = Some(host);
                    }
                }
            }
        }
        last.or_else(|| self.dirs.first().cloned())
    }

    /// The topmost entry at `relative` in the overlay's directories.
    fn lookup(&self, relative: &Path) -> Entry {
        for dir in &self.dirs {
            let host = dir.join(relative);
            match std::fs::symlink_metadata(&host) {
                Ok(meta) if meta.file_type().is_char_device() && meta.rdev() == 0 => {
                    return Entry::Missing;
                }
                Ok(meta) => return Entry::Present(meta, host),
                Err(_) => continue,
            }
        }
        Entry::Missing
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
