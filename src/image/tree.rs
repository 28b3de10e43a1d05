//! Directory-descriptor primitives shared by the unpacker and the store helper: opening a
//! directory strictly beneath another one, and removing a tree without following symlinks.
//!
//! Invariants:
//! - nothing here ever resolves a symlink (openat2 with `RESOLVE_BENEATH |
//!   RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`, `O_NOFOLLOW`, and `unlinkat` of names
//!   relative to an already opened directory), so a tree built from untrusted input cannot
//!   redirect an operation outside of it;
//! - the one `..` ([`remove_tree_at`] climbing back up) leads to a directory whose device
//!   and inode were recorded on the way down, or the removal stops;
//! - removing a tree takes two descriptors whatever its depth: a tree made in a box (its
//!   upper directory) can be any depth, and one descriptor per level ran out of them.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// The strict resolution used for every path built from untrusted input.
pub(crate) const STRICT: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOFOLLOW);

/// Open the directory at `path` (relative, `/`-separated, no `.`/`..`) beneath `root`.
/// An empty path opens `root` itself again.
///
/// ELOOP means a component is a symlink, ENOTDIR that one is not a directory, ENOENT
/// that one is missing.
pub(crate) fn open_dir_beneath(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    // openat2 returns EAGAIN when a concurrent rename races the lookup; nobody else
    // writes in a staging directory, but the store's own directories may move.
    let mut attempts = 0;
    loop {
        match rustix::fs::openat2(root, path, DIR_FLAGS, Mode::empty(), STRICT) {
            Err(Errno::AGAIN) if attempts < 8 => attempts += 1,
            result => return result.map_err(io::Error::from),
        }
    }
}

/// Like [`open_dir_beneath`], creating missing directories (mode `mode`) on the way.
/// Returns the descriptor and whether anything was created.
pub(crate) fn make_dirs_beneath(
    root: BorrowedFd<'_>,
    path: &[u8],
    mode: Mode,
) -> io::Result<OwnedFd> {
    match open_dir_beneath(root, path) {
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    let mut current = open_dir_beneath(root, b"")?;
    for component in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let next = match open_dir_beneath(current.as_fd(), component) {
            Ok(fd) => fd,
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                match rustix::fs::mkdirat(&current, component, mode) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(err) => return Err(err.into()),
                }
                let fd = open_dir_beneath(current.as_fd(), component)?;
                // mkdirat's mode went through the umask; say exactly what we mean.
                rustix::fs::fchmod(&fd, mode)?;
                fd
            }
            Err(err) => return Err(err),
        };
        current = next;
    }
    Ok(current)
}

/// Remove `name` in `parent`, recursively if it is a directory, never following a
/// symlink. A missing `name` is not an error.
///
/// Directories without owner rwx are made accessible first, so read-only trees (which
/// images contain, e.g. `/usr/lib/.build-id` or 0555 dirs) can be removed without
/// CAP_DAC_OVERRIDE.
///
/// Depth first without recursion, with one directory open at a time (and its parent or
/// child for a moment): going down opens a child by name, going up opens `..`, which
/// must be the directory recorded on the way down (see the module doc).
pub(crate) fn remove_tree_at(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    remove_tree_counting(parent, name, &mut 0, &mut |_| {})
}

