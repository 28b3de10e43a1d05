//! The runtime: a box's mount plan ([`plan`]) composed of its host integrations
//! ([`plan::integrations`]), the holder that keeps a running box's
//! namespaces ([`holder`]) and the files that follow the host's ([`follow`]), joining it
//! ([`join`]), first-start user setup ([`setup`]), the copy fallback ([`copy`]), the
//! runtime state ([`state`]), the box's processes ([`members`]) and stopping ([`stop`]);
//! the hooks of its CDI devices ([`devices`]);
//! root in a box without subordinate ids ([`fakeroot`]) and its `sudo` ([`sudo`]).
//!
//! Invariants:
//! - one holder per box, whatever session asks: starts, stops and removals of a box are
//!   serialized by its lock in the store (`Store::box_lock`), and a start re-checks the
//!   box's record in the store once it has the lock;
//! - a holder is recognised by pid *and* start time (and boot id), so a stale state
//!   (kill -9, reboot, pid reuse) leads to a new holder, never to joining a stranger;
//! - a box whose holder died while processes still run in it is never mounted a second
//!   time on the same overlay: a new holder joins the namespaces of those processes
//!   ([`holder::adopt`]); when all of them left the box's mount namespace (and so none
//!   can be joined), box says so, and `box stop` ends them;
//! - the join path reads only the session's runtime state file.

pub mod copy;
pub mod devices;
pub mod follow;
pub mod holder;
pub mod identity;
pub mod join;
pub mod members;
pub mod plan;
pub mod setup;
pub mod state;
pub mod stop;

use std::os::fd::AsFd;

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::error::HintExt;
use crate::store::Store;
use crate::store::containers::ContainerRecord;
use state::State;

/// The plan of `record` for this user on this host, for a start with a new instance id:
/// the host's facts gathered, then the plan built from them.
pub fn plan_for(ctx: &Context, store: &Store, record: &ContainerRecord) -> Result<plan::Plan> {
    let user = ctx.user()?;
    let mapping = ctx.id_mapping()?;
    let facts = plan::Facts::gather(record, user, mapping)?;
    for warning in &facts.devices.warnings {
        crate::ui::report::warn(warning);
    }
    Ok(plan::build(
        record,
        &plan::PlanInputs {
            store,
            user,
            mapping,
            facts: &facts,
            instance: new_instance_id()?,
            host_exec_dir: Some(crate::host_exec::host_dir(&state::box_dir(
                ctx,
                &record.name,
            ))),
        },
    ))
}

/// 16 random bytes in hex: the id of one start of a box.
fn new_instance_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    let mut filled = 0;
    while filled < bytes.len() {
        filled +=
            rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())
                .map_err(std::io::Error::from)
                .context("getrandom(2)")?;
    }
    Ok(hex::encode(bytes))
}

