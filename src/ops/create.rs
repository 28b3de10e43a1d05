//! Creating a box: resolve the image (catalogue or reference), pull it if needed, write
//! the box record, add its menu entry. Nothing is copied: a box is a few directories and
//! a record until its first start.
//!
//! Invariants: every argument is checked (name, hostname, volumes, home) before anything
//! is pulled or written; the record is written under the store lock after checking that
//! every layer it names is in the store, so a box never names a layer that is gone; a
//! failed menu entry is a warning, never a failed create.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::context::Context;
use crate::error::failure;
use crate::registry::registries_conf::RegistriesConf;
use crate::settings::distro::{Catalogue, default_name};
use crate::store::Store;
use crate::store::containers::{ContainerRecord, validate_name};
use crate::ui::prompt::Ask;

/// What to create: the typed form of `box create`'s flags (and of a manifest's section).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The box's name.
    pub name: String,
    /// An image reference (catalogue names are resolved by [`resolve_target`]).
    pub image: String,
    /// Pull the image even when the store has it.
    pub pull: bool,
    /// Hostname inside; `None` keeps the host's.
    pub hostname: Option<String>,
    /// Home inside the box when not the host's (absolute).
    pub home: Option<PathBuf>,
    /// Volumes as the user writes them: `SRC:DST[:ro|:rw]`.
    pub volumes: Vec<String>,
    /// CDI devices, `VENDOR/CLASS=NAME` (`--device`).
    pub devices: Vec<String>,
    /// NVIDIA's GPUs: `--nvidia` (true), `--no-nvidia` (false), automatic (`None`).
    pub nvidia: Option<bool>,
    /// `os/arch[/variant]` to pick from a multi-platform image.
    pub platform: Option<String>,
    /// Add the desktop menu entry.
    pub entry: bool,
    /// Only build the plan: nothing is pulled or written.
    pub dry_run: bool,
    /// Make the box as a copy of this (stopped) box: its files and record, its image.
    pub clone: Option<String>,
    /// Packages to install besides what the box needs (`--additional-packages`).
    pub additional_packages: Vec<String>,
    /// Commands run as root in the box before the packages (`--pre-init-hooks`).
    pub pre_init_hooks: Vec<String>,
    /// Commands run as root in the box after the packages (`--init-hooks`).
    pub init_hooks: Vec<String>,
    /// Do not provision the box (`--no-provision`).
    pub no_provision: bool,
    /// `--provision-set`.
    pub provision_set: Option<crate::settings::config::NeedSet>,
    /// Environment of the box (`KEY=value`), for names a session does not set.
    pub env: Vec<String>,
    /// Which file the menu entry is (with `entry`): box's or distrobox's name.
    pub entry_file: crate::export::EntryFile,
}

/// What [`create`] made (or with `dry_run`, would make).
pub struct Created {
    pub name: String,
    /// The canonical image reference.
    pub image: String,
    /// With `dry_run`: the namespace and mount plan.
    pub plan: Option<crate::runtime::plan::Plan>,
}

/// Whether `box create` adds a new box's menu entry when not told (`--no-entry`): the
/// `generate-entry` setting (distrobox's `container_generate_entry`), else yes.
pub fn entry_by_default(ctx: &Context) -> Result<bool> {
    Ok(ctx.config()?.generate_entry != Some(false))
}

/// The user's catalogue (shipped entries plus `distros.d`).
pub fn catalogue(ctx: &Context) -> Result<Catalogue> {
    Catalogue::load(&ctx.dirs.config.join("distros.d"))
}

/// The image a name given for a box means (`fedora`, `trixie`, `fedora:41`): a short-name
/// alias of the registries configuration first, so that a name means on this host what
/// it means to podman; then box's catalogue (box's own aliases, in effect). `None` when
/// neither knows it: the name is an image reference, resolved when it is pulled (short
/// names through `unqualified-search-registries`, else Docker Hub).
pub fn known_image(
    catalogue: &Catalogue,
    registries: &RegistriesConf,
    text: &str,
) -> Result<Option<String>> {
    if let Some((reference, _origin)) = registries.alias(text)? {
        return Ok(Some(reference.canonical()));
    }
    Ok(catalogue.resolve(text).map(|found| found.image))
}

