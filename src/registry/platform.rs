//! Platforms (`os/architecture[/variant]`, with Go's architecture names as OCI uses them)
//! and choosing one entry of a multi-platform index.
//!
//! The type is oci-spec's [`Platform`]; [`PlatformExt`] adds what box needs of it: the
//! host's platform, parsing what users type for `--platform` (with common aliases), and
//! the `os/arch[/variant]` spelling used in messages and image records.
//!
//! Matching rules (those of containerd's default matcher, simplified):
//! - os and architecture must be equal;
//! - `arm64` without a variant is `arm64/v8`;
//! - a wanted variant must match, except that an `arm` machine can run images for older
//!   `arm` variants (v7 runs v6 and v5); the exact variant is preferred;
//! - with no wanted variant, any variant matches and the first entry wins.
//!
//! The same rules decide whether a single-platform image (no index) may be pulled
//! ([`check_image_platform`]): an image for another OS never, one for another
//! architecture only when asked for by name with `--platform` (an emulator such as
//! qemu-user may run it); a config that claims nothing (no os or architecture, as some
//! old tools wrote) is taken as it is.

use std::fmt;

use anyhow::Result;
pub use oci_spec::image::Platform;
use oci_spec::image::{Arch, Os};

use crate::error::failure;
use crate::registry::manifest::Descriptor;

/// What box adds to oci-spec's [`Platform`].
pub trait PlatformExt: Sized {
    /// The platform this binary runs on, in OCI terms.
    fn host() -> Self;
    /// Parse `os/arch[/variant]` (`linux/arm64/v8`). Common aliases (`x86_64`, `aarch64`,
    /// `armhf`, `i386`) are accepted and normalized to OCI's names.
    fn parse(text: &str) -> Result<Self>;
    /// `os/arch[/variant]`, e.g. `linux/arm/v7`.
    fn display(&self) -> Shown<'_>;
}

/// A platform spelled `os/arch[/variant]`.
pub struct Shown<'a>(&'a Platform);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.os(), self.0.architecture())?;
        if let Some(variant) = self.0.variant() {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A platform from its parts.
pub fn platform(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
    let mut platform = Platform::default();
    platform.set_os(Os::from(os));
    platform.set_architecture(Arch::from(architecture));
    platform.set_variant(variant.map(str::to_owned));
    platform
}

impl PlatformExt for Platform {
    fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" if cfg!(target_feature = "v7") => ("arm", Some("v7")),
            "arm" => ("arm", Some("v6")),
            "x86" => ("386", None),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            "loongarch64" => ("loong64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            other => (other, None),
        };
        platform("linux", architecture, variant)
    }

    fn parse(text: &str) -> Result<Platform> {
        let bad = |what: &str| {
            failure(
                format!("invalid platform `{text}`: {what}"),
                "platforms look like `linux/amd64`, `linux/arm64` or `linux/arm/v7`",
            )
        };
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(bad("expected os/architecture[/variant]"));
        }
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        };
        if !parts.iter().all(|p| ok(p)) {
            return Err(bad("empty part or unexpected characters"));
        }
        let os = parts[0].to_ascii_lowercase();
        let mut variant = parts.get(2).map(|v| v.to_ascii_lowercase());
        let architecture = match parts[1].to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_owned(),
            "aarch64" => "arm64".to_owned(),
            "i386" | "i686" => "386".to_owned(),
            "armhf" => {
                variant.get_or_insert_with(|| "v7".to_owned());
                "arm".to_owned()
            }
            "armel" => {
                variant.get_or_insert_with(|| "v6".to_owned());
                "arm".to_owned()
            }
            other => other.to_owned(),
        };
        Ok(platform(&os, &architecture, variant.as_deref()))
    }

    fn display(&self) -> Shown<'_> {
        Shown(self)
    }
}

/// The variant with arm64's implicit `v8` filled in.
fn normalized_variant(platform: &Platform) -> Option<&str> {
    match (platform.architecture(), platform.variant().as_deref()) {
        (Arch::ARM64, None) => Some("v8"),
        (_, variant) => variant,
    }
}

