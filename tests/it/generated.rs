//! The committed man pages (`man/`) and shell completions (`completions/`) are exactly what
//! the code generates from `box_cli::cli::command()`. With `BOX_UPDATE_GENERATED=1` the
//! test rewrites them instead of failing.

use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;

const REGENERATE: &str = "run `BOX_UPDATE_GENERATED=1 cargo test generated` to regenerate";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn man_page(command: Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .expect("rendering a man page");
    out
}

/// Every generated file: (path relative to the repository, content).
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut root = box_cli::cli::command();
    root.build();
    files.push((PathBuf::from("man/box.1"), man_page(root.clone())));
    // `help` is clap's own subcommand, documented in box.1.
    for sub in root
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
    {
        let name = format!("box-{}", sub.get_name());
        // The page's title and usage line name the full command (`box-pull`, `box pull`).
        // clap wants 'static names here (its `string` feature is off); leaking a few
        // short strings in a test is fine.
        let title: &'static str = Box::leak(name.clone().into_boxed_str());
        let bin: &'static str = Box::leak(format!("box {}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(title).bin_name(bin);
        files.push((PathBuf::from(format!("man/{name}.1")), man_page(sub)));
    }
    for (shell, file) in [
        (Shell::Bash, "completions/box.bash"),
        (Shell::Zsh, "completions/_box"),
        (Shell::Fish, "completions/box.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut box_cli::cli::command(), "box", &mut out);
        files.push((PathBuf::from(file), out));
    }
    files
}

fn listed(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .map(|rd| rd.flatten().map(|e| dir.join(e.file_name())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn generated_man_pages_and_completions_are_current() {
    let files = generated();
    let update = box_cli::sys::env::non_empty("BOX_UPDATE_GENERATED").is_some_and(|v| v != "0");
    let mut stale = Vec::new();
    for (path, content) in &files {
        let full = repo().join(path);
        if std::fs::read(&full).ok().as_deref() != Some(&content[..]) {
            if update {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, content).unwrap();
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    // Pages of subcommands that no longer exist.
    for dir in ["man", "completions"] {
        for path in listed(Path::new(dir)) {
            if !files.iter().any(|(p, _)| *p == path) {
                if update {
                    std::fs::remove_file(repo().join(&path)).unwrap();
                } else {
                    stale.push(format!("{} (no longer generated)", path.display()));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated files differ from the code: {}\n{REGENERATE}",
        stale.join(", ")
    );
}
