//! Provisioning: what turns a stock image into a complete box, once, at `box create`.
//!
//! A box is looked at from the host through its overlay directories ([`rootfs`]): which
//! package manager it has ([`catalogue`]: the catalogue's choice for its distribution,
//! else detection), and which of that package manager's needs are missing (sudo, the
//! user's login shell, the host's locale, time zone data, CA certificates, terminal tools,
//! mesa, display and audio client libraries: all data in `distros/pm/*.toml`). When
//! nothing is missing and nothing was asked for, that is all: a few `lstat`s, no start of
//! the box, no network. Otherwise the box is started and the steps run as root in it
//! ([`steps`]): the pre-init hooks, refreshing the package lists, installing, writing the
//! configuration files of needs that have one (ALSA's default device: the host's sound
//! server through the PulseAudio plugin), generating the locale, the init hooks, and finally a fresh user setup at the next start (which
//! writes the sudoers drop-in now that sudo is there, and picks the login shell now that
//! it is there). The box is stopped at the end, so its next start is a clean one.
//!
//! Invariants:
//! - the box record says `done` only after every step succeeded; before the first step it
//!   says `pending`, and the runtime state of the box started for provisioning carries
//!   `provisioning`, so an interrupted run (Ctrl-C, kill -9, network drop) is visible in
//!   `box list` and resumed by the next start, or by the next join that finds that flag
//!   (never by an extra read on the warm path);
//! - a failed run stops the box and names the step, the package manager's last lines and
//!   the log (`Store::provision_log`); a failure to reach the network says so;
//! - runs of one box are serialized by `Store::provision_lock`; a resumed run first stops
//!   the box, which ends whatever the interrupted run left running in it;
//! - a `--user` join never resumes: `--user root` is how a user repairs a box by hand;
//! - boxes whose record has no `provision` part (made before box provisioned, or with
//!   provisioning off) are never provisioned.

pub mod catalogue;
pub mod rootfs;
pub mod steps;

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::error::failure;
use crate::runtime::join::{self, Command, Join};
use crate::store::Store;
use crate::store::containers::ContainerRecord;
use crate::store::provision::{Provisioning, Status};
use catalogue::{PackageManager, PackageManagers, fill, shell_quote};
use rootfs::Rootfs;

/// What a caller asks of a new box's provisioning (`box create`'s flags).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--additional-packages`, each a space-separated list.
    pub additional_packages: Vec<String>,
    pub pre_init_hooks: Vec<String>,
    pub init_hooks: Vec<String>,
    /// `--no-provision`.
    pub off: bool,
    /// `--provision-set` (default: the `provision-set` setting, else the full set).
    pub set: Option<crate::settings::config::NeedSet>,
}

/// The `provision` part of a new box's record: `None` when provisioning is off (the flag
/// or `provision = false` in config.toml); the config's defaults for what is not given.
pub fn requested(ctx: &Context, request: &Request) -> Result<Option<Provisioning>> {
    let config = ctx.config()?;
    if request.off || config.provision == Some(false) {
        return Ok(None);
    }
    let or_default = |given: &[String], default: &[String]| {
        if given.is_empty() {
            default.to_vec()
        } else {
            given.to_vec()
        }
    };
    let packages = or_default(&request.additional_packages, &config.additional_packages)
        .iter()
        .flat_map(|list| list.split_whitespace().map(str::to_owned))
        .collect();
    Ok(Some(Provisioning {
        status: Status::Pending,
        additional_packages: packages,
        pre_init_hooks: or_default(&request.pre_init_hooks, &config.pre_init_hooks),
        init_hooks: or_default(&request.init_hooks, &config.init_hooks),
        set: request.set.or(config.provision_set).unwrap_or_default(),
    }))
}

/// The package managers: shipped plus the user's `distros.d/pm`.
pub fn package_managers(ctx: &Context) -> Result<PackageManagers> {
    PackageManagers::load(&ctx.dirs.config.join("distros.d").join("pm"))
}