/// The image (and box name) of the host's own distribution and release, when the
/// catalogue has it: toolbox's default for a box of no image (see
/// [`Catalogue::for_host`]).
pub fn host_default(catalogue: &Catalogue) -> Option<crate::settings::distro::ForHost> {
    let text = crate::host::os_release()?;
    catalogue.for_host(&crate::settings::distro::OsRelease::parse(&text))
}

/// Which image and which box name `box create` means: `--image` (a catalogue name or a
/// reference) with `--name` or a positional name, or a catalogue name alone. Without an
/// image, and a name that is no distribution's, the default image stands in: the
/// `default-image` setting, else the host's distribution and release (as toolbox), with
/// the `default-name` setting, else a name of its own, for a box not named.
pub fn resolve_target(
    ctx: &Context,
    image: Option<&str>,
    name: Option<&str>,
    positional_name: Option<&str>,
) -> Result<(String, String)> {
    let catalogue = catalogue(ctx)?;
    let registries = RegistriesConf::from_env()?;
    let known = |text: &str| known_image(&catalogue, registries, text);
    let settings = ctx.config()?;
    let given_name = name.or(positional_name);
    let wants_default = image.is_none()
        && match given_name {
            None => true,
            Some(n) => known(n)?.is_none(),
        };
    // (image text, the name it gives a box not named)
    let fallback: Option<(String, Option<String>)> = match wants_default {
        false => None,
        true => match &settings.default_image {
            Some(image) => Some((image.clone(), None)),
            None => host_default(&catalogue).map(|host| (host.image, Some(host.name))),
        },
    };
    let (image, fallback_name) = match &fallback {
        Some((image, name)) => (Some(image.as_str()), name.clone()),
        None => (image, None),
    };
    let given_name = given_name.or(match fallback {
        Some(_) => settings.default_name.as_deref(),
        None => None,
    });
    let (name, positional_name) = match (name, positional_name) {
        (None, None) => (given_name, None),
        other => other,
    };
    let (image_ref, default) = match (image, given_name) {
        // A catalogue name names the box as it does without --image: `trixie`, `fedora-41`.
        (Some(text), _) => match known(text)? {
            Some(image) => (image, text.replace(':', "-")),
            None => (text.to_owned(), default_name(text)),
        },
        (None, Some(name)) => match known(name)? {
            Some(image) => (image, name.replace(':', "-")),
            None => bail!(failure(
                format!("`{name}` is not a distribution box knows, and no --image was given"),
                format!(
                    "give the image: `box create --image REFERENCE {name}`; distributions: {}",
                    catalogue
                        .distros
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        },
        (None, None) => bail!(failure(
            "no image or distribution given, and box does not know this host's distribution",
            "e.g. `box create ubuntu`, `box create trixie`, or `box create --image REFERENCE NAME`; `default-image` in ~/.config/box/config.toml names one for `box create` alone",
        )),
    };
    let default = fallback_name.unwrap_or(default);
    let box_name = match (name, positional_name, image) {
        (Some(name), _, _) => name.to_owned(),
        (None, Some(name), Some(_)) => name.to_owned(),
        _ => default,
    };
    Ok((image_ref, box_name))
}

/// Check what `box create` checks of its arguments before anything else (the name, the
/// hostname, the volumes, the device names): what `box assemble` checks of every box of
/// a manifest before it makes the first one. Returns the volumes, parsed.
pub fn check_options(options: &CreateOptions) -> Result<Vec<crate::store::containers::Volume>> {
    validate_name(&options.name)?;
    if let Some(hostname) = &options.hostname {
        super::shape::validate_hostname(hostname)?;
    }
    let volumes = options
        .volumes
        .iter()
        .map(|v| super::shape::parse_volume(v))
        .collect::<Result<Vec<_>>>()?;
    for device in &options.devices {
        crate::host::cdi::parse_device_name(device)?;
    }
    Ok(volumes)
}

/// Create a box (or with `dry_run`, build its plan). `ask` is asked before an image that
/// is not in the store is pulled; nobody to ask means yes.
pub fn create(ctx: &Context, options: &CreateOptions, ask: &dyn Ask) -> Result<Created> {
    if let Some(source) = &options.clone {
        return clone(ctx, options, source, ask);
    }
    // The settings' defaults for what the options leave open: a home (the same for
    // every box, else one under the prefix), and volumes every box gets.
    let settings = ctx.config()?;
    let home_from_prefix = settings.home_prefix.as_ref().map(|p| p.join(&options.name));
    let options = &CreateOptions {
        pull: options.pull || settings.always_pull,
        home: options
            .home
            .clone()
            .or(settings.default_home.clone())
            .or(home_from_prefix),
        volumes: settings
            .volumes
            .iter()
            .chain(&options.volumes)
            .cloned()
            .collect(),
        ..options.clone()
    };
    let name = options.name.clone();
    let image = options.image.clone();
    let volumes = check_options(options)?;
    // The devices asked for must be in the host's specs now; they are read again at
    // each start (automatic NVIDIA GPUs only then).
    if !options.devices.is_empty() || options.nvidia == Some(true) {
        crate::host::cdi::for_box(
            &options.devices,
            options.nvidia,
            &crate::host::cdi::spec_dirs(),
        )
        .with_context(|| format!("creating box `{name}`"))?;
    }
    let home = match &options.home {
        Some(dir) if !dir.is_absolute() => bail!(failure(
            format!("--home {} is not an absolute path", dir.display()),
            "give the full path of the home directory to use in the box",
        )),
        other => other.clone(),
    };
    let store = if options.dry_run {
        Store::at(&ctx.dirs.store)
    } else {
        Store::open(&ctx.dirs.store)?
    };
    if !options.dry_run && store.has_container(&name) {
        bail!(failure(
            format!("a box named `{name}` already exists"),
            "pick another name with --name, or remove the old box with `box rm`",
        ));
    }
    // A subordinate range too small, or layers unpacked with another mapping: say so now.
    let mapping = ctx.id_mapping()?;
    if !options.dry_run {
        store.check_id_mapping(mapping)?;
    }

    let local = if options.pull {
        None
    } else {
        super::pull::find_local(ctx, &image)?
    };
    let record = match local {
        Some(record) => record,
        None if options.dry_run => bail!(failure(
            format!("image {image} is not in the store"),
            format!("--dry-run does not download; `box pull {image}` first"),
        )),
        None => {
            if !options.pull
                && ask.ask(&format!("Image {image} is not in the store. Pull it now?"))?
                    == Some(false)
            {
                bail!(failure(
                    format!("box `{name}` not created: image {image} was not pulled"),
                    format!("`box pull {image}` downloads it"),
                ));
            }
            ctx.explain_id_mapping_once();
            super::pull::pull(ctx, &image, options.platform.as_deref())
                .with_context(|| format!("creating box `{name}`"))?
        }
    };

    if let Some(dir) = &home
        && !options.dry_run
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the home {}", dir.display()))?;
    }
    let mut provision = crate::provision::requested(
        ctx,
        &crate::provision::Request {
            additional_packages: options.additional_packages.clone(),
            pre_init_hooks: options.pre_init_hooks.clone(),
            init_hooks: options.init_hooks.clone(),
            off: options.no_provision,
            set: options.provision_set,
        },
    )?;
    // An image `box commit` made of a provisioned box needs no run, unless this box asks
    // for packages or hooks it was not made with.
    if let Some(wanted) = provision.as_mut()
        && super::commit::provisioned_image(&store, &record).is_some_and(|made| made.covers(wanted))
    {
        wanted.status = crate::store::provision::Status::Done;
    }
    let container = ContainerRecord {
        name: name.clone(),
        image: record.reference.clone(),
        image_digest: record.manifest_digest.clone(),
        layers: record.diff_ids(),
        created: crate::store::now(),
        hostname: options.hostname.clone(),
        home,
        volumes,
        image_env: record.config.env.clone(),
        env: options.env.clone(),
        storage: crate::store::containers::StorageKind::Overlay,
        devices: options.devices.clone(),
        nvidia: options.nvidia,
        device_mount_points: vec![],
        provision,
    };
    if options.dry_run {
        let plan = crate::runtime::plan_for(ctx, &store, &container)?;
        return Ok(Created {
            name,
            image: container.image,
            plan: Some(plan),
        });
    }
    {
        let _lock = store.lock(false)?;
        for layer in &container.layers {
            if !store.has_layer(layer) {
                bail!(failure(
                    format!(
                        "layer {layer} of image {} is missing from the store",
                        container.image
                    ),
                    format!("pull the image again: `box pull {}`", container.image),
                ));
            }
        }
        store.create_container(&container)?;
    }
    ctx.explain_id_mapping_once();
    if options.entry {
        add_entry(ctx, &name, options.entry_file);
    }
    // Installs what the box lacks; a failure leaves the box, marked not provisioned.
    crate::provision::at_create(ctx, &name)?;
    Ok(Created {
        name,
        image: container.image,
        plan: None,
    })
}

/// `box create --clone SOURCE NAME`: a new box with SOURCE's current files (copied in the
/// user namespace, owners kept, data blocks shared where the filesystem can) and record
/// (packages installed, provisioning done). SOURCE must be stopped, as with distrobox:
/// `ask` is asked whether to stop it, and nobody to ask means no. The source's lock is
/// held during the copy, so nobody starts it meanwhile; the new box appears whole or not
/// at all (staged under `tmp/`, renamed into place).
///
/// The other options change the copy, none is dropped: volumes and devices are added to
/// the source's, `nvidia`, hostname and home replace its (as `box edit` does, checked
/// before anything is stopped or copied), and packages and hooks are a provisioning run
/// of the copy right after it is made (a manifest's `clone=` box with `pre_init_hooks`).
/// The settings' defaults (`additional-packages`, `volumes`, ...) are not applied again:
/// the source got them.
fn clone(ctx: &Context, options: &CreateOptions, source: &str, ask: &dyn Ask) -> Result<Created> {
    use crate::runtime::state;
    let name = options.name.clone();
    validate_name(&name)?;
    let store = Store::open(&ctx.dirs.store)?;
    let original = store.container(source)?;
    if store.has_container(&name) {
        bail!(failure(
            format!("a box named `{name}` already exists"),
            "pick another name with --name, or remove the old box with `box rm`",
        ));
    }
    let mut record = original.clone();
    record.name = name.clone();
    record.created = crate::store::now();
    super::edit::apply(&mut record, &clone_changes(options))
        .with_context(|| format!("cloning box `{source}` as `{name}`"))?;
    let provisions = clone_provisioning(&mut record, options);
    let running = || !state::status(ctx, &store, source).is_stopped();
    if running() {
        let question = format!("Box {source} is running. Stop it to clone it?");
        if ask.ask(&question)? != Some(true) {
            bail!(failure(
                format!("box `{source}` is running, so it was not cloned"),
                format!("stop it first (`box stop {source}`): a clone copies its files at rest"),
            ));
        }
        crate::runtime::stop::stop(ctx, source, crate::runtime::stop::DEFAULT_GRACE)?;
    }
    if options.dry_run {
        let plan = crate::runtime::plan_for(ctx, &store, &record)?;
        return Ok(Created {
            name,
            image: record.image,
            plan: Some(plan),
        });
    }
    let _store_lock = store.lock(false)?;
    let _source_lock = store.box_lock(source)?;
    if running() {
        bail!(failure(
            format!("box `{source}` was started again while box waited to clone it"),
            format!("stop it (`box stop {source}`) and clone again"),
        ));
    }
    let staging = store.stage_container(&record)?;
    let mut helper = crate::image::helper::StoreHelper::start(ctx)?;
    let copied = (|| {
        for (from, to) in store.clone_parts(source, &record.storage, &staging) {
            helper
                .copy(&from, &to)
                .with_context(|| format!("cloning box `{source}`"))
                .map_err(|err| map_clone_error(err, &name))?;
        }
        if record.storage == crate::store::containers::StorageKind::Copy {
            store.mark_staged_copy_complete(&staging)?;
        }
        store.commit_container(&staging, &name)
    })();
    if let Err(err) = copied {
        // Files of subordinate owners: only the helper can remove them.
        let _ = helper.remove(&staging);
        let _ = helper.finish();
        return Err(err);
    }
    helper.finish()?;
    drop(_source_lock);
    drop(_store_lock);
    super::edit::make_home(&record)?;
    if options.entry {
        add_entry(ctx, &name, options.entry_file);
    }
    if provisions {
        // Installs and runs what was asked; a failure leaves the box, marked not
        // provisioned, as at any create.
        crate::provision::at_create(ctx, &name)?;
    }
    Ok(Created {
        name,
        image: record.image,
        plan: None,
    })
}

/// What a clone's options change in the copy's record (see [`clone`]).
fn clone_changes(options: &CreateOptions) -> super::edit::Changes {
    super::edit::Changes {
        add_volumes: options.volumes.clone(),
        add_devices: options.devices.clone(),
        nvidia: options.nvidia.map(Some),
        hostname: options.hostname.clone().map(Some),
        home: options.home.clone().map(Some),
        ..super::edit::Changes::default()
    }
}

/// Give a clone's record the provisioning its options ask for (packages, hooks, another
/// set of needs), on top of what the source still had pending; returns whether there is
/// a run to make.
fn clone_provisioning(record: &mut ContainerRecord, options: &CreateOptions) -> bool {
    use crate::store::provision::{Provisioning, Status};
    let asked = !options.additional_packages.is_empty()
        || !options.pre_init_hooks.is_empty()
        || !options.init_hooks.is_empty()
        || options.provision_set.is_some();
    if !asked || options.no_provision {
        return false;
    }
    // The source's set of needs stays unless another is asked for.
    let set = record.provision.as_ref().map(|p| p.set);
    let pending = record.provision.take().filter(Provisioning::is_pending);
    let (mut packages, mut pre, mut post) = match pending {
        Some(p) => (p.additional_packages, p.pre_init_hooks, p.init_hooks),
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    packages.extend(
        options
            .additional_packages
            .iter()
            .flat_map(|list| list.split_whitespace().map(str::to_owned)),
    );
    pre.extend(options.pre_init_hooks.iter().cloned());
    post.extend(options.init_hooks.iter().cloned());
    record.provision = Some(Provisioning {
        status: Status::Pending,
        additional_packages: packages,
        pre_init_hooks: pre,
        init_hooks: post,
        set: options.provision_set.or(set).unwrap_or_default(),
    });
    true
}

/// Add box `name`'s menu entry; a failure is a warning, never a failed create.
fn add_entry(ctx: &Context, name: &str, file: crate::export::EntryFile) {
    if let Err(err) = crate::export::generate_entry_as(ctx, name, false, file, None) {
        crate::ui::report::warn(format!(
            "box `{name}` was created, but its menu entry was not: {} (hint: {})",
            crate::error::message(&err),
            err.downcast_ref::<crate::error::Hint>().map_or_else(
                || format!("`box generate-entry {name}` tries again"),
                |h| h.0.clone()
            )
        ));
    }
}

/// A full disk while cloning says so, with what to do.
fn map_clone_error(err: anyhow::Error, name: &str) -> anyhow::Error {
    if crate::error::is_out_of_space(&err) {
        return err.context(crate::error::Hint(format!(
            "the disk is full; box `{name}` was not created. {}",
            crate::error::FREE_SPACE_HINT
        )));
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_registries_conf_alias_wins_over_the_catalogue_and_nothing_changes_without_one() {
        let catalogue = Catalogue::shipped();
        let none = RegistriesConf::default();
        let known = |r: &RegistriesConf, text: &str| known_image(&catalogue, r, text).unwrap();
        assert_eq!(
            known(&none, "fedora").as_deref(),
            Some("quay.io/fedora/fedora:latest")
        );
        assert_eq!(known(&none, "nginx"), None);
        let aliases = RegistriesConf::parse(
            "[aliases]\n\"fedora\" = \"registry.fedoraproject.org/fedora\"\n\"nginx\" = \"quay.io/x/nginx\"\n",
            Path::new("/etc/containers/registries.conf.d/shortnames.conf"),
        )
        .unwrap();
        assert_eq!(
            known(&aliases, "fedora:41").as_deref(),
            Some("registry.fedoraproject.org/fedora:41")
        );
        assert_eq!(
            known(&aliases, "nginx").as_deref(),
            Some("quay.io/x/nginx:latest")
        );
        // Names the aliases do not have keep the catalogue's meaning.
        assert_eq!(
            known(&aliases, "trixie").as_deref(),
            Some("docker.io/library/debian:trixie")
        );
    }
}
