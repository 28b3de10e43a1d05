//! The file checks of `box doctor`: the registries configuration and the credential files
//! parse (as a pull reads them), the CDI specs parse (as a box start reads them), the
//! store is whole and its filesystem has room.

use std::path::Path;

use super::Check;
use crate::context::Context;
use crate::store::Store;

/// Below this much free space in the store's filesystem, a pull of a distribution image
/// and its provisioning may not fit.
const LOW_SPACE: u64 = 1 << 30;

pub fn check(ctx: &Context, out: &mut Vec<Check>) {
    out.push(registries());
    out.push(credentials());
    out.push(cdi());
    out.push(store(ctx));
    out.push(space(&ctx.dirs.store));
}

fn registries() -> Check {
    const CHECK: &str = "registries";
    let sources = crate::registry::registries_conf::Sources::from_env();
    match crate::registry::registries_conf::RegistriesConf::load(&sources) {
        Ok(_) => Check::ok(
            CHECK,
            format!(
                "the registries configuration parses ({})",
                sources.main.display()
            ),
        ),
        Err(err) => Check::fail(
            CHECK,
            crate::error::message(&err),
            err.downcast_ref::<crate::error::Hint>().map_or_else(
                || "fix the file (containers-registries.conf(5)) or move it away".to_owned(),
                |hint| hint.0.clone(),
            ),
        ),
    }
}

fn credentials() -> Check {
    const CHECK: &str = "credentials";
    let files = crate::registry::auth::AuthSources::from_env().check_files();
    let broken: Vec<String> = files
        .iter()
        .filter_map(|(file, problem)| Some(format!("{}: {}", file.display(), problem.as_ref()?)))
        .collect();
    if !broken.is_empty() {
        return Check::fail(
            CHECK,
            format!("a credentials file does not parse: {}", broken.join("; ")),
            "fix or remove the file, or log in again with `podman login` / `docker login`",
        );
    }
    if files.is_empty() {
        Check::ok(CHECK, "no credentials file (pulls are anonymous)")
    } else {
        let names: Vec<String> = files.iter().map(|(f, _)| f.display().to_string()).collect();
        Check::ok(CHECK, format!("{} parse", names.join(", ")))
    }
}

fn cdi() -> Check {
    const CHECK: &str = "cdi";
    let dirs = crate::host::cdi::spec_dirs();
    let specs = crate::host::cdi::Specs::load(&dirs);
    let warnings = specs.warnings();
    if !warnings.is_empty() {
        return Check::warn(
            CHECK,
            warnings.join("; "),
            "fix or regenerate the spec (for NVIDIA: `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`); boxes with that vendor's devices cannot start until then",
        );
    }
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    match specs.valid() {
        0 => Check::info(
            CHECK,
            format!(
                "no CDI spec in {} (no devices for `--device`)",
                dirs.join(", ")
            ),
        ),
        n => Check::ok(CHECK, format!("{n} CDI specs parse in {}", dirs.join(", "))),
    }
}

/// The store is whole: every record reads, every layer an image or a box needs is there,
/// and the layers were unpacked with the mapping box uses now.
fn store(ctx: &Context) -> Check {
    const CHECK: &str = "store";
    let root = &ctx.dirs.store;
    if !root.join("images").is_dir() && !root.join("containers").is_dir() {
        return Check::ok(
            CHECK,
            format!(
                "no store yet at {} (the first pull makes it)",
                root.display()
            ),
        );
    }
    let store = Store::at(root);
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut images = 0;
    for entry in std::fs::read_dir(store.images_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        match crate::store::read_json::<crate::store::images::ImageRecord>(&path) {
            Err(err) => {
                problems.push(crate::error::message(&err));
                fixes.push(format!(
                    "remove {} and pull the image again",
                    path.display()
                ));
            }
            Ok(image) => {
                images += 1;
                let missing = image
                    .layers
                    .iter()
                    .filter(|l| !store.has_layer(&l.diff_id))
                    .count();
                if missing > 0 {
                    problems.push(format!(
                        "image {} lacks {missing} of its {} layers",
                        image.reference,
                        image.layers.len()
                    ));
                    fixes.push(format!("`box pull {}` fetches them again", image.reference));
                }
            }
        }
    }
    let mut boxes = 0;
    for (name, listing) in store.container_listings().unwrap_or_default() {
        if let Err(err) = listing {
            problems.push(crate::error::message(&err));
            fixes.push(format!("`box rm --force {name}` removes the box"));
            continue;
        }
        match store.container(&name) {
            Err(err) => {
                problems.push(crate::error::message(&err));
                fixes.push(format!("`box rm --force {name}` removes the box"));
            }
            Ok(record) => {
                boxes += 1;
                let missing = record.layers.iter().filter(|l| !store.has_layer(l)).count();
                if missing > 0 {
                    problems.push(format!(
                        "box `{name}` lacks {missing} of the {} layers of its image",
                        record.layers.len()
                    ));
                    fixes.push(format!(
                        "`box pull {}` brings them back (or `box rm {name}`)",
                        record.image
                    ));
                }
            }
        }
    }
    if let Ok(mapping) = ctx.id_mapping()
        && let Ok(recorded) = std::fs::read_to_string(root.join("idmap"))
        && recorded.trim() != mapping.fingerprint()
        && std::fs::read_dir(store.layers_dir()).is_ok_and(|mut d| d.next().is_some())
    {
        let (why, hint) = crate::sys::idmap::explain_change(&recorded, mapping);
        problems.push(format!(
            "the layers were unpacked with the id mapping {}: {why}",
            recorded.trim()
        ));
        fixes.push(hint);
    }
    if problems.is_empty() {
        Check::ok(
            CHECK,
            format!(
                "{}: {images} images and {boxes} boxes, all whole",
                root.display()
            ),
        )
    } else {
        Check::fail(
            CHECK,
            format!("{}: {}", root.display(), problems.join("; ")),
            fixes.join("; "),
        )
    }
}

fn space(store: &Path) -> Check {
    const CHECK: &str = "disk-space";
    let Some(dir) = store.ancestors().find(|d| d.is_dir()) else {
        return Check::info(CHECK, format!("nothing of {} exists", store.display()));
    };
    match rustix::fs::statvfs(dir) {
        Err(err) => Check::warn(
            CHECK,
            format!("statvfs {}: {err}", dir.display()),
            "check that the store's filesystem is mounted",
        ),
        Ok(fs) => {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            let text = crate::ui::progress::human_bytes(free);
            if free < LOW_SPACE {
                Check::warn(
                    CHECK,
                    format!("{text} free for the store in {}", dir.display()),
                    "free some space (`box rmi` unused images, `box rm` old boxes), or move the store (XDG_DATA_HOME) to a bigger filesystem",
                )
            } else {
                Check::ok(
                    CHECK,
                    format!("{text} free for the store in {}", dir.display()),
                )
            }
        }
    }
}