/// The overlay directories of box `record`, top first; with subordinate ids, looked into
/// through the store helper (the layers are in the guarded `layers/`, see the store's
/// module doc).
pub fn rootfs_of(ctx: &Context, store: &Store, record: &ContainerRecord) -> Result<Rootfs> {
    if record.storage == crate::store::containers::StorageKind::Copy {
        return Ok(Rootfs::new(vec![store.container_root(&record.name)]));
    }
    let mut dirs = vec![store.container_upper(&record.name)];
    dirs.extend(record.layers.iter().rev().map(|l| store.layer_dir(l)));
    if ctx.id_mapping()?.store_owner().is_none() {
        return Ok(Rootfs::new(dirs));
    }
    let helper = crate::image::helper::StoreHelper::start(ctx)
        .with_context(|| format!("looking at the files of box `{}`", record.name))?;
    Ok(Rootfs::through(dirs, helper))
}

/// The package manager of box `record`: the catalogue's for its distribution when the
/// box has it, else the first one found in the box.
pub fn package_manager_of(
    ctx: &Context,
    record: &ContainerRecord,
    root: &Rootfs,
) -> Result<Option<PackageManager>> {
    let pms = package_managers(ctx)?;
    let catalogue = crate::settings::distro::Catalogue::load(&ctx.dirs.config.join("distros.d"))?;
    let preferred = catalogue
        .distro_of_image(&record.image)
        .map(|d| d.package_manager.clone());
    Ok(pms
        .detect(preferred.as_deref(), |f| root.exists(f))
        .cloned())
}

/// One step of a run: a title for the user and a script for `/bin/sh` as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub title: String,
    pub script: String,
    /// Whether it runs the package manager (its output is matched against the offline
    /// patterns, and it runs with `LC_ALL=C` so that they match).
    pub package_manager: bool,
}

/// What a run of box provisioning will do.
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    pub package_manager: Option<PackageManager>,
    /// What the box lacks, for the user (`sudo`, `locale de_DE.UTF-8`, ...).
    pub missing: Vec<String>,
    /// The packages to install (missing needs, then additional packages).
    pub packages: Vec<String>,
    pub steps: Vec<Step>,
}

/// The host's locale settings that a box must have: the values of LANG and LC_*
/// (LANGUAGE is a list of fallbacks, not a locale), without the built-in C/POSIX ones.
pub fn host_locales(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, value) in vars {
        if !(name == "LANG" || name.starts_with("LC_")) || value.is_empty() {
            continue;
        }
        let builtin = value == "C"
            || value == "POSIX"
            || value.to_ascii_lowercase().starts_with("c.utf")
            || value.contains('/');
        if !builtin && !out.contains(&value) {
            out.push(value);
        }
    }
    out.sort();
    out
}

/// A locale name split for the catalogue's placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocaleName {
    /// As the host has it: `de_DE.UTF-8`.
    pub name: String,
    /// `de_DE` (with a `@modifier` kept: `sr_RS@latin`).
    pub language: String,
    /// `de`.
    pub lang: String,
    /// `UTF-8`.
    pub charset: String,
    /// glibc's normalised name, a directory under /usr/lib/locale: `de_DE.utf8`.
    pub normalized: String,
}

impl LocaleName {
    pub fn parse(name: &str) -> LocaleName {
        let (main, modifier) = match name.split_once('@') {
            Some((m, modifier)) => (m, Some(modifier)),
            None => (name, None),
        };
        let (territory, charset) = main.split_once('.').unwrap_or((main, "UTF-8"));
        let norm_charset: String = charset
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let suffix = modifier.map(|m| format!("@{m}")).unwrap_or_default();
        LocaleName {
            name: name.to_owned(),
            language: format!("{territory}{suffix}"),
            lang: territory.split('_').next().unwrap_or(territory).to_owned(),
            charset: charset.to_owned(),
            normalized: format!("{territory}.{norm_charset}{suffix}"),
        }
    }
}

/// The largest locale archive searched for a name; a bigger one (every locale of a
/// distribution) is taken to have them all rather than read.
const MAX_ARCHIVE: u64 = 64 << 20;

