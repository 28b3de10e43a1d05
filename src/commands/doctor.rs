//! `box doctor`: print the host checks of [`crate::ops::doctor`], one line each, with the
//! fix after what was found; exit 1 when one of them blocks box.
//!
//! A line is `STATUS  CHECK  DETAIL[; fix: FIX]`, STATUS one of `ok`, `info`, `warn`,
//! `FAIL` (coloured on a terminal); `--json` prints the checks as an array of
//! `{check, status, detail, fix}` for tools.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::cli::DoctorArgs;
use crate::context::Context;
use crate::ops::doctor::{Status, blocks};

pub fn exec(ctx: &Context, args: DoctorArgs) -> Result<ExitCode> {
    crate::sys::default_sigpipe();
    let mut out = std::io::stdout().lock();
    if args.apparmor_profile {
        let exe = std::env::current_exe().context("finding the box executable")?;
        out.write_all(crate::ops::doctor::apparmor_profile(&exe).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let checks = crate::ops::doctor::run(ctx);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&checks)?)?;
    } else {
        let color = ctx.color_stdout();
        let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for check in &checks {
            let (word, code) = match check.status {
                Status::Ok => ("ok", "32"),
                Status::Info => ("info", "36"),
                Status::Warn => ("warn", "33"),
                Status::Fail => ("FAIL", "1;31"),
            };
            let word = if color {
                format!("\x1b[{code}m{word:<4}\x1b[0m")
            } else {
                format!("{word:<4}")
            };
            let fix = check
                .fix
                .as_ref()
                .map(|fix| format!("; fix: {}", one_line(fix)))
                .unwrap_or_default();
            writeln!(
                out,
                "{word}  {:<width$}  {}{fix}",
                check.check,
                one_line(&check.detail)
            )?;
        }
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
        writeln!(
            out,
            "{}",
            match (failed, warned) {
                (0, 0) => "box has all it needs on this host".to_owned(),
                (0, n) => format!("box works on this host; {n} warnings say what it does without"),
                (n, _) =>
                    format!("{n} problems keep box from working on this host: see the FAIL lines"),
            }
        )?;
    }
    out.flush()?;
    Ok(if blocks(&checks) {
        ExitCode::from(crate::error::EXIT_BLOCKED)
    } else {
        ExitCode::SUCCESS
    })
}

/// A text on one line: a parser's message spans several (TOML points at the column).
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
