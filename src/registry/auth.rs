//! Registry credentials and `WWW-Authenticate` challenges.
//!
//! Credentials come from the files docker and podman users already have, in podman's
//! order (the first file with an entry for the registry wins):
//! 1. `$REGISTRY_AUTH_FILE`
//! 2. `$XDG_RUNTIME_DIR/containers/auth.json` (what `podman login` writes)
//! 3. `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/...`)
//! 4. `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` (what `docker login` writes)
//!
//! Within one file: `credHelpers[host]` first, then the `auths` entry whose key is the
//! longest match (`host`, `host:port`, `https://host/v1/`, podman's `host/namespace`; Docker
//! Hub's many spellings are one), then `credsStore`. A credential helper is run as
//! `docker-credential-<name> get` with the server on stdin, per docker's protocol; a missing
//! helper binary is an error naming it (docker fails the same way).
//!
//! Not supported: `identitytoken` (an OAuth refresh token): such entries are skipped, with
//! a warning, unless they also carry a username and password.
//!
//! The file list is a value ([`AuthSources`]), so tests pass their own files instead of
//! changing the process environment.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use serde::Deserialize;

use crate::error::{HintExt, failure};
use crate::registry::reference::DOCKER_HUB;
use crate::ui::report::warn;

/// A username and password (or token) for one registry, and where they came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// The file (and helper, if any) they were read from, for error messages.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `Basic <base64(user:pass)>`.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Where to look for credentials.
#[derive(Debug, Clone, Default)]
pub struct AuthSources {
    /// Auth files in priority order; missing files are skipped.
    pub files: Vec<PathBuf>,
    /// `PATH` for finding `docker-credential-*` helpers (`None`: the process's own).
    pub helper_path: Option<OsString>,
}

