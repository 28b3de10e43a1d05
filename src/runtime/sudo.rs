//! `sudo` in a box without subordinate ids: box's stand-in for the image's sudo, which
//! cannot work there (it is a setuid file owned by the user's own id, the only id the
//! box maps). It runs the command as box's fake root ([`super::fakeroot`]).
//!
//! How it is reached: the holder of such a box writes a small shell shim at
//! [`SHIM_PATH`] (`/usr/local/bin/sudo`, ahead of `/usr/bin` in every usual PATH,
//! Debian's login PATH and sudo's own secure_path) that execs `box __fakeroot sudo ARGS`
//! with the host's box through `/run/host` ([`shim`]). Not a bind over `/usr/bin/sudo`:
//! dpkg replaces that file by rename when sudo is upgraded, which a mount point refuses
//! (EBUSY). A script that calls `/usr/bin/sudo` by its full path gets the image's sudo,
//! which fails.
//!
//! What it understands: sudo's common options, parsed as sudo does (clustered short
//! options, `--opt=value`, `--`, `VAR=value` before the command): `-n`, `-E`,
//! `--preserve-env[=LIST]`, `-H`, `-i`, `-s`, `-u root|0|#0` (or the user's own name:
//! then no root at all), `-g root`, `-D DIR`, `-S`, `-k`/`-K`/`-v` (no password, nothing
//! to cache), `-l`, `-V`, `-h`, and ignores the prompt, askpass, close-from and timeout
//! options. `-u OTHER` fails clearly: the box has no other user. The environment is
//! reset as sudo's default policy does (env_reset, Debian's secure_path), keeping the
//! box's own `CONTAINER_ID`/`container`.
//!
//! Invariant: in a box that maps more than one id (subordinate ids: the image's sudo
//! works), the shim hands over to the image's sudo unchanged, so a stale shim is harmless.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::error::{Exit, failure};

/// Where the shim lives in a box.
pub const SHIM_PATH: &str = "/usr/local/bin/sudo";

/// The shim's text, for the host's box at `box_binary`.
///
/// It runs the host's box through `/run/host` with the host's own dynamic loader and
/// libraries (ld.so(8) run as a program, `--library-path`): the box's libc may be another
/// (musl in Alpine, busybox images without any) or older than the one box was built
/// against, so `/usr/local/bin/box` on the box's libc cannot be relied on. A static box
/// (no `PT_INTERP`) runs directly. Reads the binary's ELF header.
pub fn shim(box_binary: &Path) -> String {
    let host = |p: &Path| {
        Path::new(crate::hostfs::HOST_ROOT_IN_BOX).join(p.strip_prefix("/").unwrap_or(p))
    };
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    // Real paths, resolved on the host: the host's absolute symlinks (Debian's
    // /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/...) would resolve in the box.
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let exe = quote(&host(&real(box_binary)));
    let run = match elf_interpreter(box_binary) {
        Some(interp) => {
            let interp = real(&interp);
            let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
            let mut dirs: Vec<PathBuf> = Vec::new();
            for dir in [
                interp.parent().map(Path::to_path_buf).unwrap_or_default(),
                Path::new("/lib").join(&triplet),
                Path::new("/usr/lib").join(&triplet),
                "/lib64".into(),
                "/usr/lib64".into(),
                "/lib".into(),
                "/usr/lib".into(),
            ] {
                let Ok(dir) = std::fs::canonicalize(&dir) else {
                    continue;
                };
                let dir = host(&dir);
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
            let path = dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            format!(
                "{} --library-path {} {exe}",
                quote(&host(&interp)),
                quote(Path::new(&path))
            )
        }
        None => exe,
    };
    format!(
        "#!/bin/sh\n\
         # Written by box: this box maps only your own user id, so the image's sudo cannot work;\n\
         # this runs the command as box's fake root instead (see `box create --dry-run`).\n\
         exec {run} __fakeroot sudo \"$@\"\n"
    )
}

/// The program interpreter (`PT_INTERP`, elf(5)) of the 64-bit little-endian ELF file at
/// `path`, or None (not such a file, or static).
pub fn elf_interpreter(path: &Path) -> Option<PathBuf> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::ffi::OsStrExt as _;
    let mut file = std::fs::File::open(path).ok()?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header).ok()?;
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB.
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (
        u64_at(&header, 0x20),
        usize::from(u16_at(&header, 0x36)),
        usize::from(u16_at(&header, 0x38)),
    );
    if phentsize < 56 || phnum > 256 {
        return None;
    }
    let mut table = vec![0u8; phentsize * phnum];
    file.seek(SeekFrom::Start(phoff)).ok()?;
    file.read_exact(&mut table).ok()?;
    let entry = table
        .chunks(phentsize)
        .find(|ph| u32::from_le_bytes(ph[..4].try_into().unwrap()) == 3)?; // PT_INTERP
    let (offset, size) = (u64_at(entry, 8), u64_at(entry, 32));
    if size == 0 || size > 4096 {
        return None;
    }
    let mut name = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut name).ok()?;
    let name = name.split(|&b| b == 0).next()?;
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name));
    path.is_absolute().then_some(path)
}

