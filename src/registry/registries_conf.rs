//! The containers registries configuration, read as podman reads it
//! (containers-registries.conf(5), containers-registries.conf.d(5)): which registry a
//! name really comes from (`location` rewrites, mirrors), which registries are
//! `insecure` or `blocked`, and what a short name (`fedora`, `tools/img`) means
//! (`[aliases]`, `unqualified-search-registries`, `short-name-mode`).
//!
//! Files, in the order they are read (a later file overrides what an earlier one set):
//! 1. the main file: `$CONTAINERS_REGISTRIES_CONF` when set (it must exist), else the
//!    user's `$XDG_CONFIG_HOME/containers/registries.conf` when it exists (it *replaces*
//!    the system's, and the system's drop-ins are then not read), else
//!    `/etc/containers/registries.conf` (a missing one is an empty configuration);
//! 2. the drop-ins, `*.conf` in name order: `/etc/containers/registries.conf.d/` (unless
//!    the user's main file is used), then `$XDG_CONFIG_HOME/containers/registries.conf.d/`;
//! 3. for aliases only, the aliases podman recorded after a short-name prompt
//!    (`$XDG_CACHE_HOME/containers/short-name-aliases.conf`, for root
//!    `/var/cache/containers/short-name-aliases.conf`), which win over the others.
//!
//! Merging: `[[registry]]` tables replace those of an earlier file with the same
//! `prefix`; `unqualified-search-registries` and `short-name-mode` replace earlier values
//! when a file sets them; `[aliases]` merge name by name, and an empty value erases one.
//! Keys box does not use (`credential-helpers`, ...) are ignored, as podman ignores the
//! keys it does not know. The version 1 format (`[registries.search]`, `.insecure`,
//! `.block`) is accepted in the main file only, as podman does.
//!
//! Invariants: every error names the file, and the line when the fault has one (TOML
//! syntax, a bad value); nothing here touches the network. Only pull, push, create and
//! assemble read this configuration: never the enter/run path.
//!
//! Resolution of one pull ([`RegistriesConf::pull_sources`]): the `[[registry]]` whose
//! `prefix` is the longest match of the reference (`*.example.com` matches any
//! subdomain) decides. A blocked one is refused, naming the file. Otherwise the sources
//! are its mirrors in order (those whose `pull-from-mirror` / `mirror-by-digest-only`
//! allow this reference), then its `location` (the reference itself when the table has
//! none), each with the prefix replaced by the mirror's or the registry's location. The
//! name the image is recorded under stays the reference the user asked for: a mirror or a
//! rewrite is transport only.
//!
//! Short names ([`RegistriesConf::resolve`]), and where box departs from podman, on
//! purpose: an alias wins (box's catalogue comes next, in `ops::create`, as box's own
//! aliases); then the search registries. With several, `enforcing` is an error listing
//! the candidates and `permissive`/`disabled` try them in order. podman prompts for a
//! choice on a terminal and records it; box never prompts (the same operation runs from
//! scripts, manifests and desktop actions, where nobody can answer), and the error says
//! how to settle the name for good (a full reference, or an alias). When no file sets
//! `unqualified-search-registries` at all, a short name means Docker Hub, as it does
//! without any configuration (podman fails there; box keeps docker's rule rather than
//! breaking `box pull debian` on hosts whose registries.conf is all comments).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{HintExt, failure};
use crate::registry::reference::Reference;

/// The variable naming the main file instead of the usual ones (podman's own).
pub const ENV_FILE: &str = "CONTAINERS_REGISTRIES_CONF";

/// The system's files, relative to the root (`/` but in tests).
const SYSTEM_FILE: &str = "etc/containers/registries.conf";
const SYSTEM_DIR: &str = "etc/containers/registries.conf.d";
const ROOT_ALIAS_CACHE: &str = "var/cache/containers/short-name-aliases.conf";

/// Where the configuration is read from, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The main file.
    pub main: PathBuf,
    /// Whether a missing main file is an error (it was named explicitly).
    pub main_required: bool,
    /// Directories of drop-ins, in order.
    pub drop_in_dirs: Vec<PathBuf>,
    /// The short-name alias cache podman writes, if any.
    pub alias_cache: Option<PathBuf>,
}

impl Sources {
    /// The sources for this process: [`ENV_FILE`], `XDG_CONFIG_HOME`, `XDG_CACHE_HOME`,
    /// `HOME` and the effective uid decide.
    pub fn from_env() -> Sources {
        let var = crate::sys::env::absolute_path;
        let home = var("HOME");
        let config_home =
            var("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")));
        let cache_home = var("XDG_CACHE_HOME").or_else(|| home.as_ref().map(|h| h.join(".cache")));
        let is_root = rustix::process::geteuid().is_root();
        Sources::resolve(
            Path::new("/"),
            crate::sys::env::non_empty(ENV_FILE)
                .map(PathBuf::from)
                .as_deref(),
            config_home.as_deref(),
            cache_home.as_deref(),
            is_root,
        )
    }

    /// The precedence rules, with the system's files under `root`.
    pub fn resolve(
        root: &Path,
        env_file: Option<&Path>,
        config_home: Option<&Path>,
        cache_home: Option<&Path>,
        is_root: bool,
    ) -> Sources {
        let user_file = config_home.map(|c| c.join("containers/registries.conf"));
        let user_dir = config_home.map(|c| c.join("containers/registries.conf.d"));
        let alias_cache = if is_root {
            Some(root.join(ROOT_ALIAS_CACHE))
        } else {
            cache_home.map(|c| c.join("containers/short-name-aliases.conf"))
        };
        let (main, main_required, system_dirs) = match (env_file, &user_file) {
            (Some(file), _) => (file.to_owned(), true, true),
            (None, Some(user)) if user.exists() => (user.clone(), false, false),
            _ => (root.join(SYSTEM_FILE), false, true),
        };
        let mut drop_in_dirs = Vec::new();
        if system_dirs {
            drop_in_dirs.push(root.join(SYSTEM_DIR));
        }
        drop_in_dirs.extend(user_dir);
        Sources {
            main,
            main_required,
            drop_in_dirs,
            alias_cache,
        }
    }
}

