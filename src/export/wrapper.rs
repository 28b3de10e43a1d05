//! The shell wrapper that runs an exported binary in its box.
//!
//! Where the wrapper runs decides what it does:
//! - **On the host** it execs box by the absolute path box was run from (a launcher, cron
//!   or an IDE may have a minimal PATH), with the data directory it was exported with
//!   pinned (`BOX_DATA_HOME`, see [`crate::context::DATA_HOME_ENV`]), so a caller with another or
//!   no `XDG_DATA_HOME` or `HOME` still reaches the box.
//! - **Inside its own box** it execs the binary directly. "Its own box" is
//!   `container=box` with `CONTAINER_ID=NAME` in the environment (the cheap test), or,
//!   when the environment lost them (`sudo`, `env -i`), a `/run/.containerenv` of
//!   `engine="box"` naming the box.
//! - **Inside another box** (the host's `~/.local/bin` is on every box's PATH, so the
//!   wrapper of `dev`'s `id` shadows `id` in box `other`) it steps aside: it execs that
//!   box's own command of the same name, the first on PATH that is neither in the
//!   wrapper's directory nor another exported wrapper, and when there is none it says
//!   so (naming the wrapper, its box, and that it runs from the host) and exits 127.
//!   It never runs box there: the host's box executable need not exist in a box, and
//!   a box cannot reach its siblings anyway.
//! - Where `/run/.containerenv` is another engine's (box run inside podman), it is the
//!   host.
//!
//! Invariants:
//! - The host path costs one `stat` of `/run/.containerenv` and one exec: no loop, no
//!   extra process, and it comes first, so the shell does not even parse the rest.
//!   Loops (reading `/run/.containerenv`, walking PATH) run only inside a box, and there
//!   are no extra processes anywhere.
//! - The walk over PATH cannot loop: it skips the wrapper's own directory (as recorded
//!   and as `$0` names it) and every file whose first lines are a wrapper's marker, so
//!   two wrappers of one name never exec each other. Files in a box's system directories
//!   (`/usr/...`, `/bin`, `/sbin`) are taken without reading them: those are the box's
//!   own (box binds only itself there, at `/usr/local/bin/box`), and the shell's `read`
//!   takes a byte per syscall (kilobytes before a binary's first newline).
//! - Every word it interpolates is single-quoted with `'\''` escaping, so names and paths
//!   with spaces, quotes, `$`, glob characters or even newlines survive exactly (the
//!   script is never re-split into lines around them); the caller's arguments travel as
//!   `"$@"`. Its own shell variables are named `_box_*` and never exported. (`box export
//!   --bin` refuses a binary path with a control character before it gets here: that
//!   path names a host file.)
//! - The marker comments (first lines) let box recognise its own wrappers.

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

/// Where box writes the `/run/.containerenv` of a box (podman's format; see
/// `runtime::plan::containerenv`).
pub const CONTAINERENV: &str = "/run/.containerenv";

/// The standard PATH a shell without one searches, for the walk inside another box.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The first two lines of every wrapper: what the walk inside another box looks for to
/// skip wrappers (see [`marker_box`]).
const SHEBANG: &str = "#!/bin/sh";
const MARKER: &str = "# box-export: bin";

/// What a wrapper adds when it runs its binary from the host (distrobox-export's
/// `--extra-flags` and `--sudo`); inside its own box it runs the binary as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra<'a> {
    /// Arguments put before the caller's.
    pub args: &'a [String],
    /// Run as the box's root (`box run --user root`).
    pub as_root: bool,
}

/// The text of the wrapper at `wrapper_path` running `source` in box `box_name` as
/// `launch` says.
pub fn script(launch: &Launch, box_name: &str, source: &str, wrapper_path: &Path) -> String {
    script_with(launch, box_name, source, wrapper_path, &Extra::default())
}

/// [`script`] with `extra` for the host's way of running the binary.
pub fn script_with(
    launch: &Launch,
    box_name: &str,
    source: &str,
    wrapper_path: &Path,
    extra: &Extra,
) -> String {
    render(
        launch,
        box_name,
        source,
        wrapper_path,
        Path::new(CONTAINERENV),
        extra,
    )
}