fn has_locale(root: &Rootfs, spec: &catalogue::Locale, locale: &LocaleName) -> bool {
    let vars = [("locale", locale.normalized.as_str())];
    if spec.files.iter().any(|f| root.exists(&fill(f, &vars))) {
        return true;
    }
    spec.archive.as_ref().is_some_and(|archive| {
        root.contains(archive, &format!("{}\0", locale.normalized), MAX_ARCHIVE)
    })
}

/// The placeholders of need files: `{multiarch}` (Debian's triplet directory) and `{arch}`.
fn arch_vars() -> [(&'static str, String); 2] {
    let arch = std::env::consts::ARCH;
    let multiarch = match arch {
        "x86" => "i386-linux-gnu".to_owned(),
        "arm" => "arm-linux-gnueabihf".to_owned(),
        "powerpc64" => "powerpc64le-linux-gnu".to_owned(),
        other => format!("{other}-linux-gnu"),
    };
    [("multiarch", multiarch), ("arch", arch.to_owned())]
}

/// Work out what provisioning box `record` means: file checks only.
pub fn plan(
    ctx: &Context,
    record: &ContainerRecord,
    provisioning: &Provisioning,
    root: &Rootfs,
    resumed: bool,
) -> Result<Recipe> {
    let pm = package_manager_of(ctx, record, root)?;
    let user = ctx.user()?;
    let mut plan = Recipe {
        package_manager: pm.clone(),
        ..Recipe::default()
    };
    let vars = arch_vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut locale_steps = Vec::new();
    let mut config_steps = Vec::new();
    match &pm {
        Some(pm) => {
            let add = |what: &str, packages: &[String], plan: &mut Recipe| {
                plan.missing.push(what.to_owned());
                for p in packages {
                    if !plan.packages.contains(p) {
                        plan.packages.push(p.clone());
                    }
                }
            };
            let wanted = |need: &&catalogue::Need| {
                !(need.desktop && provisioning.set == crate::settings::config::NeedSet::Base)
            };
            for need in pm.needs.iter().filter(wanted) {
                if !need.files.iter().any(|f| root.exists(&fill(f, &vars))) {
                    add(&need.what, &need.packages, &mut plan);
                    if let Some(file) = &need.write {
                        config_steps.push(Step {
                            title: format!("writing {} ({})", file.path, need.what),
                            script: file.script(),
                            package_manager: false,
                        });
                    }
                }
            }
            let shell = user.shell.to_string_lossy().into_owned();
            let shell_name = user
                .shell
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            if let Some(shell_name) = shell_name
                && !root.exists(&shell)
                && let Some(package) = pm.shells.get(&shell_name)
            {
                add(
                    &format!("your login shell {shell}"),
                    std::slice::from_ref(package),
                    &mut plan,
                );
            }
            if let Some(spec) = &pm.locale {
                for name in host_locales(crate::sys::env::all_text()) {
                    let locale = LocaleName::parse(&name);
                    if has_locale(root, spec, &locale) {
                        continue;
                    }
                    let packages: Vec<String> = spec
                        .packages
                        .iter()
                        .map(|p| fill(p, &[("lang", &locale.lang)]))
                        .collect();
                    add(&format!("locale {name}"), &packages, &mut plan);
                    if let Some(generate) = &spec.generate {
                        let script = fill(
                            generate,
                            &[
                                ("language", &shell_quote(&locale.language)),
                                ("charset", &shell_quote(&locale.charset)),
                                ("name", &shell_quote(&locale.name)),
                            ],
                        );
                        locale_steps.push(Step {
                            title: format!("generating the locale {name}"),
                            script,
                            package_manager: false,
                        });
                    }
                }
            }
        }
        None => {
            // Without a package manager there is no list of needs: say what matters most.
            if !["/usr/bin/sudo", "/bin/sudo", "/usr/sbin/sudo"]
                .iter()
                .any(|f| root.exists(f))
            {
                plan.missing.push("sudo".into());
            }
            if !root.exists(&user.shell.to_string_lossy()) {
                plan.missing
                    .push(format!("your login shell {}", user.shell.display()));
            }
        }
    }
    for hook in &provisioning.pre_init_hooks {
        plan.steps.push(Step {
            title: format!("pre-init hook: {hook}"),
            script: hook.clone(),
            package_manager: false,
        });
    }
    if let Some(pm) = &pm {
        for p in &provisioning.additional_packages {
            if !plan.packages.contains(p) {
                plan.packages.push(p.clone());
            }
        }
        if !plan.packages.is_empty() {
            if resumed && let Some(recover) = &pm.recover {
                plan.steps.push(Step {
                    title: format!("repairing what the interrupted run of {} left", pm.name),
                    script: recover.clone(),
                    package_manager: true,
                });
            }
            if let Some(refresh) = &pm.refresh {
                plan.steps.push(Step {
                    title: "refreshing the package lists".into(),
                    script: refresh.clone(),
                    package_manager: true,
                });
            }
            let quoted: Vec<String> = plan.packages.iter().map(|p| shell_quote(p)).collect();
            plan.steps.push(Step {
                title: format!(
                    "installing {} package{}: {}",
                    plan.packages.len(),
                    if plan.packages.len() == 1 { "" } else { "s" },
                    plan.packages.join(" ")
                ),
                script: fill(&pm.install, &[("packages", &quoted.join(" "))]),
                package_manager: true,
            });
            if let Some(clean) = &pm.clean {
                plan.steps.push(Step {
                    title: "removing the downloaded packages".into(),
                    script: clean.clone(),
                    package_manager: true,
                });
            }
        }
    }
    plan.steps.extend(config_steps);
    plan.steps.extend(locale_steps);
    for hook in &provisioning.init_hooks {
        plan.steps.push(Step {
            title: format!("init hook: {hook}"),
            script: hook.clone(),
            package_manager: false,
        });
    }
    if !plan.steps.is_empty() {
        // The user setup of the next start writes the sudoers drop-in now that sudo may
        // be there, and picks the login shell now that it may be there.
        plan.steps.push(Step {
            title: format!("setting up user {} again at the next start", user.name),
            script: format!("rm -f {}", crate::runtime::setup::MARKER),
            package_manager: false,
        });
    }
    Ok(plan)
}

/// Provision box `name` right after `box create` wrote its record (no-op when its
/// record asks for none).
pub fn at_create(ctx: &Context, name: &str) -> Result<()> {
    run(ctx, name, false).map(|_| ())
}

/// Resume box `name`'s provisioning when it is pending (an interrupted or failed run),
/// before a session starts in it. Called on the cold path only (the box is not running,
/// or its state says a run was interrupted), where reading the record costs nothing the
/// start does not cost anyway.
pub fn resume_pending(ctx: &Context, name: &str) -> Result<()> {
    if resumable(ctx, name)? {
        run(ctx, name, true)?;
    }
    Ok(())
}

/// Whether box `name` exists and its provisioning is pending. Root in the box is always
/// there: the box's own with subordinate ids, box's fake root without them.
fn resumable(ctx: &Context, name: &str) -> Result<bool> {
    let store = Store::at(&ctx.dirs.store);
    if !store.has_container(name) {
        return Ok(false);
    }
    Ok(pending(&store.container(name)?))
}

/// Run box `name`'s provisioning if its record says it is pending. Returns whether the
/// box was stopped (a run happened).
fn run(ctx: &Context, name: &str, resumed: bool) -> Result<bool> {
    let store = Store::open(&ctx.dirs.store)?;
    let _lock = store.provision_lock(name)?;
    // Another run may have finished while we waited for the lock.
    let record = store.container(name)?;
    let Some(provisioning) = record.provision.clone() else {
        return Ok(false);
    };
    if provisioning.status != Status::Pending {
        return Ok(false);
    }
    let root = rootfs_of(ctx, &store, &record)?;
    let plan = plan(ctx, &record, &provisioning, &root, resumed)?;
    // The helper that looked, if any, is not needed further.
    drop(root);
    let mut display = steps::Display::new();
    if plan.package_manager.is_none() && !plan.missing.is_empty() {
        let known: Vec<String> = package_managers(ctx)?
            .entries
            .iter()
            .map(|pm| pm.name.clone())
            .collect();
        crate::ui::report::warn(format!(
            "box `{name}` has no package manager box knows ({}), so box installed nothing; it lacks {} (hint: install them as root: `box enter {name} --user root`; or describe the package manager in {})",
            known.join(", "),
            plan.missing.join(", "),
            ctx.dirs.config.join("distros.d/pm/NAME.toml").display()
        ));
    }
    if plan.steps.is_empty() {
        let status = if plan.package_manager.is_none() && !plan.missing.is_empty() {
            Status::NoPackageManager
        } else {
            Status::Done
        };
        set_status(&store, name, status)?;
        return Ok(false);
    }
    if resumed {
        display.step(&format!("resuming the provisioning of box {name}"));
        // Ends what an interrupted run left running in the box (a package manager
        // holding its lock).
        crate::runtime::stop::stop(ctx, name, crate::runtime::stop::DEFAULT_GRACE)?;
    } else {
        display.step(&format!(
            "provisioning box {name}{}",
            if plan.missing.is_empty() {
                String::new()
            } else {
                format!(": it lacks {}", plan.missing.join(", "))
            }
        ));
    }
    let mut state = crate::runtime::ensure_running(ctx, name)?;
    state.provisioning = true;
    crate::runtime::state::write(ctx, &store, name, &state)?;
    let log_path = store.provision_log(name);
    let mut log = steps::open_log(&log_path, &format!("provisioning box {name}"))?;
    let offline = plan
        .package_manager
        .as_ref()
        .map(|pm| pm.offline.clone())
        .unwrap_or_default();
    let count = plan.steps.len();
    // Ctrl-C ends the running step (the terminal's foreground group has it), and this run
    // says so and leaves the box resumable, rather than vanishing without a word.
    let interrupts = crate::sys::Interrupts::note();
    // What said the network was unreachable, also in a step that went on regardless
    // (`apt-get update` only warns), for the error of a later step.
    let mut unreachable: Vec<String> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        display.step(&format!("[{}/{count}] {}", i + 1, step.title));
        let env = if step.package_manager {
            vec![("LC_ALL".to_owned(), "C".to_owned())]
        } else {
            vec![]
        };
        let patterns: &[String] = if step.package_manager { &offline } else { &[] };
        let outcome = steps::run(
            name,
            &state,
            &step.script,
            &env,
            &mut log,
            &mut display,
            patterns,
        );
        if let Ok(outcome) = &outcome {
            unreachable.extend(outcome.offline.iter().cloned());
        }
        let failed = match outcome {
            _ if interrupts.arrived() => {
                display.clear();
                failure(
                    format!(
                        "provisioning box `{name}` was interrupted (Ctrl-C) at step {}/{count} ({}): the box is kept, not provisioned",
                        i + 1,
                        step.title
                    ),
                    format!(
                        "the next `box enter {name}` or `box run {name}` resumes provisioning; `box rm {name}` removes the box"
                    ),
                )
                .context(crate::error::Exit(130))
            }
            Ok(outcome) if outcome.success() => continue,
            Ok(outcome) => step_error(name, i + 1, count, step, &outcome, &unreachable, &log_path),
            Err(err) => err.context(format!(
                "provisioning box `{name}` failed at step {}/{count} ({})",
                i + 1,
                step.title
            )),
        };
        // Stopped, so that the next start resumes.
        if let Err(err) = crate::runtime::stop::stop(ctx, name, crate::runtime::stop::DEFAULT_GRACE)
        {
            crate::ui::report::warn(format!(
                "stopping box `{name}` after its failed provisioning: {}",
                crate::error::message(&err)
            ));
        }
        return Err(failed);
    }
    set_status(&store, name, Status::Done)?;
    crate::runtime::stop::stop(ctx, name, crate::runtime::stop::DEFAULT_GRACE)?;
    display.step(&format!("box {name} is provisioned"));
    Ok(true)
}

