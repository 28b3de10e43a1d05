//! `box __store-helper`: store work that must happen inside the user namespace, and the
//! parent's handle on it ([`StoreHelper`]).
//!
//! Inside the namespace (keep-id or root mapping) the helper is root, so it can give files
//! their image owners (which land on the user's subordinate ids), create overlay
//! whiteouts, and later move or delete directories owned by those ids, which the user
//! cannot do from the host. With a single-id mapping it is the user itself.
//!
//! **The guarded `layers/`.** With keep-id the helper's namespace also maps the store
//! owner ([`crate::sys::idmap::Reach::Store`]), and `layers/` belongs to it with mode 0700
//! ([`guarded`]): no box and not the user can reach a layer, by any path (the home, `/run/host`,
//! `/proc/PID/root`). Everything of the store's layers that must be read or written goes
//! through this helper or a starting holder's outer namespace. Init makes sure of it:
//! - a missing `layers/` is created guarded;
//! - a `layers/` that is not guarded (a store of a box from before, or a directory a box
//!   put there in place of the guarded one: the store root is the user's, so a program in
//!   a box may rename it) is never adopted: every layer record goes first, then the
//!   directory is set aside (`layers.unguarded/`, removed by garbage collection once no
//!   box runs), a guarded one is made, and [`StoreHelper::start`] unpacks every layer
//!   of the image records again from its kept blob, verified against its diff_id;
//! - a layer is unpacked in a staging directory guarded the same way (`tmp/layer-…/layer`
//!   inside a store-owner directory of mode 0700), so no box can open a descriptor into
//!   a tree that becomes a layer.
//!
//! A layer's record is written after the layer is renamed into place, so a record always
//! means a layer: box processes outside the namespace cannot look into `layers/` and
//! trust the records (`Store::has_layer`). A crash between the two leaves a layer without
//! record, which the next pull of it adopts.
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
//!
//! Provisioning looks at a box's files through [`StoreHelper::look`] and
//! [`StoreHelper::contains`] (`provision::rootfs`): lookups in the store's directories that
//! follow no symlink, the overlay's logic staying with the caller.

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
use crate::sys::idmap::{Reach, STORE_OWNER_INSIDE};
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
        /// The store's `layers/`, its place for an unguarded one set aside, and the
        /// directory of the layer records (see the module doc).
        layers: PathBuf,
        set_aside: PathBuf,
        layer_records: PathBuf,
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
    /// The topmost entry at `relative` in `dirs` (see [`Looked`]).
    Look {
        dirs: Vec<PathBuf>,
        relative: PathBuf,
    },
    /// Whether the file `relative` in `dir` holds `needle` (true when it is bigger than
    /// `max` bytes).
    Contains {
        dir: PathBuf,
        relative: PathBuf,
        needle: String,
        max: u64,
    },
}

/// An entry found by [`StoreHelper::look`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Looked {
    /// Which of the directories has it.
    pub index: usize,
    /// The target when it is a symbolic link.
    pub link: Option<PathBuf>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Response {
    Ready,
    /// Ready, once an unguarded `layers/` was set aside and a guarded one made; whether
    /// the one set aside held layers.
    Migrated {
        layers_set_aside: bool,
    },
    Looked(Option<Looked>),
    Contains(bool),
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

/// Make sure the store's `layers/` is guarded before a box starts from it (with keep-id;
/// a no-op otherwise): one `lstat` when it is, else a store helper, whose start guards it
/// (see the module doc). The holder checks again itself, through what it opens.
pub fn ensure_guarded(ctx: &Context) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(owner) = ctx.id_mapping()?.store_owner() else {
        return Ok(());
    };
    let layers = crate::store::Store::at(&ctx.dirs.store).layers_dir();
    let is_guarded = std::fs::symlink_metadata(&layers).is_ok_and(|meta| {
        meta.is_dir()
            && meta.uid() == owner.uid
            && meta.gid() == owner.gid
            && meta.mode() & 0o7777 == 0o700
    });
    if is_guarded {
        return Ok(());
    }
    StoreHelper::start(ctx)?.finish()
}

