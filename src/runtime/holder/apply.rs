//! The apply step: carry out a box's [`Plan`] in the holder, from the new mount and UTS
//! namespaces to the pivot into the box's root, through the [`MountSys`] seam.
//!
//! Order (see [`crate::runtime::plan`] for why each step is there):
//! 1. unshare the mount and UTS namespaces; make `/` a recursive slave, so nothing
//!    mounted here propagates to the host while host mounts still arrive
//!    (mount_namespaces(7), "Shared subtrees"); set the hostname;
//! 2. clone the host's mount tree for `/run/host` *before* the box root is mounted, so the
//!    clone does not contain the box itself;
//! 3. mount the root: overlayfs, or the copy fallback when the kernel refuses overlayfs
//!    in a user namespace (a notice tells the user);
//! 4. each host-integration mount ([`mount_one`]), in the plan's order: its mount point
//!    opened (and created when missing: the last component with `O_EXCL | O_NOFOLLOW`)
//!    from the mount it lies in, the box's root or a mount made before it (`/run/host`
//!    in `/run`, a volume in the home), with openat2(2) `RESOLVE_NO_XDEV`:
//!    `RESOLVE_IN_ROOT` in the box's own filesystems (its root, its `/run`), so a symlink
//!    in the image resolves inside the box, `RESOLVE_BENEATH` in a directory shared with
//!    the host; a mount point whose path leads out of that (a symlink of the image into
//!    the bind-mounted home or `/tmp`) is refused, naming the symlink
//!    ([`crate::sys::boxfs`]); then the source's tree cloned (open_tree(2)) or a tmpfs
//!    made (fsopen(2)), attached there with move_mount(2), and its flags set on the tree
//!    the descriptor holds (read-only, nosuid, nodev, noexec: mount_setattr(2)); then the
//!    copy of the box root a recursive bind brought along is detached;
//! 5. `pivot_root(".", ".")` from inside the new root and a lazy unmount of the old root
//!    stacked on it (the pattern pivot_root(2) documents), then `chdir("/")`.
//!
//! What it hands back ([`Applied`]) are descriptors of the box's own filesystems, its
//! root and its tmpfs, through which the holder then writes the box's files
//! ([`crate::sys::boxfs::BoxFs`]), and the mount points it created.
//!
//! Invariants: a mount the plan calls optional (box under distrobox's names) that fails
//! is left out with a notice, never fails the start; every error names the path it is
//! about (the mount's source and target,
//! the point remounted, the file written), and a mount's own hint (a volume, the box
//! executable) wins over a generic one from below; a read-only mount is never left
//! writable: without mount_setattr(2) (before Linux 5.12) each mount of the tree is
//! remounted read-only one by one, and any failure fails the start; nothing box mounts
//! is reached by a path it resolved again later: each mount keeps the descriptor it was
//! attached from.

use std::ffi::CString;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result};
use rustix::fs::{OFlags, StatVfsMountFlags};
use rustix::mount::{MountFlags, MountPropagationFlags};

use super::mountsys::MountSys;
use crate::error::{Hint, HintExt, failure};
use crate::runtime::plan::{Mount, MountKind, Plan, Storage};
use crate::store::containers::StorageKind;
use crate::sys::MountAttrs;

/// What [`apply`] leaves the holder: the box's own filesystems, by descriptor (see
/// [`crate::sys::boxfs::BoxFs`]), and what it did.
pub struct Applied<Fd> {
    /// The storage actually used.
    pub storage: StorageKind,
    /// The box's root (`/` after the pivot).
    pub root: Fd,
    /// The other filesystems box made for this box alone (the tmpfs at `/run`), by
    /// their path in the box.
    pub own: Vec<(PathBuf, Fd)>,
    /// The mount points box created, by their path in the box (the last component: an
    /// empty directory or file).
    pub made: Vec<PathBuf>,
}

