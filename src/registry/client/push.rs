//! The pushing side of the distribution API (the OCI distribution spec's push), as methods
//! of [`Client`]: whether the repository has a manifest or a blob (HEAD), a blob mounted
//! from another repository of the same registry, a blob uploaded, a manifest put.
//!
//! Uploads follow the spec's two forms: monolithic (POST for a session, then one PUT of
//! the whole blob with its digest) and chunked (POST, one PATCH per chunk with its
//! `Content-Range`, then a PUT with the digest and no body). Chunks are what a registry
//! behind a proxy with a body size limit (nginx's `client_max_body_size`) accepts; a
//! registry's `OCI-Chunk-Min-Length` raises the chunk size to its minimum.
//!
//! Invariants:
//! - the order of a push is the caller's: it puts the manifest last, once every blob is
//!   there, so an interrupted push never leaves a tag pointing at missing blobs;
//! - an upload is one restartable operation ([`Retrier::restartable`]): a session that
//!   breaks (a reset connection, a 5xx) starts again from its POST, after a HEAD (the last
//!   attempt may have completed), never by sending one of its PATCH or PUT requests again;
//!   a chunked upload that made progress restarts the time budget, as a download does;
//! - a mount the registry declines with 202 goes on as an upload in the session it
//!   opened; a mount refused with an error status falls back to a plain upload, and that
//!   source is not asked again;
//! - the registry checks what it receives against the digest (the spec requires it): box
//!   sends the store's bytes as they are and reads a blob's file only when its bytes must
//!   be sent ([`BlobPush::open`]);
//! - a body over 1 MiB waits for the registry's `100 Continue`: a refusal on the headers
//!   (a proxy's body size limit, an expired token) comes before megabytes were sent.

use std::fs::File;

use anyhow::{Result, anyhow};
use ureq::http::{Method, Response, StatusCode};
use ureq::{Body, http::HeaderMap};

use super::{Access, AttemptError, Client, Payload, Target, header};
use crate::digest::Digest;
use crate::error::failure;
use crate::registry::auth::Credentials;
use crate::registry::manifest::ACCEPT_MANIFESTS;
use crate::registry::reference::Reference;
use crate::registry::retry::Retrier;

/// The media type of blob bodies.
const OCTET_STREAM: &str = "application/octet-stream";

/// A blob to make present in the client's repository.
pub struct BlobPush<'a> {
    pub digest: &'a Digest,
    pub size: u64,
    /// Another repository of the same registry that has the blob, to mount it from.
    pub mount_from: Option<&'a str>,
    /// Send the blob in chunks of this many bytes (PATCH requests) when it is larger.
    pub chunk_size: Option<u64>,
    /// Opens the blob's file; called only when its bytes must be sent.
    pub open: &'a (dyn Fn() -> Result<File> + Sync),
    /// Told how many bytes of the blob were sent so far.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

/// What became of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The repository had it already.
    Present,
    /// Mounted from another repository: nothing sent.
    Mounted,
    /// Its bytes were sent.
    Uploaded,
}

/// How an upload began.
enum Start {
    Mounted,
    /// A session to send the bytes to, and the registry's smallest chunk (0: none said).
    Session {
        location: String,
        min_chunk: u64,
    },
}

impl Client {
    /// This client pushes: it asks a token service for `pull,push` on its repository and
    /// `pull` on each of `mount_from` (the repositories it may mount blobs from), and its
    /// messages speak of pushing.
    pub fn for_push(mut self, mount_from: Vec<String>) -> Client {
        self.access = Access::Push { mount_from };
        self
    }

    /// The digest of the manifest `tag_or_digest` when the repository has it (HEAD), from
    /// `Docker-Content-Digest`; `None` when it has none, or does not say which (a tag).
    pub fn manifest_digest(&self, tag_or_digest: &str) -> Result<Option<Digest>> {
        let url = format!(
            "{}/v2/{}/manifests/{tag_or_digest}",
            self.origin(),
            self.reference.repository
        );
        let target = Target::Manifest(tag_or_digest);
        let accept = [("Accept", ACCEPT_MANIFESTS.to_owned())];
        self.run_with(Retrier::new(self.policy, Method::HEAD), target, |_| {
            let response = self.exchange(Method::HEAD, &url, &accept, Payload::None, target)?;
            match response.status().as_u16() {
                200..=299 => Ok(content_digest(response.headers())
                    .or_else(|| Digest::parse(tag_or_digest).ok())),
                404 => Ok(None),
                _ => Err(self.failed(response, target)),
            }
        })
    }

