//! The holder's outer namespace, with subordinate ids: the one place a box's start reaches
//! the store's guarded `layers/` (see the store's module doc).
//!
//! The holder is started in a user namespace P that maps the box's ids and the store
//! owner ([`crate::sys::idmap::Reach::Store`]). There, as root, in a mount namespace of
//! its own, it makes the box's root as a *detached* mount, attached to no path: the
//! overlay (fsopen(2), fsmount(2)), whose lower directories it reads beneath `layers/`,
//! or the copy fallback's directory, which it fills from the layers, cloned (open_tree(2)).
//! Then it forks: the child unshares a new user namespace C, whose maps the parent writes
//! (root in P may map any id P maps into a child namespace: the box's ids on themselves,
//! without the store owner), becomes root in C and goes on as the holder always has
//! ([`super::run`]), in mount and UTS namespaces of its own (owned by C, so that joins,
//! which enter C first, may enter them), attaching the root at its place first
//! (move_mount(2), [`attach`]): binds, pivot, files, the fork of the process that stays.
//! The parent waits for the child and ends with its status; the box's user namespace is C.
//! Detached, the root is in no mount table of P's that C would inherit locked: C may
//! detach the copy of it a recursive bind of the home brings along, as ever.
//!
//! Why so little happens in P: root in P can read and write `layers/`, and every path of
//! the plan comes from files a box can change (its record, the home, symlinks). So P
//! follows none of them as root: it opens the store and, beneath it, `layers/` (checked
//! guarded: a directory a box put in its place never is), the root directory, the copy
//! marker's directory, the upper and work directories, with no symlink followed, and
//! works through those descriptors; the overlay is told the upper and work directories
//! by path (its options show them, `runtime::members` finds a box's mounts by them),
//! resolved with the user's uid as the effective one, which cannot enter `layers/`. The
//! lower layers are the plan's layer directories' names, checked to be layers' (hex), taken
//! beneath P's descriptor of `layers/`: never the box's `lowers/` links, which are the
//! user's and root in a box can rewrite. Each is given on its own (`lowerdir+`, Linux 6.8:
//! fsconfig(2) takes 255 bytes a value, three 64-hex names); a kernel before refuses that,
//! and gets one `lowerdir` of short links that only P reaches, in a detached private tmpfs
//! ([`link_lowers`]; see `holder`, "Many layers", for the limits). In C,
//! nothing reaches `layers/`: C does not map the store owner. The user on the host has
//! every capability in C (it owns P, C's parent), so joining works as before, with the
//! same syscalls.
//!
//! Invariants: P writes nothing but the box's root (the copy fallback, the owner of the
//! upper and work directories) and C's id maps; no process of C holds a descriptor or a
//! working directory beneath `layers/` (P leaves it and closes its descriptors before
//! the fork; the detached root C gets is the box's own).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::apply::OVERLAY_MAX_LOWERS;
use crate::error::{HintExt, failure};
use crate::runtime::plan::{Plan, Storage};
use crate::store::containers::StorageKind;
use crate::sys::idmap::{STORE_OWNER_INSIDE, inside_ids};

/// Where the process goes on after [`nest`].
pub(super) enum Nested {
    /// In C, as root: the box's root is the detached mount `tree`, with `storage`; attach
    /// it at the plan's root ([`attach`]) and go on with the rest.
    Inner { storage: StorageKind, tree: OwnedFd },
    /// In P, once the child ended: end with its status.
    Outer(ExitCode),
}

/// Mount the box's root, fork, and put the child in a user namespace of its own (see the
/// module doc). An error in P is P's to report; one in the child is the child's, which
/// then ends (P passes its status on).
pub(super) fn nest(plan: &Plan, has_root: bool, notice: &mut dyn FnMut(String)) -> Result<Nested> {
    let (storage, tree) = mount_root(plan, has_root, notice)?;
    let (to_parent_read, to_parent) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("pipe")?;
    let (from_parent, to_child) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("pipe")?;
    let outer_pid = rustix::process::getpid();
    // SAFETY: the holder (`box __holder`, a fresh exec of box) never starts a thread; it
    // runs its steps in turn on the main thread, so it is single-threaded here.
    match unsafe { crate::sys::fork() }.context("fork")? {
        None => {
            drop((to_parent_read, to_child));
            inner(outer_pid, to_parent, from_parent)?;
            Ok(Nested::Inner { storage, tree })
        }
        Some(child) => {
            drop((to_parent, from_parent, tree));
            outer(child, to_parent_read, to_child).map(Nested::Outer)
        }
    }
}

