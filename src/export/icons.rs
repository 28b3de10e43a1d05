//! Icons of exported applications: finding them in a box and choosing where the host
//! copies go, following the Icon Theme Specification's lookup so the host finds them.
//!
//! Copies go into `hicolor` only: it is the fallback theme every host has, so an icon
//! there is found whatever theme the host uses, and it never overrides the host theme's
//! own icons of the same name (a copy into the box's `Adwaita/` would, for every app
//! of the host under the Adwaita theme).
//!
//! - A themed icon `NAME` the box ships in hicolor (`<icons>/hicolor/<a>/<b>/NAME.<ext>`)
//!   is copied as it is: to `$XDG_DATA_HOME/icons/hicolor/<a>/<b>/`, every size.
//! - Otherwise, from the box's other themes, the best one: scalable (SVG) before the
//!   largest bitmap, placed in `hicolor/scalable/apps/` or `hicolor/<N>x<N>/apps/`.
//! - A pixmap `/usr/share/pixmaps/NAME.<ext>` (or, when no exact file exists anywhere,
//!   the sized variants Debian ships, like `NAME_32x32.xpm`) goes to
//!   `hicolor/<N>x<N>/apps/NAME.<ext>` when its size can be read (PNG IHDR, XPM header;
//!   SVG as `scalable`) and is one of hicolor's sizes, else to `$XDG_DATA_HOME/icons/`
//!   (the spec's fallback directory).
//! - An absolute `Icon=` path is copied under `$XDG_DATA_HOME/icons/box/<box>/` and the
//!   entry points at the copy. Its file name is the source's with a hash of the source
//!   path and content before the extension (`icon-0123456789abcdef.png`): two apps'
//!   `/opt/appx/icon.png` and `/opt/appy/icon.png` get a file each, and only the same
//!   file of the box, unchanged, is shared by the apps that name it.
//! - `Icon=NAME.png` (an extension, which the spec does not allow but GTK and KDE strip)
//!   is looked up as `NAME`; the entry then names `NAME`.
//!
//! Invariants (an image's author chooses every icon name and path, and may link its
//! files anywhere):
//! - Icons are read only from the box's own files, through [`BoxRoot::own_files`]: a
//!   path that leads into a directory the box shares with the host (the home, `/tmp`,
//!   the runtime directory, `/run/host`, a volume; directly, by a symlink or through
//!   `..`) is never read, so box cannot be made to copy the user's own files out.
//! - A copy is made only of a file that is an image by its content ([`is_image`]: PNG,
//!   SVG, gzip'd SVG, XPM), and only when everyone may read the source (mode `o+r`):
//!   copies are written 0644, and a copy must not widen who can read a file.
//! - What fails these checks is left out with the reason ([`Skip`]); the application is
//!   still exported (the host theme may have an icon of that name).
//!
//! Everything else here is planning: paths are relative to the host icons directory;
//! the caller writes the files through the export ledger (never over a foreign file).

use std::path::PathBuf;

use anyhow::Result;

use super::boxfs::{self, BoxRoot};

/// Why an icon file of the box is not copied to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The file in the box.
    pub source: String,
    /// Why, as a clause: "it is not a PNG, SVG or XPM image".
    pub reason: String,
}

/// The bytes of icon file `source`, read from `root` (an [`BoxRoot::own_files`] view of
/// box `box_name`), or why it is not copied (see the module doc).
pub fn load(root: &BoxRoot, box_name: &str, source: &str) -> Result<Vec<u8>, Skip> {
    let skip = |reason: String| Skip {
        source: source.to_owned(),
        reason,
    };
    let shared = || {
        skip(format!(
            "it lies in a directory box `{box_name}` shares with the host, and box copies only the box's own files"
        ))
    };
    let unreadable = |mode: u32| {
        skip(format!(
            "it is not readable by everyone in box `{box_name}` (mode {mode:04o}), and its copy would be"
        ))
    };
    // The mode first (no read permission needed), so a private file is named as one.
    match root.meta(source) {
        Err(err) if boxfs::is_shared(&err) => return Err(shared()),
        Err(err) => {
            return Err(skip(format!(
                "it cannot be read: {}",
                crate::error::message(&err)
            )));
        }
        Ok(None) => return Err(skip("it does not exist".into())),
        Ok(Some(meta)) if !meta.is_file() => return Err(skip("it is not a regular file".into())),
        Ok(Some(meta)) if meta.mode & 0o004 == 0 => return Err(unreadable(meta.mode)),
        Ok(Some(_)) => {}
    }
    // Again on the file read: the box may have replaced it since.
    let (bytes, mode) = match root.read_with_mode(source, MAX_ICON) {
        Err(err) if boxfs::is_shared(&err) => return Err(shared()),
        Err(err) => {
            return Err(skip(format!(
                "it cannot be read: {}",
                crate::error::message(&err)
            )));
        }
        Ok(read) => read,
    };
    if mode & 0o004 == 0 {
        return Err(unreadable(mode));
    }
    if !is_image(&bytes) {
        return Err(skip("it is not a PNG, SVG or XPM image".into()));
    }
    Ok(bytes)
}

