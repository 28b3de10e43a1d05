//! The apply step: carry out a box's [`Plan`] in the holder, from the new mount and UTS
//! namespaces to the box's files written after the pivot, through the [`MountSys`] seam.
//!
//! Order (see [`crate::runtime::plan`] for why each step is there):
//! 1. unshare the mount and UTS namespaces; make `/` a recursive slave, so nothing
//!    mounted here propagates to the host while host mounts still arrive
//!    (mount_namespaces(7), "Shared subtrees"); set the hostname;
//! 2. clone the host's mount tree for `/run/host` *before* the box root is mounted, so the
//!    clone does not contain the box itself;
//! 3. mount the root: overlayfs, or the copy fallback when the kernel refuses overlayfs
//!    in a user namespace (a notice tells the user);
//! 4. each host-integration mount, its mount point created and opened with openat2(2)
//!    `RESOLVE_IN_ROOT` (symlinks in the image cannot point it outside the box), then the
//!    copy of the box root a recursive bind brought along is detached;
//! 5. `pivot_root(".", ".")` from inside the new root and a lazy unmount of the old root
//!    stacked on it (the pattern pivot_root(2) documents), then `chdir("/")`;
//! 6. the box's files.
//!
//! Invariants: every error names the path it is about (the mount's source and target,
//! the point remounted, the file written), and a mount's own hint (a volume, the box
//! executable) wins over a generic one from below; a read-only mount is never left
//! writable: without mount_setattr(2) (before Linux 5.12) each mount of the tree is
//! remounted read-only one by one, and any failure fails the start.

use std::ffi::CString;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result};
use rustix::fs::{OFlags, StatVfsMountFlags};
use rustix::mount::{MountFlags, MountPropagationFlags};

use super::mountsys::MountSys;
use crate::error::{Hint, HintExt, failure};
use crate::runtime::plan::{Mount, MountKind, Plan, Storage};
use crate::store::containers::StorageKind;

/// Set up the box of `plan` in this process (which becomes its holder): namespaces,
/// root, mounts, pivot, files. `has_root`: uid 0 exists in the user namespace.
/// `mount_root`: mounts the root the holder's outer namespace made (`holder/outer.rs`)
/// and returns its storage, in place of the plan's. `notice` passes a message on to the user. Returns the
/// storage actually used.
pub fn apply<S: MountSys>(
    sys: &mut S,
    plan: &Plan,
    has_root: bool,
    mount_root_made: Option<&mut dyn FnMut() -> Result<StorageKind>>,
    notice: &mut dyn FnMut(String),
) -> Result<StorageKind> {
    sys.unshare_mount_and_uts()
        .context("unshare(CLONE_NEWNS | CLONE_NEWUTS)")?;
    // Nothing mounted in the box may propagate to the host; host mounts still reach us.
    sys.mount_change(
        Path::new("/"),
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .context("making / a recursive slave mount")?;
    sys.set_hostname(&plan.hostname)
        .with_context(|| format!("setting the hostname {}", plan.hostname))?;
    // The host tree for /run/host, taken before the box root exists so the clone does
    // not contain the box itself.
    let host_root = sys
        .clone_tree(Path::new("/"))
        .context("cloning the host's mount tree")?;

    let storage = match mount_root_made {
        None => mount_root(sys, plan, has_root, notice)?,
        Some(mount) => mount()?,
    };
    let root_fd = sys
        .open_dir_path(&plan.root)
        .with_context(|| format!("opening {}", plan.root.display()))?;
    for m in &plan.mounts {
        mount_one(sys, &root_fd, m, &host_root).map_err(|err| match &m.hint {
            // The mount's own hint says more than a generic one from below.
            Some(hint) => err.context(Hint(hint.clone())),
            None => err,
        })?;
        detach_copied_root(sys, &root_fd, m, &plan.root)?;
    }
    drop(host_root);

    sys.fchdir(&root_fd).context("entering the box root")?;
    drop(root_fd);
    sys.pivot_root_to_cwd()
        .context("pivot_root into the box root")?;
    // The old root is stacked on "."; detach it so only the box is left.
    sys.unmount_detach(Path::new("."))
        .context("detaching the host root")?;
    sys.chdir(Path::new("/")).context("chdir /")?;

    sys.write_files(&plan.files)?;
    Ok(storage)
}

/// Detach the copy of the box root a recursive bind brought along (see
/// [`Mount::copied_root`]): with its `/proc` and the whole host at `run/host` in it,
/// `du ~` or `find ~` in the box would walk the host's whole tree.
fn detach_copied_root<S: MountSys>(
    sys: &mut S,
    root: &S::Fd,
    m: &Mount,
    box_root: &Path,
) -> Result<()> {
    let Some(copy) = m.copied_root(box_root) else {
        return Ok(());
    };
    let relative = copy.strip_prefix("/").unwrap_or(&copy);
    let fd = match sys.open_in_root(
        root,
        relative,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
    ) {
        Ok(fd) => fd,
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(err) => {
            return Err(err).with_context(|| format!("opening {} in the box", copy.display()));
        }
    };
    match sys.unmount_detach(&sys.fd_path(&fd)) {
        Ok(()) => Ok(()),
        // EINVAL: nothing is mounted there (the box root was not below this bind).
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        Err(err) => Err(err).with_context(|| {
            format!(
                "detaching the copy of the box root at {} in the box",
                copy.display()
            )
        }),
    }
}

/// Mount the box root at `plan.root`. Returns the storage actually used.
fn mount_root<S: MountSys>(
    sys: &mut S,
    plan: &Plan,
    has_root: bool,
    notice: &mut dyn FnMut(String),
) -> Result<StorageKind> {
    if let Storage::Overlay {
        layers_dir,
        lowers,
        upper,
        work,
    } = &plan.storage
    {
        if has_root {
            // `/` of the box is the upper dir's root: make it root's, as images expect.
            for dir in [upper, work] {
                let uid = sys
                    .owner(dir)
                    .with_context(|| format!("reading {}", dir.display()))?;
                if uid != 0 {
                    sys.chown_to_root(dir)
                        .with_context(|| format!("changing the owner of {}", dir.display()))?;
                }
            }
        }
        // Lower dirs relative to the layers directory keep the options within one page.
        sys.chdir(layers_dir)
            .with_context(|| format!("entering {}", layers_dir.display()))?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            lowers.join(":"),
            upper.display(),
            work.display()
        );
        let data = CString::new(options).context("overlay options")?;
        match sys.mount(
            Path::new("overlay"),
            &plan.root,
            "overlay",
            MountFlags::empty(),
            Some(data.as_c_str()),
        ) {
            Ok(()) => return Ok(StorageKind::Overlay),
            Err(err)
                if [libc::EINVAL, libc::EPERM, libc::EOPNOTSUPP, libc::ENODEV]
                    .contains(&err.raw_os_error().unwrap_or(0)) =>
            {
                notice(format!(
                    "the kernel refused overlayfs for box {} ({err}); using a full copy of the image instead: it takes the image's size on disk again and a while to build once",
                    plan.name
                ));
            }
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("mounting overlayfs at {} ({})", plan.root.display(), data.to_string_lossy()))
                    .hint("the layer directories must exist; `box rm` the box and create it again if the image was removed");
            }
        }
    }
    if sys.build_copy(&plan.layer_dirs, &plan.root, &plan.copy_marker)? && has_root {
        sys.chown_to_root(&plan.root)
            .with_context(|| format!("changing the owner of {}", plan.root.display()))?;
    }
    sys.mount_bind(&plan.root, &plan.root)
        .with_context(|| format!("bind-mounting {} onto itself", plan.root.display()))?;
    Ok(StorageKind::Copy)
}