/// How well `candidate` fits `wanted`: `None` if it cannot run, lower is better.
fn rank(candidate: &Platform, wanted: &Platform) -> Option<u32> {
    if candidate.os() != wanted.os() || candidate.architecture() != wanted.architecture() {
        return None;
    }
    let Some(want) = wanted
        .variant()
        .as_ref()
        .map(|_| normalized_variant(wanted).unwrap_or_default())
    else {
        // No variant asked for: any will do, those without one first.
        return Some(u32::from(candidate.variant().is_some()));
    };
    if candidate.variant() == wanted.variant() {
        return Some(0);
    }
    let have = normalized_variant(candidate);
    if have == Some(want) {
        // arm64 and arm64/v8: the same, but the spelling asked for wins.
        return Some(1);
    }
    if *wanted.architecture() == Arch::ARM {
        // An armv7 CPU runs armv6 and armv5 code; an image without a variant is assumed
        // to be for the oldest.
        let level = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
        let want_level = level(want)?;
        let have_level = match have {
            Some(v) => level(v)?,
            None => 5,
        };
        if have_level <= want_level {
            return Some(2 + want_level - have_level);
        }
    }
    None
}

/// Check that the single-platform image `reference`, whose config says `image`, is for
/// `wanted` (the host's platform, or `--platform` when `explicit`); see the module doc.
pub fn check_image_platform(
    image: &Platform,
    wanted: &Platform,
    explicit: bool,
    reference: &str,
) -> Result<()> {
    let unknown = |s: &str| s.is_empty() || s == "unknown";
    if unknown(&image.os().to_string()) || unknown(&image.architecture().to_string()) {
        return Ok(());
    }
    if rank(image, wanted).is_some() {
        return Ok(());
    }
    let (whose, hint) = if *image.os() != Os::Linux {
        (
            format!("this machine is {}", wanted.display()),
            "box runs Linux images only; pick the image's Linux variant".to_owned(),
        )
    } else if explicit {
        (
            format!("not {} as --platform asked", wanted.display()),
            "this image has a single platform; drop --platform or pick another image".to_owned(),
        )
    } else {
        (
            format!("and this machine is {}", wanted.display()),
            format!(
                "its programs do not run here; to pull it anyway (for an emulator such as \
                 qemu-user), ask for it by name: --platform {}",
                image.display()
            ),
        )
    };
    Err(failure(
        format!("{reference} is an image for {}, {whose}", image.display()),
        hint,
    ))
}

