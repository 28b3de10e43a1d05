//! The HTTP side of pulling and pushing: manifests and blobs from and to one repository
//! of one registry, authenticated, verified, retried. Pushing is [`push`]'s part.
//!
//! - Transport: ureq on std threads (no async runtime). HTTPS by default; plain HTTP for
//!   loopback registries and those in `insecure-registries`, as docker does. A registry
//!   marked `insecure` in registries.conf gets what podman gives it: HTTPS without
//!   certificate verification, or plain HTTP when it does not answer HTTPS (one `GET /v2/`
//!   decides, before the first request). Docker Hub's
//!   API lives at `registry-1.docker.io`. Redirects are followed (blobs often live on a
//!   CDN) hop by hop, by [`super::redirect`]'s rules: each hop HTTPS (verified, unless it
//!   stays on an `insecure` registry), or plain HTTP only to this machine or to an
//!   insecure registry; the `Authorization` header only to the registry's own origin
//!   (scheme, host and port); the token service's credentials likewise only to its own.
//! - Auth: anonymous first; on 401 the `WWW-Authenticate` challenge decides. Bearer: a
//!   token for `repository:<repo>:pull` (a pushing client: `repository:<repo>:pull,push`
//!   and `repository:<source>:pull` for each repository it mounts blobs from) from the
//!   realm (with the user's credentials as Basic auth when they have some), cached until
//!   shortly before `expires_in`. Basic: the credentials on every request. A request with
//!   a body is sent again after a 401 from the start of its body (see [`Payload`]).
//! - Verification: everything read is hashed; a manifest fetched by digest and every blob
//!   must match its digest, and a blob must have exactly its descriptor's size (reading
//!   stops as soon as a registry sends more).
//! - Retries: every operation (a manifest, a blob, with the token requests they need) is
//!   one loop under the one policy of [`super::retry`]; an attempt is a single
//!   request with no retries of its own (a push's upload session: its requests from the
//!   POST on), so retries never nest. An interrupted blob
//!   download resumes with a `Range` request (or re-reads and skips what it already has
//!   when the registry ignores ranges).
//! - Errors: an attempt fails with an `AttemptError` (a status, a transport error, or
//!   a final, already worded error), classified for the policy by type: status codes,
//!   `io::ErrorKind`, ureq's error variants, rustls' error type inside an I/O error, and
//!   a marker type a resolver wraps around every failed name lookup. Never by the text
//!   of a message. A status or transport failure is worded once, when the loop gives up
//!   (what failed, on which reference and host, with a hint), on top of a
//!   [`RegistryError`] that callers can downcast to learn the status or I/O kind.
//!
//! Invariant: [`Client`] is `Send + Sync`; the auth state is behind a mutex so parallel
//! downloads share one token.

mod push;

pub use push::{BlobPush, Pushed};

use std::io::{self, Read as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, anyhow};
use ureq::http::{HeaderMap, Method, Response, StatusCode, Uri};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Agent, Body};

use crate::digest::{Digest, Hasher};
use crate::error::{Hint, HintExt, failure};
use crate::registry::auth::{AuthSources, Challenge, Credentials, parse_challenges};
use crate::registry::manifest::{
    ACCEPT_MANIFESTS, Descriptor, declared_media_type, manifest_media_type,
};
use crate::registry::reference::Reference;
use crate::registry::retry::{self, Failure, Policy, Retrier};
use crate::registry::{certs, redirect};
use crate::settings::config::Config;

/// Largest manifest or index accepted (the distribution project's own limit is 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest blob [`Client::get_blob`] reads into memory (configs are a few KiB).
pub const MAX_SMALL_BLOB: u64 = 16 << 20;
/// Most of an error answer's body kept for its message.
const MAX_ERROR_BODY: u64 = 64 << 10;
/// Bodies larger than this wait for the server's `100 Continue` (for at most ureq's one
/// second; as curl does above 1 MiB).
const EXPECT_CONTINUE_FROM: u64 = 1 << 20;

/// A manifest as served, with the digest of its bytes.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    /// The media type from `Content-Type`, or the document's `mediaType` when the header
    /// is vague.
    pub media_type: String,
}

/// Where a client looks for credentials and CA certificates, and how long it waits.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub auth: AuthSources,
    pub cert_dirs: Vec<PathBuf>,
    pub connect_timeout: Duration,
    /// Longest silence while waiting for a response or for more of a body.
    pub read_timeout: Duration,
    /// When and how often failed requests are tried again.
    pub retry: Policy,
    /// `insecure = true` in registries.conf: HTTPS without certificate verification,
    /// else plain HTTP.
    pub insecure: bool,
}

impl ClientOptions {
    pub fn from_env() -> ClientOptions {
        ClientOptions {
            auth: AuthSources::from_env(),
            cert_dirs: certs::default_dirs(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            retry: Policy::REGISTRY,
            insecure: false,
        }
    }
}

/// A registry request that failed for good, by type: the root of the error chain the
/// client returns (its text is the message users see), for callers that need to tell
/// failures apart without reading that text.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RegistryError {
    /// How the last attempt failed.
    pub failure: Failure,
    message: String,
}

