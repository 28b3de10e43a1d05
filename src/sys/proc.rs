//! What `/proc` tells about a process, read the way the join path needs it: one open and
//! one read(2) into a buffer that fits (a `/proc` file has no size to go by).

use std::path::Path;

/// Read the file at `path` into the start of `buffer` with plain read(2)s, growing the
/// buffer when the file does not fit, and return the file's length. For many small files
/// in a row into one buffer: no size probes (statx, lseek) as `std::fs::read` makes, no
/// allocation per file.
pub fn read_into(path: &Path, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut len = 0;
    loop {
        if len == buffer.len() {
            buffer.resize((buffer.len() * 2).max(4096), 0);
        }
        match file.read(&mut buffer[len..]) {
            Ok(0) => return Ok(len),
            Ok(read) => len += read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// The start time of process `pid`, if it exists and is not a zombie (a killed holder
/// stays a zombie until its parent, often init, reaps it; it holds no namespaces).
pub fn start_time(pid: u32) -> Option<u64> {
    // One read(2) into a buffer that fits the line (std::fs::read would grow from 32
    // bytes: /proc files have no size): this is on the join path.
    let mut stat = vec![0; 1024];
    let len = read_into(Path::new(&format!("/proc/{pid}/stat")), &mut stat).ok()?;
    parse_start_time(&stat[..len])
}

/// Field 22 of a `/proc/PID/stat` line, `None` for a dead (zombie) process. The command
/// name (field 2) is in parentheses and may itself contain spaces and parentheses, so
/// count from the last `)`.
pub fn parse_start_time(stat: &[u8]) -> Option<u64> {
    // After ")" come fields 3, 4, ...: field 3 is the state.
    if matches!(stat_field(stat, 3)?, "Z" | "X" | "x") {
        return None;
    }
    stat_field(stat, 22)?.parse().ok()
}

/// How many threads this process runs (field 20 of `/proc/self/stat`).
pub fn thread_count() -> std::io::Result<u64> {
    let mut stat = vec![0; 1024];
    let len = read_into(Path::new("/proc/self/stat"), &mut stat)?;
    stat_field(&stat[..len], 20)
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| std::io::Error::other("/proc/self/stat has no thread count"))
}

/// Field `n` (1-based, as proc(5) counts, `n` >= 3) of a `/proc/PID/stat` line.
/// What process `pid` uses: its CPU time (user + system, in clock ticks: fields 14 and
/// 15 of its stat line) and its resident memory in pages (field 24); `None` when it is
/// gone or a zombie.
pub fn usage(pid: i32) -> Option<(u64, u64)> {
    let mut stat = vec![0; 1024];
    let len = read_into(Path::new(&format!("/proc/{pid}/stat")), &mut stat).ok()?;
    let stat = &stat[..len];
    if matches!(stat_field(stat, 3)?, "Z" | "X" | "x") {
        return None;
    }
    let field = |n| stat_field(stat, n)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?, field(24)?))
}

fn stat_field(stat: &[u8], n: usize) -> Option<&str> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(n.checked_sub(3)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_odd_command_names() {
        let line = b"1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615\n";
        assert_eq!(parse_start_time(line), Some(987654));
        assert_eq!(parse_start_time(b"garbage"), None);
        let zombie =
            b"1234 (box) Z 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 0 0\n";
        assert_eq!(parse_start_time(zombie), None);
    }

    #[test]
    fn this_test_thread_is_counted() {
        assert!(thread_count().unwrap() >= 1);
    }

    #[test]
    fn our_own_start_time_is_readable() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(u32::MAX), None);
    }
}
