//! The hooks of a box's CDI devices ([`DeviceHook`]), carried out by the holder inside the
//! box at each start, after the pivot and the box's files, as the box's root when it has
//! one. Which hooks exist and why box does NVIDIA's itself is in [`crate::host::cdi`].
//!
//! Invariants: nothing here writes to the holder's stdout (the protocol pipe to the
//! starter): programs get stdin from a pipe (the OCI state), stdout and stderr in an
//! anonymous file whose text a failure quotes; a program with a timeout is killed when it
//! passes it; a hook that fails fails the start (CDI: "Container runtimes should surface
//! an error when hooks fail to execute"), except a `chmod` of a path that is not the
//! box's own (a host path the box shares keeps the host's mode), which is a notice.
//!
//! What box does itself acts on the box's own files only, through [`BoxFs`] (see
//! [`crate::sys::boxfs`]): the ld.so configuration, the links of `create-symlinks` and
//! the modes of `chmod` are reached from the box's own filesystems, never through a
//! symlink into the home, `/tmp`, `/run/host` or `/dev` the box shares with the host (a
//! link that would land there fails the start, a chmod there is a notice). Hook
//! programs are the spec's: what they do is theirs, as root of the box.
//!
//! The mount points of CDI binds that the box lacked are made in its own tree (the
//! overlay's upper directory, see the holder's apply step) and outlive the start. The
//! box's record lists those box made
//! ([`crate::store::containers::ContainerRecord::device_mount_points`]: box's own
//! bookkeeping, on the host side, never a file in the box); at the next start, the ones
//! the specs no longer name (the versioned libraries of the driver before its update) are
//! removed when they are still what box made: an empty file or an empty directory.

use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::error::{HintExt, failure};
use crate::host::cdi::DeviceHook;
use crate::sys::boxfs::BoxFs;

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

/// Remove the mount points box made for the CDI binds of earlier starts (`earlier`, from
/// the box's record) that this start's binds (`current`) no longer have, when they are
/// still an empty file or directory. Returns the list for the record: those of `earlier`
/// still current, and those made at this start (`made`, the mount points the holder
/// created) that are current. Best effort: what is left is only an empty file.
pub fn tidy_mount_points(
    fs: &BoxFs,
    earlier: &[PathBuf],
    current: &[PathBuf],
    made: &[PathBuf],
) -> Vec<PathBuf> {
    let mut kept = Vec::new();
    for path in earlier {
        if current.contains(path) {
            kept.push(path.clone());
        } else {
            let _ = fs.remove_if_empty(path);
        }
    }
    for path in made {
        if current.contains(path) && !kept.contains(path) {
            kept.push(path.clone());
        }
    }
    kept
}

/// What a hook program is told about the box (the OCI runtime spec's state).
pub struct BoxState<'a> {
    pub name: &'a str,
    /// The box's directory in the store, on the host (it stands in for a bundle).
    pub bundle: &'a Path,
}

/// Carry out `hooks` in the box `fs` (this process's root is the box's); `notice` tells
/// the user something that did not stop the start.
pub fn run_hooks(
    fs: &BoxFs,
    hooks: &[DeviceHook],
    state: &BoxState<'_>,
    notice: &mut dyn FnMut(String),
) -> Result<()> {
    for hook in hooks {
        let what = || format!("the CDI device hook `{}`", hook.describe());
        match hook {
            DeviceHook::LdCache { folders } => ld_cache(fs, folders, notice).with_context(what)?,
            DeviceHook::Symlinks { links } => {
                for (target, link) in links {
                    symlink(fs, target, link).with_context(what)?;
                }
            }
            DeviceHook::Chmod { mode, paths } => {
                for path in paths {
                    if let Err(err) = fs.chmod(path, *mode) {
                        let why = if crate::sys::boxfs::is_leads_out(&err) {
                            "it is not the box's own: box changes only the box's own files, and a path the box shares with the host keeps the host's mode"
                        } else {
                            "it may be the host's"
                        };
                        notice(format!(
                            "{}: {} kept its mode ({}): {why}",
                            what(),
                            path.display(),
                            crate::error::message(&err)
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
fn ld_cache(fs: &BoxFs, folders: &[PathBuf], notice: &mut dyn FnMut(String)) -> Result<()> {
    let conf = Path::new(LD_SO_CONF);
    let dir = conf.parent().expect("LD_SO_CONF has a directory");
    fs.create_dir_all(dir, 0o755)?;
    let text: String = folders
        .iter()
        .map(|f| format!("{}\n", f.display()))
        .collect();
    fs.write(
        conf,
        format!("# CDI devices of this box (box writes this at each start)\n{text}").as_bytes(),
        0o644,
        None,
    )?;
    // ldconfig reads ld.so.conf.d only when ld.so.conf includes it (minimal images may
    // have no ld.so.conf at all).
    let top = Path::new("/etc/ld.so.conf");
    if fs.stat(top)?.is_none() {
        fs.write(top, b"include /etc/ld.so.conf.d/*.conf\n", 0o644, None)?;
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
fn symlink(fs: &BoxFs, target: &Path, link: &Path) -> Result<()> {
    let what = || {
        format!(
            "making {} a symlink to {}",
            link.display(),
            target.display()
        )
    };
    if fs
        .lstat(link)
        .with_context(what)?
        .is_some_and(|s| s.is_dir())
    {
        return Err(failure(
            format!("{}: {} is a directory", what(), link.display()),
            "remove that directory in the box, then start it again",
        ));
    }
    if let Some(parent) = link.parent() {
        fs.create_dir_all(parent, 0o755).with_context(what)?;
    }
    fs.symlink(link, target).with_context(what)
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