fn set_status(store: &Store, name: &str, status: Status) -> Result<()> {
    let mut record = store.container(name)?;
    if let Some(p) = record.provision.as_mut() {
        p.status = status;
    }
    store.update_container(&record)
}

/// The error of a step that ran and failed.
fn step_error(
    name: &str,
    number: usize,
    count: usize,
    step: &Step,
    outcome: &steps::Outcome,
    unreachable: &[String],
    log: &std::path::Path,
) -> anyhow::Error {
    let how = match outcome.code {
        Some(code) => format!("exit status {code}"),
        None => "ended by a signal".to_owned(),
    };
    let mut message = format!(
        "box `{name}` was created, but provisioning it failed at step {number}/{count}, {} ({how})",
        step.title
    );
    let offline = !unreachable.is_empty();
    if offline {
        message.push_str(&format!(
            ": the network or the package mirror could not be reached (`{}`)",
            unreachable[0].trim()
        ));
    }
    if !outcome.tail.is_empty() {
        message.push_str("; its last lines:");
        for line in &outcome.tail {
            message.push_str("\n    ");
            message.push_str(line);
        }
        message.push('\n');
    }
    message.push_str(&format!("the whole output is in {}", log.display()));
    let hint = if offline {
        format!(
            "check the network connection and the box's package sources; the next `box enter {name}` or `box run {name}` resumes provisioning"
        )
    } else {
        format!(
            "fix the cause (`box enter {name} --user root` opens a root shell in the box); the next `box enter {name}` or `box run {name}` resumes provisioning"
        )
    };
    failure(message, hint)
}