impl AuthSources {
    /// The standard files, from the environment.
    pub fn from_env() -> AuthSources {
        let var = |name: &str| crate::sys::env::non_empty(name).map(PathBuf::from);
        let home = var("HOME");
        let mut files = Vec::new();
        files.extend(var("REGISTRY_AUTH_FILE"));
        if let Some(runtime) = var("XDG_RUNTIME_DIR") {
            files.push(runtime.join("containers/auth.json"));
        }
        if let Some(config) =
            var("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
        {
            files.push(config.join("containers/auth.json"));
        }
        if let Some(docker) =
            var("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker")))
        {
            files.push(docker.join("config.json"));
        }
        AuthSources {
            files,
            helper_path: None,
        }
    }

    /// The files that exist, each with why it cannot be read as a credentials file, if
    /// it cannot (what a pull would fail on); for `box doctor`.
    pub fn check_files(&self) -> Vec<(PathBuf, Option<String>)> {
        let mut out = Vec::new();
        for file in &self.files {
            let problem = match std::fs::read_to_string(file) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => Some(format!("reading it: {err}")),
                Ok(text) if text.trim().is_empty() => None,
                Ok(text) => serde_json::from_str::<AuthFile>(&text)
                    .err()
                    .map(|err| err.to_string()),
            };
            out.push((file.clone(), problem));
        }
        out
    }

    /// Credentials for `registry` (`host[:port]`, Docker Hub as `docker.io`) and
    /// `repository`, or `None` when no file has any.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credentials>> {
        for file in &self.files {
            let text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("reading credentials from {}", file.display()));
                }
            };
            // An empty file (as `podman logout --all` can leave) holds no entries.
            if text.trim().is_empty() {
                continue;
            }
            let parsed: AuthFile = serde_json::from_str(&text)
                .with_context(|| format!("invalid credentials file {}", file.display()))
                .hint(
                    "fix or remove the file, or log in again with `podman login` / `docker login`",
                )?;
            if let Some(found) = self.lookup_in(&parsed, file, registry, repository)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn lookup_in(
        &self,
        parsed: &AuthFile,
        file: &Path,
        registry: &str,
        repository: &str,
    ) -> Result<Option<Credentials>> {
        let registry = normalize_registry(registry);
        if let Some(helper) = parsed
            .cred_helpers
            .iter()
            .find(|(key, _)| normalize_key(key).0 == registry)
            .map(|(_, helper)| helper)
        {
            return self.run_helper(helper, file, &registry);
        }

        // The longest key that is the registry or a namespace of it above the repository.
        let wanted = format!("{registry}/{repository}");
        let mut best: Option<(usize, &AuthEntry)> = None;
        for (key, entry) in &parsed.auths {
            let (host, namespace) = normalize_key(key);
            let prefix = match namespace {
                Some(ns) => format!("{host}/{ns}"),
                None => host,
            };
            let matches =
                prefix == registry || wanted == prefix || wanted.starts_with(&format!("{prefix}/"));
            if matches && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), entry));
            }
        }
        if let Some((_, entry)) = best
            && let Some(found) = entry.credentials(file, &registry)?
        {
            return Ok(Some(found));
        }

        match &parsed.creds_store {
            Some(store) if !store.is_empty() => self.run_helper(store, file, &registry),
            _ => Ok(None),
        }
    }

    /// Run `docker-credential-<name> get` for `registry`.
    fn run_helper(&self, name: &str, file: &Path, registry: &str) -> Result<Option<Credentials>> {
        let program = format!("docker-credential-{name}");
        // Docker stores Hub credentials under its v1 URL; helpers expect that spelling.
        let server = if registry == DOCKER_HUB {
            "https://index.docker.io/v1/"
        } else {
            registry
        };
        let mut command = Command::new(&program);
        command
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = &self.helper_path {
            command.env("PATH", path);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(failure(
                    format!(
                        "credential helper `{program}` (configured in {}) is not installed",
                        file.display()
                    ),
                    format!(
                        "install {program}, or remove it from {} and log in again",
                        file.display()
                    ),
                ));
            }
            Err(err) => {
                return Err(err).with_context(|| format!("running credential helper {program}"));
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading its input is answered by its status.
            let _ = stdin.write_all(server.as_bytes());
        }
        let output = child
            .wait_with_output()
            .with_context(|| format!("running credential helper {program}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            // The protocol's way of saying "nothing stored for this server": the helper
            // exits non-zero and prints this text (docker-credential-helpers'
            // "credentials not found in native keychain"). It is the helper's answer, in
            // the protocol's own words, not an error of box's classified by its text; the
            // protocol has no other signal for it.
            if stdout.contains("credentials not found") {
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(failure(
                format!(
                    "credential helper {program} failed for {registry} ({}): {}",
                    output.status,
                    format!("{} {}", stdout.trim(), stderr.trim()).trim()
                ),
                format!(
                    "check the helper, or log in again (helper configured in {})",
                    file.display()
                ),
            ));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct HelperAnswer {
            username: String,
            secret: String,
        }
        let answer: HelperAnswer = serde_json::from_str(&stdout).with_context(|| {
            format!("credential helper {program} answered something that is not its JSON")
        })?;
        if answer.username == "<token>" {
            warn(format!(
                "{program} holds an identity token for {registry}, which box does not support; pulling anonymously"
            ));
            return Ok(None);
        }
        Ok(Some(Credentials {
            username: answer.username,
            password: answer.secret,
            source: format!("{} (via {program})", file.display()),
        }))
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl AuthEntry {
    fn credentials(&self, file: &Path, registry: &str) -> Result<Option<Credentials>> {
        let source = file.display().to_string();
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            let Some((username, password)) = decoded.as_deref().and_then(|d| d.split_once(':'))
            else {
                return Err(failure(
                    format!(
                        "the credentials for {registry} in {source} are malformed (`auth` is not base64 of user:password)"
                    ),
                    format!(
                        "log in again with `podman login {registry}` or `docker login {registry}`"
                    ),
                ));
            };
            return Ok(Some(Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
                source,
            }));
        }
        if let (Some(username), Some(password)) = (&self.username, &self.password)
            && !username.is_empty()
        {
            return Ok(Some(Credentials {
                username: username.clone(),
                password: password.clone(),
                source,
            }));
        }
        if self.identitytoken.as_deref().is_some_and(|t| !t.is_empty()) {
            warn(format!(
                "{source} holds an identity token for {registry}, which box does not support; pulling anonymously"
            ));
        }
        Ok(None)
    }
}

/// Docker Hub's spellings are one registry.
fn normalize_registry(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        other => other.to_owned(),
    }
}

/// A key of `auths`/`credHelpers` as (registry, namespace): URLs lose their scheme and
/// path (`https://index.docker.io/v1/` is Docker Hub); plain keys keep a namespace.
fn normalize_key(key: &str) -> (String, Option<String>) {
    let key = key.trim().trim_end_matches('/');
    if let Some(rest) = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        let host = rest.split('/').next().unwrap_or_default();
        return (normalize_registry(host), None);
    }
    match key.split_once('/') {
        Some((host, namespace)) => (normalize_registry(host), Some(namespace.to_owned())),
        None => (normalize_registry(key), None),
    }
}

/// One challenge of a `WWW-Authenticate` header: `Bearer realm="…",service="…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased: `bearer`, `basic`.
    pub scheme: String,
    /// Parameter names lower-cased, values unquoted.
    pub params: BTreeMap<String, String>,
}