    /// Whether the repository has the blob `digest` (HEAD).
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.run_with(
            Retrier::new(self.policy, Method::HEAD),
            Target::Blob(digest),
            |_| self.head_blob(digest),
        )
    }

    fn head_blob(&self, digest: &Digest) -> Result<bool, AttemptError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.origin(),
            self.reference.repository
        );
        let target = Target::Blob(digest);
        let response = self.exchange(Method::HEAD, &url, &[], Payload::None, target)?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(self.failed(response, target)),
        }
    }

    /// Make `blob` present in the repository: mounted when the registry does it, else
    /// uploaded (see the module doc). The caller has found it missing (HEAD).
    pub fn push_blob(&self, blob: &BlobPush) -> Result<Pushed> {
        let chunk = blob.chunk_size.filter(|&c| c < blob.size);
        let target = Target::Upload {
            digest: blob.digest,
            size: blob.size,
            chunk,
        };
        let mut file: Option<File> = None;
        self.run_with(Retrier::restartable(self.policy), target, |retrier| {
            if retrier.attempts() > 1 && self.head_blob(blob.digest)? {
                return Ok(Pushed::Present);
            }
            (blob.progress)(0);
            let (location, min_chunk) = match self.start_upload(blob, target)? {
                Start::Mounted => return Ok(Pushed::Mounted),
                Start::Session {
                    location,
                    min_chunk,
                } => (location, min_chunk),
            };
            let file = match &mut file {
                Some(file) => file,
                None => file.insert((blob.open)().map_err(AttemptError::Final)?),
            };
            match chunk {
                Some(chunk) => {
                    let chunk = chunk.max(min_chunk).max(1);
                    self.upload_chunks(blob, file, location, chunk, target, retrier)?;
                }
                None => self.upload_whole(blob, file, &location, target)?,
            }
            Ok(Pushed::Uploaded)
        })
    }

    /// POST for an upload session, asking for a mount first when there is a source.
    fn start_upload(&self, blob: &BlobPush, target: Target) -> Result<Start, AttemptError> {
        let uploads = format!(
            "{}/v2/{}/blobs/uploads/",
            self.origin(),
            self.reference.repository
        );
        let refused = |from: &str| {
            self.mounts_refused
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|r| r == from)
        };
        if let Some(from) = blob.mount_from.filter(|from| !refused(from)) {
            let url = format!("{uploads}?mount={}&from={from}", blob.digest);
            let response = self.exchange(Method::POST, &url, &[], Payload::Bytes(&[]), target)?;
            match response.status().as_u16() {
                201 => return Ok(Start::Mounted),
                202 => return self.session(&response),
                // Not allowed to read the source, or it is gone: upload instead.
                _ => self
                    .mounts_refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(from.to_owned()),
            }
        }
        let response = self.exchange(Method::POST, &uploads, &[], Payload::Bytes(&[]), target)?;
        if response.status() == StatusCode::ACCEPTED {
            self.session(&response)
        } else {
            Err(self.failed(response, target))
        }
    }

    /// The session a 202 opened.
    fn session(&self, response: &Response<Body>) -> Result<Start, AttemptError> {
        let min_chunk = header(response.headers(), "oci-chunk-min-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Start::Session {
            location: self.location(response)?,
            min_chunk,
        })
    }

    /// The whole blob in one PUT.
    fn upload_whole(
        &self,
        blob: &BlobPush,
        file: &File,
        location: &str,
        target: Target,
    ) -> Result<(), AttemptError> {
        let url = with_digest(location, blob.digest);
        let payload = Payload::File {
            file,
            offset: 0,
            len: blob.size,
            progress: blob.progress,
        };
        let headers = [("Content-Type", OCTET_STREAM.to_owned())];
        let response = self.exchange(Method::PUT, &url, &headers, payload, target)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.failed(response, target))
        }
    }

    /// One PATCH per chunk, each to the location the last answer gave, then the PUT that
    /// closes the session.
    fn upload_chunks(
        &self,
        blob: &BlobPush,
        file: &File,
        mut location: String,
        chunk: u64,
        target: Target,
        retrier: &mut Retrier,
    ) -> Result<(), AttemptError> {
        let mut offset = 0;
        while offset < blob.size {
            let len = chunk.min(blob.size - offset);
            let end = offset + len - 1;
            let headers = [
                ("Content-Type", OCTET_STREAM.to_owned()),
                ("Content-Range", format!("{offset}-{end}")),
            ];
            let payload = Payload::File {
                file,
                offset,
                len,
                progress: blob.progress,
            };
            let response = self.exchange(Method::PATCH, &location, &headers, payload, target)?;
            if !response.status().is_success() {
                return Err(self.failed(response, target));
            }
            // The registry says how much it holds (`Range: 0-<last byte>`): all that was
            // sent, or the session is not what box thinks it is.
            if let Some(held) = header(response.headers(), "range")
                .and_then(|r| r.rsplit('-').next()?.trim().parse::<u64>().ok())
                && held != end
            {
                return Err(AttemptError::Final(anyhow!(
                    "registry {} holds bytes 0-{held} of blob {} after box sent bytes {offset}-{end}",
                    self.reference.registry,
                    blob.digest
                )));
            }
            location = self.location(&response)?;
            offset += len;
            retrier.progressed();
        }
        let url = with_digest(&location, blob.digest);
        let response = self.exchange(Method::PUT, &url, &[], Payload::Bytes(&[]), target)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self.failed(response, target))
        }
    }

    /// Put the manifest `bytes` (of `media_type`) under `tag_or_digest`. Sending the same
    /// bytes under the same name again changes nothing, so a failed put is retried whole.
    pub fn put_manifest(&self, tag_or_digest: &str, bytes: &[u8], media_type: &str) -> Result<()> {
        let url = format!(
            "{}/v2/{}/manifests/{tag_or_digest}",
            self.origin(),
            self.reference.repository
        );
        let target = Target::Manifest(tag_or_digest);
        let digest = Digest::of(bytes);
        let headers = [("Content-Type", media_type.to_owned())];
        self.run_with(Retrier::restartable(self.policy), target, |_| {
            let response =
                self.exchange(Method::PUT, &url, &headers, Payload::Bytes(bytes), target)?;
            if !response.status().is_success() {
                return Err(self.failed(response, target));
            }
            match content_digest(response.headers()) {
                Some(stored) if stored != digest => Err(AttemptError::Final(failure(
                    format!(
                        "registry {} stored the manifest of {} as {stored}, not as the {digest} box sent",
                        self.reference.registry,
                        self.reference.name()
                    ),
                    "the registry rewrote the manifest; pull the image from it to see what it keeps",
                ))),
                _ => Ok(()),
            }
        })
    }

    /// The absolute URL of an answer's `Location` (registries give a path or a URL).
    fn location(&self, response: &Response<Body>) -> Result<String, AttemptError> {
        let Some(location) = header(response.headers(), "location") else {
            return Err(AttemptError::Final(anyhow!(
                "registry {} opened an upload to {} without saying where to send it (no Location)",
                self.reference.registry,
                self.reference.name()
            )));
        };
        Ok(
            if location.starts_with("http://") || location.starts_with("https://") {
                location
            } else if location.starts_with('/') {
                format!("{}{location}", self.origin())
            } else {
                format!("{}/{location}", self.origin())
            },
        )
    }
}

