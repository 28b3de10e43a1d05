//! Running `box` as an unprivileged test user in a clean environment, and looking at what
//! it left on disk.
//!
//! A [`TestEnv`] is one test's world: `/var/tmp/box-tests/<test>-<pid>-<n>/` (root, 0755)
//! holding the user's fresh `home/` (0700) and `run/` (the XDG_RUNTIME_DIR, 0700), both
//! owned by the user. box runs with uid/gid set by `Command` (std then drops the
//! supplementary groups), a cleared environment, no TTY (stdin is /dev/null, output is
//! captured), and the home as its working directory. The directory is removed when the
//! test passes and kept (its path printed) when it fails.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{TEST_ROOT, box_bin, require_root};

/// Who runs box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    /// uid 1001-ish, with subordinate ids 100000:65536.
    BoxTest,
    /// No subordinate ids: the single-id fallback.
    BoxNoSub,
    Root,
}

impl User {
    pub fn name(self) -> &'static str {
        match self {
            User::BoxTest => "boxtest",
            User::BoxNoSub => "boxnosub",
            User::Root => "root",
        }
    }

    /// (uid, gid) from the passwd database.
    pub fn ids(self) -> (u32, u32) {
        let user = nix::unistd::User::from_name(self.name())
            .expect("reading the passwd database")
            .unwrap_or_else(|| {
                panic!(
                    "test user {} does not exist: run the tests with sudo tests/run",
                    self.name()
                )
            });
        (user.uid.as_raw(), user.gid.as_raw())
    }

    /// Whether box runs with subordinate ids for this user (uid 0 in a layer -> 100000).
    pub fn has_subids(self) -> bool {
        self == User::BoxTest
    }
}

/// The outcome of one box invocation.
pub struct Outcome {
    pub args: Vec<String>,
    pub user: User,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "$ box {}   (as {})",
            self.args.join(" "),
            self.user.name()
        )?;
        writeln!(f, "status: {:?}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        writeln!(f, "--- stderr ---\n{}", self.stderr)
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Assert exit status 0.
    #[track_caller]
    pub fn success(&self) -> &Outcome {
        assert!(self.status.success(), "expected success:\n{self}");
        self
    }

    /// Assert a given exit status.
    #[track_caller]
    pub fn status(&self, code: i32) -> &Outcome {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit status {code}:\n{self}"
        );
        self
    }

    /// Assert box's failure format: status 125, `box: error: ...` then a `hint: ...` line
    /// on stderr, and every `needle` somewhere in stderr.
    #[track_caller]
    pub fn box_error(&self, needles: &[&str]) -> &Outcome {
        self.status(125);
        assert!(
            self.stderr.lines().any(|l| l.starts_with("box: error: ")),
            "expected a `box: error: ...` line:\n{self}"
        );
        assert!(
            self.stderr.lines().any(|l| l.starts_with("hint: ")),
            "expected a `hint: ...` line:\n{self}"
        );
        for needle in needles {
            self.stderr_has(needle);
        }
        self
    }

    /// Assert stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Outcome {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "expected stderr to mention {needle:?}:\n{self}"
        );
        self
    }

    /// Assert stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Outcome {
        assert!(
            self.stdout.contains(needle),
            "expected stdout to contain {needle:?}:\n{self}"
        );
        self
    }

    /// Assert nothing animated reached the (non-terminal) output: no carriage returns, no
    /// escape sequences.
    #[track_caller]
    pub fn no_animation(&self) -> &Outcome {
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            assert!(
                !text.contains('\r') && !text.contains('\x1b'),
                "expected no \\r or escape sequences on {name} without a terminal:\n{self}"
            );
        }
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

/// One file in a [`StoreState`]: what must not change when an operation fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    /// `d`, `f`, `l`, `c`, `b`, `p`, `s`
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub ino: u64,
    /// Symlink target, or a digest of a regular file's content.
    pub content: String,
}

/// A snapshot of a directory tree (relative path -> state), lock files excluded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreState(pub BTreeMap<String, FileState>);

impl StoreState {
    /// Snapshot `root` (empty if it does not exist). Directory mtimes and lock files are
    /// left out: taking a lock creates or touches files without changing the store.
    pub fn capture(root: &Path) -> StoreState {
        let mut state = StoreState::default();
        if root.symlink_metadata().is_ok() {
            walk(root, root, &mut state.0);
        }
        state
    }

    /// Snapshot `root` without the top-level entries named in `skip` (and what is below).
    pub fn capture_except(root: &Path, skip: &[&str]) -> StoreState {
        let mut state = StoreState::capture(root);
        state.0.retain(|path, _| {
            !skip
                .iter()
                .any(|s| path == s || path.starts_with(&format!("{s}/")))
        });
        state
    }

