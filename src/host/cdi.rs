//! CDI (Container Device Interface) devices: reading the host's CDI specs and turning the
//! devices a box asks for (`--device VENDOR/CLASS=NAME`, `--nvidia`) into edits of the
//! box's start: device nodes and mounts to bind, variables to set, hooks to carry out.
//!
//! The specs are the files vendors' tools write (`nvidia-ctk cdi generate`) to
//! `/etc/cdi` and `/var/run/cdi` (or the `:`-separated directories of `BOX_CDI_SPEC_DIRS`),
//! `*.json` and `*.yaml`/`*.yml`, CDI spec versions 0.3.0 to 1.1.0. They are read at each
//! start of a box, never on the enter/run path, so a driver update on the host (new
//! library versions, a new spec) reaches the box at its next start; the box record keeps
//! only the device names.
//!
//! Invariants:
//! - a spec is read strictly (unknown fields are errors, as CDI's own loader has it); a
//!   malformed spec is an error naming its file and the field (`devices[0].containerEdits.
//!   mounts[1].hostPath`) when it is one of the requested vendor/class, and a warning
//!   otherwise;
//! - a later directory wins over an earlier one for a device defined in both (the
//!   dynamic `/var/run/cdi` over the static `/etc/cdi`), and a later file over an earlier
//!   one in a directory;
//! - a spec's own `containerEdits` are applied once when any of its devices is asked for,
//!   then each device's;
//! - `VENDOR/CLASS=all` is the spec's device named `all` when there is one (nvidia-ctk
//!   writes one), else every device of that vendor/class;
//! - nothing here touches the box: [`Edits`] is data the plan carries and the holder
//!   carries out.
//!
//! What a rootless box can and cannot do with a spec:
//! - device nodes cannot be made in a user namespace: the host's node is bound instead.
//!   The box has the host's `/dev` already, so a node whose `hostPath` is its `path`
//!   under `/dev` needs nothing; one with another `hostPath`, or outside `/dev`, is bound
//!   over its path. `type`, `major`, `minor`, `fileMode`, `uid`, `gid` and `permissions`
//!   are the host node's own (no cgroup device filter exists to open);
//! - mounts are bind mounts with the spec's `ro`, `nosuid`, `nodev`, `noexec` (`bind` or
//!   `rbind`); mounts of another type are skipped with a warning;
//! - hooks: the NVIDIA hooks (`nvidia-cdi-hook SUBCOMMAND` or `nvidia-ctk hook
//!   SUBCOMMAND`) are done by box itself inside the box, because the real programs read
//!   an OCI bundle box does not have: `update-ldcache --folder DIR` (DIR in
//!   `/etc/ld.so.conf.d/`, then the box's `ldconfig`), `create-symlinks --link
//!   TARGET::LINK`, `chmod --mode MODE --path PATH`; `disable-device-node-modification`
//!   needs nothing (no process in a rootless box can make device nodes). Other NVIDIA
//!   subcommands (`enable-cuda-compat`, ...) are skipped with a warning. Any other hook
//!   of the `createRuntime`, `createContainer`, `startContainer` or `prestart` stage runs
//!   in the box at its start, as root of the box, with the hook's arguments and
//!   environment and the OCI state on its stdin (the program from the host's
//!   `/run/host` except for `startContainer`, whose path is the box's); `poststart` and
//!   `poststop` hooks are skipped with a warning;
//! - `additionalGids`, `intelRdt` and `netDevices` are skipped with a warning (they need
//!   privileges a rootless box does not have).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::error::{HintExt, failure};

/// The variable that overrides where specs are looked for (`:`-separated directories).
pub const SPEC_DIRS_ENV: &str = "BOX_CDI_SPEC_DIRS";
/// Where CDI specs live by default: static, then dynamic (the later wins).
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];
/// The vendor/class of NVIDIA GPUs in nvidia-ctk's specs.
pub const NVIDIA_GPU: &str = "nvidia.com/gpu";
/// The CDI spec versions box reads.
const KNOWN_VERSIONS: [&str; 10] = [
    "0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0",
];
/// What to do to get NVIDIA's spec.
pub const NVIDIA_HINT: &str = "generate the spec with `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (from the NVIDIA Container Toolkit)";

/// The spec directories: `BOX_CDI_SPEC_DIRS` when set, else [`DEFAULT_SPEC_DIRS`].
pub fn spec_dirs() -> Vec<PathBuf> {
    match crate::sys::env::non_empty(SPEC_DIRS_ENV) {
        Some(dirs) => std::env::split_paths(&dirs).collect(),
        None => DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect(),
    }
}

