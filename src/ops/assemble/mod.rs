//! `box assemble`: the boxes of a distrobox manifest, made, removed or listed with the
//! same operations as `box create`, `box export` and `box rm`, so a manifest and the
//! equivalent commands give the same boxes; and a lockfile, which distrobox does not have.
//!
//! Invariants:
//! - the whole manifest is read and checked before anything is done (a dry run too): a
//!   manifest that does not parse, names a feature box does not support with a true value
//!   (`root=true`, `init=true`, ...), or gives a box what `box create` would refuse (a
//!   bad hostname, a missing volume source) changes nothing and the error names the file,
//!   line, key or box (false values of such features are accepted, as they ask for
//!   nothing);
//! - so are the boxes' exported binaries (each wrapper's place on the host free, no two
//!   boxes exporting to one place) and clones' sources, before any image is pulled or any
//!   box provisioned: a clash that would show after minutes of provisioning shows at
//!   once (exported apps are known by their desktop file only once the box has them, so
//!   theirs are checked when they are made);
//! - a box this run makes is made whole or not at all: when its provisioning, exports or
//!   start fail, it is removed again (with what it exported), so a rerun makes it afresh
//!   rather than keeping half of it; boxes made before it stay, and are in the lockfile;
//! - `rm` asks before it removes boxes that are running, as `box rm` does (on a terminal;
//!   `--force` removes them without asking, and without a terminal nothing running is
//!   removed without it);
//! - a box is replaced (`replace=true` or `--replace`) only once its new image is in the
//!   store: a failed pull keeps the old box;
//! - the lockfile (`FILE.lock`, TOML) records each box's image reference and the manifest
//!   digest it resolved to, written atomically after the boxes were made; `--locked`
//!   creates boxes from exactly those digests, whatever the tags point at now.

pub mod file;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{HintExt, failure};
use crate::ops::assemble::file::Definition;
use crate::ops::create::{CreateOptions, create};
use crate::ops::export::{Request, export};
use crate::registry::registries_conf::{RegistriesConf, Resolution};
use crate::store::Store;
use crate::ui::prompt::Assume;
use crate::ui::report::notice;

/// What `box assemble` was asked.
#[derive(Debug, Clone, Default)]
pub struct AssembleOptions {
    /// `rm`: remove running boxes too (they are stopped), without a question about them.
    pub force: bool,
    /// The manifest: a path or an `https://` URL; `None` is `./box.ini` when present,
    /// else `./distrobox.ini`.
    pub file: Option<String>,
    /// Only the box of this section.
    pub name: Option<String>,
    /// Replace boxes that exist, whatever the manifest says.
    pub replace: bool,
    /// Create from the digests of the lockfile.
    pub locked: bool,
    /// Say what would be done, do nothing.
    pub dry_run: bool,
}

/// A manifest as read: where from, and its boxes.
pub struct AssembleFile {
    pub source: String,
    pub definitions: Vec<Definition>,
}

/// The lockfile: one entry per box.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Lockfile {
    #[serde(default, rename = "box")]
    pub boxes: Vec<Locked>,
}

/// One box of the lockfile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Locked {
    pub name: String,
    /// The image reference the manifest names, canonical.
    pub image: String,
    /// The manifest digest it resolved to.
    pub digest: String,
}

/// The manifest `options` names, read and parsed (an `https://` URL is downloaded).
pub fn load(options: &AssembleOptions) -> Result<AssembleFile> {
    let source = match &options.file {
        Some(file) => file.clone(),
        // One that cannot be looked up is taken too: its error says why.
        None if Path::new("box.ini").try_exists().unwrap_or(true) => "box.ini".to_owned(),
        None => "distrobox.ini".to_owned(),
    };
    let text = if source.starts_with("https://") || source.starts_with("http://") {
        download(&source)?
    } else {
        std::fs::read_to_string(&source).map_err(|err| {
            // Not readable is not missing: the hint follows the error.
            let hint = match err.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    "the file (or a directory on its way) is not readable by you: check its \
                     permissions"
                }
                _ if options.file.is_none() => {
                    "box assemble reads ./distrobox.ini (or ./box.ini); name another with --file"
                }
                _ => "check the path given to --file",
            };
            anyhow::Error::from(err)
                .context(format!("reading the manifest {source}"))
                .context(crate::error::Hint(hint.to_owned()))
        })?
    };
    let mut definitions = crate::ops::assemble::file::parse(&text, &source)?;
    if let Some(name) = &options.name {
        definitions.retain(|d| &d.name == name);
        if definitions.is_empty() {
            bail!(failure(
                format!("the manifest {source} has no box [{name}]"),
                "`box assemble list` shows the manifest's boxes",
            ));
        }
    }
    Ok(AssembleFile {
        source,
        definitions,
    })
}

