//! CDI devices end to end, as the unprivileged user: synthetic specs of the tests' own
//! vendor (`example.com`), in YAML and JSON, in a spec directory named by
//! `BOX_CDI_SPEC_DIRS`, with a device node made by mknod (1:3, as /dev/null), a library
//! directory, variables, NVIDIA's hooks (`update-ldcache`, `create-symlinks`) and a hook
//! program of another vendor; each checked from inside the box. Then a spec change at the
//! next start, and the errors: a malformed spec (file and field), an unknown device,
//! `--nvidia` without NVIDIA's spec; and NVIDIA's GPUs added automatically when their
//! spec (a synthetic one here) is there, unless `--no-nvidia`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::boxes::{Boxes, box_from, list, ok, sh};
use crate::common::{Fixture, Registry, TestEnv, User};

/// A root-owned, world-readable file (the test's spec directory is the host's, not the
/// user's).
fn write_root_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// The host's zlib (its soname, `libz.so.1`), to be found by the box's `ldconfig`.
fn host_zlib() -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join("libz.so.1"))
    .find(|p| p.exists())
    .expect("the host has zlib (libz.so.1)")
}

/// The spec directory with the device node and library directory its specs name; returns
/// the directory of specs.
fn vendor_setup(env: &TestEnv, gpu_env: &str) -> PathBuf {
    let specs = env.dir.join("cdi");
    let vendor = env.dir.join("vendor");
    std::fs::create_dir_all(vendor.join("lib")).unwrap();
    std::fs::copy(host_zlib(), vendor.join("lib/libz.so.1")).unwrap();
    let node = vendor.join("gpu0");
    if !node.exists() {
        let status = std::process::Command::new("mknod")
            .args(["-m", "0666"])
            .arg(&node)
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(status.success(), "mknod {}", node.display());
    }
    write_gpu_spec(env, &specs, gpu_env, false);
    // A second vendor/class, in JSON: a variable and a node under /run (the box's tmpfs).
    write_root_file(
        &specs.join("sensor.json"),
        &format!(
            r#"{{"cdiVersion": "0.6.0", "kind": "example.com/sensor",
  "devices": [{{"name": "s0", "containerEdits": {{
    "env": ["EXAMPLE_SENSOR=s0"],
    "deviceNodes": [{{"path": "/run/example/sensor", "hostPath": "{}", "type": "c", "major": 1, "minor": 3}}]
  }}}}]}}"#,
            node.display()
        ),
    );
    specs
}

/// The YAML spec of `example.com/gpu`; `extra_mount` adds a second mount (the change a
/// driver update makes).
fn write_gpu_spec(env: &TestEnv, specs: &Path, gpu_env: &str, extra_mount: bool) {
    let vendor = env.dir.join("vendor");
    let extra = if extra_mount {
        format!(
            "  - hostPath: {}\n    containerPath: /opt/example/lib2\n    options: [ro, nosuid, nodev, bind]\n",
            vendor.join("lib").display()
        )
    } else {
        String::new()
    };
    write_root_file(
        &specs.join("example-gpu.yaml"),
        &format!(
            r#"---
cdiVersion: 0.5.0
kind: example.com/gpu
devices:
- name: gpu0
  containerEdits:
    env:
    - EXAMPLE_DEVICE=gpu0
    deviceNodes:
    - path: /opt/example/dev/gpu0
      hostPath: {node}
      type: c
      major: 1
      minor: 3
    - path: /dev/zero
- name: gpu1
  containerEdits:
    env:
    - EXAMPLE_DEVICE=gpu1
containerEdits:
  env:
  - EXAMPLE_GPU={gpu_env}
  mounts:
  - hostPath: {lib}
    containerPath: /opt/example/lib
    options: [ro, nosuid, nodev, bind]
{extra}  hooks:
  - hookName: createContainer
    path: /usr/bin/nvidia-cdi-hook
    args: [nvidia-cdi-hook, create-symlinks, --link, libz.so.1::/opt/example/links/libexample.so]
  - hookName: createContainer
    path: /usr/bin/nvidia-ctk
    args: [nvidia-ctk, hook, update-ldcache, --folder, /opt/example/lib]
  - hookName: createContainer
    path: /bin/sh
    args: [sh, -c, "cat > /etc/example-hook-state"]
    env: [PATH=/usr/bin:/bin]
    timeout: 30
"#,
            node = vendor.join("gpu0").display(),
            lib = vendor.join("lib").display(),
        ),
    );
}