/// A session's location with the blob's digest added to its query (the PUT that closes it).
fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

/// `Docker-Content-Digest`, when present and a sha256 digest.
fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    header(headers, "docker-content-digest").and_then(|d| Digest::parse(d.trim()).ok())
}

/// No credentials, and the registry wants some to push.
pub(super) fn needs_credentials(reference: &Reference) -> anyhow::Error {
    failure(
        format!(
            "{} requires authentication to push to {}",
            reference.registry,
            reference.name()
        ),
        format!(
            "log in with `podman login {0}` or `docker login {0}` (box reads the credentials they store) as a \
             user who may push to {1}",
            reference.registry, reference.repository
        ),
    )
}

/// Credentials refused, or not allowed to push here.
pub(super) fn refused(reference: &Reference, credentials: &Credentials) -> anyhow::Error {
    failure(
        format!(
            "{} refused to let user `{}` (credentials from {}) push to {}",
            reference.registry,
            credentials.username,
            credentials.source,
            reference.name()
        ),
        format!(
            "check that `{}` may push to {} (log in again with `podman login {}` if the password changed)",
            credentials.username, reference.repository, reference.registry
        ),
    )
}

/// The message and hint for an error status while pushing, with the registry's own
/// explanation (`message`).
pub(super) fn status_error(
    reference: &Reference,
    status: StatusCode,
    message: Option<&str>,
    target: Target,
) -> (String, String) {
    let registry = &reference.registry;
    let name = reference.name();
    let repository = &reference.repository;
    let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
    let what = match target {
        Target::Manifest(at) if at.contains(':') => format!("the manifest {name}@{at}"),
        Target::Manifest(tag) => format!("the manifest {name}:{tag}"),
        Target::Blob(digest) => format!("blob {digest} for {name}"),
        Target::Upload { digest, size, .. } => format!(
            "blob {digest} ({}) for {name}",
            crate::ui::progress::human_bytes(size)
        ),
        Target::Token => format!("a token for {name}"),
    };
    match status.as_u16() {
        403 => (
            format!("{registry} denied pushing to {name} ({status}{detail})"),
            format!(
                "check that your account may push to {repository}: log in with `podman login {registry}` as a user \
                 who may (on Docker Hub, the name starts with your user or one of your organisations)"
            ),
        ),
        404 => (
            format!("{registry} has no repository {name} to push to ({status}{detail})"),
            "check the repository name; some registries (quay.io, Harbor, GitLab) push only to repositories or \
             projects created beforehand"
                .to_owned(),
        ),
        413 => match target {
            Target::Upload {
                chunk: Some(chunk), ..
            } => (
                format!(
                    "{registry} refused a chunk of {} of {what} as too large ({status}): a limit on request \
                     bodies, often a proxy's in front of the registry (nginx's client_max_body_size)",
                    crate::ui::progress::human_bytes(chunk)
                ),
                "push with a smaller --chunk-size, under the limit, or raise the limit".to_owned(),
            ),
            _ => (
                format!(
                    "{registry} refused {what} as too large ({status}): a limit on request bodies, often a \
                     proxy's in front of the registry (nginx's client_max_body_size)"
                ),
                "push in chunks under the limit (`box push --chunk-size 8M ...`), or raise the limit".to_owned(),
            ),
        },
        500..=599 => (
            format!("registry {registry} failed while receiving {what} ({status}{detail})"),
            "the registry has a problem; try again later (what was sent stays there, and the next push \
             skips it)"
                .to_owned(),
        ),
        _ => (
            format!("{registry} refused {what} ({status}{detail})"),
            "check the destination reference; the registry may not accept this image".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_joins_the_session_query() {
        let digest = Digest::of(b"x");
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u1", &digest),
            format!("http://r/v2/a/blobs/uploads/u1?digest={digest}")
        );
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u1?_state=s", &digest),
            format!("http://r/v2/a/blobs/uploads/u1?_state=s&digest={digest}")
        );
    }

    #[test]
    fn push_errors_say_what_to_do() {
        let reference = Reference::parse("reg.example:5000/team/app:1").unwrap();
        let digest = Digest::of(b"layer");
        let upload = |chunk| Target::Upload {
            digest: &digest,
            size: 1 << 30,
            chunk,
        };
        let says = |code: u16, target| {
            let (message, hint) = status_error(
                &reference,
                StatusCode::from_u16(code).unwrap(),
                None,
                target,
            );
            format!("{message} / {hint}")
        };
        for code in [403, 404, 413, 500, 502] {
            let text = says(code, upload(None));
            assert!(
                text.contains("reg.example:5000") && text.contains("team/app"),
                "{code}: {text}"
            );
        }
        assert!(says(403, upload(None)).contains("podman login"));
        assert!(says(404, upload(None)).contains("repository name"));
        let too_large = says(413, upload(None));
        assert!(
            too_large.contains("client_max_body_size") && too_large.contains("--chunk-size"),
            "{too_large}"
        );
        assert!(says(413, upload(Some(8 << 20))).contains("smaller --chunk-size"));
        assert!(says(503, Target::Manifest("1")).contains("try again"));
        let credentials = Credentials {
            username: "me".into(),
            password: "secret".into(),
            source: "/home/me/.docker/config.json".into(),
        };
        let text = crate::error::message(&refused(&reference, &credentials));
        assert!(text.contains("`me`") && !text.contains("secret"), "{text}");
        let text = crate::error::message(&needs_credentials(&reference));
        assert!(text.contains("requires authentication to push"), "{text}");
    }
}
