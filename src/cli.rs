//! The command line, as clap definitions only.
//!
//! This file is the single source of `box --help`, the man pages in `man/` and the shell
//! completions in `completions/` (both generated from [`command`] and checked by a test).
//! Command and flag names follow distrobox where it has them; distrobox's one-dash
//! spellings (`-ap`, `-nw`) are rewritten before clap sees them ([`distrobox_spellings`]),
//! and its options for what box does otherwise (`--init`, `--root`,
//! `--additional-flags`) are told apart in clap's error ([`distrobox_only`]) for box to
//! answer, without being options of box's. Nothing here reads the environment or the
//! disk: resolving what the arguments mean is `context.rs`'s job.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

pub mod distrobox;
pub mod manual;
pub mod podman;

/// Run other Linux distributions' userlands as if they were native.
///
/// box pulls distribution images from OCI registries, creates rootless containers from
/// them on overlayfs, and wires in your home, display, audio, D-Bus and devices, so that
/// `box enter ubuntu` gives you an Ubuntu shell that behaves like your own.
#[derive(Debug, Parser)]
#[command(name = "box", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download an image from a registry into the shared layer store
    Pull(PullArgs),
    /// Upload an image of the store to a registry, unchanged (same digests)
    Push(PushArgs),
    /// List the images in the store
    Images(ImagesArgs),
    /// Remove images and the layers no other image or box uses
    Rmi(RmiArgs),
    /// Write images to a tar archive that podman, docker and skopeo load
    Save(SaveArgs),
    /// Load images from a tar archive (podman save, docker save, skopeo, box save)
    Load(LoadArgs),
    /// Make an image of a stopped box: its image's layers plus one layer of its changes
    Commit(CommitArgs),
    /// Create a box from an image or a distribution name
    Create(CreateArgs),
    /// Open a shell (or run a command) in a box, starting it if needed
    Enter(EnterArgs),
    /// Run one command in a box, with its exit status
    Run(RunArgs),
    /// Change a stopped box's volumes, devices, hostname or home (applied at its next
    /// start)
    Edit(EditArgs),
    /// List the boxes
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Stop boxes and every process in them
    Stop(StopArgs),
    /// Remove boxes, their data and their exports
    Rm(RmArgs),
    /// Export a box's binary or application to the host
    Export(ExportArgs),
    /// Add (or remove) a desktop menu entry that opens a terminal in a box
    GenerateEntry(GenerateEntryArgs),
    /// Create, remove or list the boxes of a distrobox manifest (distrobox.ini)
    Assemble(AssembleArgs),
    /// A temporary box: entered (or a command run in it), then removed with all it wrote
    Ephemeral(EphemeralArgs),
    /// Upgrade the packages of boxes with their distribution's package manager
    Upgrade(UpgradeArgs),
    /// From inside a box: run a command on the host, with this terminal, directory and
    /// environment
    HostExec(HostExecArgs),
    /// Answer as `distrobox` (and `podman`, where there is none) for the tools that call them
    InstallDistroboxNames(InstallNamesArgs),
    /// Check what box needs on this host, and say how to fix what is missing
    Doctor(DoctorArgs),
    /// Print the completion script of a shell (bash, zsh or fish)
    Completion(CompletionArgs),
}