/// The parent's handle on a running store helper.
pub struct StoreHelper {
    helper: NsHelper,
}

impl StoreHelper {
    /// Start a helper in a user namespace with the context's id mapping (and the store
    /// owner, with keep-id). The store root (`ctx.dirs.store`) must exist. The first
    /// start over a store whose `layers/` is not guarded sets it aside and unpacks the
    /// layers again (see the module doc), saying so.
    pub fn start(ctx: &Context) -> Result<StoreHelper> {
        let mapping = ctx.id_mapping()?;
        let store = crate::store::Store::at(&ctx.dirs.store);
        // One helper at a time makes or replaces the guarded directory.
        let _guarding = match mapping.store_owner() {
            Some(_) => Some(store.lock_named("layers-guard")?),
            None => None,
        };
        let helper = NsHelper::spawn("__store-helper", &[], mapping, Reach::Store, None)?;
        let mut helper = StoreHelper { helper };
        match helper.call(&Request::Init {
            store_root: ctx.dirs.store.clone(),
            layers: store.layers_dir(),
            set_aside: store.unguarded_layers_dir(),
            layer_records: store.layer_info_dir(),
        })? {
            Response::Ready => Ok(helper),
            Response::Migrated { layers_set_aside } => {
                if layers_set_aside {
                    helper.restore_layers(&store)?;
                }
                Ok(helper)
            }
            other => bail!("box __store-helper answered {other:?} to init"),
        }
    }