/// Open (creating it if missing) the mount point `target` inside the root `root`,
/// resolving every component inside the box (symlinks in the image cannot point the
/// mount outside of it).
fn prepare_target<S: MountSys>(
    sys: &mut S,
    root: &S::Fd,
    target: &Path,
    file: bool,
) -> Result<S::Fd> {
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let missing = |err: &std::io::Error| err.raw_os_error() == Some(libc::ENOENT);
    let parts: Vec<&std::ffi::OsStr> = target
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    let mut current = sys.open_in_root(root, Path::new("."), flags)?;
    let mut prefix = PathBuf::new();
    for (i, part) in parts.iter().enumerate() {
        prefix.push(part);
        match sys.open_in_root(root, &prefix, flags) {
            Ok(fd) => current = fd,
            Err(err) if missing(&err) => {
                let last = i + 1 == parts.len();
                let parent_path = prefix
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let parent = sys.open_in_root(
                    root,
                    parent_path,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                )?;
                if last && file {
                    sys.create_file_at(&parent, part, 0o644)?;
                } else {
                    match sys.mkdirat(&parent, part, 0o755) {
                        Ok(()) => {}
                        Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                current = sys.open_in_root(root, &prefix, flags)?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(current)
}

/// The flags a read-only remount must keep: in a user namespace the kernel refuses to
/// clear nosuid/nodev/noexec/atime flags locked by the mount's creator
/// (mount_namespaces(7), "Restrictions on mount namespaces").
fn locked_flags<S: MountSys>(sys: &mut S, path: &Path) -> MountFlags {
    use StatVfsMountFlags as V;
    let Ok(have) = sys.mount_flags_of(path) else {
        return MountFlags::empty();
    };
    let mut flags = MountFlags::empty();
    for (v, m) in [
        (V::NOSUID, MountFlags::NOSUID),
        (V::NODEV, MountFlags::NODEV),
        (V::NOEXEC, MountFlags::NOEXEC),
        (V::NOATIME, MountFlags::NOATIME),
        (V::NODIRATIME, MountFlags::NODIRATIME),
        (V::RELATIME, MountFlags::RELATIME),
    ] {
        if have.contains(v) {
            flags |= m;
        }
    }
    flags
}

fn mount_one<S: MountSys>(sys: &mut S, root: &S::Fd, m: &Mount, host_root: &S::Fd) -> Result<()> {
    let what = || {
        format!(
            "mounting {} at {} in the box",
            m.source.display(),
            m.target.display()
        )
    };
    let is_file = matches!(m.kind, MountKind::BindFile);
    if matches!(m.kind, MountKind::BindDir { .. } | MountKind::BindFile) && !sys.exists(&m.source) {
        return Err(failure(
            format!(
                "{} does not exist (to be mounted at {} in the box)",
                m.source.display(),
                m.target.display()
            ),
            m.hint
                .clone()
                .unwrap_or_else(|| "create it on the host, then start the box again".into()),
        ));
    }
    let target = prepare_target(sys, root, &m.target, is_file)
        .with_context(|| format!("creating the mount point {} in the box", m.target.display()))?;
    let target_path = sys.fd_path(&target);
    match &m.kind {
        MountKind::BindDir { recursive } => {
            let flags = MountFlags::BIND
                | if *recursive {
                    MountFlags::REC
                } else {
                    MountFlags::empty()
                };
            sys.mount(&m.source, &target_path, "", flags, None)
                .with_context(what)?;
        }
        MountKind::BindFile => {
            sys.mount_bind(&m.source, &target_path).with_context(what)?;
        }
        MountKind::Tmpfs { options } => {
            let mut flags = MountFlags::empty();
            let mut data = Vec::new();
            for opt in options.split(',') {
                match opt {
                    "nosuid" => flags |= MountFlags::NOSUID,
                    "nodev" => flags |= MountFlags::NODEV,
                    "noexec" => flags |= MountFlags::NOEXEC,
                    other => data.push(other),
                }
            }
            let data = CString::new(data.join(",")).context("tmpfs options")?;
            sys.mount(
                Path::new("tmpfs"),
                &target_path,
                "tmpfs",
                flags,
                Some(data.as_c_str()),
            )
            .with_context(what)?;
        }
        MountKind::HostRoot => {
            sys.move_mount(host_root, &target).with_context(what)?;
        }
    }
    if !m.restrict.is_empty() {
        let mounted = prepare_target(sys, root, &m.target, is_file)?;
        let path = sys.fd_path(&mounted);
        let mut flags = MountFlags::BIND | locked_flags(sys, &path);
        for (on, flag) in [
            (m.restrict.nosuid, MountFlags::NOSUID),
            (m.restrict.nodev, MountFlags::NODEV),
            (m.restrict.noexec, MountFlags::NOEXEC),
        ] {
            if on {
                flags |= flag;
            }
        }
        sys.mount_remount(&path, flags).with_context(|| {
            format!(
                "remounting {} in the box with {:?}",
                m.target.display(),
                m.restrict
            )
        })?;
    }
    if m.read_only {
        // The fd still names the directory under the new mount; reopen to reach the mount.
        let mounted = prepare_target(sys, root, &m.target, is_file)?;
        make_read_only(sys, &mounted, &m.target)?;
    }
    Ok(())
}

/// Make the mount whose root `mounted` is, and every mount below it, read-only: a
/// `--volume SRC:DST:ro` whose source has mounts below it (a tmpfs, a USB disk) must not
/// be writable through them. The mounts also become private, so that a mount the host
/// makes below the source later (which would arrive writable through propagation) does
/// not show up in the box; podman's volumes are private by default too.
fn make_read_only<S: MountSys>(sys: &mut S, mounted: &S::Fd, target: &Path) -> Result<()> {
    let what = || format!("making {} read-only in the box", target.display());
    match sys.set_tree_read_only_private(mounted) {
        Ok(()) => return Ok(()),
        Err(err) if err.raw_os_error() != Some(libc::ENOSYS) => {
            return Err(err).with_context(what);
        }
        // Before Linux 5.12 there is no mount_setattr(2): do the same mount by mount.
        Err(_) => {}
    }
    let path = sys.fd_path(mounted);
    sys.mount_change(
        &path,
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .with_context(what)?;
    let top = sys
        .read_link(&path)
        .with_context(|| {
            format!(
                "reading {} (the mount at {})",
                path.display(),
                target.display()
            )
        })
        .with_context(what)?;
    let mountinfo = sys
        .mountinfo()
        .context("reading /proc/self/mountinfo")
        .with_context(what)?;
    let below = mounts_below(&mountinfo, &top);
    for point in std::iter::once(path).chain(below) {
        let flags = MountFlags::BIND | MountFlags::RDONLY | locked_flags(sys, &point);
        sys.mount_remount(&point, flags)
            .with_context(|| format!("remounting {} read-only", point.display()))
            .with_context(what)
            .hint("a read-only volume is never left writable; remove the mounts below its source, or create the box without `:ro`")?;
    }
    Ok(())
}

/// The mount points strictly below `top` listed in `mountinfo` (proc_pid_mountinfo(5)),
/// outermost first as the kernel lists them.
fn mounts_below(mountinfo: &str, top: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point != top && point.starts_with(top))
        .collect()
}

/// Undo the octal escapes (`\040` for a space) the kernel writes in mountinfo paths.
fn unescape_mountinfo(field: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |n, d| n.wrapping_mul(8).wrapping_add(d - b'0')),
                );
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::ffi::OsString::from_vec(out)
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