impl RegistryError {
    /// The HTTP status the registry (or its token service) answered, if that was it.
    pub fn status(&self) -> Option<u16> {
        match self.failure {
            Failure::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// How one attempt failed.
#[derive(Debug)]
enum AttemptError {
    /// A status other than 2xx (and other than a 401 the client answered).
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        /// The start of the body, for the registry's own error message.
        body: Vec<u8>,
        /// From the token service rather than the registry.
        token: bool,
    },
    /// No (complete) answer from `url`.
    Transport {
        error: ureq::Error,
        url: String,
        token: bool,
    },
    /// Already worded for the user, and not worth another attempt (auth refused, a
    /// verification failure, a malformed answer, a full disk).
    Final(anyhow::Error),
}

impl From<anyhow::Error> for AttemptError {
    fn from(error: anyhow::Error) -> AttemptError {
        AttemptError::Final(error)
    }
}

enum AuthScheme {
    Anonymous,
    Basic(String),
    Bearer {
        challenge: Challenge,
        token: String,
        renew_at: Instant,
    },
}

struct AuthState {
    /// Looked up on the first challenge, then kept (`Some(None)`: the user has none).
    credentials: Option<Option<Credentials>>,
    scheme: AuthScheme,
}

/// What a request is for, to word its errors.
#[derive(Clone, Copy)]
enum Target<'a> {
    Manifest(&'a str),
    Blob(&'a Digest),
    /// Sending a blob of `size` bytes, in chunks of `chunk` bytes when given.
    Upload {
        digest: &'a Digest,
        size: u64,
        chunk: Option<u64>,
    },
    Token,
}

/// What a client may do in its repository: what it asks a token service for, and how
/// its messages speak.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    Pull,
    /// Push, mounting blobs from these other repositories of the same registry.
    Push {
        mount_from: Vec<String>,
    },
}

/// The body of a request, in a form that can be sent again from its start (after
/// answering a 401 challenge).
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// No body (GET, HEAD).
    None,
    /// These bytes (`Content-Length` set, so an empty POST says it is empty).
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset`, read with `pread` (the file's own position is
    /// not used, so threads may share it); `progress` is told how far into the file the
    /// sending is.
    File {
        file: &'a std::fs::File,
        offset: u64,
        len: u64,
        progress: &'a dyn Fn(u64),
    },
}

/// The reader of a [`Payload::File`]: exactly `end - pos` bytes, then end of file.
struct FileRange<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
    progress: &'a dyn Fn(u64),
}

impl io::Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            // The file is shorter than its blob's size: the body would be cut short.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob file ended before its size",
            ));
        }
        self.pos += n as u64;
        (self.progress)(self.pos);
        Ok(n)
    }
}

/// ureq's resolver, with every I/O failure to resolve a name wrapped in
/// [`NameNotResolved`]: std's lookup error has no `io::ErrorKind` of its own, and a DNS
/// failure must be told apart from other I/O errors by type. Its text is kept.
#[derive(Debug, Default)]
struct NameResolver(DefaultResolver);

impl Resolver for NameResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        self.0
            .resolve(uri, config, timeout)
            .map_err(|err| match err {
                ureq::Error::Io(io) => {
                    ureq::Error::Io(io::Error::new(io.kind(), NameNotResolved(io)))
                }
                other => other,
            })
    }
}

/// Marks a response that came from another origin than the one asked (a redirect led
/// there): its 401 is not the registry's challenge.
#[derive(Debug, Clone, Copy)]
struct Foreign;

/// `text` escaped for a URL query value (RFC 3986 unreserved characters kept).
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Marks an I/O error as a failed name lookup; displays as the lookup's own error.
#[derive(Debug)]
struct NameNotResolved(io::Error);

impl std::fmt::Display for NameNotResolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for NameNotResolved {}

/// A client for one repository (`reference`'s registry and repository).
pub struct Client {
    agent: Agent,
    /// For a registry whose certificates are not verified (`insecure` in
    /// registries.conf): the agent that verifies them, for hops to other hosts.
    verifying: Option<Agent>,
    /// `host[:port]`s plain HTTP may go to besides loopback: box's insecure-registries,
    /// and the registry itself when it is insecure.
    plain_http_ok: Vec<String>,
    reference: Reference,
    /// `scheme://host[:port]`, decided on first use when `probe_scheme`.
    origin: OnceLock<String>,
    /// Whether the scheme is found out by asking (see [`Client::origin`]).
    probe_scheme: bool,
    insecure: bool,
    ca_files: Vec<PathBuf>,
    auth_sources: AuthSources,
    auth: Mutex<AuthState>,
    /// Whether any request reached the registry: a refused connection after that is a
    /// transient failure (a restart), before it a registry that is not there.
    reached: AtomicBool,
    read_timeout: Duration,
    policy: Policy,
    access: Access,
    /// Repositories a mount from was refused (an error status, not a 202): not asked
    /// again by this client.
    mounts_refused: Mutex<Vec<String>>,
}

impl Client {
    pub fn new(reference: &Reference, config: &Config) -> Result<Client> {
        Client::with_options(reference, config, ClientOptions::from_env())
    }

    pub fn with_options(
        reference: &Reference,
        config: &Config,
        options: ClientOptions,
    ) -> Result<Client> {
        // box's own insecure-registries mean plain HTTP; registries.conf's insecure means
        // what it means to podman (HTTPS without verification, else HTTP), on loopback too.
        let probe_scheme = options.insecure && !config.is_insecure(&reference.registry);
        let plain_http =
            !probe_scheme && (reference.is_loopback() || config.is_insecure(&reference.registry));
        let ca_files = certs::extra_ca_files(&options.cert_dirs, &reference.registry);
        let roots = certs::root_certs(&ca_files).with_context(|| {
            format!(
                "loading the CA certificates for registry {}",
                reference.registry
            )
        })?;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(roots.clone())
            .disable_verification(probe_scheme)
            .build();
        // Proxies come from the environment (with NO_PROXY), except for a registry on this
        // machine, which a proxy cannot reach (Go's HTTP client, hence docker, does the same).
        let proxy = if reference.is_loopback() {
            None
        } else {
            ureq::Proxy::try_from_env()
        };
        // Redirects are followed by `send` and `fetch_token`, hop by hop.
        let agent = |tls: ureq::tls::TlsConfig| {
            let config = Agent::config_builder()
                .http_status_as_error(false)
                .proxy(proxy.clone())
                .tls_config(tls)
                .timeout_connect(Some(options.connect_timeout))
                .timeout_recv_response(Some(options.read_timeout))
                .timeout_per_read(Some(options.read_timeout))
                .max_redirects(0)
                .user_agent(format!("box/{}", env!("CARGO_PKG_VERSION")))
                .build();
            Agent::with_parts(config, DefaultConnector::default(), NameResolver::default())
        };
        let verifying =
            probe_scheme.then(|| agent(ureq::tls::TlsConfig::builder().root_certs(roots).build()));
        let agent = agent(tls);
        let mut plain_http_ok = config.insecure_registries.clone();
        if plain_http || probe_scheme {
            plain_http_ok.push(reference.api_host().to_owned());
        }
        let scheme = if plain_http { "http" } else { "https" };
        let origin = OnceLock::new();
        if !probe_scheme {
            let _ = origin.set(format!("{scheme}://{}", reference.api_host()));
        }
        Ok(Client {
            agent,
            verifying,
            plain_http_ok,
            reference: reference.clone(),
            origin,
            probe_scheme,
            insecure: plain_http || probe_scheme,
            ca_files,
            auth_sources: options.auth,
            auth: Mutex::new(AuthState {
                credentials: None,
                scheme: AuthScheme::Anonymous,
            }),
            reached: AtomicBool::new(false),
            read_timeout: options.read_timeout,
            policy: options.retry,
            access: Access::Pull,
            mounts_refused: Mutex::new(Vec::new()),
        })
    }

    /// The same client under another retry policy (a mirror is asked for the manifest
    /// under a short one, then serves its blobs under the usual one).
    pub fn with_retry(mut self, policy: Policy) -> Client {
        self.policy = policy;
        self
    }

