//! `FaultProxy`: a small HTTP/1.1 proxy on loopback in front of a real registry, which
//! counts requests and injects faults. The registry behind it is real; the proxy only
//! breaks things on purpose.
//!
//! Invariants:
//! - One request per connection: every response the proxy sends carries
//!   `Connection: close` and the connection is closed after it, so a keep-alive client
//!   never waits on a half-understood connection. Upstream requests are sent with
//!   `Connection: close` too and read to EOF.
//! - The Host header is forwarded unchanged, so the registry builds URLs (upload
//!   locations) that point back at the proxy.
//! - Faults match a method (or any) and a substring of the path (the request target,
//!   query included), and may be limited to the first N matching requests.
//! - `Expect: 100-continue` is answered by the proxy (the registry gets whole requests),
//!   and a body limit is judged by `Content-Length` before the body, as nginx does.
//! - It can play a CDN: a [`FaultKind::Redirect`] answers 307 to another server (another
//!   proxy, on another port or another address of this machine), and every request is
//!   recorded with whether it carried credentials.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to do to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer 500 with a registry-style JSON error body, without asking the registry.
    ServerError,
    /// Answer 404 with a registry-style JSON error body (BLOB_UNKNOWN / MANIFEST_UNKNOWN).
    NotFound,
    /// Flip one byte in the middle of the body (a digest mismatch).
    CorruptByte,
    /// Send only the first half of the body, with a Content-Length that says so.
    Truncate,
    /// Send the headers and half the body, then hang until the proxy is dropped.
    Stall,
    /// Send the headers (full Content-Length) and half the body, then close.
    CloseMidBody,
    /// Forward the request without its `Authorization` header, so the registry answers
    /// with its own 401 and challenge, as it does when a token has expired mid-pull.
    DropAuthorization,
    /// Answer this status (403, 404, 503, ...) with a registry-style JSON error body,
    /// without asking the registry.
    Refuse(u16),
    /// Answer 413 with nginx's page, as a proxy with `client_max_body_size` of this many
    /// bytes does, to a request whose body is larger; smaller ones pass.
    BodyLimit(usize),
    /// Read the request, then send nothing until the proxy is dropped (an upload the
    /// registry never acknowledges, to kill the client meanwhile).
    Hold,
    /// Answer `307 Temporary Redirect` to the fault's `location` followed by the request's
    /// path, without asking the registry (a registry sending blobs to its CDN).
    Redirect,
}

/// A fault rule.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<String>,
    pub path_contains: String,
    pub kind: FaultKind,
    /// Apply to this many matching requests, then pass them through (None: always).
    pub times: Option<usize>,
    /// For [`FaultKind::Redirect`]: `scheme://host:port` to send the client to.
    pub location: Option<String>,
}

impl Fault {
    /// A fault for every request (any method) whose path contains `path_contains`.
    pub fn new(kind: FaultKind, path_contains: &str) -> Fault {
        Fault {
            method: None,
            path_contains: path_contains.to_owned(),
            kind,
            times: None,
            location: None,
        }
    }

    /// A redirect of every request whose path contains `path_contains` to the same path
    /// at `location` (`http://127.0.0.1:PORT`).
    pub fn redirect(path_contains: &str, location: &str) -> Fault {
        Fault {
            location: Some(location.to_owned()),
            ..Fault::new(FaultKind::Redirect, path_contains)
        }
    }

    /// Only for requests with this method (`GET`, `HEAD`).
    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_owned());
        self
    }

    /// Only for the first `n` matching requests.
    pub fn times(mut self, n: usize) -> Fault {
        self.times = Some(n);
        self
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The fault applied, if any.
    pub fault: Option<FaultKind>,
    /// Whether the request carried an `Authorization` header.
    pub authorization: bool,
}

#[derive(Debug, Default)]
struct State {
    faults: Vec<(Fault, usize)>,
    seen: Vec<Seen>,
}

