//! The checks of what a box looks like, as users write it: volumes (`SRC:DST[:ro]`) and
//! hostnames. One place, so that `box create`, `box edit`, a clone's flags and a
//! manifest's keys refuse the same things with the same words.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::error::failure;
use crate::store::containers::Volume;

/// The error for `what` at `path` that could not be looked up: missing, or there but
/// not reachable by the user (EACCES is not "does not exist").
pub fn unreachable_path(err: std::io::Error, what: &str, path: &str) -> anyhow::Error {
    match err.kind() {
        std::io::ErrorKind::NotFound => failure(
            format!("{what} {path} does not exist"),
            "create it first, or fix the path",
        ),
        std::io::ErrorKind::PermissionDenied => failure(
            format!("{what} {path} cannot be reached: permission denied"),
            "a directory on the way is not searchable by you; give a path you can open, or \
             change that directory's permissions",
        ),
        _ => anyhow::Error::from(err)
            .context(format!("looking up {what} {path}"))
            .context(crate::error::Hint("fix the path".into())),
    }
}

/// Parse `SRC:DST[:ro]` (or `:rw`); SRC must exist.
pub fn parse_volume(text: &str) -> Result<Volume> {
    let mut parts: Vec<&str> = text.split(':').collect();
    let read_only = match parts.last() {
        Some(&"ro") if parts.len() == 3 => {
            parts.pop();
            true
        }
        Some(&"rw") if parts.len() == 3 => {
            parts.pop();
            false
        }
        _ => false,
    };
    let hint = "write volumes as SRC:DST or SRC:DST:ro, with absolute DST";
    let [source, target] = parts[..] else {
        bail!(failure(format!("`{text}` is not a volume"), hint));
    };
    let target = PathBuf::from(target);
    if !target.is_absolute() || source.is_empty() {
        bail!(failure(format!("`{text}` is not a volume"), hint));
    }
    // `..` would be resolved inside the box, somewhere else than the user wrote.
    if target
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        bail!(failure(
            format!("the volume target {} contains `..`", target.display()),
            "write the target as a plain absolute path inside the box, e.g. /data",
        ));
    }
    let source = std::fs::canonicalize(source)
        .map_err(|err| unreachable_path(err, "the volume source", source))?;
    Ok(Volume {
        source,
        target,
        read_only,
    })
}

pub fn validate_hostname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        bail!(
            failure(
                format!("`{name}` is not a valid hostname"),
                "use letters, digits and `-`, in dot-separated labels, at most 64 characters",
            )
            .context(crate::error::Exit(crate::error::EXIT_USAGE))
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn volumes_parse_and_need_an_existing_source() {
        let v = parse_volume("/tmp:/data:ro").unwrap();
        assert_eq!(v.target, Path::new("/data"));
        assert!(v.read_only);
        assert!(!parse_volume("/tmp:/data").unwrap().read_only);
        let err = parse_volume("/no/such/dir:/data").unwrap_err();
        assert!(crate::error::message(&err).contains("/no/such/dir does not exist"));
        assert!(parse_volume("/tmp:rel").is_err());
        let err = parse_volume("/tmp:/a/../etc").unwrap_err();
        assert!(crate::error::message(&err).contains("contains `..`"));
        assert!(parse_volume("/tmp").is_err());
    }

    #[test]
    fn hostnames_are_checked() {
        validate_hostname("devbox").unwrap();
        validate_hostname("a.b-c").unwrap();
        assert!(validate_hostname("-x").is_err());
        let err = validate_hostname("a b").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_USAGE);
    }
}