    /// The reference this client was made for.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// `scheme://host[:port]` of the registry API. For an `insecure` registry of
    /// registries.conf, one `GET /v2/` over HTTPS (without certificate verification)
    /// decides: any HTTP answer means HTTPS, no answer plain HTTP, as podman does.
    fn origin(&self) -> &str {
        self.origin.get_or_init(|| {
            debug_assert!(self.probe_scheme);
            let host = self.reference.api_host();
            match self.agent.get(format!("https://{host}/v2/")).call() {
                Ok(_) => format!("https://{host}"),
                Err(_) => format!("http://{host}"),
            }
        })
    }

    /// GET a manifest or index by tag or digest. Its digest is computed from the bytes;
    /// when fetching by digest, a mismatch is an error.
    pub fn get_manifest(&self, tag_or_digest: &str) -> Result<FetchedManifest> {
        let url = format!(
            "{}/v2/{}/manifests/{tag_or_digest}",
            self.origin(),
            self.reference.repository
        );
        let target = Target::Manifest(tag_or_digest);
        let (bytes, headers) = self.fetch_small(
            &url,
            Some(ACCEPT_MANIFESTS),
            target,
            MAX_MANIFEST,
            "manifest",
        )?;
        let digest = Digest::of(&bytes);
        let shown = self.display(target);
        if let Ok(wanted) = Digest::parse(tag_or_digest)
            && wanted != digest
        {
            return Err(failure(
                format!(
                    "the manifest of {shown} from {} has digest {digest}, not the one asked for",
                    self.reference.registry
                ),
                "the registry served corrupt or substituted content; try again, and report it if it persists",
            ));
        }
        // Registries announce the digest; a different one means the bytes were altered.
        if let Some(announced) =
            header(&headers, "docker-content-digest").and_then(|d| Digest::parse(&d).ok())
            && announced != digest
        {
            return Err(failure(
                format!(
                    "the manifest of {shown} from {} has digest {digest}, but the registry announced {announced}",
                    self.reference.registry
                ),
                "something between box and the registry altered the manifest; try again",
            ));
        }
        let content_type = header(&headers, "content-type").unwrap_or_default();
        let media_type = manifest_media_type(&content_type, declared_media_type(&bytes).as_deref());
        Ok(FetchedManifest {
            bytes,
            digest,
            media_type,
        })
    }

    /// GET a small blob (an image config) into memory, verified.
    pub fn get_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        if descriptor.size() > MAX_SMALL_BLOB {
            return Err(failure(
                format!(
                    "blob {} of {} is {} bytes, more than the {} MiB box reads into memory",
                    descriptor.digest(),
                    self.reference,
                    descriptor.size(),
                    MAX_SMALL_BLOB >> 20
                ),
                "the image's config is implausibly large; the image is probably malformed",
            ));
        }
        let mut bytes = Vec::with_capacity(descriptor.size() as usize);
        self.download_blob(descriptor, &mut bytes, &|_| {})?;
        Ok(bytes)
    }