/// Parse a `WWW-Authenticate` value (RFC 9110 §11.6.1): one or more challenges, each a
/// scheme followed by comma-separated `name=value` or `name="quoted, \"value\""` pairs.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut challenges: Vec<Challenge> = Vec::new();
    let chars: Vec<char> = header.chars().collect();
    let mut i = 0;
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~/".contains(c);
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && is_token(chars[i]) {
            i += 1;
        }
        if i == start {
            // Not a token: skip the stray character.
            i += 1;
            continue;
        }
        let word: String = chars[start..i].iter().collect();
        // `name=` makes this a parameter of the current challenge, else a new scheme.
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j < chars.len() && chars[j] == '=' && !challenges.is_empty() {
            i = j + 1;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            let mut value = String::new();
            if i < chars.len() && chars[i] == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    value.push(chars[i]);
                    i += 1;
                }
                i += 1; // the closing quote
            } else {
                while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                    value.push(chars[i]);
                    i += 1;
                }
            }
            if let Some(last) = challenges.last_mut() {
                last.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            challenges.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    challenges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &Path, files: &[(&str, &str)]) -> AuthSources {
        let mut paths = Vec::new();
        for (name, content) in files {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            paths.push(path);
        }
        // A missing file in the list is fine.
        paths.insert(0, dir.join("missing.json"));
        AuthSources {
            files: paths,
            helper_path: Some(dir.as_os_str().to_owned()),
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn challenges_with_quotes_commas_and_several_schemes() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/debian:pull,push");

        let c = parse_challenges(
            r#"Basic realm="Registry Realm", Bearer Realm = "a\"b, c" , error=invalid_token"#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "Registry Realm");
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].params["realm"], "a\"b, c");
        assert_eq!(c[1].params["error"], "invalid_token");

        assert_eq!(parse_challenges("Basic").len(), 1);
        assert!(parse_challenges("").is_empty());
    }

    #[test]
    fn auth_files_in_order_with_key_forms() {
        let dir = tempfile::tempdir().unwrap();
        let first = format!(
            r#"{{"auths": {{"quay.io/org": {{"auth": "{}"}}, "quay.io": {{"auth": "{}"}}}}}}"#,
            b64("org:1"),
            b64("any:2")
        );
        let second = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "reg.lan:5000": {{"username": "u", "password": "p:w"}},
                "quay.io": {{"auth": "{}"}},
                "ghcr.io": {{}},
                "tok.io": {{"identitytoken": "xyz"}}
            }}}}"#,
            b64("hub:3"),
            b64("shadowed:4")
        );
        let s = sources(dir.path(), &[("a.json", &first), ("b.json", &second)]);

        let c = s.lookup("quay.io", "org/img").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("org", "1"));
        assert!(c.source.ends_with("a.json"));
        // Longest prefix: `quay.io/org` does not match `quay.io/organic`.
        let c = s.lookup("quay.io", "organic/img").unwrap().unwrap();
        assert_eq!(c.username, "any");
        let c = s.lookup("docker.io", "library/debian").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("hub", "3"));
        assert!(c.source.ends_with("b.json"));
        let c = s.lookup("reg.lan:5000", "x").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:w"));
        assert_eq!(c.basic_header(), format!("Basic {}", b64("u:p:w")));
        assert!(s.lookup("reg.lan", "x").unwrap().is_none());
        assert!(s.lookup("ghcr.io", "x").unwrap().is_none());
        assert!(s.lookup("tok.io", "x").unwrap().is_none());
        assert!(s.lookup("other.io", "x").unwrap().is_none());
        assert!(!format!("{c:?}").contains("p:w"));
    }

    #[test]
    fn malformed_files_and_entries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path(), &[("bad.json", "{not json")]);
        let err = s.lookup("x.io", "y").unwrap_err();
        assert!(crate::error::message(&err).contains("bad.json"));
        let s = sources(
            dir.path(),
            &[("bad2.json", r#"{"auths": {"x.io": {"auth": "!!!"}}}"#)],
        );
        let err = s.lookup("x.io", "y").unwrap_err();
        assert!(crate::error::message(&err).contains("malformed"));
    }

    #[test]
    fn credential_helpers() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\ncase \"$server\" in\n\
             helped.io) echo '{\"ServerURL\":\"helped.io\",\"Username\":\"hu\",\"Secret\":\"hs\"}';;\n\
             https://index.docker.io/v1/) echo '{\"Username\":\"hub\",\"Secret\":\"hubs\"}';;\n\
             *) echo 'credentials not found in native keychain'; exit 1;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = r#"{"auths": {"plain.io": {}}, "credHelpers": {"helped.io": "fake", "missing.io": "nope"}, "credsStore": "fake"}"#;
        let s = sources(dir.path(), &[("config.json", config)]);

        let c = s.lookup("helped.io", "x").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("hu", "hs"));
        assert!(c.source.contains("docker-credential-fake"));
        let c = s.lookup("docker.io", "library/x").unwrap().unwrap();
        assert_eq!(c.username, "hub");
        // credsStore says "not found": no credentials, no error.
        assert!(s.lookup("plain.io", "x").unwrap().is_none());
        let err = s.lookup("missing.io", "x").unwrap_err();
        let msg = crate::error::message(&err);
        assert!(
            msg.contains("docker-credential-nope") && msg.contains("not installed"),
            "{msg}"
        );
    }
}