/// A mount made so far (or the box's root): what the mount points below it are
/// resolved from.
struct Base<Fd> {
    /// Its path in the box.
    at: PathBuf,
    /// Its root.
    fd: Fd,
    /// Whether it is the box's own (its root, a tmpfs), not shared with the host.
    own: bool,
}

/// The hint of a namespace or mount the kernel refused where a user namespace should
/// allow it: a host restriction (AppArmor, a sysctl), which `box doctor` names.
const DOCTOR_HINT: &str = "the kernel refused it in box's user namespace: user namespaces may be restricted on this host (AppArmor's kernel.apparmor_restrict_unprivileged_userns, a sysctl); `box doctor` checks this host and says how to fix it";

/// Set up the box of `plan` in this process (which becomes its holder): namespaces,
/// root, mounts, pivot. `has_root`: uid 0 exists in the user namespace.
/// `mount_root_made`: mounts the root the holder's outer namespace made
/// (`holder/outer.rs`) and returns its storage, in place of the plan's. `notice` passes a
/// message on to the user.
pub fn apply<S: MountSys>(
    sys: &mut S,
    plan: &Plan,
    has_root: bool,
    mount_root_made: Option<&mut dyn FnMut() -> Result<StorageKind>>,
    notice: &mut dyn FnMut(String),
) -> Result<Applied<S::Fd>> {
    sys.unshare_mount_and_uts()
        .context("unshare(CLONE_NEWNS | CLONE_NEWUTS)")
        .hint(DOCTOR_HINT)?;
    // Nothing mounted in the box may propagate to the host; host mounts still reach us.
    sys.mount_change(
        Path::new("/"),
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .context("making / a recursive slave mount")
    .hint(DOCTOR_HINT)?;
    sys.set_hostname(&plan.hostname)
        .with_context(|| format!("setting the hostname {}", plan.hostname))?;
    // The host tree for /run/host, taken before the box root exists so the clone does
    // not contain the box itself.
    let mut host_root = Some(
        sys.clone_tree(Path::new("/"), true)
            .context("cloning the host's mount tree")?,
    );

    let storage = match mount_root_made {
        None => mount_root(sys, plan, has_root, notice)?,
        Some(mount) => mount()?,
    };
    let root_fd = sys
        .open_dir_path(&plan.root)
        .with_context(|| format!("opening {}", plan.root.display()))?;
    let mut bases = vec![Base {
        at: PathBuf::from("/"),
        fd: root_fd,
        own: true,
    }];
    let mut made = Vec::new();
    for m in &plan.mounts {
        if let Err(err) = mount_one(sys, &mut bases, m, &mut host_root, &mut made) {
            if m.optional() {
                notice(format!(
                    "box starts without {}: {}",
                    m.target.display(),
                    crate::error::message(&err)
                ));
                continue;
            }
            return Err(match &m.hint {
                // The mount's own hint says more than a generic one from below.
                Some(hint) => err.context(Hint(hint.clone())),
                None => err,
            });
        }
        detach_copied_root(sys, &bases, m, &plan.root)?;
    }
    drop(host_root);
    let mut bases = bases.into_iter();
    let root = bases.next().expect("the root is the first base").fd;
    // The mounts shared with the host are not kept open past the pivot.
    let own = bases.filter(|b| b.own).map(|b| (b.at, b.fd)).collect();

    sys.fchdir(&root).context("entering the box root")?;
    sys.pivot_root_to_cwd()
        .context("pivot_root into the box root")?;
    // The old root is stacked on "."; detach it so only the box is left.
    sys.unmount_detach(Path::new("."))
        .context("detaching the host root")?;
    sys.chdir(Path::new("/")).context("chdir /")?;
    Ok(Applied {
        storage,
        root,
        own,
        made,
    })
}

/// The base a box path lies in (the latest mount whose path is its longest prefix) and
/// the path relative to it.
fn base_of<'a, Fd>(bases: &'a [Base<Fd>], path: &Path) -> (&'a Base<Fd>, PathBuf) {
    let mut best = &bases[0];
    for base in bases {
        if path.starts_with(&base.at)
            && base.at.components().count() >= best.at.components().count()
        {
            best = base;
        }
    }
    let rel = path.strip_prefix(&best.at).unwrap_or(path).to_owned();
    (best, rel)
}