/// When a mirror may serve a pull (`pull-from-mirror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFromMirror {
    All,
    DigestOnly,
    TagOnly,
}

/// How short names that no alias resolves are treated (`short-name-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortNameMode {
    /// Several search registries are an error: the name is ambiguous.
    Enforcing,
    /// Several search registries are tried in order (podman prompts on a terminal; box
    /// never does).
    Permissive,
    /// Several search registries are tried in order.
    Disabled,
}

/// One place a registry (or a mirror of it) is reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port][/namespace...]`; empty for a wildcard prefix without a location.
    pub location: String,
    pub insecure: bool,
    pub pull_from_mirror: PullFromMirror,
}

/// One `[[registry]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub prefix: String,
    pub endpoint: Endpoint,
    pub mirrors: Vec<Endpoint>,
    pub blocked: bool,
    pub mirror_by_digest_only: bool,
    /// The file (and line) that set it, for messages.
    pub origin: String,
}

/// One place to try a pull at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    /// The reference as the registry at this place knows it.
    pub reference: Reference,
    /// HTTPS without certificate verification, or plain HTTP.
    pub insecure: bool,
    /// A mirror (its failure means: try the next source).
    pub mirror: bool,
}

/// What a name the user typed means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It names its registry (`quay.io/x/y`), or nothing configures short names: itself,
    /// with Docker Hub for a short name, as docker does.
    Reference(Reference),
    /// A short-name alias: the reference, and the file that set the alias.
    Alias(Reference, String),
    /// A short name, tried at each `unqualified-search-registries` entry in order.
    Search {
        candidates: Vec<Reference>,
        /// The file that set the search registries.
        origin: String,
    },
}

impl Resolution {
    /// The references to try, in order.
    pub fn candidates(&self) -> Vec<Reference> {
        match self {
            Resolution::Reference(r) | Resolution::Alias(r, _) => vec![r.clone()],
            Resolution::Search { candidates, .. } => candidates.clone(),
        }
    }
}

/// An alias: the fully-qualified name (no tag), or `None` where a later file erased it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Alias {
    value: Option<String>,
    origin: String,
}

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    /// Sorted by prefix, one per prefix.
    registries: Vec<RegistryEntry>,
    /// The search registries and the file that set them.
    search: Option<(Vec<String>, String)>,
    short_name_mode: Option<ShortNameMode>,
    aliases: BTreeMap<String, Alias>,
}