/// [`script`] reading the box's identity from `containerenv` (tests point it elsewhere).
fn render(
    launch: &Launch,
    box_name: &str,
    source: &str,
    wrapper_path: &Path,
    containerenv: &Path,
    extra: &Extra,
) -> String {
    let name = sh_quote(box_name);
    let source_q = sh_quote(source);
    let exe = sh_quote(&launch.box_exe.to_string_lossy());
    let data_home = sh_quote(&launch.data_home.to_string_lossy());
    let wrapper = sh_quote(&wrapper_path.to_string_lossy());
    let wrapper_dir = sh_quote(
        &wrapper_path
            .parent()
            .unwrap_or(Path::new("/"))
            .to_string_lossy(),
    );
    let command = wrapper_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let command_q = sh_quote(&command);
    let env_file = sh_quote(&containerenv.to_string_lossy());
    // `.containerenv` values are double-quoted: `name="dev"`.
    let name_in_file = sh_quote(&format!("\"{box_name}\""));
    let data_env = crate::context::DATA_HOME_ENV;
    let error = sh_quote(&format!(
        "box: error: {} runs {source} in box `{box_name}` from the host, and box `",
        wrapper_path.display()
    ));
    let error_end = sh_quote(&format!("` has no `{command}` of its own on PATH"));
    let hint = sh_quote(&format!(
        "hint: run `{command}` on the host, or install it in box `"
    ));
    // Comments must stay on one line each: a newline in a path would end the comment.
    let one_line = |s: &str| s.replace('\n', "\\n");
    // The host's lines come first and end in an exec, so on the host the shell never
    // even reads the rest; they come again last, for another engine's `.containerenv`.
    // Indented as lines of their own: a newline inside a quoted word stays in the word.
    let user = if extra.as_root { "--user root " } else { "" };
    let extra_args: String = extra
        .args
        .iter()
        .map(|arg| format!(" {}", sh_quote(arg)))
        .collect();
    let host_lines = [
        format!("{data_env}={data_home}; {WRAPPER_ENV}={wrapper}; export {data_env} {WRAPPER_ENV}"),
        format!("exec {exe} run {user}{name} -- {source_q}{extra_args} \"$@\""),
    ];
    let host: String = host_lines.iter().map(|line| format!("{line}\n")).collect();
    let host_in_if: String = host_lines
        .iter()
        .map(|line| format!("\t{line}\n"))
        .collect();
    format!(
        "{SHEBANG}\n\
         {MARKER}\n\
         # box: {}\n\
         # source: {}\n\
         if [ ! -e {env_file} ]; then\n\
         {host_in_if}\
         fi\n\
         # In a box: this one runs the binary, another one its own {} (not a wrapper's).\n\
         if [ \"${{container-}}\" = box ] && [ \"${{CONTAINER_ID-}}\" = {name} ]; then exec {source_q} \"$@\"; fi\n\
         _box_engine= _box_name=\n\
         if [ -r {env_file} ]; then\n\
         \twhile IFS= read -r _box_line || [ -n \"$_box_line\" ]; do\n\
         \t\tcase $_box_line in engine=*) _box_engine=${{_box_line#engine=}} ;; name=*) _box_name=${{_box_line#name=}} ;; esac\n\
         \tdone < {env_file}\n\
         fi\n\
         if [ \"$_box_engine\" = '\"box\"' ]; then\n\
         \tif [ \"$_box_name\" = {name_in_file} ]; then exec {source_q} \"$@\"; fi\n\
         \tIFS=:; set -f\n\
         \tfor _box_dir in ${{PATH-{DEFAULT_PATH}}}; do\n\
         \t\tcase $_box_dir in {wrapper_dir}|\"${{0%/*}}\") continue ;; /*) ;; *) continue ;; esac\n\
         \t\t_box_cmd=$_box_dir/{command_q}\n\
         \t\t[ -f \"$_box_cmd\" ] && [ -x \"$_box_cmd\" ] || continue\n\
         \t\tcase $_box_dir in\n\
         \t\t/usr/*|/bin|/bin/|/sbin|/sbin/) ;;\n\
         \t\t*) if {{ IFS= read -r _box_line && [ \"$_box_line\" = '{SHEBANG}' ] && IFS= read -r _box_line && [ \"$_box_line\" = '{MARKER}' ]; }} 2>/dev/null < \"$_box_cmd\"; then continue; fi ;;\n\
         \t\tesac\n\
         \t\texec \"$_box_cmd\" \"$@\"\n\
         \tdone\n\
         \t_box_name=${{_box_name#\\\"}}; _box_name=${{_box_name%\\\"}}\n\
         \tprintf '%s\\n' {error}\"$_box_name\"{error_end} {hint}\"$_box_name\"'`' >&2\n\
         \texit 127\n\
         fi\n\
         {host}",
        one_line(box_name),
        one_line(source),
        one_line(&command),
    )
}

