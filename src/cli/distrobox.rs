//! distrobox's command line, as clap definitions: what box answers to when it runs as
//! `distrobox`, `distrobox-VERB` or `distrobox-export` (see `commands::distrobox`).
//!
//! A tree of its own, apart from [`super::Cli`]: box's help, man pages and completions
//! stay box's. The flags are distrobox's, as its usage pages list them, for the verbs box
//! has; each maps onto the operation `box` itself runs (no second implementation).
//!
//! distrobox's command line is not quite clap's, so [`prepare`] reads it first, as
//! distrobox does:
//! - options of more than one letter after one dash (`-nw`, `-ap`, `-el`, `-ep`, `-ef`,
//!   `-nf`) are its long options;
//! - in `enter` and `ephemeral`, the command starts at `-e`/`--exec`/`--`, or at the first
//!   word after the box's name (`distrobox enter dev ls -l`), with options allowed after
//!   the name (Ptyxis: `enter --no-tty NAME --additional-flags "--tty" -- env ...`);
//! - distrobox's options that box does not have (`--init`, `--root`, `--unshare-*`) are
//!   refused by name, with what to do instead ([`Refusal`]), before clap sees them;
//! - an option neither has is refused with box's own error, not clap's guess at a
//!   "similar argument" (`commands::distrobox`).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The version of distrobox whose command line box answers to (`distrobox version`).
pub const DISTROBOX_VERSION: &str = "1.8.2.5";

/// box, answering as distrobox: the verbs and flags of distrobox's usage pages, run by
/// box's own operations (see `box help` and docs/distrobox-compatibility.md).
#[derive(Debug, Parser)]
#[command(
    name = "distrobox",
    disable_version_flag = true,
    max_term_width = 100,
    after_help = "This is box answering as distrobox; `box --help` shows box's own commands."
)]
pub struct Distrobox {
    /// Print the version (distrobox's command line it answers to, and box's)
    #[arg(long, short = 'V', global = true)]
    pub version: bool,
    /// Accepted for compatibility: box says what it does either way
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub verb: Option<Verb>,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Create a box
    Create(Create),
    /// Enter a box (a login shell, or a command)
    Enter(Enter),
    /// List the boxes
    #[command(visible_alias = "ls")]
    List(List),
    /// Remove boxes
    Rm(Rm),
    /// Stop boxes
    Stop(Stop),
    /// Upgrade boxes' packages
    Upgrade(Upgrade),
    /// A temporary box, removed when its command ends
    Ephemeral(Ephemeral),
    /// Add or remove a box's menu entry
    GenerateEntry(GenerateEntry),
    /// Create or remove the boxes of a manifest (distrobox.ini)
    Assemble(Assemble),
    /// Print the version
    Version,
}

