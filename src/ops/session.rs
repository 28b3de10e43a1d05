//! A session in a box, with one owner: resolve the box ([`target`]: a name, an image
//! reference, or without either the default box as toolbox has it), offer to create it
//! when it does not exist, start it or adopt its processes, finish its
//! pending provisioning, and join it. `box enter`, `box run` (and so every exported
//! wrapper and desktop launcher, which call `box run`), `box ephemeral` and `assemble`'s
//! `start_now` all come here; nothing starts box again by spelling its command line.
//!
//! Invariants:
//! - the hot path is unchanged: a running box whose provisioning is not pending is joined
//!   from its runtime state alone (one file read, one /proc read; see `runtime::join`),
//!   with no store, settings or catalogue read;
//! - inside box NAME, a session of NAME runs right there (no namespace to join), and a
//!   session of another box is refused with the hint that it is the host's job;
//! - an interrupted provisioning run is resumed before the user's own command runs
//!   (unless the session is for another account, `--user`, which may be how the user
//!   repairs what stopped it);
//! - a box that does not exist is created only when the caller's [`Ask`] says yes (a
//!   user at a terminal, or `--yes`); nobody to ask means the usual "no box named" error,
//!   which callers tell apart by its type ([`NoSuchBox`]), never by its text.

use std::convert::Infallible;
use std::ffi::OsString;

use anyhow::Result;

use crate::context::Context;
use crate::error::{Hint, failure};
use crate::ops::create::CreateOptions;
use crate::runtime::join;
use crate::runtime::state::{self, State};
use crate::store::Store;
use crate::store::containers::validate_name;
use crate::ui::prompt::Ask;

pub use crate::host::STANDARD_PATH;
pub use crate::runtime::join::{Command, Join};
pub use crate::store::containers::NoSuchBox;

/// What a session does when its box does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing<'a> {
    /// Fail with "no box named" (`box run`: scripts and launchers never get a question).
    Fail,
    /// Ask whether to create it from the catalogue (`box enter`).
    OfferToCreate,
    /// Ask whether to create it from this image reference (`box enter IMAGE`, or the
    /// host's distribution for `box enter` alone; see [`target`]).
    OfferToCreateFrom(&'a str),
}

/// A session in a box: which box, what to run there and how.
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    pub name: &'a str,
    pub join: Join<'a>,
    pub missing: Missing<'a>,
}

impl Session<'_> {
    /// What the session does, for errors (`enter box `dev``).
    fn what(&self) -> String {
        match self.join.command {
            Command::LoginShell => format!("enter box `{}`", self.name),
            Command::Exec(_) => format!("run a command in box `{}`", self.name),
        }
    }
}

/// The box a session is for, and the image a missing one would be made from when that
/// is not the catalogue's business (see [`target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    /// For [`Missing::OfferToCreateFrom`].
    pub image: Option<String>,
}

/// The box `box enter` means by `name`:
/// - a box name;
/// - an image reference or a catalogue name with a tag (`fedora:41`,
///   `docker.io/library/debian:12`): the box named after it (`fedora-41`, `debian-12`,
///   as distrobox names boxes from their images), made from it when missing;
/// - nothing: inside a box, that box; else the `default-name` setting; else the box of
///   the host's distribution and release when it exists (toolbox's default box), else the
///   only box; with no box at all, the host's distribution's box, offered for creation.
pub fn target(ctx: &Context, name: Option<&str>) -> Result<Target> {
    let plain = |name: String| Target { name, image: None };
    let Some(text) = name else {
        return default_target(ctx);
    };
    if validate_name(text).is_ok() {
        return Ok(plain(text.to_owned()));
    }
    // Box names have no `/`, `:` or `@`; references do.
    if !text.contains(['/', ':', '@']) {
        validate_name(text)?;
    }
    let catalogue = crate::ops::create::catalogue(ctx)?;
    let registries = crate::registry::registries_conf::RegistriesConf::from_env()?;
    let (image, name) = match crate::ops::create::known_image(&catalogue, registries, text)? {
        Some(image) => (image, text.replace(':', "-")),
        None => {
            // Neither a box name nor an image reference (`../x`): the box name's rule is
            // what the user most likely missed, and a usage error says it.
            if crate::registry::reference::Reference::parse(text).is_err() {
                return Err(validate_name(text).expect_err("checked above: not a box name"));
            }
            (
                text.to_owned(),
                crate::settings::distro::name_for_reference(text),
            )
        }
    };
    validate_name(&name).map_err(|_| {
        failure(
            format!("image {text} gives no usable box name (`{name}`)"),
            format!(
                "name the box yourself: `box create --image {text} NAME`, then `box enter NAME`"
            ),
        )
        .context(crate::error::Exit(crate::error::EXIT_USAGE))
    })?;
    Ok(Target {
        name,
        image: Some(image),
    })
}

/// [`target`] without a name.
fn default_target(ctx: &Context) -> Result<Target> {
    let plain = |name: String| Target { name, image: None };
    if let Some(current) = crate::host::inside_box() {
        return Ok(plain(current));
    }
    if let Some(name) = &ctx.config()?.default_name {
        validate_name(name)?;
        return Ok(plain(name.clone()));
    }
    let host = crate::ops::create::host_default(&crate::ops::create::catalogue(ctx)?);
    let boxes = Store::at(&ctx.dirs.store).container_names()?;
    if let Some(host) = &host
        && boxes.contains(&host.name)
    {
        return Ok(plain(host.name.clone()));
    }
    match (boxes.as_slice(), host) {
        ([only], _) => Ok(plain(only.clone())),
        ([], Some(host)) => Ok(Target {
            name: host.name,
            image: Some(host.image),
        }),
        ([], None) => Err(failure(
            "which box? you have none, and box does not know this host's distribution",
            "make one: `box create debian` (or another distribution), then `box enter debian`; `default-name` in ~/.config/box/config.toml names the box of `box enter` alone",
        )),
        (many, _) => Err(failure(
            format!(
                "which box? name it: `box enter NAME` (you have {})",
                many.join(", ")
            ),
            "`default-name` in ~/.config/box/config.toml names the box of `box enter` alone",
        )),
    }
}