/// Whether `bytes` are an image a desktop shows as an icon, by content: a PNG (its
/// signature), an XPM (its `/* XPM */` header), an SVG (an XML document whose first
/// element is `svg`), or a gzip'd SVG (`.svgz`, which GTK reads).
pub fn is_image(bytes: &[u8]) -> bool {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const GZIP: &[u8] = b"\x1f\x8b";
    if bytes.starts_with(PNG) {
        return true;
    }
    if bytes.starts_with(GZIP) {
        use std::io::Read;
        let mut head = Vec::new();
        let _ = flate2::read::GzDecoder::new(bytes)
            .take(SNIFF as u64)
            .read_to_end(&mut head);
        return is_svg(&head);
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SNIFF)]);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    text.starts_with("/* XPM */") || is_svg(bytes)
}

/// How much of a file the content checks look at.
const SNIFF: usize = 4096;

/// Whether `bytes` start an SVG document: after an optional byte order mark, the XML
/// declaration, processing instructions, comments and a doctype, an `<svg` element.
fn is_svg(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SNIFF)]);
    let mut rest = text.trim_start_matches('\u{feff}');
    loop {
        rest = rest.trim_start();
        let end = if rest.starts_with("<?") {
            rest.find("?>").map(|i| i + 2)
        } else if rest.starts_with("<!--") {
            rest.find("-->").map(|i| i + 3)
        } else if rest.starts_with("<!") {
            // A doctype's internal subset ([...]) may hold `>`.
            match (rest.find('['), rest.find('>')) {
                (Some(open), Some(close)) if open < close => rest.find("]>").map(|i| i + 2),
                (_, close) => close.map(|i| i + 1),
            }
        } else {
            let Some(after) = rest.strip_prefix("<svg") else {
                return false;
            };
            return after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_whitespace() || c == '>' || c == '/');
        };
        match end {
            Some(end) => rest = &rest[end..],
            None => return false,
        }
    }
}

/// Whether box path `path` is worth a look as an icon file: a regular file, or a path
/// that leads out of the box's own files (kept, so [`load`] says why it is not copied).
fn is_candidate(root: &BoxRoot, path: &str) -> Result<bool> {
    match root.meta(path) {
        Ok(meta) => Ok(meta.is_some_and(|m| m.is_file())),
        Err(err) if boxfs::is_shared(&err) => Ok(true),
        Err(err) => Err(err),
    }
}

/// Icon theme roots in a box.
const THEME_ROOTS: [&str; 2] = ["/usr/local/share/icons", "/usr/share/icons"];
/// The legacy pixmap directory.
const PIXMAPS: &str = "/usr/share/pixmaps";
/// Extensions of themed icons (the spec's three, plus compressed SVG GTK reads).
const THEME_EXTS: [&str; 4] = ["png", "svg", "svgz", "xpm"];
const PIXMAP_EXTS: [&str; 3] = ["png", "svg", "xpm"];
/// The fallback theme.
const HICOLOR: &str = "hicolor";
/// The bitmap sizes of hicolor's `<N>x<N>/apps` directories (hicolor-icon-theme's
/// index.theme): a copy in a size directory the host's index.theme lacks is never found.
const HICOLOR_SIZES: [u32; 13] = [16, 22, 24, 32, 36, 48, 64, 72, 96, 128, 192, 256, 512];
/// The largest icon file box copies.
pub const MAX_ICON: u64 = 8 << 20;

/// One icon file to copy: from `source` in the box to `dest`, relative to the host's
/// `$XDG_DATA_HOME/icons`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IconCopy {
    pub source: String,
    pub dest: PathBuf,
}

