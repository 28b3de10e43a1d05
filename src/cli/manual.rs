//! What the man pages say beyond `--help`: examples with what each does, and for `box(1)`
//! the environment, the files and the exit status. The generator (tests/it/generated.rs)
//! puts these sections after the options of the pages it draws from the clap tree, so
//! `man box` answers what `--help` has no room for.
//!
//! Invariant: every command line a verb's `--help` shows under "Examples:" is one of its
//! examples here (a test checks), so the two never tell different stories.

/// One example: the command line and what it does.
pub type Example = (&'static str, &'static str);

/// The examples of `box VERB` (`""` for `box` itself).
pub fn examples(verb: &str) -> &'static [Example] {
    match verb {
        "" => &[
            (
                "box create debian",
                "create a box named debian from Debian's image",
            ),
            (
                "box enter debian",
                "open your login shell in it, starting it if needed",
            ),
            (
                "box run debian -- make -j",
                "run one command in it, with its exit status",
            ),
            (
                "box export debian --bin /usr/bin/rg",
                "put a program of the box on your PATH",
            ),
            ("box doctor", "check what box needs on this host"),
        ],
        "pull" => &[
            ("box pull debian:trixie", "Docker Hub's Debian trixie image"),
            (
                "box pull quay.io/fedora/fedora:41",
                "an image of another registry",
            ),
            (
                "box pull --platform linux/arm64 alpine",
                "another platform's image of a multi-platform one",
            ),
        ],
        "images" => &[
            ("box images", "a table of the images in the store"),
            ("box images --json", "the same as JSON, for scripts"),
        ],
        "rmi" => &[
            (
                "box rmi debian:trixie",
                "remove an image and the layers nothing else uses",
            ),
            (
                "box rmi --all --force",
                "remove every image, even those boxes were made from",
            ),
        ],
        "create" => &[
            (
                "box create ubuntu",
                "a box named ubuntu from the catalogue's Ubuntu image",
            ),
            (
                "box create dev --image fedora:41",
                "a box named dev from an image",
            ),
            (
                "box create web --image debian:trixie --volume /srv:/srv:ro",
                "with a read-only host directory inside",
            ),
            (
                "box create copy --clone dev",
                "a copy of the stopped box dev",
            ),
            (
                "box create dev --image ubuntu --dry-run",
                "show the namespaces and mounts, create nothing",
            ),
        ],
        "enter" => &[
            (
                "box enter dev",
                "your login shell in box dev, in the current directory",
            ),
            ("box enter dev --user root", "a root shell in the box"),
            (
                "box enter dev -- htop",
                "run htop in the box on this terminal",
            ),
        ],
        "run" => &[
            (
                "box run dev -- make -j",
                "build in the box; box exits with make's status",
            ),
            (
                "box run dev --no-workdir -- ls",
                "start in the box's home instead of the current directory",
            ),
            (
                "box run dev --user root -- apt-get update",
                "as the box's root",
            ),
        ],
        "list" => &[
            ("box list", "a table of the boxes, their images and states"),
            ("box list --json", "the same as JSON, for scripts"),
        ],
        "stop" => &[
            ("box stop dev", "stop box dev and every process in it"),
            (
                "box stop --all --yes",
                "stop every running box without asking",
            ),
        ],
        "rm" => &[
            (
                "box rm dev",
                "remove box dev, its files, exports and menu entry",
            ),
            ("box rm --force dev", "stop it first if it runs"),
        ],
        "export" => &[
            (
                "box export dev --bin /usr/bin/rg",
                "a wrapper in ~/.local/bin that runs rg in the box",
            ),
            (
                "box export dev --app org.gnome.Calculator",
                "the application in your desktop menu",
            ),
            (
                "box export dev --delete --bin /usr/bin/rg",
                "remove that export",
            ),
            ("box export dev --list --json", "what box dev exported"),
        ],
        "generate-entry" => &[
            (
                "box generate-entry dev",
                "a menu entry that opens a terminal in box dev",
            ),
            ("box generate-entry dev --delete", "remove it"),
        ],
        "assemble" => &[
            (
                "box assemble create",
                "create the boxes of ./box.ini or ./distrobox.ini",
            ),
            (
                "box assemble create --file dev.ini --name tools --replace",
                "replace one box of a manifest",
            ),
            (
                "box assemble create --locked",
                "create from the digests recorded in the lockfile",
            ),
            (
                "box assemble rm --file https://example.org/distrobox.ini",
                "remove the boxes of a manifest on the web",
            ),
        ],
        "ephemeral" => &[
            (
                "box ephemeral --image debian:trixie",
                "a shell in a new box, removed when the shell ends",
            ),
            (
                "box ephemeral -i ubuntu -- make -j",
                "one command in a temporary box",
            ),
        ],
        "upgrade" => &[
            ("box upgrade dev", "upgrade the packages of box dev"),
            ("box upgrade --all --running", "upgrade every running box"),
        ],
        "host-exec" => &[
            (
                "box host-exec flatpak list",
                "from inside a box: flatpak of the host",
            ),
            ("box host-exec", "a login shell on the host"),
            (
                "sudo ln -s /usr/local/bin/box /usr/local/bin/podman",
                "in a box: `podman` runs the host's",
            ),
        ],
        "doctor" => &[
            (
                "box doctor",
                "check this host; the FAIL lines say what blocks box and how to fix it",
            ),
            (
                "box doctor --json | jq '.[] | select(.status != \"ok\")'",
                "what is not ok, for a script",
            ),
            (
                "box doctor --apparmor-profile | sudo tee /etc/apparmor.d/box-local",
                "the AppArmor profile for this box executable",
            ),
        ],
        "completion" => &[
            (
                "box completion bash > ~/.local/share/bash-completion/completions/box",
                "bash completion for your user",
            ),
            (
                "box completion zsh > ~/.zfunc/_box",
                "zsh completion (with `fpath+=(~/.zfunc)` before compinit)",
            ),
            (
                "box completion fish > ~/.config/fish/completions/box.fish",
                "fish completion",
            ),
        ],
        _ => &[],
    }
}

