//! `box __store-helper`: store work that must happen inside the user namespace, and the
//! parent's handle on it ([`StoreHelper`]).
//!
//! Inside the namespace (keep-id or root mapping) the helper is root, so it can give files
//! their image owners (which land on the user's subordinate ids), create overlay
//! whiteouts, and later move or delete directories owned by those ids, which the user
//! cannot do from the host. With a single-id mapping it is the user itself.
//!
//! Protocol, after the [`crate::sys::userns`] handshake, in [`crate::sys::protocol`]'s framing over
//! the helper's stdin/stdout: one [`Request`] then exactly one final [`Response`], before
//! which a removal that asked for it sends `progress` messages (at once, then at most ten
//! a second: counts of entries removed so far, so the parent can draw them). The first
//! request is `init` with the store root; every path of a later request must lie strictly
//! beneath it and is resolved from a descriptor of it without following symlinks. Errors
//! travel as a [`Failure`] and are rebuilt in the parent, so the user reads the helper's
//! message and hint once. The helper's stderr is the parent's.
//!
//! Invariants of an unpack (what makes a half-written layer impossible to register):
//! - the helper holds an exclusive flock on its staging directory from right after
//!   creating it until it is renamed or removed, and [`StoreHelper::remove_debris`]
//!   leaves a locked directory alone, so no cleaner deletes a tree while it is written;
//! - just before the rename into `layers/`, the helper checks that the staging name
//!   still leads to the very directory it created and filled, and that the box process
//!   that asked for the unpack is still its parent ([`crate::sys::userns::check_parent`]): an
//!   orphaned helper never registers anything.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use super::tree::{open_dir_beneath, remove_tree_at, remove_tree_counting, split_last};
use super::{Compression, UnpackStats, unpack_layer_at};
use crate::context::Context;
use crate::digest::Digest;
use crate::error::failure;
use crate::sys::protocol::{self, Failure};
use crate::sys::userns::NsHelper;

/// Unpack one downloaded layer blob into the store.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UnpackRequest {
    /// The verified compressed blob (under the store's tmp/).
    pub blob: PathBuf,
    /// The layer's media type from the manifest (decides the decompressor).
    pub media_type: String,
    /// The uncompressed digest the image config promises.
    pub diff_id: Digest,
    /// A fresh path under tmp/: created, filled, then renamed to `dest`.
    pub staging: PathBuf,
    /// The layer directory, `layers/<diffid-hex>`.
    pub dest: PathBuf,
    /// The layer's own record ([`crate::store::LayerInfo`]), written just before the
    /// layer is renamed into place.
    pub info: PathBuf,
    /// Names the layer in messages ("layer sha256:ab12… of example.com/x:1").
    pub label: String,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Init {
        store_root: PathBuf,
    },
    Unpack(UnpackRequest),
    Remove {
        path: PathBuf,
        /// Leave the path alone when it is a directory someone holds a flock on (a staging
        /// directory being written): answered with [`Response::InUse`].
        #[serde(default)]
        unless_locked: bool,
        /// Send [`Response::Progress`] while removing.
        #[serde(default)]
        progress: bool,
    },
    /// Copy the contents of directory `from` into the empty directory `to` (`box create
    /// --clone`).
    Copy {
        from: PathBuf,
        to: PathBuf,
    },
    /// Pack a box's upper directory into a layer blob (`box commit`).
    Pack(super::pack::PackRequest),
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Response {
    Ready,
    Unpacked(UnpackStats),
    Removed,
    /// Not an answer: entries removed so far by the removal under way.
    Progress {
        removed: u64,
    },
    InUse,
    Copied(crate::image::copy::CopyStats),
    Packed(super::pack::PackStats),
    Failed(Failure),
}

/// How often a removal that asked for progress reports it (the parent draws at most ten
/// times a second anyway).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The parent's handle on a running store helper.
pub struct StoreHelper {
    helper: NsHelper,
}

impl StoreHelper {
    /// Start a helper in a user namespace with the context's id mapping. The store root
    /// (`ctx.dirs.store`) must exist.
    pub fn start(ctx: &Context) -> Result<StoreHelper> {
        let helper = NsHelper::spawn("__store-helper", &[], ctx.id_mapping()?, None)?;
        let mut helper = StoreHelper { helper };
        match helper.call(&Request::Init {
            store_root: ctx.dirs.store.clone(),
        })? {
            Response::Ready => Ok(helper),
            other => bail!("box __store-helper answered {other:?} to init"),
        }
    }

