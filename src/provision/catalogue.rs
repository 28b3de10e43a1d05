//! The package-manager half of the catalogue: how to find, run and feed each package
//! manager, as data.
//!
//! One TOML file per package manager in `distros/pm/` (embedded in the binary; the format
//! is described in `distros/pm/apt.toml`), plus the user's in
//! `$XDG_CONFIG_HOME/box/distros.d/pm/*.toml`, which add entries or replace the shipped
//! one of the same name. A distribution entry of the catalogue (`distros/*.toml`) names
//! its package manager with `package-manager`; an image the catalogue does not know is
//! matched by the `detect` files of each entry.
//!
//! Invariant: nothing here knows a package name or a command line: they come from the
//! files. `like = "other"` takes the needs, locale, shells and offline patterns of entry
//! `other` for what the entry leaves out (microdnf and yum share dnf's).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::error::HintExt;

/// The shipped package managers, one TOML text each.
const SHIPPED: &[(&str, &str)] = &[
    ("apk.toml", include_str!("../../distros/pm/apk.toml")),
    ("apt.toml", include_str!("../../distros/pm/apt.toml")),
    ("dnf.toml", include_str!("../../distros/pm/dnf.toml")),
    ("emerge.toml", include_str!("../../distros/pm/emerge.toml")),
    (
        "microdnf.toml",
        include_str!("../../distros/pm/microdnf.toml"),
    ),
    ("pacman.toml", include_str!("../../distros/pm/pacman.toml")),
    ("xbps.toml", include_str!("../../distros/pm/xbps.toml")),
    ("yum.toml", include_str!("../../distros/pm/yum.toml")),
    ("zypper.toml", include_str!("../../distros/pm/zypper.toml")),
];

/// One package manager.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PackageManager {
    pub name: String,
    /// Another entry whose needs, locale, shells and offline patterns this one shares.
    #[serde(default)]
    pub like: Option<String>,
    /// Files whose presence in a box means this package manager (any one of them).
    pub detect: Vec<String>,
    /// Refreshes the package lists before an install (when the install does not).
    #[serde(default)]
    pub refresh: Option<String>,
    /// Repairs what an interrupted run left (dpkg half-configured), before a resumed run.
    #[serde(default)]
    pub recover: Option<String>,
    /// Installs `{packages}`.
    pub install: String,
    /// Upgrades every package (`box upgrade`).
    pub upgrade: String,
    /// Removes the downloaded package files the install left in its cache, so that a
    /// provisioned box does not keep a second copy of every package it installed.
    #[serde(default)]
    pub clean: Option<String>,
    /// Output that means the network or the mirror could not be reached.
    #[serde(default)]
    pub offline: Vec<String>,
    #[serde(default)]
    pub locale: Option<Locale>,
    /// Login shell file name -> package.
    #[serde(default)]
    pub shells: BTreeMap<String, String>,
    #[serde(default, rename = "need")]
    pub needs: Vec<Need>,
}

/// How the host's locale gets into a box.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Locale {
    /// Present when one of these exists (`{locale}`: normalised name, `de_DE.utf8`).
    #[serde(default)]
    pub files: Vec<String>,
    /// glibc's locale archive: present too when it names the locale.
    #[serde(default)]
    pub archive: Option<String>,
    /// Packages to install (`{lang}`: the language, `de`).
    #[serde(default)]
    pub packages: Vec<String>,
    /// Command that builds the locale after the install (`{language}` de_DE,
    /// `{charset}` UTF-8, `{name}` de_DE.UTF-8).
    #[serde(default)]
    pub generate: Option<String>,
}

/// Something a box needs, and the packages that bring it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Need {
    /// What it is, for the user.
    pub what: String,
    /// Present when one of these exists in the box.
    pub files: Vec<String>,
    pub packages: Vec<String>,
    /// Part of the desktop set (graphics, audio, fonts, display clients), which
    /// `--provision-set base` leaves out.
    #[serde(default)]
    pub desktop: bool,
    /// A file written after the install, when the packages do not configure what is
    /// needed themselves (ALSA's default device).
    #[serde(default)]
    pub write: Option<NeedFile>,
}

/// A file a [`Need`] writes in the box, as root.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NeedFile {
    /// An absolute path in the box (its directory is created when missing).
    pub path: String,
    pub content: String,
}

impl NeedFile {
    /// The `/bin/sh` script that writes it.
    pub fn script(&self) -> String {
        let dir = Path::new(&self.path)
            .parent()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        format!(
            "mkdir -p {} && printf '%s' {} > {}",
            shell_quote(&dir),
            shell_quote(&self.content),
            shell_quote(&self.path)
        )
    }
}

/// Every package manager box knows.
#[derive(Debug, Clone)]
pub struct PackageManagers {
    pub entries: Vec<PackageManager>,
}

fn parse(text: &str, origin: &str) -> Result<PackageManager> {
    toml::from_str(text)
        .with_context(|| format!("invalid package-manager entry {origin}"))
        .hint("an entry needs `name`, `detect`, `install` and `upgrade`; see distros/pm/apt.toml in box's sources for the format")
}

impl PackageManagers {
    /// The shipped entries only.
    pub fn shipped() -> PackageManagers {
        let entries = SHIPPED
            .iter()
            .map(|(file, text)| parse(text, file).expect("the shipped package managers are valid"))
            .collect();
        PackageManagers { entries }.resolved()
    }

