//! The fixture images, built by [`super::oci`] and pushed once per registry (lazily).
//!
//! - `busybox`: one gzip layer from the host's static busybox, applets as symlinks (and
//!   `/bin/true` as a hardlink), passwd/group/os-release; Docker v2 manifest.
//! - `busybox-zstd`: the same files in a zstd layer, OCI manifest.
//! - `multilayer`: busybox's layer (shared) plus two layers with every kind of change:
//!   whiteouts, a directory replaced by a file and a file by a directory, an opaque
//!   directory, hardlinks, a setuid-root file, files owned by 33 and 1234, an xattr.
//! - `multiplatform`: an OCI index over linux/amd64 and linux/arm64/v8, each with an
//!   `/etc/platform` file naming its platform.
//! - `debian`: the mmdebstrap rootfs `tests/run` caches, as one gzip layer (end-to-end).
//! - `debian-bare`: plain minbase (no sudo, no locales, no man), for provisioning.
//! - `standin-PM`: busybox plus a stand-in package manager PM that records its
//!   arguments (see [`super::standin`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use super::oci::{
    Compression, Entry, ImageBuilder, Layer, ManifestFormat, Prebuilt, PushedImage, push_index,
};
use super::registry::Registry;
use super::{CACHE_DIR, Platform};

/// The fixtures by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fixture {
    Busybox,
    BusyboxZstd,
    Multilayer,
    Multiplatform,
    Debian,
    DebianBare,
    /// Busybox with a stand-in for the package manager at this path in the image.
    StandIn(&'static str),
}

impl Fixture {
    /// Repository name in the registry.
    pub fn repo(self) -> &'static str {
        match self {
            Fixture::Busybox => "fixtures/busybox",
            Fixture::BusyboxZstd => "fixtures/busybox-zstd",
            Fixture::Multilayer => "fixtures/multilayer",
            Fixture::Multiplatform => "fixtures/multiplatform",
            Fixture::Debian => "fixtures/debian",
            Fixture::DebianBare => "fixtures/debian-bare",
            Fixture::StandIn(path) => super::standin::repo(path),
        }
    }

    /// Push the fixture to `registry` unless already done by this process; returns what
    /// was pushed (for the multi-platform index: the index digest, and the per-platform
    /// images in [`multiplatform_images`] order in `platforms`).
    pub fn push(self, registry: &Registry) -> Pushed {
        type Cache = Mutex<HashMap<(String, Fixture), &'static OnceLock<Pushed>>>;
        static PUSHED: OnceLock<Cache> = OnceLock::new();
        let cell: &'static OnceLock<Pushed> = {
            let mut cache = PUSHED
                .get_or_init(Default::default)
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            cache
                .entry((registry.host.clone(), self))
                .or_insert_with(|| Box::leak(Box::new(OnceLock::new())))
        };
        // Pushing happens outside the map lock, once per (registry, fixture).
        cell.get_or_init(|| self.build_and_push(registry)).clone()
    }

    fn build_and_push(self, registry: &Registry) -> Pushed {
        let repo = self.repo();
        match self {
            Fixture::Busybox => Pushed::single(busybox().push(registry, repo, "latest")),
            Fixture::BusyboxZstd => Pushed::single(
                ImageBuilder::new()
                    .format(ManifestFormat::Oci)
                    .entries(&busybox_entries(), Compression::Zstd)
                    .push(registry, repo, "latest"),
            ),
            Fixture::Multilayer => Pushed::single(multilayer().push(registry, repo, "latest")),
            Fixture::Multiplatform => {
                let (digest, images) = push_index(
                    registry,
                    repo,
                    "latest",
                    &multiplatform_images(),
                    ManifestFormat::Oci,
                );
                Pushed {
                    image: PushedImage {
                        reference: registry.reference(repo, "latest"),
                        repo: repo.to_owned(),
                        tag: "latest".to_owned(),
                        digest,
                        config_digest: String::new(),
                        layers: Vec::new(),
                        tar_size: 0,
                    },
                    platforms: images,
                }
            }
            Fixture::Debian => Pushed::single(debian().push(registry, repo, "bookworm")),
            Fixture::DebianBare => Pushed::single(
                debian_from(&debian_bare_tar_path()).push(registry, repo, "bookworm"),
            ),
            Fixture::StandIn(path) => {
                Pushed::single(super::standin::image(path).push(registry, repo, "latest"))
            }
        }
    }
}