    /// Unpack a layer blob into `request.dest` (see [`UnpackRequest`]). If `dest`
    /// appears meanwhile (another pull won), the work is thrown away and this succeeds.
    /// On failure nothing is left at `staging`.
    pub fn unpack(&mut self, request: &UnpackRequest) -> Result<UnpackStats> {
        match self.call(&Request::Unpack(request.clone()))? {
            Response::Unpacked(stats) => Ok(stats),
            other => bail!("box __store-helper answered {other:?} to unpack"),
        }
    }

    /// Remove `path` (beneath the store root) and everything under it, whoever owns it
    /// inside the namespace. A missing path is not an error.
    pub fn remove(&mut self, path: &Path) -> Result<()> {
        match self.call(&Request::Remove {
            path: path.to_owned(),
            unless_locked: false,
            progress: false,
        })? {
            Response::Removed => Ok(()),
            other => bail!("box __store-helper answered {other:?} to remove"),
        }
    }

    /// [`StoreHelper::remove`], calling `progress` with the number of entries removed so
    /// far: once at the start, then at most ten times a second.
    pub fn remove_with_progress(
        &mut self,
        path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        self.helper.send(&Request::Remove {
            path: path.to_owned(),
            unless_locked: false,
            progress: true,
        })?;
        loop {
            match self.helper.recv()? {
                Response::Progress { removed } => progress(removed),
                Response::Removed => return Ok(()),
                Response::Failed(failure) => return Err(failure.into_error()),
                other => bail!("box __store-helper answered {other:?} to remove"),
            }
        }
    }

    /// Copy the contents of directory `from` into the empty directory `to`, both in the
    /// store, exactly (owners of subordinate ids included), sharing data blocks where the
    /// filesystem can.
    pub fn copy(&mut self, from: &Path, to: &Path) -> Result<crate::image::copy::CopyStats> {
        match self.call(&Request::Copy {
            from: from.to_owned(),
            to: to.to_owned(),
        })? {
            Response::Copied(stats) => Ok(stats),
            other => bail!("box __store-helper answered {other:?} to copy"),
        }
    }

    /// Remove debris of interrupted work at `path` like [`StoreHelper::remove`], unless it
    /// is a directory another process still holds locked (a staging directory being
    /// unpacked into). Returns whether it was removed.
    pub fn remove_debris(&mut self, path: &Path) -> Result<bool> {
        match self.call(&Request::Remove {
            path: path.to_owned(),
            unless_locked: true,
            progress: false,
        })? {
            Response::Removed => Ok(true),
            Response::InUse => Ok(false),
            other => bail!("box __store-helper answered {other:?} to remove"),
        }
    }

    /// Pack a box's upper directory into a layer blob (see [`super::pack`]). On failure
    /// nothing is left at `request.blob`.
    pub fn pack(&mut self, request: &super::pack::PackRequest) -> Result<super::pack::PackStats> {
        match self.call(&Request::Pack(request.clone()))? {
            Response::Packed(stats) => Ok(stats),
            other => bail!("box __store-helper answered {other:?} to pack"),
        }
    }

    /// Close the helper and wait for it.
    pub fn finish(self) -> Result<()> {
        self.helper.finish()
    }

    fn call(&mut self, request: &Request) -> Result<Response> {
        self.helper.send(request)?;
        match self.helper.recv()? {
            Response::Failed(failure) => Err(failure.into_error()),
            other => Ok(other),
        }
    }
}