/// Upgrade the packages of box `name` with its package manager's `upgrade` command, as
/// root, the output going to this process's stdout/stderr. A box that was stopped is
/// stopped again afterwards.
pub fn upgrade(ctx: &Context, name: &str) -> Result<()> {
    let store = Store::at(&ctx.dirs.store);
    let record = store.container(name)?;
    let root = rootfs_of(ctx, &store, &record)?;
    let pm = package_manager_of(ctx, &record, &root)?.ok_or_else(|| {
        failure(
            format!("box `{name}` has no package manager box knows"),
            format!("upgrade it by hand: `box enter {name} --user root`"),
        )
    })?;
    let was_running = !crate::runtime::state::status(ctx, &store, name).is_stopped();
    let state = crate::runtime::ensure_running(ctx, name)?;
    let argv = [
        std::ffi::OsString::from("/bin/sh"),
        "-c".into(),
        pm.upgrade.clone().into(),
    ];
    let join = Join {
        no_workdir: true,
        user: Some("root"),
        ..Join::new(Command::Exec(&argv))
    };
    let stdio = join::Stdio {
        null_stdin: true,
        ..join::Stdio::default()
    };
    let status = join::spawn(name, &state, &join, stdio)
        .and_then(join::wait)
        .with_context(|| format!("running the upgrade of box `{name}`"))?;
    if !was_running {
        crate::runtime::stop::stop(ctx, name, crate::runtime::stop::DEFAULT_GRACE)?;
    }
    if !status.success() {
        return Err(failure(
            format!("`{}` failed in box `{name}` ({status})", pm.upgrade),
            format!(
                "its output is above; `box enter {name} --user root` opens a root shell to fix it"
            ),
        ));
    }
    Ok(())
}

