//! Installing box: the .deb and .rpm `packaging/build` makes (file lists, man pages read
//! with `man -l`, completions loaded in bash, zsh and fish, `box --version` from the
//! unpacked tree), the static binary in a busybox box and a Debian box, and the install
//! script into a prefix and out again.
//!
//! The packages are built once per test process ([`built`]), in a target directory of
//! their own beside the tests' (cargo holds the tests' one locked while they run); a
//! second run rebuilds only what changed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::boxes::{Boxes, box_from, ok, shell_as};
use crate::common::{Fixture, TestEnv, User, box_bin, require_root};

/// What `packaging/build` made.
struct Built {
    deb: PathBuf,
    rpm: PathBuf,
    /// The tarball's tree, unpacked as the tarball has it (install.sh, bin/, share/).
    stage: PathBuf,
    tarball: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        require_root();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        // target/debug/box -> target/package-build
        let target = Path::new(box_bin())
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("package-build");
        let out = Command::new(repo.join("packaging/build"))
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("running packaging/build");
        assert!(
            out.status.success(),
            "packaging/build failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dist = target.join("dist");
        let find = |suffix: &str| {
            std::fs::read_dir(&dist)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(suffix))
                .unwrap_or_else(|| panic!("no *{suffix} in {}", dist.display()))
        };
        let tarball = find("-linux.tar.gz");
        let stage = PathBuf::from(tarball.to_string_lossy().trim_end_matches(".tar.gz"));
        // Readable by the test users (the stage is what they install from).
        for dir in [&target, &dist, &stage] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Built {
            deb: find(".deb"),
            rpm: find(".rpm"),
            stage,
            tarball,
        }
    })
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn has_all(listing: &str, what: &str, paths: &[&str]) {
    for path in paths {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{what} lacks {path}:\n{listing}"
        );
    }
}

/// The man pages every package and the tarball carry (one per command, and box(1)).
const PAGES: &[&str] = &[
    "man1/box.1.gz",
    "man1/box-create.1.gz",
    "man1/box-enter.1.gz",
    "man1/box-doctor.1.gz",
    "man1/box-completion.1.gz",
];

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_deb_installs_the_binary_pages_completions_licence_and_apparmor_profile() {
    let built = built();
    let deb = built.deb.to_str().unwrap();
    let listing = run("dpkg-deb", &["-c", deb]);
    has_all(
        &listing,
        "the .deb",
        &[
            "./usr/bin/box",
            "./usr/share/bash-completion/completions/box",
            "./usr/share/zsh/vendor-completions/_box",
            "./usr/share/fish/vendor_completions.d/box.fish",
            "./usr/share/doc/box/copyright",
            "./usr/share/box/apparmor/box",
            "./usr/share/box/apparmor/install-profile",
        ],
    );
    for page in PAGES {
        has_all(&listing, "the .deb", &[&format!("./usr/share/man/{page}")]);
    }
    assert!(
        !listing.contains("./etc/"),
        "the AppArmor profile goes to /etc only where AppArmor 4 is, by the postinst:\n{listing}"
    );
    let recommends = run("dpkg-deb", &["-f", deb, "Recommends"]);
    assert!(recommends.contains("uidmap"), "{recommends}");
    let postinst = run("dpkg-deb", &["-I", deb, "postinst"]);
    assert!(postinst.contains("install-profile install"), "{postinst}");

    let root = tempfile::tempdir().unwrap();
    run("dpkg-deb", &["-x", deb, root.path().to_str().unwrap()]);
    let copyright =
        std::fs::read_to_string(root.path().join("usr/share/doc/box/copyright")).unwrap();
    assert!(copyright.contains("Apache License"), "{copyright}");
    // The packaged profile is the one box doctor prints for /usr/bin/box.
    let profile = std::fs::read_to_string(root.path().join("usr/share/box/apparmor/box")).unwrap();
    assert!(
        profile.contains("profile box /usr/bin/box flags=(unconfined) {\n  userns,"),
        "{profile}"
    );
    check_unpacked(root.path());
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_rpm_installs_the_same_in_fedoras_places() {
    let built = built();
    let rpm = built.rpm.to_str().unwrap();
    let listing = run("rpm", &["-qlp", rpm]);
    has_all(
        &listing,
        "the .rpm",
        &[
            "/usr/bin/box",
            "/usr/share/bash-completion/completions/box",
            "/usr/share/zsh/site-functions/_box",
            "/usr/share/fish/vendor_completions.d/box.fish",
            "/usr/share/licenses/box/LICENSE",
            "/usr/share/box/apparmor/box",
        ],
    );
    for page in PAGES {
        has_all(&listing, "the .rpm", &[&format!("/usr/share/man/{page}")]);
    }
    let recommends = run("rpm", &["-qp", "--recommends", rpm]);
    assert!(recommends.contains("shadow-utils"), "{recommends}");
    let scripts = run("rpm", &["-qp", "--scripts", rpm]);
    assert!(scripts.contains("install-profile install"), "{scripts}");
    assert!(scripts.contains("install-profile remove"), "{scripts}");
    // No shared library needed: the binary is static.
    let requires = run("rpm", &["-qp", "--requires", rpm]);
    assert!(!requires.contains("libc.so"), "{requires}");
}

/// What an unpacked package tree must do: the binary runs, the man pages read, the
/// completions load in each shell and offer the names of boxes.
fn check_unpacked(root: &Path) {
    let bin = root.join("usr/bin/box");
    let version = run(bin.to_str().unwrap(), &["--version"]);
    assert_eq!(version.trim(), format!("box {}", env!("CARGO_PKG_VERSION")));
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "{said}"
    );
    let page = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(root.join("usr/share/man/man1/box.1.gz"))
        .env("MANWIDTH", "100")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&page.stdout);
    assert!(page.status.success(), "man -l failed: {text}");
    for section in [
        "SYNOPSIS",
        "EXAMPLES",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(text.contains(section), "box(1) has no {section}:\n{text}");
    }
    assert!(text.contains("box-doctor(1)"), "{text}");
    assert!(
        !text.contains("box-help"),
        "box(1) points to box-help(1):\n{text}"
    );
}