/// A test environment of `user` whose CDI spec directories hold the test vendor's specs
/// (`gpu_env`: their EXAMPLE_GPU), with box `name` created from the Debian fixture with
/// `example.com/gpu=gpu0` and the sensor `sensor`. Returns the spec directories too.
fn env_with_device_box(
    test: &str,
    user: User,
    gpu_env: &str,
    name: &str,
    sensor: &str,
) -> (TestEnv, PathBuf) {
    let mut env = TestEnv::new(test, user);
    let specs = vendor_setup(&env, gpu_env);
    env.set_env("BOX_CDI_SPEC_DIRS", &specs);
    let image = Fixture::Debian.push(Registry::plain()).image.reference;
    ok(&env, &["pull", &image]);
    let sensor = format!("example.com/sensor={sensor}");
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &image,
            "--device",
            "example.com/gpu=gpu0",
            "--device",
            &sensor,
            name,
        ],
    );
    (env, specs)
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn cdi_device_nodes_mounts_env_and_hooks_reach_the_box_and_follow_the_spec() {
    let (env, specs) = env_with_device_box("cdi-devices", User::BoxTest, "v1", "gpubox", "all");
    let _boxes = Boxes(&env);
    let row = list(&env)
        .into_iter()
        .find(|b| b["name"] == "gpubox")
        .unwrap();
    assert_eq!(
        row["devices"],
        serde_json::json!(["example.com/gpu=gpu0", "example.com/sensor=all"]),
        "{row}"
    );

    check_devices_inside(&env, "gpubox", "v1");

    // A driver update: the spec changes. The running box keeps what it has; the next
    // start reads the new spec.
    write_gpu_spec(&env, &specs, "v2", true);
    sh(&env, "gpubox", "echo env=$EXAMPLE_GPU")
        .success()
        .stdout_has("env=v1");
    ok(&env, &["stop", "gpubox"]);
    sh(
        &env,
        "gpubox",
        "echo env=$EXAMPLE_GPU && ls /opt/example/lib2 && ldconfig -p | grep -c /opt/example/lib/",
    )
    .success()
    .stdout_has("env=v2")
    .stdout_has("libz.so.1");
    // The next update drops that mount again: its mount point goes with it.
    write_gpu_spec(&env, &specs, "v3", false);
    ok(&env, &["stop", "gpubox"]);
    sh(
        &env,
        "gpubox",
        "echo env=$EXAMPLE_GPU; test -e /opt/example/lib2 || echo lib2-gone",
    )
    .success()
    .stdout_has("env=v3")
    .stdout_has("lib2-gone");
}

