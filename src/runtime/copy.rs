//! The copy fallback: a box root built as a flattened copy of its layers, for kernels or
//! filesystems that refuse overlayfs in a user namespace.
//!
//! Runs in the holder, inside the box's user namespace (as root there when there is
//! one), so owners and modes are copied exactly. Layers are applied bottom first, with
//! the overlay conventions the store uses: a 0:0 character device is a whiteout (the
//! path is deleted), a directory with `user.overlay.opaque=y` replaces the directory
//! below instead of merging with it.
//!
//! Invariant: `complete` marks a finished copy; an interrupted copy is started again
//! from an empty root.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context as _, Result};

/// Build `dest` (an existing, possibly non-empty directory) from `layers`, bottom first,
/// unless `marker` says it was done. Returns whether a copy was made now.
pub fn ensure_copy(layers: &[impl AsRef<Path>], dest: &Path, marker: &Path) -> Result<bool> {
    if marker.exists() {
        return Ok(false);
    }
    clear_dir(dest)?;
    for layer in layers {
        merge(layer.as_ref(), dest)?;
    }
    std::fs::write(marker, b"copy complete\n")
        .with_context(|| format!("writing {}", marker.display()))?;
    Ok(true)
}

fn clear_dir(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        remove(&entry?.path())?;
    }
    Ok(())
}

fn remove(path: &Path) -> Result<()> {
    let Ok(meta) = path.symlink_metadata() else {
        return Ok(());
    };
    if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
    .with_context(|| format!("removing {}", path.display()))
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    let mut value = [0u8; 8];
    matches!(
        rustix::fs::lgetxattr(path, "user.overlay.opaque", &mut value[..]),
        Ok(n) if &value[..n] == b"y"
    )
}

fn copy_owner_and_mode(meta: &std::fs::Metadata, path: &Path) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))
        .with_context(|| format!("changing the owner of {}", path.display()))?;
    if !meta.file_type().is_symlink() {
        // After chown: chown clears setuid/setgid bits.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    Ok(())
}

/// Apply one layer directory `src` onto `dst`.
fn merge(src: &Path, dst: &Path) -> Result<()> {
    let entries = std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))?;
    for entry in entries {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = from
            .symlink_metadata()
            .with_context(|| format!("reading {}", from.display()))?;
        let kind = meta.file_type();
        if is_whiteout(&meta) {
            remove(&to)?;
        } else if kind.is_dir() {
            let keep = !is_opaque(&from) && to.symlink_metadata().is_ok_and(|m| m.is_dir());
            if !keep {
                remove(&to)?;
                std::fs::create_dir(&to).with_context(|| format!("creating {}", to.display()))?;
            }
            merge(&from, &to)?;
            copy_owner_and_mode(&meta, &to)?;
        } else if kind.is_symlink() {
            remove(&to)?;
            let target = std::fs::read_link(&from)?;
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("creating {}", to.display()))?;
            copy_owner_and_mode(&meta, &to)?;
        } else if kind.is_file() {
            remove(&to)?;
            std::fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            copy_owner_and_mode(&meta, &to)?;
        }
        // FIFOs, sockets and device nodes are not part of images box can unpack.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_merge_bottom_first_with_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let (l1, l2, dest) = (
            dir.path().join("l1"),
            dir.path().join("l2"),
            dir.path().join("root"),
        );
        for d in [&l1, &l2, &dest] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::create_dir_all(l1.join("etc")).unwrap();
        std::fs::write(l1.join("etc/a"), "1").unwrap();
        std::fs::write(l1.join("etc/b"), "1").unwrap();
        std::fs::create_dir_all(l2.join("etc")).unwrap();
        std::fs::write(l2.join("etc/a"), "2").unwrap();
        std::os::unix::fs::symlink("a", l2.join("etc/c")).unwrap();
        std::fs::write(dest.join("debris"), "x").unwrap();
        let marker = dir.path().join("complete");
        assert!(ensure_copy(&[&l1, &l2], &dest, &marker).unwrap());
        assert_eq!(std::fs::read_to_string(dest.join("etc/a")).unwrap(), "2");
        assert_eq!(std::fs::read_to_string(dest.join("etc/b")).unwrap(), "1");
        assert_eq!(
            std::fs::read_link(dest.join("etc/c")).unwrap(),
            Path::new("a")
        );
        assert!(!dest.join("debris").exists());
        assert!(!ensure_copy(&[&l1], &dest, &marker).unwrap());
    }
}
