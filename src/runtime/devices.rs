//! The hooks of a box's CDI devices ([`DeviceHook`]), carried out by the holder inside the
//! box at each start, after the pivot and the box's files, as the box's root when it has
//! one. Which hooks exist and why box does NVIDIA's itself is in [`crate::host::cdi`].
//!
//! Invariants: nothing here writes to the holder's stdout (the protocol pipe to the
//! starter): programs get stdin from a pipe (the OCI state), stdout and stderr in an
//! anonymous file whose text a failure quotes; a program with a timeout is killed when it
//! passes it; a hook that fails fails the start (CDI: "Container runtimes should surface
//! an error when hooks fail to execute"), except a `chmod` the kernel refuses on a host
//! path the box shares (its modes are the host's), which is a notice.
//!
//! The mount points of CDI binds that the box lacked are made in its own tree (the
//! overlay's upper directory) and outlive the start. `/etc/box/cdi-mount-points` lists
//! those of the last start; at the next, the ones the specs no longer name (the versioned
//! libraries of the driver before its update) are removed when they are still what box
//! made: an empty file or an empty directory.

use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::error::{HintExt, failure};
use crate::host::cdi::DeviceHook;

/// The file box writes the `update-ldcache` folders to, in the box.
pub const LD_SO_CONF: &str = "/etc/ld.so.conf.d/00-box-cdi.conf";
/// Where distributions keep `ldconfig`.
const LDCONFIG: [&str; 4] = [
    "/sbin/ldconfig",
    "/usr/sbin/ldconfig",
    "/usr/bin/ldconfig",
    "/bin/ldconfig",
];
/// The PATH of the programs run here.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the mount points of the last start's CDI binds are listed, in the box.
const MOUNT_POINTS: &str = "/etc/box/cdi-mount-points";

/// Remove the mount points of an earlier start's CDI binds that `current` (this start's)
/// no longer has, when they are an empty file or directory; then list `current`. Best
/// effort: what is left is only an empty file.
pub fn tidy_mount_points(current: &[PathBuf]) {
    let earlier = std::fs::read_to_string(MOUNT_POINTS).unwrap_or_default();
    for path in earlier.lines().map(Path::new) {
        if current.iter().any(|c| c == path) {
            continue;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() && meta.len() == 0 => {
                let _ = std::fs::remove_file(path);
            }
            // Fails unless empty, as it should.
            Ok(meta) if meta.is_dir() => {
                let _ = std::fs::remove_dir(path);
            }
            _ => {}
        }
    }
    if current.is_empty() && earlier.is_empty() {
        return;
    }
    let list: String = current
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    if let Some(dir) = Path::new(MOUNT_POINTS).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(MOUNT_POINTS, list);
}

/// What a hook program is told about the box (the OCI runtime spec's state).
pub struct BoxState<'a> {
    pub name: &'a str,
    /// The box's directory in the store, on the host (it stands in for a bundle).
    pub bundle: &'a Path,
}

/// Carry out `hooks` in this process's root (the box's); `notice` tells the user
/// something that did not stop the start.
pub fn run_hooks(
    hooks: &[DeviceHook],
    state: &BoxState<'_>,
    notice: &mut dyn FnMut(String),
) -> Result<()> {
    for hook in hooks {
        let what = || format!("the CDI device hook `{}`", hook.describe());
        match hook {
            DeviceHook::LdCache { folders } => ld_cache(folders, notice).with_context(what)?,
            DeviceHook::Symlinks { links } => {
                for (target, link) in links {
                    symlink(target, link).with_context(what)?;
                }
            }
            DeviceHook::Chmod { mode, paths } => {
                use std::os::unix::fs::PermissionsExt;
                for path in paths {
                    if let Err(err) =
                        std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                    {
                        notice(format!(
                            "{}: {} kept its mode ({err}): it is the host's",
                            what(),
                            path.display()
                        ));
                    }
                }
            }
            DeviceHook::Program {
                path,
                args,
                env,
                timeout,
                stage,
            } => {
                let state = serde_json::json!({
                    "ociVersion": "1.2.0",
                    "id": state.name,
                    "status": if stage == "startContainer" { "created" } else { "creating" },
                    "pid": std::process::id(),
                    "bundle": state.bundle,
                    "annotations": {},
                });
                let mut command = Command::new(path);
                command
                    .arg0(args.first().map_or(path.as_os_str(), |a| a.as_ref()))
                    .args(args.iter().skip(1))
                    .env_clear()
                    .envs(env.iter().filter_map(|e| e.split_once('=')));
                run(command, Some(state.to_string()), timeout.map(Duration::from_secs))
                    .with_context(what)
                    .hint("the hook comes from the device's CDI spec: fix or regenerate the spec, or remove the box and create it again without that device")?;
            }
        }
    }
    Ok(())
}

