# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_box_global_optspecs
    string join \n h/help V/version
end

function __fish_box_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_box_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_box_using_subcommand
    set -l cmd (__fish_box_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c box -n "__fish_box_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c box -n "__fish_box_needs_command" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_needs_command" -f -a "pull" -d 'Download an image from a registry into the shared layer store'
complete -c box -n "__fish_box_needs_command" -f -a "push" -d 'Upload an image of the store to a registry, unchanged (same digests)'
complete -c box -n "__fish_box_needs_command" -f -a "images" -d 'List the images in the store'
complete -c box -n "__fish_box_needs_command" -f -a "rmi" -d 'Remove images and the layers no other image or box uses'
complete -c box -n "__fish_box_needs_command" -f -a "save" -d 'Write images to a tar archive that podman, docker and skopeo load'
complete -c box -n "__fish_box_needs_command" -f -a "load" -d 'Load images from a tar archive (podman save, docker save, skopeo, box save)'
complete -c box -n "__fish_box_needs_command" -f -a "commit" -d 'Make an image of a stopped box: its image\'s layers plus one layer of its changes'
complete -c box -n "__fish_box_needs_command" -f -a "create" -d 'Create a box from an image or a distribution name'
complete -c box -n "__fish_box_needs_command" -f -a "enter" -d 'Open a shell (or run a command) in a box, starting it if needed'
complete -c box -n "__fish_box_needs_command" -f -a "run" -d 'Run one command in a box, with its exit status'
complete -c box -n "__fish_box_needs_command" -f -a "edit" -d 'Change a stopped box\'s volumes, devices, hostname or home (applied at its next start)'
complete -c box -n "__fish_box_needs_command" -f -a "list" -d 'List the boxes'
complete -c box -n "__fish_box_needs_command" -f -a "ls" -d 'List the boxes'
complete -c box -n "__fish_box_needs_command" -f -a "stop" -d 'Stop boxes and every process in them'
complete -c box -n "__fish_box_needs_command" -f -a "rm" -d 'Remove boxes, their data and their exports'
complete -c box -n "__fish_box_needs_command" -f -a "export" -d 'Export a box\'s binary or application to the host'
complete -c box -n "__fish_box_needs_command" -f -a "generate-entry" -d 'Add (or remove) a desktop menu entry that opens a terminal in a box'
complete -c box -n "__fish_box_needs_command" -f -a "assemble" -d 'Create, remove or list the boxes of a distrobox manifest (distrobox.ini)'
complete -c box -n "__fish_box_needs_command" -f -a "ephemeral" -d 'A temporary box: entered (or a command run in it), then removed with all it wrote'
complete -c box -n "__fish_box_needs_command" -f -a "upgrade" -d 'Upgrade the packages of boxes with their distribution\'s package manager'
complete -c box -n "__fish_box_needs_command" -f -a "host-exec" -d 'From inside a box: run a command on the host, with this terminal, directory and environment'
complete -c box -n "__fish_box_needs_command" -f -a "install-distrobox-names" -d 'Answer as `distrobox` (and `podman`, where there is none) for the tools that call them'
complete -c box -n "__fish_box_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c box -n "__fish_box_using_subcommand pull" -l platform -d 'Platform to pick from a multi-platform image, as os/arch[/variant]' -r
complete -c box -n "__fish_box_using_subcommand pull" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand pull" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand push" -l chunk-size -d 'Send blobs larger than SIZE in chunks of SIZE (`50M`, `512K`, bytes): for a registry behind a proxy that limits request bodies' -r
complete -c box -n "__fish_box_using_subcommand push" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand push" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand images" -l json -d 'Print a JSON array instead of a table'
complete -c box -n "__fish_box_using_subcommand images" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand images" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand rmi" -s a -l all -d 'Remove every image'
complete -c box -n "__fish_box_using_subcommand rmi" -s f -l force -d 'Remove images even when boxes were created from them (their layers are kept), and every reference of a digest that several have'
complete -c box -n "__fish_box_using_subcommand rmi" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand rmi" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand save" -s o -l output -d 'Write to FILE (replaced only once the archive is complete) instead of standard output' -r -F
complete -c box -n "__fish_box_using_subcommand save" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand save" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand load" -s i -l input -d 'Read the archive from FILE instead of standard input' -r -F
complete -c box -n "__fish_box_using_subcommand load" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand load" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand commit" -l compression -d 'How to compress the new layer' -r -f -a "gzip\t''
zstd\t''"
complete -c box -n "__fish_box_using_subcommand commit" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand commit" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand create" -s n -l name -d 'Name of the box' -r
complete -c box -n "__fish_box_using_subcommand create" -s i -l image -d 'Image reference or distribution name (`ubuntu`, `trixie`, `fedora:41`, ...)' -r
complete -c box -n "__fish_box_using_subcommand create" -s c -l clone -d 'Make the box as a copy of this stopped box (its files, packages and record); the other flags change the copy (more volumes and devices, another hostname or home, packages and hooks run in it)' -r
complete -c box -n "__fish_box_using_subcommand create" -l hostname -d 'Hostname inside the box (default: the host\'s)' -r
complete -c box -n "__fish_box_using_subcommand create" -s H -l home -d 'Use DIR as the home directory inside the box (the host home is still mounted)' -r -F
complete -c box -n "__fish_box_using_subcommand create" -s v -l volume -d 'Bind-mount a host path into the box: SRC:DST[:ro]' -r
complete -c box -n "__fish_box_using_subcommand create" -l platform -d 'Platform to pick from a multi-platform image, as os/arch[/variant]' -r
complete -c box -n "__fish_box_using_subcommand create" -l device -d 'Give the box a CDI device of the host: VENDOR/CLASS=NAME, e.g. nvidia.com/gpu=all (repeatable; specs from /etc/cdi and /var/run/cdi, or BOX_CDI_SPEC_DIRS, read at each start of the box)' -r
complete -c box -n "__fish_box_using_subcommand create" -l additional-packages -d 'Also install these packages when provisioning the box (a space-separated list; repeatable; default: `additional-packages` in config.toml; `-ap` as in distrobox)' -r
complete -c box -n "__fish_box_using_subcommand create" -l pre-init-hooks -d 'Shell command run as root in the box before its packages are installed (repeatable; default: `pre-init-hooks` in config.toml)' -r
complete -c box -n "__fish_box_using_subcommand create" -l init-hooks -d 'Shell command run as root in the box after its packages are installed (repeatable; default: `init-hooks` in config.toml)' -r
complete -c box -n "__fish_box_using_subcommand create" -l provision-set -d 'What provisioning installs: `full` (shell tools, graphics, audio, fonts) or `base` (shell and build tools only, a fraction of the download; default: `provision-set` in config.toml, else full)' -r -f -a "full\t'Everything a desktop session needs: shell tools, graphics, audio, fonts'
base\t'Shell and build tools only: no graphics, audio and font packages'"
complete -c box -n "__fish_box_using_subcommand create" -s p -l pull -d 'Pull the image even if it is already in the store'
complete -c box -n "__fish_box_using_subcommand create" -s Y -l yes -d 'Do not ask for confirmation'
complete -c box -n "__fish_box_using_subcommand create" -l nvidia -d 'Give the box the host\'s NVIDIA GPUs through their CDI spec (default: whenever the host has one)'
complete -c box -n "__fish_box_using_subcommand create" -l no-nvidia -d 'Leave the host\'s NVIDIA GPUs out even when the host has their CDI spec'
complete -c box -n "__fish_box_using_subcommand create" -l no-entry -d 'Do not add a desktop menu entry for the box'
complete -c box -n "__fish_box_using_subcommand create" -s d -l dry-run -d 'Print the namespace and mount plan without creating anything'
complete -c box -n "__fish_box_using_subcommand create" -l no-provision -d 'Install nothing in the box (default: install what it lacks, see `provision` in config.toml)'
complete -c box -n "__fish_box_using_subcommand create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c box -n "__fish_box_using_subcommand create" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand enter" -s n -l name -d 'The box to enter (as distrobox spells it)' -r
complete -c box -n "__fish_box_using_subcommand enter" -s u -l user -d 'Enter as this user of the box (a name or uid; `root` is the box\'s root)' -r
complete -c box -n "__fish_box_using_subcommand enter" -l no-workdir -l nw -d 'Start in the box\'s home instead of the current directory (`-nw` as in distrobox)'
complete -c box -n "__fish_box_using_subcommand enter" -s Y -l yes -d 'Create the box without asking if it does not exist'
complete -c box -n "__fish_box_using_subcommand enter" -s d -l dry-run -d 'Print the namespace and mount plan without entering'
complete -c box -n "__fish_box_using_subcommand enter" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand enter" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand run" -s u -l user -d 'Run as this user of the box (a name or uid; `root` is the box\'s root)' -r
complete -c box -n "__fish_box_using_subcommand run" -l no-workdir -l nw -d 'Start in the box\'s home instead of the current directory'
complete -c box -n "__fish_box_using_subcommand run" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand run" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand edit" -s v -l volume -d 'Add a volume: bind-mount a host path into the box, SRC:DST[:ro] (repeatable; one at a DST the box has replaces it)' -r
complete -c box -n "__fish_box_using_subcommand edit" -l remove-volume -d 'Remove the volume at this path in the box (repeatable)' -r
complete -c box -n "__fish_box_using_subcommand edit" -l device -d 'Add a CDI device of the host: VENDOR/CLASS=NAME (repeatable)' -r
complete -c box -n "__fish_box_using_subcommand edit" -l remove-device -d 'Remove a CDI device the box was given (repeatable)' -r
complete -c box -n "__fish_box_using_subcommand edit" -l hostname -d 'Hostname inside the box' -r
complete -c box -n "__fish_box_using_subcommand edit" -s H -l home -d 'Use DIR as the home directory inside the box (the host home is still mounted)' -r -F
complete -c box -n "__fish_box_using_subcommand edit" -l nvidia -d 'Give the box the host\'s NVIDIA GPUs through their CDI spec'
complete -c box -n "__fish_box_using_subcommand edit" -l no-nvidia -d 'Leave the host\'s NVIDIA GPUs out even when the host has their CDI spec'
complete -c box -n "__fish_box_using_subcommand edit" -l auto-nvidia -d 'Give the box the host\'s NVIDIA GPUs whenever the host has their CDI spec (what a box without --nvidia or --no-nvidia gets)'
complete -c box -n "__fish_box_using_subcommand edit" -l no-hostname -d 'Use the host\'s hostname inside the box again'
complete -c box -n "__fish_box_using_subcommand edit" -l no-home -d 'Use your own home inside the box again'
complete -c box -n "__fish_box_using_subcommand edit" -s d -l dry-run -d 'Print the plan of the box\'s next start with the change, and change nothing'
complete -c box -n "__fish_box_using_subcommand edit" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand edit" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand list" -l json -d 'Print a JSON array instead of a table'
complete -c box -n "__fish_box_using_subcommand list" -l no-color -d 'Do not colour the output (also: NO_COLOR)'
complete -c box -n "__fish_box_using_subcommand list" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand list" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand ls" -l json -d 'Print a JSON array instead of a table'
complete -c box -n "__fish_box_using_subcommand ls" -l no-color -d 'Do not colour the output (also: NO_COLOR)'
complete -c box -n "__fish_box_using_subcommand ls" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand ls" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand stop" -s t -l time -d 'Seconds the box\'s processes get to end after SIGTERM and SIGHUP before they are killed' -r
complete -c box -n "__fish_box_using_subcommand stop" -s a -l all -d 'Stop every running box'
complete -c box -n "__fish_box_using_subcommand stop" -s Y -l yes -d 'Do not ask for confirmation (box asks only on a terminal)'
complete -c box -n "__fish_box_using_subcommand stop" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand stop" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand rm" -s t -l time -d 'With --force: seconds running boxes\' processes get to end after SIGTERM and SIGHUP before they are killed' -r
complete -c box -n "__fish_box_using_subcommand rm" -s a -l all -d 'Remove every box'
complete -c box -n "__fish_box_using_subcommand rm" -s f -l force -d 'Remove running boxes too, stopping them first'
complete -c box -n "__fish_box_using_subcommand rm" -s Y -l yes -d 'Do not ask for confirmation (box asks only on a terminal)'
complete -c box -n "__fish_box_using_subcommand rm" -s i -l interactive -d 'Ask for confirmation, and remove nothing when there is no terminal to ask on'
complete -c box -n "__fish_box_using_subcommand rm" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand rm" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand export" -s b -l bin -d 'Absolute path of a binary in the box to put on the host PATH' -r
complete -c box -n "__fish_box_using_subcommand export" -s a -l app -d 'Desktop application to put in the host menu: a .desktop file name or path, or an app name' -r
complete -c box -n "__fish_box_using_subcommand export" -s e -l export-path -d 'Host directory for the exported binary\'s wrapper (default: $XDG_BIN_HOME or ~/.local/bin)' -r -F
complete -c box -n "__fish_box_using_subcommand export" -l export-label -d 'Text appended to exported application names (default: " (on NAME)"; "none" for nothing)' -r
complete -c box -n "__fish_box_using_subcommand export" -s f -l force -d 'Replace existing host files that box did not write'
complete -c box -n "__fish_box_using_subcommand export" -s d -l delete -d 'Remove the export named by --bin or --app'
complete -c box -n "__fish_box_using_subcommand export" -s l -l list -d 'List the box\'s exports'
complete -c box -n "__fish_box_using_subcommand export" -l json -d 'With --list, print JSON'
complete -c box -n "__fish_box_using_subcommand export" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand export" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand generate-entry" -s d -l delete -d 'Remove the entry instead'
complete -c box -n "__fish_box_using_subcommand generate-entry" -s f -l force -d 'Replace a file at the entry\'s path that box did not write'
complete -c box -n "__fish_box_using_subcommand generate-entry" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand generate-entry" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand assemble; and not __fish_seen_subcommand_from create rm list help" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand assemble; and not __fish_seen_subcommand_from create rm list help" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand assemble; and not __fish_seen_subcommand_from create rm list help" -f -a "create" -d 'Create the manifest\'s boxes (those that exist are kept unless replaced)'
complete -c box -n "__fish_box_using_subcommand assemble; and not __fish_seen_subcommand_from create rm list help" -f -a "rm" -d 'Remove the manifest\'s boxes and their exports (asks first on a terminal, as `box rm` does)'
complete -c box -n "__fish_box_using_subcommand assemble; and not __fish_seen_subcommand_from create rm list help" -f -a "list" -d 'List the manifest\'s boxes and whether they exist'
complete -c box -n "__fish_box_using_subcommand assemble; and not __fish_seen_subcommand_from create rm list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from create" -s f -l file -d 'The manifest: a path or an https:// URL (default: ./box.ini if present, else ./distrobox.ini)' -r
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from create" -s n -l name -d 'Only the box of this section' -r
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from create" -s d -l dry-run -d 'Say what would be done, and do nothing'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from create" -s R -l replace -d 'Replace boxes that exist (once their new image is pulled)'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from create" -l locked -d 'Create from the image digests recorded in FILE.lock'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from rm" -s f -l file -d 'The manifest: a path or an https:// URL (default: ./box.ini if present, else ./distrobox.ini)' -r
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from rm" -s n -l name -d 'Only the box of this section' -r
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from rm" -s d -l dry-run -d 'Say what would be done, and do nothing'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from rm" -s F -l force -d 'Remove running boxes too, stopping them first (on a terminal box asks instead)'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from rm" -s Y -l yes -d 'Do not ask for confirmation (running boxes still need --force)'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from list" -s f -l file -d 'The manifest: a path or an https:// URL (default: ./box.ini if present, else ./distrobox.ini)' -r
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from list" -s n -l name -d 'Only the box of this section' -r
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from list" -s d -l dry-run -d 'Say what would be done, and do nothing'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create the manifest\'s boxes (those that exist are kept unless replaced)'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove the manifest\'s boxes and their exports (asks first on a terminal, as `box rm` does)'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the manifest\'s boxes and whether they exist'
complete -c box -n "__fish_box_using_subcommand assemble; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c box -n "__fish_box_using_subcommand ephemeral" -s i -l image -d 'Image reference or distribution name (`ubuntu`, `trixie`, ...)' -r
complete -c box -n "__fish_box_using_subcommand ephemeral" -s n -l name -d 'Name of the temporary box (default: ephemeral-XXXXXXXX)' -r
complete -c box -n "__fish_box_using_subcommand ephemeral" -l hostname -d 'Hostname inside the box (default: the host\'s)' -r
complete -c box -n "__fish_box_using_subcommand ephemeral" -s H -l home -d 'Use DIR as the home directory inside the box (the host home is still mounted)' -r -F
complete -c box -n "__fish_box_using_subcommand ephemeral" -s v -l volume -d 'Bind-mount a host path into the box: SRC:DST[:ro]' -r
complete -c box -n "__fish_box_using_subcommand ephemeral" -l platform -d 'Platform to pick from a multi-platform image, as os/arch[/variant]' -r
complete -c box -n "__fish_box_using_subcommand ephemeral" -l device -d 'Give the box a CDI device of the host: VENDOR/CLASS=NAME, e.g. nvidia.com/gpu=all (repeatable; specs from /etc/cdi and /var/run/cdi, or BOX_CDI_SPEC_DIRS, read at each start of the box)' -r
complete -c box -n "__fish_box_using_subcommand ephemeral" -l additional-packages -d 'Also install these packages when provisioning the box (a space-separated list; repeatable; default: `additional-packages` in config.toml; `-ap` as in distrobox)' -r
complete -c box -n "__fish_box_using_subcommand ephemeral" -l pre-init-hooks -d 'Shell command run as root in the box before its packages are installed (repeatable; default: `pre-init-hooks` in config.toml)' -r
complete -c box -n "__fish_box_using_subcommand ephemeral" -l init-hooks -d 'Shell command run as root in the box after its packages are installed (repeatable; default: `init-hooks` in config.toml)' -r
complete -c box -n "__fish_box_using_subcommand ephemeral" -l provision-set -d 'What provisioning installs: `full` (shell tools, graphics, audio, fonts) or `base` (shell and build tools only, a fraction of the download; default: `provision-set` in config.toml, else full)' -r -f -a "full\t'Everything a desktop session needs: shell tools, graphics, audio, fonts'
base\t'Shell and build tools only: no graphics, audio and font packages'"
complete -c box -n "__fish_box_using_subcommand ephemeral" -s p -l pull -d 'Pull the image even if it is already in the store'
complete -c box -n "__fish_box_using_subcommand ephemeral" -s Y -l yes -d 'Do not ask before pulling'
complete -c box -n "__fish_box_using_subcommand ephemeral" -l nvidia -d 'Give the box the host\'s NVIDIA GPUs through their CDI spec (default: whenever the host has one)'
complete -c box -n "__fish_box_using_subcommand ephemeral" -l no-nvidia -d 'Leave the host\'s NVIDIA GPUs out even when the host has their CDI spec'
complete -c box -n "__fish_box_using_subcommand ephemeral" -l no-provision -d 'Install nothing in the box (default: install what it lacks, see `provision` in config.toml)'
complete -c box -n "__fish_box_using_subcommand ephemeral" -l no-workdir -l nw -d 'Start in the box\'s home instead of the current directory'
complete -c box -n "__fish_box_using_subcommand ephemeral" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c box -n "__fish_box_using_subcommand ephemeral" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand upgrade" -s a -l all -d 'Upgrade every box'
complete -c box -n "__fish_box_using_subcommand upgrade" -l running -d 'With --all, only the boxes that are running'
complete -c box -n "__fish_box_using_subcommand upgrade" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand upgrade" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand host-exec" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand host-exec" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand install-distrobox-names" -l prefix -d 'The directory for the links (default: the first of /usr/local/bin, ~/.local/bin that is on PATH and writable)' -r -F
complete -c box -n "__fish_box_using_subcommand install-distrobox-names" -l remove -d 'Remove box\'s links instead (only links to box: a real distrobox stays)'
complete -c box -n "__fish_box_using_subcommand install-distrobox-names" -s h -l help -d 'Print help'
complete -c box -n "__fish_box_using_subcommand install-distrobox-names" -s V -l version -d 'Print version'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "pull" -d 'Download an image from a registry into the shared layer store'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "push" -d 'Upload an image of the store to a registry, unchanged (same digests)'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "images" -d 'List the images in the store'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "rmi" -d 'Remove images and the layers no other image or box uses'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "save" -d 'Write images to a tar archive that podman, docker and skopeo load'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "load" -d 'Load images from a tar archive (podman save, docker save, skopeo, box save)'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "commit" -d 'Make an image of a stopped box: its image\'s layers plus one layer of its changes'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "create" -d 'Create a box from an image or a distribution name'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "enter" -d 'Open a shell (or run a command) in a box, starting it if needed'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "run" -d 'Run one command in a box, with its exit status'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "edit" -d 'Change a stopped box\'s volumes, devices, hostname or home (applied at its next start)'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "list" -d 'List the boxes'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "stop" -d 'Stop boxes and every process in them'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "rm" -d 'Remove boxes, their data and their exports'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "export" -d 'Export a box\'s binary or application to the host'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "generate-entry" -d 'Add (or remove) a desktop menu entry that opens a terminal in a box'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "assemble" -d 'Create, remove or list the boxes of a distrobox manifest (distrobox.ini)'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "ephemeral" -d 'A temporary box: entered (or a command run in it), then removed with all it wrote'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "upgrade" -d 'Upgrade the packages of boxes with their distribution\'s package manager'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "host-exec" -d 'From inside a box: run a command on the host, with this terminal, directory and environment'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "install-distrobox-names" -d 'Answer as `distrobox` (and `podman`, where there is none) for the tools that call them'
complete -c box -n "__fish_box_using_subcommand help; and not __fish_seen_subcommand_from pull push images rmi save load commit create enter run edit list stop rm export generate-entry assemble ephemeral upgrade host-exec install-distrobox-names help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c box -n "__fish_box_using_subcommand help; and __fish_seen_subcommand_from assemble" -f -a "create" -d 'Create the manifest\'s boxes (those that exist are kept unless replaced)'
complete -c box -n "__fish_box_using_subcommand help; and __fish_seen_subcommand_from assemble" -f -a "rm" -d 'Remove the manifest\'s boxes and their exports (asks first on a terminal, as `box rm` does)'
complete -c box -n "__fish_box_using_subcommand help; and __fish_seen_subcommand_from assemble" -f -a "list" -d 'List the manifest\'s boxes and whether they exist'