/// Whether a box record shows as not provisioned (`box list`).
pub fn pending(record: &ContainerRecord) -> bool {
    record.provision.as_ref().is_some_and(|p| p.is_pending())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_locales_skip_the_builtin_ones() {
        let vars = [
            ("LANG", "de_DE.UTF-8"),
            ("LC_TIME", "en_GB.UTF-8"),
            ("LC_ALL", ""),
            ("LC_CTYPE", "C.UTF-8"),
            ("LC_MESSAGES", "POSIX"),
            ("LANGUAGE", "de:en"),
            ("LC_NUMERIC", "de_DE.UTF-8"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()));
        assert_eq!(host_locales(vars), ["de_DE.UTF-8", "en_GB.UTF-8"]);
    }

    #[test]
    fn locale_names_split_for_the_catalogue() {
        let l = LocaleName::parse("de_DE.UTF-8");
        assert_eq!(
            (l.language.as_str(), l.lang.as_str(), l.charset.as_str()),
            ("de_DE", "de", "UTF-8")
        );
        assert_eq!(l.normalized, "de_DE.utf8");
        assert_eq!(
            LocaleName::parse("sr_RS.UTF-8@latin").normalized,
            "sr_RS.utf8@latin"
        );
        assert_eq!(LocaleName::parse("fr_FR").normalized, "fr_FR.utf8");
    }
}