/// In P: the box's root as a detached mount (attached to no path, so in no mount
/// namespace but its own), made through descriptors opened as the module doc says: the
/// overlay (fsopen(2) and fsmount(2)), or the copy fallback's directory, cloned.
fn mount_root(
    plan: &Plan,
    has_root: bool,
    notice: &mut dyn FnMut(String),
) -> Result<(StorageKind, OwnedFd)> {
    use super::mountsys::MountSys as _;
    let mut sys = super::mountsys::Kernel;
    // fsopen needs a capability over the mount namespace's owner: a namespace of P's own.
    crate::sys::unshare_namespaces(rustix::thread::UnshareFlags::NEWNS)
        .context("unshare(CLONE_NEWNS) for the box's root")?;
    let opened = open_paths(plan)?;
    if let Some((upper, work)) = &opened.upper_work {
        if opened.names.len() > OVERLAY_MAX_LOWERS {
            notice(super::apply::too_many_layers(plan, opened.names.len()));
        } else {
            if has_root {
                // `/` of the box is the upper dir's root: make it root's, as images expect.
                for (dir, named) in [(upper, &plan_upper(plan)), (work, &plan_work(plan))] {
                    let uid = sys
                        .owner(dir)
                        .with_context(|| format!("reading {}", named.display()))?;
                    if uid != 0 {
                        sys.chown_to_root(dir).with_context(|| {
                            format!("changing the owner of {}", named.display())
                        })?;
                    }
                }
            }
            if let Some(tree) = mount_overlay(plan, &opened, notice)? {
                return Ok((StorageKind::Overlay, tree));
            }
        }
    }
    if sys.build_copy(&opened.layer_dirs, &opened.root, &opened.copy_marker)? && has_root {
        sys.chown_to_root(&opened.root)
            .with_context(|| format!("changing the owner of {}", plan.root.display()))?;
    }
    use rustix::mount::OpenTreeFlags as F;
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        &opened.root,
        F::OPEN_TREE_CLOEXEC | F::OPEN_TREE_CLONE,
    )
    .map_err(std::io::Error::from)
    .with_context(|| format!("binding {}", plan.root.display()))?;
    drop(opened);
    Ok((StorageKind::Copy, tree))
}

fn plan_upper(plan: &Plan) -> PathBuf {
    match &plan.storage {
        Storage::Overlay { upper, .. } => upper.clone(),
        Storage::Copy => PathBuf::new(),
    }
}

fn plan_work(plan: &Plan) -> PathBuf {
    match &plan.storage {
        Storage::Overlay { work, .. } => work.clone(),
        Storage::Copy => PathBuf::new(),
    }
}

/// The longest value fsconfig(2) takes: it copies one with `strndup_user(_value, 256)`
/// (fs/fsopen.c), 256 bytes with the NUL, and refuses a longer one with EINVAL.
const FSCONFIG_VALUE_MAX: usize = 255;