/// `update-ldcache`: `folders` in the box's ld.so configuration, then its `ldconfig`.
fn ld_cache(folders: &[PathBuf], notice: &mut dyn FnMut(String)) -> Result<()> {
    let conf = Path::new(LD_SO_CONF);
    let dir = conf.parent().expect("LD_SO_CONF has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text: String = folders
        .iter()
        .map(|f| format!("{}\n", f.display()))
        .collect();
    std::fs::write(
        conf,
        format!("# CDI devices of this box (box writes this at each start)\n{text}"),
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    // ldconfig reads ld.so.conf.d only when ld.so.conf includes it (minimal images may
    // have no ld.so.conf at all).
    let top = Path::new("/etc/ld.so.conf");
    if !top.exists() {
        std::fs::write(top, "include /etc/ld.so.conf.d/*.conf\n")
            .with_context(|| format!("writing {}", top.display()))?;
    }
    let Some(ldconfig) = LDCONFIG.iter().map(Path::new).find(|p| p.exists()) else {
        notice(format!(
            "the box has no ldconfig (a musl distribution?): the libraries in {} are not in its linker cache",
            text.trim().replace('\n', ", ")
        ));
        return Ok(());
    };
    let mut command = Command::new(ldconfig);
    command.env_clear().env("PATH", PATH);
    run(command, None, None)
}

/// `create-symlinks`: `link` made a symlink to `target`, replacing a file or link there.
fn symlink(target: &Path, link: &Path) -> Result<()> {
    let what = || {
        format!(
            "making {} a symlink to {}",
            link.display(),
            target.display()
        )
    };
    match std::fs::symlink_metadata(link) {
        Ok(_) if std::fs::read_link(link).is_ok_and(|t| t == target) => return Ok(()),
        Ok(meta) if meta.is_dir() => {
            return Err(failure(
                format!("{}: {} is a directory", what(), link.display()),
                "remove that directory in the box, then start it again",
            ));
        }
        Ok(_) => std::fs::remove_file(link)
            .with_context(|| format!("removing {}", link.display()))
            .with_context(what)?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))
                    .with_context(what)?;
            }
        }
        Err(err) => return Err(err).with_context(what),
    }
    std::os::unix::fs::symlink(target, link).with_context(what)
}

/// Run `command` to its end (killed after `timeout`), `input` on its stdin; its output
/// goes to an anonymous file that a failure quotes.
fn run(mut command: Command, input: Option<String>, timeout: Option<Duration>) -> Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut output = tempfile::tempfile().context("creating a file for the hook's output")?;
    command
        .current_dir("/")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(output.try_clone().context("duplicating a descriptor")?)
        .stderr(output.try_clone().context("duplicating a descriptor")?);
    let mut child = command
        .spawn()
        .with_context(|| format!("running {program}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A hook that does not read its state is fine.
        let _ = stdin.write_all(text.as_bytes());
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let status = loop {
        if deadline.is_none() {
            break child.wait().context("waiting for the hook")?;
        }
        if let Some(status) = child.try_wait().context("waiting for the hook")? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{program} did not finish within {} s",
                timeout.unwrap_or_default().as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if !status.success() {
        let mut text = String::new();
        let _ = output.rewind();
        let _ = output.read_to_string(&mut text);
        let text = text.trim();
        bail!(
            "{program} failed ({status}){}",
            if text.is_empty() {
                String::new()
            } else {
                format!(": {}", text.replace('\n', " "))
            }
        );
    }
    Ok(())
}