/// Every edit of the `example.com/gpu=gpu0` and `example.com/sensor` specs, seen from
/// inside box `name` (`gpu_env`: the spec's EXAMPLE_GPU).
#[track_caller]
fn check_devices_inside(env: &TestEnv, name: &str, gpu_env: &str) {
    let out = sh(
        env,
        name,
        "test -c /opt/example/dev/gpu0 && echo node=$(stat -c %t:%T /opt/example/dev/gpu0) && \
         echo read=$(head -c 16 /opt/example/dev/gpu0 | wc -c) && \
         test -c /dev/zero && test -c /run/example/sensor && echo sensor-node && \
         echo env=$EXAMPLE_GPU/$EXAMPLE_DEVICE/$EXAMPLE_SENSOR && \
         ldconfig -p | grep -F /opt/example/lib/libz.so.1 && \
         echo link=$(readlink /opt/example/links/libexample.so) && \
         { touch /opt/example/lib/new 2>/dev/null || echo lib-read-only; } && \
         grep -F ' /opt/example/lib ' /proc/self/mountinfo && \
         cat /etc/example-hook-state",
    );
    out.success();
    out.stdout_has("node=1:3")
        .stdout_has("read=0")
        .stdout_has("sensor-node")
        .stdout_has(&format!("env={gpu_env}/gpu0/s0"))
        .stdout_has("=> /opt/example/lib/libz.so.1")
        .stdout_has("link=libz.so.1")
        .stdout_has("lib-read-only")
        .stdout_has(&format!("\"id\":\"{name}\""));
    let mount_line = out
        .stdout
        .lines()
        .find(|l| l.contains(" /opt/example/lib "))
        .unwrap();
    let options = mount_line.split(' ').nth(5).unwrap();
    for flag in ["ro", "nosuid", "nodev"] {
        assert!(
            options.split(',').any(|o| o == flag),
            "{flag} missing: {mount_line}"
        );
    }
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn cdi_devices_work_without_subordinate_ids_too() {
    let (env, _) = env_with_device_box("cdi-nosub", User::BoxNoSub, "nosub", "single", "s0");
    let _boxes = Boxes(&env);
    check_devices_inside(&env, "single", "nosub");
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn cdi_errors_name_the_spec_the_field_and_what_to_do() {
    let mut env = TestEnv::new("cdi-errors", User::BoxTest);
    let specs = vendor_setup(&env, "v1");
    // A malformed spec of another vendor, and one whose kind can still be read.
    write_root_file(
        &specs.join("broken.yaml"),
        "cdiVersion: 0.6.0\nkind: example.com/broken\ndevices:\n- name: b0\n  containerEdits:\n    mounts:\n    - containerPath: /x\n",
    );
    write_root_file(&specs.join("garbage.json"), "{\"cdiVersion\": \"0.6.0\",");
    env.set_env("BOX_CDI_SPEC_DIRS", &specs);
    let _boxes = Boxes(&env);
    let image = box_from(&env, Fixture::Busybox, "plain");
    let before = env.store_state();
    let create = |device: &str, name: &str| {
        env.run(&[
            "create",
            "--no-entry",
            "--image",
            &image,
            "--device",
            device,
            name,
        ])
    };

    let broken_file = specs.join("broken.yaml");
    create("example.com/broken=b0", "b").box_error(&[
        &broken_file.to_string_lossy(),
        "devices[0].containerEdits.mounts[0]",
        "missing field `hostPath`",
    ]);
    create("example.com/gpu=nope", "n").box_error(&[
        "example.com/gpu=nope",
        &specs.to_string_lossy(),
        "example.com/gpu=gpu0, example.com/gpu=gpu1",
    ]);
    create("example.com/nothing=0", "n").box_error(&[
        "no CDI spec for example.com/nothing",
        &specs.to_string_lossy(),
    ]);
    create("gpu0", "n").box_error(&["`gpu0` is not a CDI device name", "VENDOR/CLASS=NAME"]);
    env.run(&["create", "--no-entry", "--image", &image, "--nvidia", "nv"])
        .box_error(&[
            "nvidia.com/gpu",
            "nvidia-ctk cdi generate",
            "without --nvidia",
        ]);
    // distrobox's `nvidia=true` in a manifest means the same.
    let manifest = env.dir.join("nv.ini");
    std::fs::write(&manifest, format!("[nv]\nimage={image}\nnvidia=true\n")).unwrap();
    env.run(&["assemble", "create", "--file", &manifest.to_string_lossy()])
        .box_error(&["nvidia-ctk cdi generate"]);
    env.assert_store_unchanged(&before, &env.run(&["list"]));

    // The broken specs of other vendors are not needed: a warning at each start.
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &image,
            "--device",
            "example.com/sensor=s0",
            "ok",
        ],
    );
    sh(&env, "ok", "echo env=$EXAMPLE_SENSOR")
        .success()
        .stdout_has("env=s0")
        .stderr_has("warning: the CDI spec")
        .stderr_has(&broken_file.to_string_lossy())
        .stderr_has("garbage.json");
    // Without specs the automatic NVIDIA GPUs are nothing at all, and --no-nvidia is quiet.
    sh(&env, "plain", "echo env=${EXAMPLE_GPU:-none}")
        .success()
        .stdout_has("env=none");

    // A device gone from the specs since create: the start says which and where.
    std::fs::remove_file(specs.join("sensor.json")).unwrap();
    ok(&env, &["stop", "ok"]);
    sh(&env, "ok", "true").box_error(&["example.com/sensor=s0", &specs.to_string_lossy()]);
}