/// Whether `name` is a plain icon name (not a path, nothing that could climb out of the
/// icons directory): also what an entry may keep naming on the host when the box has no
/// file for it.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

/// `value` without an image file extension (`app.png` -> `app`), as GTK and KDE look it
/// up; other values as they are (`org.gnome.Foo` keeps its dots).
pub fn without_extension(value: &str) -> &str {
    match value.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && THEME_EXTS.contains(&ext) => stem,
        _ => value,
    }
}

/// Where a bitmap of `size` (width, height) named `file` goes on the host.
fn bitmap_dest(size: Option<(u32, u32)>, file: &str) -> PathBuf {
    match size {
        Some((w, h)) if w == h && HICOLOR_SIZES.contains(&w) => {
            PathBuf::from(format!("{HICOLOR}/{w}x{h}/apps/{file}"))
        }
        _ => PathBuf::from(file),
    }
}

/// Every copy needed for icon `name` (an icon name, not a path), looked up in `root`
/// (an [`BoxRoot::own_files`] view); the caller [`load`]s each.
pub fn find_named(root: &BoxRoot, name: &str) -> Result<Vec<IconCopy>> {
    let mut copies: Vec<IconCopy> = Vec::new();
    if !is_plain_name(name) {
        return Ok(copies);
    }
    let add = |copies: &mut Vec<IconCopy>, source: String, dest: PathBuf| {
        // The first source for a destination wins (/usr/local before /usr).
        if !copies.iter().any(|c| c.dest == dest) {
            copies.push(IconCopy { source, dest });
        }
    };
    // (theme, a/b below the theme, file name, box path) of every themed file.
    let mut themed: Vec<(String, String, String, String)> = Vec::new();
    for theme_root in THEME_ROOTS {
        for (theme, _) in root.list_readable(theme_root)? {
            let theme_dir = boxfs::join(theme_root, &theme);
            if !root.is_dir(&theme_dir) {
                continue;
            }
            for (a, _) in root.list_readable(&theme_dir)? {
                let a_dir = boxfs::join(&theme_dir, &a);
                if !root.is_dir(&a_dir) {
                    continue;
                }
                for (b, _) in root.list_readable(&a_dir)? {
                    let b_dir = boxfs::join(&a_dir, &b);
                    for ext in THEME_EXTS {
                        let file = format!("{name}.{ext}");
                        let source = boxfs::join(&b_dir, &file);
                        if is_candidate(root, &source)? {
                            themed.push((theme.clone(), format!("{a}/{b}"), file, source));
                        }
                    }
                }
            }
        }
    }
    if themed.iter().any(|t| t.0 == HICOLOR) {
        for (_, rel, file, source) in themed.iter().filter(|t| t.0 == HICOLOR) {
            add(
                &mut copies,
                source.clone(),
                [HICOLOR, rel.as_str(), file.as_str()].iter().collect(),
            );
        }
    } else if let Some((source, dest)) = best_of_other_themes(root, &themed)? {
        add(&mut copies, source, dest);
    }
    let mut pixmaps: Vec<String> = Vec::new();
    for ext in PIXMAP_EXTS {
        let source = boxfs::join(PIXMAPS, &format!("{name}.{ext}"));
        if is_candidate(root, &source)? {
            pixmaps.push(source);
        }
    }
    if copies.is_empty() && pixmaps.is_empty() {
        // Debian's xterm ships only mini.xterm_32x32.xpm and friends.
        for (file, _) in root.list_readable(PIXMAPS)? {
            if is_sized_variant(&file, name) {
                pixmaps.push(boxfs::join(PIXMAPS, &file));
            }
        }
    }
    for source in pixmaps {
        let ext = source.rsplit('.').next().unwrap_or_default().to_owned();
        let file = format!("{name}.{ext}");
        let dest = if ext == "svg" {
            PathBuf::from(format!("{HICOLOR}/scalable/apps/{file}"))
        } else {
            bitmap_dest(size_of(root, &source), &file)
        };
        add(&mut copies, source, dest);
    }
    Ok(copies)
}