/// The environment variables box reads (for `box(1)`).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "XDG_DATA_HOME",
        "the store is $XDG_DATA_HOME/box (default ~/.local/share/box); exported applications go to its applications/ and icons/",
    ),
    (
        "XDG_CONFIG_HOME",
        "settings in $XDG_CONFIG_HOME/box (default ~/.config/box), and podman's registries.conf and auth.json under containers/",
    ),
    (
        "XDG_RUNTIME_DIR",
        "the state of running boxes in $XDG_RUNTIME_DIR/box; boxes get this directory (Wayland, audio, D-Bus sockets)",
    ),
    (
        "XDG_BIN_HOME",
        "where `box export --bin` puts wrappers (default ~/.local/bin)",
    ),
    (
        "BOX_DATA_HOME",
        "the data directory instead of XDG_DATA_HOME (exported wrappers and menu entries set it)",
    ),
    (
        "BOX_DEFAULT_IMAGE, BOX_DEFAULT_NAME, BOX_HOME_PREFIX, BOX_ALWAYS_PULL, BOX_SKIP_WORKDIR, BOX_NON_INTERACTIVE",
        "the settings of the same names in config.toml (default-image, ...), over the files",
    ),
    (
        "BOX_SYSTEM_CONFIG",
        "the system's settings file instead of /etc/box/config.toml",
    ),
    (
        "BOX_CDI_SPEC_DIRS",
        "the CDI spec directories, colon-separated, instead of /etc/cdi and /var/run/cdi",
    ),
    (
        "BOX_WORKDIR",
        "the directory in the box a command starts in (exported menu entries set it)",
    ),
    (
        "CONTAINERS_REGISTRIES_CONF",
        "the registries configuration instead of the usual files (as podman)",
    ),
    (
        "REGISTRY_AUTH_FILE, DOCKER_CONFIG",
        "credential files, as podman and docker read them",
    ),
    ("NO_COLOR", "no colour in tables when set and not empty"),
    (
        "BOX_COMPLETE",
        "set by the completion scripts when the shell asks box for completions",
    ),
];