/// The manifest at `url`: https, or plain http from this machine (as for registries),
/// at the address given and at every address it redirects to (see
/// [`crate::registry::redirect`]).
fn download(url: &str) -> Result<String> {
    use crate::registry::redirect;
    let first: ureq::http::Uri = url.parse().map_err(|_| {
        failure(
            format!("`{url}` is not a valid address"),
            "give an https:// address, or a file",
        )
    })?;
    if first.scheme_str() == Some("http") {
        let host = first.host().unwrap_or("");
        if !crate::registry::reference::is_loopback_host(host) {
            bail!(failure(
                format!("the manifest {url} is not served over https"),
                "use an https:// address, or download it and pass the file",
            ));
        }
    }
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .proxy(ureq::Proxy::try_from_env())
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .max_redirects(0)
        .build()
        .into();
    let mut current = first;
    for _ in 0..=redirect::MAX_HOPS {
        let mut response = agent
            .get(current.clone())
            .call()
            .with_context(|| format!("downloading the manifest {current}"))
            .hint("check the address and your network")?;
        if !redirect::is_redirect(response.status().as_u16()) {
            return response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .with_context(|| format!("reading the manifest {current}"));
        }
        let next = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|location| redirect::resolve(&current, location))
            .with_context(|| {
                format!(
                    "{current} answered {} without a valid Location to go to",
                    response.status()
                )
            })?;
        redirect::check_transport(&next, Some(&current), |_| false)?;
        current = next;
    }
    bail!(failure(
        format!(
            "the manifest {url} redirected more than {} times",
            redirect::MAX_HOPS
        ),
        "the server is misconfigured (a redirect loop); download the manifest and pass the file",
    ))
}

/// Where the lockfile of `source` lives: beside the file, or in the current directory
/// for a URL.
pub fn lockfile_path(source: &str) -> PathBuf {
    if source.contains("://") {
        let base = source
            .rsplit('/')
            .next()
            .filter(|b| !b.is_empty())
            .unwrap_or("manifest.ini");
        PathBuf::from(format!("{base}.lock"))
    } else {
        PathBuf::from(format!("{source}.lock"))
    }
}

fn read_lockfile(path: &Path) -> Result<Option<Lockfile>> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("reading the lockfile {}", path.display()))
            .hint("it is written by `box assemble create`; remove it to start over")
            .map(Some),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Refuse what box cannot do, before anything is done.
fn check_supported(def: &Definition) -> Result<()> {
    let name = &def.name;
    if let Some((key, origin)) = def.enabled.iter().next() {
        let why = match key.as_str() {
            "root" => "box runs rootless only: root in a box is `box enter NAME --user root`",
            "init" => "boxes with systemd as init are not supported yet",
            _ => "box has the host's namespaces for these; unsharing them is not supported yet",
        };
        bail!(failure(
            format!("{origin}: box [{name}] sets `{key}=true`, which box does not support"),
            format!("{why}; remove the line or set it to false"),
        ));
    }
    // The engine's flags box has an equivalent for (--env, --volume, ...), as
    // `distrobox create --additional-flags` takes them; any other is refused.
    additional(def)?;
    if def.image.is_none() && def.clone.is_none() {
        bail!(failure(
            format!(
                "{}: box [{name}] has no image",
                def.origin
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string)
            ),
            "add image=REFERENCE (or a distribution name: image=debian) to its section",
        ));
    }
    crate::store::containers::validate_name(name)
        .with_context(|| format!("box [{name}] of the manifest"))?;
    Ok(())
}