    /// Relative paths present in both but different, or present in only one.
    pub fn diff(&self, other: &StoreState) -> Vec<String> {
        let mut out = Vec::new();
        for (path, before) in &self.0 {
            match other.0.get(path) {
                None => out.push(format!("- {path}")),
                Some(after) if after != before => {
                    out.push(format!("~ {path}: {before:?} -> {after:?}"))
                }
                _ => {}
            }
        }
        for path in other.0.keys() {
            if !self.0.contains_key(path) {
                out.push(format!("+ {path}"));
            }
        }
        out
    }

    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }
}

fn is_lock(rel: &str) -> bool {
    // Relative to the store or to a test's whole directory.
    rel == "lock"
        || rel.ends_with("/lock")
        || rel.split('/').any(|part| part == "locks")
        || rel.ends_with(".lock")
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, FileState>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if is_lock(&rel) {
            continue;
        }
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        let ft = meta.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else if ft.is_socket() {
            's'
        } else {
            'f'
        };
        let content = match kind {
            'l' => std::fs::read_link(&path)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default(),
            'f' => std::fs::read(&path)
                .map(|b| super::sha256(&b))
                .unwrap_or_default(),
            _ => String::new(),
        };
        out.insert(
            rel,
            FileState {
                kind,
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                size: if kind == 'd' { 0 } else { meta.size() },
                // A directory's mtime changes when a temp entry is created and removed
                // in it, which is not a change of the store.
                mtime: if kind == 'd' { 0 } else { meta.mtime() },
                ino: if kind == 'd' { 0 } else { meta.ino() },
                content,
            },
        );
        if kind == 'd' {
            walk(root, &path, out);
        }
    }
}

/// The longest any single box invocation may take in a test (the Debian pull included).
pub const TIMEOUT: Duration = Duration::from_secs(300);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's private world for running box as `user`.
pub struct TestEnv {
    pub name: String,
    pub user: User,
    pub uid: u32,
    pub gid: u32,
    /// The per-test directory (root-owned).
    pub dir: PathBuf,
    pub home: PathBuf,
    pub runtime_dir: PathBuf,
    /// Extra environment variables for every box invocation.
    pub env: Vec<(String, OsString)>,
    /// The limit on open descriptors box runs with (see [`TestEnv::limit_descriptors`]).
    nofile: Option<u64>,
    mounts: Vec<PathBuf>,
}

impl TestEnv {
    /// A fresh environment for `user`; `name` names the directory (use the test's name).
    pub fn new(name: &str, user: User) -> TestEnv {
        require_root();
        super::sys::default_hangups();
        let (uid, gid) = user.ids();
        let root = Path::new(TEST_ROOT);
        std::fs::create_dir_all(root).unwrap();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = root.join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = TestEnv {
            name: name.to_owned(),
            user,
            uid,
            gid,
            home: dir.join("home"),
            runtime_dir: dir.join("run"),
            dir,
            env: Vec::new(),
            nofile: None,
            mounts: Vec::new(),
        };
        env.mkdir_owned(&env.home, 0o700);
        env.mkdir_owned(&env.runtime_dir, 0o700);
        // Provisioning installs over the network what an image lacks; the fixtures of
        // the other areas lack much of it on purpose (tests/it/provision.rs turns it on).
        env.set_provisioning(false);
        env
    }

    /// Turn provisioning at `box create` on or off in the user's config.toml.
    pub fn set_provisioning(&self, on: bool) {
        self.write_user_file(
            &self.home.join(".config/box/config.toml"),
            format!("provision = {on}\n"),
            0o644,
        );
    }