/// The names are `distrobox`, `distrobox-create`, `-enter`, `-list`, `-rm`, `-stop`,
/// `-upgrade`, `-ephemeral`, `-generate-entry`, `-assemble`, `-export`, `-host-exec`, and
/// `podman` when no podman is on PATH: symbolic links to box, which answers each with
/// distrobox's (or podman's) flags and output. A real distrobox or podman there is never
/// replaced. Flatpak'd tools (BoxBuddy, DistroShelf) run `flatpak-spawn --host distrobox`
/// with the desktop session's PATH, which often lacks ~/.local/bin: /usr/local/bin (as
/// root) reaches them.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  box install-distrobox-names\n  sudo box install-distrobox-names --prefix /usr/local/bin\n  box install-distrobox-names --remove"
)]
pub struct InstallNamesArgs {
    /// The directory for the links (default: the first of /usr/local/bin, ~/.local/bin
    /// that is on PATH and writable)
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// Remove box's links instead (only links to box: a real distrobox stays)
    #[arg(long)]
    pub remove: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  box ephemeral --image debian:trixie\n  box ephemeral -i ubuntu -- make -j"
)]
pub struct EphemeralArgs {
    /// Image reference or distribution name (`ubuntu`, `trixie`, ...)
    #[arg(long, short, required = true)]
    pub image: Option<String>,
    /// Name of the temporary box (default: ephemeral-XXXXXXXX)
    #[arg(long, short)]
    pub name: Option<String>,
    /// Pull the image even if it is already in the store
    #[arg(long, short)]
    pub pull: bool,
    /// Do not ask before pulling
    #[arg(long, short = 'Y')]
    pub yes: bool,
    #[command(flatten)]
    pub shape: BoxShapeArgs,
    #[command(flatten)]
    pub provision: ProvisionArgs,
    /// Start in the box's home instead of the current directory
    #[arg(long = "no-workdir", visible_alias = "nw")]
    pub no_workdir: bool,
    /// Command to run instead of a login shell
    #[arg(last = true, value_name = "CMD", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

/// distrobox's manifest format: `[name]` sections with `key=value` lines (image,
/// additional_packages, init_hooks, pre_init_hooks, home, hostname, volume, clone, entry,
/// start_now, pull, replace, exported_apps, exported_bins, exported_bins_path, include,
/// init, nvidia, root, additional_flags, unshare_*); `#` starts a comment. `create`
/// writes FILE.lock with the digest each box's image resolved to; `--locked` creates
/// from those digests.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  box assemble create\n  box assemble create --file dev.ini --name tools --replace\n  box assemble create --locked\n  box assemble rm --file https://example.org/distrobox.ini"
)]
pub struct AssembleArgs {
    #[command(subcommand)]
    pub action: AssembleAction,
}

#[derive(Debug, Subcommand)]
pub enum AssembleAction {
    /// Create the manifest's boxes (those that exist are kept unless replaced)
    Create(AssembleCreateArgs),
    /// Remove the manifest's boxes and their exports (asks first on a terminal, as `box rm`
    /// does)
    Rm(AssembleRmArgs),
    /// List the manifest's boxes and whether they exist
    List(AssembleFileArgs),
}

#[derive(Debug, Args)]
pub struct AssembleFileArgs {
    /// The manifest: a path or an https:// URL (default: ./box.ini if present, else
    /// ./distrobox.ini)
    #[arg(long, short, value_name = "FILE")]
    pub file: Option<String>,
    /// Only the box of this section
    #[arg(long, short, value_name = "NAME")]
    pub name: Option<String>,
    /// Say what would be done, and do nothing
    #[arg(long, short)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct AssembleRmArgs {
    #[command(flatten)]
    pub common: AssembleFileArgs,
    /// Remove running boxes too, stopping them first (on a terminal box asks instead)
    #[arg(long, short = 'F')]
    pub force: bool,
    /// Do not ask for confirmation (running boxes still need --force)
    #[arg(long, short = 'Y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct AssembleCreateArgs {
    #[command(flatten)]
    pub common: AssembleFileArgs,
    /// Replace boxes that exist (once their new image is pulled)
    #[arg(long, short = 'R')]
    pub replace: bool,
    /// Create from the image digests recorded in FILE.lock
    #[arg(long)]
    pub locked: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference: `debian:trixie`, `quay.io/fedora/fedora:41`, `127.0.0.1:5000/img@sha256:...`
    pub reference: String,
    /// Platform to pick from a multi-platform image, as os/arch[/variant]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  box push quay.io/me/tools:1\n  box push debian:trixie registry.lan:5000/base/debian:trixie\n  box push 3f2a1b9c8d7e docker://ghcr.io/me/dev:latest --chunk-size 50M"
)]
pub struct PushArgs {
    /// The image: a reference or a digest, as `box images` shows them
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Where to: a reference (`docker://` accepted); default: the image's own reference
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
    /// Send blobs larger than SIZE in chunks of SIZE (`50M`, `512K`, bytes): for a
    /// registry behind a proxy that limits request bodies
    #[arg(long, value_name = "SIZE", value_parser = byte_size)]
    pub chunk_size: Option<u64>,
}

/// A size in bytes: a number, optionally followed by K, M or G (powers of 1024, with or
/// without `iB` or `B`).
fn byte_size(text: &str) -> Result<u64, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (use K, M or G)")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{text}` is not a size such as 50M, 512K or 1048576"))
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove: references, or digests as `box images` shows them (short or full)
    #[arg(
        value_name = "IMAGE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub references: Vec<String>,
    /// Remove every image
    #[arg(long, short)]
    pub all: bool,
    /// Remove images even when boxes were created from them (their layers are kept), and
    /// every reference of a digest that several have
    #[arg(long, short)]
    pub force: bool,
}