/// Pick the entry of an index for `wanted`. `reference` is only for the error message.
pub fn select_platform(
    entries: &[Descriptor],
    wanted: &Platform,
    reference: &str,
) -> Result<Descriptor> {
    let best = entries
        .iter()
        .filter_map(|entry| Some((rank(entry.platform().as_ref()?, wanted)?, entry)))
        .min_by_key(|(rank, _)| *rank);
    if let Some((_, entry)) = best {
        return Ok(entry.clone());
    }
    // Attestation manifests carry `unknown/unknown`; they are not platforms to offer.
    let mut available: Vec<String> = entries
        .iter()
        .filter_map(|e| e.platform().as_ref())
        .filter(|p| *p.os() != Os::from("unknown"))
        .map(|p| p.display().to_string())
        .collect();
    available.dedup();
    let available = if available.is_empty() {
        "none".to_owned()
    } else {
        available.join(", ")
    };
    Err(failure(
        format!(
            "image {reference} has no variant for platform {} (available: {available})",
            wanted.display()
        ),
        "choose one of the available platforms with --platform, e.g. --platform linux/amd64",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn entry(n: u8, platform: &str) -> Descriptor {
        let digest: oci_spec::image::Digest = Digest::of(&[n]).as_str().parse().unwrap();
        let mut entry = Descriptor::new(oci_spec::image::MediaType::ImageManifest, 100, digest);
        entry.set_platform(Some(Platform::parse(platform).unwrap()));
        entry
    }

    fn digest(entry: Descriptor) -> Digest {
        Digest::try_from(entry.digest()).unwrap()
    }

    #[test]
    fn a_single_platform_image_must_be_for_the_wanted_platform() {
        let p = |text: &str| Platform::parse(text).unwrap();
        let check = |image: &str, wanted: &str, explicit| {
            check_image_platform(&p(image), &p(wanted), explicit, "r")
                .map_err(|e| crate::error::message(&e))
        };
        check("linux/amd64", "linux/amd64", false).unwrap();
        check("linux/arm64", "linux/arm64/v8", false).unwrap();
        check("linux/arm/v6", "linux/arm/v7", false).unwrap();
        assert_eq!(
            check("windows/arm64", "linux/amd64", false).unwrap_err(),
            "r is an image for windows/arm64, this machine is linux/amd64"
        );
        assert_eq!(
            check("linux/arm64", "linux/amd64", false).unwrap_err(),
            "r is an image for linux/arm64, and this machine is linux/amd64"
        );
        assert_eq!(
            check("linux/arm/v8", "linux/arm/v7", true).unwrap_err(),
            "r is an image for linux/arm/v8, not linux/arm/v7 as --platform asked"
        );
        // A config that says nothing is taken as it is.
        let mut blank = Platform::default();
        blank.set_os(Os::from(""));
        blank.set_architecture(Arch::from(""));
        check_image_platform(&blank, &p("linux/amd64"), false, "r").unwrap();
    }

    #[test]
    fn parse_and_display() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(
            (
                p.os().to_string(),
                p.architecture().to_string(),
                p.variant().as_deref()
            ),
            ("linux".to_owned(), "arm64".to_owned(), Some("v8"))
        );
        assert_eq!(p.display().to_string(), "linux/arm64/v8");
        assert_eq!(
            Platform::parse("linux/amd64")
                .unwrap()
                .display()
                .to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/x86_64")
                .unwrap()
                .display()
                .to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/aarch64")
                .unwrap()
                .display()
                .to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/armhf")
                .unwrap()
                .display()
                .to_string(),
            "linux/arm/v7"
        );
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v1/x",
            "linux/am d64",
        ] {
            let err = Platform::parse(bad).unwrap_err();
            assert!(
                crate::error::message(&err).contains(&format!("`{bad}`")),
                "{bad}"
            );
        }
    }

    #[test]
    fn host_is_linux_with_a_go_arch() {
        let host = Platform::host();
        assert_eq!(host.os().to_string(), "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host.display().to_string(), "linux/amd64");
        }
        if cfg!(target_arch = "aarch64") {
            assert_eq!(host.display().to_string(), "linux/arm64/v8");
        }
    }

    #[test]
    fn selection_by_os_arch_and_variant() {
        let entries = vec![
            entry(1, "linux/amd64"),
            entry(2, "linux/arm/v6"),
            entry(3, "linux/arm/v7"),
            entry(4, "linux/arm64"),
            entry(5, "linux/arm64/v8"),
            entry(6, "linux/386"),
        ];
        let pick =
            |p: &str| digest(select_platform(&entries, &Platform::parse(p).unwrap(), "r").unwrap());
        assert_eq!(pick("linux/amd64"), Digest::of(&[1]));
        assert_eq!(pick("linux/arm/v7"), Digest::of(&[3]));
        assert_eq!(pick("linux/arm/v6"), Digest::of(&[2]));
        // arm64 with no variant equals v8; the exact spelling wins.
        assert_eq!(pick("linux/arm64/v8"), Digest::of(&[5]));
        assert_eq!(pick("linux/arm64"), Digest::of(&[4]));
        assert_eq!(pick("linux/386"), Digest::of(&[6]));
        // Only the v8 spelled without variant: still matches v8.
        let only = vec![entry(9, "linux/arm64")];
        let got = select_platform(&only, &Platform::parse("linux/arm64/v8").unwrap(), "r").unwrap();
        assert_eq!(digest(got), Digest::of(&[9]));
        // armv7 machines fall back to v6 images; v6 machines do not take v7 ones.
        let v6 = vec![entry(7, "linux/arm/v6")];
        assert!(select_platform(&v6, &Platform::parse("linux/arm/v7").unwrap(), "r").is_ok());
        let v7 = vec![entry(8, "linux/arm/v7")];
        assert!(select_platform(&v7, &Platform::parse("linux/arm/v6").unwrap(), "r").is_err());
    }

    #[test]
    fn no_match_names_wanted_reference_and_available() {
        let entries = vec![
            entry(1, "linux/amd64"),
            entry(2, "unknown/unknown"),
            entry(3, "linux/arm/v7"),
        ];
        let err = select_platform(
            &entries,
            &Platform::parse("linux/s390x").unwrap(),
            "docker.io/library/x:1",
        )
        .unwrap_err();
        let msg = crate::error::message(&err);
        assert!(msg.contains("linux/s390x"), "{msg}");
        assert!(msg.contains("docker.io/library/x:1"), "{msg}");
        assert!(msg.contains("linux/amd64, linux/arm/v7"), "{msg}");
        assert!(!msg.contains("unknown"), "{msg}");
        assert!(
            err.downcast_ref::<crate::error::Hint>()
                .unwrap()
                .0
                .contains("--platform")
        );
    }
}