fn show_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

// The spec as SPEC.md defines it; field names are CDI's (camelCase).

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    cdi_version: String,
    kind: String,
    #[serde(default)]
    #[allow(dead_code)] // read for validation only
    annotations: BTreeMap<String, String>,
    devices: Vec<Device>,
    #[serde(default)]
    container_edits: ContainerEdits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Device {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    container_edits: ContainerEdits,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContainerEdits {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    device_nodes: Vec<DeviceNode>,
    #[serde(default)]
    hooks: Vec<Hook>,
    #[serde(default)]
    mounts: Vec<SpecMount>,
    #[serde(default)]
    intel_rdt: Option<IntelRdt>,
    #[serde(default)]
    additional_gids: Vec<u32>,
    #[serde(default)]
    net_devices: Vec<NetDevice>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // the host node's own values apply (see the module doc)
struct DeviceNode {
    path: PathBuf,
    host_path: Option<PathBuf>,
    #[serde(rename = "type")]
    kind: Option<String>,
    major: Option<i64>,
    minor: Option<i64>,
    file_mode: Option<u32>,
    permissions: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Hook {
    hook_name: String,
    path: PathBuf,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    timeout: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpecMount {
    host_path: PathBuf,
    container_path: PathBuf,
    #[serde(default)]
    options: Vec<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct IntelRdt {
    #[serde(rename = "closID")]
    clos_id: Option<String>,
    l3_cache_schema: Option<String>,
    mem_bw_schema: Option<String>,
    #[serde(default)]
    schemata: Vec<String>,
    #[serde(default)]
    enable_monitoring: bool,
    // Dropped in 1.1.0, still in 0.7.0 to 1.0.0 specs.
    #[serde(default, rename = "enableCMT")]
    enable_cmt: bool,
    #[serde(default, rename = "enableMBM")]
    enable_mbm: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct NetDevice {
    host_interface_name: String,
    name: String,
}

/// Just the kind of a spec that failed to parse, to tell whether it was needed.
#[derive(Deserialize)]
struct KindOnly {
    kind: Option<String>,
}

/// A spec file that could not be read.
#[derive(Debug, Clone)]
struct Broken {
    file: PathBuf,
    /// Its kind, when that much could be read.
    kind: Option<String>,
    /// What is wrong, with the field.
    error: String,
}

impl Broken {
    fn error(&self) -> anyhow::Error {
        failure(
            format!(
                "the CDI spec {} is not valid: {}",
                self.file.display(),
                self.error
            ),
            "fix or regenerate the spec (for NVIDIA: `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`); CDI's format is described at https://github.com/cncf-tags/container-device-interface/blob/main/SPEC.md",
        )
    }

    fn warning(&self) -> String {
        format!(
            "the CDI spec {} is not valid and was ignored: {}",
            self.file.display(),
            self.error
        )
    }
}

/// The specs found in the spec directories.
pub struct Specs {
    dirs: Vec<PathBuf>,
    /// In reading order: directories in order, files by name.
    specs: Vec<(PathBuf, Spec)>,
    broken: Vec<Broken>,
}

/// A requested device, `VENDOR/CLASS=NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName {
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for DeviceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.kind, self.name)
    }
}

/// Parse a fully qualified CDI device name (`nvidia.com/gpu=0`, `example.com/gpu=all`).
pub fn parse_device_name(text: &str) -> Result<DeviceName> {
    let bad = || {
        let hint = if text.starts_with('/') {
            "every box has the host's /dev already; --device takes CDI devices, VENDOR/CLASS=NAME (e.g. nvidia.com/gpu=all)"
        } else {
            "write VENDOR/CLASS=NAME, e.g. `--device nvidia.com/gpu=all` or `--device nvidia.com/gpu=0`"
        };
        failure(format!("`{text}` is not a CDI device name"), hint)
    };
    let (kind, name) = text.split_once('=').ok_or_else(bad)?;
    if !valid_kind(kind) || !valid_device_name(name) {
        return Err(bad());
    }
    Ok(DeviceName {
        kind: kind.to_owned(),
        name: name.to_owned(),
    })
}

/// `vendor.example/class`: a DNS-like vendor, a slash, a class of letters, digits, `-`,
/// `_` and `.`, beginning and ending with a letter or digit.
fn valid_kind(kind: &str) -> bool {
    let Some((vendor, class)) = kind.split_once('/') else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !vendor.is_empty() && vendor.len() <= 253 && vendor.split('.').all(label_ok) && {
        let ok_char = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
        !class.is_empty()
            && class.len() <= 63
            && class.bytes().all(ok_char)
            && class.as_bytes()[0].is_ascii_alphanumeric()
            && class.as_bytes()[class.len() - 1].is_ascii_alphanumeric()
    }
}

fn valid_device_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Parse one spec file's text; the error names the field it failed on.
fn parse_spec(file: &Path, text: &str) -> std::result::Result<Spec, Broken> {
    let json = file.extension().is_some_and(|e| e == "json");
    let parsed = if json {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
    } else {
        serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(text)).map_err(|e| {
            let path = e.path().to_string();
            // serde_norway's message starts with the path already.
            let inner = e.into_inner().to_string();
            let inner = inner
                .strip_prefix(&format!("{path}: "))
                .map_or(inner.clone(), str::to_owned);
            (path, inner)
        })
    };
    let broken = |field: String, error: String| {
        let kind = if json {
            serde_json::from_str::<KindOnly>(text).ok()
        } else {
            serde_norway::from_str::<KindOnly>(text).ok()
        };
        let error = if ["", ".", "?"].contains(&field.as_str()) {
            error
        } else {
            format!("field `{field}`: {error}")
        };
        Broken {
            file: file.to_owned(),
            kind: kind.and_then(|k| k.kind),
            error,
        }
    };
    let spec: Spec = parsed.map_err(|(field, error)| broken(field, error))?;
    if !KNOWN_VERSIONS.contains(&spec.cdi_version.as_str()) {
        return Err(broken(
            "cdiVersion".into(),
            format!(
                "version `{}` is not one box reads ({} to {})",
                spec.cdi_version,
                KNOWN_VERSIONS[0],
                KNOWN_VERSIONS[KNOWN_VERSIONS.len() - 1]
            ),
        ));
    }
    if !valid_kind(&spec.kind) {
        return Err(broken(
            "kind".into(),
            format!("`{}` is not VENDOR/CLASS (e.g. nvidia.com/gpu)", spec.kind),
        ));
    }
    if spec.devices.is_empty() {
        return Err(broken("devices".into(), "no device is defined".into()));
    }
    for (i, device) in spec.devices.iter().enumerate() {
        if !valid_device_name(&device.name) {
            return Err(broken(
                format!("devices[{i}].name"),
                format!("`{}` is not a valid device name", device.name),
            ));
        }
        check_edits(
            &device.container_edits,
            &format!("devices[{i}].containerEdits"),
        )
        .map_err(|(f, e)| broken(f, e))?;
    }
    check_edits(&spec.container_edits, "containerEdits").map_err(|(f, e)| broken(f, e))?;
    Ok(spec)
}

/// What SPEC.md requires of edits beyond their shape: absolute paths, `NAME=VALUE`.
fn check_edits(edits: &ContainerEdits, at: &str) -> std::result::Result<(), (String, String)> {
    for (i, var) in edits.env.iter().enumerate() {
        if var.split_once('=').is_none_or(|(name, _)| name.is_empty()) {
            return Err((
                format!("{at}.env[{i}]"),
                format!("`{var}` is not NAME=VALUE"),
            ));
        }
    }
    let absolute = |path: &Path, field: String| {
        if path.is_absolute() {
            Ok(())
        } else {
            Err((
                field,
                format!("`{}` is not an absolute path", path.display()),
            ))
        }
    };
    for (i, node) in edits.device_nodes.iter().enumerate() {
        absolute(&node.path, format!("{at}.deviceNodes[{i}].path"))?;
        if let Some(host) = &node.host_path {
            absolute(host, format!("{at}.deviceNodes[{i}].hostPath"))?;
        }
    }
    for (i, m) in edits.mounts.iter().enumerate() {
        absolute(&m.host_path, format!("{at}.mounts[{i}].hostPath"))?;
        absolute(&m.container_path, format!("{at}.mounts[{i}].containerPath"))?;
    }
    for (i, hook) in edits.hooks.iter().enumerate() {
        absolute(&hook.path, format!("{at}.hooks[{i}].path"))?;
        if hook.timeout.is_some_and(|t| t <= 0) {
            return Err((
                format!("{at}.hooks[{i}].timeout"),
                "a timeout must be greater than zero".into(),
            ));
        }
    }
    Ok(())
}

impl Specs {
    /// Read every spec in `dirs` (missing directories are skipped).
    pub fn load(dirs: &[PathBuf]) -> Specs {
        let mut specs = Specs {
            dirs: dirs.to_vec(),
            specs: Vec::new(),
            broken: Vec::new(),
        };
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
                })
                .collect();
            files.sort();
            for file in files {
                let parsed = std::fs::read_to_string(&file)
                    .map_err(|err| Broken {
                        file: file.clone(),
                        kind: None,
                        error: format!("reading it: {err}"),
                    })
                    .and_then(|text| parse_spec(&file, &text));
                match parsed {
                    Ok(spec) => specs.specs.push((file, spec)),
                    Err(broken) => specs.broken.push(broken),
                }
            }
        }
        specs
    }

    /// Whether a valid spec of `kind` exists.
    pub fn has_kind(&self, kind: &str) -> bool {
        self.specs.iter().any(|(_, s)| s.kind == kind)
    }

    /// How many specs were read whole.
    pub fn valid(&self) -> usize {
        self.specs.len()
    }

    /// Warnings about the specs that could not be read (none was needed).
    pub fn warnings(&self) -> Vec<String> {
        self.broken.iter().map(Broken::warning).collect()
    }

    /// The edits of `requests` (fully qualified names, see [`parse_device_name`]).
    pub fn resolve(&self, requests: &[String]) -> Result<Edits> {
        let mut edits = Edits::default();
        // Spec index -> its devices asked for, in the order asked.
        let mut chosen: Vec<(usize, Vec<usize>)> = Vec::new();
        for request in requests {
            let wanted = parse_device_name(request)?;
            if let Some(broken) = self
                .broken
                .iter()
                .find(|b| b.kind.as_deref() == Some(wanted.kind.as_str()))
            {
                return Err(broken.error().context(format!(
                    "reading the CDI spec of {wanted} ({})",
                    broken.file.display()
                )));
            }
            for (spec, device) in self.find(&wanted)? {
                match chosen.iter_mut().find(|(s, _)| *s == spec) {
                    Some((_, devices)) if devices.contains(&device) => {}
                    Some((_, devices)) => devices.push(device),
                    None => chosen.push((spec, vec![device])),
                }
            }
        }
        for (spec_index, devices) in chosen {
            let (file, spec) = &self.specs[spec_index];
            edits.add(file, &spec.kind, None, &spec.container_edits)?;
            for device in devices {
                let device = &spec.devices[device];
                edits.add(
                    file,
                    &spec.kind,
                    Some(&device.name),
                    &device.container_edits,
                )?;
            }
        }
        // Broken specs of other vendors did not matter: say so, and go on.
        edits.warnings.extend(self.warnings());
        Ok(edits)
    }

    /// The (spec, device) indexes of `wanted`: the later definition wins.
    fn find(&self, wanted: &DeviceName) -> Result<Vec<(usize, usize)>> {
        let of_kind: Vec<usize> = (0..self.specs.len())
            .filter(|&i| self.specs[i].1.kind == wanted.kind)
            .collect();
        let named = |name: &str| {
            of_kind.iter().rev().find_map(|&s| {
                self.specs[s]
                    .1
                    .devices
                    .iter()
                    .position(|d| d.name == name)
                    .map(|d| (s, d))
            })
        };
        if let Some(found) = named(&wanted.name) {
            return Ok(vec![found]);
        }
        if wanted.name == "all" && !of_kind.is_empty() {
            // Every device of the kind once, each from the spec that wins for its name.
            let mut names: Vec<&str> = Vec::new();
            for &s in &of_kind {
                for d in &self.specs[s].1.devices {
                    if !names.contains(&d.name.as_str()) {
                        names.push(&d.name);
                    }
                }
            }
            return Ok(names.into_iter().filter_map(named).collect());
        }
        if of_kind.is_empty() {
            let hint = if wanted.kind == NVIDIA_GPU {
                format!("{NVIDIA_HINT}; or create the box without that --device")
            } else {
                format!(
                    "the vendor's tools write its CDI spec; or point {SPEC_DIRS_ENV} at the directories that hold it"
                )
            };
            bail!(failure(
                format!(
                    "no CDI spec for {} (device {wanted}) in {}",
                    wanted.kind,
                    show_dirs(&self.dirs)
                ),
                hint
            ));
        }
        let mut known: Vec<String> = of_kind
            .iter()
            .flat_map(|&s| self.specs[s].1.devices.iter())
            .map(|d| format!("{}={}", wanted.kind, d.name))
            .collect();
        known.dedup();
        bail!(failure(
            format!(
                "CDI device {wanted} is not defined in the specs in {}",
                show_dirs(&self.dirs)
            ),
            format!("the devices of {} are: {}", wanted.kind, known.join(", ")),
        ))
    }
}