/// Entry point of the hidden subcommand `box __store-helper`.
pub fn main(args: &[String]) -> Result<ExitCode> {
    if !args.is_empty() {
        bail!("box __store-helper takes no arguments (it is started by box itself)");
    }
    crate::sys::userns::child_handshake()?;
    let mut state: Option<Helper> = None;
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    while let Some(line) = protocol::read_line(&mut stdin).context("reading a request")? {
        let response = {
            // A parent that is gone is noticed at the final answer.
            let mut progress = |removed: u64| {
                let _ = protocol::send(&mut stdout, &Response::Progress { removed });
            };
            protocol::decode(&line, "the box process")
                .and_then(|request| serve(&mut state, request, &mut progress))
                .unwrap_or_else(|err| Response::Failed(Failure::from_error(&err)))
        };
        protocol::send(&mut stdout, &response).context("answering the parent")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Carry out `request`; `progress` sends a [`Response::Progress`] (for a removal that
/// asked for them).
fn serve(
    state: &mut Option<Helper>,
    request: Request,
    progress: &mut dyn FnMut(u64),
) -> Result<Response> {
    match request {
        Request::Init { store_root } => {
            *state = Some(Helper::open(store_root)?);
            Ok(Response::Ready)
        }
        Request::Unpack(request) => {
            let helper = state.as_ref().context("unpack before init")?;
            helper.unpack(&request).map(Response::Unpacked)
        }
        Request::Remove {
            path,
            unless_locked,
            progress: wanted,
        } => {
            let helper = state.as_ref().context("remove before init")?;
            let progress = wanted.then_some(progress);
            helper
                .remove(&path, unless_locked, progress)
                .map(|removed| {
                    if removed {
                        Response::Removed
                    } else {
                        Response::InUse
                    }
                })
        }
        Request::Copy { from, to } => {
            let helper = state.as_ref().context("copy before init")?;
            helper.copy(&from, &to).map(Response::Copied)
        }
        Request::Pack(request) => {
            let helper = state.as_ref().context("pack before init")?;
            helper.pack(&request).map(Response::Packed)
        }
    }
}

/// The helper's side: a descriptor of the store root, through which every path goes.
struct Helper {
    root_path: PathBuf,
    root: OwnedFd,
}

impl Helper {
    fn open(root_path: PathBuf) -> Result<Helper> {
        // The root itself comes from the user's own environment (XDG_DATA_HOME), so it
        // may be reached through symlinks; what lies beneath it may not.
        let root = rustix::fs::open(
            &root_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)
        .with_context(|| format!("opening the store {}", root_path.display()))?;
        Ok(Helper { root_path, root })
    }

    /// `path` relative to the store root, as bytes, refusing anything not strictly
    /// beneath it.
    fn relative(&self, path: &Path) -> Result<Vec<u8>> {
        use std::os::unix::ffi::OsStrExt;
        let outside = || {
            anyhow!(
                "{} is not inside the store {}",
                path.display(),
                self.root_path.display()
            )
        };
        let rest = path.strip_prefix(&self.root_path).map_err(|_| outside())?;
        let mut out = Vec::new();
        for component in rest.components() {
            let Component::Normal(part) = component else {
                return Err(outside());
            };
            if !out.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(part.as_bytes());
        }
        if out.is_empty() {
            return Err(outside());
        }
        Ok(out)
    }

    /// The parent directory of `path` (opened beneath the root) and the last component.
    fn parent_of<'p>(&self, path: &'p [u8], shown: &Path) -> Result<(OwnedFd, &'p [u8])> {
        let (parent, name) = split_last(path);
        let dir = open_dir_beneath(self.root.as_fd(), parent)
            .with_context(|| format!("opening the directory of {}", shown.display()))?;
        Ok((dir, name))
    }

    /// Copy the contents of directory `from` into the empty directory `to` (both opened
    /// beneath the store root, never through a symlink).
    fn copy(&self, from: &Path, to: &Path) -> Result<crate::image::copy::CopyStats> {
        let from_rel = self.relative(from)?;
        let to_rel = self.relative(to)?;
        let source = open_dir_beneath(self.root.as_fd(), &from_rel)
            .with_context(|| format!("opening {}", from.display()))?;
        let target = open_dir_beneath(self.root.as_fd(), &to_rel)
            .with_context(|| format!("opening {}", to.display()))?;
        crate::image::copy::copy_tree(source.as_fd(), target.as_fd(), &from.display().to_string())
    }

    /// Pack a box's upper directory (all paths opened beneath the store root, never
    /// through a symlink).
    fn pack(&self, request: &super::pack::PackRequest) -> Result<super::pack::PackStats> {
        let open = |path: &Path| -> Result<OwnedFd> {
            let relative = self.relative(path)?;
            open_dir_beneath(self.root.as_fd(), &relative)
                .with_context(|| format!("opening {}", path.display()))
        };
        let upper = open(&request.upper)?;
        let lowers = request
            .lowers
            .iter()
            .map(|l| open(l))
            .collect::<Result<Vec<_>>>()?;
        let blob = self.relative(&request.blob)?;
        let (blob_dir, blob_name) = self.parent_of(&blob, &request.blob)?;
        super::pack::pack(request, upper, lowers, blob_dir.as_fd(), blob_name)
    }

    /// Remove `path` and what is under it. With `unless_locked`, a directory someone
    /// holds an flock on is left alone (returns false); the lock is held while removing,
    /// so nobody can start working in it meanwhile. With `progress`, it is called with
    /// the count of entries removed at the start and then at most every 100 ms.
    fn remove(
        &self,
        path: &Path,
        unless_locked: bool,
        progress: Option<&mut dyn FnMut(u64)>,
    ) -> Result<bool> {
        let relative = self.relative(path)?;
        let (parent, name) = match self.parent_of(&relative, path) {
            Ok(found) => found,
            Err(err) if is_errno(&err, libc::ENOENT) => return Ok(true),
            Err(err) => return Err(err),
        };
        let _held = if unless_locked {
            match open_dir_beneath(parent.as_fd(), name) {
                Ok(dir) => {
                    match rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive) {
                        Ok(()) => Some(dir),
                        Err(Errno::WOULDBLOCK) => return Ok(false),
                        Err(err) => {
                            return Err(std::io::Error::from(err))
                                .with_context(|| format!("locking {}", path.display()));
                        }
                    }
                }
                // Not a directory (a blob, a symlink) or already gone: nothing to ask.
                Err(_) => None,
            }
        } else {
            None
        };
        match progress {
            None => remove_tree_at(parent.as_fd(), name),
            Some(progress) => {
                progress(0);
                let mut last = std::time::Instant::now();
                remove_tree_counting(parent.as_fd(), name, &mut 0, &mut |removed| {
                    if last.elapsed() >= PROGRESS_EVERY {
                        progress(removed);
                        last = std::time::Instant::now();
                    }
                })
            }
        }
        .with_context(|| format!("removing {}", path.display()))?;
        Ok(true)
    }

    fn unpack(&self, request: &UnpackRequest) -> Result<UnpackStats> {
        let staging = self.relative(&request.staging)?;
        let dest = self.relative(&request.dest)?;
        let info = self.relative(&request.info)?;
        let (staging_parent, staging_name) = self.parent_of(&staging, &request.staging)?;
        let (dest_parent, dest_name) = self.parent_of(&dest, &request.dest)?;
        let (info_parent, info_name) = self.parent_of(&info, &request.info)?;
        let mut info_staging = staging_name.to_vec();
        info_staging.extend_from_slice(b".json");
        let compression = Compression::from_media_type(&request.media_type)
            .with_context(|| request.label.clone())?;
        let blob = std::fs::File::open(&request.blob)
            .with_context(|| format!("opening {}", request.blob.display()))?;

        // A leftover of an interrupted attempt with the same name goes first.
        remove_tree_at(staging_parent.as_fd(), staging_name)
            .with_context(|| format!("removing {}", request.staging.display()))?;
        let result = (|| {
            rustix::fs::mkdirat(&staging_parent, staging_name, Mode::from_raw_mode(0o755))
                .map_err(std::io::Error::from)
                .with_context(|| format!("creating {}", request.staging.display()))?;
            let dir = open_dir_beneath(staging_parent.as_fd(), staging_name)
                .with_context(|| format!("opening {}", request.staging.display()))?;
            // Held until the staging directory is renamed or removed: see the module doc.
            rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive)
                .map_err(std::io::Error::from)
                .with_context(|| format!("locking {}", request.staging.display()))?;
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o755))
                .map_err(std::io::Error::from)
                .with_context(|| format!("setting the mode of {}", request.staging.display()))?;
            // Kept open past the unpack: it holds the lock (same open file description),
            // syncs the filesystem and proves the staging directory is still ours.
            let held = dir.try_clone().context("duplicating a descriptor")?;
            let stats = unpack_layer_at(
                blob,
                compression,
                &request.diff_id,
                dir,
                &request.staging,
                &request.label,
            )?;
            // One syncfs instead of an fsync per file: the rename below must not reach
            // the disk before the layer's contents, or a crash could leave a complete-
            // looking but empty layer.
            rustix::fs::syncfs(&held)
                .map_err(std::io::Error::from)
                .with_context(|| format!("syncing {}", request.staging.display()))?;
            if !still_at(held.as_fd(), staging_parent.as_fd(), staging_name)
                .with_context(|| format!("checking {}", request.staging.display()))?
            {
                bail!(failure(
                    format!(
                        "{} was replaced while {} was unpacked into it; not registering the layer",
                        request.staging.display(),
                        request.label
                    ),
                    "another program changed box's store; pull again",
                ));
            }
            crate::sys::userns::check_parent()?;
            // The record first: a layer directory is never there without it (a record
            // left without its layer by a crash is collected as garbage).
            let record = crate::store::LayerInfo {
                diff_id: request.diff_id.clone(),
                tar_bytes: stats.tar_bytes,
                entries: stats.entries,
            };
            let mut bytes = serde_json::to_vec_pretty(&record).context("encoding a record")?;
            bytes.push(b'\n');
            write_file_at(staging_parent.as_fd(), &info_staging, &bytes)
                .and_then(|()| {
                    rustix::fs::renameat(&staging_parent, &info_staging, &info_parent, info_name)
                        .map_err(std::io::Error::from)
                })
                .with_context(|| format!("writing {}", request.info.display()))?;
            let moved = rename_noreplace(
                staging_parent.as_fd(),
                staging_name,
                dest_parent.as_fd(),
                dest_name,
            )
            .with_context(|| {
                format!(
                    "renaming {} to {}",
                    request.staging.display(),
                    request.dest.display()
                )
            })?;
            if moved {
                // Make the rename itself durable.
                let _ = rustix::fs::fsync(&dest_parent);
            }
            Ok(stats)
        })();
        // After a successful rename there is nothing left at `staging`; when `dest`
        // already existed or anything failed, the staging tree goes.
        let _ = rustix::fs::unlinkat(&staging_parent, &info_staging, AtFlags::empty());
        let cleanup = remove_tree_at(staging_parent.as_fd(), staging_name);
        match (result, cleanup) {
            (Ok(stats), Ok(())) => Ok(stats),
            (Ok(_), Err(err)) => Err(anyhow::Error::from(err))
                .with_context(|| format!("removing {}", request.staging.display())),
            (Err(err), Err(cleanup)) => {
                crate::ui::report::warn(format!(
                    "could not remove {}: {cleanup}",
                    request.staging.display()
                ));
                Err(err)
            }
            (Err(err), Ok(())) => Err(err),
        }
    }
}