/// Open `rel` below `base` (see the module doc for how).
fn open_below<S: MountSys>(
    sys: &mut S,
    base: &Base<S::Fd>,
    rel: &Path,
    flags: OFlags,
) -> std::io::Result<S::Fd> {
    sys.open_below(&base.fd, rel, flags, !base.own)
}

/// Detach the copy of the box root a recursive bind brought along (see
/// [`Mount::copied_root`]): with its `/proc` and the whole host at `run/host` in it,
/// `du ~` or `find ~` in the box would walk the host's whole tree.
fn detach_copied_root<S: MountSys>(
    sys: &mut S,
    bases: &[Base<S::Fd>],
    m: &Mount,
    box_root: &Path,
) -> Result<()> {
    let Some(copy) = m.copied_root(box_root) else {
        return Ok(());
    };
    let (base, rel) = base_of(bases, &copy);
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Ok(());
    };
    // Not there as the host's path says (a symlink on the way): nothing to detach.
    let gone = |err: &std::io::Error| {
        [libc::ENOENT, libc::ENOTDIR, libc::EXDEV, libc::ELOOP]
            .contains(&err.raw_os_error().unwrap_or(0))
    };
    let what = || format!("opening {} in the box", copy.display());
    let dir = match open_below(sys, base, parent, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        Err(err) if gone(&err) => return Ok(()),
        Err(err) => return Err(err).with_context(what),
    };
    let fd = match sys.open_mounted(&dir, name) {
        Ok(fd) => fd,
        Err(err) if gone(&err) => return Ok(()),
        Err(err) => return Err(err).with_context(what),
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
        lowers_dir,
        lowers,
        upper,
        work,
    } = &plan.storage
    {
        if lowers.len() > OVERLAY_MAX_LOWERS {
            notice(too_many_layers(plan, lowers.len()));
        } else {
            match mount_overlay(sys, plan, lowers_dir, lowers, upper, work, has_root)? {
                None => return Ok(StorageKind::Overlay),
                Some(refusal) => notice(overlay_refused(plan, &refusal)),
            }
        }
    }
    if sys.build_copy(&plan.layer_dirs, &plan.root, &plan.copy_marker)? && has_root {
        sys.chown_to_root(&plan.root)
            .with_context(|| format!("changing the owner of {}", plan.root.display()))?;
    }
    sys.mount_bind(&plan.root, &plan.root)
        .with_context(|| format!("bind-mounting {} onto itself", plan.root.display()))
        .hint(DOCTOR_HINT)?;
    Ok(StorageKind::Copy)
}

/// The notice of an image of more layers than overlayfs stacks (`count`).
pub(super) fn too_many_layers(plan: &Plan, count: usize) -> String {
    format!(
        "the image of box {} has {count} layers, and overlayfs stacks at most {OVERLAY_MAX_LOWERS}; using a full copy of the image instead: it takes the image's size on disk again and a while to build once",
        plan.name
    )
}

/// The notice of the kernel's `refusal` of overlayfs.
pub(super) fn overlay_refused(plan: &Plan, refusal: &std::io::Error) -> String {
    format!(
        "the kernel refused overlayfs for box {} ({refusal}); using a full copy of the image instead: it takes the image's size on disk again and a while to build once (`box doctor` checks overlayfs on this host)",
        plan.name
    )
}

/// The hint for a box whose image's layer directories are gone from the store: pulling
/// the image again brings them back, and the box keeps its own files (its upper
/// directory); removing the box would lose them.
pub(super) fn missing_layers_hint(image: &str) -> String {
    format!(
        "the image's layers are not in the store (removed, or set aside when box began \
         guarding its layers): `box pull {image}` brings them back, and the box keeps its own \
         files"
    )
}