    /// Create `path` (and missing parents, all owned by the user) with `mode`.
    pub fn mkdir_owned(&self, path: &Path, mode: u32) {
        // A shared directory given away would break every other test (and the machine).
        assert!(
            !["/", "/tmp", "/var/tmp", "/run", "/home"]
                .iter()
                .any(|shared| path == Path::new(shared)),
            "mkdir_owned({}) would give a shared directory to the test user",
            path.display()
        );
        let mut missing = Vec::new();
        let mut p = path.to_owned();
        while p.symlink_metadata().is_err() {
            missing.push(p.clone());
            p = p.parent().unwrap().to_owned();
        }
        for dir in missing.iter().rev() {
            std::fs::create_dir(dir).unwrap();
            std::os::unix::fs::chown(dir, Some(self.uid), Some(self.gid)).unwrap();
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Write a file owned by the user (parents created owned by the user).
    pub fn write_user_file(&self, path: &Path, content: impl AsRef<[u8]>, mode: u32) {
        self.mkdir_owned(path.parent().unwrap(), 0o700);
        std::fs::write(path, content).unwrap();
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Set an environment variable for every following invocation.
    pub fn set_env(&mut self, key: &str, value: impl Into<OsString>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
    }

    /// Run box with at most `n` open descriptors (util-linux `prlimit`), as a desktop
    /// session's programs do (systemd's default soft limit is 1024), rather than with the
    /// test process's own limit.
    pub fn limit_descriptors(&mut self, n: u64) {
        self.nofile = Some(n);
    }

    /// `$XDG_DATA_HOME` (or the default `~/.local/share`).
    pub fn data_home(&self) -> PathBuf {
        self.env
            .iter()
            .find(|(k, _)| k == "XDG_DATA_HOME")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| self.home.join(".local/share"))
    }

    /// The store: `$XDG_DATA_HOME/box`.
    pub fn store(&self) -> PathBuf {
        self.data_home().join("box")
    }

    /// `layers/<hex>` for a `sha256:<hex>` diff_id.
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.store().join("layers").join(super::hex_of(diff_id))
    }

    /// The unpacked layer directories present.
    pub fn layer_dirs(&self) -> Vec<String> {
        sorted_names(&self.store().join("layers"))
    }

    /// The image record files present under `images/`.
    pub fn image_records(&self) -> Vec<String> {
        sorted_names(&self.store().join("images"))
    }

    /// A snapshot of the store, to compare after a failed operation.
    pub fn store_state(&self) -> StoreState {
        StoreState::capture(&self.store())
    }

    /// Assert the store is exactly as it was (lock files aside): nothing added, removed
    /// or modified, no debris left in `tmp/`.
    #[track_caller]
    pub fn assert_store_unchanged(&self, before: &StoreState, context: &Outcome) {
        let after = self.store_state();
        let diff = before.diff(&after);
        assert!(
            diff.is_empty(),
            "the store changed after a failed operation:\n{}\n{context}",
            diff.join("\n")
        );
    }

    /// The command line that runs box as the user, ready to spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(Path::new(box_bin()), args)
    }

    /// [`TestEnv::command`] with another box executable (a copy at a path of the test's).
    pub fn command_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = match self.nofile {
            Some(n) => {
                let mut command = Command::new("prlimit");
                command.arg(format!("--nofile={n}")).arg("--").arg(program);
                command
            }
            None => Command::new(program),
        };
        command
            .args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("USER", self.user.name())
            .env("LOGNAME", self.user.name())
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LANG", "C.UTF-8")
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.user != User::Root {
            command.uid(self.uid).gid(self.gid);
        }
        command
    }

    /// Run box to completion.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let child = self.spawn(args);
        self.wait(args, child)
    }

    /// Start box without waiting (for kill and concurrency tests).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().unwrap_or_else(|e| {
            panic!(
                "running {} as {}: {e} (is the binary readable by the test users? run sudo tests/run)",
                box_bin(),
                self.user.name()
            )
        })
    }

    /// Wait for a spawned box and collect its output. A box that runs longer than
    /// [`TIMEOUT`] is killed and the test fails with what it printed so far.
    pub fn wait(&self, args: &[&str], mut child: Child) -> Outcome {
        fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut out);
                }
                out
            })
        }
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let deadline = Instant::now() + TIMEOUT;
        let (status, timed_out) = loop {
            if let Some(status) = child.try_wait().expect("waiting for box") {
                break (status, false);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break (child.wait().expect("waiting for box"), true);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let outcome = Outcome {
            args: args.iter().map(|s| s.to_string()).collect(),
            user: self.user,
            status,
            stdout: String::from_utf8_lossy(&stdout.join().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&stderr.join().unwrap()).into_owned(),
        };
        assert!(
            !timed_out,
            "box did not finish within {TIMEOUT:?}:\n{outcome}"
        );
        outcome
    }

    /// Mount a tmpfs of `size` (e.g. "8m") owned by the user at `path` (unmounted on drop).
    pub fn mount_tmpfs(&mut self, path: &Path, size: &str) {
        self.mkdir_owned(path, 0o700);
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!(
                "size={size},mode=0700,uid={},gid={}",
                self.uid, self.gid
            ))
            .arg("box-test")
            .arg(path)
            .status()
            .expect("running mount");
        assert!(status.success(), "mounting a tmpfs on {}", path.display());
        self.mounts.push(path.to_owned());
    }

    /// Whether a signal ended an outcome (for kill tests).
    pub fn signalled(outcome: &Outcome) -> Option<i32> {
        outcome.status.signal()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // No holder may outlive its test (with the box's overlay mounted on a directory
        // about to be removed), whatever the test did or where it failed.
        if self.store().join("containers").is_dir() {
            let _ = self.command(&["stop", "--all", "--yes"]).output();
        }
        for mount in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(mount).status();
        }
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The names in `dir`, sorted (none when it does not exist).
fn sorted_names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