/// `~` and `~/...` as the user's home.
fn expand_home(ctx: &Context, path: &str) -> PathBuf {
    match path.strip_prefix('~') {
        Some("") => ctx.dirs.home.clone(),
        Some(rest) if rest.starts_with('/') => ctx.dirs.home.join(&rest[1..]),
        _ => PathBuf::from(path),
    }
}

/// What a definition's `additional_flags` ask for (checked by [`check_supported`]).
fn additional(def: &Definition) -> Result<crate::ops::front_door::Additional> {
    crate::ops::front_door::additional(
        &def.additional_flags,
        crate::ops::front_door::FlagsOf::Create,
    )
    .map_err(|err| {
        let hint = err
            .downcast_ref::<crate::error::Hint>()
            .map(|h| h.0.clone());
        let message = format!(
            "{}: box [{}] {}",
            def.origin_of("additional_flags"),
            def.name,
            crate::error::message(&err)
        );
        match hint {
            Some(hint) => failure(message, hint),
            None => anyhow::anyhow!(message),
        }
    })
}

/// The create options of a definition, `image` already resolved.
fn create_options(ctx: &Context, def: &Definition, image: String, pull: bool) -> CreateOptions {
    // Checked before anything was done (see `check_supported`).
    let extra = additional(def).unwrap_or_default();
    CreateOptions {
        name: def.name.clone(),
        image,
        pull,
        hostname: def.hostname.clone().or(extra.hostname),
        home: def.home.as_deref().map(|h| expand_home(ctx, h)),
        volumes: def.volumes.iter().cloned().chain(extra.volumes).collect(),
        devices: extra.devices,
        // distrobox's nvidia=false is its default: box's default (automatic) stands.
        nvidia: def.nvidia.then_some(true),
        platform: None,
        entry: def.entry,
        dry_run: false,
        clone: None,
        // distrobox runs these at every start; box once, at create, with provisioning.
        additional_packages: def.additional_packages.clone(),
        pre_init_hooks: def.pre_init_hooks.clone(),
        init_hooks: def.init_hooks.clone(),
        no_provision: false,
        provision_set: None,
        env: extra
            .env
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        entry_file: Default::default(),
    }
}

/// What happened to one box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Replaced,
    /// It exists and was not to be replaced.
    Kept,
    /// `--dry-run`: what would happen.
    Planned(String),
}