/// The archive is an OCI image layout with docker's manifest.json beside it: `podman
/// load`, `docker load` and skopeo (`oci-archive:FILE`, `docker-archive:FILE`) read it.
/// Blobs are written as the store has them, so images keep their digests.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  box save debian:trixie -o debian.tar\n  box save localhost/dev:1 fedora:41 | ssh host box load"
)]
pub struct SaveArgs {
    /// Images to write: references, or digests as `box images` shows them
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// Write to FILE (replaced only once the archive is complete) instead of standard
    /// output
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Reads OCI archives and docker archives, plain or compressed with gzip or zstd. Every
/// blob is checked against its digest and every layer against its diff id; a failed
/// load leaves the store as it was. Images without a name are recorded as
/// `localhost/untagged@<digest>`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  box load -i debian.tar\n  podman save fedora | box load")]
pub struct LoadArgs {
    /// Read the archive from FILE instead of standard input
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// What box put in the box for you and this host is left out (your account, sudoers
/// entry, mount points, /run, /tmp, package caches): another user gets a clean box from
/// the image, with no provisioning run. SOURCE_DATE_EPOCH clamps times, for the same
/// digest from the same box.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  box commit dev myteam/dev:1\n  box commit dev localhost/dev --compression zstd"
)]
pub struct CommitArgs {
    /// The box (stopped)
    pub name: String,
    /// The new image's reference, as for `box pull` (an existing tag is replaced)
    pub image: String,
    /// How to compress the new layer
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
}

/// A layer compression, for `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the box (default: the distribution or image name)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub positional_name: Option<String>,
    /// Name of the box
    #[arg(long, short)]
    pub name: Option<String>,
    /// Image reference or distribution name (`ubuntu`, `trixie`, `fedora:41`, ...)
    #[arg(long, short)]
    pub image: Option<String>,
    /// Make the box as a copy of this stopped box (its files, packages and record); the
    /// other flags change the copy (more volumes and devices, another hostname or home,
    /// packages and hooks run in it)
    #[arg(long, short = 'c', value_name = "SOURCE", conflicts_with_all = ["image", "pull", "platform"])]
    pub clone: Option<String>,
    /// Pull the image even if it is already in the store
    #[arg(long, short)]
    pub pull: bool,
    /// Do not ask for confirmation
    #[arg(long, short = 'Y')]
    pub yes: bool,
    #[command(flatten)]
    pub shape: BoxShapeArgs,
    /// Do not add a desktop menu entry for the box
    #[arg(long)]
    pub no_entry: bool,
    /// Print the namespace and mount plan without creating anything
    #[arg(long, short)]
    pub dry_run: bool,
    #[command(flatten)]
    pub provision: ProvisionArgs,
}

/// What a new box looks like, for `box create` and `box ephemeral`.
#[derive(Debug, Args)]
pub struct BoxShapeArgs {
    /// Hostname inside the box (default: the host's)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Use DIR as the home directory inside the box (the host home is still mounted)
    #[arg(long, short = 'H', value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Bind-mount a host path into the box: SRC:DST[:ro]
    #[arg(long, short, value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Platform to pick from a multi-platform image, as os/arch[/variant]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Give the box a CDI device of the host: VENDOR/CLASS=NAME, e.g. nvidia.com/gpu=all
    /// (repeatable; specs from /etc/cdi and /var/run/cdi, or BOX_CDI_SPEC_DIRS, read at
    /// each start of the box)
    #[arg(long, value_name = "VENDOR/CLASS=NAME")]
    pub device: Vec<String>,
    /// Give the box the host's NVIDIA GPUs through their CDI spec (default: whenever the
    /// host has one)
    #[arg(long, conflicts_with = "no_nvidia")]
    pub nvidia: bool,
    /// Leave the host's NVIDIA GPUs out even when the host has their CDI spec
    #[arg(long)]
    pub no_nvidia: bool,
}

