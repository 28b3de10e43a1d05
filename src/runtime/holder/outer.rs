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
//! resolved with the user's uid as the effective one, which cannot enter `layers/`. In C,
//! nothing reaches `layers/`: C does not map the store owner. The user on the host has
//! every capability in C (it owns P, C's parent), so joining works as before, with the
//! same syscalls.
//!
//! Invariants: P writes nothing but the box's root (the copy fallback, the owner of the
//! upper and work directories) and C's id maps; no process of C holds a descriptor or a
//! working directory beneath `layers/` (P leaves it and closes its descriptors before
//! the fork; the detached root C gets is the box's own).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use rustix::fs::{Mode, OFlags, ResolveFlags};

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
    let (outer, fds) = open_paths(plan)?;
    if let Storage::Overlay {
        layers_dir,
        lowers,
        upper,
        work,
    } = &outer.storage
    {
        if has_root {
            // `/` of the box is the upper dir's root: make it root's, as images expect.
            for (dir, named) in [(upper, &plan_upper(plan)), (work, &plan_work(plan))] {
                let uid = sys
                    .owner(dir)
                    .with_context(|| format!("reading {}", named.display()))?;
                if uid != 0 {
                    sys.chown_to_root(dir)
                        .with_context(|| format!("changing the owner of {}", named.display()))?;
                }
            }
        }
        // Lower dirs relative to the layers directory keep the options short.
        sys.chdir(layers_dir)
            .context("entering the store's layers")?;
        let mounted = fsmount_overlay(
            &lowers.join(":"),
            &plan_upper(plan),
            &plan_work(plan),
            plan.user.uid,
        );
        // Out of `layers/` before anything is forked.
        sys.chdir(Path::new("/")).context("chdir /")?;
        match mounted {
            Ok(tree) => return Ok((StorageKind::Overlay, tree)),
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
                    .with_context(|| format!("mounting overlayfs for box {}", plan.name))
                    .hint("the layer directories must exist; `box rm` the box and create it again if the image was removed");
            }
        }
    }
    if sys.build_copy(&outer.layer_dirs, &outer.root, &outer.copy_marker)? && has_root {
        sys.chown_to_root(&outer.root)
            .with_context(|| format!("changing the owner of {}", plan.root.display()))?;
    }
    use rustix::mount::OpenTreeFlags as F;
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        &outer.root,
        F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC,
    )
    .map_err(std::io::Error::from)
    .with_context(|| format!("binding {}", plan.root.display()))?;
    drop(fds);
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

/// A detached overlay of `lowers` (relative to the working directory, `layers/`), `upper`
/// and `work`. The overlay resolves `upper` and `work` as it is told them, and its
/// options show them so (`runtime::members` finds a box's mounts by them): their paths are
/// followed with the user's uid `uid` as the effective one (no capability), which cannot
/// enter `layers/`, whatever symlink a box put on the way.
fn fsmount_overlay(lowers: &str, upper: &Path, work: &Path, uid: u32) -> std::io::Result<OwnedFd> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, fsconfig_create, fsconfig_set_flag,
        fsconfig_set_string, fsmount, fsopen,
    };
    use rustix::process::Uid;
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(fs.as_fd(), "lowerdir", lowers)?;
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

/// Open, beneath the store, what P's mount needs (see the module doc); the plan with
/// those paths named by their descriptors (`/proc/self/fd/N`), and the descriptors.
fn open_paths(plan: &Plan) -> Result<(Plan, Vec<OwnedFd>)> {
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
        let named = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ));
        fds.push(fd);
        Ok(named)
    };
    let mut outer = plan.clone();
    let layers_path = store_path.join("layers");
    let layers = open(&layers_path)?;
    check_guarded(&layers, &layers_path)?;
    outer.root = open(&plan.root)?;
    let marker_dir = plan.copy_marker.parent().unwrap_or(&plan.copy_marker);
    let marker_name = plan.copy_marker.file_name().unwrap_or_default();
    outer.copy_marker = open(marker_dir)?.join(marker_name);
    if let Storage::Overlay {
        layers_dir,
        lowers,
        upper,
        work,
    } = &mut outer.storage
    {
        for lower in lowers.iter() {
            check_layer_name(lower)?;
        }
        *layers_dir = layers.clone();
        *upper = open(upper)?;
        *work = open(work)?;
    }
    for layer in outer.layer_dirs.iter_mut() {
        let name = layer
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        check_layer_name(&name)?;
        *layer = layers.join(name);
    }
    Ok((outer, fds))
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
