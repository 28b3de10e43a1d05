//! `box save`: images of the store into one archive (see the parent module for its
//! layout), to a file written atomically or to standard output.
//!
//! Invariants: what is written is the store's own bytes (manifest, config and layer
//! blobs, each once however many images share it), so digests are kept; a blob missing
//! from the store or of the wrong size fails the save before anything is written; a file
//! is written under a temporary name in its directory and renamed over FILE only once
//! complete and synced, so FILE is either as it was or the whole archive. The store lock
//! is held shared, so no garbage collection removes a blob being read.

use std::fs::File;
use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use super::{CONTAINERD_NAME, LAYOUT_VERSION, OCI_INDEX, OCI_MANIFEST, REF_NAME};
use crate::context::Context;
use crate::digest::Digest;
use crate::error::{HintExt, failure};
use crate::registry::manifest::{DOCKER_MANIFEST, declared_media_type};
use crate::registry::{Manifest, Reference, parse_manifest};
use crate::store::Store;
use crate::store::images::ImageRecord;
use crate::ui::report::notice;

/// Where the archive goes.
#[derive(Debug, Clone)]
pub enum SaveDestination {
    /// Written atomically: a temporary file beside it, renamed when complete.
    File(PathBuf),
    /// Standard output, as a stream (the caller checked it is no terminal).
    Stdout,
}

/// One image to write: a manifest and the references naming it.
struct Image {
    references: Vec<String>,
    /// The manifest in the store.
    source: Digest,
    /// The manifest in the archive's index: the store's, or its OCI form.
    manifest: Digest,
    manifest_bytes: Vec<u8>,
    /// Whether `manifest_bytes` are the store's blob (else box made them).
    in_store: bool,
    media_type: String,
    config: Digest,
    layers: Vec<Digest>,
}

/// Write the images `images` names (references, short names, digests, as `box rmi`
/// takes them) to `destination`. Returns the references written.
pub fn save(
    ctx: &Context,
    images: &[String],
    destination: &SaveDestination,
) -> Result<Vec<String>> {
    let store = Store::at(&ctx.dirs.store);
    let _lock = match ctx.dirs.store.exists() {
        true => Some(store.lock(false)?),
        false => None,
    };
    let records = store.images()?;
    let mut chosen: Vec<Image> = Vec::new();
    for text in images {
        for reference in super::super::rmi::resolve(text, &records, true)? {
            let record = records
                .iter()
                .find(|r| r.reference == reference)
                .expect("resolve returns references of the store");
            match chosen
                .iter_mut()
                .find(|i| i.source == record.manifest_digest)
            {
                Some(image) if !image.references.contains(&reference) => {
                    image.references.push(reference)
                }
                Some(_) => {}
                None => chosen.push(image_of(&store, record)?),
            }
        }
    }
    // Every blob is there, with its size, before a byte is written.
    let mut blobs: Vec<(Digest, u64)> = Vec::new();
    for image in &chosen {
        // A Docker manifest goes too, beside its OCI form: box load takes it back, so the
        // image keeps its manifest digest from box to box.
        let manifest = if image.in_store {
            &image.manifest
        } else {
            &image.source
        };
        for digest in std::iter::once(&image.config)
            .chain(&image.layers)
            .chain(std::iter::once(manifest))
        {
            if blobs.iter().any(|(d, _)| d == digest) {
                continue;
            }
            let path = store.blob_path(digest);
            let size = match std::fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    let reference = &image.references[0];
                    bail!(failure(
                        format!(
                            "the store has no blob {digest} of {reference} (it was pulled before box kept layer blobs)"
                        ),
                        format!(
                            "remove the image and pull it again: `box rmi {reference} && box pull {reference}`"
                        ),
                    ));
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("reading {}", path.display()));
                }
            };
            blobs.push((digest.clone(), size));
        }
    }
    let index = index_json(&chosen)?;
    let docker = docker_manifest_json(&chosen)?;

    let write = |out: File| -> Result<File> {
        let mut tar = TarWriter { out };
        tar.file(
            "oci-layout",
            format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}").as_bytes(),
        )?;
        tar.dir("blobs/")?;
        tar.dir("blobs/sha256/")?;
        for (digest, size) in &blobs {
            tar.copy(
                &format!("blobs/sha256/{}", digest.hex()),
                &store.blob_path(digest),
                *size,
            )?;
        }
        let mut made: Vec<&Digest> = Vec::new();
        for image in chosen.iter().filter(|i| !i.in_store) {
            if !made.contains(&&image.manifest) {
                made.push(&image.manifest);
                let name = format!("blobs/sha256/{}", image.manifest.hex());
                tar.file(&name, &image.manifest_bytes)?;
            }
        }
        tar.file("index.json", &index)?;
        tar.file("manifest.json", &docker)?;
        tar.finish()
    };
    match destination {
        SaveDestination::Stdout => {
            use std::os::fd::AsFd;
            let out = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("duplicating standard output")?;
            write(File::from(out)).context("writing the archive to standard output")?;
        }
        SaveDestination::File(path) => write_atomically(path, write)?,
    }
    let references: Vec<String> = chosen.into_iter().flat_map(|i| i.references).collect();
    let total: u64 = blobs.iter().map(|(_, s)| s).sum();
    notice(format!(
        "saved {} ({}) to {}",
        references.join(", "),
        crate::ui::progress::human_bytes(total),
        match destination {
            SaveDestination::File(path) => path.display().to_string(),
            SaveDestination::Stdout => "standard output".to_owned(),
        }
    ));
    Ok(references)
}

