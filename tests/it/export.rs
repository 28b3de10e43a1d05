//! `box export` and `box generate-entry` end to end, as the unprivileged `boxtest` on the
//! Debian fixture (which has xterm and sudo): wrappers behave like `box run`, exported
//! desktop entries validate and start the app in the box (a real X server, Xvfb, shows
//! its window), `box rm` takes every export away, and each bad input is a clear error.

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
        .current_dir(&env.home)
        .stdin(Stdio::null())
        .uid(env.uid)
        .gid(env.gid);
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

#[track_caller]
fn assert_validates(path: &Path) {
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
}

#[test]
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
    assert!(!bin_home(&env).join("sh").exists());

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

/// The argv a launcher runs for an Exec line with no files or URLs: field codes for
/// files/URLs expand to nothing, `%c` to the name, `%k` to the entry's path, `%i` to
/// `--icon ICON`.
fn expand_exec(value: &str, name: &str, icon: &str, entry: &Path) -> Vec<String> {
    let mut argv = Vec::new();
    for arg in exec::parse_value(value).unwrap() {
        if let [Piece::Code(code)] = arg.as_slice() {
            match code {
                'i' => argv.extend(["--icon".to_owned(), icon.to_owned()]),
                'c' => argv.push(name.to_owned()),
                'k' => argv.push(entry.display().to_string()),
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
fn exported_app_validates_and_opens_its_window_and_rm_cleans_up() {
    let env = debian_box("export_app");
    env.run(&["export", "dev", "--app", "xterm"]).success();
    let entry = apps_dir(&env).join("debian-xterm.desktop");
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
    let argv = expand_exec(key(&text, "Exec"), "XTerm", icon_name, &entry);
    assert_eq!(argv[1..4], ["run", "dev", "--"]);
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
    assert_validates(&own);
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
