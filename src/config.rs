//! The user's settings: `$XDG_CONFIG_HOME/box/config.toml`.
//!
//! Every key is optional; a missing file means all defaults. Unknown keys are an error
//! (with the file and the key named), so a typo never silently does nothing.
//!
//! ```toml
//! # registries reached over plain HTTP (loopback ones always are)
//! insecure-registries = ["registry.lan:5000"]
//! # appended to the names of exported applications; "" for nothing
//! export-label = " (on {box})"
//! # provisioning at `box create` (see `provision`): on unless false
//! provision = true
//! # defaults of `box create --additional-packages/--pre-init-hooks/--init-hooks`, used
//! # when the flag is not given
//! additional-packages = ["vim", "git"]
//! pre-init-hooks = ["echo before the packages"]
//! init-hooks = ["echo after the packages"]
//! ```

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::error::HintExt;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Registries (`host` or `host:port`) to reach over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Label appended to exported application names; `{box}` is replaced by the box name.
    pub export_label: Option<String>,
    /// Whether `box create` provisions boxes (default: yes).
    pub provision: Option<bool>,
    /// Default `--additional-packages`.
    #[serde(default)]
    pub additional_packages: Vec<String>,
    /// Default `--pre-init-hooks`.
    #[serde(default)]
    pub pre_init_hooks: Vec<String>,
    /// Default `--init-hooks`.
    #[serde(default)]
    pub init_hooks: Vec<String>,
}

impl Config {
    /// Read the config file; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        toml::from_str(&text)
            .with_context(|| format!("invalid settings in {}", path.display()))
            .hint("see `man box` for the keys config.toml accepts")
    }

    /// Whether `registry` (as `host[:port]`) is listed as insecure.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure_registries.iter().any(|r| r == registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_defaults_and_unknown_keys_are_errors() {
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
        std::fs::write(&path, "insecure_registry = 1\n").unwrap();
        let err = Config::load(&path).unwrap_err();
        assert!(format!("{err:#}").contains("config.toml"), "{err:#}");
    }
}
