//! Settings, in layers, each overriding the one before: distrobox's settings (its
//! `distrobox.conf` files and `DBX_*` variables, read as box's keys by
//! [`super::distrobox`], so a distrobox user's defaults carry over), then
//! `/etc/box/config.toml` (what a distribution ships; `BOX_SYSTEM_CONFIG` names another
//! file), then `$XDG_CONFIG_HOME/box/config.toml` (the user's), then `BOX_*` variables,
//! then the command's flags (applied by the commands). A key set in a later layer
//! replaces the earlier value, lists included. distrobox's layer is below all of box's
//! own: what a user wrote for box wins over what they wrote for distrobox.
//!
//! Every key is optional; a missing file means all defaults. A key box does not know is a
//! warning naming the file and the key (a file written for a newer box still works); a
//! known key with a value of the wrong type is an error naming the file.
//!
//! ```toml
//! # registries reached over plain HTTP (loopback ones always are)
//! insecure-registries = ["registry.lan:5000"]
//! # appended to the names of exported applications; "" for nothing
//! export-label = " (on {box})"
//! # provisioning at `box create` (see `provision`): on unless false
//! provision = true
//! # what provisioning installs: "full" (the default: shell tools, graphics, audio, fonts)
//! # or "base" (shell and build tools only: no graphics, audio and font packages)
//! provision-set = "full"
//! # defaults of `box create --additional-packages/--pre-init-hooks/--init-hooks`, used
//! # when the flag is not given
//! additional-packages = ["vim", "git"]
//! pre-init-hooks = ["echo before the packages"]
//! init-hooks = ["echo after the packages"]
//! # `box create` and `box enter` without a name or image (BOX_DEFAULT_IMAGE,
//! # BOX_DEFAULT_NAME): as distrobox's my-distrobox
//! default-image = "debian"
//! default-name = "my-box"
//! # each box gets its own home DIR/NAME unless --home is given (BOX_HOME_PREFIX)
//! home-prefix = "/home/me/boxes"
//! # `box create` always pulls the image (BOX_ALWAYS_PULL)
//! always-pull = false
//! # `box enter`/`box run` start in the box's home (BOX_SKIP_WORKDIR); read when the box
//! # starts, so the enter/run path reads no settings file
//! skip-workdir = false
//! # never ask: every question is answered yes, as with --yes (BOX_NON_INTERACTIVE)
//! non-interactive = false
//! # `box create` adds the box's menu entry unless --no-entry (distrobox's
//! # container_generate_entry)
//! generate-entry = true
//! # every new box's home unless --home is given (distrobox's container_user_custom_home);
//! # wins over home-prefix
//! default-home = "/home/me/box-home"
//! # volumes every new box gets besides its --volume ones (distrobox's
//! # container_additional_volumes)
//! volumes = ["/srv/data:/data:ro"]
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::error::HintExt;

/// The settings box uses: every layer applied.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    /// Registries (`host` or `host:port`) to reach over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Label appended to exported application names; `{box}` is replaced by the box name.
    pub export_label: Option<String>,
    /// Whether `box create` provisions boxes (default: yes).
    pub provision: Option<bool>,
    /// Which needs provisioning installs: `full` (default) or `base` (no graphics, audio
    /// and font packages).
    pub provision_set: Option<NeedSet>,
    /// Default `--additional-packages`.
    #[serde(default)]
    pub additional_packages: Vec<String>,
    /// Default `--pre-init-hooks`.
    #[serde(default)]
    pub pre_init_hooks: Vec<String>,
    /// Default `--init-hooks`.
    #[serde(default)]
    pub init_hooks: Vec<String>,
    /// Image (or distribution) of `box create` without one.
    pub default_image: Option<String>,
    /// Box of `box enter` and `box create` without a name.
    pub default_name: Option<String>,
    /// Each box's home is `DIR/NAME` unless `--home` is given.
    pub home_prefix: Option<PathBuf>,
    /// `box create` pulls the image even when the store has it.
    #[serde(default)]
    pub always_pull: bool,
    /// `box enter`/`box run` start in the box's home.
    #[serde(default)]
    pub skip_workdir: bool,
    /// Never ask: every question is answered yes.
    #[serde(default)]
    pub non_interactive: bool,
    /// Whether `box create` adds a box's menu entry (default: yes).
    pub generate_entry: Option<bool>,
    /// Every new box's home unless `--home` is given.
    pub default_home: Option<PathBuf>,
    /// Volumes (`SRC:DST[:ro]`) every new box gets besides its `--volume` ones.
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// Which of the catalogue's needs a box gets: all of them, or only those of a shell and
/// build tools (without the graphics, audio and font packages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NeedSet {
    #[default]
    Full,
    Base,
}