impl BoxShapeArgs {
    /// `--nvidia` (true), `--no-nvidia` (false), or neither: automatic.
    pub fn nvidia_choice(&self) -> Option<bool> {
        match (self.nvidia, self.no_nvidia) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// What provisioning installs and runs, for `box create` and `box ephemeral`.
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Also install these packages when provisioning the box (a space-separated list;
    /// repeatable; default: `additional-packages` in config.toml; `-ap` as in distrobox)
    #[arg(long, value_name = "PKG ...", conflicts_with = "no_provision")]
    pub additional_packages: Vec<String>,
    /// Shell command run as root in the box before its packages are installed
    /// (repeatable; default: `pre-init-hooks` in config.toml)
    #[arg(long, value_name = "CMD", conflicts_with = "no_provision")]
    pub pre_init_hooks: Vec<String>,
    /// Shell command run as root in the box after its packages are installed
    /// (repeatable; default: `init-hooks` in config.toml)
    #[arg(long, value_name = "CMD", conflicts_with = "no_provision")]
    pub init_hooks: Vec<String>,
    /// Install nothing in the box (default: install what it lacks, see `provision` in
    /// config.toml)
    #[arg(long)]
    pub no_provision: bool,
    /// What provisioning installs: `full` (shell tools, graphics, audio, fonts) or `base`
    /// (shell and build tools only, a fraction of the download; default: `provision-set`
    /// in config.toml, else full)
    #[arg(long, value_name = "SET", conflicts_with = "no_provision")]
    pub provision_set: Option<ProvisionSet>,
}

/// `--provision-set`: which of the catalogue's needs provisioning installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProvisionSet {
    /// Everything a desktop session needs: shell tools, graphics, audio, fonts
    Full,
    /// Shell and build tools only: no graphics, audio and font packages
    Base,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Without a name: inside a box that box, else the `default-name` setting, else the box of this host's distribution and release
when there is one, else your only box; with none, box offers to create the host's.

Examples:
  box enter dev
  box enter -n dev -- make
  box enter docker.io/library/debian:12     (box debian-12, offered for creation if missing)"
)]
pub struct EnterArgs {
    /// The box to enter, or an image reference (its box is named after it: `debian-12`)
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// The box to enter (as distrobox spells it)
    #[arg(
        long = "name",
        short = 'n',
        value_name = "NAME",
        conflicts_with = "name"
    )]
    pub name_option: Option<String>,
    /// Start in the box's home instead of the current directory (`-nw` as in distrobox)
    #[arg(long = "no-workdir", visible_alias = "nw")]
    pub no_workdir: bool,
    /// Create the box without asking if it does not exist
    #[arg(long, short = 'Y')]
    pub yes: bool,
    /// Print the namespace and mount plan without entering
    #[arg(long, short)]
    pub dry_run: bool,
    /// Enter as this user of the box (a name or uid; `root` is the box's root)
    #[arg(long, short, value_name = "USER")]
    pub user: Option<String>,
    /// Command to run instead of the login shell
    // OsString: arguments are passed on as bytes (file names need not be UTF-8).
    #[arg(last = true, value_name = "CMD", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

/// `box run NAME -- CMD` is the form that is never ambiguous; `box run NAME CMD` works
/// too when CMD does not start with `-` (everything from CMD on is the command's).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  box run dev -- make -j
  box run dev make -j
  box run dev -- --a-command-starting-with-a-dash")]
pub struct RunArgs {
    /// The box to run in
    pub name: String,
    /// Start in the box's home instead of the current directory
    #[arg(long = "no-workdir", visible_alias = "nw")]
    pub no_workdir: bool,
    /// Run as this user of the box (a name or uid; `root` is the box's root)
    #[arg(long, short, value_name = "USER")]
    pub user: Option<String>,
    /// The command and its arguments
    // OsString: arguments are passed on as bytes (file names need not be UTF-8).
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

/// What `box edit` changes. distrobox cannot change a box after create (its answer is a
/// clone); box keeps these in the box's record and applies them at every start.
#[derive(Debug, Args)]
#[command(
    after_help = "The box must be stopped (`box stop NAME`); the change applies at its next start.\n\nExamples:\n  box edit dev --volume ~/src:/src --remove-volume /data\n  box edit dev --device nvidia.com/gpu=all\n  box edit dev --hostname devbox --no-home"
)]
pub struct EditArgs {
    /// The box to change
    pub name: String,
    /// Add a volume: bind-mount a host path into the box, SRC:DST[:ro] (repeatable; one at
    /// a DST the box has replaces it)
    #[arg(long, short, value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Remove the volume at this path in the box (repeatable)
    #[arg(long, value_name = "DST")]
    pub remove_volume: Vec<String>,
    /// Add a CDI device of the host: VENDOR/CLASS=NAME (repeatable)
    #[arg(long, value_name = "VENDOR/CLASS=NAME")]
    pub device: Vec<String>,
    /// Remove a CDI device the box was given (repeatable)
    #[arg(long, value_name = "VENDOR/CLASS=NAME")]
    pub remove_device: Vec<String>,
    /// Give the box the host's NVIDIA GPUs through their CDI spec
    #[arg(long, conflicts_with_all = ["no_nvidia", "auto_nvidia"])]
    pub nvidia: bool,
    /// Leave the host's NVIDIA GPUs out even when the host has their CDI spec
    #[arg(long, conflicts_with = "auto_nvidia")]
    pub no_nvidia: bool,
    /// Give the box the host's NVIDIA GPUs whenever the host has their CDI spec (what a
    /// box without --nvidia or --no-nvidia gets)
    #[arg(long)]
    pub auto_nvidia: bool,
    /// Hostname inside the box
    #[arg(long, conflicts_with = "no_hostname")]
    pub hostname: Option<String>,
    /// Use the host's hostname inside the box again
    #[arg(long)]
    pub no_hostname: bool,
    /// Use DIR as the home directory inside the box (the host home is still mounted)
    #[arg(long, short = 'H', value_name = "DIR", conflicts_with = "no_home")]
    pub home: Option<PathBuf>,
    /// Use your own home inside the box again
    #[arg(long)]
    pub no_home: bool,
    /// Print the plan of the box's next start with the change, and change nothing
    #[arg(long, short)]
    pub dry_run: bool,
}