/// Make the manifest's boxes. Returns each box's name and outcome.
pub fn assemble_create(ctx: &Context, options: &AssembleOptions) -> Result<Vec<(String, Outcome)>> {
    let manifest = load(options)?;
    for def in &manifest.definitions {
        check_supported(def)?;
        // What `box create` would refuse, refused before the first box is made (and by
        // a dry run). A clone takes its source's settings, as `box create --clone` does.
        let mut create = create_options(ctx, def, String::new(), false);
        if def.clone.is_some() {
            create.hostname = None;
            create.volumes.clear();
        }
        crate::ops::create::check_options(&create)
            .with_context(|| {
                format!(
                    "{}: box [{}]",
                    def.origin
                        .as_ref()
                        .map_or_else(String::new, |o| o.to_string()),
                    def.name
                )
            })
            // A bad value in a manifest is the file's fault, not a misuse of the command
            // line (which `box create` reports with its usage status).
            .context(crate::error::Exit(crate::error::EXIT_BOX_FAILURE))?;
    }
    let lock_path = lockfile_path(&manifest.source);
    let old_lock = read_lockfile(&lock_path)?;
    if options.locked && old_lock.is_none() {
        bail!(failure(
            format!("--locked, but there is no lockfile {}", lock_path.display()),
            "run `box assemble create` without --locked once to write it",
        ));
    }
    let catalogue = crate::ops::create::catalogue(ctx)?;
    let registries = RegistriesConf::from_env()?;
    let store = Store::at(&ctx.dirs.store);
    // Resolve every image reference first: a bad one stops everything before any change.
    let mut plans = Vec::new();
    for def in &manifest.definitions {
        // A clone's image is its source box's.
        let Some(written) = def.image.clone().filter(|_| def.clone.is_none()) else {
            plans.push((def, String::new(), None));
            continue;
        };
        let image =
            crate::ops::create::known_image(&catalogue, registries, &written)?.unwrap_or(written);
        // One reference per box (the lockfile pins it): a short name the search
        // registries make ambiguous is refused rather than tried in turn.
        let which_box = || {
            format!(
                "{}: the image of box [{}]",
                def.origin_of("image"),
                def.name
            )
        };
        let canonical = match registries.resolve(&image).with_context(which_box)? {
            Resolution::Reference(reference) | Resolution::Alias(reference, _) => reference,
            Resolution::Search { candidates, .. } if candidates.len() == 1 => candidates[0].clone(),
            Resolution::Search { candidates, origin } => bail!(failure(
                format!(
                    "{}: short name `{image}` could be any of {} (unqualified-search-registries of {origin})",
                    which_box(),
                    candidates
                        .iter()
                        .map(|c| c.canonical())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "a manifest names one image per box: write the full reference, or add an [aliases] entry to \
                 ~/.config/containers/registries.conf",
            )),
        };
        let pinned = match &old_lock {
            Some(lock) if options.locked => {
                let Some(entry) = lock.boxes.iter().find(|b| b.name == def.name) else {
                    bail!(failure(
                        format!(
                            "box [{}] is not in the lockfile {}",
                            def.name,
                            lock_path.display()
                        ),
                        "run `box assemble create` without --locked to add it",
                    ));
                };
                Some(format!("{}@{}", canonical.name(), entry.digest))
            }
            _ => None,
        };
        plans.push((def, canonical.canonical(), pinned));
    }

    check_before_making(ctx, options, &store, &plans)?;

    let mut outcomes = Vec::new();
    let mut locked = old_lock.unwrap_or_default();
    let mut failure = None;
    for (def, image, pinned) in plans {
        match make_box(ctx, options, &store, def, &image, pinned) {
            Ok((outcome, lock)) => {
                if let Some(lock) = lock {
                    locked.boxes.retain(|b| b.name != lock.name);
                    locked.boxes.push(lock);
                }
                outcomes.push((def.name.clone(), outcome));
            }
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    // What was made is recorded even when a later box failed.
    if outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Created | Outcome::Replaced))
    {
        write_lockfile(&lock_path, &manifest.source, &mut locked)?;
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(outcomes),
    }
}

/// Whether box `def` exists, and whether this run replaces it.
fn fate(options: &AssembleOptions, store: &Store, def: &Definition) -> (bool, bool) {
    let exists = store.has_container(&def.name);
    (exists, exists && (def.replace || options.replace))
}

/// What can be known to fail before any box is made: a clone whose source box neither
/// exists nor comes earlier in the manifest, and exported binaries whose wrapper could
/// not be written (a file box did not write, another box's export) or that two boxes
/// export to one place. Boxes the run keeps make no exports and are not looked at.
fn check_before_making(
    ctx: &Context,
    options: &AssembleOptions,
    store: &Store,
    plans: &[(&Definition, String, Option<String>)],
) -> Result<()> {
    let going: Vec<String> = plans
        .iter()
        .filter(|(def, _, _)| fate(options, store, def).1)
        .map(|(def, _, _)| def.name.clone())
        .collect();
    let mut wrappers: Vec<(PathBuf, &str)> = Vec::new();
    for (index, (def, _, _)) in plans.iter().enumerate() {
        let (exists, replace) = fate(options, store, def);
        if exists && !replace {
            continue;
        }
        if let Some(source) = &def.clone {
            let earlier = plans[..index].iter().any(|(d, _, _)| &d.name == source);
            if !earlier && !store.has_container(source) {
                bail!(failure(
                    format!(
                        "{}: box [{}] is a clone of box `{source}`, which neither exists nor comes earlier in the manifest",
                        def.origin_of("clone"),
                        def.name
                    ),
                    format!(
                        "create `{source}` first, or add its section above [{}]",
                        def.name
                    ),
                ));
            }
        }
        let export_path = def
            .exported_bins_path
            .as_deref()
            .map(|p| expand_home(ctx, p));
        for bin in &def.exported_bins {
            let which = || {
                format!(
                    "{}: box [{}] exports {bin}",
                    def.origin_of("exported_bins"),
                    def.name
                )
            };
            let wrapper = crate::export::check_bin_target(
                ctx,
                &def.name,
                bin,
                export_path.as_deref(),
                &going,
            )
            .with_context(which)
            .hint("nothing was made: move that file away, or export the binary to another directory (exported_bins_path)")?;
            if let Some((_, other)) = wrappers.iter().find(|(path, _)| *path == wrapper) {
                bail!(failure(
                    format!(
                        "{}, and box [{other}] exports a binary of that name to the same place, {}",
                        which(),
                        wrapper.display()
                    ),
                    "nothing was made: give one of the two boxes another exported_bins_path",
                ));
            }
            wrappers.push((wrapper, def.name.as_str()));
        }
    }
    Ok(())
}

fn write_lockfile(path: &Path, source: &str, locked: &mut Lockfile) -> Result<()> {
    locked.boxes.sort_by(|a, b| a.name.cmp(&b.name));
    let text = format!(
        "# Written by `box assemble create` from {source}: each box's image and the manifest\n\
         # digest it resolved to. `box assemble create --locked` recreates exactly these.\n{}",
        toml::to_string(locked).context("writing the lockfile")?
    );
    crate::store::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing the lockfile {}", path.display()))
}

/// Make (or keep, or plan) box `def`: its image is `image` (canonical), or `pinned` (a
/// digest reference) with `--locked`. Returns what happened and its lockfile entry.
fn make_box(
    ctx: &Context,
    options: &AssembleOptions,
    store: &Store,
    def: &Definition,
    image: &str,
    pinned: Option<String>,
) -> Result<(Outcome, Option<Locked>)> {
    let name = def.name.clone();
    let (exists, replace) = fate(options, store, def);
    let source = match &def.clone {
        Some(from) => format!("a clone of box `{from}`"),
        None => pinned.clone().unwrap_or_else(|| image.to_owned()),
    };
    if options.dry_run {
        let what = match (exists, replace) {
            (true, false) => {
                format!("keep box `{name}` (it exists; replace=true or --replace replaces it)")
            }
            (true, true) => format!(
                "replace box `{name}` with a new one from {source}{}",
                planned_details(ctx, def)?
            ),
            _ => format!(
                "create box `{name}` from {source}{}",
                planned_details(ctx, def)?
            ),
        };
        return Ok((Outcome::Planned(what), None));
    }
    if exists && !replace {
        notice(format!(
            "box `{name}` exists; kept (replace=true in the manifest or --replace replaces it)"
        ));
        return Ok((Outcome::Kept, None));
    }
    if let Some(source) = &def.clone {
        if replace {
            crate::ops::rm::remove_forced(ctx, &name, crate::runtime::stop::DEFAULT_GRACE)?;
        }
        let options = CreateOptions {
            clone: Some(source.clone()),
            ..create_options(ctx, def, String::new(), false)
        };
        let made = create(ctx, &options, &Assume(true))
            .with_context(|| format!("box [{name}]: cloning box `{source}`"))
            .and_then(|_| finish_box(ctx, def));
        whole_or_nothing(ctx, &name, made)?;
        let outcome = if replace {
            Outcome::Replaced
        } else {
            Outcome::Created
        };
        return Ok((outcome, None));
    }
    // The new image first (a replacement always asks the registry: the point is a box
    // from what the reference names now); a failed pull keeps the old box.
    let local = match def.pull || pinned.is_some() || replace {
        true => None,
        false => crate::ops::pull::find_local(ctx, &source)?,
    };
    let record = match local {
        Some(record) => record,
        None => crate::ops::pull::pull(ctx, &source, None)
            .with_context(|| format!("pulling the image of box [{name}]"))
            .with_hint(|| match &pinned {
                Some(_) => format!(
                    "the lockfile pins box [{name}] to a digest the registry may no longer have; `box assemble create` without --locked resolves the tag again"
                ),
                None => format!("`box pull {source}` says more"),
            })?,
    };
    if replace {
        crate::ops::rm::remove_forced(ctx, &name, crate::runtime::stop::DEFAULT_GRACE)?;
    }
    // The image is in the store now: create from exactly what was pulled.
    let options = create_options(ctx, def, record.reference.clone(), false);
    let made = create(ctx, &options, &Assume(true)).and_then(|_| finish_box(ctx, def));
    whole_or_nothing(ctx, &name, made)?;
    let lock = Locked {
        name: name.clone(),
        // The reference the manifest names, not the pinned one.
        image: image.to_owned(),
        digest: record.manifest_digest.to_string(),
    };
    let outcome = if replace {
        Outcome::Replaced
    } else {
        Outcome::Created
    };
    Ok((outcome, Some(lock)))
}

/// `made`, the outcome of making box `name` (created, provisioned, exported, started):
/// when it failed, the box is removed again (with its exports) if it was made at all,
/// so that no half-made box is left for a rerun to keep.
fn whole_or_nothing(ctx: &Context, name: &str, made: Result<()>) -> Result<()> {
    let Err(err) = made else {
        return Ok(());
    };
    if !Store::at(&ctx.dirs.store).has_container(name) {
        return Err(err);
    }
    match crate::ops::rm::remove_forced(ctx, name, crate::runtime::stop::DEFAULT_GRACE) {
        Ok(()) => Err(err.context(format!(
            "box [{name}] was not made whole, and was removed again (a rerun makes it afresh)"
        ))),
        Err(undo) => Err(err.context(format!(
            "box [{name}] was not made whole, and removing it again failed too ({}): `box rm --force {name}` removes it",
            crate::error::message(&undo)
        ))),
    }
}

/// What `--dry-run` says a new box `def` gets besides its image: hostname, home, volumes,
/// packages and hooks (with the settings' defaults, as `box create` would give them) and
/// exports, one line each.
fn planned_details(ctx: &Context, def: &Definition) -> Result<String> {
    let mut lines = Vec::new();
    if let Some(hostname) = &def.hostname {
        lines.push(format!("hostname: {hostname}"));
    }
    if let Some(home) = &def.home {
        lines.push(format!("home: {}", expand_home(ctx, home).display()));
    }
    if !def.volumes.is_empty() {
        lines.push(format!("volumes: {}", def.volumes.join(" ")));
    }
    // A clone gets only what its section asks; a new box the settings' defaults too.
    let provisioning = match &def.clone {
        Some(_) => Some(crate::store::provision::Provisioning {
            status: crate::store::provision::Status::Pending,
            additional_packages: def
                .additional_packages
                .iter()
                .flat_map(|l| l.split_whitespace().map(str::to_owned))
                .collect(),
            pre_init_hooks: def.pre_init_hooks.clone(),
            init_hooks: def.init_hooks.clone(),
            set: Default::default(),
        }),
        None => crate::provision::requested(
            ctx,
            &crate::provision::Request {
                additional_packages: def.additional_packages.clone(),
                pre_init_hooks: def.pre_init_hooks.clone(),
                init_hooks: def.init_hooks.clone(),
                off: false,
                set: None,
            },
        )?,
    };
    match provisioning {
        None => lines.push("provisioning: off".to_owned()),
        Some(p) => {
            if def.clone.is_none() {
                lines.push(
                    "provisioning: what the image lacks (decided once it is pulled)".to_owned(),
                );
            }
            if !p.additional_packages.is_empty() {
                lines.push(format!("packages: {}", p.additional_packages.join(" ")));
            }
            for hook in &p.pre_init_hooks {
                lines.push(format!("pre-init hook: {hook}"));
            }
            for hook in &p.init_hooks {
                lines.push(format!("init hook: {hook}"));
            }
        }
    }
    let export_path = def
        .exported_bins_path
        .as_deref()
        .map(|p| expand_home(ctx, p));
    for bin in &def.exported_bins {
        let dir = export_path
            .clone()
            .unwrap_or_else(|| ctx.dirs.bin_home.clone());
        let file = bin.rsplit('/').next().unwrap_or_default();
        lines.push(format!("export: {bin} as {}", dir.join(file).display()));
    }
    for app in &def.exported_apps {
        lines.push(format!("export: application {app} to the menu"));
    }
    if def.start_now {
        lines.push("start it".to_owned());
    }
    Ok(lines.iter().map(|l| format!("\n  {l}")).collect())
}

/// What follows the creation of box `def`: its exports, and its start with `start_now`.
fn finish_box(ctx: &Context, def: &Definition) -> Result<()> {
    let name = &def.name;
    let export_path = def
        .exported_bins_path
        .as_deref()
        .map(|p| expand_home(ctx, p));
    for bin in &def.exported_bins {
        let request = Request::Bin {
            path: bin,
            export_path: export_path.as_deref(),
            force: false,
            extra: Default::default(),
        };
        export(ctx, name, request)?;
    }
    for app in &def.exported_apps {
        let request = Request::App {
            app,
            label: None,
            force: false,
            extra: Default::default(),
        };
        export(ctx, name, request)?;
    }
    if def.start_now {
        crate::ops::session::start(ctx, name, true)?;
    }
    Ok(())
}

/// The manifest's boxes, each with whether it exists.
pub fn list(options: &AssembleOptions, ctx: &Context) -> Result<Vec<(Definition, bool)>> {
    let manifest = load(options)?;
    let store = Store::at(&ctx.dirs.store);
    Ok(manifest
        .definitions
        .into_iter()
        .map(|def| {
            let exists = store.has_container(&def.name);
            (def, exists)
        })
        .collect())
}

/// Remove the manifest's boxes (and their exports). Returns the names removed (with
/// `dry_run`, that would be), `None` when the user said no. Running boxes are removed with `force`, or when `ask` (a user
/// at a terminal) agrees to the question that names them, as `box rm` asks; a caller with
/// nobody to ask and without `force` removes nothing while one runs.
pub fn assemble_rm(
    ctx: &Context,
    options: &AssembleOptions,
    ask: &dyn crate::ui::prompt::Ask,
) -> Result<Option<Vec<String>>> {
    let manifest = load(options)?;
    let store = Store::at(&ctx.dirs.store);
    let names: Vec<String> = manifest
        .definitions
        .iter()
        .map(|d| d.name.clone())
        .filter(|n| store.has_container(n))
        .collect();
    if options.dry_run || names.is_empty() {
        return Ok(Some(names));
    }
    let running = crate::runtime::state::running_among(ctx, &store, &names);
    // Only a question answered at a terminal stands for --force: an answer given in
    // advance (--yes) is about removing, and running boxes need --force, as with box rm.
    let asks = ask.preset().is_none();
    if !running.is_empty() && !options.force && !asks {
        let (which, it) = match running.as_slice() {
            [one] => (format!("box {one} of the manifest is"), "it"),
            many => (
                format!("boxes {} of the manifest are", many.join(", ")),
                "them",
            ),
        };
        bail!(failure(
            format!("{which} running, so nothing was removed"),
            format!(
                "stop {it} first (`box stop {}`) or use `box assemble rm --force`",
                running.join(" ")
            ),
        ));
    }
    let mut removed = Vec::new();
    let done = crate::ops::rm::rm(
        ctx,
        false,
        &names,
        crate::ops::rm::RmOptions {
            force: true,
            require_question: false,
            grace: crate::runtime::stop::DEFAULT_GRACE,
            remove_home: false,
        },
        ask,
        &mut |name| removed.push(name.to_owned()),
    )?;
    Ok(done.then_some(removed))
}
