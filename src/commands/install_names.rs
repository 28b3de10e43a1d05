//! `box install-distrobox-names`: link `distrobox`, `distrobox-VERB` (and `podman`, where
//! the host has none) to box in a directory on PATH, or with `--remove` take them away.
//! The work is in [`crate::ops::front_door`].

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::cli::InstallNamesArgs;
use crate::context::Context;
use crate::ops::front_door;

pub fn exec(ctx: &Context, args: InstallNamesArgs) -> Result<ExitCode> {
    let path = crate::sys::env::search_path();
    let dir = front_door::names_dir(args.prefix.as_deref(), &ctx.dirs.home, &path)?;
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("finding the box executable (/proc/self/exe)")?;
    if args.remove {
        let removed = front_door::remove_names(&dir, &exe)?;
        if removed.is_empty() {
            println!("No links to box in {}; nothing removed.", dir.display());
        } else {
            println!("Removed {} from {}.", removed.join(", "), dir.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let installed = front_door::install_names(&dir, &exe, &path)?;
    println!(
        "Linked {} to {} in {}.",
        installed.linked.join(", "),
        exe.display(),
        dir.display()
    );
    if let Some(podman) = &installed.podman_elsewhere {
        println!(
            "Left podman out: {} is a real podman, and `podman ps` shows its containers, not boxes (`distrobox list` shows the boxes).",
            podman.display()
        );
    }
    if !installed.on_path {
        println!(
            "{} is not on your PATH: add it, or tools will not find these names.",
            dir.display()
        );
    }
    if dir.starts_with(&ctx.dirs.home) {
        println!(
            "Note: Flatpak'd tools (BoxBuddy, DistroShelf) run `flatpak-spawn --host distrobox ...` with your desktop session's PATH, which often lacks {}; as root, `box install-distrobox-names --prefix /usr/local/bin` reaches them.",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