/// A box named `trixie-dev` for completions to offer, and the environment to ask in.
fn env_with_a_box(name: &str) -> TestEnv {
    let env = TestEnv::new(name, User::BoxTest);
    box_from(&env, Fixture::Busybox, "trixie-dev");
    env
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_packaged_completions_load_in_bash_zsh_and_fish_and_offer_box_names() {
    let built = built();
    let env = env_with_a_box("install-completions");
    let _boxes = Boxes(&env);
    let root = tempfile::Builder::new()
        .prefix("box-deb-")
        .tempdir_in(crate::common::TEST_ROOT)
        .unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    run(
        "dpkg-deb",
        &[
            "-x",
            built.deb.to_str().unwrap(),
            root.path().to_str().unwrap(),
        ],
    );
    let usr = root.path().join("usr");
    let with_path = format!("PATH={}:$PATH; export PATH; ", usr.join("bin").display());

    // bash: the function the script registers, called as bash calls it on TAB.
    let bash = format!(
        "{with_path}. {}; complete -p box; COMP_WORDS=(box enter tr); COMP_CWORD=2; \
         _clap_complete_box box tr enter; printf 'reply:%s\\n' \"${{COMPREPLY[@]}}\"",
        usr.join("share/bash-completion/completions/box").display()
    );
    let out = shell_as(
        &env,
        &format!(
            "bash --norc --noprofile -c '{}'",
            bash.replace('\'', "'\\''")
        ),
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("-F _clap_complete_box box"),
        "bash:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("reply:trixie-dev"),
        "bash:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // zsh: compinit finds _box in the vendor directory and maps box to it.
    let zsh = format!(
        "{with_path}fpath=({} $fpath); autoload -Uz compinit; compinit -u -D; print -r -- comp:${{_comps[box]}}; \
         autoload -Uz _box; whence -w _box",
        usr.join("share/zsh/vendor-completions").display()
    );
    let out = shell_as(&env, &format!("zsh -f -c '{}'", zsh.replace('\'', "'\\''")))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("comp:_box"),
        "zsh:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the zsh function asks box (its words, the index of the current one).
    let out = shell_as(
        &env,
        &format!(
            "{with_path}_CLAP_COMPLETE_INDEX=2 _CLAP_IFS='\n' BOX_COMPLETE=zsh box -- box enter tr"
        ),
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("trixie-dev"), "zsh's answer:\n{text}");

    // fish: its own completion machinery, from the script.
    let fish = format!(
        "{with_path} fish --no-config -c 'source {}; complete -C \"box enter tr\"; complete -C \"box ent\"'",
        usr.join("share/fish/vendor_completions.d/box.fish")
            .display()
    );
    let out = shell_as(&env, &fish).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("trixie-dev")),
        "fish:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines().any(|l| l.starts_with("enter")),
        "fish:\n{text}"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_static_binary_runs_in_a_busybox_box_and_a_debian_box() {
    let built = built();
    let bin_dir = built.stage.join("bin");
    for (fixture, name) in [(Fixture::Busybox, "bb"), (Fixture::Debian, "deb")] {
        let env = TestEnv::new(&format!("install-static-{name}"), User::BoxTest);
        let _boxes = Boxes(&env);
        let reference = fixture
            .push(crate::common::Registry::plain())
            .image
            .reference;
        ok(&env, &["pull", &reference]);
        let volume = format!("{}:/opt/static:ro", bin_dir.display());
        ok(
            &env,
            &[
                "create",
                "--no-entry",
                "--image",
                &reference,
                "--volume",
                &volume,
                name,
            ],
        );
        let out = ok(&env, &["run", name, "--", "/opt/static/box", "--version"]);
        assert_eq!(
            out.stdout.trim(),
            format!("box {}", env!("CARGO_PKG_VERSION")),
            "{out}"
        );
        // A command that looks the user up (the box's /etc/passwd, no NSS module) and
        // re-executes itself (the doctor's probe): it finishes with its own verdict.
        let out = env.run(&["run", name, "--", "/opt/static/box", "doctor", "--json"]);
        assert!(matches!(out.code(), Some(0) | Some(1)), "{out}");
        let checks = out.json();
        let ids = checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "subordinate-ids")
            .unwrap_or_else(|| panic!("no subordinate-ids check:\n{out}"));
        assert!(
            ids["detail"].as_str().unwrap().contains("boxtest"),
            "the user was not found by name in the box:\n{out}"
        );
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn the_install_script_installs_into_a_prefix_and_uninstalls_exactly_that() {
    let built = built();
    let env = TestEnv::new("install-script", User::BoxTest);
    let prefix = env.home.join(".local");
    // Something of the user's own under the prefix, which uninstall must leave.
    env.write_user_file(&prefix.join("bin/mine"), "#!/bin/sh\n", 0o755);
    let script = built.stage.join("install.sh");
    let prefix_arg = prefix.to_str().unwrap();
    let out = env.wait(
        &["install.sh"],
        env.command_of(&script, &["--prefix", prefix_arg])
            .spawn()
            .unwrap(),
    );
    out.success();
    out.stdout_has(&format!("installed in {prefix_arg}/bin/box"));
    let installed = [
        "bin/box",
        "share/man/man1/box.1.gz",
        "share/man/man1/box-doctor.1.gz",
        "share/bash-completion/completions/box",
        "share/zsh/site-functions/_box",
        "share/fish/vendor_completions.d/box.fish",
        "share/box/installed-files",
    ];
    for file in installed {
        assert!(
            prefix.join(file).is_file(),
            "{file} is not installed:\n{out}"
        );
    }
    let listed = std::fs::read_to_string(prefix.join("share/box/installed-files")).unwrap();
    assert!(
        listed.contains(&format!("{prefix_arg}/bin/box")),
        "{listed}"
    );

    // As the user would: PATH with ~/.local/bin, no MANPATH.
    let path = format!("PATH={prefix_arg}/bin:/usr/bin:/bin; export PATH; unset MANPATH; ");
    let out = shell_as(
        &env,
        &format!("{path}box --version && man -w box && man -w box-doctor"),
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{prefix_arg}/share/man/man1/box.1.gz")),
        "man -w box:\n{text}"
    );
    // bash-completion's loader and fish (its system configuration, which sets the
    // completion path) find the user's completions without setup.
    let out = shell_as(
        &env,
        &format!(
            "{path} bash --norc --noprofile -c '. /usr/share/bash-completion/bash_completion; _completion_loader box; complete -p box'; \
             fish -c 'complete -C \"box doc\"'"
        ),
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("_clap_complete_box box"),
        "bash:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines().any(|l| l.starts_with("doctor")),
        "fish:\n{text}"
    );

    // Uninstall: every file it wrote goes, the user's own stays.
    let out = env.wait(
        &["install.sh", "--uninstall"],
        env.command_of(&script, &["--uninstall", "--prefix", prefix_arg])
            .spawn()
            .unwrap(),
    );
    out.success();
    for file in installed {
        assert!(
            !prefix.join(file).exists(),
            "{file} is still there after --uninstall"
        );
    }
    assert!(prefix.join("bin/mine").is_file());
    // A second uninstall has nothing to do and says so.
    let again = env.wait(
        &["install.sh", "--uninstall"],
        env.command_of(&script, &["--uninstall", "--prefix", prefix_arg])
            .spawn()
            .unwrap(),
    );
    assert_eq!(again.code(), Some(1), "{again}");
    again.stderr_has("nothing to uninstall");
    assert!(built.tarball.is_file());
}