/// Debian's `secure_path` (and sudo's usual one): the PATH commands run with.
pub const SECURE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables sudo's env_reset keeps by default (sudoers(5), plus the locale ones), and
/// the box's own markers.
const KEEP: &[&str] = &[
    "COLORS",
    "DISPLAY",
    "HOSTNAME",
    "KRB5CCNAME",
    "LS_COLORS",
    "PS1",
    "PS2",
    "XAUTHORITY",
    "XAUTHORIZATION",
    "XDG_CURRENT_DESKTOP",
    "TZ",
    "TERM",
    "LANG",
    "LANGUAGE",
    "LINGUAS",
    "CONTAINER_ID",
    "container",
];

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run,
    /// -v, -k, -K alone: nothing to validate or forget (no password in a box).
    Nothing,
    List,
    Version,
    Help,
}

/// Which environment to keep.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Preserve {
    #[default]
    Reset,
    All,
    These(Vec<String>),
}

/// A parsed sudo command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub login: bool,
    pub shell: bool,
    pub set_home: bool,
    pub preserve: Preserve,
    pub user: Option<String>,
    pub group: Option<String>,
    pub chdir: Option<String>,
    pub assignments: Vec<(String, String)>,
    pub command: Vec<OsString>,
}

const USAGE: &str = "usage: sudo [-EHiknSsv] [-D directory] [-g group] [-u user] [VAR=value] [-i | -s] [command [arg ...]]";

fn usage(message: impl std::fmt::Display) -> anyhow::Error {
    failure(format!("sudo: {message}"), USAGE).context(Exit(1))
}

