//! `box host-exec [CMD ARGS...]`: from inside a box, run a command on the host (see
//! `runtime::host_exec`); also what a command linked to box runs (`main.rs`).

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::HostExecArgs;

pub fn exec(args: HostExecArgs) -> Result<ExitCode> {
    client(&args.command)
}

/// Run `argv` on the host through the box's host-exec socket (also `distrobox-host-exec`).
pub fn client(argv: &[OsString]) -> Result<ExitCode> {
    crate::host_exec::client::run(argv)
}

/// The command a link named `argv0` to box stands for, in symlink mode: its file name,
/// when that is not box's own (`box`, or `exe` for box's re-executions through
/// `/proc/self/exe`) and this process runs in a box. On the normal path this costs one
/// comparison; only an unusual name reads the box's `/run/.containerenv`.
pub fn linked_command(argv0: &std::ffi::OsStr) -> Option<OsString> {
    let name = std::path::Path::new(argv0).file_name()?;
    if name == "box" || name == "exe" {
        return None;
    }
    crate::host::containerenv_box()?;
    Some(name.to_owned())
}

/// Run `command` (a linked name) with `args` on the host.
pub fn exec_linked(command: OsString, args: impl Iterator<Item = OsString>) -> Result<ExitCode> {
    let argv: Vec<OsString> = std::iter::once(command).chain(args).collect();
    crate::host_exec::client::run(&argv)
}