    /// The shipped entries plus `dir/*.toml` (the user's `distros.d/pm`), in file name
    /// order; a missing directory adds nothing.
    pub fn load(dir: &Path) -> Result<PackageManagers> {
        let mut entries: Vec<PackageManager> = SHIPPED
            .iter()
            .map(|(file, text)| parse(text, file).expect("the shipped package managers are valid"))
            .collect();
        for (origin, text) in crate::settings::distro::user_entries(dir)? {
            let entry = parse(&text, &origin)?;
            entries.retain(|e| e.name != entry.name);
            entries.push(entry);
        }
        Ok(PackageManagers { entries }.resolved())
    }

    /// Fill in what `like` entries share with the entry they name.
    fn resolved(mut self) -> PackageManagers {
        let originals = self.entries.clone();
        for entry in &mut self.entries {
            let Some(base) = entry
                .like
                .as_ref()
                .and_then(|like| originals.iter().find(|e| &e.name == like))
            else {
                continue;
            };
            if entry.needs.is_empty() {
                entry.needs = base.needs.clone();
            }
            if entry.locale.is_none() {
                entry.locale = base.locale.clone();
            }
            if entry.shells.is_empty() {
                entry.shells = base.shells.clone();
            }
            if entry.offline.is_empty() {
                entry.offline = base.offline.clone();
            }
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&PackageManager> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The package manager of a box: `preferred` (the catalogue's for its distribution)
    /// when the box has it, else the first entry whose `detect` files it has.
    pub fn detect(
        &self,
        preferred: Option<&str>,
        exists: impl Fn(&str) -> bool,
    ) -> Option<&PackageManager> {
        let present = |pm: &&PackageManager| pm.detect.iter().any(|f| exists(f));
        preferred
            .and_then(|name| self.get(name))
            .filter(present)
            .or_else(|| self.entries.iter().find(present))
    }
}

/// `{packages}`-style substitution: every `{key}` of `vars` replaced by its value.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in vars {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}

/// A word quoted for /bin/sh when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:+=@,%".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_distribution_of_the_catalogue_has_a_package_manager_that_brings_sudo() {
        let pms = PackageManagers::shipped();
        for distro in crate::settings::distro::Catalogue::shipped().distros {
            let pm = pms
                .get(&distro.package_manager)
                .unwrap_or_else(|| panic!("{}: no entry {}", distro.name, distro.package_manager));
            assert!(
                pm.needs.iter().any(|n| n.files.iter().any(|f| f.ends_with("/sudo"))
                    && !n.packages.is_empty()),
                "{}",
                pm.name
            );
            assert!(pm.install.contains("{packages}"), "{}", pm.name);
        }
        for name in [
            "apt", "dnf", "microdnf", "yum", "pacman", "apk", "zypper", "xbps", "emerge",
        ] {
            let pm = pms.get(name).unwrap_or_else(|| panic!("{name}"));
            assert!(!pm.needs.is_empty() && !pm.offline.is_empty(), "{name}");
        }
    }

    #[test]
    fn like_entries_share_needs_and_detection_prefers_the_catalogues_choice() {
        let pms = PackageManagers::shipped();
        assert_eq!(
            pms.get("microdnf").unwrap().needs,
            pms.get("dnf").unwrap().needs
        );
        let only = |files: &'static [&'static str]| move |f: &str| files.contains(&f);
        assert_eq!(
            pms.detect(Some("dnf"), only(&["/usr/bin/microdnf"]))
                .unwrap()
                .name,
            "microdnf"
        );
        assert_eq!(
            pms.detect(Some("dnf"), only(&["/usr/bin/dnf", "/usr/bin/yum"]))
                .unwrap()
                .name,
            "dnf"
        );
        assert_eq!(pms.detect(None, only(&["/sbin/apk"])).unwrap().name, "apk");
        assert!(pms.detect(None, only(&["/bin/sh"])).is_none());
    }

    #[test]
    fn user_entries_replace_shipped_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("apt.toml"),
            "name = \"apt\"\ndetect = [\"/usr/bin/apt-get\"]\ninstall = \"my-apt {packages}\"\nupgrade = \"my-apt up\"\n",
        )
        .unwrap();
        let pms = PackageManagers::load(dir.path()).unwrap();
        assert_eq!(pms.get("apt").unwrap().install, "my-apt {packages}");
        std::fs::write(dir.path().join("bad.toml"), "name = 1\n").unwrap();
        let err = PackageManagers::load(dir.path()).unwrap_err();
        assert!(crate::error::message(&err).contains("bad.toml"));
    }

    #[test]
    fn a_needs_file_is_written_byte_for_byte_by_its_script() {
        let pms = PackageManagers::shipped();
        let alsa = pms
            .get("apt")
            .unwrap()
            .needs
            .iter()
            .find_map(|n| n.write.clone())
            .expect("apt's ALSA need writes a file");
        assert!(alsa.content.contains("pcm.!default {"), "{}", alsa.content);
        let dir = tempfile::tempdir().unwrap();
        let file = NeedFile {
            path: dir.path().join("a b/it's.conf").display().to_string(),
            content: alsa.content.clone() + "% $HOME `x` \\n\n",
        };
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", &file.script()])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read_to_string(&file.path).unwrap(), file.content);
    }

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("libgl1-mesa-dri"), "libgl1-mesa-dri");
        assert_eq!(shell_quote("app-admin/sudo"), "app-admin/sudo");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(fill("x {packages} y", &[("packages", "a b")]), "x a b y");
    }
}