/// The most lower directories overlayfs stacks (`OVL_MAX_STACK`, fs/overlayfs/params.h).
pub(crate) const OVERLAY_MAX_LOWERS: usize = 500;

/// The most bytes of options mount(2) takes: one page, its NUL included.
const MOUNT_DATA_MAX: usize = 4095;

/// Mount the overlay of `plan` at its root. `Ok(None)` when mounted; `Ok(Some(error))`
/// when the kernel refuses overlayfs here (in a user namespace, or on this filesystem),
/// for the copy fallback.
fn mount_overlay<S: MountSys>(
    sys: &mut S,
    plan: &Plan,
    lowers_dir: &Path,
    lowers: &[String],
    upper: &Path,
    work: &Path,
    has_root: bool,
) -> Result<Option<std::io::Error>> {
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
    // The lower dirs are the short links in `lowers_dir`, relative to it: see the module
    // doc of `holder` for why.
    sys.chdir(lowers_dir)
        .with_context(|| format!("entering {}", lowers_dir.display()))
        .hint("the box's directory is incomplete; `box rm` the box and create it again")?;
    let options = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lowers.join(":"),
        upper.display(),
        work.display()
    );
    if options.len() > MOUNT_DATA_MAX {
        return Err(failure(
            format!(
                "the overlay of box {} needs {} bytes of mount options, more than the {MOUNT_DATA_MAX} mount(2) takes: the paths of its upper and work directories are {} and {} bytes long",
                plan.name,
                options.len(),
                upper.as_os_str().len(),
                work.as_os_str().len()
            ),
            "keep box's store at a shorter path (XDG_DATA_HOME)",
        ));
    }
    let data = CString::new(options).context("overlay options")?;
    let err = match sys.mount(
        Path::new("overlay"),
        &plan.root,
        "overlay",
        MountFlags::empty(),
        Some(data.as_c_str()),
    ) {
        Ok(()) => return Ok(None),
        Err(err) => err,
    };
    // Say what is really wrong: a layer gone from the store, or else what the kernel said.
    let missing: Vec<&PathBuf> = plan
        .layer_dirs
        .iter()
        .filter(|dir| !sys.exists(dir).unwrap_or(true))
        .collect();
    if let Some(first) = missing.first() {
        return Err(err)
            .with_context(|| {
                format!(
                    "mounting overlayfs at {}: {} of its {} layer directories are missing, {} first",
                    plan.root.display(),
                    missing.len(),
                    plan.layer_dirs.len(),
                    first.display()
                )
            })
            .hint(missing_layers_hint(&plan.image));
    }
    if [libc::EINVAL, libc::EPERM, libc::EOPNOTSUPP, libc::ENODEV]
        .contains(&err.raw_os_error().unwrap_or(0))
    {
        return Ok(Some(err));
    }
    let shown = if lowers.len() > 8 {
        format!(
            "{} lower dirs in {}, upperdir={}, workdir={}",
            lowers.len(),
            lowers_dir.display(),
            upper.display(),
            work.display()
        )
    } else {
        data.to_string_lossy().into_owned()
    };
    Err(err)
        .with_context(|| format!("mounting overlayfs at {} ({shown})", plan.root.display()))
        .hint("check that the box's directory and the store are intact (`box doctor` checks the store); else `box rm` the box and create it again")
}

