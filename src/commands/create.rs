//! `box create`: resolve the image (catalogue or reference), pull it if needed, write the
//! box record, then provision the box (`provision`: nothing but file checks when the
//! image has what a box needs). Nothing is copied: a box is a few directories and a
//! record until its first start.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use crate::cli::CreateArgs;
use crate::context::Context;
use crate::distro::{Catalogue, default_name};
use crate::error::{HintExt, failure};
use crate::store::Store;
use crate::store::containers::{ContainerRecord, Volume, validate_name};

pub fn exec(ctx: &Context, args: CreateArgs) -> Result<ExitCode> {
    let (name, image) = create_box(ctx, &args)?;
    if !args.dry_run {
        println!("Created box {name} from {image}.");
        println!("Enter it with: box enter {name}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether box may ask the user something (stdin and stderr are terminals).
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Ask a yes/no question on the terminal; Enter means yes.
pub(crate) fn ask(question: &str) -> Result<bool> {
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{question} [Y/n] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer.is_empty() || answer == "y" || answer == "yes")
}

/// The user's catalogue (shipped entries plus `distros.d`).
pub(crate) fn catalogue(ctx: &Context) -> Result<Catalogue> {
    Catalogue::load(&ctx.dirs.config.join("distros.d"))
}

/// Which image and which box name the arguments mean.
fn resolve(ctx: &Context, args: &CreateArgs) -> Result<(String, String)> {
    let catalogue = catalogue(ctx)?;
    let given_name = args.name.clone().or_else(|| args.positional_name.clone());
    let (image, default) = match (&args.image, &given_name) {
        // A catalogue name names the box as it does without --image: `trixie`, `fedora-41`.
        (Some(text), _) => match catalogue.resolve(text) {
            Some(found) => (found.image, text.replace(':', "-")),
            None => (text.clone(), default_name(text)),
        },
        (None, Some(name)) => match catalogue.resolve(name) {
            Some(found) => (found.image, name.replace(':', "-")),
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
            "e.g. `box create ubuntu`, `box create trixie`, or `box create --image REFERENCE NAME`",
        )),
    };
    let name = match (&args.name, &args.positional_name, &args.image) {
        (Some(name), _, _) => name.clone(),
        (None, Some(name), Some(_)) => name.clone(),
        _ => default,
    };
    Ok((image, name))
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
        bail!(failure(
            format!("`{name}` is not a valid hostname"),
            "use letters, digits and `-`, in dot-separated labels, at most 64 characters",
        ));
    }
    Ok(())
}

/// Create a box from parsed arguments (or print its plan, with --dry-run); returns its
/// name and image reference.
pub(crate) fn create_box(ctx: &Context, args: &CreateArgs) -> Result<(String, String)> {
    let (image, name) = resolve(ctx, args)?;
    validate_name(&name)?;
    if let Some(hostname) = &args.hostname {
        validate_hostname(hostname)?;
    }
    let volumes = args
        .volume
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<_>>>()?;
    let home = match &args.home {
        Some(dir) if !dir.is_absolute() => bail!(failure(
            format!("--home {} is not an absolute path", dir.display()),
            "give the full path of the home directory to use in the box",
        )),
        other => other.clone(),
    };
    let store = if args.dry_run {
        Store::at(&ctx.dirs.store)
    } else {
        Store::open(&ctx.dirs.store)?
    };
    if !args.dry_run && store.has_container(&name) {
        bail!(failure(
            format!("a box named `{name}` already exists"),
            "pick another name with --name, or remove the old box with `box rm`",
        ));
    }
    // A subordinate range too small, or layers unpacked with another mapping: say so now.
    let mapping = ctx.id_mapping()?;
    if !args.dry_run {
        store.check_id_mapping(mapping)?;
    }

    let local = if args.pull {
        None
    } else {
        crate::pull::find_local(ctx, &image)?
    };
    let record = match local {
        Some(record) => record,
        None if args.dry_run => bail!(failure(
            format!("image {image} is not in the store"),
            format!("--dry-run does not download; `box pull {image}` first"),
        )),
        None => {
            if !args.yes
                && !args.pull
                && interactive()
                && !ask(&format!("Image {image} is not in the store. Pull it now?"))?
            {
                bail!(failure(
                    format!("box `{name}` not created: image {image} was not pulled"),
                    format!("`box pull {image}` downloads it"),
                ));
            }
            ctx.explain_id_mapping_once();
            crate::pull::pull(ctx, &image, args.platform.as_deref())
                .with_context(|| format!("creating box `{name}`"))?
        }
    };

    if let Some(dir) = &home
        && !args.dry_run
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
        hostname: args.hostname.clone(),
        home,
        volumes,
        image_env: record.config.env.clone(),
        storage: "overlay".into(),
        provision: crate::provision::requested(
            ctx,
            &crate::provision::Request {
                additional_packages: args.additional_packages.clone(),
                pre_init_hooks: args.pre_init_hooks.clone(),
                init_hooks: args.init_hooks.clone(),
                off: args.no_provision,
            },
        )?,
    };
    if args.dry_run {
        let plan = crate::runtime::plan_for(ctx, &store, &container)?;
        print!("{plan}");
        return Ok((name, container.image));
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
    if !args.no_entry
        && let Err(err) = crate::export::generate_entry(ctx, &name)
    {
        crate::error::warn(format!(
            "box `{name}` was created, but its menu entry was not: {} (hint: {})",
            crate::error::message(&err),
            err.downcast_ref::<crate::error::Hint>().map_or_else(
                || format!("`box generate-entry {name}` tries again"),
                |h| h.0.clone()
            )
        ));
    }
    // Installs what the box lacks; a failure leaves the box, marked not provisioned.
    crate::provision::at_create(ctx, &name)?;
    Ok((name, container.image))
}

/// Arguments for creating box `name` from `image` without questions (enter's offer).
pub(crate) fn args_for(name: &str, image: &str) -> CreateArgs {
    CreateArgs {
        positional_name: Some(name.to_owned()),
        name: None,
        image: Some(image.to_owned()),
        pull: false,
        yes: true,
        hostname: None,
        home: None,
        volume: Vec::new(),
        platform: None,
        no_entry: false,
        dry_run: false,
        additional_packages: Vec::new(),
        pre_init_hooks: Vec::new(),
        init_hooks: Vec::new(),
        no_provision: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
        assert!(validate_hostname("a b").is_err());
    }
}