/// The best icon among other themes' files (`themed` as [`find_named`] lists them):
/// the first scalable one, else the largest bitmap of a hicolor size, else the largest
/// readable one (placed in the fallback directory). Its hicolor destination with it.
fn best_of_other_themes(
    root: &BoxRoot,
    themed: &[(String, String, String, String)],
) -> Result<Option<(String, PathBuf)>> {
    if let Some((_, _, file, source)) = themed
        .iter()
        .find(|t| t.2.ends_with(".svg") || t.2.ends_with(".svgz"))
    {
        return Ok(Some((
            source.clone(),
            PathBuf::from(format!("{HICOLOR}/scalable/apps/{file}")),
        )));
    }
    // (is a hicolor size, width) orders the bitmaps; the first of equals wins.
    let mut best: Option<((bool, u32), String, PathBuf)> = None;
    for (_, _, file, source) in themed {
        let Some((w, h)) = size_of(root, source) else {
            continue;
        };
        let rank = (w == h && HICOLOR_SIZES.contains(&w), w);
        if best.as_ref().is_none_or(|b| rank > b.0) {
            best = Some((rank, source.clone(), bitmap_dest(Some((w, h)), file)));
        }
    }
    Ok(best.map(|(_, source, dest)| (source, dest)))
}

/// The size of icon file `source`, when it can be read (else [`load`] says why not).
fn size_of(root: &BoxRoot, source: &str) -> Option<(u32, u32)> {
    image_size(&root.read(source, MAX_ICON).ok()?)
}

/// Whether pixmap file `file` is a sized variant of icon `name`: `NAME_WxH.ext` or
/// `NAME-WxH.ext`.
fn is_sized_variant(file: &str, name: &str) -> bool {
    let Some((stem, ext)) = file.rsplit_once('.') else {
        return false;
    };
    if !PIXMAP_EXTS.contains(&ext) {
        return false;
    }
    let Some(size) = stem
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('_').or_else(|| rest.strip_prefix('-')))
    else {
        return false;
    };
    let Some((w, h)) = size.split_once('x') else {
        return false;
    };
    !w.is_empty()
        && !h.is_empty()
        && w.bytes().all(|b| b.is_ascii_digit())
        && h.bytes().all(|b| b.is_ascii_digit())
}

/// What an absolute `Icon=` path of the box gives.
#[derive(Debug)]
pub enum PathIcon {
    /// No file there: the host theme may still have the icon.
    Missing,
    /// A file box does not copy, and why.
    Skipped(Skip),
    /// The copy to make, with the bytes to write.
    Copy(IconCopy, Vec<u8>),
}

/// The copy for an absolute `Icon=` path, read from `root` (an [`BoxRoot::own_files`]
/// view of box `box_name`).
pub fn find_path(root: &BoxRoot, box_name: &str, path: &str) -> Result<PathIcon> {
    if !is_candidate(root, path)? {
        return Ok(PathIcon::Missing);
    }
    let Some(file) = path.rsplit('/').next().filter(|f| is_plain_name(f)) else {
        return Ok(PathIcon::Missing);
    };
    let bytes = match load(root, box_name, path) {
        Ok(bytes) => bytes,
        Err(skip) => return Ok(PathIcon::Skipped(skip)),
    };
    let dest = ["box", box_name, &path_copy_name(path, file, &bytes)]
        .iter()
        .collect();
    Ok(PathIcon::Copy(
        IconCopy {
            source: path.to_owned(),
            dest,
        },
        bytes,
    ))
}

/// The host file name of the copy of icon file `path` (named `file`) holding `bytes`:
/// `file` with 16 hex digits of the sha256 of path and content before its extension.
fn path_copy_name(path: &str, file: &str, bytes: &[u8]) -> String {
    let mut hasher = crate::digest::Hasher::new();
    hasher.update(path.as_bytes());
    // The path cannot hold a NUL: this separates it from the content unambiguously.
    hasher.update(&[0]);
    hasher.update(bytes);
    let digest = hasher.finish();
    let hash = &digest.hex()[..16];
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{hash}.{ext}"),
        _ => format!("{file}-{hash}"),
    }
}