/// Open (creating it if missing) the mount point `target` from the mount it lies in
/// (see the module doc); whether its last component was created now.
fn prepare_target<S: MountSys>(
    sys: &mut S,
    bases: &[Base<S::Fd>],
    target: &Path,
    file: bool,
) -> Result<(S::Fd, bool)> {
    let (base, rel) = base_of(bases, target);
    let leads_out = |sys: &mut S| {
        let through = sys
            .symlink_leading_out(&base.fd, &rel, !base.own)
            .map(|(link, to)| (base.at.join(link), to));
        crate::sys::boxfs::leads_out(through)
    };
    let result = (|| -> std::io::Result<(S::Fd, bool)> {
        let flags = OFlags::PATH | OFlags::CLOEXEC;
        let missing = |err: &std::io::Error| err.raw_os_error() == Some(libc::ENOENT);
        let parts: Vec<&std::ffi::OsStr> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p),
                _ => None,
            })
            .collect();
        let mut current = open_below(sys, base, Path::new(""), flags)?;
        let mut created = false;
        let mut prefix = PathBuf::new();
        for (i, part) in parts.iter().enumerate() {
            prefix.push(part);
            match open_below(sys, base, &prefix, flags) {
                Ok(fd) => current = fd,
                Err(err) if missing(&err) => {
                    let last = i + 1 == parts.len();
                    let parent = open_below(
                        sys,
                        base,
                        prefix.parent().unwrap_or(Path::new("")),
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    )?;
                    let made = if last && file {
                        sys.create_file_at(&parent, part, 0o644)
                    } else {
                        sys.mkdirat(&parent, part, 0o755)
                    };
                    match made {
                        Ok(()) => created = last,
                        // A dangling symlink is no mount point: the open below says so.
                        Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(err) => return Err(err),
                    }
                    current = open_below(sys, base, &prefix, flags)?;
                }
                Err(err) => return Err(err),
            }
        }
        Ok((current, created))
    })();
    match result {
        Err(err) if err.raw_os_error() == Some(libc::EXDEV) => Err(leads_out(sys)),
        other => Ok(other?),
    }
}

/// The options of a tmpfs (`mode=0755,nosuid,nodev`): its parameters, and the mount
/// flags among them.
fn tmpfs_options(options: &str) -> (Vec<(String, String)>, MountAttrs) {
    let mut attrs = MountAttrs::default();
    let mut params = Vec::new();
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "nosuid" => attrs.nosuid = true,
            "nodev" => attrs.nodev = true,
            "noexec" => attrs.noexec = true,
            "ro" => attrs.read_only = true,
            other => {
                let (key, value) = other.split_once('=').unwrap_or((other, ""));
                params.push((key.to_owned(), value.to_owned()));
            }
        }
    }
    (params, attrs)
}

/// The flags a remount must keep: in a user namespace the kernel refuses to clear
/// nosuid/nodev/noexec/atime flags locked by the mount's creator (mount_namespaces(7),
/// "Restrictions on mount namespaces").
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

/// Make the mount `m` (its target in the box, its source, its kind and flags) in the
/// mount its target lies in; it becomes a base for the mounts after it.
fn mount_one<S: MountSys>(
    sys: &mut S,
    bases: &mut Vec<Base<S::Fd>>,
    m: &Mount,
    host_root: &mut Option<S::Fd>,
    made: &mut Vec<PathBuf>,
) -> Result<()> {
    let what = || {
        format!(
            "mounting {} at {} in the box",
            m.source.display(),
            m.target.display()
        )
    };
    let is_file = matches!(m.kind, MountKind::BindFile);
    if matches!(m.kind, MountKind::BindDir { .. } | MountKind::BindFile) {
        match sys.exists(&m.source) {
            Ok(true) => {}
            Ok(false) => {
                return Err(failure(
                    format!(
                        "{} does not exist (to be mounted at {} in the box)",
                        m.source.display(),
                        m.target.display()
                    ),
                    m.hint.clone().unwrap_or_else(|| {
                        "create it on the host, then start the box again".into()
                    }),
                ));
            }
            // There, but not for the box's user namespace: not "missing".
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(failure(
                    format!(
                        "{} cannot be reached (to be mounted at {} in the box): permission denied",
                        m.source.display(),
                        m.target.display()
                    ),
                    "a directory on the way is not searchable by you (or is another user's); \
                     change its permissions, then start the box again",
                ));
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "looking up {} (to be mounted at {} in the box)",
                        m.source.display(),
                        m.target.display()
                    )
                });
            }
        }
    }
    let (target, created) = prepare_target(sys, bases, &m.target, is_file)
        .with_context(|| format!("creating the mount point {} in the box", m.target.display()))?;
    if created {
        made.push(m.target.clone());
    }
    let mounted = match &m.kind {
        MountKind::BindDir { recursive } => sys.clone_tree(&m.source, *recursive),
        MountKind::BindFile => sys.clone_tree(&m.source, false),
        MountKind::Tmpfs { options } => {
            let (params, attrs) = tmpfs_options(options);
            sys.new_tmpfs(&params, attrs)
        }
        MountKind::HostRoot => host_root
            .take()
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EBUSY)),
    }
    .with_context(what)?;
    sys.move_mount(&mounted, &target).with_context(what)?;
    restrict(sys, &mounted, m)?;
    bases.push(Base {
        at: m.target.clone(),
        fd: mounted,
        own: matches!(m.kind, MountKind::Tmpfs { .. }),
    });
    Ok(())
}

