//! A bearer-token service for the token-auth registry: the flow Docker Hub, ghcr and quay
//! use (docker's "token authentication specification").
//!
//! The registry (Debian's docker-registry, configured with `auth: token`) answers 401 with
//! `WWW-Authenticate: Bearer realm=<this service>,service=...,scope=...`; the client asks
//! this service for a token and retries with it. The registry checks the token itself: an
//! RS256 JWT whose `x5c` header carries a certificate from its `rootcertbundle`, with the
//! right issuer and audience, not expired, granting the action on the repository. So a
//! client that gets any step wrong is refused by the real registry, not by this harness.
//!
//! Policy, like a hosted registry with public and private repositories:
//! - repositories under [`PRIVATE_PREFIX`] need Basic credentials [`AUTH_USER`] /
//!   [`AUTH_PASSWORD`] at the token endpoint; others are pullable anonymously;
//! - wrong credentials are refused (401) whatever the repository;
//! - a token grants, for each `scope` asked, the actions allowed: `pull` as above, `push`
//!   with the credentials only (an anonymous push gets a token without it, and the
//!   registry answers 401 with `insufficient_scope`, as Docker Hub's does); the harness
//!   pushes its fixtures with tokens it mints in-process ([`TokenService::mint`]).
//!
//! Keys and signatures come from the `openssl` command (installed by `tests/run`), so the
//! harness needs no crypto crate. Every token request is recorded for the tests to check.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::registry::{AUTH_PASSWORD, AUTH_USER};

/// The `service` the registry names in its challenge and expects as the token's audience.
pub const SERVICE: &str = "box-test-registry";
/// The token issuer the registry trusts.
pub const ISSUER: &str = "box-test-token-issuer";
/// Repositories whose names start with this need credentials.
pub const PRIVATE_PREFIX: &str = "private/";
/// How long issued tokens live (`expires_in`).
pub const LIFETIME_SECS: u64 = 300;

/// One request the token endpoint answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The `service` query parameter.
    pub service: Option<String>,
    /// Every `scope` query parameter.
    pub scopes: Vec<String>,
    /// The user name of the Basic credentials sent, if any.
    pub user: Option<String>,
    /// The HTTP status answered (200 or 401).
    pub status: u16,
}

/// A running token service.
#[derive(Debug)]
pub struct TokenService {
    /// `http://127.0.0.1:PORT/token`, the realm the registry announces.
    pub realm: String,
    /// The certificate the registry trusts (its `rootcertbundle`).
    pub certificate: PathBuf,
    key: PathBuf,
    /// The certificate, DER in standard base64, for the JWT `x5c` header.
    certificate_der: String,
    requests: Mutex<Vec<TokenRequest>>,
    serial: AtomicU64,
}