/// Run `session` in place of this process: returns only on failure. `ask` decides
/// whether a missing box is created (with [`Missing::OfferToCreate`]).
pub fn exec(ctx: &Context, session: &Session<'_>, ask: &dyn Ask) -> Result<Infallible> {
    let name = session.name;
    let join = &session.join;
    validate_name(name)?;
    crate::runtime::identity::refuse_inside(join.user, name)?;
    join::here_when_inside(name, join.command, join.no_workdir, || session.what())?;
    // The hot path: a running box is joined from its runtime state alone.
    let state = match state::running(ctx, name) {
        Some(state) if !state.provisioning || join.user.is_some() => state,
        _ => {
            // In box NAME under sudo or env -i (no CONTAINER_ID): no state, no holder to
            // start; the box's own file says where we are.
            join::here_when_box_file_says(name, join.command, join.no_workdir, || session.what())?;
            if !Store::at(&ctx.dirs.store).has_container(name) {
                missing_box(ctx, name, session.missing, ask)?;
            }
            start(ctx, name, join.user.is_none())?
        }
    };
    join::exec(name, &state, join)
}

/// What starting box `name` would do (`--dry-run`): its plan for this user on this host.
pub fn plan(ctx: &Context, name: &str) -> Result<crate::runtime::plan::Plan> {
    let store = Store::at(&ctx.dirs.store);
    let record = store.container(name)?;
    crate::runtime::plan_for(ctx, &store, &record)
}

/// Make box `name` ready for sessions and return its state: started (or its processes
/// adopted by a new holder), and with `finish_provisioning` its pending provisioning run
/// first (an interrupted one is resumed).
pub fn start(ctx: &Context, name: &str, finish_provisioning: bool) -> Result<State> {
    if finish_provisioning {
        crate::provision::resume_pending(ctx, name)?;
    }
    let mut state = crate::runtime::ensure_running(ctx, name)?;
    if state.provisioning {
        // A run that finished but was killed before it stopped the box: the flag has
        // nothing more to say, and would keep every join on this path.
        state.provisioning = false;
        state::write(ctx, &Store::at(&ctx.dirs.store), name, &state)?;
    }
    Ok(state)
}

/// Run `command` (a login shell when empty) in the running box `name` (held by `state`,
/// see [`start`]) as a child of this process, with this process's terminal and streams,
/// and wait for it to end. For callers that go on once the command ends (`box ephemeral`
/// removes its box then).
pub fn run_child(
    name: &str,
    state: &State,
    command: &[OsString],
    no_workdir: bool,
) -> Result<std::process::ExitStatus> {
    let join = Join {
        no_workdir,
        ..Join::new(if command.is_empty() {
            Command::LoginShell
        } else {
            Command::Exec(command)
        })
    };
    let pid = join::spawn(name, state, &join, join::Stdio::default())?;
    join::wait(pid)
}

/// Box `name` does not exist: create it when `missing` allows and `ask` agrees, else the
/// typed "no box named" error (with, for a removed box's exported launcher, which file
/// called it).
fn missing_box(ctx: &Context, name: &str, missing: Missing<'_>, ask: &dyn Ask) -> Result<()> {
    // The store's own "no box named" error (typed), unless the box appeared meanwhile.
    let not_found = || -> Result<()> {
        Store::at(&ctx.dirs.store)
            .container(name)
            .map(|_| ())
            .map_err(|err| match crate::export::missing_box_hint(name) {
                Some(hint) => err.context(Hint(hint)),
                None => err,
            })
    };
    if missing == Missing::Fail || ask.preset() == Some(None) {
        return not_found();
    }
    // The image given, a distribution's name, or else the configured default image; a
    // typo of an existing box's name is not offered as a new box (unless it is a
    // distribution's).
    let catalogue = crate::ops::create::catalogue(ctx)?;
    let distro = match missing {
        Missing::OfferToCreateFrom(image) => Some(crate::settings::distro::Resolved {
            distro: String::new(),
            image: image.to_owned(),
        }),
        _ => catalogue.resolve(name),
    };
    if distro.is_none()
        && !Store::at(&ctx.dirs.store)
            .close_container_names(name)
            .is_empty()
    {
        return not_found();
    }
    let found = distro.or_else(|| {
        let image = ctx.config().ok()?.default_image.clone()?;
        Some(
            catalogue
                .resolve(&image)
                .unwrap_or(crate::settings::distro::Resolved {
                    distro: String::new(),
                    image,
                }),
        )
    });
    let Some(found) = found else {
        return not_found();
    };
    let question = format!("Box {name} does not exist. Create it from {}?", found.image);
    if ask.ask(&question)? != Some(true) {
        return not_found();
    }
    let options = CreateOptions {
        name: name.to_owned(),
        image: found.image,
        entry: crate::ops::create::entry_by_default(ctx)?,
        ..CreateOptions::default()
    };
    // The user agreed to the box, and so to the pull it may need.
    let created = crate::ops::create::create(ctx, &options, &crate::ui::prompt::Assume(true))?;
    // stderr: stdout belongs to the command about to run.
    crate::ui::report::notice(format!(
        "Created box {} from {}.",
        created.name, created.image
    ));
    Ok(())
}