/// `read-only and nosuid` for messages.
fn describe(attrs: &MountAttrs) -> String {
    let names: Vec<&str> = [
        (attrs.read_only, "read-only"),
        (attrs.nosuid, "nosuid"),
        (attrs.nodev, "nodev"),
        (attrs.noexec, "noexec"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Give the mount `mounted` (the root of the tree `m` attached), and every mount below
/// it for a recursive one, the flags `m` asks for: read-only (then also private, so that
/// a mount the host makes later below the source, which would arrive writable through
/// propagation, does not show up in the box; podman's volumes are private by default
/// too), nosuid, nodev, noexec. A `--volume SRC:DST:ro` whose source has mounts below it
/// (a tmpfs, a USB disk) must not be writable through them.
fn restrict<S: MountSys>(sys: &mut S, mounted: &S::Fd, m: &Mount) -> Result<()> {
    let attrs = MountAttrs {
        read_only: m.read_only,
        nosuid: m.restrict.nosuid,
        nodev: m.restrict.nodev,
        noexec: m.restrict.noexec,
        private: m.read_only,
    };
    if attrs.is_empty() {
        return Ok(());
    }
    let recursive = matches!(
        m.kind,
        MountKind::BindDir { recursive: true } | MountKind::HostRoot
    );
    let target = &m.target;
    let what = || {
        format!(
            "making {} {} in the box",
            target.display(),
            describe(&attrs)
        )
    };
    match sys.set_attrs(mounted, attrs, recursive) {
        Ok(()) => return Ok(()),
        Err(err) if err.raw_os_error() != Some(libc::ENOSYS) => {
            return Err(err).with_context(what);
        }
        // Before Linux 5.12 there is no mount_setattr(2): do the same mount by mount.
        Err(_) => {}
    }
    let path = sys.fd_path(mounted);
    if attrs.private {
        sys.mount_change(
            &path,
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )
        .with_context(what)?;
    }
    let below = if recursive {
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
        mounts_below(&mountinfo, &top)
    } else {
        Vec::new()
    };
    let mut asked = MountFlags::BIND;
    for (on, flag) in [
        (attrs.read_only, MountFlags::RDONLY),
        (attrs.nosuid, MountFlags::NOSUID),
        (attrs.nodev, MountFlags::NODEV),
        (attrs.noexec, MountFlags::NOEXEC),
    ] {
        if on {
            asked |= flag;
        }
    }
    for (i, point) in std::iter::once(path).chain(below).enumerate() {
        let flags = asked | locked_flags(sys, &point);
        let done = sys
            .mount_remount(&point, flags)
            .with_context(|| format!("remounting {} {}", point.display(), describe(&attrs)))
            .with_context(what);
        match done {
            Ok(()) => {}
            // A read-only mount is never left writable; nosuid below the top of a tree
            // is as much as an old kernel allows.
            Err(err) if attrs.read_only => {
                return Err(err).hint("a read-only volume is never left writable; remove the mounts below its source, or create the box without `:ro`");
            }
            Err(err) if i == 0 => return Err(err),
            Err(_) => {}
        }
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