/// The state of box `name`, starting its holder first when it is not running.
pub fn ensure_running(ctx: &Context, name: &str) -> Result<State> {
    if let Some(state) = state::running(ctx, name) {
        return Ok(state);
    }
    // A clear "no box named" before anything is created for the name.
    let store = Store::at(&ctx.dirs.store);
    if !store.has_container(name) {
        store.container(name)?;
    }
    ctx.runtime_dir()?;
    let _lock = store.box_lock(name)?;
    // Another session may have started it, possibly while we waited for the lock; or its
    // holder died and left processes behind.
    let leftovers = match state::status(ctx, &store, name) {
        state::Status::Running(state) => return Ok(state),
        state::Status::Orphaned { record, members } => Some((record, members)),
        state::Status::Stopped { .. } => None,
    };
    let store = Store::open(&ctx.dirs.store)?;
    let mut record = store.container(name)?;
    let mapping = ctx.id_mapping()?;
    // Layers unpacked with another mapping would show wrong owners: refuse, never mix.
    store.check_id_mapping(mapping)?;
    ctx.explain_id_mapping_once();
    // No box starts from layers a box could have changed (see the store's module doc).
    crate::image::helper::ensure_guarded(ctx)?;
    let mut plan = plan_for(ctx, &store, &record)?;
    // A new holder's watch on the host's files (an adopting one makes its own).
    let watch = leftovers
        .is_none()
        .then(|| follow::new_watch(&plan.files))
        .flatten();
    let pending = match leftovers {
        Some((old, members)) => {
            let Some(member) = members.iter().find(|m| m.joinable) else {
                return Err(leftovers_error(name, &old, &members));
            };
            // Same start of the box: its processes keep telling it by the old id, and
            // its mounts are those the old holder made.
            plan.instance = old.instance.clone().unwrap_or_default();
            plan.joins = old.joins.clone();
            if old.host_exec_dir.is_some() {
                plan.host_exec_dir = old.host_exec_dir.clone();
            }
            holder::adopt(&plan, member.pid as u32, &record.storage, &old.shell).with_hint(
                || {
                    format!(
                        "`box stop {name}` ends what still runs in the box; then enter it again"
                    )
                },
            )?
        }
        None => {
            if let plan::Storage::Overlay { .. } = plan.storage {
                store.link_lowers(name, &record.layers)?;
            }
            if let Some(dir) = &plan.host_exec_dir {
                state::private_box_dir(ctx, name)?;
                crate::store::ensure_private_dir(dir)?;
                crate::store::check_private_dir(dir, ctx.uid)?;
            }
            holder::start(&plan, mapping, watch.as_ref().map(|fd| fd.as_fd()))?
        }
    };
    let ready = &pending.ready;
    // Not waited for: the box runs without it, and its client waits for its socket.
    if let Some(dir) = &plan.host_exec_dir
        && let Err(err) = crate::host_exec::server::start(
            &crate::host_exec::server::Config {
                name: name.to_owned(),
                holder_pid: ready.pid,
                holder_start: ready.start_time,
                dir: dir.clone(),
                shared: plan.shared_dirs(),
                env: crate::host_exec::BoxEnv {
                    forced: plan.env_forced.iter().map(|(n, _)| n.clone()).collect(),
                    defaults: plan.env_defaults.clone(),
                },
                home: ctx.dirs.home.clone(),
                shell: plan.user.host_shell.clone(),
            },
            watch.as_ref().map(|fd| fd.as_fd()),
        )
    {
        crate::ui::report::notice(format!(
            "warning: `box host-exec` will not work in box `{name}`: {}",
            crate::error::message(&err)
        ));
    }
    let mount_points = ready
        .device_mount_points
        .as_ref()
        .filter(|points| **points != record.device_mount_points);
    if ready.storage != record.storage || mount_points.is_some() {
        record.storage = ready.storage.clone();
        if let Some(points) = mount_points {
            record.device_mount_points = points.clone();
        }
        store.update_container(&record)?;
    }
    let state = State {
        pid: ready.pid,
        start_time: ready.start_time,
        shell: ready.shell.clone(),
        home: plan.user.home.display().to_string(),
        env_forced: plan.env_forced,
        env_defaults: plan.env_defaults,
        mnt_ns: members::namespace(&ready.pid.to_string(), "mnt"),
        user_ns: members::namespace(&ready.pid.to_string(), "user"),
        uts_ns: members::namespace(&ready.pid.to_string(), "uts"),
        instance: Some(plan.instance.clone()),
        joins: plan.joins.clone(),
        host_exec_dir: plan.host_exec_dir.clone(),
        store: None,
        boot_id: None,
        provisioning: false,
        skip_workdir: ctx.config().is_ok_and(|c| c.skip_workdir),
    };
    state::write(ctx, &store, name, &state)?;
    pending.commit()?;
    Ok(state)
}

/// Why box `name` cannot start while processes of an earlier, dead holder still run in
/// it, none of them in all of the box's own namespaces: they keep its overlay mounted, a
/// second mount of the same upper directory is undefined behaviour, and there is no
/// process whose namespaces a new holder could take for the box's.
fn leftovers_error(name: &str, old: &State, left: &[members::Member]) -> anyhow::Error {
    let pids: Vec<String> = left.iter().map(|m| m.pid.to_string()).collect();
    crate::error::failure(
        format!(
            "the holder of box `{name}` (pid {}) has ended, but {} of its processes still run \
             in the box (pid {})",
            old.pid,
            left.len(),
            pids.join(", ")
        ),
        format!("end them with `box stop {name}` (or finish them), then enter the box again"),
    )
}

/// Refuse to act on box `name` (`what`, e.g. "run a command in box `two`") from inside
/// box `current`. Boxes are siblings, each in a user namespace of its own: from inside
/// one, the kernel lets box neither join another (nor its own from the outside) nor
/// start, stop or clean up a holder, so these are jobs for the host.
pub fn from_host_only(current: &str, name: &str, what: &str) -> anyhow::Error {
    crate::error::failure(
        format!("cannot {what} from inside box `{current}`"),
        from_host_only_hint(current, name),
    )
}

/// The hint of [`from_host_only`].
pub fn from_host_only_hint(current: &str, name: &str) -> String {
    if current == name {
        format!("do it from the host (a terminal outside box `{current}`)")
    } else {
        format!(
            "do it from the host (a terminal outside box `{current}`); inside box `{current}` you can only run commands of `{current}` itself"
        )
    }
}

/// The root directory of box `name` as seen from this process, for reading its files
/// (`box export`): `/` inside that very box, else `/proc/<holder pid>/root`, starting
/// the holder when the box is not running. Open box paths under it with
/// `export::boxfs` (openat2 in root), never by joining: absolute symlinks in the box
/// would resolve against the host.
pub fn box_root(ctx: &Context, name: &str) -> Result<std::path::PathBuf> {
    if crate::host::containerenv_box().as_deref() == Some(name) {
        return Ok("/".into());
    }
    let state = match state::running(ctx, name) {
        Some(state) => state,
        None => ensure_running(ctx, name)?,
    };
    Ok(format!("/proc/{}/root", state.pid).into())
}
