//! `box assemble` end to end: distrobox manifests against the loopback registry, as the
//! unprivileged test user: create, list, dry runs, replace, the lockfile and `--locked`
//! after a tag moved, rm with exports, a manifest served over http from this machine, and
//! bad manifests that change nothing.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::Value;

use crate::common::boxes::{Boxes, list, ok, run_on_terminal, sh};
use crate::common::fixtures::busybox;
use crate::common::{Compression, Entry, Registry, TestEnv, User};

/// Push a busybox image whose /etc/version says `version` as `assemble/tool:latest`.
fn push_tool(version: &str) -> crate::common::PushedImage {
    busybox()
        .entries(
            &[
                Entry::dir("etc"),
                Entry::file("etc/version", format!("{version}\n")),
            ],
            Compression::Gzip,
        )
        .push(Registry::plain(), "assemble/tool", "latest")
}

/// Write a manifest file owned by the user; returns its path as a string.
fn manifest(env: &TestEnv, name: &str, text: &str) -> String {
    let path = env.home.join(name);
    env.write_user_file(&path, text, 0o644);
    path.to_str().unwrap().to_owned()
}

fn record(env: &TestEnv, name: &str) -> Value {
    let path = env.store().join("containers").join(name).join("box.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let object = record.as_object_mut().unwrap();
    object.remove("name");
    object.remove("created");
    record
}

fn lock_digests(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{path}.lock")).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    value["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_manifest_creates_locks_replaces_and_removes_its_boxes() {
    let env = TestEnv::new("assemble", User::BoxTest);
    let _boxes = Boxes(&env);
    let v1 = push_tool("1");
    let file = manifest(
        &env,
        "distrobox.ini",
        &format!(
            "# two boxes\n[alpha]\nimage={image}\nhostname=alpha-host\ninit=false\nnvidia=false\nroot=false\npull=false\n\n[beta] # the second\ninclude=alpha\nhostname=beta-host\nstart_now=true\nexported_bins=\"/bin/sh\"\nexported_bins_path=\"~/bin-out\"\n",
            image = v1.reference
        ),
    );

    ok(&env, &["assemble", "list", "--file", &file])
        .stdout_has("alpha")
        .stdout_has("beta");
    ok(&env, &["assemble", "create", "--dry-run", "--file", &file])
        .stdout_has("Would create box `alpha`")
        .stdout_has("  hostname: beta-host")
        .stdout_has(&format!(
            "  export: /bin/sh as {}",
            env.home.join("bin-out/sh").display()
        ))
        .stdout_has("  start it");
    assert!(list(&env).is_empty(), "--dry-run created something");

    let out = ok(&env, &["assemble", "create", "--file", &file]);
    out.stdout_has("Created box alpha.")
        .stdout_has("Created box beta.");
    let status = |name: &str| {
        list(&env)
            .iter()
            .find(|b| b["name"] == name)
            .map(|b| b["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("beta").as_deref(), Some("running"), "start_now");
    ok(&env, &["run", "alpha", "--", "uname", "-n"]).stdout_has("alpha-host");
    ok(&env, &["run", "beta", "--", "uname", "-n"]).stdout_has("beta-host");
    let wrapper = env.home.join("bin-out/sh");
    assert!(wrapper.exists(), "exported_bins went nowhere:\n{out}");

    // The equivalent commands give the same record.
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--hostname",
            "alpha-host",
            "--image",
            &v1.reference,
            "same",
        ],
    );
    assert_eq!(record(&env, "alpha"), record(&env, "same"));
    ok(&env, &["rm", "--yes", "same"]);

    // The lockfile pins each box to the digest its tag resolved to.
    let v1_digest = record(&env, "alpha")["image_digest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        lock_digests(&file),
        [
            ("alpha".into(), v1_digest.clone()),
            ("beta".into(), v1_digest.clone())
        ]
    );

    // Existing boxes are kept unless replaced.
    ok(&env, &["assemble", "create", "--file", &file]).stdout_has("Kept box alpha.");

    // The tag moves; --locked still gives the old content, a plain run the new one.
    let v2 = push_tool("2");
    assert_ne!(v1.digest, v2.digest);
    ok(
        &env,
        &[
            "assemble",
            "create",
            "--locked",
            "--replace",
            "--file",
            &file,
        ],
    )
    .stdout_has("Replaced box alpha.");
    ok(&env, &["run", "alpha", "--", "cat", "/etc/version"]).stdout_has("1");
    ok(
        &env,
        &[
            "assemble",
            "create",
            "--replace",
            "--file",
            &file,
            "--name",
            "alpha",
        ],
    )
    .stdout_has("Replaced box alpha.");
    ok(&env, &["run", "alpha", "--", "cat", "/etc/version"]).stdout_has("2");
    let digests = lock_digests(&file);
    assert_ne!(digests[0].1, v1_digest, "the lockfile kept the old digest");
    assert_eq!(
        digests[1],
        ("beta".into(), v1_digest),
        "beta was not re-created"
    );

    // rm removes the manifest's boxes and their exports; a running one (beta) only with
    // --force when there is no terminal to ask on.
    assert_eq!(
        list(&env).iter().find(|b| b["name"] == "beta").unwrap()["status"],
        "running"
    );
    env.run(&["assemble", "rm", "--file", &file])
        .status(125)
        .stderr_has("boxes alpha, beta of the manifest are running, so nothing was removed")
        .stderr_has("box assemble rm --force");
    assert_eq!(list(&env).len(), 2);
    ok(&env, &["assemble", "rm", "--force", "--file", &file])
        .stdout_has("Removed box alpha.")
        .stdout_has("Removed box beta.");
    assert!(list(&env).is_empty());
    assert!(!wrapper.exists(), "the export outlived its box");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn bad_manifests_and_unsupported_features_change_nothing() {
    let env = TestEnv::new("assemble-bad", User::BoxTest);
    let _boxes = Boxes(&env);
    let image = push_tool("1").reference;
    let cases = [
        (
            "[a]\nimage=IMG\nfrobnicate=1\n",
            "bad.ini:3: unknown key `frobnicate` in box [a]",
        ),
        (
            "[a]\nimage=\"IMG\n",
            "bad.ini:2: the value of `image` in box [a] has no closing",
        ),
        (
            "[a]\ninclude=b\nimage=IMG\n[b]\ninclude=a\n",
            "include cycle",
        ),
        (
            "[a]\nimage=IMG\n[b]\nhostname=x\n",
            "bad.ini:3: box [b] has no image",
        ),
        (
            "[a]\nimage=IMG\n[a]\nimage=IMG\n",
            "bad.ini:3: box [a] is defined twice",
        ),
        // distrobox's own first example (images adapted), arch with systemd as init.
        (
            "[ubuntu]\nimage=IMG\ninit=false\nnvidia=false\npull=true\nroot=false\nreplace=true\nstart_now=false\n\n# You can add comments using this #\n[arch] # also inline comments are supported\nhome=/tmp/home\nimage=IMG\ninit=true\nstart_now=true\nnvidia=true\npull=true\nroot=false\nreplace=false\n",
            "bad.ini:14: box [arch] sets `init=true`, which box does not support",
        ),
        ("[a]\nimage=IMG\nroot=true\n", "sets `root=true`"),
        (
            "[a]\nimage=IMG\nadditional_flags=\"--cap-add=ALL\"\n",
            "bad.ini:3: box [a] --additional-flags: box has no equivalent of podman's `--cap-add=ALL`",
        ),
        // What `box create` refuses, refused before the first box is made (and by a dry
        // run, which said it would create them).
        (
            "[a]\nimage=IMG\n[b]\nimage=IMG\nhostname=bad_host\n",
            "bad.ini:3: box [b]: `bad_host` is not a valid hostname",
        ),
        (
            "[a]\nimage=IMG\n[b]\nimage=IMG\nvolume=/no/such/dir:/data\n",
            "bad.ini:3: box [b]: the volume source /no/such/dir does not exist",
        ),
    ];
    ok(&env, &["pull", &image]);
    let before = env.store_state();
    for (text, expected) in cases {
        let file = manifest(&env, "bad.ini", &text.replace("IMG", &image));
        env.run(&["assemble", "create", "--dry-run", "--file", &file])
            .status(125)
            .stderr_has(expected);
        let out = env.run(&["assemble", "create", "--file", &file]);
        out.status(125).stderr_has(expected).stderr_has("hint:");
        assert!(
            list(&env).is_empty(),
            "a bad manifest created a box:\n{out}"
        );
        env.assert_store_unchanged(&before, &out);
        assert!(!PathBuf::from(format!("{file}.lock")).exists());
    }
    // No manifest at all: says where it looked.
    env.run(&["assemble", "create"])
        .status(125)
        .stderr_has("distrobox.ini");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_manifest_is_read_from_an_http_address_on_this_machine() {
    let env = TestEnv::new("assemble-url", User::BoxTest);
    let _boxes = Boxes(&env);
    let body = "[fromurl]\nimage=example.org/some/image:1\n".to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // One request, answered with the manifest; the thread ends with it.
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let url = format!("http://127.0.0.1:{port}/distrobox.ini");
    ok(&env, &["assemble", "list", "--file", &url])
        .stdout_has("fromurl")
        .stdout_has("example.org/some/image:1");
    server.join().unwrap();
    // Plain http from elsewhere is refused before any request.
    env.run(&[
        "assemble",
        "list",
        "--file",
        "http://example.org/distrobox.ini",
    ])
    .status(125)
    .stderr_has("not served over https");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_manifest_of_thousands_of_chained_includes_reads_at_once() {
    // 20000 boxes (a 720 KB manifest), each including the one before. Expanding every box
    // again for every box that includes it took cubic time (a 222 KB one took 270 s of
    // CPU, this one hours); read once per box it is linear. The harness's timeout per
    // command is generous: this is not a measurement, only "at once" against "hours".
    const BOXES: usize = 20_000;
    let env = TestEnv::new("assemble-chain", User::BoxTest);
    let mut text = String::from("[b0]\nimage=example.org/base:1\nadditional_packages=git\n");
    for n in 1..BOXES {
        text.push_str(&format!("[b{n}]\ninclude=b{}\nhostname=h{n}\n", n - 1));
    }
    let file = manifest(&env, "chain.ini", &text);
    let out = ok(&env, &["assemble", "list", "--file", &file]);
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), BOXES, "{}", &out.stdout[..200]);
    let last = format!("b{}", BOXES - 1);
    assert!(
        rows.iter()
            .any(|row| row.starts_with(&last) && row.ends_with("example.org/base:1")),
        "the last box does not inherit the image of the first"
    );
}

/// Answer every request `listener` gets within `wait` with `answer`; returns how many it
/// got.
fn answer_for(
    listener: std::net::TcpListener,
    answer: String,
    wait: std::time::Duration,
) -> std::thread::JoinHandle<usize> {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + wait;
        let mut served = 0;
        while std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    let mut request = [0u8; 1024];
                    let _ = stream.read(&mut request);
                    let _ = stream.write_all(answer.as_bytes());
                    served += 1;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        served
    })
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_manifest_redirected_to_plain_http_elsewhere_is_refused() {
    let env = TestEnv::new("assemble-redirect", User::BoxTest);
    // The manifest, on plain HTTP at another address of this machine (another machine
    // as far as box can tell) when it has one.
    let body = "[redirected]\nimage=example.org/some/image:1\n";
    let elsewhere = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = elsewhere.local_addr().unwrap().port();
    let target = match crate::pull::non_loopback_address() {
        Some(ip) => format!("http://{}/m.ini", std::net::SocketAddr::new(ip, port)),
        None => "http://box-test.invalid/m.ini".to_owned(),
    };
    let wait = std::time::Duration::from_secs(5);
    let manifest_server = answer_for(
        elsewhere,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        wait,
    );
    // The address given: plain HTTP on this machine, which redirects there.
    let here = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/distrobox.ini", here.local_addr().unwrap());
    let redirector = answer_for(
        here,
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        wait,
    );
    env.run(&["assemble", "list", "--file", &url]).box_error(&[
        "redirected to plain HTTP",
        &target,
        "another machine",
    ]);
    assert_eq!(redirector.join().unwrap(), 1);
    assert_eq!(
        manifest_server.join().unwrap(),
        0,
        "the manifest was fetched over plain HTTP from elsewhere"
    );
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn an_unreadable_manifest_is_not_called_missing() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new("assemble-eacces", User::BoxTest);
    let file = manifest(&env, "locked.ini", "[a]\nimage=example.org/a:1\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = env.run(&["assemble", "list", "--file", &file]);
    out.box_error(&[&file, "permission denied", "not readable by you"]);
    assert!(!out.stderr.contains("check the path"), "{out}");
    let missing = env.home.join("missing.ini");
    env.run(&["assemble", "list", "--file", missing.to_str().unwrap()])
        .box_error(&["missing.ini", "check the path"]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn a_manifest_fails_before_making_anything_and_leaves_nothing_half_made() {
    let env = TestEnv::new("assemble-early", User::BoxTest);
    let _boxes = Boxes(&env);
    // Provisioning on: hooks run (busybox has no package manager, so nothing else does).
    env.set_provisioning(true);
    let image = push_tool("1").reference;
    ok(&env, &["pull", &image]);
    let before = env.store_state();
    let out_dir = env.home.join("bin-out");

    // Two boxes exporting a binary of one name to one place: refused before any box is
    // made, naming both.
    let file = manifest(
        &env,
        "clash.ini",
        &format!(
            "[one]\nimage={image}\nexported_bins=/bin/sh\nexported_bins_path={dir}\npre_init_hooks=sleep 2\n[two]\nimage={image}\nexported_bins=/bin/sh\nexported_bins_path={dir}\n",
            dir = out_dir.display()
        ),
    );
    let started = std::time::Instant::now();
    let out = env.run(&["assemble", "create", "--file", &file]);
    out.status(125)
        .stderr_has("box [two] exports /bin/sh, and box [one] exports a binary of that name")
        .stderr_has("nothing was made");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{out}"
    );
    assert!(list(&env).is_empty(), "{out}");
    assert!(!std::path::Path::new(&format!("{file}.lock")).exists());
    env.assert_store_unchanged(&before, &out);
    // The same in a dry run.
    env.run(&["assemble", "create", "--dry-run", "--file", &file])
        .status(125)
        .stderr_has("nothing was made");

    // A file of the user's where a wrapper would go: refused before anything is made.
    env.write_user_file(&out_dir.join("sh"), "the user's own\n", 0o755);
    let file = manifest(
        &env,
        "foreign.ini",
        &format!(
            "[one]\nimage={image}\nreplace=true\nexported_bins=/bin/sh\nexported_bins_path={}\n",
            out_dir.display()
        ),
    );
    let out = env.run(&["assemble", "create", "--file", &file]);
    out.status(125)
        .stderr_has("did not write it")
        .stderr_has("nothing was made");
    env.assert_store_unchanged(&before, &out);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("sh")).unwrap(),
        "the user's own\n"
    );
    // A clone of a box that is nowhere.
    let file = manifest(&env, "noclone.ini", "[copy]\nclone=nosuch\n");
    env.run(&["assemble", "create", "--file", &file])
        .status(125)
        .stderr_has(
            "box [copy] is a clone of box `nosuch`, which neither exists nor comes earlier",
        );

    // A box whose provisioning fails is removed again; the one made before it stays and
    // is in the lockfile; a clone's pre_init_hooks run (distrobox's clone example).
    let file = manifest(
        &env,
        "half.ini",
        &format!(
            "[first]\nimage={image}\npre_init_hooks=touch /first-hook\n[copy]\nclone=first\npre_init_hooks=touch /clone-hook\n[broken]\nimage={image}\npre_init_hooks=exit 3\nexported_bins=/bin/sh\nexported_bins_path={dir}\n",
            dir = env.home.join("bin-half").display()
        ),
    );
    let out = env.run(&["assemble", "create", "--file", &file]);
    out.status(125)
        .stderr_has("box [broken] was not made whole, and was removed again");
    let names: Vec<String> = list(&env)
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["copy", "first"], "{out}");
    let digests = lock_digests(&file);
    assert_eq!(digests.len(), 1, "{digests:?}");
    assert_eq!(digests[0].0, "first");
    sh(&env, "copy", "test -e /first-hook && test -e /clone-hook").success();
    sh(&env, "first", "test -e /clone-hook").status(1);
    assert!(!env.home.join("bin-half/sh").exists());

    // rm on a terminal asks first, naming the running boxes.
    let (status, screen) = run_on_terminal(
        &env,
        &["assemble", "rm", "--file", &file],
        &["n\n"],
        std::time::Duration::ZERO,
    );
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(
        screen.contains("Boxes first, copy are running and will be stopped")
            && screen.contains("Nothing removed."),
        "{screen}"
    );
    assert_eq!(list(&env).len(), 2);
    let (status, screen) = run_on_terminal(
        &env,
        &["assemble", "rm", "--file", &file],
        &["y\n"],
        std::time::Duration::ZERO,
    );
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(list(&env).is_empty(), "{screen}");
}
