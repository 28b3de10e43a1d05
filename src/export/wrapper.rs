//! The shell wrapper that runs an exported binary in its box.
//!
//! Invariants: the wrapper is a `#!/bin/sh` script with no loop and no extra process:
//! inside the box itself it execs the binary directly, on the host it execs box by the
//! absolute path box was run from (a launcher, cron or an IDE may have a minimal PATH),
//! with the data directory it was exported with pinned (`BOX_DATA_HOME`, see
//! [`super::DATA_HOME_ENV`]), so a caller with another or no `XDG_DATA_HOME` or `HOME`
//! still reaches the box. "Inside the box itself" takes all three signs box gives a
//! command (`container=box`, `CONTAINER_ID=NAME`, `/run/.containerenv`): a podman or
//! toolbox container of the same name sets the last two as well.
//! Every word it interpolates is single-quoted with `'\''` escaping, so names and paths
//! with spaces, quotes, `$` or glob characters survive; the caller's arguments travel as
//! `"$@"`. The marker comments let box recognise its own wrappers.

use std::path::Path;

/// The environment variable a wrapper sets for `box run`, naming itself, so `box run`
/// can tell the user which file to delete when the wrapper's box is gone.
pub const WRAPPER_ENV: &str = "BOX_EXPORT_WRAPPER";

/// How exported launchers (wrappers, desktop entries) start box.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// The box executable, as the host sees it.
    pub box_exe: &'a Path,
    /// The `$XDG_DATA_HOME` to pin (the store is its `box/`).
    pub data_home: &'a Path,
}

/// Quote `word` for a POSIX shell: single quotes, with each `'` written as `'\''`.
pub fn sh_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The text of the wrapper at `wrapper_path` running `source` in box `box_name` as
/// `launch` says.
pub fn script(launch: &Launch, box_name: &str, source: &str, wrapper_path: &Path) -> String {
    let name = sh_quote(box_name);
    let source_q = sh_quote(source);
    let exe = sh_quote(&launch.box_exe.to_string_lossy());
    let data_home = sh_quote(&launch.data_home.to_string_lossy());
    let wrapper = sh_quote(&wrapper_path.to_string_lossy());
    let data_env = super::DATA_HOME_ENV;
    // Comments must stay on one line each: a newline in a path would end the comment.
    let one_line = |s: &str| s.replace('\n', "\\n");
    format!(
        "#!/bin/sh\n\
         # box-export: bin\n\
         # box: {}\n\
         # source: {}\n\
         if [ \"${{container-}}\" = box ] && [ \"${{CONTAINER_ID-}}\" = {name} ] && [ -e /run/.containerenv ]; then exec {source_q} \"$@\"; fi\n\
         {data_env}={data_home}; {WRAPPER_ENV}={wrapper}; export {data_env} {WRAPPER_ENV}\n\
         exec {exe} run {name} -- {source_q} \"$@\"\n",
        one_line(box_name),
        one_line(source),
    )
}

/// The box name a file written by `box export --bin` was made for, if it is one.
pub fn marker_box(text: &str) -> Option<&str> {
    let mut lines = text.lines();
    if lines.next() != Some("#!/bin/sh") || lines.next() != Some("# box-export: bin") {
        return None;
    }
    lines.next()?.strip_prefix("# box: ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    #[test]
    fn quoting_survives_the_shell() {
        for word in [
            "plain",
            "with space",
            "it's",
            "$HOME",
            "*",
            "a\"b",
            "x\\y",
            "",
            "'",
        ] {
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word);
        }
    }

    /// Run a wrapper whose "box" is a fake script printing its arguments one per line:
    /// the arguments box would receive must be exactly the caller's.
    #[test]
    fn wrapper_passes_arguments_and_status_through() {
        let dir = tempfile::tempdir().unwrap();
        let fake_box = dir.path().join("fake box");
        std::fs::write(
            &fake_box,
            "#!/bin/sh\nprintf '[%s]\\n' \"$@\"\necho \"env=$BOX_EXPORT_WRAPPER data=$BOX_DATA_HOME\"\nexit 7\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake_box, std::fs::Permissions::from_mode(0o755)).unwrap();
        let wrapper = dir.path().join("tool");
        std::fs::write(
            &wrapper,
            script(
                &Launch {
                    box_exe: &fake_box,
                    data_home: Path::new("/data/it's mine"),
                },
                "dev",
                "/opt/my tool/it's",
                &wrapper,
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new(&wrapper)
            .args(["a b", "'q'", "$X", "*", ""])
            .env_remove("CONTAINER_ID")
            .env_remove("BOX_DATA_HOME")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(7));
        let expected = format!(
            "[run]\n[dev]\n[--]\n[/opt/my tool/it's]\n[a b]\n['q']\n[$X]\n[*]\n[]\nenv={} data=/data/it's mine\n",
            wrapper.display()
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
        let text = std::fs::read_to_string(&wrapper).unwrap();
        assert_eq!(marker_box(&text), Some("dev"));
        assert_eq!(marker_box("#!/bin/sh\necho hi\n"), None);
    }
}