    /// Stream a blob to `out`, calling `progress` with the bytes received so far. The
    /// size and digest are verified; on error, what was written to `out` must be dropped.
    pub fn download_blob(
        &self,
        descriptor: &Descriptor,
        out: &mut dyn io::Write,
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        let digest = Digest::try_from(descriptor.digest())
            .with_context(|| format!("blob {} of {}", descriptor.digest(), self.reference))?;
        let size = descriptor.size();
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.origin(),
            self.reference.repository
        );
        let target = Target::Blob(&digest);
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 64 << 10];
        self.run(target, |retrier| {
            let before = hasher.bytes;
            let outcome = self.download_attempt(
                &url,
                &digest,
                size,
                target,
                &mut hasher,
                &mut buf,
                out,
                progress,
            );
            if hasher.bytes > before {
                retrier.progressed();
            }
            outcome
        })?;
        if hasher.bytes != size {
            return Err(self.wrong_size(&digest, size, format!("{} bytes", hasher.bytes)));
        }
        let actual = hasher.finish();
        if actual != digest {
            return Err(failure(
                format!(
                    "blob {digest} of {} from {} has digest {actual}: the content is corrupt",
                    self.reference, self.reference.registry
                ),
                "try again; if it persists, the image on the registry is damaged and must be pushed again",
            ));
        }
        Ok(())
    }

    /// One GET of a blob, resuming after the `hasher.bytes` already received.
    #[allow(clippy::too_many_arguments)]
    fn download_attempt(
        &self,
        url: &str,
        digest: &Digest,
        size: u64,
        target: Target,
        hasher: &mut Hasher,
        buf: &mut [u8],
        out: &mut dyn io::Write,
        progress: &dyn Fn(u64),
    ) -> Result<(), AttemptError> {
        let resume_from = hasher.bytes;
        let response = self.send(url, None, (resume_from > 0).then_some(resume_from), target)?;
        // A registry that ignores the range starts over: skip what we already have.
        let mut skip = if response.status() == StatusCode::PARTIAL_CONTENT {
            let start = header(response.headers(), "content-range").and_then(|r| {
                r.strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next()?.parse::<u64>().ok())
            });
            if start != Some(resume_from) {
                return Err(AttemptError::Final(anyhow!(
                    "the registry resumed blob {digest} of {} at the wrong offset ({start:?} instead of {resume_from})",
                    self.reference,
                )));
            }
            0
        } else {
            if let Some(length) = response.body().content_length()
                && length != size
            {
                return Err(AttemptError::Final(self.wrong_size(
                    digest,
                    size,
                    format!("{length} bytes (Content-Length)"),
                )));
            }
            resume_from
        };
        let mut reader = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        loop {
            let n = match reader.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(AttemptError::Transport {
                        error: ureq::Error::from(err),
                        url: url.to_owned(),
                        token: false,
                    });
                }
            };
            let mut chunk = &buf[..n];
            if skip > 0 {
                let dropped = skip.min(n as u64);
                skip -= dropped;
                chunk = &chunk[dropped as usize..];
            }
            if chunk.is_empty() {
                continue;
            }
            if hasher.bytes + chunk.len() as u64 > size {
                // Stop at once: a registry streaming too much is not read to the end.
                return Err(AttemptError::Final(self.wrong_size(
                    digest,
                    size,
                    format!("more than {size} bytes"),
                )));
            }
            hasher.update(chunk);
            // The io::Error itself goes up (the caller tells a full disk from other
            // failures by its errno); the caller names the blob.
            out.write_all(chunk)
                .context("saving the download")
                .hint("check the disk box keeps its store on: is it full or read-only?")?;
            progress(hasher.bytes);
        }
    }

    /// `sent` says what the registry sent, e.g. "133 bytes" or "more than 135 bytes".
    fn wrong_size(&self, digest: &Digest, size: u64, sent: String) -> anyhow::Error {
        failure(
            format!(
                "blob {digest} of {} from {} has the wrong size: the registry sent {sent}, but the manifest says {size} bytes",
                self.reference, self.reference.registry
            ),
            "the image on the registry is inconsistent (or a proxy altered it); push it again",
        )
    }

    /// GET a small document, capped at `cap` bytes.
    fn fetch_small(
        &self,
        url: &str,
        accept: Option<&str>,
        target: Target,
        cap: u64,
        what: &str,
    ) -> Result<(Vec<u8>, HeaderMap)> {
        let too_big = || {
            failure(
                format!(
                    "the {what} of {} from {} is larger than {} MiB",
                    self.display(target),
                    self.reference.registry,
                    cap >> 20
                ),
                "this is not a normal image; check the reference",
            )
        };
        self.run(target, |_| {
            let response = self.send(url, accept, None, target)?;
            if response.body().content_length().is_some_and(|l| l > cap) {
                return Err(AttemptError::Final(too_big()));
            }
            let (parts, body) = response.into_parts();
            let mut bytes = Vec::new();
            body.into_with_config()
                .limit(u64::MAX)
                .reader()
                .take(cap + 1)
                .read_to_end(&mut bytes)
                .map_err(|err| AttemptError::Transport {
                    error: ureq::Error::from(err),
                    url: url.to_owned(),
                    token: false,
                })?;
            if bytes.len() as u64 > cap {
                return Err(AttemptError::Final(too_big()));
            }
            Ok((bytes, parts.headers))
        })
    }

    /// The one retry loop for a GET: see [`Client::run_with`].
    fn run<T>(
        &self,
        target: Target,
        attempt: impl FnMut(&mut Retrier) -> Result<T, AttemptError>,
    ) -> Result<T> {
        self.run_with(Retrier::new(self.policy, Method::GET), target, attempt)
    }

    /// The one retry loop: run `attempt` until it succeeds or `retrier`'s policy says
    /// stop, then word the last failure for `target`. Every operation goes through here.
    fn run_with<T>(
        &self,
        mut retrier: Retrier,
        target: Target,
        mut attempt: impl FnMut(&mut Retrier) -> Result<T, AttemptError>,
    ) -> Result<T> {
        loop {
            retrier.attempt();
            let err = match attempt(&mut retrier) {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let failure = self.classify(&err);
            if !retrier.wait_after(&failure) {
                return Err(self.word(err, failure, target));
            }
        }
    }

    /// How an attempt failed, for the retry policy: by status code, io::ErrorKind and
    /// error type.
    fn classify(&self, err: &AttemptError) -> Failure {
        let reached = self.reached.load(Ordering::Relaxed);
        match err {
            AttemptError::Status {
                status,
                retry_after,
                ..
            } => Failure::Status {
                code: status.as_u16(),
                retry_after: *retry_after,
            },
            AttemptError::Transport { error, .. } => match error {
                ureq::Error::Timeout(_) => Failure::Timeout,
                ureq::Error::Io(io) if rustls_error(io).is_some() || name_not_resolved(io) => {
                    Failure::Final
                }
                ureq::Error::Io(io) => Failure::Io {
                    kind: io.kind(),
                    reached,
                },
                _ => Failure::Final,
            },
            AttemptError::Final(_) => Failure::Final,
        }
    }

    /// The error users see for a failure the loop gave up on.
    fn word(&self, err: AttemptError, failure: Failure, target: Target) -> anyhow::Error {
        let (message, hint) = match err {
            AttemptError::Final(error) => return error,
            AttemptError::Status {
                status,
                body,
                token,
                ..
            } => self.status_error(status, &body, if token { Target::Token } else { target }),
            AttemptError::Transport { error, url, token } => {
                self.transport_error(error, &url, if token { Target::Token } else { target })
            }
        };
        anyhow::Error::new(RegistryError { failure, message }).context(Hint(hint))
    }

    /// One GET with authentication (answering one 401 challenge) and its redirects
    /// (see [`Client::follow`]); returns only 2xx responses. No retries here:
    /// [`Client::run`] owns them.
    fn send(
        &self,
        url: &str,
        accept: Option<&str>,
        range_from: Option<u64>,
        target: Target,
    ) -> Result<Response<Body>, AttemptError> {
        let mut headers = Vec::new();
        if let Some(accept) = accept {
            headers.push(("Accept", accept.to_owned()));
        }
        if let Some(from) = range_from {
            headers.push(("Range", format!("bytes={from}-")));
        }
        let response = self.exchange(Method::GET, url, &headers, Payload::None, target)?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.failed(response, target))
        }
    }

    /// An answer that is not what the request wanted, as an attempt's failure: a 401 that
    /// remained after answering its challenge is a refusal of the credentials (or of
    /// their lack).
    fn failed(&self, response: Response<Body>, target: Target) -> AttemptError {
        if response.status() == StatusCode::UNAUTHORIZED {
            AttemptError::Final(self.refused(target))
        } else {
            status_failure(response, false)
        }
    }

    /// One request with authentication: a first 401 is answered (its challenge taken up,
    /// the request sent once more from the start of its body); the answer is returned
    /// whatever its status (a second 401 included: see [`Client::failed`]) for the
    /// caller to judge. No retries here.
    fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        payload: Payload,
        target: Target,
    ) -> Result<Response<Body>, AttemptError> {
        let mut authenticated_after_401 = false;
        loop {
            let authorization = self.authorization()?;
            let response = match payload {
                // Reads follow redirects (a blob GET goes to a CDN), every hop checked.
                Payload::None => self.follow(
                    &method,
                    url,
                    authorization.as_deref(),
                    false,
                    |mut request| {
                        for (name, value) in headers {
                            request = request.header(*name, value);
                        }
                        request
                    },
                )?,
                // Writes go where the registry said (its upload Location), under the same
                // transport rule; a redirect is an answer, not followed.
                payload => {
                    self.send_body(&method, url, headers, authorization.as_deref(), payload)?
                }
            };
            self.reached.store(true, Ordering::Relaxed);
            match response.status().as_u16() {
                // Only the registry's own challenge is answered with its credentials.
                401 if !authenticated_after_401
                    && response.extensions().get::<Foreign>().is_none() =>
                {
                    authenticated_after_401 = true;
                    self.authenticate(&response, target)?;
                }
                _ => return Ok(response),
            }
        }
    }

    /// GET `url` and follow its redirects by [`super::redirect`]'s rules: each hop must
    /// keep to the transport rule, and `authorization` goes only to `url`'s origin.
    /// `extra` adds the request's other headers at every hop. `token`: a request to the
    /// token service (for errors). A response from another origin than `url`'s carries
    /// the [`Foreign`] extension.
    fn follow(
        &self,
        method: &Method,
        url: &str,
        authorization: Option<&str>,
        token: bool,
        extra: impl Fn(
            ureq::RequestBuilder<ureq::typestate::WithoutBody>,
        ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    ) -> Result<Response<Body>, AttemptError> {
        let transport = |error, at: &Uri| AttemptError::Transport {
            error,
            url: at.to_string(),
            token,
        };
        let first: Uri = url
            .parse()
            .map_err(|_| AttemptError::Final(anyhow!("`{url}` is not a valid URL")))?;
        let insecure = |authority: &str| self.plain_http_ok.iter().any(|ok| ok == authority);
        redirect::check_transport(&first, None, insecure).map_err(AttemptError::Final)?;
        let mut current = first.clone();
        for _ in 0..=redirect::MAX_HOPS {
            let home = redirect::same_origin(&first, &current);
            // An unverified registry's agent only for that registry itself.
            let agent = match &self.verifying {
                Some(verifying) if redirect::authority(&current) != self.reference.api_host() => {
                    verifying
                }
                _ => &self.agent,
            };
            let request = match *method {
                Method::HEAD => agent.head(current.clone()),
                Method::DELETE => agent.delete(current.clone()),
                _ => agent.get(current.clone()),
            };
            let mut request = extra(request);
            if let (true, Some(authorization)) = (home, authorization) {
                request = request.header("Authorization", authorization);
            }
            let mut response = request.call().map_err(|error| transport(error, &current))?;
            if !redirect::is_redirect(response.status().as_u16()) {
                if !home {
                    response.extensions_mut().insert(Foreign);
                }
                return Ok(response);
            }
            let next = header(response.headers(), "location")
                .and_then(|location| redirect::resolve(&current, &location))
                .ok_or_else(|| {
                    AttemptError::Final(anyhow!(
                        "{current} answered {} without a valid Location to go to",
                        response.status()
                    ))
                })?;
            redirect::check_transport(&next, Some(&current), insecure)
                .map_err(AttemptError::Final)?;
            current = next;
        }
        Err(AttemptError::Final(failure(
            format!(
                "{url} redirected more than {} times; box stopped at {current}",
                redirect::MAX_HOPS
            ),
            "the registry or a server in front of it is misconfigured (a redirect loop)",
        )))
    }

    /// Send a request with a body (an upload) to `url` once, as [`Client::follow`]
    /// would its first hop: the transport rule checked, `authorization` only to the
    /// registry's own origin (an upload Location may name another server), no redirect
    /// followed.
    fn send_body(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, String)],
        authorization: Option<&str>,
        payload: Payload,
    ) -> Result<Response<Body>, AttemptError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| AttemptError::Final(anyhow!("`{url}` is not a valid URL")))?;
        let insecure = |authority: &str| self.plain_http_ok.iter().any(|ok| ok == authority);
        redirect::check_transport(&uri, None, insecure).map_err(AttemptError::Final)?;
        let home = redirect::authority(&uri) == self.reference.api_host();
        let mut request = ureq::http::Request::builder()
            .method(method.clone())
            .uri(uri.clone());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let (true, Some(authorization)) = (home, authorization) {
            request = request.header("Authorization", authorization);
        }
        let invalid = |err: ureq::http::Error| {
            AttemptError::Final(anyhow!(
                "box made an invalid request to {url} for {}: {err}",
                self.reference
            ))
        };
        let answer = match payload {
            Payload::None => self.agent.run(request.body(()).map_err(invalid)?),
            Payload::Bytes(bytes) => self.agent.run(request.body(bytes).map_err(invalid)?),
            Payload::File {
                file,
                offset,
                len,
                progress,
            } => {
                let mut reader = FileRange {
                    file,
                    pos: offset,
                    end: offset + len,
                    progress,
                };
                // A length ureq does not know from a reader: sent as Content-Length,
                // as registries (and the proxies in front of them) want it.
                let mut request = request.header("Content-Length", len.to_string());
                if len > EXPECT_CONTINUE_FROM {
                    // The registry (or a proxy with a body size limit, or a 401) may
                    // refuse the request on its headers: then the body is not sent.
                    request = request.header("Expect", "100-continue");
                }
                let request = request
                    .body(ureq::SendBody::from_reader(&mut reader))
                    .map_err(invalid)?;
                self.agent.run(request)
            }
        };
        let mut response = answer.map_err(|error| AttemptError::Transport {
            error,
            url: url.to_owned(),
            token: false,
        })?;
        if !home {
            response.extensions_mut().insert(Foreign);
        }
        Ok(response)
    }

    /// The `Authorization` value for the next request, renewing an expiring token.
    fn authorization(&self) -> Result<Option<String>, AttemptError> {
        let mut state = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        let renew = match &state.scheme {
            AuthScheme::Anonymous => return Ok(None),
            AuthScheme::Basic(value) => return Ok(Some(value.clone())),
            AuthScheme::Bearer {
                token,
                renew_at,
                challenge,
            } => {
                if Instant::now() < *renew_at {
                    return Ok(Some(format!("Bearer {token}")));
                }
                challenge.clone()
            }
        };
        let credentials = state.credentials.clone().flatten();
        let (token, renew_at) = self.fetch_token(&renew, credentials.as_ref())?;
        let value = format!("Bearer {token}");
        state.scheme = AuthScheme::Bearer {
            challenge: renew,
            token,
            renew_at,
        };
        Ok(Some(value))
    }

    /// Answer a 401's challenge: set up Bearer or Basic auth for the next attempts.
    fn authenticate(&self, response: &Response<Body>, target: Target) -> Result<(), AttemptError> {
        let challenges: Vec<Challenge> = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        let mut state = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        if state.credentials.is_none() {
            let found = self
                .auth_sources
                .lookup(&self.reference.registry, &self.reference.repository)
                .with_context(|| {
                    format!("looking up credentials for {}", self.reference.registry)
                })?;
            state.credentials = Some(found);
        }
        let credentials = state.credentials.clone().flatten();
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            if !bearer.params.contains_key("realm") {
                return Err(AttemptError::Final(anyhow!(
                    "registry {} asked for a bearer token without saying where to get one (no realm)",
                    self.reference.registry
                )));
            }
            let (token, renew_at) = self.fetch_token(bearer, credentials.as_ref())?;
            state.scheme = AuthScheme::Bearer {
                challenge: bearer.clone(),
                token,
                renew_at,
            };
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some(credentials) = credentials else {
                return Err(AttemptError::Final(self.needs_credentials(target)));
            };
            state.scheme = AuthScheme::Basic(credentials.basic_header());
            return Ok(());
        }
        Err(AttemptError::Final(failure(
            format!(
                "registry {} requires an authentication scheme box does not know ({})",
                self.reference.registry,
                header(response.headers(), "www-authenticate")
                    .unwrap_or_else(|| "no challenge given".into())
            ),
            "box supports Bearer token and Basic authentication",
        )))
    }

    /// Get a pull token from the challenge's realm, in one request (the operation that
    /// needs it retries). Returns it with the time to renew it.
    fn fetch_token(
        &self,
        challenge: &Challenge,
        credentials: Option<&Credentials>,
    ) -> Result<(String, Instant), AttemptError> {
        let realm = &challenge.params["realm"];
        let mut url = realm.clone();
        for (index, scope) in self.scopes().iter().enumerate() {
            let separator = match (index, realm.contains('?')) {
                (0, false) => '?',
                _ => '&',
            };
            url.push_str(&format!("{separator}scope={}", query_escape(scope)));
        }
        if let Some(service) = challenge.params.get("service") {
            url.push_str(&format!("&service={}", query_escape(service)));
        }
        let transport = |error| AttemptError::Transport {
            error,
            url: realm.clone(),
            token: true,
        };
        // The credentials go to the realm the registry named, and nowhere it redirects.
        let basic = credentials.map(Credentials::basic_header);
        let response = self.follow(&Method::GET, &url, basic.as_deref(), true, |request| {
            request
        })?;
        match response.status().as_u16() {
            200..=299 => {}
            401 | 403 if credentials.is_some() => {
                return Err(AttemptError::Final(
                    self.refused_with(credentials, Target::Token),
                ));
            }
            401 | 403 => return Err(AttemptError::Final(self.needs_credentials(Target::Token))),
            _ => return Err(status_failure(response, true)),
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body = response
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(transport)?;
        let answer: TokenAnswer = serde_json::from_slice(&body).with_context(|| {
            format!(
                "the token service {realm} of {} answered invalid JSON",
                self.reference.registry
            )
        })?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "the token service {realm} of {} answered without a token",
                    self.reference.registry
                )
            })?;
        // The spec's default lifetime is 60 s; renew a little early.
        let lifetime = answer.expires_in.unwrap_or(60).max(10);
        Ok((
            token,
            Instant::now() + Duration::from_secs(lifetime * 9 / 10),
        ))
    }

    /// The token scopes this client asks for (see the module doc).
    fn scopes(&self) -> Vec<String> {
        let repository = &self.reference.repository;
        match &self.access {
            Access::Pull => vec![format!("repository:{repository}:pull")],
            Access::Push { mount_from } => {
                std::iter::once(format!("repository:{repository}:pull,push"))
                    .chain(mount_from.iter().map(|r| format!("repository:{r}:pull")))
                    .collect()
            }
        }
    }

    /// Whether this client pushes (its messages say so).
    fn pushing(&self) -> bool {
        matches!(self.access, Access::Push { .. })
    }

    /// "pulling" or "pushing", for messages.
    fn doing(&self) -> &'static str {
        if self.pushing() { "pushing" } else { "pulling" }
    }

    /// `name:tag` or `name@digest` for messages.
    fn display(&self, target: Target) -> String {
        match target {
            Target::Manifest(tag_or_digest) if tag_or_digest.contains(':') => {
                format!("{}@{tag_or_digest}", self.reference.name())
            }
            Target::Manifest(tag) => format!("{}:{tag}", self.reference.name()),
            Target::Blob(_) | Target::Upload { .. } | Target::Token => self.reference.canonical(),
        }
    }

    /// The message and hint for a request that got no (complete) answer.
    fn transport_error(&self, err: ureq::Error, url: &str, target: Target) -> (String, String) {
        let shown = self.display(target);
        let doing = self.doing();
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or(url)
            .to_owned();
        let registry = &self.reference.registry;
        let is_dns = match &err {
            ureq::Error::HostNotFound => true,
            ureq::Error::Io(io) => name_not_resolved(io),
            _ => false,
        };
        if is_dns {
            return (
                format!(
                    "cannot resolve registry host {} ({doing} {shown}): {err}",
                    host_only(&host)
                ),
                format!("check the registry name `{registry}` and your network connection and DNS"),
            );
        }
        if let ureq::Error::Io(io) = &err
            && io.kind() == io::ErrorKind::ConnectionRefused
        {
            return (
                format!(
                    "cannot connect to {host}: is a registry running there? ({doing} {shown}: connection refused)"
                ),
                format!("check the host and port in `{registry}`, and that the registry is up"),
            );
        }
        if let ureq::Error::Timeout(which) = &err {
            return (
                format!(
                    "registry {host} did not answer in time ({which}; limit {} s) while {doing} {shown}",
                    self.read_timeout.as_secs()
                ),
                "the registry or the network is stalled; try again later".to_owned(),
            );
        }
        let tls = match &err {
            ureq::Error::Tls(_) | ureq::Error::Pem(_) => Some(None),
            ureq::Error::Rustls(rustls) => Some(Some(rustls)),
            // rustls reports handshake failures through the socket's io::Error.
            ureq::Error::Io(io) => rustls_error(io).map(Some),
            _ => None,
        };
        if let Some(rustls) = tls {
            // A TLS client reading a plain HTTP answer sees a record of no known type.
            let plain_http = matches!(
                rustls,
                Some(rustls::Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType
                ))
            );
            let hint = if plain_http {
                format!(
                    "{host} answers in plain HTTP, not HTTPS; if you trust the network, add \"{registry}\" to \
                     insecure-registries in ~/.config/box/config.toml, or give it `insecure = true` in a \
                     [[registry]] of ~/.config/containers/registries.conf"
                )
            } else if self.insecure {
                format!(
                    "{registry} is reached over plain HTTP; check that it does not require HTTPS"
                )
            } else if self.ca_files.is_empty() {
                format!(
                    "if {registry} uses a private CA, put its certificate in /etc/containers/certs.d/{registry}/ca.crt \
                     or ~/.config/containers/certs.d/{registry}/ca.crt; if it speaks plain HTTP, add \"{registry}\" to \
                     insecure-registries in ~/.config/box/config.toml"
                )
            } else {
                format!(
                    "the certificate of {host} does not verify against the system roots plus {}; if {registry} \
                     speaks plain HTTP, add it to insecure-registries in ~/.config/box/config.toml",
                    self.ca_files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return (
                format!("TLS connection to {host} failed ({doing} {shown}): {err}"),
                hint,
            );
        }
        (
            format!("request to {host} failed ({doing} {shown}): {err}"),
            "check your network connection and try again".to_owned(),
        )
    }

    fn needs_credentials(&self, target: Target) -> anyhow::Error {
        if self.pushing() {
            return push::needs_credentials(&self.reference);
        }
        failure(
            format!(
                "{} requires authentication to pull {} (or the repository does not exist)",
                self.reference.registry,
                self.display(target)
            ),
            "add credentials to ~/.docker/config.json with `docker login` / `podman login`, or to \
             $XDG_RUNTIME_DIR/containers/auth.json",
        )
    }

    /// A 401 after answering the challenge.
    fn refused(&self, target: Target) -> anyhow::Error {
        let credentials = self
            .auth
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .credentials
            .clone()
            .flatten();
        self.refused_with(credentials.as_ref(), target)
    }

    /// Credentials (if any) were refused. Must not be called with the auth lock held.
    fn refused_with(&self, credentials: Option<&Credentials>, target: Target) -> anyhow::Error {
        match credentials {
            Some(credentials) if self.pushing() => push::refused(&self.reference, credentials),
            Some(credentials) => failure(
                format!(
                    "credentials for {} from {} were refused (user `{}`, pulling {})",
                    self.reference.registry,
                    credentials.source,
                    credentials.username,
                    self.display(target)
                ),
                format!(
                    "log in again with `podman login {0}` or `docker login {0}`, and check that the account may \
                     pull this repository",
                    self.reference.registry
                ),
            ),
            None => self.needs_credentials(target),
        }
    }

    /// The message and hint for an error status, with the registry's own explanation
    /// from the start of the `body`.
    fn status_error(&self, status: StatusCode, body: &[u8], target: Target) -> (String, String) {
        let registry = &self.reference.registry;
        let shown = self.display(target);
        let message = registry_message(body);
        let detail = message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        // Go's TLS servers answer a plain HTTP request with a 400 whose body says so
        // ("Client sent an HTTP request to an HTTPS server."): the only sign there is,
        // in the answer itself rather than in an error of box's.
        if status.as_u16() == 400 && String::from_utf8_lossy(body).contains("HTTPS server") {
            return (
                format!(
                    "registry {registry} speaks HTTPS, but box used plain HTTP ({} {shown})",
                    self.doing()
                ),
                format!(
                    "remove \"{registry}\" from insecure-registries in ~/.config/box/config.toml"
                ),
            );
        }
        if self.pushing() && !matches!(target, Target::Token) {
            return push::status_error(&self.reference, status, message.as_deref(), target);
        }
        let (message, hint) = match (status.as_u16(), target) {
            (404, Target::Manifest(_)) => (
                format!(
                    "no image {shown} at {registry} ({})",
                    message.as_deref().unwrap_or("manifest unknown")
                ),
                "check the name and tag",
            ),
            (404, Target::Blob(digest)) => (
                format!("blob {digest} of {shown} was not found at {registry}{detail}"),
                "the image on the registry is incomplete; push it again",
            ),
            (403, _) => (
                format!("access to {shown} at {registry} was denied ({status}{detail})"),
                "check that your account may pull this repository, and your credentials",
            ),
            (500..=599, _) => (
                format!("registry {registry} failed while serving {shown} ({status}{detail})"),
                "the registry has a problem; try again later",
            ),
            _ => (
                format!("registry {registry} refused the request for {shown} ({status}{detail})"),
                "check the reference; the registry may not support this request",
            ),
        };
        (message, hint.to_owned())
    }
}

