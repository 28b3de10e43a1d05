//! Everything box resolves once per invocation: XDG directories, the host user, the
//! subordinate ids, the user's config.
//!
//! Invariant: [`Context::from_env`] reads only environment variables and calls no
//! syscall beyond `getuid`/`getgid`, because `box run` builds a context on its hot path;
//! the one exception is a missing `HOME` (cron, `env -i`), where it reads the user's
//! passwd entry, as most tools do. Everything else that reads a file (passwd entry,
//! subuid ranges, config) is computed lazily, on first use, and cached for the rest of
//! the process.
//!
//! `BOX_DATA_HOME`, when set to an absolute path, is the data directory instead of
//! `XDG_DATA_HOME`: exported wrappers and menu entries set it to the one they were
//! exported with, so they reach the same store from a caller with another or no
//! `XDG_DATA_HOME` (see [`DATA_HOME_ENV`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, Result};

use crate::error::HintExt;
use crate::settings::config::Config;
use crate::sys::idmap::IdMapping;

/// The host user box acts for.
#[derive(Debug, Clone)]
pub struct HostUser {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: PathBuf,
    /// Login shell from the host's passwd entry (may not exist inside a box).
    pub shell: PathBuf,
}

/// Where box keeps things, following the XDG base directory specification.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// `$HOME`
    pub home: PathBuf,
    /// `$XDG_DATA_HOME` (`~/.local/share`): applications/ and icons/ for exports live here.
    pub data_home: PathBuf,
    /// `$XDG_DATA_HOME/box`: the image and container store.
    pub store: PathBuf,
    /// `$XDG_CONFIG_HOME/box`: config.toml and distros.d/.
    pub config: PathBuf,
    /// `$XDG_RUNTIME_DIR/box` (or a private fallback): holder state of running boxes.
    pub runtime: PathBuf,
    /// The session's runtime directory `runtime` is in (`$XDG_RUNTIME_DIR` or logind's),
    /// which must be the user's too; `None` for the fallbacks of their own (see
    /// [`Context::check_runtime_dir`]).
    pub runtime_base: Option<PathBuf>,
    /// `$XDG_BIN_HOME` or `~/.local/bin`: where exported binaries go.
    pub bin_home: PathBuf,
}

/// The resolved invocation context.
#[derive(Debug)]
pub struct Context {
    pub dirs: Dirs,
    pub uid: u32,
    pub gid: u32,
    user: OnceLock<HostUser>,
    config: OnceLock<Config>,
    id_mapping: OnceLock<IdMapping>,
}

/// The variable wrappers and menu entries set for the box they run: the
/// `$XDG_DATA_HOME` they were exported with, which box uses instead of the caller's
/// (see [`Context::from_env`]). Like every `BOX_*` variable it never reaches the command
/// run in the box (`host::env_denied`).
pub const DATA_HOME_ENV: &str = "BOX_DATA_HOME";

/// The host user's home, set by box for commands in a box whose `HOME` is another one.
pub const HOST_HOME_ENV: &str = "BOX_HOST_HOME";

/// Where box keeps session state without `XDG_RUNTIME_DIR` (cron, `su`, `sudo -i`), and
/// the session runtime directory it is in, if any:
/// - logind's `/run/user/UID` when it exists and is the user's (what the variable would
///   have named);
/// - for root, `/run/box`: only root can create names in `/run`;
/// - else a per-user directory under /tmp, created with mode 0700; anyone (root in a box
///   too: boxes share the host's /tmp) can create that name first, and the check before
///   every use refuses it then.
fn fallback_runtime_dir(uid: u32) -> (PathBuf, Option<PathBuf>) {
    if let Some(logind) = crate::host::logind_runtime_dir(uid) {
        return (logind.join("box"), Some(logind));
    }
    if uid == 0 {
        return (PathBuf::from("/run/box"), None);
    }
    (
        crate::sys::env::temp_dir().join(format!("box-run-{uid}")),
        None,
    )
}

/// The home directory of `uid` in the user database, when it has an absolute one.
fn passwd_home(uid: u32) -> Option<PathBuf> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.dir)
        .filter(|dir| dir.is_absolute())
}

