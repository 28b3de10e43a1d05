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
//!
//! The host's own distribution and release is the default of a `box create` without an
//! image, as with toolbox ([`Catalogue::for_host`]): the entry whose name or alias is the
//! host's os-release `ID`, with its default image's repository tagged by `release-tag`,
//! a template over the os-release fields (`release-tag = "{VERSION_ID}"` gives
//! `fedora:41` on Fedora 41, `"{VERSION_CODENAME}"` `debian:trixie` on Debian 13);
//! entries without one (rolling releases) give their default image.

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
    /// The tag of the image for a host running this distribution, from its os-release
    /// fields (`{VERSION_ID}`, `{VERSION_CODENAME}`); none: the default image.
    #[serde(default)]
    pub release_tag: Option<String>,
}

/// The fields of an os-release file (`/etc/os-release`) box uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub fields: BTreeMap<String, String>,
}

impl OsRelease {
    /// Parse os-release's format: `KEY=value` lines, values optionally in double or single
    /// quotes with `\` escapes, `#` comments (os-release(5)).
    pub fn parse(text: &str) -> OsRelease {
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let unquoted = match value.chars().next() {
                Some(q @ ('"' | '\'')) if value.len() >= 2 && value.ends_with(q) => {
                    let inner = &value[1..value.len() - 1];
                    let mut out = String::new();
                    let mut chars = inner.chars();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => out.extend(chars.next()),
                            c => out.push(c),
                        }
                    }
                    out
                }
                _ => value.to_owned(),
            };
            fields.insert(key.trim().to_owned(), unquoted);
        }
        OsRelease { fields }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// What the catalogue gives a host of some distribution and release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForHost {
    /// The image reference.
    pub image: String,
    /// The box's name: the distribution's, with the release (`debian-trixie`,
    /// `fedora-41`).
    pub name: String,
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

    /// The image (and a box name) for a host of `release`, as toolbox's default: the
    /// entry whose name or alias is its `ID`, tagged by the entry's `release-tag` filled
    /// from `release` (the default image when the entry has none, or `release` lacks a
    /// field it names). `None` when the catalogue has no entry for the host.
    pub fn for_host(&self, release: &OsRelease) -> Option<ForHost> {
        let id = release.get("ID")?;
        let distro = self
            .distros
            .iter()
            .find(|d| d.name == id)
            .or_else(|| self.distros.iter().find(|d| d.aliases.contains_key(id)))?;
        let default = ForHost {
            image: distro.image.clone(),
            name: distro.name.clone(),
        };
        let Some(template) = &distro.release_tag else {
            return Some(default);
        };
        // `{FIELD}` replaced by the field; the release is the last field's value.
        let mut tag = String::new();
        let mut release_name = String::new();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            tag.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                return Some(default);
            };
            let Some(value) = release.get(&rest[open + 1..open + close]) else {
                return Some(default);
            };
            tag.push_str(value);
            release_name = value.to_owned();
            rest = &rest[open + close + 1..];
        }
        tag.push_str(rest);
        let valid_tag = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !valid_tag {
            return Some(default);
        }
        Some(ForHost {
            image: format!("{}:{tag}", repository(&distro.image)),
            name: format!("{}-{release_name}", distro.name),
        })
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

/// A box name for an image reference that tells its versions apart, as distrobox names
/// a box from its image: the last path component with the tag (`debian-12`,
/// `ubuntu-24.04`), or with the digest's first 12 hex digits. It may still not be a valid
/// box name (the caller checks).
pub fn name_for_reference(reference: &str) -> String {
    let base = default_name(reference);
    if let Some((_, digest)) = reference.split_once('@') {
        let hex = digest.rsplit(':').next().unwrap_or(digest);
        return format!("{base}-{}", &hex[..hex.len().min(12)]);
    }
    let repo = repository(reference);
    match reference[repo.len()..].strip_prefix(':') {
        Some(tag) if !tag.is_empty() => format!("{base}-{}", tag.replace(':', "-")),
        _ => base,
    }
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
    fn the_host_s_release_picks_the_image_and_names_the_box() {
        let c = Catalogue::shipped();
        let host = |text: &str| c.for_host(&OsRelease::parse(text));
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\nID=debian\n";
        assert_eq!(
            host(debian),
            Some(ForHost {
                image: "docker.io/library/debian:trixie".into(),
                name: "debian-trixie".into()
            })
        );
        let fedora = "NAME=\"Fedora Linux\"\nVERSION_ID=41\nID=fedora\n";
        assert_eq!(host(fedora).unwrap().image, "quay.io/fedora/fedora:41");
        assert_eq!(host(fedora).unwrap().name, "fedora-41");
        let ubuntu = "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\nVERSION_CODENAME=noble\n";
        assert_eq!(
            host(ubuntu).unwrap().image,
            "docker.io/library/ubuntu:24.04"
        );
        assert_eq!(host(ubuntu).unwrap().name, "ubuntu-24.04");
        // An alias is the host's ID; a rolling release takes the default image.
        let arch = "NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\n";
        assert_eq!(
            host(arch),
            Some(ForHost {
                image: "docker.io/library/archlinux:latest".into(),
                name: "archlinux".into()
            })
        );
        let centos = "ID=\"centos\"\nVERSION_ID=\"10\"\n";
        assert_eq!(
            host(centos).unwrap().image,
            "quay.io/centos/centos:stream10"
        );
        // Debian without a code name (a bare testing install): the default image.
        assert_eq!(
            host("ID=debian\n").unwrap().image,
            "docker.io/library/debian:stable"
        );
        // A distribution the catalogue does not have, or no ID: nothing.
        assert_eq!(host("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n"), None);
        assert_eq!(host("NAME=x\n"), None);
        // A field that is no tag is not used as one.
        assert_eq!(
            host("ID=fedora\nVERSION_ID=\"4 1\"\n").unwrap().image,
            "quay.io/fedora/fedora:latest"
        );
    }

    #[test]
    fn names_for_references_keep_the_version() {
        assert_eq!(
            name_for_reference("docker.io/library/debian:12"),
            "debian-12"
        );
        assert_eq!(
            name_for_reference("127.0.0.1:5000/tests/busybox:1.36"),
            "busybox-1.36"
        );
        assert_eq!(name_for_reference("quay.io/x/tool"), "tool");
        assert_eq!(
            name_for_reference(&format!("quay.io/x/tool@sha256:{}", "ab".repeat(32))),
            "tool-abababababab"
        );
    }

    #[test]
    fn default_names_drop_registry_path_and_tag() {
        assert_eq!(default_name("127.0.0.1:5000/tests/busybox:1.36"), "busybox");
        assert_eq!(default_name("quay.io/fedora/fedora@sha256:abc"), "fedora");
        assert_eq!(default_name("debian"), "debian");
        assert_eq!(repository("localhost:5000/x"), "localhost:5000/x");
    }
}