/// The manifest of `record` from the store, and the blobs it names.
fn image_of(store: &Store, record: &ImageRecord) -> Result<Image> {
    let path = store.blob_path(&record.manifest_digest);
    let bytes = std::fs::read(&path)
        .with_context(|| {
            format!(
                "reading the manifest of {} ({})",
                record.reference,
                path.display()
            )
        })
        .hint("the store is damaged; remove the image (`box rmi`) and pull it again")?;
    let parsed = parse_manifest(&bytes, "")
        .with_context(|| format!("reading the manifest of {}", record.reference))?;
    let Manifest::Image(manifest) = parsed else {
        bail!(
            "the manifest of {} in the store is an index",
            record.reference
        );
    };
    let media_type = declared_media_type(&bytes).unwrap_or_else(|| OCI_MANIFEST.to_owned());
    let (manifest_digest, manifest_bytes, in_store) = if media_type == DOCKER_MANIFEST {
        let oci = super::oci_form(&bytes)
            .with_context(|| format!("reading the manifest of {}", record.reference))?;
        (Digest::of(&oci), oci, false)
    } else {
        (record.manifest_digest.clone(), bytes, true)
    };
    Ok(Image {
        references: vec![record.reference.clone()],
        source: record.manifest_digest.clone(),
        manifest: manifest_digest,
        media_type: if in_store {
            media_type
        } else {
            OCI_MANIFEST.to_owned()
        },
        manifest_bytes,
        in_store,
        config: Digest::try_from(manifest.config().digest())?,
        layers: manifest
            .layers()
            .iter()
            .map(|l| Digest::try_from(l.digest()))
            .collect::<Result<_>>()?,
    })
}

/// `name:tag` of a reference, for RepoTags and the index's annotations; none for a
/// reference by digest only.
fn tagged(reference: &str) -> Option<String> {
    let parsed = Reference::parse(reference).ok()?;
    Some(format!("{}:{}", parsed.name(), parsed.tag.as_ref()?))
}

