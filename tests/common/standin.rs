//! Fixture images for package managers this machine cannot reach: busybox plus a
//! stand-in script at the package manager's path that records how it was called (one
//! line per call, `PATH ARGS...`, in [`CALLS`]) and succeeds. Provisioning finds the
//! package manager by that path, as it would in the real image, so a test can assert the
//! invocation the catalogue data makes.
//!
//! `complete`: an apt image (stand-in apt-get) that already has a file for every need of
//! the apt catalogue entry, as a toolbox image has: provisioning must not call apt-get.

use std::collections::BTreeSet;

use super::fixtures::busybox_entries;
use super::oci::{Compression, Entry, ImageBuilder, Kind};

/// Where the stand-ins write their calls, in the box.
pub const CALLS: &str = "/pm-calls";

/// The stand-in script.
const SCRIPT: &str = "#!/bin/sh\necho \"$0 $*\" >> /pm-calls\n";

/// The repository of the stand-in for the package manager at `path`.
pub fn repo(path: &str) -> &'static str {
    match path {
        "complete" => "fixtures/complete",
        other => {
            let name = other.rsplit('/').next().unwrap_or(other);
            Box::leak(format!("fixtures/standin-{name}").into_boxed_str())
        }
    }
}

/// `entries` plus the directories `paths` need that they lack, then files at `paths`.
fn with_files(mut entries: Vec<Entry>, files: &[(String, Vec<u8>, u32)]) -> Vec<Entry> {
    let mut dirs: BTreeSet<String> = entries
        .iter()
        .filter(|e| e.kind == Kind::Dir)
        .map(|e| e.path.clone())
        .collect();
    for (path, content, mode) in files {
        let path = path.trim_start_matches('/');
        let mut parent = String::new();
        for part in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            if dirs.insert(parent.clone()) {
                entries.push(Entry::dir(&parent));
            }
        }
        entries.push(Entry::file(path, content.clone()).mode(*mode));
    }
    entries
}

/// Busybox with the stand-in at `path` (or, for `complete`, the complete apt image).
pub fn image(path: &str) -> ImageBuilder {
    let files = if path == "complete" {
        complete_files()
    } else {
        vec![(path.to_owned(), SCRIPT.as_bytes().to_vec(), 0o755)]
    };
    ImageBuilder::new().entries(&with_files(busybox_entries(), &files), Compression::Gzip)
}

/// The stand-in apt-get, bash (the test users' shell) and a file for every apt need.
fn complete_files() -> Vec<(String, Vec<u8>, u32)> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    let pms = box_cli::provision::catalogue::PackageManagers::shipped();
    let apt = pms.get("apt").expect("the apt entry");
    let mut files = vec![
        (
            "/usr/bin/apt-get".to_owned(),
            SCRIPT.as_bytes().to_vec(),
            0o755,
        ),
        (
            "/bin/bash".to_owned(),
            b"#!/bin/sh\nexec sh \"$@\"\n".to_vec(),
            0o755,
        ),
    ];
    for need in &apt.needs {
        let file = need.files[0]
            .replace("{multiarch}", &multiarch)
            .replace("{arch}", std::env::consts::ARCH);
        if !files.iter().any(|(p, _, _)| *p == file) {
            files.push((file, Vec::new(), 0o644));
        }
    }
    files
}
