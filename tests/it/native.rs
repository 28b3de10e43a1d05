//! "As if native", proven with the host's real daemons rather than by the presence of a
//! socket: a headless weston, a PulseAudio server with a null sink, a session D-Bus, an
//! ssh-agent and an X server that checks a cookie, each started on the host as the
//! unprivileged test user with the test's private `XDG_RUNTIME_DIR` (ended by a guard
//! when the test ends, also on failure), and the clients in the box.
//!
//! The clients of the first test come from the Debian mirror, installed by the box's own
//! provisioning (one apt run, which also brings the ALSA plugin and its default device:
//! `aplay` is one of the clients); the X test uses the Debian fixture's own xterm.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::boxes::{Boxes, ok, shell_as};
use crate::common::{Fixture, Outcome, Registry, TestEnv, User};

/// Host daemons of one test, ended (SIGTERM, then SIGKILL) when dropped.
struct Daemons(Vec<(String, Child)>);

impl Daemons {
    /// Start `script` (`sh -c`, as the test user with the test's environment plus
    /// `vars`); its output goes to `<test dir>/<name>.log`.
    fn start(&mut self, env: &TestEnv, name: &str, script: &str, vars: &[(&str, &str)]) {
        let log = std::fs::File::create(env.dir.join(format!("{name}.log"))).unwrap();
        let child = shell_as(env, &format!("exec {script}"))
            .envs(vars.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} on the host: {e}"));
        self.0.push((name.to_owned(), child));
    }

    /// End the daemon `name` now.
    fn stop(&mut self, name: &str) {
        if let Some(at) = self.0.iter().position(|(n, _)| n == name) {
            let (_, child) = self.0.remove(at);
            end(child);
        }
    }

    /// Fail with the daemon's log when it has ended.
    #[track_caller]
    fn assert_running(&mut self, env: &TestEnv, name: &str) {
        let (_, child) = self.0.iter_mut().find(|(n, _)| n == name).unwrap();
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(env.dir.join(format!("{name}.log")));
            panic!("{name} ended ({status}):\n{}", log.unwrap_or_default());
        }
    }
}

/// SIGTERM to the process group of `child` (weston starts helpers), SIGKILL after 3 s.
fn end(mut child: Child) {
    use nix::sys::signal::{Signal, killpg};
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            let _ = killpg(group, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, child) in self.0.drain(..) {
            end(child);
        }
    }
}

/// Wait until `ready` holds (at most 20 s); `what` names it in the failure.
#[track_caller]
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `box ARGS` with `vars` added to the test environment.
fn box_with(env: &TestEnv, vars: &[(&str, &str)], args: &[&str]) -> Outcome {
    let child = env
        .command(args)
        .envs(vars.iter().copied())
        .spawn()
        .unwrap();
    env.wait(args, child)
}