/// A running proxy; it stops accepting when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// `127.0.0.1:PORT`, to use as the registry host in references.
    pub host: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    stalled: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// A proxy in front of the registry at `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        FaultProxy::start_on("127.0.0.1", upstream)
    }

    /// A proxy listening on `address` (`0.0.0.0`: every address of this machine, also
    /// those that are not loopback); its `host` is then `address:PORT`.
    pub fn start_on(address: &str, upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind(format!("{address}:0")).expect("binding the fault proxy");
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_owned();
        {
            let (state, stop, stalled) = (state.clone(), stop.clone(), stalled.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, stop, stalled, upstream) = (
                        state.clone(),
                        stop.clone(),
                        stalled.clone(),
                        upstream.clone(),
                    );
                    std::thread::spawn(move || {
                        let _ = handle(conn, &upstream, &state, &stop, &stalled);
                    });
                }
            });
        }
        FaultProxy {
            host,
            state,
            stop,
            stalled,
        }
    }

    /// `127.0.0.1:PORT/<repo>:<tag>` through the proxy.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.host)
    }

    /// Add a fault rule.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push((fault, 0));
    }

    /// Remove every fault rule.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Forget the requests seen so far.
    pub fn reset_counts(&self) {
        self.lock().seen.clear();
    }

    /// Every request seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// How many requests with `method` (None: any) had a path containing `path_contains`.
    pub fn count(&self, method: Option<&str>, path_contains: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| method.is_none_or(|m| s.method == m) && s.path.contains(path_contains))
            .count()
    }

    /// Requests for manifests (GET or HEAD).
    pub fn manifest_requests(&self) -> usize {
        self.count(None, "/manifests/")
    }

    /// GET requests for blobs whose digest is `digest`.
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.count(Some("GET"), &format!("/blobs/{digest}"))
    }

    /// GET requests for any blob.
    pub fn all_blob_gets(&self) -> usize {
        self.count(Some("GET"), "/blobs/sha256:")
    }

    /// Wait until a [`FaultKind::Stall`] or [`FaultKind::Hold`] fault has started holding
    /// a request.
    pub fn wait_for_stall(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stalled.load(Ordering::SeqCst) > 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A readable list of the requests seen, for failure messages.
    pub fn log(&self) -> String {
        self.seen()
            .iter()
            .map(|s| {
                let auth = if s.authorization {
                    " (Authorization)"
                } else {
                    ""
                };
                format!("{} {} {:?}{auth}\n", s.method, s.path, s.fault)
            })
            .collect()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.host.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.host);
    }
}

struct Request {
    method: String,
    path: String,
    head: Vec<u8>,
    body: Vec<u8>,
    content_length: usize,
    /// `Expect: 100-continue`: the client waits for a go-ahead before its body.
    expect_continue: bool,
    /// Whether the request carried an `Authorization` header.
    authorization: bool,
}

/// The request line and headers; the body is read by the caller ([`Request::body`] is
/// empty), once it has decided whether to let it come.
fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut head = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    let mut content_length = 0usize;
    let mut expect_continue = false;
    let mut authorization = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        let trimmed = header.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').unwrap_or((trimmed, ""));
        let lower = name.trim().to_ascii_lowercase();
        if lower == "content-length" {
            content_length = value.trim().parse().unwrap_or(0);
        }
        authorization |= lower == "authorization";
        // Hop-by-hop headers are replaced by our own Connection: close. The proxy answers
        // `Expect` itself: the registry gets the whole request at once.
        if lower == "expect" {
            expect_continue = value.trim().eq_ignore_ascii_case("100-continue");
            continue;
        }
        if lower == "connection" || lower == "keep-alive" || lower == "proxy-connection" {
            continue;
        }
        head.extend_from_slice(trimmed.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(Some(Request {
        method,
        path,
        head,
        body: Vec::new(),
        content_length,
        expect_continue,
        authorization,
    }))
}

/// Split an HTTP response into its head (without the final blank line) and body.
fn split_response(raw: &[u8]) -> (String, Vec<u8>) {
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (
            String::from_utf8_lossy(&raw[..i]).into_owned(),
            raw[i + 4..].to_vec(),
        ),
        None => (String::from_utf8_lossy(raw).into_owned(), Vec::new()),
    }
}