/// A command linked to box in a box (`ln -s /usr/local/bin/box /usr/local/bin/podman`)
/// runs on the host the same way: `podman ps` in the box is `box host-exec podman ps`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  box host-exec flatpak list\n  box host-exec               (a login shell on the host)\n  sudo ln -s /usr/local/bin/box /usr/local/bin/podman"
)]
pub struct HostExecArgs {
    /// The command and its arguments (default: your login shell on the host)
    // OsString: arguments are passed on as bytes (file names need not be UTF-8).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
    /// Do not colour the output (also: NO_COLOR)
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Boxes to stop
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub names: Vec<String>,
    /// Stop every running box
    #[arg(long, short)]
    pub all: bool,
    /// Do not ask for confirmation (box asks only on a terminal)
    #[arg(long, short = 'Y')]
    pub yes: bool,
    /// Seconds the box's processes get to end after SIGTERM and SIGHUP before they are
    /// killed
    #[arg(long, short, value_name = "SECONDS", default_value = "1.5", value_parser = grace_seconds)]
    pub time: std::time::Duration,
}

/// A grace period in seconds (`1`, `0.5`), as `--time` takes it.
fn grace_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86400.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("`{text}` is not a number of seconds between 0 and 86400"))
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Boxes to remove
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub names: Vec<String>,
    /// Remove every box
    #[arg(long, short)]
    pub all: bool,
    /// Remove running boxes too, stopping them first
    #[arg(long, short)]
    pub force: bool,
    /// Do not ask for confirmation (box asks only on a terminal)
    #[arg(long, short = 'Y')]
    pub yes: bool,
    /// Ask for confirmation, and remove nothing when there is no terminal to ask on
    #[arg(long, short, conflicts_with = "yes")]
    pub interactive: bool,
    /// With --force: seconds running boxes' processes get to end after SIGTERM and SIGHUP
    /// before they are killed
    #[arg(long, short, value_name = "SECONDS", default_value = "1.5", value_parser = grace_seconds)]
    pub time: std::time::Duration,
}