/// Parse sudo's arguments (without argv[0]).
pub fn parse(args: &[OsString]) -> Result<Request> {
    let mut req = Request {
        action: Action::Run,
        login: false,
        shell: false,
        set_home: false,
        preserve: Preserve::Reset,
        user: None,
        group: None,
        chdir: None,
        assignments: Vec::new(),
        command: Vec::new(),
    };
    let mut i = 0;
    let text = |a: &OsString| a.to_string_lossy().into_owned();
    // The value of an option taking one: the rest of the cluster, or the next argument.
    let take = |i: &mut usize, rest: &str, name: &str| -> Result<String> {
        if !rest.is_empty() {
            return Ok(rest.to_owned());
        }
        *i += 1;
        args.get(*i)
            .map(text)
            .ok_or_else(|| usage(format!("option `{name}` requires an argument")))
    };
    while i < args.len() {
        let arg = text(&args[i]);
        if arg == "--" {
            i += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let value_of = |i: &mut usize| match &value {
                Some(v) => Ok(v.clone()),
                None => take(i, "", name),
            };
            match name {
                "non-interactive" | "stdin" | "bell" | "preserve-groups" | "askpass" => {}
                "preserve-env" => {
                    req.preserve = match &value {
                        Some(list) => Preserve::These(
                            list.split(',')
                                .filter(|s| !s.is_empty())
                                .map(str::to_owned)
                                .collect(),
                        ),
                        None => Preserve::All,
                    }
                }
                "login" => req.login = true,
                "shell" => req.shell = true,
                "set-home" => req.set_home = true,
                "user" => req.user = Some(value_of(&mut i)?),
                "group" => req.group = Some(value_of(&mut i)?),
                "chdir" => req.chdir = Some(value_of(&mut i)?),
                "prompt" | "close-from" | "command-timeout" | "other-user" | "host" => {
                    value_of(&mut i)?;
                }
                "validate" | "reset-timestamp" | "remove-timestamp" => req.action = Action::Nothing,
                "list" => req.action = Action::List,
                "version" => req.action = Action::Version,
                "help" => req.action = Action::Help,
                other => return Err(unsupported(&format!("--{other}"))),
            }
            i += 1;
            continue;
        }
        let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) else {
            break;
        };
        for (at, flag) in cluster.char_indices() {
            let rest = &cluster[at + flag.len_utf8()..];
            match flag {
                'n' | 'S' | 'A' | 'B' | 'P' => {}
                'E' => req.preserve = Preserve::All,
                'H' => req.set_home = true,
                'i' => req.login = true,
                's' => req.shell = true,
                'k' | 'K' | 'v' => {
                    if req.action == Action::Run {
                        req.action = Action::Nothing
                    }
                }
                'l' => req.action = Action::List,
                'V' => req.action = Action::Version,
                'h' => req.action = Action::Help,
                'u' | 'g' | 'D' | 'p' | 'C' | 'T' | 'U' => {
                    let value = take(&mut i, rest, &format!("-{flag}"))?;
                    match flag {
                        'u' => req.user = Some(value),
                        'g' => req.group = Some(value),
                        'D' => req.chdir = Some(value),
                        _ => {}
                    }
                    break;
                }
                other => return Err(unsupported(&format!("-{other}"))),
            }
        }
        i += 1;
    }
    while let Some(arg) = args.get(i) {
        let bytes = arg.as_bytes();
        match bytes.iter().position(|&b| b == b'=') {
            Some(eq)
                if eq > 0
                    && bytes[..eq]
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                let (name, value) = arg.to_string_lossy().split_once('=').map_or_else(
                    || (String::new(), String::new()),
                    |(n, v)| (n.to_owned(), v.to_owned()),
                );
                req.assignments.push((name, value));
                i += 1;
            }
            _ => break,
        }
    }
    req.command = args[i..].to_vec();
    // `sudo -k CMD` forgets the (absent) credentials and runs CMD.
    if req.action == Action::Nothing && !req.command.is_empty() {
        req.action = Action::Run;
    }
    if req.action == Action::Run && req.command.is_empty() && !req.login && !req.shell {
        return Err(usage("a command is required"));
    }
    if req.login && req.shell {
        return Err(usage("you may not specify both the -i and -s options"));
    }
    Ok(req)
}

fn unsupported(option: &str) -> anyhow::Error {
    failure(
        format!(
            "sudo: option `{option}` is not available in this box (box's stand-in for sudo: the box maps only your own user id)"
        ),
        format!("{USAGE}; or use a box with subordinate ids, where the image's sudo runs"),
    )
    .context(Exit(1))
}

/// Whom the command runs as.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Root,
    /// The user themself: no fake root.
    Me,
}

fn target(req: &Request, me: &str, uid: u32) -> Result<Target> {
    let is_root = |name: &str| matches!(name, "root" | "0" | "#0");
    let is_me = |name: &str| name == me || name == uid.to_string() || name == format!("#{uid}");
    let user = match req.user.as_deref() {
        None => Target::Root,
        Some(u) if is_root(u) => Target::Root,
        Some(u) if is_me(u) => Target::Me,
        Some(other) => {
            return Err(failure(
                format!("sudo: cannot run a command as `{other}` in this box: it maps only your own user id, so its only users are you and box's fake root"),
                "use `sudo CMD` (root) or no sudo (yourself); a box with subordinate ids (see `box create --help`) has every user of its image",
            )
            .context(Exit(1)));
        }
    };
    if let Some(group) = req.group.as_deref()
        && !is_root(group)
    {
        return Err(failure(
            format!("sudo: cannot run a command with group `{group}` in this box: it maps only your own group id"),
            "leave out -g, or use `-g root`",
        )
        .context(Exit(1)));
    }
    Ok(user)
}

