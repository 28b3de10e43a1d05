//! box answering as `distrobox-export` and `distrobox-host-exec`, the two commands
//! distrobox puts in every box at `/usr/bin` (box binds itself there, see
//! `runtime::plan`): desktop tools run `distrobox enter NAME -- distrobox-export ...`,
//! and manifests link host commands to `/usr/bin/distrobox-host-exec`.
//!
//! `distrobox-export` exports from the box it runs in, with `box export`'s operation
//! ([`crate::ops::export`]); `--list-apps` and `--list-binaries` print distrobox's lines
//! (`printf "%-20s | %-30s\n"`: the app's name or the binary's path in single quotes,
//! then the host file), which the tools split on `|`.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::distrobox::{self as dcli, Export};
use crate::context::Context;
use crate::error::failure;
use crate::ops::export::{Extra, Kind, Request};

/// Run `distrobox-export ARGS`.
pub fn export(args: Vec<OsString>) -> Result<ExitCode> {
    let prepared = dcli::prepare(None, &args).map_err(super::distrobox::refusal)?;
    let mut argv: Vec<OsString> = vec!["distrobox-export".into()];
    argv.extend(prepared);
    let args: Export = match super::distrobox::parse(
        argv,
        "distrobox-export",
        "`box export --help` shows box's own",
    )? {
        Ok(args) => args,
        Err(code) => return Ok(code),
    };
    if args.version {
        println!("{}", super::distrobox::version_line());
        return Ok(ExitCode::SUCCESS);
    }
    let Some(name) = crate::ops::export::current_box() else {
        return Err(failure(
            "distrobox-export runs inside a box: it exports from the box it runs in",
            "run it in the box (`distrobox enter NAME -- distrobox-export --app APP`), or from the host `box export NAME --app APP`",
        ));
    };
    if !args.enter_flags.is_empty() {
        return Err(super::distrobox::usage_error(
            format!(
                "distrobox-export --enter-flags ({}) has no equivalent in box",
                args.enter_flags.join(" ")
            ),
            "leave it out: box's launchers start the command in the box as `box run` does",
        ));
    }
    let ctx = Context::from_env()?;
    if args.list_apps {
        return list_apps(&ctx, &name);
    }
    if args.list_binaries {
        return list_binaries(&ctx, &name, args.export_path.as_deref());
    }
    let mut extra_args = Vec::new();
    for flags in &args.extra_flags {
        extra_args.extend(shlex::split(flags).ok_or_else(|| {
            failure(
                format!("--extra-flags `{flags}` has an unclosed quote"),
                "quote the flags as a shell would",
            )
        })?);
    }
    let extra = Extra {
        args: &extra_args,
        as_root: args.sudo,
    };
    let request = match (&args.app, &args.bin) {
        (Some(app), None) if args.delete => Request::DeleteApp(app),
        (None, Some(bin)) if args.delete => Request::DeleteBin(bin),
        (Some(app), None) => Request::App {
            app,
            label: args.export_label.as_deref(),
            force: false,
            extra,
        },
        (None, Some(bin)) => Request::Bin {
            path: bin,
            export_path: args.export_path.as_deref(),
            force: false,
            extra,
        },
        _ => {
            return Err(super::distrobox::usage_error(
                "distrobox-export needs one of --app, --bin, --list-apps and --list-binaries",
                "e.g. `distrobox-export --app mpv` or `distrobox-export --bin /usr/bin/rg`",
            ));
        }
    };
    let file = crate::ops::export::export_quietly(&ctx, &name, request.clone(), false)?;
    match request {
        Request::App { app, .. } => {
            println!(
                "Exported application {app} from box {name}: {}",
                file.display()
            );
            println!("It appears in your applications menu in a few seconds.");
        }
        Request::Bin { path, .. } => {
            println!("Exported {path} from box {name}: {}", file.display());
        }
        Request::DeleteApp(app) => {
            println!("Removed application {app} of box {name} from the host.");
        }
        Request::DeleteBin(bin) => println!("Removed {bin} of box {name} from the host."),
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of distrobox-export's listings.
pub fn list_line(what: &str, host_file: &Path) -> String {
    format!("{what:<20} | {:<30}\n", host_file.display())
}

fn list_apps(ctx: &Context, name: &str) -> Result<ExitCode> {
    let mut out = String::new();
    for export in crate::ops::export::list(ctx, name)? {
        let (Kind::App, Some(file)) = (export.kind, export.files.first()) else {
            continue;
        };
        // The application's name as its entry in the box has it (this runs in the box).
        let app_name = std::fs::read_to_string(&export.source)
            .ok()
            .and_then(|text| {
                crate::ops::export::main_group(&text)
                    .get("Name")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| {
                let file_name = Path::new(&export.source).file_name().unwrap_or_default();
                file_name
                    .to_string_lossy()
                    .trim_end_matches(".desktop")
                    .to_owned()
            });
        out.push_str(&list_line(&app_name, &file.path));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn list_binaries(ctx: &Context, name: &str, dir: Option<&Path>) -> Result<ExitCode> {
    let mut out = String::new();
    for export in crate::ops::export::list(ctx, name)? {
        let (Kind::Bin, Some(file)) = (export.kind, export.files.first()) else {
            continue;
        };
        if dir.is_some_and(|dir| file.path.parent() != Some(dir)) {
            continue;
        }
        out.push_str(&list_line(&format!("'{}'", export.source), &file.path));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// Run `distrobox-host-exec [OPTIONS] [CMD ARGS...]`: `box host-exec`, after its own
/// options (`--yes` and `--verbose` change nothing for box, which needs no helper to
/// install).
pub fn host_exec(args: Vec<OsString>) -> Result<ExitCode> {
    let mut rest = args.as_slice();
    while let Some((first, more)) = rest.split_first() {
        match first.to_str() {
            Some("-Y" | "--yes" | "-v" | "--verbose") => rest = more,
            Some("--") => {
                rest = more;
                break;
            }
            Some("-h" | "--help") => {
                println!(
                    "distrobox-host-exec [--yes] [--verbose] [CMD ARGS...]\n\n\
                     Run a command (default: your login shell) on the host, from inside a box.\n\
                     This is box answering as distrobox-host-exec: `box host-exec --help` says more."
                );
                return Ok(ExitCode::SUCCESS);
            }
            Some("-V" | "--version") => {
                println!("{}", super::distrobox::version_line());
                return Ok(ExitCode::SUCCESS);
            }
            _ => break,
        }
    }
    super::host_exec::client(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_lines_are_distrobox_s() {
        assert_eq!(
            list_line("'/usr/bin/vim'", Path::new("/home/u/.local/bin/vim")),
            "'/usr/bin/vim'       | /home/u/.local/bin/vim        \n"
        );
    }
}
