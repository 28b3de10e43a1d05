//! The few syscalls box needs that cannot be called safely from Rust without a word on
//! why they are sound. Every `unsafe` block of the crate lives here.

use std::io;

use rustix::thread::UnshareFlags;

/// `unshare(2)` for namespace flags only.
///
/// Panics if asked to unshare the file table or fs attributes, which are the flags that
/// make rustix mark `unshare` unsafe.
pub fn unshare_namespaces(flags: UnshareFlags) -> io::Result<()> {
    assert!(
        !flags.intersects(UnshareFlags::FILES | UnshareFlags::FS),
        "unshare_namespaces is for namespace flags"
    );
    // SAFETY: rustix marks unshare unsafe because CLONE_FILES and CLONE_FS change state
    // (the fd table, the cwd) that Rust code elsewhere may rely on; the assertion above
    // rules those flags out, and namespace flags do not touch memory.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(io::Error::from)
}

/// `fork(2)`: `Ok(None)` in the child, `Ok(Some(pid))` in the parent.
///
/// Only for single-threaded processes (the holder), where the child may go on running
/// ordinary Rust code.
pub fn fork() -> io::Result<Option<u32>> {
    // SAFETY: fork is unsound in multi-threaded programs because the child inherits
    // locks held by vanished threads. The only caller, the holder, is a fresh exec of
    // box that never starts a thread, so the child's state is complete and consistent.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid as u32)),
    }
}

/// Give SIGPIPE back its default action (end the process), which Rust's runtime sets to
/// "ignore" at startup.
///
/// Called right before box execs a command in a box, because an ignored signal stays
/// ignored across execve(2): without this, `box run NAME -- yes | head` makes `yes`
/// complain of a broken pipe instead of ending quietly as it does on the host. Also
/// called by the listing commands, so that `box list | head` ends quietly.
pub fn default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installing SIG_DFL runs no handler code, so none of the async-signal-safety
    // rules that make `signal` unsafe apply.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Close every file descriptor above 2 that this process inherited.
///
/// For long-lived re-executions of box (the holder): whatever the caller left open (the
/// write end of a pipeline, make's jobserver, a CI runner's pipes) must not be held for
/// the box's lifetime. Call it first thing, before this process opens anything itself.
pub fn close_inherited_fds() {
    // SAFETY: close_range only closes descriptors; the caller guarantees that no Rust
    // object owns one above 2 yet (the process has just started and opened nothing), so
    // nothing will use or close them again.
    let done = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } == 0;
    if done {
        return;
    }
    // Kernels before 5.9: list the descriptors first, then close them.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: as above; the directory handle used for the listing is already closed,
        // so closing its old number fails harmlessly with EBADF.
        unsafe { libc::close(fd) };
    }
}
