//! X authority files (`~/.Xauthority`, `$XAUTHORITY`): reading and writing their binary
//! format, and the wildcard copy a box with a hostname or home of its own gets.
//!
//! The format (libXau's `XauReadAuth`/`XauWriteAuth`): a sequence of entries, each a
//! big-endian `u16` family followed by four byte strings, address, display number,
//! authorization name (`MIT-MAGIC-COOKIE-1`) and data (the cookie), each a big-endian
//! `u16` length and that many bytes. Nothing else: no header, no terminator.
//!
//! Why a copy: the cookie an X server checks is looked up by the client in the authority
//! file by (family, address, display number). For a local display the entry is written
//! with family `FamilyLocal` and the address = the host's name, and libXau/libxcb look it
//! up with the name of the machine they run on: in a box with `--hostname otherbox` that
//! is `otherbox`, and nothing matches ("Authorization required, but no authorization
//! protocol specified"). An entry of family `FamilyWild` (0xffff) matches any address,
//! which is what `xauth nmerge` with an `ffff` family does by hand. A box with a home of
//! its own (`--home`) does not see the host's `~/.Xauthority` at `$HOME/.Xauthority`
//! either. So such boxes get a file of their own, holding a wildcard copy of this host's
//! entries, rewritten whenever the host's file changes (see `runtime::follow`), and a
//! join from a session with another file gets a copy of that one (see the runtime's X11
//! integration, `runtime::plan::integrations::x11`).

use anyhow::{Result, bail};

/// `FamilyLocal`: a local (unix socket) display, the address is the host name.
pub const FAMILY_LOCAL: u16 = 256;
/// `FamilyWild`: matches any address.
pub const FAMILY_WILD: u16 = 0xffff;

/// One entry of an authority file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub family: u16,
    pub address: Vec<u8>,
    /// The display number as text (`"0"` for `:0`).
    pub number: Vec<u8>,
    /// The authorization protocol, e.g. `MIT-MAGIC-COOKIE-1`.
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

/// The entries of an authority file's bytes; an error says at which byte it is cut short.
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    let u16_at = |at: &mut usize| -> Result<u16> {
        let Some(pair) = bytes.get(*at..*at + 2) else {
            bail!("the file ends inside an entry (at byte {})", *at);
        };
        *at += 2;
        Ok(u16::from_be_bytes([pair[0], pair[1]]))
    };
    let string_at = |at: &mut usize| -> Result<Vec<u8>> {
        let len = usize::from(u16_at(at)?);
        let Some(text) = bytes.get(*at..*at + len) else {
            bail!(
                "a field of {len} bytes at byte {} runs past the end of the file ({} bytes)",
                *at,
                bytes.len()
            );
        };
        *at += len;
        Ok(text.to_vec())
    };
    while at < bytes.len() {
        entries.push(Entry {
            family: u16_at(&mut at)?,
            address: string_at(&mut at)?,
            number: string_at(&mut at)?,
            name: string_at(&mut at)?,
            data: string_at(&mut at)?,
        });
    }
    Ok(entries)
}

/// The bytes of an authority file holding `entries`. Fields longer than 65535 bytes
/// cannot be written and are cut (no real entry comes near).
pub fn write(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend_from_slice(&entry.family.to_be_bytes());
        for field in [&entry.address, &entry.number, &entry.name, &entry.data] {
            let field = &field[..field.len().min(usize::from(u16::MAX))];
            out.extend_from_slice(&(field.len() as u16).to_be_bytes());
            out.extend_from_slice(field);
        }
    }
    out
}

/// The entries of `entries` that are this host's (`FamilyLocal` with address
/// `hostname`, then those already `FamilyWild`), as `FamilyWild` entries: they match
/// whatever the box's hostname is. One per (display number, protocol), the first one
/// found, as libXau would pick it on the host.
pub fn wildcard_copy(entries: &[Entry], hostname: &str) -> Vec<Entry> {
    let local = entries
        .iter()
        .filter(|e| e.family == FAMILY_LOCAL && e.address == hostname.as_bytes());
    let wild = entries.iter().filter(|e| e.family == FAMILY_WILD);
    let mut out: Vec<Entry> = Vec::new();
    for entry in local.chain(wild) {
        if out
            .iter()
            .any(|o| o.number == entry.number && o.name == entry.name)
        {
            continue;
        }
        out.push(Entry {
            family: FAMILY_WILD,
            ..entry.clone()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(family: u16, address: &str, number: &str, cookie: &[u8]) -> Entry {
        Entry {
            family,
            address: address.as_bytes().to_vec(),
            number: number.as_bytes().to_vec(),
            name: b"MIT-MAGIC-COOKIE-1".to_vec(),
            data: cookie.to_vec(),
        }
    }

    /// What `xauth -f F add laptop/unix:8 MIT-MAGIC-COOKIE-1 00112233` writes, byte for
    /// byte (checked against xauth 1.1.2).
    const XAUTH_ADD: &[u8] =
        b"\x01\x00\x00\x06laptop\x00\x018\x00\x12MIT-MAGIC-COOKIE-1\x00\x04\x00\x11\x22\x33";

    #[test]
    fn an_entry_written_by_xauth_reads_and_writes_back_identically() {
        let entries = parse(XAUTH_ADD).unwrap();
        assert_eq!(
            entries,
            [entry(FAMILY_LOCAL, "laptop", "8", &[0, 0x11, 0x22, 0x33])]
        );
        assert_eq!(write(&entries), XAUTH_ADD);
        assert_eq!(parse(b"").unwrap(), []);
    }

    #[test]
    fn a_cut_file_is_an_error_naming_the_byte() {
        let err = parse(&XAUTH_ADD[..XAUTH_ADD.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("runs past the end"), "{err}");
        let err = parse(&XAUTH_ADD[..1]).unwrap_err();
        assert!(err.to_string().contains("at byte 0"), "{err}");
    }

    #[test]
    fn the_copy_has_this_hosts_entries_as_wildcards_first_one_per_display() {
        let host = [
            entry(FAMILY_LOCAL, "otherhost", "0", b"theirs"),
            entry(FAMILY_LOCAL, "laptop", "0", b"mine0"),
            entry(0, "\x7f\0\0\x01", "0", b"tcp"),
            entry(FAMILY_WILD, "", "0", b"older"),
            entry(FAMILY_WILD, "", "1", b"mine1"),
        ];
        let copy = wildcard_copy(&host, "laptop");
        assert_eq!(
            copy,
            [
                entry(FAMILY_WILD, "laptop", "0", b"mine0"),
                entry(FAMILY_WILD, "", "1", b"mine1"),
            ]
        );
        assert_eq!(parse(&write(&copy)).unwrap(), copy);
        assert_eq!(wildcard_copy(&host[..1], "laptop"), []);
    }
}