/// Entry point of `box __fakeroot sudo ARGS` (from the shim).
pub fn main(args: &[String]) -> Result<ExitCode> {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    // A box with more than one id has a working sudo of its own.
    if !super::fakeroot::maps_one_id() && !rustix::process::geteuid().is_root() {
        return Err(hand_over(&args));
    }
    let req = parse(&args)?;
    match req.action {
        Action::Run => {}
        Action::Nothing => return Ok(ExitCode::SUCCESS),
        Action::List => {
            println!(
                "In this box (no subordinate ids) you may run any command as box's fake root, without a password:\n    (root) NOPASSWD: ALL"
            );
            return Ok(ExitCode::SUCCESS);
        }
        Action::Version => {
            println!(
                "box {} stand-in for sudo (fake root in a box without subordinate ids)",
                env!("CARGO_PKG_VERSION")
            );
            return Ok(ExitCode::SUCCESS);
        }
        Action::Help => {
            println!(
                "{USAGE}\n\nbox's stand-in for sudo in a box that maps only your own user id: the command runs as\nroot in a user namespace nested in the box's, where ownership and identity changes are\naccepted and not kept. Every file it writes is yours."
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    let me = std::env::var("USER").unwrap_or_default();
    let uid = rustix::process::getuid().as_raw();
    let target = target(&req, &me, uid)?;
    if target == Target::Root && !rustix::process::geteuid().is_root() {
        super::fakeroot::become_fake_root()?;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let account = match target {
        Target::Root => account_of(&passwd, 0).unwrap_or_else(|| Account {
            name: "root".into(),
            home: "/root".into(),
            shell: "/bin/sh".into(),
        }),
        Target::Me => account_of(&passwd, uid).unwrap_or_else(|| Account {
            name: me.clone(),
            home: std::env::var("HOME").unwrap_or_else(|_| "/".into()),
            shell: "/bin/sh".into(),
        }),
    };
    let invoker = Invoker {
        name: me,
        uid,
        gid: rustix::process::getgid().as_raw(),
        shell: std::env::var("SHELL").ok(),
    };
    let plan = plan(&req, &account, &invoker, std::env::vars_os().collect());
    match exec(plan)? {}
}

/// Exec the image's own sudo with the same arguments (a box with subordinate ids).
fn hand_over(args: &[OsString]) -> anyhow::Error {
    for candidate in ["/usr/bin/sudo", "/bin/sudo", "/usr/sbin/sudo"] {
        if Path::new(candidate).exists() {
            let mut argv = vec![c"sudo".to_owned()];
            argv.extend(args.iter().filter_map(|a| CString::new(a.as_bytes()).ok()));
            let env: Vec<CString> = std::env::vars_os()
                .filter_map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()).ok())
                .collect();
            let path = CString::new(candidate).expect("no NUL");
            let err = nix::unistd::execve(&path, &argv, &env).unwrap_err();
            return failure(
                format!("sudo: executing {candidate} failed: {}", err.desc()),
                "check the box's sudo package",
            )
            .context(Exit(1));
        }
    }
    failure(
        "sudo: this box has no sudo of its own",
        "install it in the box (`box run NAME --user root -- apt-get install sudo`, or your distribution's equivalent)",
    )
    .context(Exit(1))
}

/// An entry of the box's passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub home: String,
    pub shell: String,
}

/// The entry with uid `uid` in a passwd text.
pub fn account_of(passwd: &str, uid: u32) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid)).then(|| Account {
            name: f[0].to_owned(),
            home: f[5].to_owned(),
            shell: if f[6].is_empty() { "/bin/sh" } else { f[6] }.to_owned(),
        })
    })
}

/// Who called sudo.
pub struct Invoker {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// `$SHELL`, for `-s`.
    pub shell: Option<String>,
}

/// What to execute, where, with which environment.
#[derive(Debug, PartialEq, Eq)]
pub struct Exec {
    /// The file to execute, or a name to find in `PATH`.
    pub program: OsString,
    pub argv: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<String>,
}

