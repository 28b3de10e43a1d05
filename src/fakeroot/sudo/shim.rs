//! The shim that reaches the stand-in: a small shell script at [`SHIM_PATH`] that runs
//! the host's box through `/run/host` with the host's own dynamic loader, so the box's
//! libc does not matter.

use std::path::{Path, PathBuf};

/// Where the shim lives in a box.
pub const SHIM_PATH: &str = "/usr/local/bin/sudo";

/// How the shim's text starts (`box commit` tells it from a `sudo` of the user's by it).
pub const SHIM_START: &str = "#!/bin/sh\n# Written by box:";

/// How the shim starts the host's box, as found on the host (real paths, host symlinks
/// resolved there: the host's absolute symlinks, Debian's
/// `/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/...`, would resolve in the box).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The box executable.
    pub exe: PathBuf,
    /// Its dynamic loader (`PT_INTERP`) and the host's library directories, in search
    /// order; none for a static box.
    pub loader: Option<(PathBuf, Vec<PathBuf>)>,
}

impl Launch {
    /// Look at the box executable `box_binary`: its real path, its ELF header and the
    /// host's library directories (reads the file, resolves a few paths).
    pub fn of(box_binary: &Path) -> Launch {
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let loader = elf_interpreter(box_binary).map(|interp| {
            let interp = real(&interp);
            let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
            let mut dirs: Vec<PathBuf> = Vec::new();
            for dir in [
                interp.parent().map(Path::to_path_buf).unwrap_or_default(),
                Path::new("/lib").join(&triplet),
                Path::new("/usr/lib").join(&triplet),
                "/lib64".into(),
                "/usr/lib64".into(),
                "/lib".into(),
                "/usr/lib".into(),
            ] {
                let Ok(dir) = std::fs::canonicalize(&dir) else {
                    continue;
                };
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
            (interp, dirs)
        });
        Launch {
            exe: real(box_binary),
            loader,
        }
    }
}

/// The shim's text, for the host's box as `launch` found it (no file is read here).
///
/// It runs the host's box through `/run/host` with the host's own dynamic loader and
/// libraries (ld.so(8) run as a program, `--library-path`): the box's libc may be another
/// (musl in Alpine, busybox images without any) or older than the one box was built
/// against, so `/usr/local/bin/box` on the box's libc cannot be relied on. A static box
/// (no `PT_INTERP`) runs directly.
pub fn shim(launch: &Launch) -> String {
    let host = |p: &Path| {
        Path::new(crate::host::fs::HOST_ROOT_IN_BOX).join(p.strip_prefix("/").unwrap_or(p))
    };
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let exe = quote(&host(&launch.exe));
    let run = match &launch.loader {
        Some((interp, dirs)) => {
            let path = dirs
                .iter()
                .map(|d| host(d).display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            format!(
                "{} --library-path {} {exe}",
                quote(&host(interp)),
                quote(Path::new(&path))
            )
        }
        None => exe,
    };
    format!(
        "{SHIM_START} this box maps only your own user id, so the image's sudo cannot work;\n\
         # this runs the command as box's fake root instead (see `box create --dry-run`).\n\
         exec {run} __fakeroot sudo \"$@\"\n"
    )
}

/// The program interpreter (`PT_INTERP`, elf(5)) of the 64-bit little-endian ELF file at
/// `path`, or None (not such a file, or static).
pub fn elf_interpreter(path: &Path) -> Option<PathBuf> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::ffi::OsStrExt as _;
    let mut file = std::fs::File::open(path).ok()?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header).ok()?;
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB.
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (
        u64_at(&header, 0x20),
        usize::from(u16_at(&header, 0x36)),
        usize::from(u16_at(&header, 0x38)),
    );
    if phentsize < 56 || phnum > 256 {
        return None;
    }
    let mut table = vec![0u8; phentsize * phnum];
    file.seek(SeekFrom::Start(phoff)).ok()?;
    file.read_exact(&mut table).ok()?;
    let entry = table
        .chunks(phentsize)
        .find(|ph| u32::from_le_bytes(ph[..4].try_into().unwrap()) == 3)?; // PT_INTERP
    let (offset, size) = (u64_at(entry, 8), u64_at(entry, 32));
    if size == 0 || size > 4096 {
        return None;
    }
    let mut name = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset)).ok()?;
    file.read_exact(&mut name).ok()?;
    let name = name.split(|&b| b == 0).next()?;
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name));
    path.is_absolute().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shim_runs_the_hosts_box_with_the_hosts_loader_and_every_argument() {
        // This test's own executable is a dynamically linked ELF file like box.
        let exe = std::env::current_exe().unwrap();
        let interp = elf_interpreter(&exe).expect("a dynamically linked test binary");
        assert!(
            interp.is_absolute() && interp.exists(),
            "{}",
            interp.display()
        );
        let text = shim(&Launch::of(&exe));
        assert!(text.starts_with("#!/bin/sh\n"), "{text}");
        let last = text.lines().last().unwrap();
        let interp = std::fs::canonicalize(interp).unwrap();
        assert!(
            last.starts_with(&format!(
                "exec '/run/host{}' --library-path '/run/host",
                interp.display()
            )),
            "{text}"
        );
        assert!(
            last.ends_with(&format!(
                "'/run/host{}' __fakeroot sudo \"$@\"",
                exe.display()
            )),
            "{text}"
        );
        // Not an ELF file (or a static one): box itself, through /run/host.
        assert_eq!(elf_interpreter(Path::new("/etc/passwd")), None);
        assert!(
            shim(&Launch::of(Path::new("/nonexistent/box")))
                .ends_with("exec '/run/host/nonexistent/box' __fakeroot sudo \"$@\"\n")
        );
    }
}