/// The box name a file written by `box export --bin` was made for, if it is one.
pub fn marker_box(text: &str) -> Option<&str> {
    let mut lines = text.lines();
    if lines.next() != Some(SHEBANG) || lines.next() != Some(MARKER) {
        return None;
    }
    lines.next()?.strip_prefix("# box: ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Output};

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

    fn write_exec(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A fake "box" executable that prints its arguments one per line, box's variables,
    /// and exits 7; wrappers of `tool` in dirs `a/` and `b/` (boxes `dev` and `dev2`),
    /// reading their box's identity from `containerenv` (absent until a test writes it).
    struct Fake {
        dir: tempfile::TempDir,
        containerenv: std::path::PathBuf,
    }

    impl Fake {
        fn new() -> Fake {
            let dir = tempfile::tempdir().unwrap();
            let containerenv = dir.path().join("containerenv");
            let fake = Fake { dir, containerenv };
            write_exec(
                &fake.path("fake box"),
                "#!/bin/sh\nprintf '[%s]\\n' \"$@\"\necho \"env=$BOX_EXPORT_WRAPPER data=$BOX_DATA_HOME\"\nexit 7\n",
            );
            // The binary in box dev: its wrapper runs it directly inside box dev.
            write_exec(
                &fake.path("dev-root/opt/my tool/it's"),
                "#!/bin/sh\nprintf 'direct:%s\\n' \"$@\"\n",
            );
            for (dir, name) in [("a", "dev"), ("b", "dev2")] {
                let wrapper = fake.path(dir).join("tool");
                let box_exe = fake.path("fake box");
                let text = render(
                    &Launch {
                        box_exe: &box_exe,
                        data_home: Path::new("/data/it's mine"),
                    },
                    name,
                    &fake.path("dev-root/opt/my tool/it's").to_string_lossy(),
                    &wrapper,
                    &fake.containerenv,
                    &Extra::default(),
                );
                write_exec(&wrapper, &text);
            }
            fake
        }

        fn path(&self, rel: &str) -> std::path::PathBuf {
            self.dir.path().join(rel)
        }

        /// Run wrapper `a/tool` with only `env` in its environment, under `shell`.
        fn run(&self, shell: &[&str], args: &[&str], env: &[(&str, String)]) -> Output {
            run_wrapper(shell, &self.path("a/tool"), args, env)
        }
    }

    /// The shells a wrapper meets as a box's `/bin/sh`: dash (Debian, Ubuntu), bash
    /// (Fedora, Arch), busybox ash (Alpine), those of them this machine has.
    fn shells() -> Vec<Vec<&'static str>> {
        let mut shells = vec![vec!["/bin/sh"]];
        for shell in [
            &["/bin/bash"][..],
            &["/usr/bin/busybox", "sh"],
            &["/bin/dash"],
        ] {
            if Path::new(shell[0]).exists() {
                shells.push(shell.to_vec());
            }
        }
        shells
    }

    /// Run `wrapper` under `shell` (as the kernel would for `#!/bin/sh`: `$0` is its
    /// path) with only `env` in its environment.
    fn run_wrapper(
        shell: &[&str],
        wrapper: &Path,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Output {
        Command::new(shell[0])
            .args(&shell[1..])
            .arg(wrapper)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// distrobox-export's `--extra-flags` and `--sudo`: from the host, the extra words come
    /// before the caller's and box runs the binary as the box's root.
    #[test]
    fn extra_arguments_and_root_are_the_host_s_way_of_running_it() {
        let fake = Fake::new();
        let wrapper = fake.path("c/tool");
        let box_exe = fake.path("fake box");
        let extra = ["--foreground".to_owned(), "it's $HOME".to_owned()];
        let script_text = script_with(
            &Launch {
                box_exe: &box_exe,
                data_home: Path::new("/data"),
            },
            "dev",
            "/usr/bin/tool",
            &wrapper,
            &Extra {
                args: &extra,
                as_root: true,
            },
        );
        write_exec(&wrapper, &script_text);
        for shell in shells() {
            let out = run_wrapper(&shell, &wrapper, &["x y"], &[]);
            assert_eq!(
                text(&out.stdout).lines().take(8).collect::<Vec<_>>(),
                [
                    "[run]",
                    "[--user]",
                    "[root]",
                    "[dev]",
                    "[--]",
                    "[/usr/bin/tool]",
                    "[--foreground]",
                    "[it's $HOME]"
                ],
                "{shell:?}"
            );
            assert!(text(&out.stdout).contains("[x y]\n"), "{shell:?}");
        }
    }

    /// Run a wrapper on the host: the arguments box receives must be exactly the caller's.
    #[test]
    fn wrapper_passes_arguments_and_status_through() {
        let fake = Fake::new();
        let expected = format!(
            "[run]\n[dev]\n[--]\n[{}]\n[a b]\n['q']\n[$X]\n[*]\n[]\nenv={} data=/data/it's mine\n",
            fake.path("dev-root/opt/my tool/it's").display(),
            fake.path("a/tool").display()
        );
        for shell in shells() {
            let out = fake.run(&shell, &["a b", "'q'", "$X", "*", ""], &[]);
            assert_eq!(
                out.status.code(),
                Some(7),
                "{shell:?}: {}",
                text(&out.stderr)
            );
            assert_eq!(text(&out.stdout), expected, "{shell:?}");
        }
        let script = std::fs::read_to_string(fake.path("a/tool")).unwrap();
        assert_eq!(marker_box(&script), Some("dev"));
        assert_eq!(marker_box("#!/bin/sh\necho hi\n"), None);
        // What runs on the host is the first `if` (one test) and the two lines in it,
        // which end in an exec: the shell never reads further.
        let host_part = script.split("\nfi\n").next().unwrap();
        assert_eq!(host_part.lines().count(), 7, "{script}");
        assert!(host_part.lines().last().unwrap().starts_with("\texec "));
        assert!(!host_part.contains("for ") && !host_part.contains("while "));
    }

    #[test]
    fn control_characters_in_paths_are_quoted_exactly() {
        let fake = Fake::new();
        let odd = fake.path("odd\nwrapper\tdir");
        let wrapper = odd.join("tool");
        let box_exe = fake.path("fake box");
        let source = "/opt/two\nlines\tand\rmore";
        let script = render(
            &Launch {
                box_exe: &box_exe,
                data_home: Path::new("/data/new\nline"),
            },
            "dev",
            source,
            &wrapper,
            &fake.containerenv,
            &Extra::default(),
        );
        write_exec(&wrapper, &script);
        for shell in shells() {
            let out = run_wrapper(&shell, &wrapper, &["x"], &[]);
            assert_eq!(
                out.status.code(),
                Some(7),
                "{shell:?}: {}",
                text(&out.stderr)
            );
            assert_eq!(
                text(&out.stdout),
                format!(
                    "[run]\n[dev]\n[--]\n[{source}]\n[x]\nenv={} data=/data/new\nline\n",
                    wrapper.display()
                ),
                "{shell:?}"
            );
        }
    }

    #[test]
    fn inside_its_own_box_the_wrapper_runs_the_binary_directly() {
        let fake = Fake::new();
        std::fs::write(
            &fake.containerenv,
            "engine=\"box\"\nname=\"dev\"\nid=\"dev\"\n",
        )
        .unwrap();
        // With box's variables, and without them (sudo, `env -i`): the file says it.
        for env in [
            vec![
                ("container", "box".to_owned()),
                ("CONTAINER_ID", "dev".to_owned()),
            ],
            vec![],
        ] {
            for shell in shells() {
                let out = fake.run(&shell, &["a b"], &env);
                let err = text(&out.stderr);
                assert_eq!(text(&out.stdout), "direct:a b\n", "{shell:?}: {err}");
                assert!(out.status.success());
            }
        }
    }

    #[test]
    fn another_engines_containerenv_is_the_host() {
        // A podman or toolbox container named like the box sets CONTAINER_ID and a
        // .containerenv too, but not engine="box": there box runs it.
        let fake = Fake::new();
        std::fs::write(
            &fake.containerenv,
            "engine=\"podman-4.3.1\"\nname=\"dev\"\n",
        )
        .unwrap();
        for shell in shells() {
            let out = fake.run(&shell, &["x"], &[("CONTAINER_ID", "dev".to_owned())]);
            assert_eq!(out.status.code(), Some(7), "{shell:?}");
            assert!(text(&out.stdout).starts_with("[run]\n[dev]\n"), "{shell:?}");
        }
    }

    #[test]
    fn inside_another_box_the_wrapper_steps_aside_for_that_box_s_command() {
        let fake = Fake::new();
        std::fs::write(&fake.containerenv, "engine=\"box\"\nname=\"other\"\n").unwrap();
        // The wrapper's own directory also through a symlink, another box's wrapper of
        // the same name (b/), then the box's own command, then a later one.
        std::os::unix::fs::symlink(fake.path("a"), fake.path("a-link")).unwrap();
        write_exec(
            &fake.path("own/tool"),
            "#!/bin/sh\nprintf 'own:%s\\n' \"$@\"\nexit 4\n",
        );
        write_exec(&fake.path("later/tool"), "#!/bin/sh\necho later\n");
        // Not executable, a directory: not commands.
        std::fs::create_dir_all(fake.path("nx")).unwrap();
        std::fs::write(fake.path("nx/tool"), "#!/bin/sh\necho nx\n").unwrap();
        std::fs::create_dir_all(fake.path("isdir/tool")).unwrap();
        let path = |dirs: &[&str]| -> String {
            let mut all: Vec<String> = dirs
                .iter()
                .map(|d| fake.path(d).display().to_string())
                .collect();
            all.insert(1, "relative".into());
            all.insert(1, String::new());
            all.join(":")
        };
        let env = |dirs: &[&str]| {
            vec![
                ("container", "box".to_owned()),
                ("CONTAINER_ID", "other".to_owned()),
                ("PATH", path(dirs)),
            ]
        };
        for shell in shells() {
            let out = fake.run(
                &shell,
                &["a b", "*"],
                &env(&["a", "a-link", "b", "nx", "isdir", "own", "later"]),
            );
            let err = text(&out.stderr);
            assert_eq!(text(&out.stdout), "own:a b\nown:*\n", "{shell:?}: {err}");
            assert_eq!(out.status.code(), Some(4), "{shell:?}");
            // The other box's wrapper steps aside in the same way (no ping-pong).
            let out = run_wrapper(&shell, &fake.path("b/tool"), &[], &env(&["b", "a", "own"]));
            let err = text(&out.stderr);
            assert_eq!(text(&out.stdout), "own:\n", "{shell:?}: {err}");

            // None of its own: a clear error, and never box.
            let out = fake.run(&shell, &[], &env(&["a", "a-link", "b", "nx"]));
            assert_eq!(out.status.code(), Some(127), "{shell:?}");
            assert_eq!(text(&out.stdout), "", "{shell:?}");
            assert_eq!(
                text(&out.stderr),
                format!(
                    "box: error: {} runs {} in box `dev` from the host, and box `other` has no `tool` of its own on PATH\nhint: run `tool` on the host, or install it in box `other`\n",
                    fake.path("a/tool").display(),
                    fake.path("dev-root/opt/my tool/it's").display()
                ),
                "{shell:?}"
            );
        }
    }
}