/// The files box reads and writes (for `box(1)`).
pub const FILES: &[(&str, &str)] = &[
    (
        "~/.local/share/box/",
        "the store: image layers, image records, boxes (see XDG_DATA_HOME)",
    ),
    (
        "/etc/box/config.toml, ~/.config/box/config.toml",
        "settings: the system's, then the user's",
    ),
    (
        "~/.config/box/distros.d/*.toml",
        "additions to the catalogue of distributions",
    ),
    (
        "$XDG_RUNTIME_DIR/box/",
        "running boxes: holder records and locks",
    ),
    (
        "/etc/subuid, /etc/subgid",
        "your subordinate ids; box maps them into boxes with newuidmap and newgidmap",
    ),
    (
        "/etc/containers/registries.conf, ~/.config/containers/registries.conf",
        "registry mirrors, aliases and short names (containers-registries.conf(5))",
    ),
    (
        "$XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json",
        "registry credentials",
    ),
    (
        "/etc/cdi/, /var/run/cdi/",
        "CDI specs of the host's devices (--device, --nvidia)",
    ),
    (
        "/etc/apparmor.d/box",
        "the AppArmor profile that lets /usr/bin/box use user namespaces where AppArmor restricts them",
    ),
];

/// The exit statuses of `box VERB` (`""` for `box` itself).
pub fn exit_status(verb: &str) -> &'static [(&'static str, &'static str)] {
    const COMMON: &[(&str, &str)] = &[
        ("0", "success"),
        ("2", "a usage error (an unknown option, a missing argument)"),
        (
            "125",
            "box itself failed; the message says what, and a hint what to do",
        ),
    ];
    match verb {
        "" => &[
            ("0", "success"),
            ("1", "box doctor found something that blocks box"),
            ("2", "a usage error (an unknown option, a missing argument)"),
            (
                "125",
                "box itself failed; the message says what, and a hint what to do",
            ),
            (
                "126",
                "box run and box enter: the command cannot be executed in the box",
            ),
            (
                "127",
                "box run and box enter: the command is not found in the box",
            ),
            (
                "other",
                "box run and box enter: the command's own status (128+N for signal N)",
            ),
        ],
        "run" | "enter" | "ephemeral" | "host-exec" => &[
            (
                "status of the command",
                "the command's own status (128+N when signal N ended it)",
            ),
            ("2", "a usage error"),
            ("125", "box itself failed (starting or joining the box)"),
            ("126", "the command cannot be executed"),
            ("127", "the command is not found"),
        ],
        "doctor" => &[
            (
                "0",
                "nothing blocks box (warn lines may say what it does without)",
            ),
            ("1", "something blocks box: see the FAIL lines"),
            ("2", "a usage error"),
        ],
        _ => COMMON,
    }
}

/// The EXAMPLES of a verb's man page: the command lines its `--help` shows under
/// "Examples:" (cli.rs stays the source of those), each with what it does from
/// [`examples`] when listed there (else the note `--help` gives), then the rest of
/// [`examples`]. `verb` is `""` for `box` itself.
pub fn examples_of(verb: &str, after_help: Option<&str>) -> Vec<(String, String)> {
    let listed = examples(verb);
    let mut out: Vec<(String, String)> = Vec::new();
    let from_help = after_help
        .and_then(|text| text.split_once("Examples:"))
        .map(|(_, lines)| lines)
        .unwrap_or("");
    for line in from_help.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // `box host-exec               (a login shell on the host)`: command, then a note.
        let (command, note) = match line.split_once("  ") {
            Some((command, note)) => (command.trim(), note.trim().trim_matches(['(', ')'])),
            None => (line, ""),
        };
        let what = listed
            .iter()
            .find(|(c, _)| *c == command)
            .map_or(note, |(_, what)| *what);
        out.push((command.to_owned(), what.to_owned()));
    }
    for (command, what) in listed {
        if !out.iter().any(|(c, _)| c == command) {
            out.push(((*command).to_owned(), (*what).to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_examples_come_first_with_what_they_do_then_the_others() {
        let help = "Examples:\n  box host-exec flatpak list\n  box host-exec               (a login shell on the host)\n  box host-exec new thing\n";
        let merged = examples_of("host-exec", Some(help));
        assert_eq!(
            merged[0],
            (
                "box host-exec flatpak list".to_owned(),
                "from inside a box: flatpak of the host".to_owned()
            )
        );
        assert_eq!(merged[1].0, "box host-exec");
        // Not in the table: the command alone.
        assert_eq!(
            merged[2],
            ("box host-exec new thing".to_owned(), String::new())
        );
        // The rest of the table follows, once each.
        assert_eq!(merged.len(), 4);
        assert!(merged[3].0.starts_with("sudo ln -s"));
        assert_eq!(examples_of("nothing", None), Vec::new());
    }
}