/// What `create` and `ephemeral` share.
#[derive(Debug, Args)]
pub struct Shape {
    /// Image to use for the box (a reference or a distribution name)
    #[arg(long, short)]
    pub image: Option<String>,
    /// Hostname inside the box (default: the host's)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Pull the image even if it is in the store (implies --yes)
    #[arg(long, short)]
    pub pull: bool,
    /// Non-interactive: pull without asking
    #[arg(long, short = 'Y')]
    pub yes: bool,
    /// Make the box as a copy of this one
    #[arg(long, short = 'c', value_name = "NAME")]
    pub clone: Option<String>,
    /// A home directory of its own for the box
    #[arg(long, short = 'H', value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Bind-mount a host path: SRC:DST[:ro|:rw] (repeatable)
    #[arg(long, value_name = "SRC:DST[:MODE]")]
    pub volume: Vec<String>,
    /// podman's flags distrobox passes on: box takes --env K=V, --volume SRC:DST,
    /// --device, --hostname, and --pids-limit -1 (repeatable)
    #[arg(long, short = 'a', value_name = "FLAGS", allow_hyphen_values = true)]
    pub additional_flags: Vec<String>,
    /// Packages to install when the box is provisioned (-ap)
    #[arg(long, value_name = "PKG ...")]
    pub additional_packages: Vec<String>,
    /// Shell command run as root after the packages are installed (once, at create)
    #[arg(long, value_name = "CMD")]
    pub init_hooks: Vec<String>,
    /// Shell command run as root before the packages are installed (once, at create)
    #[arg(long, value_name = "CMD")]
    pub pre_init_hooks: Vec<String>,
    /// Give the box the host's NVIDIA GPUs (through their CDI spec)
    #[arg(long)]
    pub nvidia: bool,
    /// Platform to pick from a multi-platform image, as os/arch[/variant]
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Print the namespace and mount plan without creating anything
    #[arg(long, short)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  distrobox create --image alpine my-alpine\n  distrobox create -n test -i fedora:41 -Y --volume /opt/x:/opt/x:ro\n  distrobox create --clone fedora-41 --name fedora-41-copy\n  distrobox create --compatibility"
)]
pub struct Create {
    /// Name of the box
    #[arg(value_name = "NAME")]
    pub positional_name: Option<String>,
    /// Name of the box
    #[arg(long, short)]
    pub name: Option<String>,
    #[command(flatten)]
    pub shape: Shape,
    /// Do not add a menu entry for the box
    #[arg(long)]
    pub no_entry: bool,
    /// List the images box knows by name, one per line
    #[arg(long, short = 'C')]
    pub compatibility: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  distrobox enter dev\n  distrobox enter --name dev -- make -j\n  distrobox enter dev -e uname -a\n  distrobox enter -n dev --additional-flags \"--env MY_VAR=value\" -- printenv MY_VAR"
)]
pub struct Enter {
    /// The box to enter
    #[arg(value_name = "NAME")]
    pub positional_name: Option<String>,
    /// The box to enter
    #[arg(long, short)]
    pub name: Option<String>,
    /// Do not allocate a terminal (box never does: the command has the caller's)
    #[arg(long, short = 'T', short_alias = 'H')]
    pub no_tty: bool,
    /// Start in the box's home instead of the current directory (-nw)
    #[arg(long)]
    pub no_workdir: bool,
    /// Start the command with the standard PATH (/usr/local/sbin:...:/bin)
    #[arg(long, short = 'c')]
    pub clean_path: bool,
    /// podman exec's flags distrobox passes on: box takes --env K=V and --user root, and
    /// accepts --tty, --interactive and --preserve-fds=N (repeatable)
    #[arg(long, short = 'a', value_name = "FLAGS", allow_hyphen_values = true)]
    pub additional_flags: Vec<String>,
    /// Create the box without asking if it does not exist
    #[arg(long, short = 'y', short_alias = 'Y')]
    pub yes: bool,
    /// Print the namespace and mount plan without entering
    #[arg(long, short)]
    pub dry_run: bool,
    /// The command (after `--`, `-e` or the box's name)
    #[arg(last = true, value_name = "CMD", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct List {
    /// Do not colour the output
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct Rm {
    /// Boxes to remove
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Remove every box
    #[arg(long, short)]
    pub all: bool,
    /// Remove running boxes too, stopping them first
    #[arg(long, short)]
    pub force: bool,
    /// Do not ask for confirmation
    #[arg(long, short = 'Y')]
    pub yes: bool,
    /// Also remove the box's own home directory (--home), when it is not yours
    #[arg(long)]
    pub rm_home: bool,
}

#[derive(Debug, Args)]
pub struct Stop {
    /// Boxes to stop
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Stop every box
    #[arg(long, short)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(long, short = 'Y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct Upgrade {
    /// Boxes to upgrade
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Upgrade every box
    #[arg(long, short)]
    pub all: bool,
    /// With --all, only the running boxes
    #[arg(long, requires = "all")]
    pub running: bool,
    /// Accepted for compatibility: upgrades never ask
    #[arg(long, short = 'Y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  distrobox ephemeral --image alpine:latest -- cat /etc/os-release\n  distrobox ephemeral -i debian -e sh -c 'echo hi'"
)]
pub struct Ephemeral {
    /// Name of the temporary box (default: ephemeral-XXXXXXXX)
    #[arg(long, short)]
    pub name: Option<String>,
    #[command(flatten)]
    pub shape: Shape,
    /// The command (after `--` or `-e`; default: a login shell)
    #[arg(last = true, value_name = "CMD", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct GenerateEntry {
    /// The box
    #[arg(value_name = "NAME", required_unless_present = "all")]
    pub name: Option<String>,
    /// For every box
    #[arg(long, short, conflicts_with = "name")]
    pub all: bool,
    /// Remove the entry instead
    #[arg(long, short)]
    pub delete: bool,
    /// The entry's icon: an icon name, or the absolute path of an image file
    #[arg(long, short, value_name = "ICON", conflicts_with = "delete")]
    pub icon: Option<String>,
}