/// A device node or a mount of the host bound into the box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub host_path: PathBuf,
    pub container_path: PathBuf,
    pub read_only: bool,
    /// `nosuid`, `nodev`, `noexec` as the spec asks.
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    /// With what is mounted below it (`rbind`).
    pub recursive: bool,
    /// The device this is for, and its spec, for errors.
    pub origin: String,
}

/// A hook box carries out in the box at its start (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceHook {
    /// `update-ldcache`: these directories in the box's ld.so configuration, then
    /// `ldconfig`.
    LdCache { folders: Vec<PathBuf> },
    /// `create-symlinks`: each `link` made a symlink to `target` (replacing what is there).
    Symlinks { links: Vec<(PathBuf, PathBuf)> },
    /// `chmod`: the paths given `mode`.
    Chmod { mode: u32, paths: Vec<PathBuf> },
    /// Another program, run in the box as its stage says.
    Program {
        /// The OCI stage (`createContainer`, ...).
        stage: String,
        /// The program's path inside the box (a host program through `/run/host`).
        path: PathBuf,
        /// argv, the first being its name.
        args: Vec<String>,
        env: Vec<String>,
        /// Seconds before it is killed.
        timeout: Option<u64>,
    },
}

impl DeviceHook {
    /// A line for `--dry-run`.
    pub fn describe(&self) -> String {
        let paths = |p: &[PathBuf]| {
            p.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            DeviceHook::LdCache { folders } => {
                format!("ldconfig with {} (update-ldcache)", paths(folders))
            }
            DeviceHook::Symlinks { links } => format!(
                "symlinks {} (create-symlinks)",
                links
                    .iter()
                    .map(|(t, l)| format!("{} -> {}", l.display(), t.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DeviceHook::Chmod { mode, paths: p } => format!("chmod {mode:o} {}", paths(p)),
            DeviceHook::Program {
                stage, path, args, ..
            } => format!(
                "run {} {} ({stage} hook)",
                path.display(),
                args.iter().skip(1).cloned().collect::<Vec<_>>().join(" ")
            ),
        }
    }
}

/// What the requested devices do to a box's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    /// Variables set in the box (later wins).
    pub env: Vec<(String, String)>,
    /// Device nodes and mounts to bind.
    pub binds: Vec<Bind>,
    pub hooks: Vec<DeviceHook>,
    /// What was skipped or ignored, for the user.
    pub warnings: Vec<String>,
}

impl Edits {
    /// Add the edits of one spec (`device` None) or one of its devices.
    fn add(
        &mut self,
        file: &Path,
        kind: &str,
        device: Option<&str>,
        edits: &ContainerEdits,
    ) -> Result<()> {
        let origin = match device {
            Some(name) => format!("CDI device {kind}={name} ({})", file.display()),
            None => format!("CDI spec {}", file.display()),
        };
        for var in &edits.env {
            if let Some((name, value)) = var.split_once('=') {
                self.env.push((name.to_owned(), value.to_owned()));
            }
        }
        for node in &edits.device_nodes {
            let host = node.host_path.clone().unwrap_or_else(|| node.path.clone());
            if !reachable(&host, &origin)? {
                bail!(failure(
                    format!(
                        "the device node {} of {origin} does not exist on the host",
                        host.display()
                    ),
                    "load the device's driver, or regenerate the spec if the device is gone",
                ));
            }
            let under_dev = node.path.starts_with("/dev");
            if under_dev && host == node.path {
                // The box has the host's /dev: nothing to do.
                continue;
            }
            if under_dev && !node.path.exists() {
                bail!(failure(
                    format!(
                        "{origin} puts a device node at {}, which the host's /dev lacks",
                        node.path.display()
                    ),
                    "a rootless box shares the host's /dev and cannot add nodes to it; give the node a path outside /dev in the spec, or one the host has",
                ));
            }
            self.binds.push(Bind {
                host_path: host,
                container_path: node.path.clone(),
                read_only: false,
                nosuid: false,
                nodev: false,
                noexec: false,
                recursive: false,
                origin: origin.clone(),
            });
        }
        for m in &edits.mounts {
            let has = |o: &str| m.options.iter().any(|x| x == o);
            let bind = has("bind") || has("rbind");
            let kind = m.kind.as_deref().unwrap_or("");
            if !bind && !["", "bind", "none"].contains(&kind) {
                self.warnings.push(format!(
                    "{origin}: the {kind} mount at {} was skipped (a rootless box makes bind mounts only)",
                    m.container_path.display()
                ));
                continue;
            }
            if !reachable(&m.host_path, &origin)? {
                bail!(failure(
                    format!(
                        "{} (mounted at {} by {origin}) does not exist on the host",
                        m.host_path.display(),
                        m.container_path.display()
                    ),
                    "reinstall the driver, or regenerate the spec after a driver update (for NVIDIA: `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`)",
                ));
            }
            self.binds.push(Bind {
                host_path: m.host_path.clone(),
                container_path: m.container_path.clone(),
                read_only: has("ro"),
                nosuid: has("nosuid"),
                nodev: has("nodev"),
                noexec: has("noexec"),
                recursive: has("rbind"),
                origin: origin.clone(),
            });
        }
        for hook in &edits.hooks {
            match classify(hook) {
                Ok(Some(h)) => self.hooks.push(h),
                Ok(None) => {}
                Err(why) => self.warnings.push(format!(
                    "{origin}: the {} hook `{}` was skipped: {why}",
                    hook.hook_name,
                    std::iter::once(hook.path.display().to_string())
                        .chain(hook.args.iter().skip(1).cloned())
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
            }
        }
        if !edits.additional_gids.is_empty() {
            self.warnings.push(format!(
                "{origin}: additionalGids were skipped (a rootless box has the groups the user has)"
            ));
        }
        if edits.intel_rdt.is_some() {
            self.warnings.push(format!(
                "{origin}: intelRdt was skipped (resctrl needs root)"
            ));
        }
        if !edits.net_devices.is_empty() {
            self.warnings.push(format!(
                "{origin}: netDevices were skipped (a box has the host's network)"
            ));
        }
        Ok(())
    }
}

/// The values of `--flag X` and `--flag=X` in `args`.
fn flag_values(args: &[String], flag: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    let with_eq = format!("{flag}=");
    while let Some(arg) = iter.next() {
        if arg == flag {
            if let Some(value) = iter.next() {
                out.push(value.clone());
            }
        } else if let Some(value) = arg.strip_prefix(&with_eq) {
            out.push(value.to_owned());
        }
    }
    out
}

/// What box does for `hook`: `Ok(None)` when nothing is needed, `Err(why)` when it is
/// skipped.
fn classify(hook: &Hook) -> std::result::Result<Option<DeviceHook>, String> {
    let program = hook
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest: &[String] = hook.args.get(1..).unwrap_or(&[]);
    let nvidia = match program.as_str() {
        "nvidia-cdi-hook" => Some(rest),
        "nvidia-ctk" if rest.first().is_some_and(|a| a == "hook") => Some(&rest[1..]),
        _ => None,
    };
    if let Some(args) = nvidia {
        let sub = args.first().map(String::as_str).unwrap_or("");
        return match sub {
            "update-ldcache" => Ok(Some(DeviceHook::LdCache {
                folders: flag_values(args, "--folder")
                    .into_iter()
                    .map(PathBuf::from)
                    .collect(),
            })),
            "create-symlinks" => {
                let mut links = Vec::new();
                for link in flag_values(args, "--link") {
                    let Some((target, path)) = link.split_once("::") else {
                        return Err(format!("`--link {link}` is not TARGET::LINK"));
                    };
                    links.push((PathBuf::from(target), PathBuf::from(path)));
                }
                Ok(Some(DeviceHook::Symlinks { links }))
            }
            "chmod" => {
                let mode = flag_values(args, "--mode");
                let mode = mode
                    .first()
                    .and_then(|m| u32::from_str_radix(m, 8).ok())
                    .ok_or("its --mode is not an octal mode")?;
                Ok(Some(DeviceHook::Chmod {
                    mode,
                    paths: flag_values(args, "--path")
                        .into_iter()
                        .map(PathBuf::from)
                        .collect(),
                }))
            }
            // No process in a rootless box can make device nodes.
            "disable-device-node-modification" => Ok(None),
            _ => Err(format!(
                "box does the NVIDIA hooks update-ldcache, create-symlinks and chmod itself, not `{sub}`"
            )),
        };
    }
    let stage = hook.hook_name.as_str();
    let path = match stage {
        // Resolved in the runtime's (the host's) namespace.
        "createRuntime" | "createContainer" | "prestart" => {
            Path::new(crate::host::fs::HOST_ROOT_IN_BOX)
                .join(hook.path.strip_prefix("/").unwrap_or(&hook.path))
        }
        "startContainer" => hook.path.clone(),
        _ => {
            return Err(format!(
                "box runs hooks of the createRuntime, createContainer, startContainer and prestart stages, not {stage}"
            ));
        }
    };
    Ok(Some(DeviceHook::Program {
        stage: stage.to_owned(),
        path,
        args: if hook.args.is_empty() {
            vec![hook.path.display().to_string()]
        } else {
            hook.args.clone()
        },
        env: hook.env.clone(),
        timeout: hook.timeout.map(|t| t as u64),
    }))
}

/// The devices of a box at this start: `devices` as asked, plus NVIDIA's GPUs when
/// `nvidia` is `Some(true)`, or `None` (automatic) and the host has NVIDIA's spec. Reads
/// the specs in `dirs`; returns nothing to do without a request.
pub fn for_box(devices: &[String], nvidia: Option<bool>, dirs: &[PathBuf]) -> Result<Edits> {
    if devices.is_empty() && nvidia == Some(false) {
        return Ok(Edits::default());
    }
    let specs = Specs::load(dirs);
    let mut requests = devices.to_vec();
    let asks_nvidia = devices.iter().any(|d| d.starts_with("nvidia.com/gpu="));
    match nvidia {
        Some(true) if !asks_nvidia => {
            if !specs.has_kind(NVIDIA_GPU)
                && !specs
                    .broken
                    .iter()
                    .any(|b| b.kind.as_deref() == Some(NVIDIA_GPU))
            {
                bail!(failure(
                    format!(
                        "--nvidia: no CDI spec for NVIDIA GPUs ({NVIDIA_GPU}) in {}",
                        show_dirs(&specs.dirs)
                    ),
                    format!("{NVIDIA_HINT}; or create the box without --nvidia"),
                ));
            }
            requests.push(format!("{NVIDIA_GPU}=all"));
        }
        None if !asks_nvidia && specs.has_kind(NVIDIA_GPU) => {
            // Automatic, as toolbox does: the box's own devices decide, NVIDIA's GPUs
            // that cannot be added are a warning, never a failed start.
            let mut with_gpus = requests.clone();
            with_gpus.push(format!("{NVIDIA_GPU}=all"));
            return specs.resolve(&with_gpus).or_else(|gpu_error| {
                let mut edits = specs.resolve(&requests)?;
                edits.warnings.push(format!(
                    "NVIDIA's GPUs were not added to the box: {} (`--no-nvidia` at create leaves them out)",
                    crate::error::message(&gpu_error)
                ));
                Ok(edits)
            });
        }
        _ => {}
    }
    if requests.is_empty() {
        return Ok(Edits::default());
    }
    specs.resolve(&requests)
}

/// Whether host path `path` (named by `origin`) exists; one that cannot be looked up
/// (EACCES on the way) is an error saying so, not "does not exist".
fn reachable(path: &Path, origin: &str) -> Result<bool> {
    path.try_exists()
        .with_context(|| {
            format!(
                "looking up {} (named by {origin}) on the host",
                path.display()
            )
        })
        .hint("a directory on the way is not searchable by you; check its permissions")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NVIDIA_YAML: &str = r#"
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/null
- name: all
  containerEdits:
    deviceNodes:
    - path: /dev/null
containerEdits:
  env:
  - NVIDIA_VISIBLE_DEVICES=void
  hooks:
  - hookName: createContainer
    path: /usr/bin/nvidia-cdi-hook
    args: [nvidia-cdi-hook, create-symlinks, --link, libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so]
  - hookName: createContainer
    path: /usr/bin/nvidia-ctk
    args: [nvidia-ctk, hook, update-ldcache, --folder, /usr/lib/x86_64-linux-gnu]
  - hookName: createContainer
    path: /usr/bin/nvidia-cdi-hook
    args: [nvidia-cdi-hook, chmod, --mode, "755", --path, /dev/dri]
  - hookName: createContainer
    path: /usr/bin/nvidia-cdi-hook
    args: [nvidia-cdi-hook, disable-device-node-modification]
  - hookName: createContainer
    path: /usr/bin/nvidia-cdi-hook
    args: [nvidia-cdi-hook, enable-cuda-compat, --host-driver-version=550.1]
  mounts:
  - hostPath: /etc/hostname
    containerPath: /etc/box-test-hostname
    options: [ro, nosuid, nodev, bind]
"#;

    #[test]
    fn nvidia_ctk_hooks_become_box_s_own() {
        let spec = parse_spec(Path::new("/etc/cdi/nvidia.yaml"), NVIDIA_YAML).unwrap();
        let mut edits = Edits::default();
        edits
            .add(
                Path::new("/etc/cdi/nvidia.yaml"),
                &spec.kind,
                None,
                &spec.container_edits,
            )
            .unwrap();
        assert_eq!(
            edits.env,
            vec![("NVIDIA_VISIBLE_DEVICES".into(), "void".into())]
        );
        assert_eq!(
            edits.hooks,
            vec![
                DeviceHook::Symlinks {
                    links: vec![(
                        "libcuda.so.1".into(),
                        "/usr/lib/x86_64-linux-gnu/libcuda.so".into()
                    )]
                },
                DeviceHook::LdCache {
                    folders: vec!["/usr/lib/x86_64-linux-gnu".into()]
                },
                DeviceHook::Chmod {
                    mode: 0o755,
                    paths: vec!["/dev/dri".into()]
                },
            ]
        );
        assert_eq!(edits.warnings.len(), 1, "{:?}", edits.warnings);
        assert!(edits.warnings[0].contains("enable-cuda-compat"));
        let bind = &edits.binds[0];
        assert!(bind.read_only && bind.nosuid && bind.nodev && !bind.noexec && !bind.recursive);
    }

    #[test]
    fn malformed_specs_name_the_field() {
        let file = Path::new("/etc/cdi/x.yaml");
        let text = "cdiVersion: 0.6.0\nkind: example.com/gpu\ndevices:\n- name: a\n  containerEdits:\n    mounts:\n    - containerPath: /x\n";
        let err = parse_spec(file, text).unwrap_err();
        assert!(
            err.error.starts_with(
                "field `devices[0].containerEdits.mounts[0]`: missing field `hostPath`"
            ),
            "{}",
            err.error
        );
        assert_eq!(err.kind.as_deref(), Some("example.com/gpu"));
        let json = r#"{"cdiVersion":"0.6.0","kind":"example.com/gpu","devices":[{"name":"a","containerEdits":{"env":[1]}}]}"#;
        let err = parse_spec(Path::new("/etc/cdi/x.json"), json).unwrap_err();
        assert!(
            err.error
                .starts_with("field `devices[0].containerEdits.env[0]`"),
            "{}",
            err.error
        );
        let err = parse_spec(
            file,
            "cdiVersion: 9.9.9\nkind: a.b/c\ndevices: [{name: a}]\n",
        )
        .unwrap_err();
        assert!(err.error.starts_with("field `cdiVersion`"), "{}", err.error);
        let err = parse_spec(
            file,
            "cdiVersion: 0.6.0\nkind: a.b/c\nbogus: 1\ndevices: [{name: a}]\n",
        )
        .unwrap_err();
        assert!(err.error.contains("bogus"), "{}", err.error);
    }

    #[test]
    fn device_names_are_checked() {
        assert_eq!(
            parse_device_name("nvidia.com/gpu=all").unwrap(),
            DeviceName {
                kind: "nvidia.com/gpu".into(),
                name: "all".into()
            }
        );
        parse_device_name("example.com/gpu=0").unwrap();
        for bad in [
            "gpu=0",
            "nvidia.com/gpu",
            "nvidia.com/gpu=",
            "a/b/c=1",
            "x.com/-a=1",
        ] {
            assert!(parse_device_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_hooks_run_from_the_host_root_or_the_box() {
        let hook = |stage: &str| Hook {
            hook_name: stage.into(),
            path: "/usr/bin/vendor-hook".into(),
            args: vec![],
            env: vec![],
            timeout: Some(5),
        };
        assert_eq!(
            classify(&hook("createContainer")).unwrap(),
            Some(DeviceHook::Program {
                stage: "createContainer".into(),
                path: "/run/host/usr/bin/vendor-hook".into(),
                args: vec!["/usr/bin/vendor-hook".into()],
                env: vec![],
                timeout: Some(5)
            })
        );
        assert!(matches!(
            classify(&hook("startContainer")).unwrap(),
            Some(DeviceHook::Program { path, .. }) if path == Path::new("/usr/bin/vendor-hook")
        ));
        assert!(classify(&hook("poststop")).is_err());
    }
}