/// `sh -c SCRIPT` on the host as the test user, with `vars`: its stdout.
#[track_caller]
fn on_host(env: &TestEnv, vars: &[(&str, &str)], script: &str) -> String {
    let out = shell_as(env, script)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{script}` on the host failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A one-second mono 16-bit 44.1 kHz WAV of a square wave: every sample is non-zero.
fn square_wave() -> Vec<u8> {
    let samples: Vec<u8> = (0..44100u32)
        .flat_map(|i| if (i / 50) % 2 == 0 { 8000i16 } else { -8000 }.to_le_bytes())
        .collect();
    let mut wav = b"RIFF".to_vec();
    wav.extend((36 + samples.len() as u32).to_le_bytes());
    wav.extend(b"WAVEfmt ");
    for field in [16u32.to_le_bytes(), [1, 0, 1, 0], 44100u32.to_le_bytes()] {
        wav.extend(field);
    }
    wav.extend(88200u32.to_le_bytes());
    wav.extend([2, 0, 16, 0]);
    wav.extend(b"data");
    wav.extend((samples.len() as u32).to_le_bytes());
    wav.extend(samples);
    wav
}

/// How many non-zero samples reached the host's null sink while `play` ran in the box:
/// recorded from the sink's monitor by `parec` on the host (silence is all zeros).
fn samples_played(env: &TestEnv, daemons: &mut Daemons, name: &str, play: impl FnOnce()) -> usize {
    let capture = env.home.join(format!("{name}.raw"));
    let _ = std::fs::remove_file(&capture);
    daemons.start(
        env,
        name,
        &format!(
            "parec -d boxnull.monitor --raw --format=s16le --rate=44100 --channels=1 > {}",
            capture.display()
        ),
        &[],
    );
    // The monitor streams silence as soon as the recording runs.
    wait_for("parec to record", || {
        std::fs::metadata(&capture).is_ok_and(|m| m.len() > 4096)
    });
    play();
    std::thread::sleep(Duration::from_millis(1500));
    daemons.stop(name);
    let bytes = std::fs::read(&capture).unwrap();
    bytes
        .chunks_exact(2)
        .filter(|s| i16::from_le_bytes([s[0], s[1]]) != 0)
        .count()
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_provisioned_box_talks_to_the_hosts_wayland_sound_session_bus_and_ssh_agent() {
    let env = TestEnv::new("native-daemons", User::BoxTest);
    let _boxes = Boxes(&env);
    env.set_provisioning(true);
    let image = Fixture::Debian.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);
    let created = ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &image,
            "--additional-packages",
            "wayland-utils pulseaudio-utils alsa-utils dbus-bin openssh-client",
            "nat",
        ],
    );
    created.stderr_has("ALSA programs through the host's sound server");

    let runtime = env.runtime_dir.display().to_string();
    let mut daemons = Daemons(Vec::new());

    // Wayland: the box's wayland-info lists the globals of the host's weston.
    daemons.start(
        &env,
        "weston",
        "weston --backend=headless-backend.so --socket=wayland-box --idle-time=0",
        &[],
    );
    let socket = env.runtime_dir.join("wayland-box");
    wait_for("weston's socket", || socket.exists());
    let wayland = [("WAYLAND_DISPLAY", "wayland-box")];
    let interfaces = |text: &str| -> Vec<String> {
        let mut found: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("interface: '"))
            .filter_map(|l| l.split('\'').next())
            .map(str::to_owned)
            .collect();
        found.sort();
        found
    };
    let host_globals = interfaces(&on_host(&env, &wayland, "wayland-info"));
    assert!(
        host_globals.contains(&"wl_compositor".to_owned()),
        "{host_globals:?}"
    );
    let in_box = box_with(&env, &wayland, &["run", "nat", "--", "wayland-info"]);
    in_box.success();
    assert_eq!(interfaces(&in_box.stdout), host_globals, "{in_box}");
    daemons.assert_running(&env, "weston");

    // Sound: PulseAudio with a null sink; paplay (its own protocol) and aplay (ALSA,
    // through the plugin provisioning configured) in the box are heard on its monitor.
    daemons.start(
        &env,
        "pulseaudio",
        "pulseaudio --daemonize=no -n --load=module-native-protocol-unix \
         --load='module-null-sink sink_name=boxnull' --exit-idle-time=-1 --use-pid-file=no",
        &[],
    );
    let pulse = env.runtime_dir.join("pulse/native");
    wait_for("pulseaudio's socket", || pulse.exists());
    let tone = env.home.join("tone.wav");
    env.write_user_file(&tone, square_wave(), 0o644);
    let sinks = box_with(
        &env,
        &[],
        &["run", "nat", "--", "pactl", "list", "short", "sinks"],
    );
    sinks.success().stdout_has("boxnull");
    let heard = samples_played(&env, &mut daemons, "parec-paplay", || {
        box_with(&env, &[], &["run", "nat", "--", "paplay", "tone.wav"]).success();
    });
    assert!(heard > 4410, "{heard} non-zero samples from paplay");
    let heard = samples_played(&env, &mut daemons, "parec-aplay", || {
        let out = box_with(&env, &[], &["run", "nat", "--", "aplay", "tone.wav"]);
        out.success();
        assert!(!out.stderr.contains("Unknown PCM"), "{out}");
    });
    assert!(heard > 4410, "{heard} non-zero samples from aplay");
    daemons.assert_running(&env, "pulseaudio");

    // The session bus: the box gets the id of the host's bus.
    let bus = format!("unix:path={runtime}/bus");
    daemons.start(
        &env,
        "dbus-daemon",
        &format!("dbus-daemon --session --nofork --nopidfile --address={bus}"),
        &[],
    );
    wait_for("the session bus socket", || {
        env.runtime_dir.join("bus").exists()
    });
    let session = [("DBUS_SESSION_BUS_ADDRESS", bus.as_str())];
    let get_id = "dbus-send --session --print-reply --dest=org.freedesktop.DBus \
                  /org/freedesktop/DBus org.freedesktop.DBus.GetId";
    // The reply's header names the caller; its body is the bus's id.
    let body = |reply: &str| -> String {
        reply
            .lines()
            .find(|l| l.trim_start().starts_with("string \""))
            .unwrap_or_else(|| panic!("no id in the reply:\n{reply}"))
            .trim()
            .to_owned()
    };
    let host_id = body(&on_host(&env, &session, get_id));
    let in_box = box_with(&env, &session, &["run", "nat", "--", "sh", "-c", get_id]);
    assert_eq!(body(&in_box.success().stdout), host_id, "{in_box}");

    // The ssh agent: the key added on the host is listed in the box.
    let agent = format!("{runtime}/ssh-agent.socket");
    daemons.start(&env, "ssh-agent", &format!("ssh-agent -D -a {agent}"), &[]);
    wait_for("ssh-agent's socket", || Path::new(&agent).exists());
    let ssh = [("SSH_AUTH_SOCK", agent.as_str())];
    on_host(
        &env,
        &ssh,
        "ssh-keygen -q -t ed25519 -N '' -C box-native-test -f \"$HOME/id_test\" && ssh-add -q \"$HOME/id_test\"",
    );
    let listed = on_host(&env, &ssh, "ssh-add -l");
    assert!(listed.contains("box-native-test"), "{listed}");
    let in_box = box_with(&env, &ssh, &["run", "nat", "--", "ssh-add", "-l"]);
    assert_eq!(in_box.success().stdout, listed, "{in_box}");
}

/// An X server on a free display that checks the cookie in `server_auth`.
fn start_x(env: &TestEnv, daemons: &mut Daemons, name: &str, server_auth: &Path) -> String {
    // Xvfb as an ordinary user needs the sockets' directory to exist.
    let sockets = Path::new("/tmp/.X11-unix");
    if !sockets.exists() {
        std::fs::create_dir(sockets).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sockets, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    let n = (150..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display between :150 and :199");
    daemons.start(
        env,
        name,
        &format!(
            "Xvfb :{n} -auth {} -nolisten tcp -screen 0 640x480x24",
            server_auth.display()
        ),
        &[],
    );
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
    wait_for("Xvfb's socket", || socket.exists());
    format!(":{n}")
}

/// A fresh random cookie in hex.
fn cookie() -> String {
    let mut bytes = [0u8; 16];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn x_clients_pass_the_cookie_check_from_default_hostname_and_home_boxes() {
    let env = TestEnv::new("native-x11", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = Fixture::Debian.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);
    let own_home = env.dir.join("own-home");
    env.mkdir_owned(&own_home, 0o755);
    let own_home = own_home.display().to_string();
    let boxes: [(&str, &[&str]); 3] = [
        ("plain", &[]),
        ("named", &["--hostname", "otherbox"]),
        ("homed", &["--home", &own_home]),
    ];
    for (name, flags) in boxes {
        let mut args = vec!["create", "--no-entry", "--image", &image];
        args.extend(flags);
        args.push(name);
        ok(&env, &args);
    }

    // As a display manager does: the server's cookie in a file of its own, the same
    // cookie in the user's authority file for this host's name.
    let mut daemons = Daemons(Vec::new());
    let xauth_dir = env.dir.join("xauth");
    env.mkdir_owned(&xauth_dir, 0o700);
    let server_auth = xauth_dir.join("server");
    let add = |file: &Path, display: &str, cookie: &str| {
        on_host(
            &env,
            &[],
            &format!(
                "xauth -q -f {} add {display} MIT-MAGIC-COOKIE-1 {cookie}",
                file.display()
            ),
        );
    };
    let first = cookie();
    // The server takes every cookie of its file, whatever display an entry names.
    add(&server_auth, ":0", &first);
    let display = start_x(&env, &mut daemons, "Xvfb", &server_auth);
    let x = [("DISPLAY", display.as_str())];

    // Without the cookie the server refuses: the check below is a real one.
    let refused = shell_as(&env, "xdpyinfo")
        .envs(x)
        .env("XAUTHORITY", "/dev/null")
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "Xvfb accepted a client without its cookie"
    );

    let home_file = env.home.join(".Xauthority");
    add(&home_file, &display, &first);
    let dm_file = xauth_dir.join("session");
    add(&dm_file, &display, &first);
    on_host(&env, &x, "xdpyinfo > /dev/null");

    let xterm = |display: &str, vars: &[(&str, &str)], name: &str| -> Outcome {
        let mut all = vec![("DISPLAY", display)];
        all.extend(vars);
        box_with(&env, &all, &["run", name, "--", "xterm", "-e", "true"])
    };
    let dm = dm_file.display().to_string();
    // The cookie only in ~/.Xauthority and XAUTHORITY unset; then a session whose
    // XAUTHORITY names a file of its own (boxes started afresh for each).
    for vars in [&[][..], &[("XAUTHORITY", dm.as_str())][..]] {
        for (name, _) in boxes {
            let out = xterm(&display, vars, name);
            assert!(
                out.status.success() && !out.stderr.contains("Authorization required"),
                "box {name}, {vars:?}: {out}"
            );
        }
        ok(&env, &["stop", "--all"]);
    }

    // A new server with a new cookie, written by xauth as a display manager would, while
    // the boxes run: the boxes' copies follow the host's file.
    for (name, _) in boxes {
        ok(&env, &["run", name, "--", "true"]);
    }
    daemons.stop("Xvfb");
    let second = cookie();
    std::fs::remove_file(&server_auth).unwrap();
    add(&server_auth, ":0", &second);
    let display = start_x(&env, &mut daemons, "Xvfb", &server_auth);
    add(&home_file, &display, &second);
    std::thread::sleep(Duration::from_millis(500));
    for (name, _) in boxes {
        let out = xterm(&display, &[], name);
        assert!(
            out.status.success(),
            "box {name} after the new cookie: {out}"
        );
    }
}

/// A box that outlives desktop sessions: started with no X authority at all (from a
/// script, an ssh session, before the display came up), then used from logins whose
/// cookie file has a new name each time (GNOME's Xwayland), in boxes where the cookie
/// cannot be found by the host's name (`--hostname`) or in `~/.Xauthority` (`--home`).
/// Each join's cookie must work, from a copy of the caller's own, private to the user.
#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn boxes_started_without_x_authority_take_each_joining_sessions_cookie() {
    let env = TestEnv::new("native-x11-join", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = Fixture::Debian.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);
    let own_home = env.dir.join("own-home");
    env.mkdir_owned(&own_home, 0o755);
    let own_home = own_home.display().to_string();
    let boxes: [(&str, &[&str]); 3] = [
        ("plain", &[]),
        ("named", &["--hostname", "otherbox"]),
        ("homed", &["--home", &own_home]),
    ];
    for (name, flags) in boxes {
        let mut args = vec!["create", "--no-entry", "--image", &image];
        args.extend(flags);
        args.push(name);
        ok(&env, &args);
    }
    // Started before any display: no XAUTHORITY, no ~/.Xauthority.
    assert!(!env.home.join(".Xauthority").exists());
    for (name, _) in boxes {
        ok(&env, &["run", name, "--", "true"]);
    }

    let mut daemons = Daemons(Vec::new());
    let xauth_dir = env.dir.join("xauth");
    env.mkdir_owned(&xauth_dir, 0o700);
    let add = |file: &Path, display: &str, cookie: &str| {
        on_host(
            &env,
            &[],
            &format!(
                "xauth -q -f {} add {display} MIT-MAGIC-COOKIE-1 {cookie}",
                file.display()
            ),
        );
    };
    for login in 0..2 {
        let cookie = cookie();
        let server_auth = xauth_dir.join(format!("server{login}"));
        add(&server_auth, ":0", &cookie);
        let display = start_x(&env, &mut daemons, "Xvfb", &server_auth);
        // The session's file, named anew at each login, as mutter does.
        let session = xauth_dir.join(format!(".mutter-Xwaylandauth.{}", &cookie[..6]));
        add(&session, &display, &cookie);
        let session = session.display().to_string();
        let vars = [
            ("DISPLAY", display.as_str()),
            ("XAUTHORITY", session.as_str()),
        ];
        on_host(&env, &vars, "xdpyinfo > /dev/null");
        for (name, _) in boxes {
            let out = box_with(&env, &vars, &["run", name, "--", "xterm", "-e", "true"]);
            assert!(
                out.status.success() && !out.stderr.contains("Authorization required"),
                "box {name}, login {login}: {out}"
            );
        }
        // In the boxes that need a copy: the user's own file, readable by nobody else.
        for name in ["named", "homed"] {
            let script = r#"stat -c '%a %U' "$XAUTHORITY"; echo "$XAUTHORITY""#;
            let out = box_with(&env, &vars, &["run", name, "--", "sh", "-c", script]);
            let out = out.success();
            assert!(
                out.stdout
                    .starts_with(&format!("600 {}\n/run/box/", env.user.name())),
                "box {name}, login {login}: {out}"
            );
        }
        daemons.stop("Xvfb");
        std::fs::remove_file(&session).unwrap();
    }
}