/// One of --bin, --app and --list says what to do; --delete turns --bin or --app into a
/// removal. Each option conflicts with the forms it has no meaning in, so a misplaced one
/// is a usage error rather than ignored (clap waives a `requires` when a conflicting
/// argument is present, so --json conflicts with the other forms explicitly). The usage
/// line lists the four forms: clap's own, drawn from the groups, reads badly.
#[derive(Debug, Args)]
#[command(
    override_usage = "box export [NAME] --bin PATH [--export-path DIR] [--force]\n       \
                      box export [NAME] --app APP [--export-label LABEL] [--force]\n       \
                      box export [NAME] --delete (--bin PATH | --app APP)\n       \
                      box export [NAME] --list [--json]",
    group(
        clap::ArgGroup::new("action")
            .args(["bin", "app", "list"])
            .required(true)
    )
)]
pub struct ExportArgs {
    /// The box whose binary or application to export (default inside a box: that box)
    pub name: Option<String>,
    /// Absolute path of a binary in the box to put on the host PATH
    #[arg(long, short, value_name = "PATH")]
    pub bin: Option<String>,
    /// Desktop application to put in the host menu: a .desktop file name or path, or an app name
    #[arg(long, short, value_name = "APP")]
    pub app: Option<String>,
    /// Host directory for the exported binary's wrapper (default: $XDG_BIN_HOME or ~/.local/bin)
    #[arg(long, short = 'e', value_name = "DIR", conflicts_with_all = ["app", "delete", "list"])]
    pub export_path: Option<PathBuf>,
    /// Text appended to exported application names (default: " (on NAME)"; "none" for nothing)
    #[arg(long, value_name = "LABEL", conflicts_with_all = ["bin", "delete", "list"])]
    pub export_label: Option<String>,
    /// Replace existing host files that box did not write
    #[arg(long, short, conflicts_with_all = ["delete", "list"])]
    pub force: bool,
    /// Remove the export named by --bin or --app
    #[arg(long, short, conflicts_with = "list")]
    pub delete: bool,
    /// List the box's exports
    #[arg(long, short)]
    pub list: bool,
    /// With --list, print JSON
    #[arg(long, requires = "list", conflicts_with_all = ["bin", "app", "delete"])]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenerateEntryArgs {
    /// The box
    pub name: String,
    /// Remove the entry instead
    #[arg(long, short)]
    pub delete: bool,
    /// Replace a file at the entry's path that box did not write
    #[arg(long, short, conflicts_with = "delete")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Boxes to upgrade
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub names: Vec<String>,
    /// Upgrade every box
    #[arg(long, short)]
    pub all: bool,
    /// With --all, only the boxes that are running
    #[arg(long, requires = "all")]
    pub running: bool,
}

/// `box doctor`: every check on one line, its fix after it; see `docs/install.md`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when nothing blocks box (warnings may remain), 1 when something does.\n\nExamples:\n  box doctor\n  box doctor --json | jq '.[] | select(.status != \"ok\")'"
)]
pub struct DoctorArgs {
    /// Print a JSON array of the checks instead of lines
    #[arg(long)]
    pub json: bool,
    /// Print the AppArmor profile that lets this box executable use user namespaces where
    /// AppArmor restricts them (for /etc/apparmor.d/), and check nothing
    #[arg(long, conflicts_with = "json")]
    pub apparmor_profile: bool,
}

/// `box completion SHELL`: the script asks box for the words of each completion, so box
/// and image names complete too (see `src/commands/completion.rs`).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  box completion bash > ~/.local/share/bash-completion/completions/box\n  box completion zsh > ~/.zfunc/_box        (with `fpath+=(~/.zfunc)` before compinit)\n  box completion fish > ~/.config/fish/completions/box.fish"
)]
pub struct CompletionArgs {
    /// The shell
    pub shell: CompletionShell,
}

/// The shells `box completion` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// The command lines `box run NAME -- CMD ARGS...` and `box run NAME CMD ARGS...` (no
/// option, a NAME and CMD that are not one), read without clap: what exported wrappers and
/// scripts run on the hot path. Building clap's whole command tree costs about a quarter
/// of the instructions of a warm `box run` (callgrind); every other form, and any doubt,
/// goes to clap, so the result is always what clap would have parsed.
pub fn parse_plain_run(args: &[OsString]) -> Option<Command> {
    let [run, name, first, rest @ ..] = args else {
        return None;
    };
    let name = name.to_str()?;
    if run != "run" || name.starts_with('-') {
        return None;
    }
    let command = if first == "--" {
        rest.to_vec()
    } else if first.as_encoded_bytes().starts_with(b"-") {
        return None;
    } else {
        args[2..].to_vec()
    };
    if command.is_empty() {
        return None;
    }
    Some(Command::Run(RunArgs {
        name: name.to_owned(),
        no_workdir: false,
        user: None,
        command,
    }))
}

/// distrobox's spellings of box's options that clap cannot take as they are (one dash,
/// several letters): `-ap` is `--additional-packages` (create, ephemeral), `-nw`
/// `--no-workdir` (enter, ephemeral). Only words before a `--` are rewritten; these verbs
/// take their command after one, so a command's own `-nw` (`emacs -nw`) is left alone.
pub fn distrobox_spellings(args: Vec<OsString>) -> Vec<OsString> {
    let verb = args
        .iter()
        .skip(1)
        .find(|a| !a.as_encoded_bytes().starts_with(b"-"))
        .and_then(|a| a.to_str())
        .map(str::to_owned);
    let (ap, nw) = match verb.as_deref() {
        Some("create") => (true, false),
        Some("enter") => (false, true),
        Some("ephemeral") => (true, true),
        _ => return args,
    };
    let mut separated = false;
    args.into_iter()
        .map(|arg| {
            if separated {
                return arg;
            }
            if arg == "--" {
                separated = true;
            } else if ap && arg == "-ap" {
                return OsString::from("--additional-packages");
            } else if nw && arg == "-nw" {
                return OsString::from("--no-workdir");
            }
            arg
        })
        .collect()
}

