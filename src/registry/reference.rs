//! Image references as users write them (`debian`, `quay.io/fedora/fedora:41`,
//! `ghcr.io/o/i@sha256:…`, `127.0.0.1:5000/busybox`), normalized the way docker and podman do.
//!
//! Invariants of a parsed [`Reference`]:
//! - `registry` is `host[:port]` (never empty); Docker Hub is always spelled `docker.io`;
//! - `repository` is lower-case path components joined by `/`; Docker Hub short names get
//!   `library/` in front;
//! - at least one of `tag` and `digest` is set (no tag and no digest means `latest`).
//!
//! The grammar follows the distribution project's reference grammar: the first path
//! component is a registry when it contains `.` or `:`, is `localhost`, or has upper-case
//! letters (so `Foo/bar` is refused as a registry-less name with an upper-case letter only
//! when it cannot be a host).
//!
//! Why this parser and not oci-spec's `distribution::Reference` (0.10), which the rest of
//! the registry code adopts for its types: run against this module's tests, oci-spec's
//! - refuses IPv6 registries (`[::1]:5000/a/b:c`: "invalid reference format");
//! - keeps `registry-1.docker.io/x/y` as its own registry instead of Docker Hub's
//!   `docker.io` (so two spellings of one image would be two store records);
//! - accepts `reg:99999/x` (a port beyond 65535);
//! - accepts digests of any algorithm with 32 or more hex digits, where the store is
//!   addressed by sha256 only;
//! - reports nearly every mistake as one `ReferenceInvalidFormat` ("invalid reference
//!   format"), so `Debian`, `deb ian`, `https://quay.io/x`, `debian@md5:abc`, `a..b/x`,
//!   `x-/y`, `quay.io//x` and `debian:` could not be told apart in the messages, which
//!   here say what is wrong (upper case, white space, a URL scheme, the digest, the host,
//!   an empty component, the tag) and carry a hint.

use std::fmt;
use std::net::Ipv4Addr;

use anyhow::Result;

use crate::digest::Digest;
use crate::error::failure;

/// The registry short names resolve to, and the host its API really lives on.
pub const DOCKER_HUB: &str = "docker.io";
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

const MAX_NAME: usize = 255;
const MAX_TAG: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]`, e.g. `docker.io`, `quay.io`, `127.0.0.1:5000`, `[::1]:5000`.
    pub registry: String,
    /// e.g. `library/debian`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parse a reference as users write them. Errors name the reference and what is wrong.
    pub fn parse(text: &str) -> Result<Reference> {
        parse(text).map_err(|what| {
            failure(
                format!("invalid image reference `{text}`: {what}"),
                "references look like `debian`, `debian:trixie`, `quay.io/fedora/fedora:41` or \
                 `registry:5000/name@sha256:<64 hex digits>`; repository names are lower-case",
            )
        })
    }

    /// `registry/repository[:tag][@digest]`, e.g. `docker.io/library/debian:latest`.
    pub fn canonical(&self) -> String {
        let mut out = self.name();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest.as_str());
        }
        out
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same reference pinned to `digest` (the tag is kept, for display).
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }

    /// The manifest to ask the registry for: the digest when pinned, else the tag.
    pub fn tag_or_digest(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The registry host without the port (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        split_port(&self.registry).0
    }

    /// `host[:port]` the registry API is reached at (Docker Hub's API is not on docker.io).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Whether the registry is on this machine: `localhost`, 127.0.0.0/8 or `[::1]`,
    /// with or without a port. Docker and podman talk plain HTTP to these.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(self.host())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Whether `host` (no port; IPv6 in brackets) is a loopback name or address.
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Split `host[:port]` into the host and the optional port text.
pub fn split_port(registry: &str) -> (&str, Option<&str>) {
    if registry.starts_with('[') {
        // IPv6 literal: the port, if any, follows the closing bracket.
        if let Some(end) = registry.find(']') {
            let (host, rest) = registry.split_at(end + 1);
            return (host, rest.strip_prefix(':'));
        }
        return (registry, None);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    }
}

fn parse(text: &str) -> Result<Reference, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.trim() != text || text.contains(char::is_whitespace) {
        return Err("it contains white space".into());
    }
    if let Some((scheme, _)) = text.split_once("://") {
        return Err(format!(
            "a reference has no URL scheme (drop the `{scheme}://`)"
        ));
    }

    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => {
            let digest = Digest::parse(digest).map_err(|e| format!("bad digest: {e}"))?;
            (rest, Some(digest))
        }
        None => (text, None),
    };

    // A tag is what follows the last `:` after the last `/` (a `:` before it is a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&rest[..at], Some(&rest[at + 1..]))
        }
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if name.is_empty() {
        return Err("the repository name is empty".into());
    }

    let (registry, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            check_registry(first)?;
            (first.to_owned(), path)
        }
        _ => (DOCKER_HUB.to_owned(), name),
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        _ => registry,
    };
    check_repository(path)?;
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    if registry.len() + 1 + repository.len() > MAX_NAME {
        return Err(format!("the name is longer than {MAX_NAME} characters"));
    }

    let tag = match (tag, &digest) {
        (Some(tag), _) => Some(tag.to_owned()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_owned()),
    };
    Ok(Reference {
        registry,
        repository,
        tag,
        digest,
    })
}

fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after `:` is empty".into());
    }
    if tag.len() > MAX_TAG {
        return Err(format!("the tag is longer than {MAX_TAG} characters"));
    }
    let first = tag.as_bytes()[0];
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if !word(first) || !tag.bytes().all(|b| word(b) || b == b'.' || b == b'-') {
        return Err(format!(
            "tag `{tag}` has characters other than letters, digits, `_`, `.` and `-` \
             (or starts with `.` or `-`)"
        ));
    }
    Ok(())
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = split_port(registry);
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return Err(format!("registry `{registry}` has an invalid port"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let ok = inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        return if ok {
            Ok(())
        } else {
            Err(format!("registry `{registry}` has an invalid IPv6 address"))
        };
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.is_empty() || !host.split('.').all(label_ok) {
        return Err(format!("registry host `{host}` is not a valid host name"));
    }
    Ok(())
}

fn check_repository(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err(
                "the repository has an empty path component (`//` or a trailing `/`)".into(),
            );
        }
        if component.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "repository `{path}` has upper-case letters (names are lower-case)"
            ));
        }
        if !component_ok(component) {
            return Err(format!(
                "repository component `{component}` is invalid (lower-case letters and digits, \
                 separated by `.`, `_`, `__` or dashes)"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn component_ok(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            expect_alnum = false;
            continue;
        }
        if expect_alnum {
            return false;
        }
        // A separator: `.`, `_`, `__` or one or more dashes.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > start);
        expect_alnum = true;
    }
    !expect_alnum
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn canon(text: &str) -> String {
        Reference::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e:#}"))
            .canonical()
    }

    fn err(text: &str) -> String {
        let e = Reference::parse(text).expect_err(text);
        crate::error::message(&e)
    }

    #[test]
    fn short_names_are_docker_hub_library_latest() {
        assert_eq!(canon("debian"), "docker.io/library/debian:latest");
        assert_eq!(canon("debian:trixie"), "docker.io/library/debian:trixie");
        assert_eq!(canon("owner/img"), "docker.io/owner/img:latest");
        assert_eq!(canon("docker.io/debian"), "docker.io/library/debian:latest");
        assert_eq!(
            canon("index.docker.io/library/debian:12"),
            "docker.io/library/debian:12"
        );
        assert_eq!(canon("registry-1.docker.io/x/y"), "docker.io/x/y:latest");
    }

    #[test]
    fn registries_ports_tags_and_digests() {
        assert_eq!(
            canon("quay.io/fedora/fedora:41"),
            "quay.io/fedora/fedora:41"
        );
        assert_eq!(
            canon(&format!("ghcr.io/owner/img@{D}")),
            format!("ghcr.io/owner/img@{D}")
        );
        assert_eq!(
            canon(&format!("ghcr.io/o/i:v1@{D}")),
            format!("ghcr.io/o/i:v1@{D}")
        );
        assert_eq!(
            canon("127.0.0.1:5000/busybox"),
            "127.0.0.1:5000/busybox:latest"
        );
        assert_eq!(canon("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(canon("localhost/x:1"), "localhost/x:1");
        assert_eq!(canon("[::1]:5000/a/b:c"), "[::1]:5000/a/b:c");
        assert_eq!(
            canon("reg.lan:5000/a/b/c:1.2-rc_3"),
            "reg.lan:5000/a/b/c:1.2-rc_3"
        );
        assert_eq!(canon("a.b/x__y.z--w"), "a.b/x__y.z--w:latest");

        let r = Reference::parse(&format!("localhost:5000/x@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().unwrap().as_str(), D);
        assert_eq!(r.tag_or_digest(), D);
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.host(), "localhost");

        let r = Reference::parse("debian:trixie").unwrap();
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.tag_or_digest(), "trixie");
        let pinned = r.with_digest(&Digest::parse(D).unwrap());
        assert_eq!(
            pinned.canonical(),
            format!("docker.io/library/debian:trixie@{D}")
        );
        assert_eq!(pinned.tag_or_digest(), D);
        // Canonical forms parse back to themselves.
        assert_eq!(canon(&pinned.canonical()), pinned.canonical());
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        assert!(err("").contains("empty"));
        assert!(err("Debian").contains("upper-case"), "{}", err("Debian"));
        assert!(err("quay.io/Fedora/fedora").contains("upper-case"));
        assert!(err("debian:").contains("tag"));
        assert!(err("debian:bad/tag").contains("port"));
        assert!(err("debian:b@d").contains("digest"));
        assert!(err("debian:-x").contains("tag"));
        assert!(err("debian:a+b").contains("tag"));
        assert!(err(&format!("debian:{}", "a".repeat(129))).contains("longer"));
        assert!(err("debian@sha256:abc").contains("digest"));
        assert!(err("debian@md5:abc").contains("md5"));
        assert!(err("quay.io//x").contains("empty"));
        assert!(err("quay.io/x/").contains("empty"));
        assert!(err("quay.io/").contains("empty"));
        assert!(err(":tag").contains("empty"));
        assert!(err("reg:99999/x").contains("port"));
        assert!(err("reg:/x").contains("port"));
        assert!(err("-bad.host/x").contains("host"));
        assert!(err("a..b/x").contains("host"));
        assert!(err("x-/y").contains("x-"));
        assert!(err("deb ian").contains("white space"));
        assert!(err("https://quay.io/x").contains("drop the `https://`"));
        assert!(err("http://quay.io/x").contains("drop the `http://`"));
        assert!(err("[zz]:5000/x").contains("IPv6"));
        assert!(err(&format!("a.io/{}", "b".repeat(300))).contains("longer"));
        // The whole reference is named and a hint rides along.
        let e = Reference::parse("Debian").unwrap_err();
        assert!(crate::error::message(&e).contains("`Debian`"));
        assert!(e.downcast_ref::<crate::error::Hint>().is_some());
    }

    #[test]
    fn loopback_detection() {
        for text in [
            "localhost/x",
            "localhost:5000/x",
            "127.0.0.1:5000/x",
            "127.1.2.3/x",
            "[::1]:5000/x",
            "[::1]/x",
        ] {
            assert!(Reference::parse(text).unwrap().is_loopback(), "{text}");
        }
        for text in [
            "debian",
            "quay.io/x",
            "10.0.0.1:5000/x",
            "128.0.0.1/x",
            "localhost.example.com/x",
            "[::2]/x",
        ] {
            assert!(!Reference::parse(text).unwrap().is_loopback(), "{text}");
        }
    }

    #[test]
    fn ports_split_off_hosts() {
        assert_eq!(split_port("a:5000"), ("a", Some("5000")));
        assert_eq!(split_port("a"), ("a", None));
        assert_eq!(split_port("[::1]:5000"), ("[::1]", Some("5000")));
        assert_eq!(split_port("[::1]"), ("[::1]", None));
    }
}
