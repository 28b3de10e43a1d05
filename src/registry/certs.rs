//! Trust for registries with private certificate authorities, the way docker and podman
//! users set it up: `*.crt` files in `certs.d/<host[:port]>/` under
//! `/etc/containers/certs.d`, `$XDG_CONFIG_HOME/containers/certs.d` and
//! `/etc/docker/certs.d` (docker's `ca.crt` is one such file).
//!
//! ureq's TLS configuration takes either the platform verifier or a fixed list of roots,
//! not both. With no extra certificate for the registry, box uses the platform verifier
//! (on Linux: the system's CA bundle). With extra certificates, it uses the system's CA
//! bundle (loaded with `rustls-native-certs`, which honours `SSL_CERT_FILE`/`SSL_CERT_DIR`
//! as the platform verifier does) plus those certificates, so redirects of blob downloads
//! to public CDNs still verify.
//!
//! Not supported: client certificates (`*.cert` + `*.key`), which are ignored.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use ureq::tls::{Certificate, PemItem, RootCerts};

use crate::error::HintExt;

/// The `certs.d` directories to look in, from the environment, most specific last.
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/etc/containers/certs.d")];
    let config = crate::sys::env::non_empty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| crate::sys::env::non_empty("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(config) = config {
        dirs.push(config.join("containers/certs.d"));
    }
    dirs.push(PathBuf::from("/etc/docker/certs.d"));
    dirs
}

/// The extra CA certificate files for `registry` (`host[:port]`), sorted per directory.
pub fn extra_ca_files(dirs: &[PathBuf], registry: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join(registry)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "crt"))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// Root certificates for a registry: `None` for the platform verifier, or the system
/// bundle plus `files`.
pub fn root_certs(files: &[PathBuf]) -> Result<RootCerts> {
    if files.is_empty() {
        return Ok(RootCerts::PlatformVerifier);
    }
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for file in files {
        let extra = read_pem_certs(file)?;
        if extra.is_empty() {
            return Err(anyhow::anyhow!(
                "{} holds no PEM certificate",
                file.display()
            ))
            .hint(
                "put the registry's CA certificate there in PEM form (-----BEGIN CERTIFICATE-----)",
            );
        }
        certs.extend(extra);
    }
    // Errors loading some system certificates leave the others usable; the registry's
    // own CA is what matters here.
    let system = rustls_native_certs::load_native_certs();
    certs.extend(
        system
            .certs
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned()),
    );
    Ok(RootCerts::from(certs))
}

fn read_pem_certs(file: &Path) -> Result<Vec<Certificate<'static>>> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("reading CA certificate {}", file.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        let item =
            item.with_context(|| format!("invalid PEM in CA certificate {}", file.display()))?;
        // Keys and other items do not belong in a CA file; they are ignored.
        if let PemItem::Certificate(cert) = item {
            certs.push(cert);
        }
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_crt_files_per_host_and_port() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(a.path().join("reg.lan:5000")).unwrap();
        std::fs::write(a.path().join("reg.lan:5000/z.crt"), "").unwrap();
        std::fs::write(a.path().join("reg.lan:5000/a.crt"), "").unwrap();
        std::fs::write(a.path().join("reg.lan:5000/client.key"), "").unwrap();
        std::fs::create_dir_all(b.path().join("reg.lan:5000")).unwrap();
        std::fs::write(b.path().join("reg.lan:5000/ca.crt"), "").unwrap();
        let dirs = vec![
            a.path().to_owned(),
            b.path().join("missing"),
            b.path().to_owned(),
        ];
        let files = extra_ca_files(&dirs, "reg.lan:5000");
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.crt", "z.crt", "ca.crt"]);
        assert!(extra_ca_files(&dirs, "reg.lan").is_empty());
        assert!(matches!(
            root_certs(&[]).unwrap(),
            RootCerts::PlatformVerifier
        ));
        let err = root_certs(&files).unwrap_err();
        assert!(crate::error::message(&err).contains("a.crt"));
    }
}