/// Create `name` in `dir` (replacing a leftover) with `bytes`, flushed to disk.
fn write_file_at(dir: BorrowedFd<'_>, name: &[u8], bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.sync_all()
}

/// Whether `name` in `parent` is (still) the directory open as `held`, not following a
/// symlink.
fn still_at(held: BorrowedFd<'_>, parent: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<bool> {
    let ours = rustix::fs::fstat(held)?;
    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(there) => Ok(there.st_dev == ours.st_dev && there.st_ino == ours.st_ino),
        Err(Errno::NOENT) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Rename unless the destination exists. Returns whether the rename happened.
fn rename_noreplace(
    from_dir: BorrowedFd<'_>,
    from: &[u8],
    to_dir: BorrowedFd<'_>,
    to: &[u8],
) -> std::io::Result<bool> {
    match rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        // A filesystem without RENAME_NOREPLACE: a plain rename refuses to replace a
        // non-empty directory, which a layer always is (at least one entry or `./`).
        Err(Errno::INVAL) => match rustix::fs::renameat(from_dir, from, to_dir, to) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Ok(false),
            Err(err) => Err(err.into()),
        },
        Err(err) => Err(err.into()),
    }
}

fn is_errno(err: &anyhow::Error, code: i32) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            == Some(code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_json_lines() {
        let request = Request::Unpack(UnpackRequest {
            blob: "/s/tmp/blob".into(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            diff_id: Digest::of(b""),
            staging: "/s/tmp/layer-1-0".into(),
            dest: "/s/layers/abc".into(),
            info: "/s/layers/abc.json".into(),
            label: "layer x".into(),
        });
        let line = serde_json::to_string(&request).unwrap();
        assert!(!line.contains('\n'));
        assert!(line.contains("\"op\":\"unpack\""));
        let back: Request = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, Request::Unpack(r) if r.dest == Path::new("/s/layers/abc")));
        let failed = serde_json::to_string(&Response::Failed(Failure {
            message: "m".into(),
            hint: Some("h".into()),
        }))
        .unwrap();
        assert!(matches!(
            serde_json::from_str::<Response>(&failed).unwrap(),
            Response::Failed(Failure { hint: Some(h), .. }) if h == "h"
        ));
    }

    #[test]
    fn only_paths_strictly_beneath_the_store_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let helper = Helper::open(dir.path().to_owned()).unwrap();
        assert_eq!(
            helper.relative(&dir.path().join("tmp/x")).unwrap(),
            b"tmp/x".to_vec()
        );
        for bad in [
            dir.path().to_owned(),
            dir.path().join("tmp/../../etc"),
            PathBuf::from("/etc/passwd"),
            PathBuf::from("relative"),
        ] {
            assert!(helper.relative(&bad).is_err(), "{}", bad.display());
        }
    }

    #[test]
    fn remove_deletes_read_only_trees_and_does_not_follow_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        let tree = dir.path().join("layers/a");
        std::fs::create_dir_all(tree.join("ro/sub")).unwrap();
        std::fs::write(tree.join("ro/sub/f"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.join("ro/link")).unwrap();
        std::fs::set_permissions(tree.join("ro/sub"), std::fs::Permissions::from_mode(0o500))
            .unwrap();
        std::fs::set_permissions(tree.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let helper = Helper::open(dir.path().to_owned()).unwrap();
        // Asked for progress: told at once, before anything is gone.
        let mut told = Vec::new();
        assert!(
            helper
                .remove(&tree, false, Some(&mut |n| told.push(n)))
                .unwrap()
        );
        assert_eq!(told.first(), Some(&0));
        assert!(!tree.exists());
        assert!(outside.path().join("keep").exists());
        // Missing paths are fine; a symlinked parent is refused.
        helper
            .remove(&dir.path().join("layers/none"), false, None)
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).unwrap();
        assert!(
            helper
                .remove(&dir.path().join("evil/keep"), false, None)
                .is_err()
        );
        assert!(outside.path().join("keep").exists());
    }

    #[test]
    fn debris_removal_leaves_a_locked_staging_directory_alone() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("tmp/layer-ab12-1-0");
        std::fs::create_dir_all(staging.join("etc")).unwrap();
        std::fs::write(staging.join("etc/f"), b"x").unwrap();
        let blob = dir.path().join("tmp/blob-cd34-1-1");
        std::fs::write(&blob, b"x").unwrap();
        let helper = Helper::open(dir.path().to_owned()).unwrap();

        // A writer (another process in real life: flock is per open file description).
        let writer = std::fs::File::open(&staging).unwrap();
        rustix::fs::flock(&writer, FlockOperation::NonBlockingLockExclusive).unwrap();
        assert!(
            !helper.remove(&staging, true, None).unwrap(),
            "removed while locked"
        );
        assert!(staging.join("etc/f").is_file());
        // Files carry no lock: they go.
        assert!(helper.remove(&blob, true, None).unwrap());
        assert!(!blob.exists());

        drop(writer);
        assert!(helper.remove(&staging, true, None).unwrap());
        assert!(!staging.exists());
    }

    #[test]
    fn a_replaced_staging_directory_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let parent = std::fs::File::open(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("staging")).unwrap();
        let held = std::fs::File::open(dir.path().join("staging")).unwrap();
        assert!(still_at(held.as_fd(), parent.as_fd(), b"staging").unwrap());
        std::fs::rename(dir.path().join("staging"), dir.path().join("moved")).unwrap();
        assert!(!still_at(held.as_fd(), parent.as_fd(), b"staging").unwrap());
        std::fs::create_dir(dir.path().join("staging")).unwrap();
        assert!(!still_at(held.as_fd(), parent.as_fd(), b"staging").unwrap());
    }
}