impl Context {
    /// Resolve the directories from the environment. Cheap: no file is read (but the
    /// passwd entry when `HOME` is unset).
    pub fn from_env() -> Result<Context> {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        // In a box with a home of its own (`create --home`), box's data and the exports'
        // default directories are still those of the host home, which the box has too.
        let home = match crate::sys::env::absolute_path(HOST_HOME_ENV).or_else(|| crate::sys::env::absolute_path("HOME")) {
            Some(home) => home,
            None => passwd_home(uid)
                .context("$HOME is not set to an absolute path, and the user database has no home for you")
                .hint("box keeps its data under your home directory; set HOME")?,
        };
        let data_home = crate::sys::env::absolute_path(DATA_HOME_ENV)
            .or_else(|| crate::sys::env::absolute_path("XDG_DATA_HOME"))
            .unwrap_or_else(|| home.join(".local/share"));
        let config_home = crate::sys::env::absolute_path("XDG_CONFIG_HOME")
            .unwrap_or_else(|| home.join(".config"));
        let (runtime, runtime_base) = match crate::sys::env::absolute_path("XDG_RUNTIME_DIR") {
            Some(dir) => (dir.join("box"), Some(dir)),
            None => fallback_runtime_dir(uid),
        };
        let bin_home = crate::sys::env::absolute_path("XDG_BIN_HOME")
            .unwrap_or_else(|| home.join(".local/bin"));
        Ok(Context {
            dirs: Dirs {
                store: data_home.join("box"),
                config: config_home.join("box"),
                data_home,
                runtime,
                runtime_base,
                bin_home,
                home,
            },
            uid,
            gid,
            user: OnceLock::new(),
            config: OnceLock::new(),
            id_mapping: OnceLock::new(),
        })
    }

