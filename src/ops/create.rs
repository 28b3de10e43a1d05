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
use crate::error::{HintExt, failure};
use crate::registry::registries_conf::RegistriesConf;
use crate::settings::distro::{Catalogue, default_name};
use crate::store::Store;
use crate::store::containers::{ContainerRecord, Volume, validate_name};
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
}

/// What [`create`] made (or with `dry_run`, would make).
pub struct Created {
    pub name: String,
    /// The canonical image reference.
    pub image: String,
    /// With `dry_run`: the namespace and mount plan.
    pub plan: Option<crate::runtime::plan::Plan>,
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

/// Which image and which box name `box create` means: `--image` (a catalogue name or a
/// reference) with `--name` or a positional name, or a catalogue name alone.
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
    // The configured default image stands in when no image is given and the name is not
    // a distribution; the configured default name when no name is given at all.
    let from_settings = image.is_none()
        && settings.default_image.is_some()
        && match given_name {
            None => true,
            Some(n) => known(n)?.is_none(),
        };
    let image = match from_settings {
        true => settings.default_image.as_deref(),
        false => image,
    };
    let given_name = given_name.or(match from_settings {
        true => settings.default_name.as_deref(),
        false => None,
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
            "no image or distribution given",
            "e.g. `box create ubuntu`, `box create trixie`, or `box create --image REFERENCE NAME`; `default-image` in ~/.config/box/config.toml names one for `box create` alone",
        )),
    };
    let box_name = match (name, positional_name, image) {
        (Some(name), _, _) => name.to_owned(),
        (None, Some(name), Some(_)) => name.to_owned(),
        _ => default,
    };
    Ok((image_ref, box_name))
}

/// Parse `SRC:DST[:ro]` (or `:rw`); SRC must exist.
fn parse_volume(text: &str) -> Result<Volume> {
    let mut parts: Vec<&str> = text.split(':').collect();
    let read_only = match parts.last() {
        Some(&"ro") if parts.len() == 3 => {
            parts.pop();
            true
        }
        Some(&"rw") if parts.len() == 3 => {
            parts.pop();
            false
        }
        _ => false,
    };
    let hint = "write volumes as SRC:DST or SRC:DST:ro, with absolute DST";
    let [source, target] = parts[..] else {
        bail!(failure(format!("`{text}` is not a volume"), hint));
    };
    let target = PathBuf::from(target);
    if !target.is_absolute() || source.is_empty() {
        bail!(failure(format!("`{text}` is not a volume"), hint));
    }
    // `..` would be resolved inside the box, somewhere else than the user wrote.
    if target
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        bail!(failure(
            format!("the volume target {} contains `..`", target.display()),
            "write the target as a plain absolute path inside the box, e.g. /data",
        ));
    }
    let source = std::fs::canonicalize(source)
        .with_context(|| format!("the volume source {source} does not exist"))
        .hint("create it first, or fix the path")?;
    Ok(Volume {
        source,
        target,
        read_only,
    })
}

fn validate_hostname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        bail!(
            failure(
                format!("`{name}` is not a valid hostname"),
                "use letters, digits and `-`, in dot-separated labels, at most 64 characters",
            )
            .context(crate::error::Exit(crate::error::EXIT_USAGE))
        );
    }
    Ok(())
}

/// Create a box (or with `dry_run`, build its plan). `ask` is asked before an image that
/// is not in the store is pulled; nobody to ask means yes.
pub fn create(ctx: &Context, options: &CreateOptions, ask: &dyn Ask) -> Result<Created> {
    if let Some(source) = &options.clone {
        return clone(ctx, options, source, ask);
    }
    // The settings' defaults for what the options leave open.
    let settings = ctx.config()?;
    let home_from_prefix = settings.home_prefix.as_ref().map(|p| p.join(&options.name));
    let options = &CreateOptions {
        pull: options.pull || settings.always_pull,
        home: options.home.clone().or(home_from_prefix),
        ..options.clone()
    };
    let name = options.name.clone();
    let image = options.image.clone();
    validate_name(&name)?;
    if let Some(hostname) = &options.hostname {
        validate_hostname(hostname)?;
    }
    let volumes = options
        .volumes
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<_>>>()?;
    for device in &options.devices {
        crate::host::cdi::parse_device_name(device)?;
    }
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
        storage: crate::store::containers::StorageKind::Overlay,
        devices: options.devices.clone(),
        nvidia: options.nvidia,
        device_mount_points: vec![],
        provision: crate::provision::requested(
            ctx,
            &crate::provision::Request {
                additional_packages: options.additional_packages.clone(),
                pre_init_hooks: options.pre_init_hooks.clone(),
                init_hooks: options.init_hooks.clone(),
                off: options.no_provision,
                set: options.provision_set,
            },
        )?,
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
        add_entry(ctx, &name);
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
    let mut record = original.clone();
    record.name = name.clone();
    record.created = crate::store::now();
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
    if options.entry {
        add_entry(ctx, &name);
    }
    Ok(Created {
        name,
        image: record.image,
        plan: None,
    })
}

/// Add box `name`'s menu entry; a failure is a warning, never a failed create.
fn add_entry(ctx: &Context, name: &str) {
    if let Err(err) = crate::export::generate_entry(ctx, name) {
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

    #[test]
    fn volumes_parse_and_need_an_existing_source() {
        let v = parse_volume("/tmp:/data:ro").unwrap();
        assert_eq!(v.target, Path::new("/data"));
        assert!(v.read_only);
        assert!(!parse_volume("/tmp:/data").unwrap().read_only);
        let err = parse_volume("/no/such/dir:/data").unwrap_err();
        assert!(crate::error::message(&err).contains("/no/such/dir does not exist"));
        assert!(parse_volume("/tmp:rel").is_err());
        let err = parse_volume("/tmp:/a/../etc").unwrap_err();
        assert!(crate::error::message(&err).contains("contains `..`"));
        assert!(parse_volume("/tmp").is_err());
    }

    #[test]
    fn hostnames_are_checked() {
        validate_hostname("devbox").unwrap();
        validate_hostname("a.b-c").unwrap();
        assert!(validate_hostname("-x").is_err());
        let err = validate_hostname("a b").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
    }
}