/// Parse box's command line (`args` with the program name first), distrobox's
/// spellings included (see [`distrobox_spellings`]).
pub fn try_parse(args: Vec<OsString>) -> Result<Command, clap::Error> {
    let args = distrobox_spellings(args);
    Cli::try_parse_from(args).map(|cli| cli.command)
}

/// distrobox's options for what box does another way or not yet, which box answers with
/// its own error and hint rather than clap's "a similar argument exists" pointing at the
/// wrong feature (`--init` at `--init-hooks`). Not in box's command tree, so neither help
/// nor completions offer them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistroboxOnly {
    /// `--init`/`-I` (create, ephemeral): systemd as the box's init.
    Init,
    /// `--root`/`-r`: a rootful box.
    Root,
    /// `--additional-flags`/`-a` (create, enter, ephemeral): the engine's own flags.
    AdditionalFlags,
}

/// Which of [`DistroboxOnly`] clap's `error` is about, for the verb of `args` that
/// distrobox has it for.
pub fn distrobox_only(error: &clap::Error, args: &[OsString]) -> Option<DistroboxOnly> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let verb = args
        .iter()
        .skip(1)
        .find(|a| !a.as_encoded_bytes().starts_with(b"-"))
        .and_then(|a| a.to_str())?;
    let flag = match arg.split('=').next()? {
        "--init" | "-I" => DistroboxOnly::Init,
        "--root" | "-r" => DistroboxOnly::Root,
        "--additional-flags" | "-a" => DistroboxOnly::AdditionalFlags,
        _ => return None,
    };
    let verbs: &[&str] = match flag {
        DistroboxOnly::Init => &["create", "ephemeral"],
        DistroboxOnly::Root => &[
            "create",
            "enter",
            "run",
            "ephemeral",
            "list",
            "ls",
            "stop",
            "rm",
            "upgrade",
            "assemble",
        ],
        DistroboxOnly::AdditionalFlags => &["create", "enter", "run", "ephemeral"],
    };
    verbs.contains(&verb).then_some(flag)
}

/// `host-exec CMD ARGS...` with CMD not an option: the form the client's hot path
/// takes without building clap's command tree (`--help` and the rest go through clap).
pub fn parse_plain_host_exec(args: &[OsString]) -> Option<Command> {
    let (verb, command) = args.split_first()?;
    if verb != "host-exec"
        || command
            .first()
            .is_some_and(|c| c.as_encoded_bytes().starts_with(b"-"))
    {
        return None;
    }
    Some(Command::HostExec(HostExecArgs {
        command: command.to_vec(),
    }))
}

