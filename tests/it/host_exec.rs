//! `box host-exec` end to end, as the unprivileged `boxtest` in a Debian box (box itself
//! runs in the box, at /usr/local/bin/box):
//! - the command runs on the host (the host's namespaces and os-release), with the
//!   caller's stdin, exit status, signals, working directory (home, /tmp; a box-only
//!   directory is refused) and environment without the box's own variables;
//! - on a pseudo-terminal: the host command has the caller's terminal, and Ctrl-C reaches
//!   it;
//! - symlink mode: a command linked to box runs on the host; root in the box is refused;
//! - from the host, `box host-exec` says it is for inside a box;
//! - another user (`boxnosub`) cannot use the box's socket: the filesystem stops them,
//!   and when the socket is made reachable, the host end itself refuses them, saying why;
//! - a socket another user put in the box's socket's place gets nothing from the client;
//! - the host end ends with the box.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::boxes::{Boxes, box_from, ok, run_on_terminal_sized, sh};
use crate::common::{Fixture, TestEnv, User};

/// The host's `readlink /proc/self/ns/KIND` (this test process runs in them).
fn host_namespace(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn host_commands_run_on_the_host_with_the_callers_files_status_and_directory() {
    let env = TestEnv::new("host-exec", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "hx");

    // On the host: its namespaces, its os-release; the box has others.
    let inside = sh(&env, "hx", "readlink /proc/self/ns/mnt");
    inside.success();
    assert_ne!(inside.stdout.trim(), host_namespace("mnt"));
    let out = sh(
        &env,
        "hx",
        "box host-exec readlink /proc/self/ns/mnt /proc/self/ns/user",
    );
    out.success();
    assert_eq!(
        out.stdout,
        format!("{}\n{}\n", host_namespace("mnt"), host_namespace("user"))
    );
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap();
    let out = sh(&env, "hx", "box host-exec cat /etc/os-release");
    out.success();
    assert_eq!(out.stdout, os_release);

    // No command: the user's login shell on the host (here reading its commands from
    // the pipe that is its stdin).
    let out = sh(
        &env,
        "hx",
        r#"printf 'echo "zero=$0"; readlink /proc/self/ns/mnt; exit 4\n' | box host-exec"#,
    );
    out.status(4);
    let shell = nix::unistd::User::from_name("boxtest")
        .unwrap()
        .unwrap()
        .shell;
    let base = shell.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        out.stdout,
        format!("zero=-{base}\n{}\n", host_namespace("mnt")),
        "{out}"
    );

    // Exit status, and a command killed by a signal: as a shell reports it, and box ends
    // by the same signal.
    sh(&env, "hx", "box host-exec sh -c 'exit 7'").status(7);
    let out = sh(
        &env,
        "hx",
        r#"box host-exec sh -c 'kill -KILL $$'; echo "status=$?""#,
    );
    out.success().stdout_has("status=137");
    let out = env.run(&[
        "run",
        "hx",
        "--",
        "box",
        "host-exec",
        "sh",
        "-c",
        "kill -TERM $$",
    ]);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{out}");

    // stdin, stdout and stderr are the caller's own: a pipe in, a file out, stderr apart.
    let out = sh(
        &env,
        "hx",
        "printf 'piped words' | box host-exec tr a-z A-Z > /tmp/hx-out-$$ && cat /tmp/hx-out-$$ && rm /tmp/hx-out-$$; box host-exec sh -c 'echo to-stderr >&2'",
    );
    out.success();
    assert_eq!(out.stdout, "PIPED WORDS");
    assert_eq!(out.stderr, "to-stderr\n");

    // The working directory: the same in home and /tmp; a box-only one is refused.
    let home = env.home.display();
    let out = sh(
        &env,
        "hx",
        "mkdir -p ~/hx-sub && cd ~/hx-sub && box host-exec pwd && d=$(mktemp -d) && cd $d && box host-exec sh -c 'pwd; echo $PWD' && echo $d",
    );
    out.success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("{home}/hx-sub"), "{out}");
    assert_eq!(lines[1], lines[3], "{out}");
    assert_eq!(lines[2], lines[3], "{out}");
    assert!(Path::new(lines[3]).is_dir(), "{out}: not on the host");
    sh(&env, "hx", "cd /usr/share && box host-exec pwd")
        .box_error(&["/usr/share", "box `hx`'s own"])
        .stderr_has("your home, /tmp");
    // The host's files seen through /run/host are the host's own directories.
    let out = sh(&env, "hx", "cd /run/host/etc && box host-exec pwd");
    out.success();
    assert_eq!(out.stdout, "/etc\n");

    // The environment: the caller's, without the box's own.
    let out = sh(
        &env,
        "hx",
        r#"FROM_CALLER=yes box host-exec sh -c 'echo "${CONTAINER_ID-unset} ${container-unset} $FROM_CALLER $HOME"'"#,
    );
    out.success();
    assert_eq!(out.stdout, format!("unset unset yes {home}\n"));

    // A command the host lacks.
    sh(&env, "hx", "box host-exec no-such-command-hx")
        .status(127)
        .stderr_has("command `no-such-command-hx` not found on the host");

    // Symlink mode: a command linked to box runs on the host.
    let out = sh(
        &env,
        "hx",
        "mkdir -p /tmp/hx-links-$$ && ln -sf /usr/local/bin/box /tmp/hx-links-$$/readlink && /tmp/hx-links-$$/readlink /proc/self/ns/mnt; s=$?; rm -r /tmp/hx-links-$$; exit $s",
    );
    out.success();
    assert_eq!(out.stdout.trim(), host_namespace("mnt"));

    // Root in the box (through sudo) is another host uid: refused, saying why.
    sh(&env, "hx", "sudo box host-exec id")
        .box_error(&["box host-exec refused", "box `hx`"])
        .stderr_has("not as root in the box through sudo");

    // From the host: it says what it is for.
    env.run(&["host-exec", "true"])
        .box_error(&["from inside a box", "not a box"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn host_commands_get_the_callers_terminal_and_its_ctrl_c() {
    let env = TestEnv::new("host-exec-tty", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "hxt");
    ok(&env, &["run", "hxt", "--", "true"]);

    // `tty` on the host names the terminal's pty; its size is the caller's.
    let (status, shown) = run_on_terminal_sized(
        &env,
        &[
            "run",
            "hxt",
            "--",
            "box",
            "host-exec",
            "sh",
            "-c",
            "tty; stty size; readlink /proc/self/ns/mnt",
        ],
        &[],
        Duration::from_millis(10),
        Some((91, 27)),
    );
    assert!(status.success(), "{shown}");
    assert!(shown.contains("/dev/pts/"), "{shown}");
    assert!(shown.contains("27 91"), "{shown}");
    assert!(shown.contains(&host_namespace("mnt")), "{shown}");

    // Ctrl-C on the terminal reaches the host command (which says so and exits 3). (A
    // size makes `script`'s shell exec box: a shell waiting for it would die of the
    // Ctrl-C itself.)
    let script = r#"trap 'echo got-sigint; exit 3' INT; echo ready; while :; do sleep 0.1; done"#;
    let (status, shown) = run_on_terminal_sized(
        &env,
        &["run", "hxt", "--", "box", "host-exec", "sh", "-c", script],
        &["\x03"],
        Duration::from_secs(3),
        Some((80, 24)),
    );
    assert!(shown.contains("got-sigint"), "{shown}");
    assert_eq!(status.code(), Some(3), "{shown}");

    // Ctrl-Z stops the host command with its caller, as a job of the shell in the box;
    // `fg` goes on with both, and the command then ends as asked.
    let script = r#"trap "echo continued" CONT; n=0; while [ $n -lt 20 ]; do n=$((n+1)); sleep 0.1; done; echo finished"#;
    let typed = format!("box host-exec sh -c '{script}'\n");
    let (status, shown) = run_on_terminal_sized(
        &env,
        &["run", "hxt", "--", "bash", "--norc", "-i"],
        &[
            &typed,
            "\x1a",
            "jobs\n",
            "fg\n",
            "",
            "",
            "echo \"after=$?\"\n",
            "exit\n",
        ],
        Duration::from_millis(800),
        Some((100, 30)),
    );
    assert!(status.success(), "{shown}");
    assert!(
        shown.contains("Stopped"),
        "Ctrl-Z did not stop the job:\n{shown}"
    );
    assert!(
        shown.contains("continued"),
        "the host command was not continued:\n{shown}"
    );
    assert!(shown.contains("finished"), "{shown}");
    assert!(shown.contains("after=0"), "{shown}");
}

/// The path of box `name`'s host-exec socket in `env`.
fn socket_of(env: &TestEnv, name: &str) -> PathBuf {
    env.runtime_dir
        .join("box")
        .join(name)
        .join("host-exec")
        .join("socket")
}

/// Connect to `socket` as `boxnosub` and return what the host end answered (or the
/// connection error), as Python's socket module reports it.
fn connect_as_nosub(socket: &Path) -> String {
    let (uid, gid) = User::BoxNoSub.ids();
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect failed:", e)
    sys.exit(0)
print(s.makefile().readline())
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(socket)
        .env_clear()
        .current_dir("/")
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The pids of processes whose command line is `box __host-exec-server NAME`.
fn host_ends(name: &str) -> Vec<u32> {
    let wanted = format!("__host-exec-server\0{name}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&wanted))
        })
        .collect()
}

/// The watches (`inotify wd:...` lines of fdinfo) of the inotify instances process `pid`
/// has open.
fn inotify_watches(pid: u32) -> Vec<String> {
    let mut watches = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let entry = entry.unwrap();
        if std::fs::read_link(entry.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify") {
            let info = std::fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                entry.file_name().to_string_lossy()
            ))
            .unwrap();
            watches.extend(
                info.lines()
                    .filter(|l| l.starts_with("inotify wd:"))
                    .map(String::from),
            );
        }
    }
    watches
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn only_the_boxs_user_is_served_and_the_host_end_ends_with_the_box() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new("host-exec-peer", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "hx-peer");
    ok(&env, &["run", "hx-peer", "--", "true"]);
    let socket = socket_of(&env, "hx-peer");
    assert!(socket.exists(), "{} missing", socket.display());
    assert_eq!(
        host_ends("hx-peer").len(),
        1,
        "one host end per running box"
    );
    // The host end keeps the holder's inotify instance open (it never adds a watch of its
    // own, so the holder's watches there prove it is the same instance): the holder's
    // exit is then not the instance's last close, which would make `box stop` wait for
    // the kernel's fsnotify grace period.
    let state = std::fs::read_to_string(env.runtime_dir.join("box/hx-peer/state.json")).unwrap();
    let holder: serde_json::Value = serde_json::from_str(&state).unwrap();
    let holder_watches = inotify_watches(holder["pid"].as_u64().unwrap() as u32);
    assert!(
        !holder_watches.is_empty(),
        "the holder watches no host file"
    );
    assert_eq!(
        inotify_watches(host_ends("hx-peer")[0]),
        holder_watches,
        "the host end does not keep the holder's inotify instance"
    );

    // Another user cannot even reach the socket: the runtime directory is private.
    let answer = connect_as_nosub(&socket);
    assert!(answer.contains("Permission denied"), "{answer}");

    // Made reachable (every directory on the way searchable, the socket writable), the
    // host end itself refuses the other user, and says why.
    let mut dir = socket.parent().unwrap();
    while dir.starts_with(&env.runtime_dir) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        dir = dir.parent().unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (nosub_uid, _) = User::BoxNoSub.ids();
    let answer = connect_as_nosub(&socket);
    assert!(answer.contains("\"failed\""), "{answer}");
    assert!(answer.contains("box host-exec refused"), "{answer}");
    assert!(answer.contains(&format!("uid {nosub_uid}")), "{answer}");

    // The box's own user is still served.
    sh(&env, "hx-peer", "box host-exec true").success();

    // The host end ends with the box, and takes its socket along.
    ok(&env, &["stop", "hx-peer"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !host_ends("hx-peer").is_empty() || socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the host end outlived its box: pids {:?}, socket there: {}",
            host_ends("hx-peer"),
            socket.exists()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // And comes back with it.
    sh(&env, "hx-peer", "box host-exec true").success();
}

/// A stranger's socket: `boxnosub` listens at a path of its own, takes one connection
/// and prints how many bytes and descriptors it received before the other end closed (or
/// 10 s passed). Returns the process and the socket's path, once it listens.
fn stranger_socket(env: &TestEnv) -> (std::process::Child, PathBuf) {
    use std::io::BufRead;
    let (uid, gid) = User::BoxNoSub.ids();
    let dir = env.dir.join("stranger");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    let socket = dir.join("socket");
    let script = r#"
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.listen(1)
print("listening", flush=True)
s.settimeout(60)
c, _ = s.accept()
c.settimeout(10)
data, fds = 0, 0
try:
    while True:
        msg, anc, _, _ = c.recvmsg(65536, socket.CMSG_SPACE(64))
        fds += sum(len(d) // 4 for (_, _, d) in anc)
        if not msg:
            break
        data += len(msg)
except socket.timeout:
    pass
print(f"received {data} bytes and {fds} descriptors", flush=True)
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&socket)
        .env_clear()
        .current_dir("/")
        .uid(uid)
        .gid(gid)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "listening\n");
    (child, socket)
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_socket_put_in_place_of_the_boxs_is_not_used() {
    let env = TestEnv::new("host-exec-swap", User::BoxTest);
    let _boxes = Boxes(&env);
    box_from(&env, Fixture::Debian, "hx-swap");
    sh(&env, "hx-swap", "box host-exec true").success();
    // Someone who could write to the runtime directory put their own socket where the
    // box's was (its file is theirs, and so is its end: the old check of "the socket's end
    // is its owner's" let it through). The client must send them nothing.
    let (stranger, theirs) = stranger_socket(&env);
    std::fs::rename(&theirs, socket_of(&env, "hx-swap")).unwrap();
    let out = sh(&env, "hx-swap", "SECRET=xyz box host-exec echo hi");
    let got = stranger.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "received 0 bytes and 0 descriptors\n",
        "{out}"
    );
    out.box_error(&["box host-exec refused", "served by uid", "box `hx-swap`"])
        .stderr_has("someone else replaced its socket");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_runtime_directory_longer_than_a_socket_address_still_gets_a_host_end() {
    // A Unix socket's address holds at most 107 bytes; this runtime directory alone is
    // longer, so the socket's path is too (a long XDG_RUNTIME_DIR, a long box name).
    let mut env = TestEnv::new("host-exec-long", User::BoxTest);
    let long = env.dir.join(format!("run-{}", "long".repeat(30)));
    env.mkdir_owned(&long, 0o700);
    env.set_env("XDG_RUNTIME_DIR", &long);
    let _boxes = Boxes(&env);
    let name = "hx-with-a-name-of-some-length";
    box_from(&env, Fixture::Debian, name);
    let socket = long.join("box").join(name).join("host-exec/socket");
    let out = sh(&env, name, "box host-exec echo from-the-host");
    out.success();
    assert_eq!(out.stdout, "from-the-host\n", "{out}");
    assert!(
        socket.as_os_str().len() > 108 && socket.exists(),
        "{}",
        socket.display()
    );
}
