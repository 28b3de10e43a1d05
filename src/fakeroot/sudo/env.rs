//! What the stand-in executes: the target account from the box's passwd, and the
//! command, directory and environment sudo's default policy gives it (env_reset,
//! Debian's secure_path, the box's own `CONTAINER_ID`/`container` kept).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::args::{Preserve, Request};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakeroot::sudo::args::parse;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn parsed(list: &[&str]) -> Request {
        parse(&args(list)).unwrap_or_else(|e| panic!("{list:?}: {e:#}"))
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
}