/// Build the exec of `req` as `account` (sudo's environment policy, module docs).
pub fn plan(
    req: &Request,
    account: &Account,
    invoker: &Invoker,
    caller_env: Vec<(OsString, OsString)>,
) -> Exec {
    let keep = |name: &str| {
        KEEP.contains(&name)
            || name.starts_with("LC_")
            || matches!(&req.preserve, Preserve::These(list) if list.iter().any(|n| n == name))
    };
    let mut env: Vec<(OsString, OsString)> = caller_env
        .into_iter()
        .filter(|(k, _)| req.preserve == Preserve::All || keep(&k.to_string_lossy()))
        .collect();
    let mut set = |name: &str, value: String| {
        env.retain(|(k, _)| k != name);
        env.push((name.into(), value.into()));
    };
    if req.preserve != Preserve::All || req.set_home || req.login {
        set("HOME", account.home.clone());
    }
    set("PATH", SECURE_PATH.into());
    set("USER", account.name.clone());
    set("LOGNAME", account.name.clone());
    set("USERNAME", account.name.clone());
    set("SHELL", account.shell.clone());
    set("MAIL", format!("/var/mail/{}", account.name));
    set("SUDO_USER", invoker.name.clone());
    set("SUDO_UID", invoker.uid.to_string());
    set("SUDO_GID", invoker.gid.to_string());
    let command_line: Vec<String> = req
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    set(
        "SUDO_COMMAND",
        if command_line.is_empty() {
            account.shell.clone()
        } else {
            command_line.join(" ")
        },
    );
    for (name, value) in &req.assignments {
        set(name, value.clone());
    }
    let escaped = || -> OsString {
        let mut out = Vec::new();
        for (n, arg) in req.command.iter().enumerate() {
            if n > 0 {
                out.push(b' ');
            }
            for &b in arg.as_bytes() {
                // As sudo does for -i/-s: everything but word characters is escaped.
                if !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'$')) {
                    out.push(b'\\');
                }
                out.push(b);
            }
        }
        OsString::from_vec(out)
    };
    let mut cwd = req.chdir.clone();
    let (program, argv) = if req.login || req.shell {
        let shell = if req.shell {
            invoker
                .shell
                .clone()
                .filter(|s| s.starts_with('/'))
                .unwrap_or_else(|| account.shell.clone())
        } else {
            account.shell.clone()
        };
        let base = Path::new(&shell)
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sh".into());
        let argv0 = if req.login {
            format!("-{base}")
        } else {
            shell.clone()
        };
        if req.login && cwd.is_none() {
            cwd = Some(account.home.clone());
        }
        let mut argv: Vec<OsString> = vec![argv0.into()];
        if !req.command.is_empty() {
            argv.push("-c".into());
            argv.push(escaped());
        }
        (OsString::from(shell), argv)
    } else {
        (req.command[0].clone(), req.command.clone())
    };
    Exec {
        program,
        argv,
        env,
        cwd,
    }
}

