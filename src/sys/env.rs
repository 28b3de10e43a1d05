//! The process environment's one reader: every variable box reads goes through the typed
//! accessors here, so what box takes from its environment is found in one place (a
//! `disallowed-methods` list in `clippy.toml` keeps `std::env::var*` out of other modules).
//!
//! Invariants:
//! - each accessor is one `getenv` (or one walk of the environment, [`all`]) and nothing
//!   more: no file read, no allocation beyond the value itself, so `box run`'s join reads
//!   exactly what it names;
//! - box never changes its own environment (`set_var` and `remove_var` are disallowed
//!   too): a command's environment is built and passed to it, which stays sound in a
//!   process that has threads.

use std::ffi::OsString;
use std::path::PathBuf;

/// The value of `name` as the system holds it (any bytes), `None` when unset.
#[inline]
pub fn os(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The value of `name` when it is set and not empty (for most variables an empty value
/// means the same as none).
#[inline]
pub fn non_empty(name: &str) -> Option<OsString> {
    os(name).filter(|v| !v.is_empty())
}

/// The value of `name` as text: `None` when unset or not valid UTF-8.
#[inline]
pub fn text(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// An absolute path from `name` (`HOME`, the XDG directories): `None` when it is unset,
/// empty or relative. The XDG base directory spec says relative paths are invalid and
/// must be ignored.
#[inline]
pub fn absolute_path(name: &str) -> Option<PathBuf> {
    os(name).map(PathBuf::from).filter(|p| p.is_absolute())
}

/// A yes/no setting (`BOX_SKIP_WORKDIR=1`): `Some(true)` for `1`, `true`, `yes` or `on` in
/// any case, `Some(false)` for any other text, `None` when unset, empty or not UTF-8.
#[inline]
pub fn flag(name: &str) -> Option<bool> {
    text(name).filter(|v| !v.is_empty()).map(|v| is_yes(&v))
}

/// Whether a setting's text means yes (see [`flag`]).
pub fn is_yes(value: &str) -> bool {
    ["1", "true", "yes", "on"]
        .iter()
        .any(|yes| value.eq_ignore_ascii_case(yes))
}

/// `PATH`, empty when unset (then no directory is searched, as `execvp` would not).
#[inline]
pub fn search_path() -> OsString {
    os("PATH").unwrap_or_default()
}

/// The directory for temporary files: `TMPDIR` when set, else `/tmp`.
#[inline]
pub fn temp_dir() -> PathBuf {
    std::env::temp_dir()
}

/// Every variable, names and values as the system holds them, in its order.
#[inline]
pub fn all() -> std::env::VarsOs {
    std::env::vars_os()
}

/// Every variable whose name and value are text (UTF-8); the others are left out.
pub fn all_text() -> impl Iterator<Item = (String, String)> {
    all().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_is_one_of_four_words_in_any_case() {
        for yes in ["1", "true", "TRUE", "Yes", "on", "ON"] {
            assert!(is_yes(yes), "{yes}");
        }
        for no in ["0", "false", "no", "off", "2", "y", " 1", ""] {
            assert!(!is_yes(no), "{no}");
        }
    }

    #[test]
    fn the_accessors_read_this_process_environment() {
        // A variable this process has that holds an absolute path (PATH, HOME, PWD, ...);
        // none is written: see the module doc.
        let (name, value) = all()
            .find(|(name, value)| {
                name.to_str().is_some() && value.to_str().is_some_and(|v| v.starts_with('/'))
            })
            .expect("some variable holds an absolute path");
        let name = name.to_str().unwrap();
        assert_eq!(os(name).as_ref(), Some(&value));
        assert_eq!(non_empty(name).as_ref(), Some(&value));
        assert_eq!(text(name).as_deref(), value.to_str());
        assert_eq!(absolute_path(name), Some(PathBuf::from(&value)));
        assert_eq!(flag(name), Some(false));
        assert_eq!(search_path(), os("PATH").unwrap_or_default());
        assert_eq!(os("BOX_SURELY_UNSET_VARIABLE_FOR_THIS_TEST"), None);
        assert_eq!(flag("BOX_SURELY_UNSET_VARIABLE_FOR_THIS_TEST"), None);
    }
}
