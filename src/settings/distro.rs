//! The distribution catalogue: short names (`ubuntu`, `trixie`, `fedora:41`) for images.
//!
//! One TOML file per distribution in `distros/`, embedded in the binary, plus the user's
//! additions in `$XDG_CONFIG_HOME/box/distros.d/*.toml` (same format; a user entry with
//! the name of a shipped one replaces it):
//!
//! ```toml
//! name = "debian"
//! image = "docker.io/library/debian:stable"   # what `box create debian` uses
//! package-manager = "apt"
//! [aliases]                                    # other names, each for an image
//! trixie = "docker.io/library/debian:trixie"
//! ```
//!
//! `NAME:TAG` with a distribution's name means its default image's repository with that
//! tag (`fedora:41` → `quay.io/fedora/fedora:41`). Anything else is not in the catalogue
//! and is taken as an image reference by the caller.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::error::HintExt;

/// The shipped catalogue, one TOML text per distribution.
const SHIPPED: &[(&str, &str)] = &[
    (
        "almalinux.toml",
        include_str!("../../distros/almalinux.toml"),
    ),
    ("alpine.toml", include_str!("../../distros/alpine.toml")),
    (
        "archlinux.toml",
        include_str!("../../distros/archlinux.toml"),
    ),
    (
        "centos-stream.toml",
        include_str!("../../distros/centos-stream.toml"),
    ),
    ("debian.toml", include_str!("../../distros/debian.toml")),
    ("fedora.toml", include_str!("../../distros/fedora.toml")),
    (
        "opensuse-tumbleweed.toml",
        include_str!("../../distros/opensuse-tumbleweed.toml"),
    ),
    ("ubuntu.toml", include_str!("../../distros/ubuntu.toml")),
];

/// One distribution of the catalogue.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Distro {
    pub name: String,
    /// The default image reference.
    pub image: String,
    /// `apt`, `dnf`, `pacman`, `apk`, `zypper`, ...
    pub package_manager: String,
    /// Other names, each for an image reference.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
}

/// What a short name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The distribution's name.
    pub distro: String,
    /// The image reference to pull or look up.
    pub image: String,
}

/// The `*.toml` files of a user's catalogue directory (`distros.d`, `distros.d/pm`) in
/// file name order, as (path for messages, text); a missing directory has none.
pub fn user_entries(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
    };
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            Ok((file.display().to_string(), text))
        })
        .collect()
}

/// The catalogue: shipped entries replaced or extended by the user's.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub distros: Vec<Distro>,
}

fn parse(text: &str, origin: &str) -> Result<Distro> {
    toml::from_str(text)
        .with_context(|| format!("invalid distribution entry {origin}"))
        .hint(
            "an entry needs `name`, `image` and `package-manager`, and may have an [aliases] table",
        )
}

impl Catalogue {
    /// The shipped catalogue only.
    pub fn shipped() -> Catalogue {
        let distros = SHIPPED
            .iter()
            .map(|(file, text)| parse(text, file).expect("the shipped catalogue is valid"))
            .collect();
        Catalogue { distros }
    }

    /// The shipped catalogue plus `dir/*.toml` (the user's `distros.d`), in file name
    /// order; a missing directory adds nothing.
    pub fn load(dir: &Path) -> Result<Catalogue> {
        let mut catalogue = Catalogue::shipped();
        for (origin, text) in user_entries(dir)? {
            let distro = parse(&text, &origin)?;
            catalogue.distros.retain(|d| d.name != distro.name);
            catalogue.distros.push(distro);
        }
        Ok(catalogue)
    }

    /// Resolve a short name: a distribution, an alias, or `DISTRO:TAG`.
    pub fn resolve(&self, text: &str) -> Option<Resolved> {
        let found = |distro: &Distro, image: &str| Resolved {
            distro: distro.name.clone(),
            image: image.to_owned(),
        };
        if let Some(d) = self.distros.iter().find(|d| d.name == text) {
            return Some(found(d, &d.image));
        }
        for d in &self.distros {
            if let Some(image) = d.aliases.get(text) {
                return Some(found(d, image));
            }
        }
        let (name, tag) = text.split_once(':')?;
        if tag.is_empty() || tag.contains(['/', ':', '@']) {
            return None;
        }
        let d = self.distros.iter().find(|d| d.name == name)?;
        Some(found(d, &format!("{}:{tag}", repository(&d.image))))
    }

    /// The distribution an image reference belongs to, if the catalogue knows its
    /// repository.
    pub fn distro_of_image(&self, image: &str) -> Option<&Distro> {
        let repo = repository(image);
        self.distros.iter().find(|d| {
            repository(&d.image) == repo || d.aliases.values().any(|a| repository(a) == repo)
        })
    }
}

/// The repository part of a reference: without `@digest` and without `:tag` (a colon
/// in the last path component only, so a registry port stays).
pub fn repository(reference: &str) -> &str {
    let reference = reference.split('@').next().unwrap_or(reference);
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].find(':') {
        Some(colon) => &reference[..last_slash + colon],
        None => reference,
    }
}

/// The default box name for an image: its last path component without tag or digest.
pub fn default_name(reference: &str) -> String {
    let repo = repository(reference);
    repo.rsplit('/').next().unwrap_or(repo).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_parses_and_has_the_main_distributions() {
        let c = Catalogue::shipped();
        for name in [
            "debian",
            "ubuntu",
            "fedora",
            "archlinux",
            "alpine",
            "opensuse-tumbleweed",
            "centos-stream",
            "almalinux",
        ] {
            assert!(c.distros.iter().any(|d| d.name == name), "{name}");
        }
    }

    #[test]
    fn names_aliases_and_tags_resolve() {
        let c = Catalogue::shipped();
        assert_eq!(
            c.resolve("trixie"),
            Some(Resolved {
                distro: "debian".into(),
                image: "docker.io/library/debian:trixie".into()
            })
        );
        assert_eq!(
            c.resolve("ubuntu").unwrap().image,
            "docker.io/library/ubuntu:24.04"
        );
        assert_eq!(
            c.resolve("fedora:41").unwrap().image,
            "quay.io/fedora/fedora:41"
        );
        assert_eq!(c.resolve("127.0.0.1:5000/x:1"), None);
        assert_eq!(c.resolve("nosuch"), None);
    }

    #[test]
    fn user_entries_add_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "name = \"debian\"\nimage = \"lan:5000/debian:12\"\npackage-manager = \"apt\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("void.toml"),
            "name = \"void\"\nimage = \"ghcr.io/void-linux/void-glibc:latest\"\npackage-manager = \"xbps\"\n",
        )
        .unwrap();
        let c = Catalogue::load(dir.path()).unwrap();
        assert_eq!(c.resolve("debian").unwrap().image, "lan:5000/debian:12");
        assert_eq!(c.resolve("void").unwrap().distro, "void");
        std::fs::write(dir.path().join("bad.toml"), "name = 1\n").unwrap();
        let err = Catalogue::load(dir.path()).unwrap_err();
        assert!(crate::error::message(&err).contains("bad.toml"));
    }

    #[test]
    fn default_names_drop_registry_path_and_tag() {
        assert_eq!(default_name("127.0.0.1:5000/tests/busybox:1.36"), "busybox");
        assert_eq!(default_name("quay.io/fedora/fedora@sha256:abc"), "fedora");
        assert_eq!(default_name("debian"), "debian");
        assert_eq!(repository("localhost:5000/x"), "localhost:5000/x");
    }
}