#[test]
#[ignore = "end-to-end: needs root, run with sudo tests/run"]
fn nvidia_gpus_come_automatically_with_their_spec_unless_no_nvidia() {
    let mut env = TestEnv::new("cdi-nvidia", User::BoxTest);
    // A synthetic spec of NVIDIA's kind, as `nvidia-ctk cdi generate` shapes it.
    let specs = env.dir.join("cdi");
    let nvidia_spec = |mount_source: &str| {
        format!(
            "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: all\n  containerEdits:\n    deviceNodes:\n    - path: /dev/null\ncontainerEdits:\n  env:\n  - NVIDIA_VISIBLE_DEVICES=void\n  mounts:\n  - hostPath: {mount_source}\n    containerPath: /opt/nvidia-test\n    options: [ro, nosuid, nodev, bind]\n"
        )
    };
    write_root_file(&specs.join("nvidia.yaml"), &nvidia_spec("/etc/hostname"));
    env.set_env("BOX_CDI_SPEC_DIRS", &specs);
    let _boxes = Boxes(&env);
    let image = box_from(&env, Fixture::Busybox, "auto");
    ok(
        &env,
        &[
            "create",
            "--no-entry",
            "--image",
            &image,
            "--no-nvidia",
            "off",
        ],
    );
    ok(
        &env,
        &["create", "--no-entry", "--image", &image, "--nvidia", "on"],
    );
    let probe =
        "echo nv=${NVIDIA_VISIBLE_DEVICES:-none}; test -f /opt/nvidia-test && echo mounted; true";
    sh(&env, "auto", probe)
        .success()
        .stdout_has("nv=void")
        .stdout_has("mounted");
    sh(&env, "on", probe).success().stdout_has("nv=void");
    let off = sh(&env, "off", probe);
    off.success().stdout_has("nv=none");
    assert!(!off.stdout.contains("mounted"), "{off}");
    let records = list(&env);
    let nvidia_of = |name: &str| {
        records
            .iter()
            .find(|b| b["name"] == name)
            .unwrap()
            .get("nvidia")
            .cloned()
    };
    assert_eq!(nvidia_of("on"), Some(serde_json::json!(true)));
    assert_eq!(nvidia_of("off"), Some(serde_json::json!(false)));
    assert_eq!(nvidia_of("auto"), None);

    // A spec the driver update left stale: the automatic GPUs are a warning, --nvidia an
    // error naming what is missing.
    write_root_file(
        &specs.join("nvidia.yaml"),
        &nvidia_spec("/nonexistent/libcuda.so"),
    );
    ok(&env, &["stop", "--all"]);
    sh(&env, "auto", probe)
        .success()
        .stdout_has("nv=none")
        .stderr_has("warning: NVIDIA's GPUs were not added")
        .stderr_has("/nonexistent/libcuda.so");
    sh(&env, "on", probe).box_error(&["/nonexistent/libcuda.so", "nvidia-ctk cdi generate"]);
}