#[derive(Debug, Args)]
pub struct Assemble {
    #[command(subcommand)]
    pub action: AssembleAction,
}

#[derive(Debug, Subcommand)]
pub enum AssembleAction {
    /// Create the manifest's boxes
    Create(AssembleArgs),
    /// Remove the manifest's boxes
    Rm(AssembleArgs),
}

#[derive(Debug, Args)]
pub struct AssembleArgs {
    /// The manifest: a path or an https:// URL (default: ./distrobox.ini)
    #[arg(long, value_name = "FILE")]
    pub file: Option<String>,
    /// Only the box of this section
    #[arg(long, short, value_name = "NAME")]
    pub name: Option<String>,
    /// Replace boxes that exist
    #[arg(long, short = 'R')]
    pub replace: bool,
    /// Say what would be done, and do nothing
    #[arg(long, short)]
    pub dry_run: bool,
}

/// `distrobox-export`, run inside a box: export from that box to the host.
#[derive(Debug, Parser)]
#[command(
    name = "distrobox-export",
    disable_version_flag = true,
    max_term_width = 100,
    group(clap::ArgGroup::new("action").args(["app", "bin", "list_apps", "list_binaries"])),
    after_help = "Examples:\n  distrobox-export --app mpv\n  distrobox-export --bin /usr/bin/rg --export-path ~/.local/bin\n  distrobox-export --app mpv --delete\n  distrobox-export --list-binaries\n\nThis is box answering as distrobox-export; `box export --help` shows box's own command."
)]
pub struct Export {
    /// Application to export: a .desktop file's name or path, or an app's name
    #[arg(long, short, value_name = "APP")]
    pub app: Option<String>,
    /// Absolute path of a binary in the box to export
    #[arg(long, short, value_name = "PATH")]
    pub bin: Option<String>,
    /// List the applications exported from this box
    #[arg(long)]
    pub list_apps: bool,
    /// List the binaries exported from this box (in --export-path, if given)
    #[arg(long)]
    pub list_binaries: bool,
    /// Remove the export named by --app or --bin
    #[arg(long, short)]
    pub delete: bool,
    /// Appended to the exported application's name (default " (on NAME)"; "none" for
    /// nothing) (-el)
    #[arg(long, value_name = "LABEL")]
    pub export_label: Option<String>,
    /// Host directory for the binary's wrapper (default ~/.local/bin) (-ep)
    #[arg(long, value_name = "DIR")]
    pub export_path: Option<PathBuf>,
    /// Arguments the host's launcher adds to the command (-ef)
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub extra_flags: Vec<String>,
    /// distrobox enter's flags for the launcher: box takes --no-workdir (-nf)
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub enter_flags: Vec<String>,
    /// Run the export as the box's root
    #[arg(long, short = 'S')]
    pub sudo: bool,
    /// Accepted for compatibility
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Print the version
    #[arg(long, short = 'V')]
    pub version: bool,
}