/// How P names the lower layers to overlayfs (see the module doc of `holder`, "Many
/// layers").
enum Lowers<'a> {
    /// One `lowerdir+` per layer, top first, each its name relative to the working
    /// directory, `layers/` (Linux 6.8).
    Each(&'a [String]),
    /// One `lowerdir` of short names relative to the working directory, a private tmpfs
    /// of links ([`link_lowers`]).
    Joined(&'a str),
}

/// The overlay of the box, detached: `Ok(None)` when the kernel refuses overlayfs here
/// (a notice said why), for the copy fallback.
fn mount_overlay(
    plan: &Plan,
    opened: &Opened,
    notice: &mut dyn FnMut(String),
) -> Result<Option<OwnedFd>> {
    let (upper, work) = (plan_upper(plan), plan_work(plan));
    for (what, dir) in [("upper", &upper), ("work", &work)] {
        if dir.as_os_str().len() > FSCONFIG_VALUE_MAX {
            bail!(failure(
                format!(
                    "the overlay of box {} cannot be told its {what} directory {}: its path is {} bytes long, and fsconfig(2) takes at most {FSCONFIG_VALUE_MAX}",
                    plan.name,
                    dir.display(),
                    dir.as_os_str().len()
                ),
                "keep box's store at a shorter path (XDG_DATA_HOME)",
            ));
        }
    }
    let uid = plan.user.uid;
    // Top first, overlayfs' order.
    let top_first: Vec<String> = opened.names.iter().rev().cloned().collect();
    let each = in_dir(opened.layers.as_fd(), || {
        fsmount_overlay(&Lowers::Each(&top_first), &upper, &work, uid)
    })
    .context("entering the store's layers")?;
    let refused = match each {
        Ok(tree) => return Ok(Some(tree)),
        Err(err) => overlay_error(plan, opened, err)?,
    };
    // EINVAL is what a kernel before 6.8 says of `lowerdir+` (an unknown option, at once
    // or once the mount is created): name the layers by short links instead.
    let joined = if refused.raw_os_error() == Some(libc::EINVAL) {
        joined_links(opened.names.len())
    } else {
        None
    };
    let Some(joined) = joined else {
        if refused.raw_os_error() == Some(libc::EINVAL) {
            notice(format!(
                "the image of box {} has {} layers, and this kernel refused them one by one to overlayfs ({refused}; that takes Linux 6.8): all at once, box can name at most {} layers of its guarded store; using a full copy of the image instead: it takes the image's size on disk again and a while to build once",
                plan.name,
                opened.names.len(),
                joined_links_max()
            ));
        } else {
            notice(super::apply::overlay_refused(plan, &refused));
        }
        return Ok(None);
    };
    let links = link_lowers(opened.layers.as_raw_fd(), &opened.names)
        .map_err(std::io::Error::from)
        .context("linking the box's layers in a private tmpfs")?;
    let linked = in_dir(links.as_fd(), || {
        fsmount_overlay(&Lowers::Joined(&joined), &upper, &work, uid)
    })
    .context("entering the private tmpfs of the box's layers")?;
    drop(links);
    match linked {
        Ok(tree) => Ok(Some(tree)),
        Err(err) => {
            let refused = overlay_error(plan, opened, err)?;
            notice(super::apply::overlay_refused(plan, &refused));
            Ok(None)
        }
    }
}

/// Run `f` with the working directory `dir`, and leave it for `/` after: no process of
/// C may have one beneath `layers/`.
fn in_dir<T>(dir: BorrowedFd<'_>, f: impl FnOnce() -> T) -> std::io::Result<T> {
    rustix::process::fchdir(dir)?;
    let done = f();
    rustix::process::chdir("/")?;
    Ok(done)
}

/// What the overlay's `err` means: a refusal (the copy fallback) as `Ok`, else the
/// error to report, in the words of the holder's own `mount_overlay`: a layer gone from
/// the store, or else what the kernel said.
fn overlay_error(plan: &Plan, opened: &Opened, err: std::io::Error) -> Result<std::io::Error> {
    let missing: Vec<&PathBuf> = opened
        .names
        .iter()
        .zip(&plan.layer_dirs)
        .filter(|(name, _)| {
            rustix::fs::statat(
                opened.layers.as_fd(),
                name.as_str(),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .err()
                == Some(rustix::io::Errno::NOENT)
        })
        .map(|(_, dir)| dir)
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
            .hint(super::apply::missing_layers_hint(&plan.image));
    }
    if [libc::EINVAL, libc::EPERM, libc::EOPNOTSUPP, libc::ENODEV]
        .contains(&err.raw_os_error().unwrap_or(0))
    {
        return Ok(err);
    }
    let layers = plan
        .layer_dirs
        .first()
        .and_then(|dir| dir.parent())
        .unwrap_or(Path::new("layers"));
    Err(err)
        .with_context(|| {
            format!(
                "mounting overlayfs at {} ({} lower dirs in {}, upperdir={}, workdir={})",
                plan.root.display(),
                opened.names.len(),
                layers.display(),
                plan_upper(plan).display(),
                plan_work(plan).display()
            )
        })
        .hint("check that the box's directory and the store are intact (`box doctor` checks the store); else `box rm` the box and create it again")
}

/// The `lowerdir` of `count` links named by their position (bottom first: `0`, `1`,
/// ...), top first, when it fits in one fsconfig(2) value.
fn joined_links(count: usize) -> Option<String> {
    let joined = (0..count)
        .rev()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(":");
    (joined.len() <= FSCONFIG_VALUE_MAX).then_some(joined)
}

/// The most layers [`joined_links`] names.
fn joined_links_max() -> usize {
    (1..=OVERLAY_MAX_LOWERS)
        .take_while(|&n| joined_links(n).is_some())
        .last()
        .unwrap_or(0)
}

/// A private tmpfs, detached (attached to no path: nothing but this descriptor reaches
/// it, and it is gone with it), holding one symlink per layer of `names` (bottom first),
/// named by its position and leading to the layer by P's descriptor of `layers/`,
/// `layers_fd`: `/proc/self/fd/N/<hex>`. Unlike the box's own `lowers/` directory, which
/// a box can change, nobody but P reaches these links, and what they lead to is resolved
/// beneath P's descriptor of the guarded `layers/`.
fn link_lowers(layers_fd: RawFd, names: &[String]) -> rustix::io::Result<OwnedFd> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, fsconfig_create, fsconfig_set_string, fsmount,
        fsopen,
    };
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(fs.as_fd(), "mode", "0700")?;
    fsconfig_create(fs.as_fd())?;
    let links = fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    for (index, name) in names.iter().enumerate() {
        rustix::fs::symlinkat(
            format!("/proc/self/fd/{layers_fd}/{name}"),
            links.as_fd(),
            index.to_string(),
        )?;
    }
    Ok(links)
}

