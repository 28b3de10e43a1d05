//! Redirects, followed by hand so that every hop is checked as the first request was.
//! (ureq's own following keeps the `Authorization` header for any port of the same host,
//! and takes a redirect to plain HTTP anywhere.)
//!
//! Rules, for the registry client and for `box assemble`'s manifest downloads:
//! - the transport rule at every hop: HTTPS, or plain HTTP only to this machine
//!   (loopback) or to a registry the user listed as insecure ([`check_transport`]); a
//!   hop that breaks it is an error naming where it came from and where it led;
//! - credentials go only to the origin they are for: the same scheme, host and port
//!   ([`same_origin`]; curl's rule since CVE-2022-27776, where a port change had kept
//!   them);
//! - at most [`MAX_HOPS`] redirects per request.
//!
//! A `Location` is resolved against the URL that answered ([`resolve`], RFC 3986
//! section 5.2): the `url` crate would do it, but brings Unicode host name tables (three
//! dozen crates) for this one join.

use anyhow::Result;
use ureq::http::Uri;
use ureq::http::uri::Scheme;

use crate::error::failure;

/// The most redirects one request follows.
pub const MAX_HOPS: usize = 10;

/// Whether `status` is a redirect to follow (`Location` says where).
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// `(scheme, host, port)` of `uri`, the host in lower case and the port made explicit.
fn origin(uri: &Uri) -> Option<(String, String, u16)> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let port = authority.port_u16().or(match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    })?;
    Some((scheme, authority.host().to_ascii_lowercase(), port))
}

/// Whether `a` and `b` are the same origin: scheme, host and port.
pub fn same_origin(a: &Uri, b: &Uri) -> bool {
    match (origin(a), origin(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `host[:port]` of `uri` as written (the form of `insecure-registries` entries).
pub fn authority(uri: &Uri) -> &str {
    uri.authority().map_or("", |a| a.as_str())
}

/// Check the transport rule for `uri`: HTTPS, or plain HTTP to a loopback host or to an
/// authority `insecure` accepts. `from` is the URL that redirected there, if any (for the
/// message).
pub fn check_transport(
    uri: &Uri,
    from: Option<&Uri>,
    insecure: impl Fn(&str) -> bool,
) -> Result<()> {
    let plain = match uri.scheme() {
        Some(scheme) if *scheme == Scheme::HTTPS => return Ok(()),
        Some(scheme) if *scheme == Scheme::HTTP => true,
        _ => false,
    };
    let host = uri.host().unwrap_or("");
    if plain && (crate::registry::reference::is_loopback_host(host) || insecure(authority(uri))) {
        return Ok(());
    }
    let what = if plain {
        "plain HTTP on another machine"
    } else {
        "neither https nor http"
    };
    Err(match from {
        Some(from) => failure(
            format!("{from} redirected to {what}: {uri}; box did not follow it"),
            "box talks plain HTTP only to this machine and to registries listed in \
             insecure-registries; the server should redirect to an https:// address",
        ),
        None => failure(
            format!("{uri} is {what}"),
            "use an https:// address; plain HTTP is for this machine and registries listed \
             in insecure-registries",
        ),
    })
}

/// The URL a redirect from `current` with `Location: location` leads to (RFC 3986 5.2);
/// `None` when it is not a URL.
pub fn resolve(current: &Uri, location: &str) -> Option<Uri> {
    let location = location.trim();
    // Absolute (`https://cdn/x`): as it is.
    if let Some((scheme, _)) = location.split_once("://")
        && !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return location.parse().ok();
    }
    let scheme = current.scheme_str()?;
    // Network-path (`//cdn/x`): the current scheme.
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    let authority = current.authority()?.as_str();
    let (path, query) = match location.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (location, None),
    };
    let path = if path.is_empty() {
        current.path().to_owned()
    } else if path.starts_with('/') {
        remove_dot_segments(path)
    } else {
        let base = current.path();
        let directory = &base[..base.rfind('/').map_or(0, |i| i + 1)];
        remove_dot_segments(&format!("{directory}{path}"))
    };
    let query = query.map(str::to_owned).or_else(|| {
        location
            .is_empty()
            .then(|| current.query().map(str::to_owned))
            .flatten()
    });
    let mut url = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(&query);
    }
    url.parse().ok()
}

/// `path` without `.` and `..` segments (RFC 3986 5.2.4).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn locations_resolve_against_the_url_that_answered() {
        let base = uri("https://registry.example/v2/lib/blobs/sha256:ab?x=1");
        let cases = [
            (
                "https://cdn.example/b/1?sig=2",
                "https://cdn.example/b/1?sig=2",
            ),
            ("//cdn.example/b", "https://cdn.example/b"),
            ("/v2/other", "https://registry.example/v2/other"),
            ("c?y=2", "https://registry.example/v2/lib/blobs/c?y=2"),
            ("../../x", "https://registry.example/v2/x"),
            ("./y/./z", "https://registry.example/v2/lib/blobs/y/z"),
            ("/a/../../b", "https://registry.example/b"),
        ];
        for (location, expected) in cases {
            assert_eq!(
                resolve(&base, location).map(|u| u.to_string()),
                Some(expected.to_owned()),
                "{location}"
            );
        }
    }

    #[test]
    fn the_origin_is_scheme_host_and_port() {
        let registry = uri("https://Registry.example/v2/");
        assert!(same_origin(
            &registry,
            &uri("https://registry.example:443/x")
        ));
        assert!(!same_origin(
            &registry,
            &uri("https://registry.example:8443/x")
        ));
        assert!(!same_origin(&registry, &uri("http://registry.example/x")));
        assert!(!same_origin(&registry, &uri("https://cdn.example/x")));
        let local = uri("http://127.0.0.1:5000/v2/");
        assert!(!same_origin(&local, &uri("http://127.0.0.1:5001/v2/")));
        assert!(same_origin(&local, &uri("http://127.0.0.1:5000/other")));
    }

    #[test]
    fn plain_http_only_to_this_machine_and_insecure_registries() {
        let none = |_: &str| false;
        for ok in [
            "https://cdn.example/x",
            "http://127.0.0.1:5000/x",
            "http://localhost/x",
            "http://[::1]:80/x",
        ] {
            check_transport(&uri(ok), None, none).unwrap();
        }
        let from = uri("https://registry.example/v2/x");
        let err = check_transport(&uri("http://cdn.example/x"), Some(&from), none).unwrap_err();
        assert_eq!(
            crate::error::message(&err),
            "https://registry.example/v2/x redirected to plain HTTP on another machine: \
             http://cdn.example/x; box did not follow it"
        );
        let insecure = |authority: &str| authority == "lab.example:5000";
        check_transport(&uri("http://lab.example:5000/x"), Some(&from), insecure).unwrap();
        assert!(check_transport(&uri("http://lab.example:5001/x"), Some(&from), insecure).is_err());
        assert!(check_transport(&uri("ftp://cdn.example/x"), Some(&from), none).is_err());
    }
}