/// [`remove_tree_at`], counting in `removed` each entry it removes (files, links and
/// directories alike) and calling `progress` with the count after each one.
pub(crate) fn remove_tree_counting(
    parent: BorrowedFd<'_>,
    name: &[u8],
    removed: &mut u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) => {
            *removed += 1;
            progress(*removed);
            return Ok(());
        }
        Err(Errno::NOENT) => return Ok(()),
        // Linux says EISDIR for a directory; POSIX allows EPERM.
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(err) => return Err(err.into()),
    }
    let Some((mut current, top)) = Level::enter(parent, name)? else {
        return Ok(());
    };
    let mut levels = vec![top];
    while let Some(level) = levels.last_mut() {
        if let Some(child) = level.left.pop() {
            match rustix::fs::unlinkat(&current, child.as_slice(), AtFlags::empty()) {
                Ok(()) => {
                    *removed += 1;
                    progress(*removed);
                    continue;
                }
                Err(Errno::NOENT) => continue,
                Err(Errno::ISDIR) | Err(Errno::PERM) => {}
                Err(err) => return Err(err.into()),
            }
            if let Some((dir, level)) = Level::enter(current.as_fd(), &child)? {
                current = dir;
                levels.push(level);
            }
            continue;
        }
        // `current` is empty: climb to its parent and remove it there.
        let done = levels.pop().expect("a level is being emptied");
        let Some(up) = levels.last() else {
            break;
        };
        let above = rustix::fs::openat(&current, c"..", DIR_FLAGS, Mode::empty())?;
        let stat = rustix::fs::fstat(&above)?;
        if (stat.st_dev, stat.st_ino) != up.id {
            return Err(io::Error::other(format!(
                "the directory above `{}` was moved while box removed the tree; stopped",
                String::from_utf8_lossy(&done.name)
            )));
        }
        current = above;
        match rustix::fs::unlinkat(&current, done.name.as_slice(), AtFlags::REMOVEDIR) {
            Ok(()) => {
                *removed += 1;
                progress(*removed);
            }
            Err(Errno::NOENT) => {}
            Err(err) => return Err(err.into()),
        }
    }
    drop(current);
    match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) => {
            *removed += 1;
            progress(*removed);
            Ok(())
        }
        Err(Errno::NOENT) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// A directory being emptied by [`remove_tree_at`].
struct Level {
    /// Its name in its parent.
    name: Vec<u8>,
    /// (device, inode): what `..` of a child must lead back to.
    id: (u64, u64),
    /// The names in it not removed yet.
    left: Vec<Vec<u8>>,
}

impl Level {
    /// Open directory `name` in `parent` (`None` when it is gone), make it accessible, and
    /// read its names.
    fn enter(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<(OwnedFd, Level)>> {
        let dir = match rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
            Ok(dir) => dir,
            Err(Errno::NOENT) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let stat = rustix::fs::fstat(&dir)?;
        if stat.st_mode & 0o700 != 0o700 {
            // Best effort: an owner we cannot act for makes the removal below fail with a
            // clear EACCES anyway.
            let _ = rustix::fs::fchmod(&dir, Mode::from_raw_mode((stat.st_mode | 0o700) & 0o7777));
        }
        // Names are collected before removing: deleting while reading a directory stream
        // may skip entries on some filesystems.
        let mut left: Vec<Vec<u8>> = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir)? {
            let entry = entry?;
            let child: &CStr = entry.file_name();
            let bytes = child.to_bytes();
            if bytes != b"." && bytes != b".." {
                left.push(bytes.to_vec());
            }
        }
        let level = Level {
            name: name.to_vec(),
            id: (stat.st_dev, stat.st_ino),
            left,
        };
        Ok(Some((dir, level)))
    }
}

/// Split a relative path into its parent and last component.
pub(crate) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removal_counts_every_entry_it_removes() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/file"), "x").unwrap();
        std::fs::write(tree.join("top"), "y").unwrap();
        std::os::unix::fs::symlink("/nonexistent", tree.join("a/link")).unwrap();
        // A read-only directory is made accessible and removed too.
        std::fs::create_dir(tree.join("ro")).unwrap();
        std::fs::write(tree.join("ro/inner"), "z").unwrap();
        std::fs::set_permissions(
            tree.join("ro"),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
        let parent = open_dir_beneath(
            rustix::fs::open(dir.path(), DIR_FLAGS, Mode::empty())
                .unwrap()
                .as_fd(),
            b"",
        )
        .unwrap();
        let (mut removed, mut seen) = (0, Vec::new());
        remove_tree_counting(parent.as_fd(), b"tree", &mut removed, &mut |n| seen.push(n)).unwrap();
        // tree, a, b, file, link, top, ro, inner.
        assert_eq!(removed, 8);
        assert_eq!(seen, (1..=8).collect::<Vec<u64>>());
        assert!(!tree.exists());
        // Gone already: nothing to count.
        remove_tree_counting(parent.as_fd(), b"tree", &mut removed, &mut |_| {}).unwrap();
        assert_eq!(removed, 8);
    }
}