/// A detached overlay of `lowers` (relative to the working directory), `upper` and
/// `work`. The overlay resolves `upper` and `work` as it is told them, and its options
/// show them so (`runtime::members` finds a box's mounts by them): their paths are
/// followed with the user's uid `uid` as the effective one (no capability), which cannot
/// enter `layers/`, whatever symlink a box put on the way.
fn fsmount_overlay(
    lowers: &Lowers<'_>,
    upper: &Path,
    work: &Path,
    uid: u32,
) -> std::io::Result<OwnedFd> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, fsconfig_create, fsconfig_set_flag,
        fsconfig_set_string, fsmount, fsopen,
    };
    use rustix::process::Uid;
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    set_lowers(fs.as_fd(), lowers)?;
    rustix::thread::set_thread_res_uid(Uid::ROOT, Uid::from_raw(uid), Uid::ROOT)?;
    let set = fsconfig_set_string(fs.as_fd(), "upperdir", upper)
        .and_then(|()| fsconfig_set_string(fs.as_fd(), "workdir", work));
    // Back to root: the kernel gives back the effective capabilities.
    rustix::thread::set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT)?;
    set?;
    fsconfig_set_flag(fs.as_fd(), "userxattr")?;
    fsconfig_create(fs.as_fd())?;
    Ok(fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::empty(),
    )?)
}

/// Tell the overlay `fs` its lower layers.
fn set_lowers(fs: BorrowedFd<'_>, lowers: &Lowers<'_>) -> rustix::io::Result<()> {
    use rustix::mount::fsconfig_set_string;
    match lowers {
        Lowers::Each(names) => names
            .iter()
            .try_for_each(|name| fsconfig_set_string(fs, "lowerdir+", name.as_str())),
        Lowers::Joined(joined) => fsconfig_set_string(fs, "lowerdir", *joined),
    }
}