/// An error answer as an attempt's failure: its status, `Retry-After` and the start of
/// its body (for the registry's message).
fn status_failure(response: Response<Body>, token: bool) -> AttemptError {
    let status = response.status();
    let retry_after = header(response.headers(), "retry-after")
        .and_then(|value| retry::parse_retry_after(&value, SystemTime::now()));
    let body = response
        .into_body()
        .with_config()
        .limit(MAX_ERROR_BODY)
        .read_to_vec()
        .unwrap_or_default();
    AttemptError::Status {
        status,
        retry_after,
        body,
        token,
    }
}

/// Whether an I/O error is a failed name lookup (see [`NameResolver`]).
fn name_not_resolved(io: &io::Error) -> bool {
    io.get_ref().is_some_and(|e| e.is::<NameNotResolved>())
}

/// The rustls error inside an I/O error: rustls reports handshake and certificate
/// failures as `InvalidData` errors that carry its own error type.
fn rustls_error(io: &io::Error) -> Option<&rustls::Error> {
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The first error of a registry's `{"errors": [{"code", "message"}]}` envelope.
fn registry_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let messages: Vec<String> = envelope
        .errors
        .into_iter()
        .filter_map(|e| match (e.message.filter(|m| !m.is_empty()), e.code) {
            (Some(message), _) => Some(message),
            (None, Some(code)) => Some(code),
            (None, None) => None,
        })
        .collect();
    if messages.is_empty() {
        None
    } else {
        Some(messages.join("; "))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn host_only(host_port: &str) -> &str {
    crate::registry::reference::split_port(host_port).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Client>();
    }

    #[test]
    fn registry_error_envelopes() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(registry_message(body).as_deref(), Some("manifest unknown"));
        let body = br#"{"errors":[{"code":"UNAUTHORIZED"},{"code":"X","message":"second"}]}"#;
        assert_eq!(
            registry_message(body).as_deref(),
            Some("UNAUTHORIZED; second")
        );
        assert_eq!(registry_message(b"<html>"), None);
        assert_eq!(registry_message(br#"{"errors":[]}"#), None);
    }

    /// A registry on 127.0.0.1 that answers the n-th request with `answers[n]` (the last
    /// one repeated), each on its own connection. Returns its `host:port` and the number
    /// of requests seen so far.
    fn serve(answers: Vec<String>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead as _, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                // The request head ends with an empty line.
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let answer = &answers[n.min(answers.len() - 1)];
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (host, seen)
    }

    fn answer(status: &str, headers: &[&str], body: &str) -> String {
        let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for header in headers {
            out.push_str(header);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        out
    }

    fn client_for(host: &str, retry: Policy) -> Client {
        let options = ClientOptions {
            auth: AuthSources::default(),
            cert_dirs: Vec::new(),
            retry,
            ..ClientOptions::from_env()
        };
        let reference = Reference::parse(&format!("{host}/x")).unwrap();
        Client::with_options(&reference, &Config::default(), options).unwrap()
    }

    const MANIFEST: &str = r#"{"schemaVersion": 2, "manifests": []}"#;

    #[test]
    fn one_loop_honours_retry_after_from_a_real_server() {
        let (host, seen) = serve(vec![
            answer(
                "503 Service Unavailable",
                &["Retry-After: 1"],
                r#"{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}"#,
            ),
            answer(
                "200 OK",
                &["Content-Type: application/vnd.oci.image.index.v1+json"],
                MANIFEST,
            ),
        ]);
        // A backoff far shorter than the Retry-After: only honouring it explains the wait.
        let policy = Policy {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            ..Policy::REGISTRY
        };
        let client = client_for(&host, policy);
        let started = Instant::now();
        let manifest = client.get_manifest("latest").unwrap();
        let waited = started.elapsed();
        assert_eq!(manifest.bytes, MANIFEST.as_bytes());
        assert_eq!(
            manifest.media_type,
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        assert!(waited >= Duration::from_secs(1), "{waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
    }

    #[test]
    fn a_lasting_failure_stops_after_the_attempts_and_says_what_failed() {
        let (host, seen) = serve(vec![answer(
            "503 Service Unavailable",
            &[],
            r#"{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}"#,
        )]);
        let policy = Policy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(10),
            ..Policy::REGISTRY
        };
        let err = client_for(&host, policy)
            .get_manifest("latest")
            .unwrap_err();
        assert_eq!(seen.load(Ordering::SeqCst), 3);
        let typed = err.downcast_ref::<RegistryError>().unwrap();
        assert_eq!(typed.status(), Some(503));
        let message = crate::error::message(&err);
        assert!(message.contains(&host), "{message}");
        assert!(message.contains("down for maintenance"), "{message}");
        assert!(err.downcast_ref::<Hint>().is_some());

        // The answer, not a hiccup: asked once.
        let (host, seen) = serve(vec![answer("404 Not Found", &[], "")]);
        let err = client_for(&host, Policy::REGISTRY)
            .get_manifest("latest")
            .unwrap_err();
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        assert_eq!(
            err.downcast_ref::<RegistryError>().unwrap().status(),
            Some(404)
        );
        assert!(crate::error::message(&err).contains("no image"));
    }

    #[test]
    fn attempts_are_classified_by_type() {
        let client = client_for("127.0.0.1:9", Policy::REGISTRY);
        let transport = |error| AttemptError::Transport {
            error,
            url: "http://127.0.0.1:9/v2/".into(),
            token: false,
        };
        let io_error = |kind, inner: Box<dyn std::error::Error + Send + Sync>| {
            transport(ureq::Error::Io(io::Error::new(kind, inner)))
        };
        assert_eq!(
            client.classify(&io_error(io::ErrorKind::ConnectionReset, "reset".into())),
            Failure::Io {
                kind: io::ErrorKind::ConnectionReset,
                reached: false
            }
        );
        assert_eq!(
            client.classify(&transport(ureq::Error::Timeout(ureq::Timeout::RecvBody))),
            Failure::Timeout
        );
        // Types, whatever the kind or text says.
        let tls = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(
            client.classify(&io_error(io::ErrorKind::ConnectionReset, Box::new(tls))),
            Failure::Final
        );
        let dns = NameNotResolved(io::Error::other("connection reset"));
        assert_eq!(
            client.classify(&io_error(io::ErrorKind::TimedOut, Box::new(dns))),
            Failure::Final
        );
        assert_eq!(
            client.classify(&AttemptError::Final(anyhow!("503 connection reset"))),
            Failure::Final
        );
        assert_eq!(
            client.classify(&AttemptError::Status {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some(Duration::from_secs(2)),
                body: Vec::new(),
                token: true,
            }),
            Failure::Status {
                code: 429,
                retry_after: Some(Duration::from_secs(2))
            }
        );
    }

    #[test]
    fn schemes_by_registry() {
        let config = Config {
            insecure_registries: vec!["lan:5000".into()],
            ..Config::default()
        };
        let options = ClientOptions {
            cert_dirs: Vec::new(),
            ..ClientOptions::from_env()
        };
        let origin = |r: &str| {
            Client::with_options(&Reference::parse(r).unwrap(), &config, options.clone())
                .unwrap()
                .origin()
                .to_owned()
        };
        assert_eq!(origin("debian"), "https://registry-1.docker.io");
        assert_eq!(origin("quay.io/a/b"), "https://quay.io");
        assert_eq!(origin("127.0.0.1:5000/a"), "http://127.0.0.1:5000");
        assert_eq!(origin("localhost/a"), "http://localhost");
        assert_eq!(origin("[::1]:5000/a"), "http://[::1]:5000");
        assert_eq!(origin("lan:5000/a"), "http://lan:5000");
        assert_eq!(origin("lan.example/a"), "https://lan.example");
        // registries.conf's insecure: a registry that does not answer HTTPS gets HTTP.
        let insecure = |r: &str| {
            let options = ClientOptions {
                insecure: true,
                connect_timeout: Duration::from_secs(2),
                ..options.clone()
            };
            Client::with_options(&Reference::parse(r).unwrap(), &config, options)
                .unwrap()
                .origin()
                .to_owned()
        };
        assert_eq!(insecure("nosuch.invalid/a"), "http://nosuch.invalid");
        assert_eq!(insecure("127.0.0.1:9/a"), "http://127.0.0.1:9");
    }

    /// A TLS server on 127.0.0.1 with a self-signed certificate (testdata/self-signed.*,
    /// CN box-test-self-signed) answering every request, each on its own connection, with
    /// `answer`. Returns its `host:port`.
    fn serve_tls(answer: String) -> String {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        use std::io::{BufRead as _, BufReader, Write as _};
        let cert = CertificateDer::from(include_bytes!("testdata/self-signed.crt.der").to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            include_bytes!("testdata/self-signed.key.der").to_vec(),
        ));
        // ring is the provider ureq's rustls feature brings in.
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let config = std::sync::Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let connection = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, stream);
                let mut reader = BufReader::new(&mut tls);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = tls.write_all(answer.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        host
    }

    #[test]
    fn an_insecure_registry_gets_https_without_verification_else_plain_http() {
        let index = answer(
            "200 OK",
            &["Content-Type: application/vnd.oci.image.index.v1+json"],
            MANIFEST,
        );
        let insecure_client = |host: &str| {
            let options = ClientOptions {
                auth: AuthSources::default(),
                cert_dirs: Vec::new(),
                insecure: true,
                ..ClientOptions::from_env()
            };
            let reference = Reference::parse(&format!("{host}/x")).unwrap();
            Client::with_options(&reference, &Config::default(), options).unwrap()
        };
        // A self-signed certificate no root vouches for: HTTPS all the same.
        let tls = serve_tls(index.clone());
        let client = insecure_client(&tls);
        assert_eq!(
            client.get_manifest("latest").unwrap().bytes,
            MANIFEST.as_bytes()
        );
        assert_eq!(client.origin(), format!("https://{tls}"));
        // A registry that speaks no TLS: plain HTTP.
        let (plain, seen) = serve(vec![index]);
        let client = insecure_client(&plain);
        assert_eq!(
            client.get_manifest("latest").unwrap().bytes,
            MANIFEST.as_bytes()
        );
        assert_eq!(client.origin(), format!("http://{plain}"));
        assert_eq!(
            seen.load(Ordering::SeqCst),
            2,
            "the TLS probe, then the manifest"
        );
    }
}