/// Carry out `plan`: change directory, find the program in the new PATH, exec it.
fn exec(plan: Exec) -> Result<std::convert::Infallible> {
    if let Some(dir) = &plan.cwd {
        // sudo -i goes home; a home the box lacks is not worth failing the command for,
        // but -D is an explicit request.
        if let Err(err) = rustix::process::chdir(dir.as_str()) {
            if plan
                .argv
                .first()
                .is_some_and(|a| a.as_bytes().starts_with(b"-"))
            {
                let _ = rustix::process::chdir("/");
            } else {
                return Err(failure(
                    format!("sudo: unable to change directory to {dir}: {err}"),
                    "check the directory given with -D",
                )
                .context(Exit(1)));
            }
        }
    }
    let cstr = |b: &[u8]| CString::new(b).context("sudo: an argument contains a NUL byte");
    let argv = plan
        .argv
        .iter()
        .map(|a| cstr(a.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    let env = plan
        .env
        .iter()
        .map(|(k, v)| cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Result<Vec<_>>>()?;
    crate::sys::default_sigpipe();
    let program = plan.program.as_bytes();
    let candidates: Vec<PathBuf> = if program.contains(&b'/') {
        vec![PathBuf::from(&plan.program)]
    } else {
        SECURE_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(&plan.program))
            .collect()
    };
    let mut denied = None;
    for candidate in candidates {
        let path = cstr(candidate.as_os_str().as_bytes())?;
        match nix::unistd::execve(&path, &argv, &env).unwrap_err() {
            nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR => {}
            nix::errno::Errno::EACCES => denied = Some(candidate),
            other => {
                return Err(failure(
                    format!("sudo: {}: {}", candidate.display(), other.desc()),
                    "check that it is an executable for this box",
                )
                .context(Exit(1)));
            }
        }
    }
    let name = plan.program.to_string_lossy();
    Err(match denied {
        Some(path) => failure(
            format!("sudo: {}: Permission denied", path.display()),
            "check the file's mode (`ls -l` it)",
        )
        .context(Exit(1)),
        None => failure(
            format!("sudo: {name}: command not found"),
            format!("sudo looks in {SECURE_PATH}; install it or give its full path"),
        )
        .context(Exit(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn parsed(list: &[&str]) -> Request {
        parse(&args(list)).unwrap_or_else(|e| panic!("{list:?}: {e:#}"))
    }

    #[test]
    fn common_sudo_command_lines_parse_as_sudo_does() {
        let r = parsed(&["apt-get", "install", "-y", "hello"]);
        assert_eq!(r.command, args(&["apt-get", "install", "-y", "hello"]));
        assert_eq!(r.preserve, Preserve::Reset);

        let r = parsed(&["-n", "-E", "--", "id", "-u"]);
        assert_eq!(r.preserve, Preserve::All);
        assert_eq!(r.command, args(&["id", "-u"]));

        let r = parsed(&["-nu", "root", "true"]);
        assert_eq!(r.user.as_deref(), Some("root"));
        assert_eq!(r.command, args(&["true"]));

        let r = parsed(&["-uroot", "-g", "0", "--preserve-env=FOO,BAR", "env"]);
        assert_eq!(r.user.as_deref(), Some("root"));
        assert_eq!(r.group.as_deref(), Some("0"));
        assert_eq!(
            r.preserve,
            Preserve::These(vec!["FOO".into(), "BAR".into()])
        );

        let r = parsed(&["-i"]);
        assert!(r.login && r.command.is_empty());

        let r = parsed(&[
            "--user=root",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "-y",
            "A=b",
        ]);
        assert_eq!(
            r.assignments,
            vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())]
        );
        assert_eq!(r.command, args(&["apt-get", "-y", "A=b"]));

        assert_eq!(parsed(&["-v"]).action, Action::Nothing);
        assert_eq!(parsed(&["-k", "true"]).action, Action::Run);
        assert_eq!(parsed(&["-l"]).action, Action::List);
        assert_eq!(parsed(&["-p", "pw:", "-S", "ls"]).command, args(&["ls"]));
    }

    #[test]
    fn bad_command_lines_are_sudo_style_errors() {
        for bad in [&[][..], &["-u"][..], &["-i", "-s"][..], &["-e", "file"][..]] {
            let err = parse(&args(bad)).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 1, "{bad:?}");
            assert!(crate::error::message(&err).starts_with("sudo: "), "{bad:?}");
        }
    }

    #[test]
    fn only_root_or_the_user_themself_can_be_the_target() {
        let with_user = |u: &str| Request {
            user: Some(u.into()),
            ..parsed(&["true"])
        };
        assert_eq!(
            target(&parsed(&["true"]), "alice", 1000).unwrap(),
            Target::Root
        );
        for root in ["root", "0", "#0"] {
            assert_eq!(
                target(&with_user(root), "alice", 1000).unwrap(),
                Target::Root
            );
        }
        for me in ["alice", "1000", "#1000"] {
            assert_eq!(target(&with_user(me), "alice", 1000).unwrap(), Target::Me);
        }
        let err = target(&with_user("www-data"), "alice", 1000).unwrap_err();
        assert!(crate::error::message(&err).contains("www-data"));
        assert_eq!(crate::error::exit_code(&err), 1);
    }

    fn root() -> Account {
        Account {
            name: "root".into(),
            home: "/root".into(),
            shell: "/bin/bash".into(),
        }
    }

    fn alice() -> Invoker {
        Invoker {
            name: "alice".into(),
            uid: 1000,
            gid: 1000,
            shell: Some("/bin/zsh".into()),
        }
    }

    fn env_of(plan: &Exec, name: &str) -> Option<String> {
        plan.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }

    fn caller() -> Vec<(OsString, OsString)> {
        [
            ("HOME", "/home/alice"),
            ("PATH", "/home/alice/bin:/usr/bin"),
            ("TERM", "xterm"),
            ("SECRET", "x"),
            ("LC_ALL", "C.UTF-8"),
            ("CONTAINER_ID", "dev"),
        ]
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
    }

    #[test]
    fn the_environment_is_reset_as_sudo_does_unless_preserved() {
        let plan = plan(&parsed(&["FOO=1", "env"]), &root(), &alice(), caller());
        assert_eq!(env_of(&plan, "HOME").as_deref(), Some("/root"));
        assert_eq!(env_of(&plan, "PATH").as_deref(), Some(SECURE_PATH));
        assert_eq!(env_of(&plan, "USER").as_deref(), Some("root"));
        assert_eq!(env_of(&plan, "SUDO_USER").as_deref(), Some("alice"));
        assert_eq!(env_of(&plan, "SUDO_UID").as_deref(), Some("1000"));
        assert_eq!(env_of(&plan, "TERM").as_deref(), Some("xterm"));
        assert_eq!(env_of(&plan, "LC_ALL").as_deref(), Some("C.UTF-8"));
        assert_eq!(env_of(&plan, "CONTAINER_ID").as_deref(), Some("dev"));
        assert_eq!(env_of(&plan, "FOO").as_deref(), Some("1"));
        assert_eq!(env_of(&plan, "SECRET"), None);
        assert_eq!(plan.argv, args(&["env"]));
        assert_eq!(plan.cwd, None);

        let kept = plan_for(&["-E", "env"]);
        assert_eq!(env_of(&kept, "SECRET").as_deref(), Some("x"));
        assert_eq!(env_of(&kept, "HOME").as_deref(), Some("/home/alice"));
        assert_eq!(env_of(&kept, "PATH").as_deref(), Some(SECURE_PATH));
        let listed = plan_for(&["--preserve-env=SECRET", "env"]);
        assert_eq!(env_of(&listed, "SECRET").as_deref(), Some("x"));
    }

    fn plan_for(list: &[&str]) -> Exec {
        plan(&parsed(list), &root(), &alice(), caller())
    }

    #[test]
    fn login_and_shell_forms_run_the_right_shell() {
        let login = plan_for(&["-i"]);
        assert_eq!(login.program, "/bin/bash");
        assert_eq!(login.argv, args(&["-bash"]));
        assert_eq!(login.cwd.as_deref(), Some("/root"));

        let login_cmd = plan_for(&["-i", "echo", "a b", "$HOME"]);
        assert_eq!(login_cmd.argv, args(&["-bash", "-c", "echo a\\ b $HOME"]));

        let shell = plan_for(&["-s"]);
        assert_eq!(shell.program, "/bin/zsh");
        assert_eq!(shell.argv, args(&["/bin/zsh"]));
        assert_eq!(shell.cwd, None);

        let dir = plan_for(&["-D", "/tmp", "ls"]);
        assert_eq!(dir.cwd.as_deref(), Some("/tmp"));
    }

    #[test]
    fn the_root_account_comes_from_the_boxs_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:\n";
        assert_eq!(account_of(passwd, 0), Some(root()));
        assert_eq!(account_of(passwd, 1000).unwrap().shell, "/bin/sh");
        assert_eq!(account_of(passwd, 5), None);
    }

    #[test]
    fn the_shim_runs_the_hosts_box_with_the_hosts_loader_and_every_argument() {
        // This test's own executable is a dynamically linked ELF file like box.
        let exe = std::env::current_exe().unwrap();
        let interp = elf_interpreter(&exe).expect("a dynamically linked test binary");
        assert!(
            interp.is_absolute() && interp.exists(),
            "{}",
            interp.display()
        );
        let text = shim(&exe);
        assert!(text.starts_with("#!/bin/sh\n"), "{text}");
        let last = text.lines().last().unwrap();
        let interp = std::fs::canonicalize(interp).unwrap();
        assert!(
            last.starts_with(&format!(
                "exec '/run/host{}' --library-path '/run/host",
                interp.display()
            )),
            "{text}"
        );
        assert!(
            last.ends_with(&format!(
                "'/run/host{}' __fakeroot sudo \"$@\"",
                exe.display()
            )),
            "{text}"
        );
        // Not an ELF file (or a static one): box itself, through /run/host.
        assert_eq!(elf_interpreter(Path::new("/etc/passwd")), None);
        assert!(
            shim(Path::new("/nonexistent/box"))
                .ends_with("exec '/run/host/nonexistent/box' __fakeroot sudo \"$@\"\n")
        );
    }
}
