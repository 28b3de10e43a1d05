//! The podman-shaped window's command line, as clap definitions: what box answers to
//! when it runs as `podman` on a host without podman (see `commands::podman`).
//!
//! Only podman's read-only questions about containers and images, with the flags the
//! desktop tools pass (Ptyxis' `ps --all --format=json`, BoxBuddy's `ps`/`stats`/`images`
//! with Go templates, DistroShelf's `events --format json`); anything else is refused
//! with the hint that it needs a real podman.

use clap::{Args, Parser, Subcommand};

/// The podman version the window reports: the JSON and template shapes it follows.
pub const PODMAN_VERSION: &str = "5.0.0";

/// box, answering podman's read-only questions about boxes (ps, inspect, stats, images,
/// events, version). Anything else needs a real podman.
#[derive(Debug, Parser)]
#[command(
    name = "podman",
    disable_version_flag = true,
    max_term_width = 100,
    after_help = "This is box answering as podman, about boxes only and read-only; `box --help` shows box's own commands."
)]
pub struct Podman {
    /// Print the version
    #[arg(long, short = 'v')]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<PodmanCommand>,
}

#[derive(Debug, Subcommand)]
pub enum PodmanCommand {
    /// The version, as podman shows it
    Version(Format),
    /// List boxes as containers
    #[command(visible_alias = "list", visible_alias = "ls")]
    Ps(Ps),
    /// Details of boxes (or images) as JSON
    Inspect(Inspect),
    /// Resource use of running boxes
    Stats(Stats),
    /// List the images of the store
    Images(Images),
    /// Boxes starting, stopping, appearing and going, as events
    Events(Events),
}

#[derive(Debug, Args)]
pub struct Format {
    /// `json`, or a Go template (`{{.Client.Version}}`)
    #[arg(long, short)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct Ps {
    /// Also stopped boxes
    #[arg(long, short)]
    pub all: bool,
    /// `json`, a Go template (`{{.Names}}\t{{.Status}}`), or `table TEMPLATE`
    #[arg(long)]
    pub format: Option<String>,
    /// Only the boxes that match: label=K[=V], name=N, id=ID, status=running|exited|created
    #[arg(long, short, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Only the ids
    #[arg(long, short)]
    pub quiet: bool,
    /// Full ids
    #[arg(long)]
    pub no_trunc: bool,
    /// No header line
    #[arg(long, short = 'n')]
    pub noheading: bool,
    /// Accepted for compatibility (sizes are not computed)
    #[arg(long, short)]
    pub size: bool,
    /// Accepted for compatibility (boxes have no pods)
    #[arg(long, short)]
    pub pod: bool,
    /// Accepted for compatibility
    #[arg(long)]
    pub external: bool,
    /// Accepted for compatibility (boxes share the host's namespaces but mount and user)
    #[arg(long)]
    pub ns: bool,
}

#[derive(Debug, Args)]
pub struct Inspect {
    /// Boxes (names or ids) or images
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// `json` or a Go template (`{{.State.Status}}`)
    #[arg(long, short)]
    pub format: Option<String>,
    /// `container`, `image`, or `all`
    #[arg(long, short, value_name = "TYPE")]
    pub r#type: Option<String>,
    /// Accepted for compatibility
    #[arg(long, short)]
    pub size: bool,
}

#[derive(Debug, Args)]
pub struct Stats {
    /// Boxes (names or ids; default: every running box)
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Every box, stopped ones too
    #[arg(long, short)]
    pub all: bool,
    /// One sample, then exit
    #[arg(long)]
    pub no_stream: bool,
    /// `json` or a Go template (`{{.CPUPerc}};{{.MemPerc}};{{.MemUsage}}`)
    #[arg(long)]
    pub format: Option<String>,
    /// Seconds between samples
    #[arg(long, short, default_value_t = 5)]
    pub interval: u64,
    /// Accepted for compatibility
    #[arg(long)]
    pub no_reset: bool,
    /// Accepted for compatibility
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Debug, Args)]
pub struct Images {
    /// `json` or a Go template (`{{.Repository}}:{{.Tag}}`)
    #[arg(long)]
    pub format: Option<String>,
    /// Only the ids
    #[arg(long, short)]
    pub quiet: bool,
    /// Accepted for compatibility (the store has no intermediate images)
    #[arg(long, short)]
    pub all: bool,
    /// Full ids
    #[arg(long)]
    pub no_trunc: bool,
    /// No header line
    #[arg(long, short)]
    pub noheading: bool,
    /// Only the images that match: reference=PATTERN
    #[arg(long, short, value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Events {
    /// `json` or a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Only the events that match: type=container, event=start|died|create|remove,
    /// container=NAME, label=K[=V]
    #[arg(long, short, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// `false`: print what the boxes are now, then exit
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub stream: bool,
    /// Accepted for compatibility (past events are not kept; the boxes' current state
    /// comes first)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Accepted for compatibility
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Accepted for compatibility
    #[arg(long)]
    pub no_trunc: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_consistent_and_reads_the_callers_lines() {
        use clap::CommandFactory;
        Podman::command().debug_assert();
        for line in [
            "podman ps --all --format=json",
            "podman ps -a --filter label=manager=distrobox --format {{.Names}}\t{{.Status}}",
            "podman stats dev --no-stream --format {{.CPUPerc}};{{.MemPerc}};{{.MemUsage}}",
            "podman images --format=\"{{.Repository}}:{{.Tag}}\"",
            "podman events --format json",
            "podman version --format=json",
            "podman --version",
            "podman inspect --type container dev",
        ] {
            Podman::try_parse_from(line.split(' ')).unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }
}