impl NeedSet {
    pub fn is_full(&self) -> bool {
        *self == NeedSet::Full
    }
}

/// The keys of a settings file.
const KEYS: &[&str] = &[
    "insecure-registries",
    "export-label",
    "provision",
    "provision-set",
    "additional-packages",
    "pre-init-hooks",
    "init-hooks",
    "default-image",
    "default-name",
    "home-prefix",
    "always-pull",
    "skip-workdir",
    "non-interactive",
    "generate-entry",
    "default-home",
    "volumes",
];

/// The file a distribution ships.
pub const SYSTEM_FILE: &str = "/etc/box/config.toml";

impl Config {
    /// Read one settings file alone; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config> {
        let table = read_table(path)?.unwrap_or_default();
        Config::from_table(table, path)
    }

    /// The system's settings file: `BOX_SYSTEM_CONFIG`, else [`SYSTEM_FILE`].
    pub fn system_file() -> PathBuf {
        crate::sys::env::os("BOX_SYSTEM_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(SYSTEM_FILE))
    }

    /// Every layer: distrobox's settings (`beneath`, see [`super::distrobox::read`]), the
    /// system file, the user's file, the environment.
    pub fn load_layers(
        beneath: toml::Table,
        system_file: &Path,
        user_file: &Path,
    ) -> Result<Config> {
        let mut merged = beneath;
        for path in [system_file, user_file] {
            if let Some(table) = read_table(path)? {
                // Check each file's keys and types on their own, so errors name the file.
                Config::from_table(table.clone(), path)?;
                merged.extend(
                    table
                        .into_iter()
                        .filter(|(k, _)| KEYS.contains(&k.as_str())),
                );
            }
        }
        let mut config = Config::from_table(merged, user_file)?;
        config.apply_env();
        Ok(config)
    }

    fn from_table(mut table: toml::Table, path: &Path) -> Result<Config> {
        let unknown: Vec<String> = table
            .keys()
            .filter(|k| !KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in &unknown {
            crate::ui::report::warn(format!(
                "{}: unknown setting `{key}` ignored (the settings are: {})",
                path.display(),
                KEYS.join(", ")
            ));
            table.remove(key);
        }
        table
            .try_into()
            .with_context(|| format!("invalid settings in {}", path.display()))
            .hint("see `man box` for the keys config.toml accepts")
    }

    /// The environment's layer: `BOX_DEFAULT_IMAGE`, `BOX_DEFAULT_NAME`,
    /// `BOX_HOME_PREFIX`, `BOX_ALWAYS_PULL`, `BOX_SKIP_WORKDIR`, `BOX_NON_INTERACTIVE`.
    fn apply_env(&mut self) {
        let text = |name: &str| crate::sys::env::text(name).filter(|v| !v.is_empty());
        if let Some(image) = text("BOX_DEFAULT_IMAGE") {
            self.default_image = Some(image);
        }
        if let Some(name) = text("BOX_DEFAULT_NAME") {
            self.default_name = Some(name);
        }
        if let Some(prefix) = text("BOX_HOME_PREFIX") {
            self.home_prefix = Some(PathBuf::from(prefix));
        }
        for (name, slot) in [
            ("BOX_ALWAYS_PULL", &mut self.always_pull),
            ("BOX_SKIP_WORKDIR", &mut self.skip_workdir),
            ("BOX_NON_INTERACTIVE", &mut self.non_interactive),
        ] {
            if let Some(value) = crate::sys::env::flag(name) {
                *slot = value;
            }
        }
    }

    /// Whether `registry` (as `host[:port]`) is listed as insecure.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure_registries.iter().any(|r| r == registry)
    }
}

