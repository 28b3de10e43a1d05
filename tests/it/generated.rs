//! The committed man pages (`man/`) and shell completions (`completions/`) are exactly what
//! the code generates: the pages from `box_cli::cli::command()` and the sections of
//! `box_cli::cli::manual`, the completions as `box completion SHELL` prints them. With
//! `BOX_UPDATE_GENERATED=1` the test rewrites them instead of failing.

use std::path::{Path, PathBuf};

use box_cli::cli::CompletionShell;
use box_cli::cli::manual;
use clap::Command;

const REGENERATE: &str = "run `BOX_UPDATE_GENERATED=1 cargo test generated` to regenerate";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Text for roff: backslashes and hyphens escaped, no line read as a request.
fn roff_text(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\(aq");
    escaped
        .lines()
        .map(|line| {
            if line.starts_with('.') {
                format!("\\&{line}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A section of `.TP` entries: the term in bold, then its text.
fn tagged_section(title: &str, entries: &[(String, String)]) -> String {
    let mut out = format!(".SH {title}\n");
    for (term, text) in entries {
        out.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff_text(term),
            roff_text(text)
        ));
    }
    out
}

fn owned(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// The man page of `command` (`verb` is "" for `box` itself): clap_mangen's sections
/// from the clap tree (its after-help examples moved to EXAMPLES), then EXAMPLES, and for
/// box(1) ENVIRONMENT and FILES, EXIT STATUS and SEE ALSO from `box_cli::cli::manual`.
fn man_page(command: Command, verb: &str) -> Vec<u8> {
    let after_help = command.get_after_help().map(|h| h.to_string());
    let pages: Vec<String> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| format!("\\fBbox\\-{}\\fR(1)", roff_text(c.get_name())))
        .collect();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.after_help(None::<&str>))
        .render(&mut out)
        .expect("rendering a man page");
    let page = String::from_utf8(out).expect("roff is text");
    let (body, version) = page
        .split_once(".SH VERSION\n")
        .expect("clap_mangen renders a VERSION section");
    let mut extra = String::new();
    let examples = manual::examples_of(verb, after_help.as_deref());
    if !examples.is_empty() {
        extra.push_str(&tagged_section("EXAMPLES", &examples));
    }
    if verb.is_empty() {
        extra.push_str(&tagged_section("ENVIRONMENT", &owned(manual::ENVIRONMENT)));
        extra.push_str(&tagged_section("FILES", &owned(manual::FILES)));
    }
    extra.push_str(&tagged_section(
        "EXIT STATUS",
        &owned(manual::exit_status(verb)),
    ));
    extra.push_str(".SH \"SEE ALSO\"\n");
    if verb.is_empty() {
        extra.push_str(&format!(
            "{}, \\fBsubuid\\fR(5), \\fBsubgid\\fR(5), \\fBnewuidmap\\fR(1), \\fBcontainers\\-registries.conf\\fR(5), \\fBcontainers\\-auth.json\\fR(5)\n",
            pages.join(", ")
        ));
    } else {
        extra.push_str("\\fBbox\\fR(1)\n");
    }
    format!("{body}{extra}.SH VERSION\n{version}").into_bytes()
}

/// Every generated file: (path relative to the repository, content).
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    // `box help` works, but has no page of its own: the pages are the help.
    let mut root = box_cli::cli::command().disable_help_subcommand(true);
    root.build();
    files.push((PathBuf::from("man/box.1"), man_page(root.clone(), "")));
    for sub in root.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = format!("box-{}", sub.get_name());
        // The page's title and usage line name the full command (`box-pull`, `box pull`).
        // clap wants 'static names here (its `string` feature is off); leaking a few
        // short strings in a test is fine.
        let title: &'static str = Box::leak(name.clone().into_boxed_str());
        let bin: &'static str = Box::leak(format!("box {}", sub.get_name()).into_boxed_str());
        let page = man_page(sub.clone().name(title).bin_name(bin), sub.get_name());
        files.push((PathBuf::from(format!("man/{name}.1")), page));
    }
    for (shell, file) in [
        (CompletionShell::Bash, "completions/box.bash"),
        (CompletionShell::Zsh, "completions/_box"),
        (CompletionShell::Fish, "completions/box.fish"),
    ] {
        let script = box_cli::commands::completion::script(shell).expect("a completion script");
        files.push((PathBuf::from(file), script));
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