    /// The host user (passwd lookup on first use).
    pub fn user(&self) -> Result<&HostUser> {
        if let Some(user) = self.user.get() {
            return Ok(user);
        }
        let entry = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.uid))
            .with_context(|| format!("looking up uid {} in the user database", self.uid))?;
        let user = match entry {
            Some(entry) => HostUser {
                uid: self.uid,
                gid: self.gid,
                name: entry.name,
                home: self.dirs.home.clone(),
                shell: entry.shell,
            },
            None => {
                // Containers and CI sometimes run with a uid that has no passwd entry, and
                // the static build reads only /etc/passwd (`sys::static_nss`): a user of
                // LDAP, sssd or systemd-homed is known by the environment the login set.
                let var = |name| crate::sys::env::text(name).filter(|v| !v.is_empty());
                let name = var("USER")
                    .or_else(|| var("LOGNAME"))
                    .unwrap_or_else(|| format!("user{}", self.uid));
                let shell = var("SHELL")
                    .map(PathBuf::from)
                    .filter(|shell| shell.is_absolute())
                    .unwrap_or_else(|| PathBuf::from("/bin/sh"));
                HostUser {
                    uid: self.uid,
                    gid: self.gid,
                    name,
                    home: self.dirs.home.clone(),
                    shell,
                }
            }
        };
        Ok(self.user.get_or_init(|| user))
    }

    /// The settings: distrobox's beneath, the system's and the user's `config.toml` and
    /// the environment (see [`crate::settings::config`]). What distrobox's settings ask
    /// that box does not do is said once per file or variable (and again when it
    /// changes), not at every command.
    pub fn config(&self) -> Result<&Config> {
        if let Some(config) = self.config.get() {
            return Ok(config);
        }
        let config_home = self.dirs.config.parent().unwrap_or(&self.dirs.config);
        let distrobox = crate::settings::distrobox::read(
            &crate::settings::distrobox::files(config_home, &self.dirs.home),
            &crate::sys::env::text,
        );
        let config = Config::load_layers(
            distrobox.table,
            &Config::system_file(),
            &self.dirs.config.join("config.toml"),
        )?;
        let store = crate::store::Store::at(&self.dirs.store);
        for notice in &distrobox.notices {
            let key =
                crate::digest::Digest::of(format!("{}\n{}", notice.origin, notice.text).as_bytes());
            if store.first_time(&format!("distrobox-settings-{}", key.short())) {
                crate::ui::report::warn(format!("{} (said once)", notice.message()));
            }
        }
        Ok(self.config.get_or_init(|| config))
    }

    /// How host ids map into boxes: keep-id over the subordinate ids, a single id, or
    /// the identity when box runs as root.
    pub fn id_mapping(&self) -> Result<&IdMapping> {
        if let Some(mapping) = self.id_mapping.get() {
            return Ok(mapping);
        }
        let user = self.user()?;
        let mapping = IdMapping::for_user(user.uid, user.gid, &user.name)?;
        Ok(self.id_mapping.get_or_init(|| mapping))
    }

    /// Say once per store what the single-id fallback loses and how to fix it, whichever
    /// of pull, create or the first start comes first. Nothing for other mappings.
    pub fn explain_id_mapping_once(&self) {
        let Ok(IdMapping::Single { reason, .. }) = self.id_mapping() else {
            return;
        };
        if !crate::store::Store::at(&self.dirs.store).first_time("single-id-mapping") {
            return;
        }
        let name = self.user().map_or("$USER", |user| user.name.as_str());
        crate::ui::report::notice(format!(
            "note: {reason}, so boxes map only your own user id. Files of other owners in \
             images show as yours, and root in a box (`sudo`, package installs) is box's fake \
             root, your own id in a nested user namespace: every file stays yours, ownership \
             changes are accepted and not kept, and programs that need a second real user (a \
             daemon dropping privileges) see no effect. For real users in boxes, give your user \
             subordinate ids (`{}`, a range no other user has) and install newuidmap/newgidmap \
             (package uidmap); then remove your boxes and images and pull again; `box doctor` \
             checks the setup. (Shown once.)",
            crate::sys::idmap::add_subids_command(name)
        ));
    }

    /// Whether colour may be used on stdout (a terminal, and `NO_COLOR` unset or empty).
    pub fn color_stdout(&self) -> bool {
        crate::sys::env::non_empty("NO_COLOR").is_none()
            && rustix::termios::isatty(rustix::stdio::stdout())
    }

    /// Create the runtime directory (mode 0700) if needed, check it may be trusted (see
    /// [`Context::check_runtime_dir`]) and return it. Nothing is created in a directory
    /// that is not to be trusted.
    pub fn runtime_dir(&self) -> Result<&Path> {
        self.check_above_runtime_dir()?;
        crate::store::ensure_private_dir(&self.dirs.runtime)?;
        crate::store::check_private_dir(&self.dirs.runtime, self.uid)?;
        Ok(&self.dirs.runtime)
    }

    /// Check that nobody but the user (and root) can change what box keeps in the runtime
    /// directory: the session's runtime directory and box's directory in it are the
    /// user's and writable by nobody else, and no directory above them is writable by
    /// anyone else either (but sticky ones, as /tmp). A runtime directory others may
    /// write to (seen in cron, WSL and container set-ups) would let them swap a box's
    /// state or its host-exec socket for their own, and receive the joiner's
    /// environment and terminal. A few `lstat`s: the join path can afford them.
    pub fn check_runtime_dir(&self) -> Result<()> {
        self.check_above_runtime_dir()?;
        crate::store::check_private_dir(&self.dirs.runtime, self.uid)
    }

    /// [`Context::check_runtime_dir`] for what is above box's own directory.
    fn check_above_runtime_dir(&self) -> Result<()> {
        let (base, top) = match &self.dirs.runtime_base {
            Some(base) => (Some(base), base),
            None => (None, &self.dirs.runtime),
        };
        if let Some(above) = top.parent() {
            crate::store::check_safe_path(above, top, self.uid)?;
        }
        if let Some(base) = base {
            crate::store::check_private_dir(base, self.uid)
                .context("the session's runtime directory (XDG_RUNTIME_DIR)")?;
        }
        Ok(())
    }
}