fn read_table(path: &Path) -> Result<Option<toml::Table>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    toml::from_str(&text)
        .with_context(|| format!("invalid settings in {}", path.display()))
        .hint("see `man box` for the keys config.toml accepts")
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_defaults_unknown_keys_are_warnings_bad_values_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert!(Config::load(&path).unwrap().insecure_registries.is_empty());
        std::fs::write(&path, "insecure-registries = [\"lan:5000\"]\n").unwrap();
        assert!(Config::load(&path).unwrap().is_insecure("lan:5000"));
        std::fs::write(
            &path,
            "provision = false\nadditional-packages = [\"vim\"]\ninit-hooks = [\"true\"]\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.provision, Some(false));
        assert_eq!(config.additional_packages, ["vim"]);
        assert_eq!(config.init_hooks, ["true"]);
        assert!(config.pre_init_hooks.is_empty());
        // An unknown key is a warning naming it; a known key of the wrong type an error.
        std::fs::write(&path, "insecure_registry = 1\n").unwrap();
        let (config, lines) = crate::ui::report::capture(|| Config::load(&path));
        assert!(config.unwrap().insecure_registries.is_empty());
        assert!(
            lines[0].contains("unknown setting `insecure_registry`"),
            "{lines:?}"
        );
        std::fs::write(&path, "always-pull = \"yes\"\n").unwrap();
        let err = Config::load(&path).unwrap_err();
        assert!(format!("{err:#}").contains("config.toml"), "{err:#}");
    }
}

#[cfg(test)]
mod layer_tests {
    use super::*;

    #[test]
    fn later_layers_override_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        let user = dir.path().join("user.toml");
        std::fs::write(
            &system,
            "default-image = \"fedora\"\ndefault-name = \"sys\"\nadditional-packages = [\"a\"]\nalways-pull = true\n",
        )
        .unwrap();
        std::fs::write(
            &user,
            "default-name = \"mine\"\nadditional-packages = [\"b\"]\n",
        )
        .unwrap();
        let config = Config::load_layers(toml::Table::new(), &system, &user).unwrap();
        assert_eq!(config.default_image.as_deref(), Some("fedora"));
        assert_eq!(config.default_name.as_deref(), Some("mine"));
        assert_eq!(config.additional_packages, ["b"]);
        assert!(config.always_pull);
        // distrobox's settings are beneath box's files: they fill what those leave open.
        let dir2 = tempfile::tempdir().unwrap();
        let conf = dir2.path().join("distrobox.conf");
        std::fs::write(
            &conf,
            "container_name_default=dbx\ncontainer_image_default=alpine\ncontainer_generate_entry=false\ncontainer_additional_volumes=\"/a:/a /b:/b:ro\"\n",
        )
        .unwrap();
        let beneath = super::super::distrobox::read(&[conf], &|_| None).table;
        let config = Config::load_layers(beneath, &system, &user).unwrap();
        assert_eq!(config.default_image.as_deref(), Some("fedora"));
        assert_eq!(config.default_name.as_deref(), Some("mine"));
        assert_eq!(config.generate_entry, Some(false));
        assert_eq!(config.volumes, ["/a:/a", "/b:/b:ro"]);
        // A missing system file is no layer at all.
        let config =
            Config::load_layers(toml::Table::new(), &dir.path().join("none.toml"), &user).unwrap();
        assert_eq!(config.default_image, None);
    }
}