/// The response head with Connection: close and, if given, a new Content-Length.
fn rewrite_head(head: &str, content_length: Option<usize>) -> Vec<u8> {
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        let lower = line.to_ascii_lowercase();
        if i > 0
            && (lower.starts_with("connection:")
                || lower.starts_with("keep-alive:")
                || (content_length.is_some() && lower.starts_with("content-length:")))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if let Some(len) = content_length {
        out.push_str(&format!("Content-Length: {len}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn error_response(status: u16, reason: &str, code: &str, message: &str) -> Vec<u8> {
    let body = format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#);
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Docker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn handle(
    conn: TcpStream,
    upstream: &str,
    state: &Mutex<State>,
    stop: &AtomicBool,
    stalled: &AtomicUsize,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let Some(mut request) = read_request(&mut reader)? else {
        return Ok(());
    };
    let mut conn = conn;
    let (fault, location) = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let mut chosen = None;
        for (fault, used) in state.faults.iter_mut() {
            let matches = fault.method.as_deref().is_none_or(|m| m == request.method)
                && request.path.contains(&fault.path_contains)
                && fault.times.is_none_or(|n| *used < n);
            if matches {
                *used += 1;
                chosen = Some((fault.kind, fault.location.clone()));
                break;
            }
        }
        state.seen.push(Seen {
            method: request.method.clone(),
            path: request.path.clone(),
            fault: chosen.as_ref().map(|(kind, _)| *kind),
            authorization: request.authorization,
        });
        match chosen {
            Some((kind, location)) => (Some(kind), location),
            None => (None, None),
        }
    };
    let fault = match fault {
        // Within the limit: not a fault after all.
        Some(FaultKind::BodyLimit(limit)) if request.content_length <= limit => None,
        other => other,
    };
    if let Some(FaultKind::BodyLimit(_)) = fault {
        // As nginx: refused by its Content-Length, before the body (which a client that
        // did not wait for a go-ahead sends anyway: read and dropped after the answer).
        let body = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n\
                    <body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n\
                    <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
        write!(
            conn,
            "HTTP/1.1 413 Request Entity Too Large\r\nServer: nginx\r\n\
             Content-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        if !request.expect_continue {
            std::io::copy(
                &mut (&mut reader).take(request.content_length as u64),
                &mut std::io::sink(),
            )?;
        }
        return conn.shutdown(Shutdown::Both);
    }
    if request.expect_continue {
        conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    request.body = vec![0; request.content_length];
    reader.read_exact(&mut request.body)?;
    match fault {
        Some(FaultKind::Refuse(status)) => {
            let (reason, code) = match status {
                401 => ("Unauthorized", "UNAUTHORIZED"),
                403 => ("Forbidden", "DENIED"),
                404 => ("Not Found", "NAME_UNKNOWN"),
                _ => ("Refused", "UNKNOWN"),
            };
            conn.write_all(&error_response(
                status,
                reason,
                code,
                &format!("injected: {reason}"),
            ))?;
            return conn.shutdown(Shutdown::Both);
        }
        Some(FaultKind::Hold) => {
            stalled.fetch_add(1, Ordering::SeqCst);
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return conn.shutdown(Shutdown::Both);
        }
        Some(FaultKind::Redirect) => {
            let location = format!("{}{}", location.unwrap_or_default(), request.path);
            conn.write_all(
                format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )?;
            return conn.shutdown(Shutdown::Both);
        }
        Some(FaultKind::ServerError) => {
            conn.write_all(&error_response(
                500,
                "Internal Server Error",
                "UNKNOWN",
                "injected failure",
            ))?;
            return conn.shutdown(Shutdown::Both);
        }
        Some(FaultKind::NotFound) => {
            let code = if request.path.contains("/manifests/") {
                "MANIFEST_UNKNOWN"
            } else {
                "BLOB_UNKNOWN"
            };
            conn.write_all(&error_response(
                404,
                "Not Found",
                code,
                "injected: not found",
            ))?;
            return conn.shutdown(Shutdown::Both);
        }
        _ => {}
    }

    let mut up = TcpStream::connect(upstream)?;
    if fault == Some(FaultKind::DropAuthorization) {
        let head = String::from_utf8_lossy(&request.head);
        let kept: String = head
            .split_inclusive("\r\n")
            .filter(|line| !line.to_ascii_lowercase().starts_with("authorization:"))
            .collect();
        up.write_all(kept.as_bytes())?;
    } else {
        up.write_all(&request.head)?;
    }
    up.write_all(&request.body)?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    let (head, mut body) = split_response(&raw);
    let has_body = request.method != "HEAD" && !body.is_empty();
    match fault {
        Some(FaultKind::CorruptByte) if has_body => {
            let i = body.len() / 2;
            body[i] ^= 0x5a;
            conn.write_all(&rewrite_head(&head, None))?;
            conn.write_all(&body)?;
        }
        Some(FaultKind::Truncate) if has_body => {
            body.truncate(body.len() / 2);
            conn.write_all(&rewrite_head(&head, Some(body.len())))?;
            conn.write_all(&body)?;
        }
        Some(FaultKind::CloseMidBody) if has_body => {
            conn.write_all(&rewrite_head(&head, None))?;
            conn.write_all(&body[..body.len() / 2])?;
            conn.flush()?;
        }
        Some(FaultKind::Stall) if has_body => {
            conn.write_all(&rewrite_head(&head, None))?;
            conn.write_all(&body[..body.len() / 2])?;
            conn.flush()?;
            stalled.fetch_add(1, Ordering::SeqCst);
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        _ => {
            conn.write_all(&rewrite_head(&head, None))?;
            conn.write_all(&body)?;
        }
    }
    conn.shutdown(Shutdown::Both)
}