/// A pushed fixture.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub image: PushedImage,
    /// For an index: the per-platform images.
    pub platforms: Vec<PushedImage>,
}

impl Pushed {
    fn single(image: PushedImage) -> Pushed {
        Pushed {
            image,
            platforms: Vec::new(),
        }
    }
}

/// Applets linked to /bin/busybox by symlink.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "id", "stat", "mkdir", "rm", "cp", "mv", "ln", "env", "sleep",
    "touch", "chmod", "test", "[", "head", "grep", "sed", "uname", "whoami", "find", "ps",
    "unshare", "readlink", "mount",
];

/// The file system of the busybox image.
pub fn busybox_entries() -> Vec<Entry> {
    let busybox = std::fs::read("/bin/busybox")
        .expect("reading /bin/busybox (busybox-static; run sudo tests/run)");
    let mut entries = vec![
        Entry::dir("bin"),
        Entry::dir("etc"),
        Entry::dir("root").mode(0o700),
        Entry::dir("tmp").mode(0o1777),
        Entry::dir("usr"),
        Entry::dir("usr/bin"),
        Entry::dir("var"),
        Entry::file("bin/busybox", &busybox).mode(0o755),
        // A hardlink to the binary: the unpacked layer must share the inode. Its header
        // carries the file's mode, as tar writes it (podman applies it to the file).
        Entry::hardlink("bin/true", "bin/busybox").mode(0o755),
    ];
    for applet in BUSYBOX_APPLETS {
        entries.push(Entry::symlink(&format!("bin/{applet}"), "busybox"));
    }
    entries.push(Entry::symlink("usr/bin/env", "/bin/busybox"));
    entries.extend([
        Entry::file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
        ),
        Entry::file("etc/group", "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n"),
        Entry::file(
            "etc/os-release",
            "NAME=\"Busybox test image\"\nID=busybox\nVERSION_ID=1\nPRETTY_NAME=\"box test busybox\"\n",
        ),
    ]);
    entries
}

/// The busybox image (Docker v2 manifest, gzip).
pub fn busybox() -> ImageBuilder {
    ImageBuilder::new().entries(&busybox_entries(), Compression::Gzip)
}

/// The changes of the multi-layer image's second layer.
pub fn multilayer_layer2() -> Vec<Entry> {
    vec![
        Entry::dir("etc"),
        Entry::file("etc/deleteme", "this file is deleted by layer 3\n"),
        Entry::dir("data"),
        Entry::dir("data/becomes-file"),
        Entry::file(
            "data/becomes-file/inside",
            "replaced by a file in layer 3\n",
        ),
        Entry::file("data/becomes-dir", "replaced by a directory in layer 3\n"),
        Entry::dir("data/opaque"),
        Entry::file(
            "data/opaque/old",
            "hidden by the opaque marker in layer 3\n",
        ),
        Entry::dir("data/www").owner(33, 33),
        Entry::file("data/www/index.html", "<p>owned by www-data</p>\n").owner(33, 33),
        Entry::file("data/user1234", "owned by 1234:1234\n").owner(1234, 1234),
        Entry::file("data/suid", "#!/bin/sh\necho setuid\n")
            .mode(0o4755)
            .owner(0, 0),
        Entry::file("data/xattr", "has a user xattr\n").xattr("user.box-test", "hello"),
        Entry::file("data/link-a", "two names, one inode\n").mtime(1_234_567_890),
        Entry::hardlink("data/link-b", "data/link-a"),
        Entry::fifo("data/fifo"),
    ]
}

/// The changes of the multi-layer image's third layer.
pub fn multilayer_layer3() -> Vec<Entry> {
    vec![
        Entry::dir("etc"),
        Entry::whiteout("etc/deleteme"),
        // Busybox's layer has bin/ls: delete an applet from a lower layer too.
        Entry::dir("bin"),
        Entry::whiteout("bin/ls"),
        Entry::dir("data"),
        Entry::file("data/becomes-file", "now a file\n"),
        Entry::dir("data/becomes-dir"),
        Entry::file("data/becomes-dir/inside", "now inside a directory\n"),
        Entry::dir("data/opaque"),
        Entry::opaque("data/opaque"),
        Entry::file("data/opaque/new", "the only file visible in data/opaque\n"),
    ]
}