impl RegistriesConf {
    /// The configuration of this process (see [`Sources::from_env`]), read once: create
    /// asks for it to resolve a name, to look in the store and to pull.
    pub fn from_env() -> Result<&'static RegistriesConf> {
        static LOADED: OnceLock<RegistriesConf> = OnceLock::new();
        if let Some(conf) = LOADED.get() {
            return Ok(conf);
        }
        let conf = RegistriesConf::load(&Sources::from_env())?;
        Ok(LOADED.get_or_init(|| conf))
    }

    /// Read and merge the files of `sources`.
    pub fn load(sources: &Sources) -> Result<RegistriesConf> {
        let mut conf = match read(&sources.main)? {
            Some(text) => parse_file(&text, &sources.main, true)?,
            None if sources.main_required => bail!(failure(
                format!(
                    "the registries configuration {} does not exist",
                    sources.main.display()
                ),
                format!("{ENV_FILE} names it; create the file or unset the variable"),
            )),
            None => RegistriesConf::default(),
        };
        for dir in &sources.drop_in_dirs {
            for file in drop_ins(dir)? {
                if let Some(text) = read(&file)? {
                    conf.merge(parse_file(&text, &file, false)?);
                }
            }
        }
        if let Some(cache) = &sources.alias_cache
            && let Some(text) = read(cache)?
        {
            let cached = parse_file(&text, cache, false)?;
            conf.aliases.extend(cached.aliases);
        }
        Ok(conf)
    }

    /// Parse one file's text alone (`path` for messages).
    pub fn parse(text: &str, path: &Path) -> Result<RegistriesConf> {
        parse_file(text, path, true)
    }

    /// `other`'s settings over these (a drop-in over what came before).
    fn merge(&mut self, other: RegistriesConf) {
        for entry in other.registries {
            self.registries.retain(|r| r.prefix != entry.prefix);
            self.registries.push(entry);
        }
        self.registries.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        if other.search.is_some() {
            self.search = other.search;
        }
        if other.short_name_mode.is_some() {
            self.short_name_mode = other.short_name_mode;
        }
        self.aliases.extend(other.aliases);
    }

    /// The `short-name-mode` in effect (podman's default is permissive).
    pub fn short_name_mode(&self) -> ShortNameMode {
        self.short_name_mode.unwrap_or(ShortNameMode::Permissive)
    }

    /// The alias for a short name (`fedora`, `fedora:41`, `tools/img@sha256:...`): the
    /// alias's reference with the name's tag or digest, and the file that set it. `None`
    /// for a name that names its registry or has no alias.
    pub fn alias(&self, text: &str) -> Result<Option<(Reference, String)>> {
        if !is_short_name(text) {
            return Ok(None);
        }
        // What the user typed is checked as it is first: its faults are its own, not the
        // alias file's (`debian:a b` is not a broken `debian` alias).
        Reference::parse(text)?;
        let (name, suffix) = split_name(text);
        let Some(Alias {
            value: Some(value),
            origin,
        }) = self.aliases.get(name)
        else {
            return Ok(None);
        };
        let reference = Reference::parse(&format!("{value}{suffix}"))
            .with_context(|| format!("the alias `{name}` = \"{value}\" of {origin}"))?;
        Ok(Some((reference, origin.clone())))
    }

    /// What `text` (as the user typed it) means: see [`Resolution`]. A short name with
    /// several search registries in enforcing mode is an error listing them.
    pub fn resolve(&self, text: &str) -> Result<Resolution> {
        if let Some((reference, origin)) = self.alias(text)? {
            return Ok(Resolution::Alias(reference, origin));
        }
        let reference = Reference::parse(text)?;
        if !is_short_name(text) {
            return Ok(Resolution::Reference(reference));
        }
        let Some((search, origin)) = &self.search else {
            return Ok(Resolution::Reference(reference));
        };
        if search.is_empty() {
            bail!(failure(
                format!(
                    "short name `{text}` has no alias, and {origin} sets unqualified-search-registries to none"
                ),
                "name the registry (e.g. docker.io/library/debian), add an [aliases] entry, or list registries \
                 in unqualified-search-registries",
            ));
        }
        let candidates = search
            .iter()
            .map(|registry| {
                Reference::parse(&format!("{registry}/{text}")).with_context(|| {
                    format!("`{text}` at the unqualified-search-registries entry `{registry}` of {origin}")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if candidates.len() > 1 && self.short_name_mode() == ShortNameMode::Enforcing {
            bail!(failure(
                format!(
                    "short name `{text}` is ambiguous: short-name-mode is enforcing, no alias names it, and it \
                     could be any of {} ({origin})",
                    candidates
                        .iter()
                        .map(Reference::canonical)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "give the full reference, e.g. `{}`, or add `\"{}\" = \"{}\"` to the [aliases] of \
                     ~/.config/containers/registries.conf",
                    candidates[0].canonical(),
                    split_name(text).0,
                    candidates[0].name()
                ),
            ));
        }
        Ok(Resolution::Search {
            candidates,
            origin: origin.clone(),
        })
    }

    /// The `[[registry]]` table for `reference`: the longest matching prefix.
    pub fn find(&self, reference: &Reference) -> Option<&RegistryEntry> {
        let text = reference.canonical();
        self.registries
            .iter()
            .filter(|r| prefix_match(&text, &r.prefix).is_some())
            .max_by_key(|r| r.prefix.len())
    }

    /// Where to pull `reference` from, in order: the mirrors that may serve it, then the
    /// registry's location. A blocked registry is an error naming the file.
    pub fn pull_sources(&self, reference: &Reference) -> Result<Vec<PullSource>> {
        let Some(entry) = self.find(reference) else {
            return Ok(vec![PullSource {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if entry.blocked {
            bail!(failure(
                format!(
                    "pulling {reference} is blocked by the registries configuration: [[registry]] prefix \"{}\" \
                     has blocked = true ({})",
                    entry.prefix, entry.origin
                ),
                "pull it from another registry, or ask whoever manages that file",
            ));
        }
        let by_digest = reference.digest.is_some();
        let mirrors = entry.mirrors.iter().filter(|m| {
            if entry.mirror_by_digest_only {
                return by_digest;
            }
            match m.pull_from_mirror {
                PullFromMirror::All => true,
                PullFromMirror::DigestOnly => by_digest,
                PullFromMirror::TagOnly => !by_digest,
            }
        });
        let text = reference.canonical();
        let matched = prefix_match(&text, &entry.prefix).expect("find matched this prefix");
        let rest = &text[matched..];
        let mut sources = Vec::new();
        for (endpoint, mirror) in mirrors.map(|m| (m, true)).chain([(&entry.endpoint, false)]) {
            let reference = if endpoint.location.is_empty() {
                reference.clone()
            } else {
                Reference::parse(&format!("{}{rest}", endpoint.location)).with_context(|| {
                    format!(
                        "rewriting {reference} to {} (the [[registry]] prefix \"{}\" of {})",
                        endpoint.location, entry.prefix, entry.origin
                    )
                })?
            };
            sources.push(PullSource {
                reference,
                insecure: endpoint.insecure,
                mirror,
            });
        }
        Ok(sources)
    }
}

/// Whether `text` names no registry (`debian`, `owner/img:1`): its first path component
/// is not a host (no `.` or `:`, not `localhost`).
pub fn is_short_name(text: &str) -> bool {
    let name = split_name(text).0;
    match name.split_once('/') {
        Some((first, _)) => !(first.contains(['.', ':']) || first == "localhost"),
        None => true,
    }
}

/// `text` split into its name and its `:tag` / `@digest` suffix.
fn split_name(text: &str) -> (&str, &str) {
    let end = text.find('@').unwrap_or(text.len());
    let last_slash = text[..end].rfind('/').map_or(0, |i| i + 1);
    let end = text[last_slash..end]
        .find(':')
        .map_or(end, |colon| last_slash + colon);
    text.split_at(end)
}

/// How many bytes of `reference` (a canonical reference) `prefix` matches, when it does:
/// the whole prefix followed by the end, `/`, `:` or `@`; or for `*.example.com`, a
/// host ending in `.example.com`.
fn prefix_match(reference: &str, prefix: &str) -> Option<usize> {
    if let Some(suffix) = prefix.strip_prefix('*') {
        let domain = reference.split('/').next().unwrap_or(reference);
        let host = crate::registry::reference::split_port(domain).0;
        return (host.len() > suffix.len() && host.ends_with(suffix)).then_some(host.len());
    }
    let rest = reference.strip_prefix(prefix)?;
    match rest.chars().next() {
        None | Some('/' | ':' | '@') => Some(prefix.len()),
        Some(_) => None,
    }
}

/// A file's text, `None` when it does not exist.
fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err)
            .with_context(|| format!("reading the registries configuration {}", path.display()))
            .hint("check the file's permissions"),
    }
}

/// The `*.conf` files of a drop-in directory in name order (none when it is missing).
fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(err)
                .with_context(|| format!("reading the directory {}", dir.display()))
                .hint("check the directory's permissions");
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    Ok(files)
}

// ----- the file format -----

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct FileV2 {
    #[serde(default)]
    registry: Vec<Spanned<RawRegistry>>,
    unqualified_search_registries: Option<Vec<Spanned<String>>>,
    short_name_mode: Option<Spanned<String>>,
    #[serde(default)]
    aliases: BTreeMap<String, Spanned<String>>,
    /// The version 1 format.
    registries: Option<Spanned<V1>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRegistry {
    prefix: Option<Spanned<String>>,
    location: Option<Spanned<String>>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<Spanned<RawMirror>>,
    pull_from_mirror: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMirror {
    location: Option<Spanned<String>>,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
struct V1 {
    #[serde(default)]
    search: V1List,
    #[serde(default)]
    insecure: V1List,
    #[serde(default)]
    block: V1List,
}

#[derive(Deserialize, Default)]
struct V1List {
    #[serde(default)]
    registries: Vec<String>,
}

const FORMAT_HINT: &str = "see containers-registries.conf(5): [[registry]] tables with prefix, location, insecure, \
     blocked and [[registry.mirror]] entries; unqualified-search-registries; short-name-mode; [aliases]";

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

fn parse_file(text: &str, path: &Path, main: bool) -> Result<RegistriesConf> {
    let shown = path.display();
    let file: FileV2 = toml::from_str(text)
        .with_context(|| format!("invalid registries configuration {shown}"))
        .hint(FORMAT_HINT)?;
    // `file:line` for a value, and the error for it.
    let at = |span: std::ops::Range<usize>| format!("{shown}:{}", line_of(text, span.start));
    let bad = |span: std::ops::Range<usize>, what: String| {
        failure(
            format!("invalid registries configuration {}: {what}", at(span)),
            FORMAT_HINT,
        )
    };
    let mut conf = RegistriesConf::default();

    if let Some(v1) = file.registries {
        let v2_too = !file.registry.is_empty()
            || file.unqualified_search_registries.is_some()
            || file.short_name_mode.is_some()
            || !file.aliases.is_empty();
        let span = v1.span();
        if !main {
            return Err(bad(
                span,
                "a drop-in file must use the version 2 format, not [registries.search/insecure/block]".into(),
            ));
        }
        if v2_too {
            return Err(bad(
                span,
                "the version 1 [registries.*] tables and version 2 settings are mixed".into(),
            ));
        }
        let v1 = v1.into_inner();
        let origin = at(span);
        let mut entries: Vec<RegistryEntry> = Vec::new();
        let lists = [
            (&v1.block.registries, true),
            (&v1.insecure.registries, false),
        ];
        for (list, blocked) in lists {
            for location in list {
                let location = location.trim_end_matches('/').to_owned();
                let i = match entries.iter().position(|e| e.prefix == location) {
                    Some(i) => i,
                    None => {
                        entries.push(RegistryEntry {
                            prefix: location.clone(),
                            endpoint: Endpoint {
                                location,
                                insecure: false,
                                pull_from_mirror: PullFromMirror::All,
                            },
                            mirrors: Vec::new(),
                            blocked: false,
                            mirror_by_digest_only: false,
                            origin: origin.clone(),
                        });
                        entries.len() - 1
                    }
                };
                match blocked {
                    true => entries[i].blocked = true,
                    false => entries[i].endpoint.insecure = true,
                }
            }
        }
        entries.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        conf.registries = entries;
        if !v1.search.registries.is_empty() {
            conf.search = Some((v1.search.registries, shown.to_string()));
        }
        return Ok(conf);
    }

    for table in file.registry {
        let span = table.span();
        let raw = table.into_inner();
        let location = match raw.location {
            Some(l) => {
                let span = l.span();
                let value = l.into_inner();
                location_text(&value).map_err(|what| bad(span, what))?
            }
            None => String::new(),
        };
        let prefix = match raw.prefix {
            Some(p) => {
                let span = p.span();
                let value = p.into_inner();
                let prefix = location_text(&value).map_err(|what| bad(span.clone(), what))?;
                if let Some(domain) = prefix.strip_prefix("*.") {
                    if domain.is_empty() || domain.contains(['/', '@', ':', '*']) {
                        return Err(bad(
                            span,
                            format!(
                                "the wildcard prefix \"{value}\" must be of the form \"*.example.com\" \
                                 (no port, path, tag or digest)"
                            ),
                        ));
                    }
                } else if prefix.contains('*') {
                    return Err(bad(
                        span,
                        format!(
                            "a `*` may only start a prefix, as in \"*.example.com\" (not \"{value}\")"
                        ),
                    ));
                } else if location.is_empty() {
                    return Err(bad(
                        span,
                        format!(
                            "[[registry]] prefix \"{value}\" has no location (only a \"*.example.com\" prefix may omit it)"
                        ),
                    ));
                }
                prefix
            }
            None if location.is_empty() => {
                return Err(bad(
                    span,
                    "a [[registry]] table needs a location (or a prefix)".into(),
                ));
            }
            None => location.clone(),
        };
        if let Some(p) = raw.pull_from_mirror {
            return Err(bad(
                p.span(),
                format!(
                    "pull-from-mirror belongs in a [[registry.mirror]] table, not in [[registry]] \"{prefix}\""
                ),
            ));
        }
        let mut mirrors = Vec::new();
        for mirror in raw.mirror {
            let span = mirror.span();
            let mirror = mirror.into_inner();
            let location = match mirror.location {
                Some(l) => {
                    let span = l.span();
                    location_text(&l.into_inner()).map_err(|what| bad(span, what))?
                }
                None => String::new(),
            };
            if location.is_empty() {
                return Err(bad(
                    span,
                    format!("a [[registry.mirror]] of \"{prefix}\" has no location"),
                ));
            }
            let pull_from_mirror = match mirror.pull_from_mirror {
                None => PullFromMirror::All,
                Some(p) => {
                    let span = p.span();
                    let value = p.into_inner();
                    if raw.mirror_by_digest_only {
                        return Err(bad(
                            span,
                            format!(
                                "[[registry]] \"{prefix}\" sets mirror-by-digest-only, so its mirrors cannot set \
                                 pull-from-mirror"
                            ),
                        ));
                    }
                    match value.as_str() {
                        "" | "all" => PullFromMirror::All,
                        "digest-only" => PullFromMirror::DigestOnly,
                        "tag-only" => PullFromMirror::TagOnly,
                        other => {
                            return Err(bad(
                                span,
                                format!(
                                    "pull-from-mirror = \"{other}\" of mirror {location}: it is \"all\", \
                                     \"digest-only\" or \"tag-only\""
                                ),
                            ));
                        }
                    }
                }
            };
            mirrors.push(Endpoint {
                location,
                insecure: mirror.insecure,
                pull_from_mirror,
            });
        }
        // The first table with a prefix wins within one file (podman drops the others).
        if conf.registries.iter().any(|r| r.prefix == prefix) {
            continue;
        }
        conf.registries.push(RegistryEntry {
            prefix,
            endpoint: Endpoint {
                location,
                insecure: raw.insecure,
                pull_from_mirror: PullFromMirror::All,
            },
            mirrors,
            blocked: raw.blocked,
            mirror_by_digest_only: raw.mirror_by_digest_only,
            origin: at(span),
        });
    }
    conf.registries.sort_by(|a, b| a.prefix.cmp(&b.prefix));

    if let Some(list) = file.unqualified_search_registries {
        let mut registries = Vec::new();
        for entry in list {
            let span = entry.span();
            let value = location_text(entry.get_ref()).map_err(|what| bad(span.clone(), what))?;
            // A registry, not a namespace: `host[:port]` that parses as a registry.
            if value.contains('/')
                || Reference::parse(&format!("{value}/x")).is_err()
                || !names_host(&value)
            {
                return Err(bad(
                    span,
                    format!(
                        "unqualified-search-registries entry \"{}\" is not a registry host[:port]",
                        entry.get_ref()
                    ),
                ));
            }
            registries.push(value);
        }
        conf.search = Some((registries, shown.to_string()));
    }

    if let Some(mode) = file.short_name_mode {
        let span = mode.span();
        conf.short_name_mode = match mode.get_ref().as_str() {
            "" => None,
            "enforcing" => Some(ShortNameMode::Enforcing),
            "permissive" => Some(ShortNameMode::Permissive),
            "disabled" => Some(ShortNameMode::Disabled),
            other => {
                return Err(bad(
                    span,
                    format!(
                        "short-name-mode = \"{other}\": it is \"enforcing\", \"permissive\" or \"disabled\""
                    ),
                ));
            }
        };
    }

    for (name, value) in file.aliases {
        let span = value.span();
        let value = value.into_inner();
        if !is_short_name(&name)
            || !split_name(&name).1.is_empty()
            || Reference::parse(&name).is_err()
        {
            return Err(bad(
                span,
                format!(
                    "alias name \"{name}\" must be a short name without registry, tag or digest"
                ),
            ));
        }
        if value.is_empty() {
            conf.aliases.insert(
                name,
                Alias {
                    value: None,
                    origin: at(span),
                },
            );
            continue;
        }
        let valid = !is_short_name(&value) && split_name(&value).1.is_empty();
        let reference = Reference::parse(&value).ok().filter(|_| valid);
        let Some(reference) = reference else {
            return Err(bad(
                span,
                format!(
                    "alias \"{name}\" = \"{value}\": the value must be a registry and repository without tag or \
                     digest, e.g. \"quay.io/fedora/fedora\""
                ),
            ));
        };
        conf.aliases.insert(
            name,
            Alias {
                value: Some(reference.name()),
                origin: at(span),
            },
        );
    }
    Ok(conf)
}

/// A `location`, `prefix` or search entry: trailing `/` dropped; a URL scheme refused.
fn location_text(value: &str) -> Result<String, String> {
    let trimmed = value.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        return Err(format!(
            "\"{value}\" has a URL scheme; write host[:port][/path] (and insecure = true for plain HTTP)"
        ));
    }
    Ok(trimmed.to_owned())
}

/// Whether `value` reads as a registry host (`docker.io`, `lan:5000`, `localhost`) as
/// the first part of a reference, by the reference grammar's rule.
fn names_host(value: &str) -> bool {
    value.contains(['.', ':']) || value == "localhost"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        RegistriesConf::parse(text, Path::new("/test/registries.conf"))
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn err(text: &str) -> String {
        let e = RegistriesConf::parse(text, Path::new("/test/registries.conf")).unwrap_err();
        assert!(e.downcast_ref::<crate::error::Hint>().is_some(), "{e:#}");
        format!("{e:#}")
    }

    fn sources(conf: &RegistriesConf, reference: &str) -> Vec<String> {
        conf.pull_sources(&Reference::parse(reference).unwrap())
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}{}{}",
                    s.reference.canonical(),
                    if s.mirror { " mirror" } else { "" },
                    if s.insecure { " insecure" } else { "" }
                )
            })
            .collect()
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn an_empty_or_missing_configuration_changes_nothing() {
        let c = conf("# everything commented out\n");
        assert_eq!(sources(&c, "debian"), ["docker.io/library/debian:latest"]);
        assert_eq!(
            c.resolve("debian").unwrap(),
            Resolution::Reference(Reference::parse("debian").unwrap())
        );
        let dir = tempfile::tempdir().unwrap();
        let s = Sources::resolve(dir.path(), None, Some(&dir.path().join("cfg")), None, false);
        assert_eq!(RegistriesConf::load(&s).unwrap(), RegistriesConf::default());
    }

    #[test]
    fn mirrors_come_first_then_the_location_with_the_prefix_rewritten() {
        let c = conf(
            r#"
            [[registry]]
            prefix = "example.com/foo"
            location = "internal.example.net/bar"
            [[registry.mirror]]
            location = "mirror-0.local/mirror-for-foo"
            [[registry.mirror]]
            location = "mirror-1.local/mirrors/foo"
            insecure = true
            "#,
        );
        assert_eq!(
            sources(&c, "example.com/foo/image:latest"),
            [
                "mirror-0.local/mirror-for-foo/image:latest mirror",
                "mirror-1.local/mirrors/foo/image:latest mirror insecure",
                "internal.example.net/bar/image:latest",
            ]
        );
        // Not under the prefix: untouched. A longer name that only starts alike: untouched.
        assert_eq!(sources(&c, "example.com/other:1"), ["example.com/other:1"]);
        assert_eq!(
            sources(&c, "example.com/foobar:1"),
            ["example.com/foobar:1"]
        );
    }

    #[test]
    fn the_longest_prefix_wins_and_docker_hub_names_are_normalized() {
        let c = conf(
            r#"
            [[registry]]
            location = "docker.io"
            [[registry.mirror]]
            location = "mirror.gcr.io"

            [[registry]]
            prefix = "docker.io/library/debian"
            location = "lan:5000/debian"
            insecure = true
            "#,
        );
        assert_eq!(
            sources(&c, "alpine"),
            [
                "mirror.gcr.io/library/alpine:latest mirror",
                "docker.io/library/alpine:latest"
            ]
        );
        assert_eq!(sources(&c, "debian:12"), ["lan:5000/debian:12 insecure"]);
    }

    #[test]
    fn wildcard_prefixes_match_subdomains() {
        let c = conf(
            r#"
            [[registry]]
            prefix = "*.example.com"
            blocked = false
            [[registry.mirror]]
            location = "mirror.lan"
            "#,
        );
        assert_eq!(
            sources(&c, "a.b.example.com/x/y:1"),
            ["mirror.lan/x/y:1 mirror", "a.b.example.com/x/y:1"]
        );
        assert_eq!(sources(&c, "example.com/x:1"), ["example.com/x:1"]);
        assert_eq!(sources(&c, "notexample.com/x:1"), ["notexample.com/x:1"]);
        assert!(err("[[registry]]\nprefix = \"*.example.com/foo\"\n").contains("*.example.com"));
        assert!(err("[[registry]]\nprefix = \"a.*.com\"\nlocation = \"b.com\"\n").contains("`*`"));
    }

    #[test]
    fn pull_from_mirror_and_mirror_by_digest_only() {
        let c = conf(
            r#"
            [[registry]]
            location = "a.io"
            [[registry.mirror]]
            location = "tags.lan"
            pull-from-mirror = "tag-only"
            [[registry.mirror]]
            location = "digests.lan"
            pull-from-mirror = "digest-only"
            [[registry.mirror]]
            location = "any.lan"
            pull-from-mirror = "all"

            [[registry]]
            location = "b.io"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "m.lan"
            "#,
        );
        assert_eq!(
            sources(&c, "a.io/x:1"),
            ["tags.lan/x:1 mirror", "any.lan/x:1 mirror", "a.io/x:1"]
        );
        assert_eq!(
            sources(&c, &format!("a.io/x@{D}")),
            [
                format!("digests.lan/x@{D} mirror"),
                format!("any.lan/x@{D} mirror"),
                format!("a.io/x@{D}")
            ]
        );
        assert_eq!(sources(&c, "b.io/x:1"), ["b.io/x:1"]);
        assert_eq!(
            sources(&c, &format!("b.io/x@{D}")),
            [format!("m.lan/x@{D} mirror"), format!("b.io/x@{D}")]
        );
        assert!(err(
            "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"some\"\n"
        )
        .contains("registries.conf:5"));
        assert!(err(
            "[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"all\"\n"
        )
        .contains("mirror-by-digest-only"));
        assert!(
            err("[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"\n")
                .contains("[[registry.mirror]]")
        );
    }

    #[test]
    fn blocked_registries_are_refused_naming_the_file_and_line() {
        let c = conf("\n[[registry]]\nlocation = \"evil.io\"\nblocked = true\n");
        let e = c
            .pull_sources(&Reference::parse("evil.io/x:1").unwrap())
            .unwrap_err();
        let message = format!("{e:#}");
        assert!(message.contains("evil.io/x:1"), "{message}");
        assert!(message.contains("/test/registries.conf:2"), "{message}");
        assert!(message.contains("blocked"), "{message}");
        assert_eq!(sources(&c, "good.io/x:1"), ["good.io/x:1"]);
    }

    #[test]
    fn malformed_files_name_the_file_and_the_line() {
        // TOML syntax: the toml crate's message carries the line.
        let message = err("unqualified-search-registries = [\"a.io\"]\n[[registry]\n");
        assert!(message.contains("/test/registries.conf"), "{message}");
        assert!(message.contains("line 2"), "{message}");
        // A wrong type.
        let message = err("\n\n[[registry]]\nlocation = \"a.io\"\ninsecure = \"yes\"\n");
        assert!(message.contains("line 5"), "{message}");
        // Values box checks itself.
        assert!(err("\nshort-name-mode = \"strict\"\n").contains("registries.conf:2"));
        assert!(err("[[registry]]\nlocation = \"https://a.io\"\n").contains("URL scheme"));
        assert!(err("[[registry]]\ninsecure = true\n").contains("needs a location"));
        assert!(err("[[registry]]\nprefix = \"a.io\"\n").contains("no location"));
        assert!(
            err("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n")
                .contains("no location")
        );
        assert!(err("unqualified-search-registries = [\"a.io/ns\"]\n").contains("not a registry"));
        assert!(err("[aliases]\n\"quay.io/x\" = \"quay.io/x\"\n").contains("short name"));
        assert!(err("[aliases]\n\"x\" = \"quay.io/x:1\"\n").contains("without tag"));
        assert!(err("[aliases]\n\"x\" = \"x\"\n").contains("registry and repository"));
        // Unknown keys are ignored, as podman does.
        let c =
            conf("credential-helpers = [\"pass\"]\n[[registry]]\nlocation = \"a.io\"\nfancy = 1\n");
        assert_eq!(c.registries.len(), 1);
    }

    #[test]
    fn short_names_aliases_search_registries_and_modes() {
        let c = conf(
            r#"
            unqualified-search-registries = ["quay.io", "docker.io"]
            [aliases]
            "fedora" = "registry.fedoraproject.org/fedora"
            "tools/img" = "lan:5000/team/img"
            "#,
        );
        let alias = |text: &str| match c.resolve(text).unwrap() {
            Resolution::Alias(r, origin) => {
                assert!(origin.starts_with("/test/registries.conf:"), "{origin}");
                r.canonical()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(alias("fedora"), "registry.fedoraproject.org/fedora:latest");
        assert_eq!(alias("fedora:41"), "registry.fedoraproject.org/fedora:41");
        assert_eq!(
            alias(&format!("fedora@{D}")),
            format!("registry.fedoraproject.org/fedora@{D}")
        );
        assert_eq!(alias("tools/img:2"), "lan:5000/team/img:2");
        // A mistyped reference is the reference's fault, not the alias file's.
        let err = crate::error::message(&c.resolve("fedora:4 1").unwrap_err());
        assert!(
            err.starts_with("invalid image reference `fedora:4 1`") && !err.contains("alias"),
            "{err}"
        );
        // Qualified names are themselves; short names without an alias are searched.
        assert_eq!(
            c.resolve("quay.io/fedora/fedora").unwrap(),
            Resolution::Reference(Reference::parse("quay.io/fedora/fedora").unwrap())
        );
        let candidates: Vec<String> = c
            .resolve("debian:12")
            .unwrap()
            .candidates()
            .iter()
            .map(Reference::canonical)
            .collect();
        assert_eq!(
            candidates,
            ["quay.io/debian:12", "docker.io/library/debian:12"]
        );

        let enforcing = conf(
            "unqualified-search-registries = [\"quay.io\", \"docker.io\"]\nshort-name-mode = \"enforcing\"\n",
        );
        let e = enforcing.resolve("debian").unwrap_err();
        let message = format!("{e:#}");
        assert!(
            message.contains("ambiguous") && message.contains("quay.io/debian:latest"),
            "{message}"
        );
        // One search registry is no ambiguity, even when enforcing.
        let one = conf(
            "unqualified-search-registries = [\"quay.io\"]\nshort-name-mode = \"enforcing\"\n",
        );
        assert_eq!(
            one.resolve("x").unwrap().candidates()[0].canonical(),
            "quay.io/x:latest"
        );
        // None at all, set explicitly: an error naming the file.
        let none = conf("unqualified-search-registries = []\n");
        assert!(format!("{:#}", none.resolve("x").unwrap_err()).contains("/test/registries.conf"));
    }

    #[test]
    fn the_version_1_format_is_read_in_the_main_file() {
        let c = conf(
            "[registries.search]\nregistries = ['r1.io', 'r2.io']\n[registries.insecure]\nregistries = ['r3.io']\n\
             [registries.block]\nregistries = ['bad.io']\n",
        );
        assert_eq!(sources(&c, "r3.io/x:1"), ["r3.io/x:1 insecure"]);
        assert!(
            c.pull_sources(&Reference::parse("bad.io/x").unwrap())
                .is_err()
        );
        assert_eq!(c.resolve("x").unwrap().candidates().len(), 2);
        let e = parse_file(
            "[registries.search]\nregistries = []\n",
            Path::new("/d/x.conf"),
            false,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("version 2"));
    }

    #[test]
    fn precedence_of_files_drop_ins_and_the_users_file() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let config = root.join("home/.config");
        let cache = root.join("home/.cache");
        let write = |path: &Path, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            &root.join(SYSTEM_FILE),
            "unqualified-search-registries = [\"sys.io\"]\n[aliases]\n\"a\" = \"sys.io/a\"\n\"b\" = \"sys.io/b\"\n\
             [[registry]]\nlocation = \"x.io\"\nblocked = true\n",
        );
        write(
            &root.join(SYSTEM_DIR).join("000-shortnames.conf"),
            "[aliases]\n\"b\" = \"dropin.io/b\"\n\"c\" = \"dropin.io/c\"\n",
        );
        write(
            &root.join(SYSTEM_DIR).join("001-more.conf"),
            "short-name-mode = \"enforcing\"\n[aliases]\n\"c\" = \"\"\n[[registry]]\nlocation = \"x.io\"\n",
        );
        write(&root.join(SYSTEM_DIR).join("ignored.txt"), "not toml [");
        let load = |env: Option<&Path>| {
            RegistriesConf::load(&Sources::resolve(
                root,
                env,
                Some(&config),
                Some(&cache),
                false,
            ))
            .unwrap()
        };
        let alias = |c: &RegistriesConf, name: &str| c.alias(name).unwrap().map(|(r, _)| r.name());

        // The system file, then its drop-ins in name order.
        let c = load(None);
        assert_eq!(alias(&c, "a").as_deref(), Some("sys.io/a"));
        assert_eq!(alias(&c, "b").as_deref(), Some("dropin.io/b"));
        assert_eq!(alias(&c, "c"), None, "an empty value erases an alias");
        assert_eq!(c.short_name_mode(), ShortNameMode::Enforcing);
        assert!(
            !c.find(&Reference::parse("x.io/y").unwrap())
                .unwrap()
                .blocked,
            "a drop-in replaces a prefix"
        );
        assert_eq!(c.resolve("z").unwrap().candidates()[0].registry, "sys.io");

        // The user's drop-ins come after the system's.
        write(
            &config.join("containers/registries.conf.d/mine.conf"),
            "[aliases]\n\"a\" = \"user.io/a\"\n",
        );
        assert_eq!(alias(&load(None), "a").as_deref(), Some("user.io/a"));

        // The user's file replaces the system's file and drop-ins; the user's drop-ins stay.
        write(
            &config.join("containers/registries.conf"),
            "[aliases]\n\"d\" = \"user.io/d\"\n",
        );
        let c = load(None);
        assert_eq!(alias(&c, "b"), None);
        assert_eq!(alias(&c, "d").as_deref(), Some("user.io/d"));
        assert_eq!(alias(&c, "a").as_deref(), Some("user.io/a"));
        assert_eq!(c.short_name_mode(), ShortNameMode::Permissive);

        // The variable names the main file; the drop-ins of both still apply.
        let named = root.join("named.conf");
        write(&named, "[aliases]\n\"e\" = \"env.io/e\"\n");
        let c = load(Some(&named));
        assert_eq!(alias(&c, "e").as_deref(), Some("env.io/e"));
        assert_eq!(alias(&c, "b").as_deref(), Some("dropin.io/b"));
        assert_eq!(alias(&c, "d"), None);
        // It must exist.
        let missing = Sources::resolve(
            root,
            Some(&root.join("nope.conf")),
            Some(&config),
            None,
            false,
        );
        assert!(format!("{:#}", RegistriesConf::load(&missing).unwrap_err()).contains("nope.conf"));

        // podman's recorded aliases win over the files'.
        write(
            &cache.join("containers/short-name-aliases.conf"),
            "[aliases]\n\"d\" = \"cache.io/d\"\n",
        );
        assert_eq!(alias(&load(None), "d").as_deref(), Some("cache.io/d"));
        // Root's cache is under /var/cache.
        let s = Sources::resolve(root, None, Some(&config), Some(&cache), true);
        assert_eq!(s.alias_cache.unwrap(), root.join(ROOT_ALIAS_CACHE));

        // A malformed drop-in: its name and line.
        write(
            &config.join("containers/registries.conf.d/zz-bad.conf"),
            "\n\n[aliases\n",
        );
        let e = RegistriesConf::load(&Sources::resolve(root, None, Some(&config), None, false))
            .unwrap_err();
        let message = format!("{e:#}");
        assert!(
            message.contains("zz-bad.conf") && message.contains("line 3"),
            "{message}"
        );
    }

    #[test]
    fn short_names_and_their_suffixes() {
        assert!(is_short_name("debian"));
        assert!(is_short_name("debian:12"));
        assert!(is_short_name("owner/img"));
        assert!(!is_short_name("docker.io/debian"));
        assert!(!is_short_name("localhost/x"));
        assert!(!is_short_name("lan:5000/x"));
        assert_eq!(split_name("a/b:1"), ("a/b", ":1"));
        assert_eq!(split_name(&format!("a@{D}")), ("a", &*format!("@{D}")));
        assert_eq!(split_name("lan:5000/x"), ("lan:5000/x", ""));
        assert_eq!(prefix_match("a.io:5000/x:1", "a.io"), Some(4));
        assert_eq!(prefix_match("a.iox/x", "a.io"), None);
        assert_eq!(prefix_match("b.a.io:5000/x", "*.a.io"), Some(6));
    }
}