/// A distrobox option box does not have, found by [`prepare`]: the option as written and
/// why it is not there, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub option: String,
    pub why: &'static str,
    pub instead: &'static str,
}

/// distrobox's options box does not have, with why and what to do instead.
const REFUSED: &[(&[&str], &str, &str)] = &[
    (
        &["--init", "-I"],
        "boxes with an init system (systemd, OpenRC) as PID 1 are not supported yet",
        "create the box without --init; services can run in it as ordinary processes",
    ),
    (
        &["--root", "-r"],
        "box runs rootless only: there are no rootful boxes",
        "root in a box is `box enter NAME --user root` (or sudo inside the box)",
    ),
    (
        &[
            "--unshare-devsys",
            "--unshare-groups",
            "--unshare-ipc",
            "--unshare-netns",
            "--unshare-process",
            "--unshare-all",
        ],
        "box shares the host's devices, groups, IPC, network and processes, as distrobox does by default, and has no way to unshare them",
        "create the box without the --unshare flags",
    ),
    (
        &["--absolutely-disable-root-password-i-am-really-positively-sure"],
        "box has no rootful boxes, whose root password this is about",
        "leave the flag out: a box's root is reached with sudo inside it",
    ),
];

/// distrobox's long options written after one dash.
const MULTI_LETTER: &[(&str, &str)] = &[
    ("-nw", "--no-workdir"),
    ("-ap", "--additional-packages"),
    ("-el", "--export-label"),
    ("-ep", "--export-path"),
    ("-ef", "--extra-flags"),
    ("-nf", "--enter-flags"),
];

