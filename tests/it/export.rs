//! `box export` and `box generate-entry` end to end, as the unprivileged `boxtest` on the
//! Debian fixture (which has xterm and sudo): wrappers behave like `box run` (from the
//! host, from a bare cron-like environment, inside their own box), exported desktop
//! entries validate and start the app in the box (a real X server, Xvfb, shows its
//! window; a probe entry shows what its Exec line received), exports made inside a box
//! land on the host, `box rm` takes every export away, and each bad input is a clear
//! error.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use box_cli::export::exec::{self, Piece};

use crate::common::{Fixture, Outcome, Registry, TestEnv, User, box_bin};

/// A test environment with a Debian box `dev` created (no menu entry unless asked).
fn debian_box(test: &str) -> TestEnv {
    let env = TestEnv::new(test, User::BoxTest);
    let image = Fixture::Debian.push(Registry::plain()).image.reference;
    env.run(&["create", "--yes", "--no-entry", "--image", &image, "dev"])
        .success();
    env
}

/// Run a host program as the test user with box's test environment.
fn run_as(env: &TestEnv, program: &Path, args: &[&str], extra: &[(&str, &str)]) -> Outcome {
    run_in(env, &env.home, program, args, extra)
}

/// [`run_as`] in directory `cwd`.
fn run_in(
    env: &TestEnv,
    cwd: &Path,
    program: &Path,
    args: &[&str],
    extra: &[(&str, &str)],
) -> Outcome {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("USER", env.user.name())
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("XDG_RUNTIME_DIR", &env.runtime_dir)
        .envs(env.env.iter().map(|(k, v)| (k, v)))
        .envs(extra.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .uid(env.uid)
        .gid(env.gid);
    outcome_of(env, program, args, command)
}

/// Run `command` (as the test user, set up by the caller) and collect its outcome.
fn outcome_of(env: &TestEnv, program: &Path, args: &[&str], mut command: Command) -> Outcome {
    let out = command
        .output()
        .expect("running a program as the test user");
    Outcome {
        args: std::iter::once(program.display().to_string())
            .chain(args.iter().map(|s| s.to_string()))
            .collect(),
        user: env.user,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn bin_home(env: &TestEnv) -> PathBuf {
    env.home.join(".local/bin")
}

fn apps_dir(env: &TestEnv) -> PathBuf {
    env.data_home().join("applications")
}

/// What desktop-file-validate says about `path`, asserting it found no error.
#[track_caller]
fn assert_validates(path: &Path) -> String {
    let out = Command::new("desktop-file-validate")
        .arg(path)
        .output()
        .expect("desktop-file-validate (package desktop-file-utils) must be installed");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("error"),
        "{} does not validate:\n{text}\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    text
}

/// Assert desktop-file-validate has nothing at all to say about `path`: no error,
/// warning or hint.
#[track_caller]
fn assert_validates_cleanly(path: &Path) {
    let text = assert_validates(path);
    assert!(
        text.trim().is_empty(),
        "desktop-file-validate has remarks on {}:\n{text}\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

/// Put `content` at `path` in box `name` (as root there, mode 0644), through the shared
/// home.
fn put_in_box(env: &TestEnv, name: &str, path: &str, content: &[u8]) {
    let staged = env.home.join(".staged-file");
    env.write_user_file(&staged, content, 0o644);
    env.run(&[
        "run",
        name,
        "--",
        "sudo",
        "install",
        "-D",
        "-m",
        "644",
        staged.to_str().unwrap(),
        path,
    ])
    .success();
    std::fs::remove_file(&staged).unwrap();
}

/// A PNG header of a `size`-pixel square image (what icon lookups read).
fn png(size: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend(size.to_be_bytes());
    bytes.extend(size.to_be_bytes());
    bytes.extend([8, 6, 0, 0, 0]);
    bytes
}

/// The probe application: its Exec line has an env prefix, shell-style single quotes,
/// `%%`, `%i` and `%U`, and writes what it received (and whether box's own variables
/// reached it) to `$HOME/probe.out`; its action runs through box too. Its icons: an SVG
/// named with an extension (`Icon=probe.svg`) in hicolor, and one only the box's
/// Adwaita theme has.
const PROBE: &str = "[Desktop Entry]
Type=Application
Name=Probe
Comment=Shows what its Exec line received
Icon=probe.svg
Exec=env PROBE_VAR=from-entry sh -c 'printf \"%%s|\" \"$PROBE_VAR\" \"${BOX_DATA_HOME-unset}\" \"$(pwd)\" \"$@\" > \"$HOME/probe.out\"' probe %i %U
Terminal=false
Categories=Utility;
Actions=second;

[Desktop Action second]
Name=Second
Icon=probe-alt
Exec=sh -c 'echo second > \"$HOME/probe2.out\"'
";

/// Install the probe application in box `name`.
fn install_probe(env: &TestEnv, name: &str) {
    put_in_box(
        env,
        name,
        "/usr/share/applications/probe.desktop",
        PROBE.as_bytes(),
    );
    put_in_box(
        env,
        name,
        "/usr/share/icons/hicolor/scalable/apps/probe.svg",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"16\" height=\"16\"/>",
    );
    put_in_box(
        env,
        name,
        "/usr/share/icons/Adwaita/48x48/apps/probe-alt.png",
        &png(48),
    );
}

/// Run an expanded Exec argv as the test user with only `vars` in its environment.
fn launch(env: &TestEnv, argv: &[String], vars: &[(&str, &Path)]) -> Outcome {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v.as_os_str())))
        .current_dir(&env.home)
        .stdin(Stdio::null())
        .uid(env.uid)
        .gid(env.gid);
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    outcome_of(env, Path::new(&argv[0]), &args, command)
}

/// Every directory under `dir` (recursively), sorted.
fn dirs_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            found.extend(dirs_under(&path));
            found.push(path);
        }
    }
    found.sort();
    found
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn exported_binary_behaves_like_box_run() {
    let env = debian_box("export_bin");
    let out = env.run(&["export", "dev", "--bin", "/bin/sh"]);
    out.success();
    let wrapper = bin_home(&env).join("sh");
    let mode = std::fs::metadata(&wrapper).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let text = std::fs::read_to_string(&wrapper).unwrap();
    assert!(text.starts_with("#!/bin/sh\n# box-export: bin\n# box: dev\n# source: /bin/sh\n"));

    // Arguments with spaces, quotes, `$` and globs, and the exit status, survive.
    let script = r#"printf '[%s]' "$@"; test -e /run/.containerenv && echo inside; exit 3"#;
    let args = ["-c", script, "sh", "a b", "it's", "\"q\"", "$HOME", "*", ""];
    let direct = run_as(&env, &wrapper, &args, &[]);
    let mut run_args = vec!["run", "dev", "--", "/bin/sh"];
    run_args.extend(args);
    let via_run = env.run(&run_args);
    assert_eq!(direct.code(), Some(3), "{direct}");
    assert_eq!(via_run.code(), Some(3), "{via_run}");
    assert_eq!(direct.stdout, via_run.stdout, "{direct}\n{via_run}");
    assert_eq!(direct.stdout, "[a b][it's][\"q\"][$HOME][*][]inside\n");

    // The command runs in the caller's directory (a project below the home).
    let project = env.home.join("src/my project");
    env.mkdir_owned(&project, 0o755);
    let out = run_in(&env, &project, &wrapper, &["-c", "pwd"], &[]);
    out.success();
    assert_eq!(out.stdout.trim_end(), project.to_str().unwrap(), "{out}");

    // A relative --export-path is below the current directory.
    env.run(&[
        "export",
        "dev",
        "--bin",
        "/usr/bin/id",
        "--export-path",
        "tools/bin",
    ])
    .success();
    let id = env.home.join("tools/bin/id");
    let out = run_as(&env, &id, &["-u"], &[]);
    out.success();
    assert_eq!(out.stdout.trim(), env.uid.to_string(), "{out}");
    env.run(&["export", "dev", "--list"])
        .success()
        .stdout_has(id.to_str().unwrap());
    // --delete takes the directories box made for it away with it (tools/ and tools/bin),
    // and leaves the ones it did not make.
    env.run(&["export", "dev", "--delete", "--bin", "/usr/bin/id"])
        .success();
    assert!(!env.home.join("tools").exists());
    assert!(env.home.join("src").is_dir());

    // stdin reaches the command.
    let out = Command::new(&wrapper)
        .args(["-c", "cat"])
        .env_clear()
        .env("HOME", &env.home)
        .env("PATH", "/usr/bin:/bin")
        .env("XDG_RUNTIME_DIR", &env.runtime_dir)
        .current_dir(&env.home)
        .uid(env.uid)
        .gid(env.gid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"piped\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\n");

    // Listed, in JSON too.
    env.run(&["export", "dev", "--list"])
        .success()
        .stdout_has("/bin/sh");
    let json = env
        .run(&["export", "dev", "--list", "--json"])
        .success()
        .json();
    assert_eq!(json[0]["kind"], "bin");
    assert_eq!(json[0]["source"], "/bin/sh");

    // --delete takes it away.
    env.run(&["export", "dev", "--delete", "--bin", "/bin/sh"])
        .success();
    assert!(!wrapper.exists());

    // Inside the box the name is optional, and the wrapper names the host's box binary.
    env.run(&[
        "run",
        "dev",
        "--",
        "box",
        "export",
        "--bin",
        "/usr/bin/xterm",
    ])
    .success();
    let text = std::fs::read_to_string(bin_home(&env).join("xterm")).unwrap();
    let exec_line = format!("exec '{}' run 'dev' -- '/usr/bin/xterm' \"$@\"", box_bin());
    assert!(text.contains(&exec_line), "{text}");
    env.run(&[
        "run", "dev", "--", "box", "export", "other", "--bin", "/bin/sh",
    ])
    .box_error(&["inside box `dev`"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn bad_exports_are_clear_errors_and_write_nothing() {
    let env = debian_box("export_bad");
    env.run(&["export", "dev", "--bin", "/usr/bin/no-such-tool"])
        .box_error(&["/usr/bin/no-such-tool", "box `dev`"]);
    env.run(&["export", "dev", "--bin", "sh"])
        .box_error(&["not an absolute path"]);
    env.run(&["export", "nope", "--bin", "/bin/sh"])
        .box_error(&["no box named `nope`"]);
    env.run(&["export", "dev", "--app", "no-such-app"])
        .box_error(&["no application `no-such-app` in box `dev`"]);
    // This machine has /.dockerenv: box must not think it runs inside a box.
    env.run(&["export", "--bin", "/bin/sh"])
        .box_error(&["which box"]);
    // A directory the user cannot write to (root's, 0755).
    let locked = env.dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    env.run(&[
        "export",
        "dev",
        "--bin",
        "/bin/sh",
        "--export-path",
        locked.to_str().unwrap(),
    ])
    .box_error(&[locked.to_str().unwrap()]);
    // The directory is named, not box's temporary file in it.
    let out = env.run(&[
        "export",
        "dev",
        "--bin",
        "/bin/sh",
        "--export-path",
        locked.to_str().unwrap(),
    ]);
    assert!(!out.stderr.contains(".box-tmp"), "{out}");
    assert!(!bin_home(&env).join("sh").exists());

    // Usage errors are clap's (status 2): nothing to do, and options that do not apply
    // (see also export_usage_lists_the_forms_and_misplaced_options_are_usage_errors).
    for args in [
        &["export", "dev"][..],
        &["export", "dev", "--app", "xterm", "--export-path", "/tmp"],
        &["export", "dev", "--bin", "/bin/sh", "--export-label", "x"],
        &["export", "dev", "--delete", "--bin", "/bin/sh", "--force"],
        &["export", "dev", "--bin", "/bin/sh", "--json"],
    ] {
        env.run(args).status(2);
    }
    assert!(!bin_home(&env).join("sh").exists());
    // A file that is not a desktop entry.
    env.run(&["export", "dev", "--app", "/etc/passwd"])
        .box_error(&["/etc/passwd", "no [Desktop Entry] group"]);

    // Removing a menu entry that is not there is no error, and says so.
    env.run(&["generate-entry", "dev", "--delete"])
        .success()
        .stderr_has("box `dev` has no menu entry; nothing to remove");
    env.run(&["generate-entry", "nope", "--delete"])
        .success()
        .stderr_has("no box `nope` and no menu entry for it; nothing to remove");
    // A file of the user's at the menu entry's path: named, kept, replaced with --force.
    let own_entry = apps_dir(&env).join("box-dev.desktop");
    env.write_user_file(&own_entry, "[Desktop Entry]\nName=mine\n", 0o644);
    env.run(&["generate-entry", "dev"])
        .box_error(&[own_entry.to_str().unwrap(), "--force"]);
    assert_eq!(
        std::fs::read_to_string(&own_entry).unwrap(),
        "[Desktop Entry]\nName=mine\n"
    );
    env.run(&["generate-entry", "dev", "--force", "--delete"])
        .status(2);
    env.run(&["generate-entry", "dev", "--force"]).success();
    assert!(key(&std::fs::read_to_string(&own_entry).unwrap(), "Exec").ends_with(" enter dev"));
    env.run(&["generate-entry", "dev", "--delete"]).success();
    assert!(!own_entry.exists());

    // Whatever is at the wrapper's path and is not box's file is the user's: a dangling
    // symlink, a fifo, a directory. Named, kept, and (but for a directory) replaced only
    // with --force.
    env.mkdir_owned(&bin_home(&env), 0o755);
    let link = bin_home(&env).join("cat");
    std::os::unix::fs::symlink("/nowhere/my-cat", &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(env.uid), Some(env.gid)).unwrap();
    env.run(&["export", "dev", "--bin", "/bin/cat"])
        .box_error(&[link.to_str().unwrap(), "symbolic link", "--force"]);
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("/nowhere/my-cat")
    );
    let fifo = bin_home(&env).join("tee");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    env.run(&["export", "dev", "--bin", "/usr/bin/tee"])
        .box_error(&[fifo.to_str().unwrap(), "named pipe"]);
    let dir_in_the_way = bin_home(&env).join("tail");
    env.mkdir_owned(&dir_in_the_way, 0o755);
    for force in [false, true] {
        let mut args = vec!["export", "dev", "--bin", "/usr/bin/tail"];
        if force {
            args.push("--force");
        }
        env.run(&args)
            .box_error(&[dir_in_the_way.to_str().unwrap(), "is a directory"]);
    }
    assert!(dir_in_the_way.is_dir());
    env.run(&["export", "dev", "--bin", "/bin/cat", "--force"])
        .success();
    assert!(!link.symlink_metadata().unwrap().file_type().is_symlink());

    // Two applications with one name: ambiguous, with the candidates named.
    for id in ["one", "two"] {
        env.run(&[
            "run", "dev", "--", "sudo", "sh", "-c",
            &format!("mkdir -p /usr/local/share/applications && printf '[Desktop Entry]\\nType=Application\\nName=Twin\\nExec=true\\n' > /usr/local/share/applications/{id}.desktop"),
        ])
        .success();
    }
    env.run(&["export", "dev", "--app", "twin"]).box_error(&[
        "one.desktop",
        "two.desktop",
        "several",
    ]);

    // A host file box did not write: named, kept, and replaced only with --force.
    let own = bin_home(&env).join("sh");
    env.write_user_file(&own, "#!/bin/sh\necho mine\n", 0o755);
    env.run(&["export", "dev", "--bin", "/bin/sh"])
        .box_error(&[own.to_str().unwrap(), "--force"]);
    assert_eq!(
        std::fs::read_to_string(&own).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    env.run(&["export", "dev", "--bin", "/bin/sh", "--force"])
        .success();
    assert!(
        std::fs::read_to_string(&own)
            .unwrap()
            .contains("# box: dev")
    );

    // The user swaps box's wrapper for a link to their copy of it (same content): the
    // link is theirs, and `box rm` leaves it.
    let copy = env.home.join("my-sh");
    std::fs::copy(&own, &copy).unwrap();
    std::fs::remove_file(&own).unwrap();
    std::os::unix::fs::symlink(&copy, &own).unwrap();
    std::os::unix::fs::lchown(&own, Some(env.uid), Some(env.gid)).unwrap();
    env.run(&["rm", "--force", "--yes", "dev"])
        .success()
        .stderr_has(&format!("kept {}", own.display()));
    assert!(own.symlink_metadata().unwrap().file_type().is_symlink());
    assert!(copy.is_file());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_unreadable_application_directory_is_not_called_empty() {
    // /usr/share/applications made root's own in the box (a subordinate id on the host):
    // the user's box cannot look into it, which is not the same as no applications.
    let env = debian_box("export_eacces");
    env.run(&[
        "run",
        "dev",
        "--",
        "sudo",
        "chmod",
        "700",
        "/usr/share/applications",
    ])
    .success();
    let out = env.run(&["export", "dev", "--app", "xterm"]);
    out.box_error(&["/usr/share/applications", "permission denied"]);
    assert!(!out.stderr.contains("no desktop files"), "{out}");
    assert!(!out.stderr.contains("no application"), "{out}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn export_usage_lists_the_forms_and_misplaced_options_are_usage_errors() {
    let parse = |args: &[&str]| {
        box_cli::cli::command()
            .try_get_matches_from(std::iter::once("box").chain(args.iter().copied()))
    };
    for args in [
        &["export", "dev", "--bin", "/bin/sh", "--json"][..],
        &["export", "dev", "--app", "xterm", "--json"],
        &["export", "dev", "--delete", "--app", "xterm", "--json"],
        &["export", "dev", "--json"],
        &["export", "dev", "--delete"],
        &["export", "dev", "--delete", "--list"],
        &["export", "dev", "--list", "--force"],
        &["export", "dev", "--list", "--export-path", "/tmp"],
        &["export", "dev", "--bin", "/bin/sh", "--app", "xterm"],
        &[
            "export",
            "dev",
            "--delete",
            "--bin",
            "/bin/sh",
            "--export-path",
            "/tmp",
        ],
        &["generate-entry", "dev", "--delete", "--force"],
    ] {
        let err = parse(args).expect_err(&args.join(" "));
        assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
    }
    for args in [
        &[
            "export",
            "dev",
            "--bin",
            "/bin/sh",
            "--export-path",
            "/tmp",
            "--force",
        ][..],
        &["export", "--app", "xterm", "--export-label", "x", "--force"],
        &["export", "dev", "--delete", "--bin", "/bin/sh"],
        &["export", "dev", "--delete", "--app", "xterm"],
        &["export", "dev", "--list", "--json"],
        &["generate-entry", "dev", "--force"],
    ] {
        parse(args).unwrap_or_else(|err| panic!("{args:?}: {err}"));
    }
    // The usage names the four forms, in help and in errors.
    let forms = "Usage: box export [NAME] --bin PATH [--export-path DIR] [--force]
       box export [NAME] --app APP [--export-label LABEL] [--force]
       box export [NAME] --delete (--bin PATH | --app APP)
       box export [NAME] --list [--json]
";
    let err = parse(&["export", "--delete", "dev"])
        .unwrap_err()
        .render()
        .to_string();
    assert!(err.contains(forms), "{err}");
    let help = parse(&["export", "--help"])
        .unwrap_err()
        .render()
        .to_string();
    assert!(help.contains(forms), "{help}");
}

/// An X server on a free display, killed on drop.
struct Xvfb {
    child: std::process::Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        for n in 90..140 {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                || Path::new(&format!("/tmp/.X{n}-lock")).exists()
            {
                continue;
            }
            let child = Command::new("Xvfb")
                .args([
                    &format!(":{n}"),
                    "-ac",
                    "-nolisten",
                    "tcp",
                    "-screen",
                    "0",
                    "800x600x24",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb (package xvfb) must be installed");
            let socket = format!("/tmp/.X11-unix/X{n}");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !Path::new(&socket).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Xvfb {
                child,
                display: format!(":{n}"),
            };
        }
        panic!("no free X display between :90 and :139");
    }

    fn windows(&self) -> String {
        let out = Command::new("xwininfo")
            .args(["-root", "-tree", "-display", &self.display])
            .output()
            .expect("xwininfo (package x11-utils) must be installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The argv a launcher runs for an Exec line given `urls`, as the spec says: `%u`/`%f`
/// expand to the first URL, `%U`/`%F` to all of them (as separate arguments), `%c` to
/// the name, `%k` to the entry's path, `%i` to `--icon ICON`.
fn expand_exec(value: &str, name: &str, icon: &str, entry: &Path, urls: &[&str]) -> Vec<String> {
    let mut argv = Vec::new();
    for arg in exec::parse_value(value).unwrap() {
        if let [Piece::Code(code)] = arg.as_slice() {
            match code {
                'i' => argv.extend(["--icon".to_owned(), icon.to_owned()]),
                'c' => argv.push(name.to_owned()),
                'k' => argv.push(entry.display().to_string()),
                'u' | 'f' => argv.extend(urls.first().map(|u| u.to_string())),
                'U' | 'F' => argv.extend(urls.iter().map(|u| u.to_string())),
                _ => {}
            }
            continue;
        }
        let mut word = String::new();
        for piece in arg {
            match piece {
                Piece::Text(t) => word.push_str(&t),
                Piece::Code('c') => word.push_str(name),
                Piece::Code('k') => word.push_str(&entry.display().to_string()),
                Piece::Code('u' | 'f') => word.push_str(urls.first().copied().unwrap_or("")),
                Piece::Code(_) => {}
            }
        }
        argv.push(word);
    }
    argv
}

/// The files under `dir` whose name is `name.<ext>`.
fn icon_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(icon_files(&path, name));
        } else if path.file_stem().is_some_and(|s| *s == *name) {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn key<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in:\n{text}"))
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn exported_app_validates_and_opens_its_window_and_rm_cleans_up() {
    let env = debian_box("export_app");
    env.run(&["export", "dev", "--app", "xterm"]).success();
    let entry = apps_dir(&env).join("dev-debian-xterm.desktop");
    assert_validates(&entry);
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("\nName=XTerm (on dev)\n"), "{text}");
    assert!(text.contains("\nStartupWMClass=XTerm\n"), "{text}");
    assert!(!text.contains("DBusActivatable"));
    // Debian's xterm names `mini.xterm`; the files are themed icons or the sized XPMs
    // in /usr/share/pixmaps, copied where the host's icon lookup finds them.
    let icon_name = key(&text, "Icon");
    let icons = icon_files(&env.data_home().join("icons"), icon_name);
    assert!(!icons.is_empty(), "no icon {icon_name} copied to the host");
    assert!(
        icons
            .iter()
            .all(|p| p.to_string_lossy().contains("/hicolor/")),
        "{icons:?}"
    );

    // The Exec line runs xterm in the box; on a real X server its window appears.
    let x = Xvfb::start();
    let argv = expand_exec(key(&text, "Exec"), "XTerm", icon_name, &entry, &[]);
    assert_eq!(argv[0], "/usr/bin/env");
    assert_eq!(argv[2], box_bin());
    assert_eq!(argv[3..6], ["run", "dev", "--"]);
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("HOME", &env.home)
        .env("USER", env.user.name())
        .env("PATH", "/usr/bin:/bin")
        .env("XDG_RUNTIME_DIR", &env.runtime_dir)
        .env("DISPLAY", &x.display)
        .current_dir(&env.home)
        .uid(env.uid)
        .gid(env.gid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tree = String::new();
    while Instant::now() < deadline {
        tree = x.windows();
        if tree.contains("\"xterm\"") {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("xterm exited with {status} before opening a window:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        tree.contains("\"xterm\""),
        "no xterm window on {}:\n{tree}",
        x.display
    );

    // --delete takes the entry and its icons away; a label can be chosen or turned off.
    env.run(&["export", "dev", "--delete", "--app", "xterm"])
        .success();
    assert!(!entry.exists());
    assert!(icons.iter().all(|p| !p.exists()), "{icons:?}");
    env.run(&[
        "export",
        "dev",
        "--app",
        "debian-xterm",
        "--export-label",
        "none",
    ])
    .success();
    assert!(
        std::fs::read_to_string(&entry)
            .unwrap()
            .contains("\nName=XTerm\n")
    );

    // The box's own menu entry, which --delete removes and generate-entry writes again.
    env.run(&["generate-entry", "dev"]).success();
    let own = apps_dir(&env).join("box-dev.desktop");
    assert_validates_cleanly(&own);
    env.run(&["generate-entry", "dev", "--delete"]).success();
    assert!(!own.exists());
    env.run(&["generate-entry", "dev"]).success();
    assert!(key(&std::fs::read_to_string(&own).unwrap(), "Exec").ends_with(" enter dev"));

    // A wrapper too, then rm takes everything away.
    env.run(&["export", "dev", "--bin", "/usr/bin/xterm"])
        .success();
    let wrapper = bin_home(&env).join("xterm");
    let kept_copy = env.home.join("old-wrapper");
    std::fs::copy(&wrapper, &kept_copy).unwrap();
    env.run(&["rm", "--force", "--yes", "dev"]).success();
    for path in icons.iter().chain([&entry, &own, &wrapper]) {
        assert!(!path.exists(), "{} left after rm", path.display());
    }
    // The icon directories box created (hicolor/32x32/apps, ...) went with the icons.
    let left = dirs_under(&env.data_home().join("icons"));
    assert!(left.is_empty(), "directories left after rm: {left:?}");
    let json = env.run(&["export", "dev", "--list", "--json"]);
    assert!(
        !json.status.success() || json.stdout.trim() == "[]",
        "{json}"
    );

    // A wrapper whose box is gone says so.
    let out = run_as(&env, &kept_copy, &["-v"], &[]);
    assert_ne!(out.code(), Some(0));
    out.stderr_has("no box named");
    out.stderr_has("this wrapper was exported from box dev, which no longer exists");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn exec_line_with_field_codes_quotes_and_env_runs_in_the_box() {
    let mut env = debian_box("export_probe");
    install_probe(&env, "dev");
    // A cache tool that is slow to say nothing useful: it must run, quietly, and its
    // failure must not fail the export.
    let tools = env.dir.join("tools");
    env.mkdir_owned(&tools, 0o755);
    let marker = env.home.join("menu-refreshed");
    env.write_user_file(
        &tools.join("xdg-desktop-menu"),
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho menu-tool-noise; echo menu-tool-noise >&2\nexit 1\n",
            marker.display()
        ),
        0o755,
    );
    env.set_env(
        "PATH",
        format!(
            "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            tools.display()
        ),
    );
    let out = env.run(&["export", "dev", "--app", "probe"]);
    out.success();
    assert!(!out.stderr.contains("noise"), "{out}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "forceupdate\n");

    let entry = apps_dir(&env).join("dev-probe.desktop");
    assert_validates(&entry);
    let text = std::fs::read_to_string(&entry).unwrap();
    // The entry had no StartupWMClass: its own desktop id becomes it, so the window
    // (app_id `probe`) still matches the entry named after its box.
    assert_eq!(key(&text, "StartupWMClass"), "probe", "{text}");
    // `Icon=probe.svg` was found as `probe`, and is named so now.
    assert_eq!(key(&text, "Icon"), "probe");
    let icons = env.data_home().join("icons");
    assert!(icons.join("hicolor/scalable/apps/probe.svg").is_file());
    // An icon only the box's Adwaita theme has goes to hicolor, never to an Adwaita
    // directory that would override the host theme's own icons.
    assert!(icons.join("hicolor/48x48/apps/probe-alt.png").is_file());
    assert!(!icons.join("Adwaita").exists());

    // Launched as the spec says: %i is `--icon NAME`, %U every URL as its own argument.
    let urls = ["file:///tmp/a b.txt", "https://example.org/?q=1&r=it's"];
    let argv = expand_exec(key(&text, "Exec"), "Probe", "probe", &entry, &urls);
    let out = launch(
        &env,
        &argv,
        &[
            ("HOME", &env.home),
            ("PATH", Path::new("/usr/bin:/bin")),
            ("XDG_RUNTIME_DIR", &env.runtime_dir),
        ],
    );
    out.success();
    let got = std::fs::read_to_string(env.home.join("probe.out")).unwrap();
    assert_eq!(
        got,
        format!(
            "from-entry|unset|{}|--icon|probe|{}|{}|",
            env.home.display(),
            urls[0],
            urls[1]
        ),
        "{out}"
    );
    // The action's Exec line (single-quoted too) runs in the box.
    let action = text.split("[Desktop Action second]").nth(1).unwrap();
    let argv = expand_exec(key(action, "Exec"), "Probe", "probe", &entry, &[]);
    launch(
        &env,
        &argv,
        &[("HOME", &env.home), ("XDG_RUNTIME_DIR", &env.runtime_dir)],
    )
    .success();
    assert_eq!(
        std::fs::read_to_string(env.home.join("probe2.out")).unwrap(),
        "second\n"
    );

    // An entry with a working directory only the box has (Path=), TryExec, a name
    // with trailing blanks, and an icon file named like another app's.
    assert!(!Path::new("/opt/probe-dir").exists());
    for (app, extra) in [
        (
            "workdir",
            "Path=/opt/probe-dir\nTryExec=sh\nName=Workdir  \n",
        ),
        ("workdir2", "Name=Workdir 2\n"),
    ] {
        put_in_box(
            &env,
            "dev",
            &format!("/usr/share/applications/{app}.desktop"),
            format!("[Desktop Entry]\nType=Application\n{extra}Icon=/opt/{app}/icon.png\nExec=sh -c 'pwd > \"$HOME/{app}.out\"'\n").as_bytes(),
        );
        put_in_box(
            &env,
            "dev",
            &format!("/opt/{app}/icon.png"),
            &png(if app == "workdir" { 32 } else { 48 }),
        );
    }
    env.run(&["run", "dev", "--", "sudo", "mkdir", "-p", "/opt/probe-dir"])
        .success();
    let mut icon_paths = Vec::new();
    for app in ["workdir", "workdir2"] {
        env.run(&["export", "dev", "--app", app]).success();
        let entry = apps_dir(&env).join(format!("dev-{app}.desktop"));
        assert_validates(&entry);
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            !text.contains("Path=") && !text.contains("TryExec"),
            "{text}"
        );
        let argv = expand_exec(key(&text, "Exec"), app, app, &entry, &[]);
        launch(
            &env,
            &argv,
            &[("HOME", &env.home), ("XDG_RUNTIME_DIR", &env.runtime_dir)],
        )
        .success();
        icon_paths.push(PathBuf::from(key(&text, "Icon")));
    }
    assert!(
        std::fs::read_to_string(apps_dir(&env).join("dev-workdir.desktop"))
            .unwrap()
            .contains("\nName=Workdir (on dev)\n")
    );
    // The command started in the box's directory (the other in the caller's, the home).
    assert_eq!(
        std::fs::read_to_string(env.home.join("workdir.out")).unwrap(),
        "/opt/probe-dir\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.home.join("workdir2.out")).unwrap(),
        format!("{}\n", env.home.display())
    );
    // Each app shows its own icon.
    assert_ne!(icon_paths[0], icon_paths[1]);
    assert_eq!(std::fs::read(&icon_paths[0]).unwrap(), png(32));
    assert_eq!(std::fs::read(&icon_paths[1]).unwrap(), png(48));
    // An entry whose TryExec the box lacks is refused, and nothing is written.
    put_in_box(
        &env,
        "dev",
        "/usr/share/applications/uninstalled.desktop",
        b"[Desktop Entry]\nType=Application\nName=Gone\nTryExec=/usr/bin/gone\nExec=gone\n",
    );
    env.run(&["export", "dev", "--app", "uninstalled"])
        .box_error(&[
            "uninstalled.desktop",
            "TryExec=/usr/bin/gone",
            "not installed",
        ]);
    assert!(!apps_dir(&env).join("dev-uninstalled.desktop").exists());

    // rm takes the entries, the icons and the directories box made for them.
    env.run(&["rm", "--force", "--yes", "dev"]).success();
    assert!(!entry.exists());
    assert!(icon_paths.iter().all(|p| !p.exists()), "{icon_paths:?}");
    let left = dirs_under(&icons);
    assert!(left.is_empty(), "directories left after rm: {left:?}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn exports_work_from_a_bare_environment_with_another_data_home() {
    let mut env = TestEnv::new("export_bare", User::BoxTest);
    let data_home = env.home.join("elsewhere/data");
    env.mkdir_owned(&data_home, 0o700);
    env.set_env("XDG_DATA_HOME", &data_home);
    let image = Fixture::Debian.push(Registry::plain()).image.reference;
    // Without XDG_RUNTIME_DIR, box keeps this session's state of running boxes in
    // /tmp/box-run-UID, which every test of this user shares: a name no other test uses.
    let name = "bare-env-box";
    env.run(&["create", "--yes", "--no-entry", "--image", &image, name])
        .success();
    install_probe(&env, name);
    env.run(&["export", name, "--bin", "/usr/bin/printf"])
        .success();
    env.run(&["export", name, "--app", "probe"]).success();
    let wrapper = bin_home(&env).join("printf");
    env.run(&["stop", "--yes", name]).success();

    // cron: HOME and PATH only, no XDG_DATA_HOME, no runtime directory; the box stopped.
    let cron = |program: &Path, args: &[&str], vars: &[(&str, &Path)]| {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (k, v.as_os_str())))
            .current_dir(&env.home)
            .stdin(Stdio::null())
            .uid(env.uid)
            .gid(env.gid);
        outcome_of(&env, program, args, command)
    };
    let path = Path::new("/usr/bin:/bin");
    let out = cron(
        &wrapper,
        &["x-%s", "y"],
        &[("HOME", &env.home), ("PATH", path)],
    );
    out.success();
    assert_eq!(out.stdout, "x-y", "{out}");
    // `env -i`: not even HOME (box takes it from the user database).
    let out = cron(&wrapper, &["%s", "bare"], &[]);
    out.success();
    assert_eq!(out.stdout, "bare", "{out}");

    // The desktop entry's Exec line, from the same bare session after another stop.
    env.run(&["stop", "--yes", name]).success();
    let entry = data_home.join("applications/bare-env-box-probe.desktop");
    let text = std::fs::read_to_string(&entry).unwrap();
    let argv = expand_exec(key(&text, "Exec"), "Probe", "probe", &entry, &["u"]);
    let out = launch(&env, &argv, &[("HOME", &env.home), ("PATH", path)]);
    out.success();
    // The pinned data directory did not reach the program in the box.
    assert_eq!(
        std::fs::read_to_string(env.home.join("probe.out")).unwrap(),
        format!("from-entry|unset|{}|--icon|probe|u|", env.home.display()),
        "{out}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn wrapper_inside_its_own_box_runs_the_binary_directly() {
    let env = debian_box("export_inside_wrapper");
    // What makes the direct path visible: the box executable the wrapper names on the
    // host is not in the box, so only a direct exec can succeed there. The test build may
    // be in a directory boxes share (a checkout under /tmp or a home), so the export is
    // made by a copy in the test's own directory, which no box shares.
    let private = env.dir.join("private-bin");
    std::fs::create_dir(&private).unwrap();
    let private_box = private.join("box");
    std::fs::copy(box_bin(), &private_box).unwrap();
    let out = env.wait(
        &["export"],
        env.command_of(&private_box, &["export", "dev", "--bin", "/bin/sh"])
            .spawn()
            .unwrap(),
    );
    out.success();
    let wrapper = bin_home(&env).join("sh");
    let wrapper = wrapper.to_str().unwrap();
    env.run(&[
        "run",
        "dev",
        "--",
        "test",
        "-e",
        private_box.to_str().unwrap(),
    ])
    .status(1);
    let script = r#"echo "direct ${BOX_EXPORT_WRAPPER-unset} $*""#;
    let out = env.run(&["run", "dev", "--", wrapper, "-c", script, "sh", "a b"]);
    out.success();
    assert_eq!(out.stdout, "direct unset a b\n", "{out}");
    // Without box's variables (`env -i`, sudo), /run/.containerenv says which box this
    // is: still the binary itself, directly.
    let out = env.run(&[
        "run", "dev", "--", "env", "-i", wrapper, "-c", script, "sh", "bare",
    ]);
    out.success();
    assert_eq!(out.stdout, "direct unset bare\n", "{out}");
    let out = env.run(&["run", "dev", "--", "sudo", wrapper, "-c", "id -u"]);
    out.success();
    assert_eq!(out.stdout, "0\n", "{out}");
}

/// Put an executable script at `path` in box `name`.
fn put_script_in_box(env: &TestEnv, name: &str, path: &str, script: &str) {
    put_in_box(env, name, path, script.as_bytes());
    env.run(&["run", name, "--", "sudo", "chmod", "755", path])
        .success();
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn wrapper_inside_another_box_runs_that_box_s_own_command() {
    let env = debian_box("export_other_box");
    let image = Fixture::Debian.push(Registry::plain()).image.reference;
    env.run(&["create", "--yes", "--no-entry", "--image", &image, "other"])
        .success();
    put_script_in_box(
        &env,
        "dev",
        "/usr/local/bin/which-box",
        "#!/bin/sh\necho \"dev's $*\"\n",
    );
    env.run(&["export", "dev", "--bin", "/usr/local/bin/which-box"])
        .success();
    env.run(&["export", "dev", "--bin", "/usr/bin/id"])
        .success();
    let wrapper = bin_home(&env).join("which-box");
    let out = run_as(&env, &wrapper, &["a"], &[]);
    out.success();
    assert_eq!(out.stdout, "dev's a\n", "{out}");

    // In box `other`, the host's ~/.local/bin comes first on PATH, as it does in a
    // login shell there.
    let path = format!(
        "PATH={}:/usr/local/bin:/usr/bin:/bin",
        bin_home(&env).display()
    );
    let in_other = |args: &[&str]| {
        let mut all = vec!["run", "other", "--", "env", &path];
        all.extend(args);
        env.run(&all)
    };
    // `id` is the box's own id, not a failed `box run dev` from inside box other.
    let out = in_other(&["id", "-u"]);
    out.success();
    assert_eq!(out.stdout.trim(), env.uid.to_string(), "{out}");
    // A command box other lacks: the error names the wrapper, its box, the host.
    let out = in_other(&["which-box", "a"]);
    assert_eq!(out.code(), Some(127), "{out}");
    out.stderr_has(&format!(
        "box: error: {} runs /usr/local/bin/which-box in box `dev` from the host, and box `other` has no `which-box` of its own on PATH",
        wrapper.display()
    ));
    out.stderr_has("hint: run `which-box` on the host, or install it in box `other`");
    // Once box other has its own, that one runs, with the caller's arguments.
    put_script_in_box(
        &env,
        "other",
        "/usr/local/bin/which-box",
        "#!/bin/sh\necho \"other's $*\"\n",
    );
    let out = in_other(&["which-box", "a b", "*"]);
    out.success();
    assert_eq!(out.stdout, "other's a b *\n", "{out}");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn exports_from_inside_a_box_land_on_the_host() {
    let env = debian_box("export_from_inside");
    // A directory on the host that the box does not share (the box has its own /var/tmp).
    let host_dir = env.dir.join("host-only-bin");
    env.mkdir_owned(&host_dir, 0o755);
    env.run(&["run", "dev", "--", "test", "-e", host_dir.to_str().unwrap()])
        .status(1);

    // Exported from the host first, then again from inside to the host-only directory:
    // it moves there, on the host.
    env.run(&["export", "dev", "--bin", "/bin/sh"]).success();
    let out = env.run(&[
        "run",
        "dev",
        "--",
        "box",
        "export",
        "--bin",
        "/bin/sh",
        "--export-path",
        host_dir.to_str().unwrap(),
    ]);
    out.success();
    let wrapper = host_dir.join("sh");
    assert!(wrapper.is_file(), "no wrapper on the host:\n{out}");
    assert!(!bin_home(&env).join("sh").exists());
    env.run(&["run", "dev", "--", "test", "-e", wrapper.to_str().unwrap()])
        .status(1);
    let out = run_as(&env, &wrapper, &["-c", "echo from $CONTAINER_ID"], &[]);
    out.success();
    assert_eq!(out.stdout, "from dev\n", "{out}");
    env.run(&["export", "dev", "--list"])
        .success()
        .stdout_has(wrapper.to_str().unwrap());

    // A host symlink to that directory resolves on the host, not in the box.
    let link = env.home.join("my-bin");
    std::os::unix::fs::symlink(&host_dir, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(env.uid), Some(env.gid)).unwrap();
    env.run(&[
        "run",
        "dev",
        "--",
        "box",
        "export",
        "--bin",
        "/usr/bin/printf",
        "--export-path",
        link.to_str().unwrap(),
    ])
    .success();
    assert!(host_dir.join("printf").is_file());

    // Relative: below the current directory, when the box shares it with the host...
    env.run(&[
        "run",
        "dev",
        "--",
        "box",
        "export",
        "--bin",
        "/usr/bin/id",
        "--export-path",
        "rel-bin",
    ])
    .success();
    assert!(env.home.join("rel-bin/id").is_file());
    // ...and refused where the directory is the box's own.
    env.run(&[
        "run",
        "dev",
        "--",
        "sh",
        "-c",
        "cd /usr/share && box export --bin /usr/bin/env --export-path rel-bin",
    ])
    .box_error(&["/usr/share", "belongs to the box", "absolute path"]);

    // The default places (the shared home) and an application work from inside too.
    env.run(&["run", "dev", "--", "box", "export", "--app", "xterm"])
        .success();
    let entry = apps_dir(&env).join("dev-debian-xterm.desktop");
    assert_validates(&entry);

    // --delete from inside removes the host's file.
    env.run(&[
        "run", "dev", "--", "box", "export", "--delete", "--bin", "/bin/sh",
    ])
    .success();
    assert!(!wrapper.exists());
    // An export directory box creates on the host, with a parent, from the host.
    let bin2 = env.home.join("bin2/deeper");
    env.run(&[
        "export",
        "dev",
        "--bin",
        "/usr/bin/env",
        "--export-path",
        bin2.to_str().unwrap(),
    ])
    .success();
    env.run(&["rm", "--force", "--yes", "dev"]).success();
    for path in [host_dir.join("printf"), env.home.join("rel-bin/id"), entry] {
        assert!(!path.exists(), "{} left after rm", path.display());
    }
    // The directories box created for its exports went with them; the one that was
    // there before (host-only-bin, the user's) stays.
    for dir in [
        env.home.join("rel-bin"),
        env.home.join("bin2"),
        bin_home(&env),
    ] {
        assert!(!dir.exists(), "{} left after rm", dir.display());
    }
    assert!(host_dir.is_dir());
}

/// What KDE's own reader (KConfig, through `kreadconfig5`) reads for `key` of `group` in
/// desktop file `path` under locale `lang` (KDE launchers read Exec with the session's
/// locale); run as root with a home of its own, so it reads no one's settings.
fn kde_read(env: &TestEnv, path: &Path, group: &str, key: &str, lang: &str) -> String {
    let home = env.dir.join("kde-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new("kreadconfig5")
        .args([
            "--file",
            path.to_str().unwrap(),
            "--group",
            group,
            "--key",
            key,
        ])
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", lang)
        .env("LC_ALL", lang)
        .output()
        .expect("kreadconfig5 (package libkf5config-bin) must be installed");
    assert!(out.status.success(), "kreadconfig5 {path:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// The command line GLib's reader (`Gio.DesktopAppInfo`, through python3-gi) takes from
/// desktop file `path`, or `<none>` when GLib does not load it as an application.
fn glib_commandline(env: &TestEnv, path: &Path) -> String {
    let script = "import sys, gi\ngi.require_version('Gio', '2.0')\nfrom gi.repository import Gio\ntry:\n    app = Gio.DesktopAppInfo.new_from_filename(sys.argv[1])\nexcept TypeError:\n    app = None\nprint(app.get_commandline() if app else '<none>')\n";
    let out = run_as(
        env,
        Path::new("/usr/bin/python3"),
        &["-c", script, path.to_str().unwrap()],
        &[],
    );
    out.success();
    out.stdout.trim_end().to_owned()
}

/// Wait (at most 30 s) for `path` to appear with a complete line, and return it.
fn wait_for_line(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear: the launcher did not start the app",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The payload of the hostile entries: on the host it would leave `pwned` in the home.
const PAYLOAD: &str = "sh -c \"echo host > $HOME/pwned\"";

/// Issue 19: desktop entries are the image author's, and KDE reads much more of them
/// than `Exec=` of `[Desktop Entry]`: flagged and localized Exec keys, escaped key and
/// group names, `[$i]` groups, duplicates, TerminalOptions, su keys. Each hostile entry
/// is shown to carry its payload for KDE's own reader (kreadconfig5 on the box's file);
/// exported, KDE's and GLib's readers see only box's launcher, GLib starts the app in
/// the box, and what readers would take differently is refused with a clear error.
#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn hostile_desktop_entries_run_nothing_on_the_host() {
    let env = debian_box("export_hostile_entries");
    let data_home = env.data_home();
    let launcher = format!(
        "/usr/bin/env BOX_DATA_HOME={} {} run dev -- ",
        data_home.display(),
        box_bin()
    );
    // What each app runs: says where it ran.
    let app = |name: &str| {
        format!(
            "Exec=sh -c 'if test -e /run/.containerenv; then echo box; else echo host; fi > \"$HOME/ran-{name}\"'\n"
        )
    };
    // (name, what follows `Type`/`Name`/Exec in [Desktop Entry], the locale KDE reads
    // with, the group and key where KDE finds the payload in the box's file)
    let accepted: &[(&str, String, &str, &str, &str)] = &[
        (
            "exec-e",
            format!("Exec[$e]={PAYLOAD}\n"),
            "C.UTF-8",
            "Desktop Entry",
            "Exec",
        ),
        (
            "exec-i",
            format!("Exec[$i]={PAYLOAD}\n"),
            "C.UTF-8",
            "Desktop Entry",
            "Exec",
        ),
        (
            "exec-c",
            format!("Exec[C]={PAYLOAD}\n"),
            "C.UTF-8",
            "Desktop Entry",
            "Exec",
        ),
        (
            "exec-en",
            format!("Exec[en_US]={PAYLOAD}\n"),
            "en_US.UTF-8",
            "Desktop Entry",
            "Exec",
        ),
        (
            "key-escape",
            format!("E\\x78ec={PAYLOAD}\n"),
            "C.UTF-8",
            "Desktop Entry",
            "Exec",
        ),
        (
            "terminal",
            format!("Terminal=true\nTerminalOptions=-e {PAYLOAD}\n"),
            "C.UTF-8",
            "Desktop Entry",
            "TerminalOptions",
        ),
        (
            "su",
            format!(
                "X-KDE-SubstituteUID=true\nX-KDE-Username=root\nDBusActivatable=true\nTryExec[$e]={PAYLOAD}\nPath[$e]=/\n"
            ),
            "C.UTF-8",
            "Desktop Entry",
            "TryExec",
        ),
        (
            "action",
            format!(
                "Actions=new;\n\n[Desktop Action new]\nName=New\nExec=true\nExec[$e]={PAYLOAD}\n"
            ),
            "C.UTF-8",
            "Desktop Action new",
            "Exec",
        ),
    ];
    for (name, extra, lang, group, key) in accepted {
        let text = format!(
            "[Desktop Entry]\nType=Application\nName={name}\n{}{extra}",
            app(name)
        );
        let source = env.dir.join(format!("{name}.desktop"));
        std::fs::write(&source, &text).unwrap();
        assert!(
            kde_read(&env, &source, group, key, lang).contains("pwned"),
            "{name}: KDE does not read the payload from the hostile entry:\n{text}"
        );
        put_in_box(
            &env,
            "dev",
            &format!("/usr/share/applications/{name}.desktop"),
            text.as_bytes(),
        );
        env.run(&["export", "dev", "--app", name]).success();
        let entry = apps_dir(&env).join(format!("dev-{name}.desktop"));
        let exported = std::fs::read_to_string(&entry).unwrap();
        assert!(!exported.contains("pwned"), "{name}:\n{exported}");
        assert_validates(&entry);
        for lang in ["C.UTF-8", "en_US.UTF-8"] {
            let exec = kde_read(&env, &entry, "Desktop Entry", "Exec", lang);
            assert!(
                exec.starts_with(&launcher),
                "{name} ({lang}): KDE runs {exec}"
            );
            for key in [
                "TerminalOptions",
                "X-KDE-SubstituteUID",
                "X-KDE-Username",
                "TryExec",
                "Path",
                "DBusActivatable",
            ] {
                assert_eq!(
                    kde_read(&env, &entry, "Desktop Entry", key, lang),
                    "",
                    "{name}: {key}"
                );
            }
        }
        if *name == "action" {
            let exec = kde_read(&env, &entry, "Desktop Action new", "Exec", "C.UTF-8");
            assert_eq!(exec, format!("{launcher}true"), "{name}");
        }
        let glib = glib_commandline(&env, &entry);
        assert!(glib.starts_with(&launcher), "{name}: GLib runs {glib}");
        // GLib starts it, in the box (Terminal=true would need a terminal emulator).
        if *name != "terminal" {
            let out = run_as(
                &env,
                Path::new("/usr/bin/gio"),
                &["launch", entry.to_str().unwrap()],
                &[],
            );
            out.success();
            assert_eq!(
                wait_for_line(&env.home.join(format!("ran-{name}"))),
                "box\n",
                "{name}"
            );
        }
    }
    // Groups some reader takes for the entry or an action, duplicates, and control
    // characters: readers would disagree on what runs; refused, nothing written.
    let refused: &[(&str, String, &[&str])] = &[
        (
            "group-escape",
            format!("\n[Desktop\\sEntry]\nExec={PAYLOAD}\n"),
            &["[Desktop\\sEntry]", "Desktop Entry"],
        ),
        (
            "group-flag",
            format!("\n[Desktop Entry][$i]\nExec={PAYLOAD}\n"),
            &["[Desktop Entry][$i]"],
        ),
        (
            "group-twice",
            format!("\n[Desktop Entry]\nExec={PAYLOAD}\n"),
            &["[Desktop Entry]", "twice"],
        ),
        ("key-twice", format!("Exec={PAYLOAD}\n"), &["Exec", "twice"]),
        (
            "action-flag",
            format!("Actions=new;\n[Desktop Action new][$i]\nExec={PAYLOAD}\n"),
            &["[Desktop Action new][$i]"],
        ),
        (
            "control",
            format!("Comment=x\rExec={PAYLOAD}\n"),
            &["control character", "line 5"],
        ),
    ];
    for (name, extra, needles) in refused {
        let text = format!(
            "[Desktop Entry]\nType=Application\nName={name}\n{}{extra}",
            app(name)
        );
        if *name != "control" {
            let source = env.dir.join(format!("{name}.desktop"));
            std::fs::write(&source, &text).unwrap();
            let group = if name.starts_with("action") {
                "Desktop Action new"
            } else {
                "Desktop Entry"
            };
            assert!(
                kde_read(&env, &source, group, "Exec", "C.UTF-8").contains("pwned"),
                "{name}: KDE does not read the payload from the hostile entry:\n{text}"
            );
        }
        put_in_box(
            &env,
            "dev",
            &format!("/usr/share/applications/{name}.desktop"),
            text.as_bytes(),
        );
        env.run(&["export", "dev", "--app", name])
            .box_error(needles);
        assert!(!apps_dir(&env).join(format!("dev-{name}.desktop")).exists());
    }
    assert!(!env.home.join("pwned").exists());
}

/// Issue 19: an app whose entry has `Path=` starts from dex (minimal window managers),
/// GLib (`gio launch`) and KDE's reader, in the box's directory.
#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn exported_app_with_a_working_directory_starts_from_every_launcher() {
    let env = debian_box("export_launchers");
    put_script_in_box(
        &env,
        "dev",
        "/opt/probe dir/report",
        "#!/bin/sh\npwd > \"$HOME/cwd.out\"\n",
    );
    put_in_box(
        &env,
        "dev",
        "/usr/share/applications/workdir.desktop",
        b"[Desktop Entry]\nType=Application\nName=Workdir\nPath=/opt/probe dir\nExec=\"/opt/probe dir/report\" %U\n",
    );
    env.run(&["export", "dev", "--app", "workdir"]).success();
    let entry = apps_dir(&env).join("dev-workdir.desktop");
    assert_validates(&entry);
    let out_file = env.home.join("cwd.out");
    let vars = [
        ("HOME", env.home.as_path()),
        ("PATH", Path::new("/usr/bin:/bin")),
        ("XDG_RUNTIME_DIR", env.runtime_dir.as_path()),
    ];
    // dex, waiting for the app.
    let out = launch(
        &env,
        &[
            "/usr/bin/dex".to_owned(),
            "-w".to_owned(),
            entry.display().to_string(),
        ],
        &vars,
    );
    out.success();
    assert_eq!(wait_for_line(&out_file), "/opt/probe dir\n", "dex: {out}");
    std::fs::remove_file(&out_file).unwrap();
    // GLib.
    let out = launch(
        &env,
        &[
            "/usr/bin/gio".to_owned(),
            "launch".to_owned(),
            entry.display().to_string(),
        ],
        &vars,
    );
    out.success();
    assert_eq!(wait_for_line(&out_file), "/opt/probe dir\n", "gio: {out}");
    std::fs::remove_file(&out_file).unwrap();
    // KDE's reader, the command expanded as the spec says.
    let exec = kde_read(&env, &entry, "Desktop Entry", "Exec", "C.UTF-8");
    let argv = expand_exec(&exec::escape_string(&exec), "Workdir", "", &entry, &[]);
    launch(&env, &argv, &vars).success();
    assert_eq!(
        wait_for_line(&out_file),
        "/opt/probe dir\n",
        "KDE: {argv:?}"
    );
}

/// Issue 19: icons come only from the box's own files, are images, and are never made
/// readable by more users than their source: an icon path into the home, /tmp or the
/// host's root (directly, by a symlink or through `..`), a file that is no image, and
/// one only its owner may read are each left out with a warning; the app is exported.
#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn icons_come_only_from_the_box_s_own_files_and_keep_their_readers() {
    let env = debian_box("export_hostile_icons");
    let secret = |marker: &str| -> Vec<u8> {
        let mut bytes = png(48);
        bytes.extend(marker.as_bytes());
        bytes
    };
    // The user's private files (0600), and one of the host's that anyone may read.
    let home_secret = env.home.join("secret.png");
    env.write_user_file(&home_secret, secret("SECRET-HOME"), 0o600);
    let tmp_secret = PathBuf::from(format!("/tmp/box-test-icon-{}.png", std::process::id()));
    // Not `write_user_file`: that makes the parent the user's own, and /tmp is everyone's.
    std::fs::write(&tmp_secret, secret("SECRET-TMP")).unwrap();
    std::os::unix::fs::chown(&tmp_secret, Some(env.uid), Some(env.gid)).unwrap();
    std::fs::set_permissions(
        &tmp_secret,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let host_file = env.dir.join("host-icon.png");
    std::fs::write(&host_file, secret("SECRET-HOST")).unwrap();
    let on_host = format!("/run/host{}", host_file.display());
    env.run(&["run", "dev", "--", "test", "-r", &on_host])
        .success();
    // Links in the box's own directories that lead out of its files.
    for (link, target) in [
        (
            "/usr/share/pixmaps/leak-home.png",
            home_secret.to_str().unwrap(),
        ),
        (
            "/usr/share/icons/hicolor/48x48/apps/leak-host.png",
            on_host.as_str(),
        ),
    ] {
        env.run(&[
            "run",
            "dev",
            "--",
            "sudo",
            "mkdir",
            "-p",
            link.rsplit_once('/').unwrap().0,
        ])
        .success();
        env.run(&["run", "dev", "--", "sudo", "ln", "-s", target, link])
            .success();
    }
    put_in_box(&env, "dev", "/opt/icons/not-an-image.png", b"just text\n");
    put_in_box(&env, "dev", "/opt/icons/private.png", &secret("SECRET-BOX"));
    env.run(&[
        "run",
        "dev",
        "--",
        "sudo",
        "chmod",
        "600",
        "/opt/icons/private.png",
    ])
    .success();
    put_in_box(&env, "dev", "/opt/icons/good.png", &png(48));
    let dotdot = format!("/usr/share/../..{}", tmp_secret.display());
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "home",
            home_secret.to_str().unwrap(),
            &["shares with the host"],
        ),
        (
            "tmp",
            tmp_secret.to_str().unwrap(),
            &["shares with the host"],
        ),
        ("dotdot", &dotdot, &["shares with the host"]),
        ("host", &on_host, &["shares with the host"]),
        ("link-home", "leak-home", &["shares with the host"]),
        ("link-host", "leak-host", &["shares with the host"]),
        (
            "text",
            "/opt/icons/not-an-image.png",
            &["not a PNG, SVG or XPM image"],
        ),
        ("private", "/opt/icons/private.png", &["0600", "readable"]),
    ];
    for (name, icon, needles) in cases {
        put_in_box(
            &env,
            "dev",
            &format!("/usr/share/applications/icon-{name}.desktop"),
            format!(
                "[Desktop Entry]\nType=Application\nName=icon-{name}\nExec=true\nIcon={icon}\n"
            )
            .as_bytes(),
        );
        let out = env.run(&["export", "dev", "--app", &format!("icon-{name}")]);
        out.success();
        for needle in *needles {
            out.stderr_has(needle);
        }
        let text = std::fs::read_to_string(apps_dir(&env).join(format!("dev-icon-{name}.desktop")))
            .unwrap();
        assert!(!text.contains("Icon=/"), "{name}: {text}");
    }
    put_in_box(
        &env,
        "dev",
        "/usr/share/applications/icon-good.desktop",
        b"[Desktop Entry]\nType=Application\nName=icon-good\nExec=true\nIcon=/opt/icons/good.png\n",
    );
    env.run(&["export", "dev", "--app", "icon-good"]).success();
    let text = std::fs::read_to_string(apps_dir(&env).join("dev-icon-good.desktop")).unwrap();
    let good = PathBuf::from(key(&text, "Icon"));
    assert_eq!(std::fs::read(&good).unwrap(), png(48));
    assert_eq!(
        std::fs::metadata(&good).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // Nothing of the secrets reached the host's icons.
    let mut files = vec![env.data_home().join("icons")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("SECRET"),
                "{} holds a secret",
                path.display()
            );
        }
    }
    std::fs::remove_file(&tmp_secret).unwrap();
}

/// Issue 19: a binary whose path has a control character (a newline would become a
/// line break in the wrapper) is refused, and nothing is written.
#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn exported_binary_path_with_a_control_character_is_refused() {
    let env = debian_box("export_control_path");
    let path = "/usr/local/bin/two\nlines";
    put_script_in_box(&env, "dev", path, "#!/bin/sh\necho odd\n");
    env.run(&["export", "dev", "--bin", path])
        .box_error(&["control character", "/usr/local/bin/two\\nlines"]);
    assert!(
        std::fs::read_dir(bin_home(&env)).map_or(true, |mut d| d.next().is_none()),
        "a wrapper was written"
    );
}