/// busybox + two layers of changes (Docker v2 manifest, gzip).
pub fn multilayer() -> ImageBuilder {
    busybox()
        .entries(&multilayer_layer2(), Compression::Gzip)
        .entries(&multilayer_layer3(), Compression::Gzip)
}

/// One image per platform of the multi-platform index: host platform first.
pub fn multiplatform_images() -> Vec<ImageBuilder> {
    [super::host_platform(), super::other_platform()]
        .into_iter()
        .map(|platform| platform_image(&platform))
        .collect()
}

/// A small image whose `/etc/platform` names `platform`.
pub fn platform_image(platform: &Platform) -> ImageBuilder {
    ImageBuilder::new()
        .format(ManifestFormat::Oci)
        .platform(platform.clone())
        .entries(
            &[
                Entry::dir("etc"),
                Entry::file("etc/platform", format!("{platform}\n")),
            ],
            Compression::Gzip,
        )
}

/// Path of the cached Debian rootfs tarball.
pub fn debian_tar_path() -> std::path::PathBuf {
    Path::new(CACHE_DIR).join("debian-bookworm.tar")
}

/// The Debian image: the mmdebstrap tarball as one gzip layer.
///
/// `tests/run` compresses the tarball once (`gzip -1`) and records both digests next to
/// it, which saves the test process a minute of unoptimised gzip and sha256 over 200 MB;
/// without those files the layer is built here.
pub fn debian() -> ImageBuilder {
    debian_from(&debian_tar_path())
}

/// Path of the cached plain minbase rootfs tarball (no extra packages).
pub fn debian_bare_tar_path() -> std::path::PathBuf {
    Path::new(CACHE_DIR).join("debian-bookworm-minbase.tar")
}

/// An image of one cached mmdebstrap tarball (see [`debian`]).
pub fn debian_from(path: &Path) -> ImageBuilder {
    let path = path.to_owned();
    let missing = |e: std::io::Error| -> ! {
        panic!(
            "the Debian fixture {} is missing ({e}): run sudo tests/run, which builds it once with mmdebstrap",
            path.display()
        )
    };
    let tar_meta = std::fs::metadata(&path).unwrap_or_else(|e| missing(e));
    let layer = match prebuilt_debian(&path, &tar_meta) {
        Some(prebuilt) => Layer::prebuilt(prebuilt, Compression::Gzip),
        None => Layer::from_tar(
            std::fs::read(&path).unwrap_or_else(|e| missing(e)),
            Compression::Gzip,
        ),
    };
    let mut image = ImageBuilder::new().layer(layer);
    image.cmd = vec!["/bin/bash".into()];
    image
}

/// The gzip blob and digests `tests/run` prepared, if they are there and current:
/// `<tar>.gz` and `<tar>.sha256` (`sha256sum` output for the tar and the .gz).
fn prebuilt_debian(tar: &Path, tar_meta: &std::fs::Metadata) -> Option<Prebuilt> {
    let gz = tar.with_extension("tar.gz");
    let sums = tar.with_extension("tar.sha256");
    let sums_meta = std::fs::metadata(&sums).ok()?;
    if sums_meta.modified().ok()? < tar_meta.modified().ok()? {
        return None;
    }
    let text = std::fs::read_to_string(&sums).ok()?;
    let sum_of = |file: &Path| {
        let name = file.file_name()?.to_str()?;
        text.lines().find_map(|line| {
            let (hex, rest) = line.split_once(char::is_whitespace)?;
            (rest.trim_start_matches([' ', '*']).rsplit('/').next() == Some(name))
                .then(|| format!("sha256:{hex}"))
        })
    };
    Some(Prebuilt {
        diff_id: sum_of(tar)?,
        digest: sum_of(&gz)?,
        blob: std::fs::read(&gz).ok()?,
        tar_size: tar_meta.len(),
    })
}
