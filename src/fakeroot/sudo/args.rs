//! sudo's command line, parsed as sudo parses it: clustered short options,
//! `--opt=value`, `--`, `VAR=value` before the command (see [`super`] for what is
//! understood and what fails clearly).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use anyhow::Result;

use crate::error::{Exit, failure};

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

pub const USAGE: &str = "usage: sudo [-EHiknSsv] [-D directory] [-g group] [-u user] [VAR=value] [-i | -s] [command [arg ...]]";

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
}