impl TokenService {
    /// Create a key and certificate in `dir` and start serving on a free loopback port.
    /// The service lives as long as the test process.
    pub fn start(dir: &Path) -> &'static TokenService {
        let key = dir.join("token-key.pem");
        let certificate = dir.join("token-cert.pem");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3",
            "-subj",
            &format!("/CN={ISSUER}"),
            "-keyout",
            &key.to_string_lossy(),
            "-out",
            &certificate.to_string_lossy(),
        ]);
        let der = openssl(&[
            "x509",
            "-in",
            &certificate.to_string_lossy(),
            "-outform",
            "DER",
        ]);
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token service");
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let service: &'static TokenService = Box::leak(Box::new(TokenService {
            realm,
            certificate,
            key,
            certificate_der: base64::engine::general_purpose::STANDARD.encode(der),
            requests: Mutex::new(Vec::new()),
            serial: AtomicU64::new(0),
        }));
        std::thread::Builder::new()
            .name("token-service".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    std::thread::spawn(move || {
                        let _ = service.handle(conn);
                    });
                }
            })
            .expect("starting the token service thread");
        service
    }

    /// The requests for tokens on `repository` so far, in order.
    pub fn requests_for(&self, repository: &str) -> Vec<TokenRequest> {
        let wanted = format!("repository:{repository}:");
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.scopes.iter().any(|s| s.starts_with(&wanted)))
            .cloned()
            .collect()
    }

    /// A signed token granting `actions` on `repository`, valid for [`LIFETIME_SECS`].
    pub fn mint(&self, subject: &str, repository: &str, actions: &[&str]) -> String {
        self.mint_access(subject, &[(repository.to_owned(), actions.to_vec())])
    }

    /// A signed token granting each repository its actions.
    fn mint_access(&self, subject: &str, access: &[(String, Vec<&str>)]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        use serde_json::json;
        let header = json!({
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [self.certificate_der],
        });
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 10,
            "exp": now + LIFETIME_SECS,
            "jti": format!("box-test-{}", self.serial.fetch_add(1, Ordering::SeqCst)),
            "access": access
                .iter()
                .map(|(name, actions)| {
                    json!({"type": "repository", "name": name, "actions": actions})
                })
                .collect::<Vec<_>>(),
        });
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = openssl_with_input(
            &["dgst", "-sha256", "-sign", &self.key.to_string_lossy()],
            signing_input.as_bytes(),
        );
        format!("{signing_input}.{}", b64(&signature))
    }

    fn handle(&self, conn: TcpStream) -> std::io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut reader = BufReader::new(conn.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                break;
            }
            if let Some((name, value)) = line.trim_end().split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = Some(value.trim().to_owned());
            }
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut service = None;
        let mut scopes = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match name {
                "service" => service = Some(value),
                "scope" => scopes.push(value),
                _ => {}
            }
        }
        let credentials = authorization.as_deref().and_then(basic_credentials);
        let user = credentials.as_ref().map(|(user, _)| user.clone());
        let valid_credentials = credentials
            .as_ref()
            .is_some_and(|(user, password)| user == AUTH_USER && password == AUTH_PASSWORD);
        // Each repository scope asked for, with the actions this client may have there.
        let access: Vec<(String, Vec<&str>)> = scopes
            .iter()
            .filter_map(|s| {
                let (name, actions) = s.strip_prefix("repository:")?.rsplit_once(':')?;
                let granted = actions
                    .split(',')
                    .filter_map(|action| match action {
                        "pull" => Some("pull"),
                        "push" if valid_credentials => Some("push"),
                        _ => None,
                    })
                    .collect();
                Some((name.to_owned(), granted))
            })
            .collect();
        let refusal = if path != "/token" {
            Some("no such endpoint")
        } else if service.as_deref() != Some(SERVICE) {
            Some("unknown or missing service")
        } else if credentials.is_some() && !valid_credentials {
            Some("incorrect username or password")
        } else if !access.iter().any(|(_, actions)| actions.contains(&"pull")) {
            Some("no repository pull scope requested")
        } else if access
            .iter()
            .any(|(name, _)| name.starts_with(PRIVATE_PREFIX))
            && !valid_credentials
        {
            Some("authentication required")
        } else {
            None
        };
        let status = if refusal.is_some() { 401 } else { 200 };
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(TokenRequest {
                service,
                scopes,
                user: user.clone(),
                status,
            });
        let mut conn = conn;
        let (reason, body) = match refusal {
            None => {
                let token = self.mint_access(user.as_deref().unwrap_or(""), &access);
                (
                    "OK",
                    serde_json::json!({
                        "token": token,
                        "access_token": token,
                        "expires_in": LIFETIME_SECS,
                    })
                    .to_string(),
                )
            }
            Some(refusal) => (
                "Unauthorized",
                serde_json::json!({"details": refusal}).to_string(),
            ),
        };
        write!(
            conn,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        conn.shutdown(Shutdown::Both)
    }
}

/// `(user, password)` of a `Basic ...` Authorization value.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Decode `%XX` escapes and `+` of a query value.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn openssl(args: &[&str]) -> Vec<u8> {
    openssl_with_input(args, &[])
}

/// Run `openssl ARGS` with `input` on stdin; its stdout, or a panic with its stderr.
fn openssl_with_input(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running openssl (run sudo tests/run to install it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input)
        .expect("writing to openssl");
    let out = child.wait_with_output().expect("waiting for openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