/// The command line of `verb` (a subcommand of [`Distrobox`], or `None` for
/// `distrobox-export`'s own) as clap reads it: multi-letter options renamed, the command
/// of `enter`/`ephemeral` set off with `--`. Fails with the first option box refuses.
pub fn prepare(verb: Option<&str>, args: &[OsString]) -> Result<Vec<OsString>, Refusal> {
    let command = match verb {
        Some(verb) => {
            let root = <Distrobox as clap::CommandFactory>::command();
            root.find_subcommand(verb).cloned()
        }
        None => Some(<Export as clap::CommandFactory>::command()),
    };
    let takes_value = |word: &str| -> bool {
        let Some(command) = &command else {
            return false;
        };
        command.get_arguments().any(|arg| {
            let named = match word.strip_prefix("--") {
                Some(long) => arg
                    .get_long_and_visible_aliases()
                    .is_some_and(|names| names.contains(&long)),
                None => word.strip_prefix('-').is_some_and(|short| {
                    let mut chars = short.chars();
                    chars.next().is_some_and(|c| {
                        chars.next().is_none()
                            && (arg.get_short() == Some(c)
                                || arg.get_all_short_aliases().is_some_and(|a| a.contains(&c)))
                    })
                }),
            };
            named && arg.get_action().takes_values()
        })
    };
    // enter's first word is its box's name (unless --name gave it), ephemeral's its
    // command's; other verbs have no command.
    let splits = matches!(verb, Some("enter" | "ephemeral"));
    let mut name_seen = verb != Some("enter");
    let mut out: Vec<OsString> = Vec::with_capacity(args.len() + 1);
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let Some(text) = word.to_str() else {
            if splits && name_seen {
                out.push("--".into());
                out.push(word.clone());
                out.extend(words.cloned());
                return Ok(out);
            }
            out.push(word.clone());
            if splits {
                name_seen = true;
            }
            continue;
        };
        if text == "--" {
            out.push(word.clone());
            out.extend(words.cloned());
            return Ok(out);
        }
        if splits && (text == "-e" || text == "--exec") {
            if name_seen {
                out.push("--".into());
                out.extend(words.cloned());
                return Ok(out);
            }
            // Before the name, distrobox takes it as a flag that does nothing.
            continue;
        }
        if text.starts_with('-') && text.len() > 1 {
            let (flag, value) = match text.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
                _ => (text, None),
            };
            if let Some((_, why, instead)) =
                REFUSED.iter().find(|(names, ..)| names.contains(&flag))
            {
                return Err(Refusal {
                    option: flag.to_owned(),
                    why,
                    instead,
                });
            }
            let flag = MULTI_LETTER
                .iter()
                .find(|(short, _)| *short == flag)
                .map_or(flag, |(_, long)| *long);
            if flag == "--name" || flag == "-n" {
                name_seen = true;
            }
            match value {
                Some(value) => out.push(format!("{flag}={value}").into()),
                None => {
                    out.push(flag.into());
                    if takes_value(flag)
                        && let Some(value) = words.next()
                    {
                        out.push(value.clone());
                    }
                }
            }
            continue;
        }
        // A word: enter's box name, or the start of the command.
        if splits && name_seen {
            out.push("--".into());
            out.push(word.clone());
            out.extend(words.cloned());
            return Ok(out);
        }
        if splits {
            name_seen = true;
        }
        out.push(word.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ')
            .filter(|w| !w.is_empty())
            .map(OsString::from)
            .collect()
    }

    fn prepared(verb: Option<&str>, line: &str) -> String {
        prepare(verb, &words(line))
            .unwrap()
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn enter_s_command_starts_after_the_name_or_a_marker() {
        for (line, expected) in [
            ("dev", "dev"),
            ("dev ls -l", "dev -- ls -l"),
            ("dev -- ls -l", "dev -- ls -l"),
            ("dev -e ls -l", "dev -- ls -l"),
            ("--name dev ls -l", "--name dev -- ls -l"),
            ("-n dev -e ls", "-n dev -- ls"),
            ("-e dev ls", "dev -- ls"),
            (
                "--no-tty dev --additional-flags --tty -- env A=1 sh",
                "--no-tty dev --additional-flags --tty -- env A=1 sh",
            ),
            ("-nw dev -T", "--no-workdir dev -T"),
            ("dev --no-workdir=x", "dev --no-workdir=x"),
        ] {
            assert_eq!(prepared(Some("enter"), line), expected, "{line}");
        }
    }

    #[test]
    fn ephemeral_s_command_is_its_first_word_and_create_has_none() {
        assert_eq!(
            prepared(Some("ephemeral"), "-i alpine cat /etc/os-release"),
            "-i alpine -- cat /etc/os-release"
        );
        assert_eq!(
            prepared(Some("create"), "-i alpine -ap vim mybox"),
            "-i alpine --additional-packages vim mybox"
        );
        assert_eq!(
            prepared(None, "--bin /usr/bin/x -ep /tmp/b -ef --foreground"),
            "--bin /usr/bin/x --export-path /tmp/b --extra-flags --foreground"
        );
    }

    #[test]
    fn options_box_lacks_are_refused_by_name_and_values_are_not_options() {
        let err = prepare(Some("create"), &words("-i x --init")).unwrap_err();
        assert_eq!(err.option, "--init");
        let err = prepare(Some("enter"), &words("dev --root")).unwrap_err();
        assert_eq!(err.option, "--root");
        let err = prepare(Some("create"), &words("--unshare-netns=true")).unwrap_err();
        assert_eq!(err.option, "--unshare-netns");
        // A value that looks like one is the value of its option.
        assert!(prepare(Some("create"), &words("--init-hooks --init")).is_ok());
        // After the command's start, nothing is box's.
        assert!(prepare(Some("enter"), &words("dev -- sudo -r")).is_ok());
    }

    #[test]
    fn the_trees_are_consistent() {
        use clap::CommandFactory;
        Distrobox::command().debug_assert();
        Export::command().debug_assert();
    }
}