    /// After an unguarded `layers/` was set aside: unpack every layer of the image records
    /// again from its kept blob (verified against its diff_id as at pull), and say what
    /// could not be (no blob kept) and how to get it back.
    fn restore_layers(&mut self, store: &crate::store::Store) -> Result<()> {
        use std::collections::BTreeSet;
        let images = store.images()?;
        crate::ui::report::notice(format!(
            "box now keeps the layers of its store in a directory only box can reach (owned by \
             a subordinate id no box maps, mode 0700), so that no box can change what the \
             others are built from; the layers it had are set aside in {} (removed once no box \
             runs) and unpacked again from their verified blobs",
            store.unguarded_layers_dir().display()
        ));
        let mut done: BTreeSet<Digest> = BTreeSet::new();
        let mut lost: BTreeSet<String> = BTreeSet::new();
        for image in &images {
            crate::ui::report::line(format!("unpacking the layers of {} again", image.reference));
            for layer in &image.layers {
                if done.contains(&layer.diff_id) {
                    continue;
                }
                let blob = store.blob_path(&layer.digest);
                if !blob.is_file() {
                    lost.insert(image.reference.clone());
                    continue;
                }
                let request = UnpackRequest {
                    blob,
                    media_type: layer.media_type.clone(),
                    diff_id: layer.diff_id.clone(),
                    staging: store.staging_path(&format!("layer-{}", layer.diff_id.short())),
                    dest: store.layer_dir(&layer.diff_id),
                    info: store.layer_info_path(&layer.diff_id),
                    label: format!("layer {} of {}", layer.digest, image.reference),
                };
                match self.unpack(&request) {
                    Ok(_) => {
                        done.insert(layer.diff_id.clone());
                    }
                    Err(err) => {
                        crate::ui::report::warn(format!("{err:#}"));
                        lost.insert(image.reference.clone());
                    }
                }
            }
        }
        let orphans: Vec<String> = store
            .containers()
            .unwrap_or_default()
            .into_iter()
            .filter(|record| record.layers.iter().any(|l| !done.contains(l)))
            .map(|record| format!("{} ({})", record.name, record.image))
            .collect();
        if !lost.is_empty() || !orphans.is_empty() {
            let images: Vec<String> = lost.into_iter().collect();
            crate::ui::report::warn(format!(
                "some layers could not be unpacked again (their blobs are not kept): {}{}; \
                 hint: pull those images again (`box pull IMAGE`)",
                if images.is_empty() {
                    String::new()
                } else {
                    format!("images {}", images.join(", "))
                },
                if orphans.is_empty() {
                    String::new()
                } else {
                    format!("; boxes {}", orphans.join(", "))
                },
            ));
        }
        Ok(())
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

    /// The topmost entry at `relative` in `dirs` (directories beneath the store root),
    /// without following a symbolic link on the way; `None` when none has one or the
    /// topmost is an overlay whiteout.
    pub fn look(&mut self, dirs: &[PathBuf], relative: &Path) -> Result<Option<Looked>> {
        match self.call(&Request::Look {
            dirs: dirs.to_vec(),
            relative: relative.to_owned(),
        })? {
            Response::Looked(found) => Ok(found),
            other => bail!("box __store-helper answered {other:?} to look"),
        }
    }

    /// Whether the regular file `relative` in `dir` holds `needle`; true when it is
    /// bigger than `max` bytes (taken to hold everything).
    pub fn contains(
        &mut self,
        dir: &Path,
        relative: &Path,
        needle: &str,
        max: u64,
    ) -> Result<bool> {
        match self.call(&Request::Contains {
            dir: dir.to_owned(),
            relative: relative.to_owned(),
            needle: needle.to_owned(),
            max,
        })? {
            Response::Contains(found) => Ok(found),
            other => bail!("box __store-helper answered {other:?} to contains"),
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
        Request::Init {
            store_root,
            layers,
            set_aside,
            layer_records,
        } => {
            let helper = state.insert(Helper::open(store_root)?);
            helper.prepare_layers(&layers, &set_aside, &layer_records)
        }
        Request::Look { dirs, relative } => {
            let helper = state.as_ref().context("look before init")?;
            helper.look(&dirs, &relative).map(Response::Looked)
        }
        Request::Contains {
            dir,
            relative,
            needle,
            max,
        } => {
            let helper = state.as_ref().context("contains before init")?;
            helper
                .contains(&dir, &relative, needle.as_bytes(), max)
                .map(Response::Contains)
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
    /// Whether this namespace maps the store owner: `layers/` and staging directories
    /// are then guarded (see the module doc).
    guarded: bool,
}

/// Whether `stat` (as seen in a namespace that maps the store owner) is that of a guarded
/// `layers/`: a directory of the store owner, mode 0700. Nobody but a namespace that
/// maps the store owner can make one, so a directory a box put in its place never is.
pub fn guarded(stat: &rustix::fs::Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory
        && stat.st_uid == STORE_OWNER_INSIDE
        && stat.st_gid == STORE_OWNER_INSIDE
        && stat.st_mode & 0o7777 == 0o700
}

/// Give the directory `dir` to the store owner, mode 0700.
fn guard(dir: BorrowedFd<'_>) -> std::io::Result<()> {
    use rustix::process::{Gid, Uid};
    rustix::fs::fchown(
        dir,
        Some(Uid::from_raw(STORE_OWNER_INSIDE)),
        Some(Gid::from_raw(STORE_OWNER_INSIDE)),
    )?;
    rustix::fs::fchmod(dir, Mode::from_raw_mode(0o700))?;
    Ok(())
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
        Ok(Helper {
            root_path,
            root,
            guarded: crate::sys::idmap::store_owner_mapped()?,
        })
    }

    /// Make sure `layers` exists, guarded when this namespace maps the store owner; an
    /// unguarded one is set aside under `set_aside` after the records in `records` are
    /// removed (see the module doc).
    fn prepare_layers(&self, layers: &Path, set_aside: &Path, records: &Path) -> Result<Response> {
        let relative = self.relative(layers)?;
        let (parent, name) = self.parent_of(&relative, layers)?;
        let found = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW);
        let create = |guarded: bool| -> Result<()> {
            match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(err) => {
                    return Err(std::io::Error::from(err))
                        .with_context(|| format!("creating {}", layers.display()));
                }
            }
            if guarded {
                let dir = open_dir_beneath(parent.as_fd(), name)
                    .with_context(|| format!("opening {}", layers.display()))?;
                guard(dir.as_fd())
                    .with_context(|| format!("giving {} to the store owner", layers.display()))?;
            }
            Ok(())
        };
        match found {
            Err(Errno::NOENT) => {
                create(self.guarded)?;
                return Ok(Response::Ready);
            }
            Err(err) => {
                return Err(std::io::Error::from(err))
                    .with_context(|| format!("reading {}", layers.display()));
            }
            Ok(_) if !self.guarded => return Ok(Response::Ready),
            Ok(stat) if guarded(&stat) => return Ok(Response::Ready),
            Ok(_) => {}
        }
        // Records first: a record must always mean a layer in the guarded directory.
        match open_dir_beneath(self.root.as_fd(), &self.relative(records)?) {
            Ok(dir) => {
                for entry in rustix::fs::Dir::read_from(&dir)
                    .map_err(std::io::Error::from)
                    .with_context(|| format!("reading {}", records.display()))?
                {
                    let entry = entry.map_err(std::io::Error::from)?;
                    let entry_name = entry.file_name().to_bytes();
                    if entry_name.ends_with(b".json") {
                        rustix::fs::unlinkat(&dir, entry_name, AtFlags::empty())
                            .map_err(std::io::Error::from)
                            .with_context(|| {
                                format!("removing a record in {}", records.display())
                            })?;
                    }
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("opening {}", records.display())),
        }
        let aside_relative = self.relative(set_aside)?;
        let (aside_parent, aside_name) = self.parent_of(&aside_relative, set_aside)?;
        match rustix::fs::mkdirat(&aside_parent, aside_name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(err) => {
                return Err(std::io::Error::from(err))
                    .with_context(|| format!("creating {}", set_aside.display()));
            }
        }
        let aside = open_dir_beneath(aside_parent.as_fd(), aside_name)
            .with_context(|| format!("opening {}", set_aside.display()))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let entry = format!("{}-{stamp}", std::process::id());
        rustix::fs::renameat(&parent, name, &aside, entry.as_str())
            .map_err(std::io::Error::from)
            .with_context(|| format!("moving {} into {}", layers.display(), set_aside.display()))?;
        create(true)?;
        // An empty one (a store that never had a layer) leaves nothing behind.
        let had_layers = rustix::fs::unlinkat(&aside, entry.as_str(), AtFlags::REMOVEDIR).is_err();
        if !had_layers {
            let _ = rustix::fs::unlinkat(&aside_parent, aside_name, AtFlags::REMOVEDIR);
        }
        Ok(Response::Migrated {
            layers_set_aside: had_layers,
        })
    }

    /// See [`StoreHelper::look`].
    fn look(&self, dirs: &[PathBuf], relative: &Path) -> Result<Option<Looked>> {
        let wanted = in_box(relative)?;
        for (index, dir) in dirs.iter().enumerate() {
            let Ok(dir_fd) = open_dir_beneath(self.root.as_fd(), &self.relative(dir)?) else {
                continue;
            };
            let Ok(found) = rustix::fs::openat2(
                &dir_fd,
                wanted.as_slice(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                super::tree::STRICT,
            ) else {
                continue;
            };
            let stat = rustix::fs::fstat(&found).map_err(std::io::Error::from)?;
            let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
            if kind == rustix::fs::FileType::CharacterDevice && stat.st_rdev == 0 {
                return Ok(None);
            }
            let link = if kind == rustix::fs::FileType::Symlink {
                let target = rustix::fs::readlinkat(&found, c"", Vec::new())
                    .map_err(std::io::Error::from)
                    .with_context(|| format!("reading the link {}", relative.display()))?;
                use std::os::unix::ffi::OsStringExt;
                Some(PathBuf::from(std::ffi::OsString::from_vec(
                    target.into_bytes(),
                )))
            } else {
                None
            };
            return Ok(Some(Looked { index, link }));
        }
        Ok(None)
    }

    /// See [`StoreHelper::contains`].
    fn contains(&self, dir: &Path, relative: &Path, needle: &[u8], max: u64) -> Result<bool> {
        use std::io::Read as _;
        let dir_fd = open_dir_beneath(self.root.as_fd(), &self.relative(dir)?)
            .with_context(|| format!("opening {}", dir.display()))?;
        let file = rustix::fs::openat2(
            &dir_fd,
            in_box(relative)?.as_slice(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            super::tree::STRICT,
        )
        .map_err(std::io::Error::from)
        .with_context(|| format!("opening {} in {}", relative.display(), dir.display()))?;
        let mut file = std::fs::File::from(file);
        if file.metadata()?.len() > max {
            return Ok(true);
        }
        let mut bytes = Vec::new();
        file.by_ref().take(max).read_to_end(&mut bytes)?;
        Ok(!needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle))
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
            rustix::fs::mkdirat(&staging_parent, staging_name, Mode::from_raw_mode(0o700))
                .map_err(std::io::Error::from)
                .with_context(|| format!("creating {}", request.staging.display()))?;
            let outer = open_dir_beneath(staging_parent.as_fd(), staging_name)
                .with_context(|| format!("opening {}", request.staging.display()))?;
            // Held until the staging directory is renamed or removed: see the module doc.
            rustix::fs::flock(&outer, FlockOperation::NonBlockingLockExclusive)
                .map_err(std::io::Error::from)
                .with_context(|| format!("locking {}", request.staging.display()))?;
            if self.guarded {
                // Before the tree exists: no box can open a descriptor into it.
                guard(outer.as_fd()).with_context(|| {
                    format!("giving {} to the store owner", request.staging.display())
                })?;
            }
            rustix::fs::mkdirat(&outer, TREE, Mode::from_raw_mode(0o755))
                .map_err(std::io::Error::from)
                .with_context(|| format!("creating {}/{TREE}", request.staging.display()))?;
            let dir = open_dir_beneath(outer.as_fd(), TREE.as_bytes())
                .with_context(|| format!("opening {}/{TREE}", request.staging.display()))?;
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o755))
                .map_err(std::io::Error::from)
                .with_context(|| format!("setting the mode of {}", request.staging.display()))?;
            // Kept open past the unpack: it syncs the filesystem; `outer` holds the lock
            // and proves the staging directory is still ours.
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
            if !still_at(outer.as_fd(), staging_parent.as_fd(), staging_name)
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
            let moved = rename_noreplace(
                outer.as_fd(),
                TREE.as_bytes(),
                dest_parent.as_fd(),
                dest_name,
            )
            .with_context(|| {
                format!(
                    "renaming {}/{TREE} to {}",
                    request.staging.display(),
                    request.dest.display()
                )
            })?;
            if moved {
                // Make the rename itself durable.
                let _ = rustix::fs::fsync(&dest_parent);
            }
            // The record after the layer: a record always means a layer (see the module
            // doc). A layer that was there already gets one if it has none.
            let has_record =
                rustix::fs::statat(&info_parent, info_name, AtFlags::SYMLINK_NOFOLLOW).is_ok();
            if moved || !has_record {
                let record = crate::store::LayerInfo {
                    diff_id: request.diff_id.clone(),
                    tar_bytes: stats.tar_bytes,
                    entries: stats.entries,
                };
                let mut bytes = serde_json::to_vec_pretty(&record).context("encoding a record")?;
                bytes.push(b'\n');
                write_file_at(staging_parent.as_fd(), &info_staging, &bytes)
                    .and_then(|()| {
                        rustix::fs::renameat(
                            &staging_parent,
                            &info_staging,
                            &info_parent,
                            info_name,
                        )
                        .map_err(std::io::Error::from)
                    })
                    .with_context(|| format!("writing {}", request.info.display()))?;
            }
            Ok(stats)
        })();
        // What is left at `staging` goes: the empty staging directory after a rename, the
        // whole tree when `dest` already existed or anything failed.
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

/// The name of the tree in a staging directory: the staging directory itself is guarded,
/// and only this, its content, becomes the layer.
const TREE: &str = "layer";

/// A path in a box as a relative byte path for the strict lookups, or an error for `..`.
fn in_box(path: &Path) -> Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(part.as_bytes());
            }
            Component::RootDir | Component::CurDir => {}
            _ => bail!("{} is not a plain path in a box", path.display()),
        }
    }
    if out.is_empty() {
        out.push(b'.');
    }
    Ok(out)
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