/// The OCI index: one entry per name (an image without one: one entry without a name).
fn index_json(images: &[Image]) -> Result<Vec<u8>> {
    let mut manifests = Vec::new();
    for image in images {
        let size = image.manifest_bytes.len();
        let descriptor = |name: Option<&str>| {
            let mut entry = serde_json::json!({
                "mediaType": image.media_type,
                "digest": image.manifest,
                "size": size,
            });
            if let Some(name) = name {
                entry["annotations"] = serde_json::json!({ CONTAINERD_NAME: name, REF_NAME: name });
            }
            entry
        };
        let names: Vec<String> = image.references.iter().filter_map(|r| tagged(r)).collect();
        if names.is_empty() {
            manifests.push(descriptor(None));
        }
        for name in &names {
            manifests.push(descriptor(Some(name)));
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    serde_json::to_vec(&index).context("encoding index.json")
}

/// docker's `manifest.json`: one entry per image, paths into `blobs/`.
fn docker_manifest_json(images: &[Image]) -> Result<Vec<u8>> {
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let entries: Vec<serde_json::Value> = images
        .iter()
        .map(|image| {
            let tags: Vec<String> = image.references.iter().filter_map(|r| tagged(r)).collect();
            serde_json::json!({
                "Config": blob(&image.config),
                "RepoTags": tags,
                "Layers": image.layers.iter().map(blob).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_vec(&entries).context("encoding manifest.json")
}

/// Write the archive into a temporary file beside `path`, then rename it over `path`.
fn write_atomically(path: &Path, write: impl FnOnce(File) -> Result<File>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".box-save-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
        .hint("check that the directory of -o FILE exists and that you can write to it")?;
    let (file, temp_path) = temp.into_parts();
    let outcome = (|| -> Result<()> {
        let file = write(file.try_clone().context("duplicating a descriptor")?)
            .with_context(|| format!("writing {}", path.display()))?;
        // A file as any other the user makes: 0666 less the umask, not tempfile's 0600.
        let mask = rustix::process::umask(rustix::fs::Mode::empty());
        rustix::process::umask(mask);
        file.set_permissions(std::fs::Permissions::from_mode(0o666 & !mask.bits()))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        file.sync_all()
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    })();
    if let Err(error) = outcome {
        if crate::error::is_out_of_space(&error) {
            return Err(failure(
                format!("no space left on device while writing {}", path.display()),
                "free some space, or write the archive elsewhere (-o FILE)",
            ));
        }
        return Err(error);
    }
    drop(file);
    temp_path
        .persist(path)
        .with_context(|| format!("renaming the archive into {}", path.display()))?;
    Ok(())
}

/// A tar stream written straight to a file or a pipe: ustar headers, owner 0, time 0;
/// blob contents are copied by the kernel (copy_file_range, splice).
struct TarWriter {
    out: File,
}

impl TarWriter {
    fn header(&mut self, path: &str, size: u64, kind: tar::EntryType) -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header
            .set_path(path)
            .with_context(|| format!("naming {path} in the archive"))?;
        header.set_size(size);
        header.set_entry_type(kind);
        header.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rest = (512 - size % 512) % 512;
        self.out.write_all(&[0u8; 512][..rest as usize])?;
        Ok(())
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        self.header(path, 0, tar::EntryType::Directory)
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        self.header(path, bytes.len() as u64, tar::EntryType::Regular)?;
        self.out.write_all(bytes)?;
        self.pad(bytes.len() as u64)
    }

    /// The file at `source`, which must have `size` bytes.
    fn copy(&mut self, path: &str, source: &Path, size: u64) -> Result<()> {
        self.header(path, size, tar::EntryType::Regular)?;
        let mut input =
            File::open(source).with_context(|| format!("opening {}", source.display()))?;
        let copied = std::io::copy(&mut (&mut input).take(size), &mut self.out)
            .with_context(|| format!("copying {}", source.display()))?;
        if copied != size {
            bail!(failure(
                format!(
                    "{} shrank to {copied} bytes while it was saved",
                    source.display()
                ),
                "another program changed box's store; save again",
            ));
        }
        self.pad(size)
    }

    fn finish(mut self) -> Result<File> {
        self.out.write_all(&[0u8; 1024])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(references: &[&str]) -> Image {
        Image {
            references: references.iter().map(|s| s.to_string()).collect(),
            source: Digest::of(b"m"),
            manifest: Digest::of(b"m"),
            manifest_bytes: b"m".to_vec(),
            in_store: true,
            media_type: OCI_MANIFEST.to_owned(),
            config: Digest::of(b"c"),
            layers: vec![Digest::of(b"l")],
        }
    }

    #[test]
    fn names_go_in_both_indexes_and_digests_alone_are_no_names() {
        let images = [
            image(&["localhost/a:1", "example.com/b:2"]),
            image(&[
                "localhost/untagged@sha256:00000000000000000000000000000000000000000000000000000000000000aa",
            ]),
        ];
        let index: serde_json::Value =
            serde_json::from_slice(&index_json(&images).unwrap()).unwrap();
        let entries = index["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0]["annotations"][REF_NAME], "localhost/a:1");
        assert_eq!(
            entries[1]["annotations"][CONTAINERD_NAME],
            "example.com/b:2"
        );
        assert!(entries[2].get("annotations").is_none());
        assert_eq!(entries[0]["size"], 1);
        let docker: serde_json::Value =
            serde_json::from_slice(&docker_manifest_json(&images).unwrap()).unwrap();
        assert_eq!(
            docker[0]["RepoTags"],
            serde_json::json!(["localhost/a:1", "example.com/b:2"])
        );
        assert_eq!(docker[1]["RepoTags"], serde_json::json!([]));
        assert_eq!(
            docker[0]["Layers"][0],
            format!("blobs/sha256/{}", Digest::of(b"l").hex())
        );
    }

    #[test]
    fn docker_manifests_get_their_oci_form_with_the_same_blobs() {
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
               "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1,"digest":"{c}"}},
               "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2,"digest":"{l}"}}]}}"#,
            c = Digest::of(b"c"),
            l = Digest::of(b"l")
        );
        let oci = super::super::oci_form(docker.as_bytes()).unwrap();
        let Manifest::Image(parsed) = parse_manifest(&oci, "").unwrap() else {
            panic!()
        };
        assert_eq!(declared_media_type(&oci).as_deref(), Some(OCI_MANIFEST));
        assert_eq!(
            parsed.config().media_type().to_string(),
            super::super::OCI_CONFIG
        );
        assert_eq!(
            parsed.config().digest().to_string(),
            Digest::of(b"c").to_string()
        );
        assert_eq!(
            parsed.layers()[0].media_type().to_string(),
            super::super::OCI_LAYER_GZIP
        );
        assert_eq!(parsed.layers()[0].size(), 2);
    }

    #[test]
    fn the_tar_stream_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        std::fs::write(&blob, vec![1u8; 1000]).unwrap();
        let path = dir.path().join("out.tar");
        write_atomically(&path, |out| {
            let mut tar = TarWriter { out };
            tar.dir("blobs/")?;
            tar.file("index.json", b"{}")?;
            tar.copy("blobs/x", &blob, 1000)?;
            tar.finish()
        })
        .unwrap();
        let mut archive = tar::Archive::new(File::open(&path).unwrap());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), data.len()));
        }
        assert_eq!(
            seen,
            [
                ("blobs/".to_owned(), 0),
                ("index.json".to_owned(), 2),
                ("blobs/x".to_owned(), 1000)
            ]
        );
        // A failed write leaves the file as it was, and no temporary file.
        let failed = write_atomically(&path, |_| bail!("no"));
        assert!(failed.is_err());
        assert!(File::open(&path).unwrap().metadata().unwrap().len() > 1000);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