/// The clap command tree, for the man page and completion generators.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn the_plain_run_form_reads_as_clap_reads_it_and_nothing_else_is_taken() {
        for line in [
            "run dev -- true",
            "run dev -- sh -c echo",
            "run dev -- --not-an-option-of-box",
            "run dev -- run dev -- x",
        ] {
            let fast = parse_plain_run(&words(line)).expect(line);
            let mut argv = vec![OsString::from("box")];
            argv.extend(words(line));
            let clap = Cli::try_parse_from(argv).unwrap().command;
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{line}");
        }
        for line in [
            "run --no-workdir dev -- true",
            "run dev --user root -- true",
            "run -u root dev -- true",
            "run dev -x",
            "run dev --",
            "run --help -- x",
            "enter dev -- true",
            "run",
            "run dev",
        ] {
            assert!(parse_plain_run(&words(line)).is_none(), "{line}");
        }
    }

    #[test]
    fn sizes_in_bytes_and_binary_units() {
        assert_eq!(byte_size("1048576"), Ok(1 << 20));
        assert_eq!(byte_size("512K"), Ok(512 << 10));
        assert_eq!(byte_size("50M"), Ok(50 << 20));
        assert_eq!(byte_size("50MiB"), Ok(50 << 20));
        assert_eq!(byte_size("2g"), Ok(2 << 30));
        for bad in ["", "0", "M", "1.5M", "10T", "-1", "99999999999999999999G"] {
            assert!(byte_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_takes_its_command_without_a_separator_and_box_s_options_before_it() {
        let parse = |line: &str| {
            let mut argv = vec![OsString::from("box")];
            argv.extend(words(line));
            Cli::try_parse_from(argv).map(|cli| cli.command)
        };
        for line in [
            "run dev true",
            "run dev ls -l --color",
            "run dev emacs -nw",
            "run dev sh -c exit",
        ] {
            let fast = parse_plain_run(&words(line)).expect(line);
            assert_eq!(
                format!("{fast:?}"),
                format!("{:?}", parse(line).unwrap()),
                "{line}"
            );
        }
        let Ok(Command::Run(run)) = parse("run -u root dev id -u") else {
            panic!("run -u root dev id -u");
        };
        assert_eq!(run.user.as_deref(), Some("root"));
        assert_eq!(run.command, ["id", "-u"]);
        let Ok(Command::Run(run)) = parse("run dev --user root id") else {
            panic!("run dev --user root id");
        };
        assert_eq!((run.user.as_deref(), run.command.len()), (Some("root"), 1));
        // A command is required either way.
        assert!(parse("run dev").is_err());
        assert!(parse("run dev --no-workdir").is_err());
    }

    #[test]
    fn distrobox_s_one_dash_spellings_mean_box_s_options_before_the_command() {
        let parse = |line: &str| {
            let mut argv = vec![OsString::from("box")];
            argv.extend(words(line));
            Cli::try_parse_from(distrobox_spellings(argv)).map(|cli| cli.command)
        };
        let Ok(Command::Create(create)) = parse("create -ap vim -ap git debian") else {
            panic!("create -ap");
        };
        assert_eq!(create.provision.additional_packages, ["vim", "git"]);
        let Ok(Command::Enter(enter)) = parse("enter -nw -n dev -- emacs -nw") else {
            panic!("enter -nw");
        };
        assert!(enter.no_workdir);
        assert_eq!(enter.name_option.as_deref(), Some("dev"));
        assert_eq!(enter.command, ["emacs", "-nw"]);
        let Ok(Command::Ephemeral(eph)) = parse("ephemeral -i debian -nw -ap vim") else {
            panic!("ephemeral");
        };
        assert!(eph.no_workdir);
        assert_eq!(eph.provision.additional_packages, ["vim"]);
        // Other verbs' words are theirs.
        let Ok(Command::Run(run)) = parse("run dev emacs -nw") else {
            panic!("run");
        };
        assert_eq!(run.command, ["emacs", "-nw"]);
        // A name and -n together are one name too many.
        assert!(parse("enter dev -n other").is_err());
    }

    #[test]
    fn distrobox_only_flags_are_told_apart_from_other_unknown_ones() {
        let which = |line: &str| {
            let mut argv = vec![OsString::from("box")];
            argv.extend(words(line));
            let err = try_parse(argv.clone()).unwrap_err();
            distrobox_only(&err, &argv)
        };
        assert_eq!(which("create --init debian"), Some(DistroboxOnly::Init));
        assert_eq!(which("create -I debian"), Some(DistroboxOnly::Init));
        assert_eq!(which("enter --root dev"), Some(DistroboxOnly::Root));
        assert_eq!(which("rm -r dev"), Some(DistroboxOnly::Root));
        assert_eq!(
            which("create --additional-flags --env=A=1 debian"),
            Some(DistroboxOnly::AdditionalFlags)
        );
        assert_eq!(
            which("enter -a x dev"),
            Some(DistroboxOnly::AdditionalFlags)
        );
        // Where distrobox has no such flag, or another unknown flag: clap's own error.
        assert_eq!(which("pull --init x"), None);
        assert_eq!(which("create --frobnicate debian"), None);
        // Not in the tree: neither help nor completions offer them.
        let help = command()
            .find_subcommand_mut("create")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            !help.contains("--init ") && !help.contains("--root"),
            "{help}"
        );
    }

    #[test]
    fn the_plain_host_exec_form_reads_as_clap_reads_it() {
        for line in [
            "host-exec",
            "host-exec ls",
            "host-exec ls -l --color",
            "host-exec sh -c exit",
        ] {
            let fast = parse_plain_host_exec(&words(line)).expect(line);
            let mut argv = vec![OsString::from("box")];
            argv.extend(words(line));
            let clap = Cli::try_parse_from(argv).unwrap().command;
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{line}");
        }
        for line in ["host-exec --help", "host-exec -- ls", "run dev -- true"] {
            assert!(parse_plain_host_exec(&words(line)).is_none(), "{line}");
        }
    }
}
