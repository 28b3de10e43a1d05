//! Real OCI registries on loopback: Debian's `docker-registry` (distribution 2.8), two
//! open instances ([`Registry::mirror`] is the second), one behind htpasswd basic auth,
//! and one behind bearer-token auth with its token service ([`super::token`]), the
//! scheme of Docker Hub, ghcr and quay.
//!
//! Each is started once per test process ([`Registry::plain`], [`Registry::authed`]) on a
//! free port with its own storage under [`super::TEST_ROOT`], and dies with the process.
//! distribution 2.8 accepts htpasswd auth over plain HTTP (it only logs that TLS is
//! advisable), so no certificates are needed: box treats loopback registries as HTTP.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::sys::spawn_daemon;
use super::token::{ISSUER, SERVICE, TokenService};

/// The user name and password of the authenticated registry.
pub const AUTH_USER: &str = "boxuser";
pub const AUTH_PASSWORD: &str = "s3cret-pass";

/// A running registry.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:PORT`, the host part of image references.
    pub host: String,
    /// Basic-auth credentials, for the authenticated instance.
    pub credentials: Option<(String, String)>,
    /// The token service, for the token-auth instance.
    pub token_service: Option<&'static TokenService>,
    /// Where the registry keeps its blobs (and its log, `registry.log`).
    pub dir: PathBuf,
}

impl Registry {
    /// The open registry shared by the whole test process.
    pub fn plain() -> &'static Registry {
        static PLAIN: OnceLock<Registry> = OnceLock::new();
        PLAIN.get_or_init(|| Registry::start("plain", Access::Open))
    }

    /// A second open registry, for what needs two (a mirror and its origin).
    pub fn mirror() -> &'static Registry {
        static MIRROR: OnceLock<Registry> = OnceLock::new();
        MIRROR.get_or_init(|| Registry::start("mirror", Access::Open))
    }

    /// The registry that requires [`AUTH_USER`]/[`AUTH_PASSWORD`].
    pub fn authed() -> &'static Registry {
        static AUTHED: OnceLock<Registry> = OnceLock::new();
        AUTHED.get_or_init(|| {
            Registry::start(
                "auth",
                Access::Basic(AUTH_USER.to_owned(), AUTH_PASSWORD.to_owned()),
            )
        })
    }

    /// The registry that wants bearer tokens from its [`TokenService`]: anonymous pulls of
    /// public repositories, [`AUTH_USER`]/[`AUTH_PASSWORD`] for `private/...` ones.
    pub fn token_auth() -> &'static Registry {
        static TOKEN: OnceLock<Registry> = OnceLock::new();
        TOKEN.get_or_init(|| Registry::start("token", Access::Token))
    }

    /// The `Authorization` value with which the harness may push to `repository`.
    pub fn push_authorization(&self, repository: &str) -> Option<String> {
        use base64::Engine as _;
        if let Some(service) = self.token_service {
            let token = service.mint("box-test-harness", repository, &["pull", "push"]);
            return Some(format!("Bearer {token}"));
        }
        self.credentials.as_ref().map(|(user, password)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// `127.0.0.1:PORT/<repo>:<tag>`
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.host)
    }

    fn start(name: &str, access: Access) -> Registry {
        super::require_root();
        let dir =
            PathBuf::from(super::TEST_ROOT).join(format!("registry-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        remove_dead_registry_dirs();
        std::fs::create_dir_all(dir.join("storage")).expect("creating the registry storage");
        let mut credentials = None;
        let mut token_service = None;
        let auth = match access {
            Access::Open => String::new(),
            Access::Basic(user, password) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", &user, &password])
                    .output()
                    .expect("running htpasswd (apache2-utils; run sudo tests/run)");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
                credentials = Some((user, password));
                format!(
                    "auth:\n  htpasswd:\n    realm: box-test\n    path: {}\n",
                    dir.join("htpasswd").display()
                )
            }
            Access::Token => {
                let service = TokenService::start(&dir);
                token_service = Some(service);
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    \
                     issuer: {ISSUER}\n    rootcertbundle: {bundle}\n",
                    realm = service.realm,
                    bundle = service.certificate.display(),
                )
            }
        };
        // A port taken between our probe and the registry's bind makes the registry exit:
        // try a few ports.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n\
                 {auth}",
                storage = dir.join("storage").display(),
            );
            let config_path = dir.join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log_path = dir.join("registry.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut command = Command::new("/usr/bin/docker-registry");
            command
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            let mut child = spawn_daemon(command)
                .expect("starting /usr/bin/docker-registry (run sudo tests/run to install it)");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if answers_v2(addr) {
                    // The child handle is dropped without waiting: the process stays
                    // alive until the test process exits (pdeathsig).
                    return Registry {
                        host: format!("127.0.0.1:{port}"),
                        credentials,
                        token_service,
                        dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("docker-registry did not start; its log:\n{last_log}");
    }
}

/// How a registry authenticates clients.
enum Access {
    Open,
    Basic(String, String),
    Token,
}

/// Whether `GET /v2/` answers with 200 or 401 (the registry is up).
fn answers_v2(addr: SocketAddr) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    match agent.get(format!("http://{addr}/v2/")).call() {
        Ok(response) => matches!(response.status().as_u16(), 200 | 401),
        Err(_) => false,
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free loopback port")
        .port()
}

/// A port on 127.0.0.1 nobody listens on (for "connection refused").
pub fn closed_port() -> u16 {
    free_port()
}

/// Remove the storage of registries whose test process is gone (`registry-<name>-<pid>`).
fn remove_dead_registry_dirs() {
    let Ok(entries) = std::fs::read_dir(super::TEST_ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("registry-")
            .and_then(|rest| rest.rsplit('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