/// Width and height of a PNG (from its IHDR chunk) or an XPM (from its values line).
pub fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) {
        if bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
            return None;
        }
        let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
        let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
        return Some((w, h));
    }
    let text = std::str::from_utf8(&bytes[..bytes.len().min(4096)]).ok()?;
    if !text.contains("XPM") {
        return None;
    }
    // The first string after the array's opening brace is "<w> <h> <ncolors> <cpp>".
    let after_brace = &text[text.find('{')? + 1..];
    let start = after_brace.find('"')? + 1;
    let end = start + after_brace[start..].find('"')?;
    let mut numbers = after_brace[start..end].split_whitespace();
    let w = numbers.next()?.parse().ok()?;
    let h = numbers.next()?.parse().ok()?;
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend(w.to_be_bytes());
        b.extend(h.to_be_bytes());
        b.extend([8, 6, 0, 0, 0]);
        b
    }

    fn xpm(w: u32) -> String {
        format!("/* XPM */\nstatic char * x_xpm[] = {{\n\"{w} {w} 2 1\",\n\"  c None\",\n}};\n")
    }

    #[test]
    fn sizes_are_read_from_png_and_xpm() {
        assert_eq!(image_size(&png(48, 48)), Some((48, 48)));
        assert_eq!(image_size(xpm(32).as_bytes()), Some((32, 32)));
        assert_eq!(image_size(b"<svg/>"), None);
        assert_eq!(image_size(b"\x89PNG\r\n\x1a\n"), None);
    }

    #[test]
    fn images_are_known_by_their_content() {
        assert!(is_image(&png(16, 16)));
        assert!(is_image(xpm(16).as_bytes()));
        for svg in [
            "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            "\u{feff}<?xml version=\"1.0\"?>\n<!-- by hand -->\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x.dtd\" [ <!ENTITY a \"b\"> ]>\n<svg\n width=\"1\">",
            "  <svg>",
        ] {
            assert!(is_image(svg.as_bytes()), "{svg}");
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"<?xml version=\"1.0\"?><svg/>").unwrap();
        assert!(is_image(&gz.finish().unwrap()));
        for not in [
            &b"-----BEGIN OPENSSH PRIVATE KEY-----\n"[..],
            b"root:x:0:0:root:/root:/bin/bash\n",
            b"<html><svg/></html>",
            b"<svgfoo/>",
            b"<?xml version=\"1.0\"?><!-- unterminated",
            b"\x1f\x8bnot gzip",
            b"",
        ] {
            assert!(!is_image(not), "{}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn private_and_non_image_files_are_skipped_with_the_reason() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let put = |name: &str, bytes: &[u8], mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        put("good.png", &png(16, 16), 0o644);
        put("group.png", &png(16, 16), 0o640);
        put("text.png", b"hello", 0o644);
        let root = BoxRoot::open(dir.path()).unwrap().own_files().unwrap();
        assert_eq!(load(&root, "dev", "/good.png").unwrap(), png(16, 16));
        let reason = |path: &str| load(&root, "dev", path).unwrap_err().reason;
        assert_eq!(
            reason("/group.png"),
            "it is not readable by everyone in box `dev` (mode 0640), and its copy would be"
        );
        assert_eq!(reason("/text.png"), "it is not a PNG, SVG or XPM image");
        assert_eq!(reason("/none.png"), "it does not exist");
        assert_eq!(reason("/"), "it is not a regular file");
    }

    #[test]
    fn extensions_are_stripped_like_gtk_does() {
        assert_eq!(without_extension("app.svg"), "app");
        assert_eq!(without_extension("app.png"), "app");
        assert_eq!(
            without_extension("org.gnome.Calculator"),
            "org.gnome.Calculator"
        );
        assert_eq!(without_extension("mini.xterm"), "mini.xterm");
        assert_eq!(without_extension(".png"), ".png");
    }

    #[test]
    fn sized_variants_are_recognised() {
        assert!(is_sized_variant("mini.xterm_32x32.xpm", "mini.xterm"));
        assert!(is_sized_variant("xterm-48x48.png", "xterm"));
        assert!(!is_sized_variant("xterm-color_48x48.xpm", "xterm"));
        assert!(!is_sized_variant("xterm_big.xpm", "xterm"));
        assert!(!is_sized_variant("xterm_32x32.gif", "xterm"));
    }

    #[test]
    fn themed_icons_and_pixmaps_are_found_like_debian_ships_them() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let put = |path: &str, bytes: &[u8]| {
            let p = r.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        };
        // xterm's files: a themed SVG for mini.xterm, sized XPMs in pixmaps.
        put(
            "/usr/share/icons/hicolor/scalable/apps/mini.xterm.svg",
            b"<svg/>",
        );
        put(
            "/usr/share/icons/hicolor/48x48/apps/xterm.png",
            &png(48, 48),
        );
        put("/usr/share/icons/breeze/apps/48/xterm.svg", b"<svg/>");
        put(
            "/usr/share/pixmaps/mini.xterm_32x32.xpm",
            xpm(32).as_bytes(),
        );
        put("/usr/share/pixmaps/xterm_32x32.xpm", xpm(32).as_bytes());
        put("/usr/share/pixmaps/xterm_48x48.xpm", xpm(48).as_bytes());
        put("/usr/share/pixmaps/odd_7x9.xpm", b"no header");
        put("/usr/share/pixmaps/plain.png", &png(64, 64));
        put("/usr/share/pixmaps/odd-size.png", &png(40, 40));
        put("/opt/app/logo.png", &png(16, 16));
        // Only in other themes: the best one goes to hicolor, never to Adwaita/ (where
        // it would override the host theme's own icon of that name).
        put("/usr/share/icons/breeze/apps/48/kate.svg", b"<svg/>");
        put("/usr/share/icons/breeze/apps/16/kate.png", &png(16, 16));
        put(
            "/usr/share/icons/Adwaita/32x32/apps/gedit.png",
            &png(32, 32),
        );
        put(
            "/usr/share/icons/Adwaita/256x256/apps/gedit.png",
            &png(256, 256),
        );
        put(
            "/usr/share/icons/Adwaita/44x44/apps/gedit.png",
            &png(44, 44),
        );
        let root = BoxRoot::open(r).unwrap();

        let dests = |name: &str| -> Vec<String> {
            find_named(&root, name)
                .unwrap()
                .into_iter()
                .map(|c| c.dest.display().to_string())
                .collect()
        };
        // Themed icons exist, so the sized pixmaps are not needed.
        assert_eq!(
            dests("mini.xterm"),
            ["hicolor/scalable/apps/mini.xterm.svg"]
        );
        // The app's own hicolor icons win over other themes' versions.
        assert_eq!(dests("xterm"), ["hicolor/48x48/apps/xterm.png"]);
        assert_eq!(dests("kate"), ["hicolor/scalable/apps/kate.svg"]);
        assert_eq!(dests("gedit"), ["hicolor/256x256/apps/gedit.png"]);
        assert_eq!(dests("plain"), ["hicolor/64x64/apps/plain.png"]);
        // 40x40 is no hicolor size directory: the fallback directory finds it.
        assert_eq!(dests("odd-size"), ["odd-size.png"]);
        assert_eq!(dests("odd"), ["odd.xpm"]);
        assert!(dests("missing").is_empty());
        assert!(dests("../etc").is_empty());

        // Only sized pixmaps: each goes to its size directory under the icon's name.
        std::fs::remove_dir_all(r.join("usr/share/icons")).unwrap();
        assert_eq!(
            dests("xterm"),
            [
                "hicolor/32x32/apps/xterm.xpm",
                "hicolor/48x48/apps/xterm.xpm"
            ]
        );

        let PathIcon::Copy(copy, bytes) = find_path(&root, "dev", "/opt/app/logo.png").unwrap()
        else {
            panic!("no copy of /opt/app/logo.png");
        };
        assert_eq!(bytes, png(16, 16));
        let dest = copy.dest.to_str().unwrap();
        assert!(
            dest.starts_with("box/dev/logo-") && dest.ends_with(".png") && dest.len() == 33,
            "{dest}"
        );
        // Same name, another path or another content: another file. Same both: the same.
        put("/opt/other/logo.png", &png(16, 16));
        put("/opt/third/logo.png", &png(32, 32));
        let dest_of = |path: &str| match find_path(&root, "dev", path).unwrap() {
            PathIcon::Copy(copy, _) => copy.dest,
            other => panic!("{path}: {other:?}"),
        };
        assert_ne!(dest_of("/opt/other/logo.png"), copy.dest);
        assert_ne!(
            dest_of("/opt/third/logo.png"),
            dest_of("/opt/other/logo.png")
        );
        assert_eq!(dest_of("/opt/app/logo.png"), copy.dest);
        put("/opt/app/logo.png", &png(48, 48));
        assert_ne!(dest_of("/opt/app/logo.png"), copy.dest);
        put(
            "/opt/app/noext",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
        );
        assert!(
            dest_of("/opt/app/noext")
                .to_str()
                .unwrap()
                .starts_with("box/dev/noext-")
        );
        assert!(matches!(
            find_path(&root, "dev", "/opt/app/none.png").unwrap(),
            PathIcon::Missing
        ));
    }
}