/// In C, in the box's mount namespace: attach the detached root `tree` at `root`.
pub(super) fn attach(tree: &OwnedFd, root: &Path) -> std::io::Result<()> {
    use rustix::mount::MoveMountFlags as F;
    Ok(rustix::mount::move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        root,
        F::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}

/// The child: unshare C, tell the parent, wait for the maps, become root in C.
fn inner(outer_pid: rustix::process::Pid, to_parent: OwnedFd, from_parent: OwnedFd) -> Result<()> {
    use rustix::process::DumpableBehavior;
    crate::sys::unshare_namespaces(rustix::thread::UnshareFlags::NEWUSER)
        .context("unshare(CLONE_NEWUSER) for the box's own user namespace")?;
    // The parent may open our /proc/PID/uid_map only while we are dumpable (a process
    // that is not has its /proc files owned by the host's root, proc(5)); the uid change
    // in P cleared the flag. Meanwhile root of any box (the same host id) could open our
    // /proc files too: we hold nothing beneath `layers/` (P left it, closed its
    // descriptors before the fork), and nothing of C is set up yet.
    rustix::process::set_dumpable_behavior(DumpableBehavior::Dumpable)
        .context("prctl(PR_SET_DUMPABLE)")?;
    rustix::io::write(&to_parent, b"u").context("telling the holder's parent")?;
    drop(to_parent);
    let mut answer = [0u8; 1];
    if rustix::io::read(&from_parent, &mut answer).ok() != Some(1) {
        // The parent failed to write the maps and says so itself.
        std::process::exit(0);
    }
    crate::sys::userns::become_root()?;
    // Root in C is the same host id as before: the kernel leaves the flag set. The process
    // that stays sets it again (`super::run`).
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .context("prctl(PR_SET_DUMPABLE)")?;
    // Set up like any helper: gone with its parent while the box is being built (the
    // process that stays, forked later, starts without it: fork(2) clears it).
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .context("prctl(PR_SET_PDEATHSIG)")?;
    if rustix::process::getppid() != Some(outer_pid) {
        bail!("the holder's parent ended while the box was being set up");
    }
    Ok(())
}

/// The parent: write the child's maps once it unshared, then wait for it.
fn outer(child: u32, from_child: OwnedFd, to_child: OwnedFd) -> Result<ExitCode> {
    let mut word = [0u8; 1];
    let unshared = rustix::io::read(&from_child, &mut word).ok() == Some(1);
    if unshared {
        if let Err(err) = write_inner_maps(child) {
            kill(child);
            return Err(err);
        }
        rustix::io::write(&to_child, b"m").context("telling the holder its ids are mapped")?;
    }
    drop(to_child);
    Ok(match crate::runtime::join::wait(child)?.code() {
        Some(code) => ExitCode::from(code as u8),
        None => ExitCode::from(crate::error::EXIT_BOX_FAILURE),
    })
}

fn kill(child: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(child as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    let _ = crate::runtime::join::wait(child);
}

/// C's maps: every line of P's own but the store owner's, each id on itself.
fn write_inner_maps(child: u32) -> Result<()> {
    for file in ["uid_map", "gid_map"] {
        let own = format!("/proc/self/{file}");
        let text = std::fs::read_to_string(&own).with_context(|| format!("reading {own}"))?;
        let path = format!("/proc/{child}/{file}");
        std::fs::write(&path, inner_map(&text))
            .with_context(|| format!("writing {path} for the box's own user namespace"))?;
    }
    Ok(())
}

/// The map text of C from the text of P's map (see [`write_inner_maps`]).
fn inner_map(outer: &str) -> String {
    inside_ids(outer)
        .filter(|&(inside, _)| inside != STORE_OWNER_INSIDE)
        .map(|(inside, count)| format!("{inside} {inside} {count}\n"))
        .collect()
}

/// The store root of `plan`: its root is `<store>/containers/<name>/root`.
fn store_root(plan: &Plan) -> Result<&Path> {
    plan.root
        .ancestors()
        .nth(3)
        .with_context(|| format!("{} is not a box's root in a store", plan.root.display()))
}

/// What P opened beneath the store (see [`open_paths`]): paths name the descriptors
/// (`/proc/self/fd/N`), which it holds.
struct Opened {
    /// The guarded `layers/`.
    layers: OwnedFd,
    /// The box's root (mount point, or the copy).
    root: PathBuf,
    /// The copy marker, in its opened directory.
    copy_marker: PathBuf,
    /// The upper and work directories, with overlay storage.
    upper_work: Option<(PathBuf, PathBuf)>,
    /// The layers, bottom first, beneath `layers` (for the copy fallback).
    layer_dirs: Vec<PathBuf>,
    /// Their names in `layers/` (diff_id hex, checked), bottom first.
    names: Vec<String>,
    _fds: Vec<OwnedFd>,
}

/// Open, beneath the store, what P's mount needs (see the module doc). The layers are
/// named by the plan's layer directories' names, checked to be layers' and taken beneath
/// `layers/`: never through the box's `lowers/` links, which the box's root may rewrite.
fn open_paths(plan: &Plan) -> Result<Opened> {
    let store_path = store_root(plan)?;
    let store = rustix::fs::open(
        store_path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)
    .with_context(|| format!("opening the store {}", store_path.display()))?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut open = |path: &Path| -> Result<PathBuf> {
        let fd = open_beneath(store.as_fd(), store_path, path)?;
        let named = fd_path(&fd);
        fds.push(fd);
        Ok(named)
    };
    let layers_path = store_path.join("layers");
    let layers = open_beneath(store.as_fd(), store_path, &layers_path)?;
    let layers_named = fd_path(&layers);
    check_guarded(&layers_named, &layers_path)?;
    let root = open(&plan.root)?;
    let marker_dir = plan.copy_marker.parent().unwrap_or(&plan.copy_marker);
    let marker_name = plan.copy_marker.file_name().unwrap_or_default();
    let copy_marker = open(marker_dir)?.join(marker_name);
    let upper_work = match &plan.storage {
        Storage::Overlay { upper, work, .. } => Some((open(upper)?, open(work)?)),
        Storage::Copy => None,
    };
    let names = plan
        .layer_dirs
        .iter()
        .map(|layer| {
            let name = layer
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            check_layer_name(&name)?;
            Ok(name)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Opened {
        layer_dirs: names.iter().map(|name| layers_named.join(name)).collect(),
        names,
        layers,
        root,
        copy_marker,
        upper_work,
        _fds: fds,
    })
}

/// The path that names the descriptor `fd` in this process.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Open the directory `path`, beneath the store `store` (at `store_path`), following no
/// symbolic link.
fn open_beneath(
    store: std::os::fd::BorrowedFd<'_>,
    store_path: &Path,
    path: &Path,
) -> Result<OwnedFd> {
    let relative = path.strip_prefix(store_path).with_context(|| {
        format!(
            "{} is not in the store {}",
            path.display(),
            store_path.display()
        )
    })?;
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    rustix::fs::openat2(
        store,
        relative,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(std::io::Error::from)
    .with_context(|| format!("opening {} (no symbolic link followed)", path.display()))
}

/// Check that `layers/` (`named`, opened at `path`) is guarded.
fn check_guarded(named: &Path, path: &Path) -> Result<()> {
    let stat = rustix::fs::stat(named)
        .map_err(std::io::Error::from)
        .with_context(|| format!("reading {}", path.display()))?;
    if !crate::image::helper::guarded(&stat) {
        bail!(failure(
            format!(
                "the store's layer directory {} is not the one box made (owner {}:{}, mode {:o}; box's own belongs to an id no box maps, mode 700): something replaced it, and box will not build a box from it",
                path.display(),
                stat.st_uid,
                stat.st_gid,
                stat.st_mode & 0o7777
            ),
            "run the command again: box sets that directory aside and unpacks the layers again from their verified blobs",
        ));
    }
    Ok(())
}

/// Check that `name` is a layer's (a diff_id's hex): no path leads out of `layers/`.
fn check_layer_name(name: &str) -> Result<()> {
    if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{name}` is not the name of a layer");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the child of [`overlayfs_takes_the_layers_one_by_one_and_through_private_links`].
    const CHILD: &str = "BOX_TEST_OUTER_CHILD";

    #[test]
    fn overlayfs_takes_the_layers_one_by_one_and_through_private_links() {
        // In a child of this test binary, alone (it changes its working directory), as
        // root of a user namespace of its own, as P is (util-linux's unshare(1) makes it:
        // a user namespace takes a single-threaded process, which a test is not).
        let name = "runtime::holder::outer::tests::overlayfs_takes_the_layers_one_by_one_and_through_private_links";
        if crate::sys::env::os(CHILD).is_none() {
            let out = std::process::Command::new("unshare")
                .args(["--map-root-user", "--mount", "--"])
                .arg(std::env::current_exe().unwrap())
                .args(["--exact", name, "--test-threads=1", "--nocapture"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("1 passed"), "{text}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let layers = dir.path().join("layers");
        // Bottom first, as the plan's layer directories.
        let names = ["ab".repeat(32), "cd".repeat(32)];
        for (name, text) in names.iter().zip(["bottom", "top"]) {
            std::fs::create_dir_all(layers.join(name)).unwrap();
            std::fs::write(layers.join(name).join("which"), text).unwrap();
            std::fs::write(layers.join(name).join(text), "").unwrap();
        }
        let layers_fd = rustix::fs::open(
            &layers,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let overlay = |lowers: &Lowers<'_>| -> std::io::Result<OwnedFd> {
            use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
            let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
            set_lowers(fs.as_fd(), lowers)?;
            rustix::mount::fsconfig_create(fs.as_fd())?;
            Ok(rustix::mount::fsmount(
                fs.as_fd(),
                FsMountFlags::FSMOUNT_CLOEXEC,
                MountAttrFlags::empty(),
            )?)
        };
        let read = |tree: &OwnedFd| {
            let file = rustix::fs::openat(
                tree.as_fd(),
                "which",
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(file), &mut text).unwrap();
            let both = ["bottom", "top"].iter().all(|name| {
                rustix::fs::statat(tree.as_fd(), *name, rustix::fs::AtFlags::empty()).is_ok()
            });
            (text, both)
        };
        // The fallback before Linux 6.8: short names of links in a private tmpfs.
        let links = link_lowers(layers_fd.as_raw_fd(), &names).unwrap();
        let joined = joined_links(names.len()).unwrap();
        assert_eq!(joined, "1:0");
        let tree = in_dir(links.as_fd(), || overlay(&Lowers::Joined(&joined)))
            .unwrap()
            .unwrap();
        assert_eq!(read(&tree), ("top".to_owned(), true));
        assert_eq!(
            rustix::process::getcwd(Vec::new())
                .unwrap()
                .to_str()
                .unwrap(),
            "/"
        );
        // Linux 6.8 and later: one by one, relative to `layers/`.
        let top_first: Vec<String> = names.iter().rev().cloned().collect();
        match in_dir(layers_fd.as_fd(), || overlay(&Lowers::Each(&top_first))).unwrap() {
            Ok(tree) => assert_eq!(read(&tree), ("top".to_owned(), true)),
            Err(err) => {
                let release = rustix::system::uname()
                    .release()
                    .to_string_lossy()
                    .into_owned();
                assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{release}: {err}");
                eprintln!("no `lowerdir+` on Linux {release}");
            }
        }
    }

    #[test]
    fn the_joined_links_fit_in_one_fsconfig_value() {
        assert_eq!(joined_links(3).as_deref(), Some("2:1:0"));
        let max = joined_links_max();
        // 0-9 and two digits beyond: (255 - 19) / 3 more.
        assert_eq!(max, 88);
        assert_eq!(joined_links(max).unwrap().len(), 253);
        assert_eq!(joined_links(max + 1), None);
    }

    #[test]
    fn the_inner_map_is_the_box_ids_on_themselves_without_the_store_owner() {
        let outer = format!(
            "         0     100000       1001\n      1001       1001          1\n      1002     101001      64534\n{STORE_OWNER_INSIDE}     165535          1\n"
        );
        assert_eq!(
            inner_map(&outer),
            "0 0 1001\n1001 1001 1\n1002 1002 64534\n"
        );
    }
}
