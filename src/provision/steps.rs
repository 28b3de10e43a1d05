//! Running one provisioning step: a shell script as root in a running box, its whole
//! output appended to the box's log, its progress on stderr.
//!
//! A step runs as `/bin/sh -c SCRIPT` as root in the box, in the home, in a child that
//! joins the box the way `box run --user root` does ([`crate::runtime::join::spawn`]: a
//! fork of this process, which runs one thread again once a pull's threads have ended),
//! with stdout and stderr on one pipe that this process reads line by line: every line goes to the log, the last few are kept for the error, and on a
//! terminal the latest one is drawn on a status line under the step's title (redrawn
//! when a line arrives: no ticker thread). Without a terminal only the step titles are
//! printed, one plain line each.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::runtime::join::{self, Command, Join};
use crate::runtime::state::State;

/// How many of a failed step's last output lines the error shows.
pub const TAIL_LINES: usize = 12;

/// What a finished step left behind.
pub struct Outcome {
    /// The exit status, `None` when a signal ended it.
    pub code: Option<i32>,
    /// Its last lines of output.
    pub tail: VecDeque<String>,
    /// The lines (a few) that matched one of the package manager's offline patterns.
    pub offline: Vec<String>,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// The stderr display of a provisioning run.
pub struct Display {
    terminal: bool,
    /// Whether a status line is drawn (to be cleared before anything else is written).
    drawn: bool,
}

impl Display {
    pub fn new() -> Display {
        Display {
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Announce a step.
    pub fn step(&mut self, text: &str) {
        self.clear();
        crate::ui::report::notice(text);
    }

    /// Show the latest output line (on a terminal only).
    fn line(&mut self, text: &str) {
        if !self.terminal {
            return;
        }
        let width = terminal_width().saturating_sub(4).max(20);
        let shown: String = text
            .chars()
            .filter(|c| !c.is_control())
            .take(width)
            .collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K  {shown}");
        let _ = err.flush();
        self.drawn = true;
    }

    /// Remove the status line.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Default for Display {
    fn default() -> Self {
        Display::new()
    }
}

fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .map(|w| usize::from(w.ws_col))
        .ok()
        .filter(|&w| w > 0)
        .unwrap_or(80)
}

/// Open the box's log for appending, with a header line for this run.
pub fn open_log(path: &Path, what: &str) -> Result<File> {
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log {}", path.display()))?;
    writeln!(
        log,
        "=== {what}, {} ===",
        crate::store::format_time(crate::store::now())
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(log)
}

/// Run `script` as root in the running box `name` (held by `state`); output to `log` and
/// `display`. `env`: extra variables for the join (the package manager's `LC_ALL=C`).
pub fn run(
    name: &str,
    state: &State,
    script: &str,
    env: &[(String, String)],
    log: &mut File,
    display: &mut Display,
    offline_patterns: &[String],
) -> Result<Outcome> {
    let _ = writeln!(log, "$ {script}");
    let (reader, writer) = std::io::pipe().context("creating a pipe")?;
    let argv = [OsString::from("/bin/sh"), "-c".into(), script.into()];
    let join = Join {
        no_workdir: true,
        user: Some("root"),
        env,
        ..Join::new(Command::Exec(&argv))
    };
    let stdio = join::Stdio {
        null_stdin: true,
        stdout: Some(writer.try_clone().context("duplicating a pipe")?.into()),
        stderr: Some(writer.into()),
    };
    let child = join::spawn(name, state, &join, stdio)
        .with_context(|| format!("starting a command in box `{name}`"))?;
    // `spawn` consumed this process's write ends: the reader sees end-of-file when the
    // step (and whatever it left running with the pipe) ends.
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut offline = Vec::new();
    let mut reader = BufReader::new(reader);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).context("reading the output of a provisioning step"),
        }
        let _ = log.write_all(&raw);
        // apt draws progress with carriage returns: the last part is the current state.
        let text = String::from_utf8_lossy(&raw);
        let line = text
            .trim_end_matches(['\n', '\r'])
            .rsplit('\r')
            .next()
            .unwrap_or("")
            .to_owned();
        if line.trim().is_empty() {
            continue;
        }
        if offline.len() < 3 && offline_patterns.iter().any(|p| line.contains(p.as_str())) {
            offline.push(line.clone());
        }
        display.line(&line);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = join::wait(child).context("waiting for a provisioning step")?;
    display.clear();
    let _ = writeln!(log, "[exit status: {status}]");
    let _ = log.flush();
    Ok(Outcome {
        code: status.code(),
        tail,
        offline,
    })
}
