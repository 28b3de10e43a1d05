//! The few syscalls box needs that cannot be called safely from Rust without a word on
//! why they are sound. Every `unsafe` operation of the crate lives here (a test in
//! `src/layering.rs` keeps it so): a wrapper whose soundness it can check itself is a safe
//! function with a `// SAFETY:` comment; one whose soundness depends on its caller
//! ([`fork`], [`close_inherited_fds`], [`take_passed_fd`]) is an `unsafe fn` whose
//! `# Safety` section says what the caller promises, and each call is an `unsafe` block
//! around that one call with a `// SAFETY:` comment saying why the promise holds there.

pub mod boxfs;
#[allow(
    clippy::disallowed_methods,
    reason = "the process environment's one reader (see clippy.toml)"
)]
pub mod env;
pub mod idmap;
pub mod proc;
pub mod protocol;
pub mod userns;

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

/// In a statically linked build (`-C target-feature=+crt-static`, what the packages and
/// the install script ship), keep glibc's name service to the `files` and `dns` modules
/// built into libc, for the user and group databases and host names; a dynamically
/// linked build keeps the host's `/etc/nsswitch.conf` whole. Call first thing in `main`.
///
/// Why: a static glibc still loads the modules `/etc/nsswitch.conf` names (`systemd`,
/// `sss`, `mdns4_minimal`, ...) with dlopen, and those are built for the host's shared
/// libc, not the one linked in: box would crash in getpwuid for a user who is not in
/// `/etc/passwd` (seen: SIGSEGV in libnss_systemd, even with the same glibc version), or
/// load nothing on a host without glibc. The price: a user known only to LDAP, sssd or
/// systemd-homed is not found in the user database, and box takes the name, home and
/// shell from `USER`, `HOME` and `SHELL` instead (`context.rs`).
pub fn static_nss() {
    #[cfg(all(target_env = "gnu", target_feature = "crt-static"))]
    {
        unsafe extern "C" {
            // glibc's <nss.h>: replace the service list of one database.
            fn __nss_configure_lookup(
                db: *const std::ffi::c_char,
                service_line: *const std::ffi::c_char,
            ) -> std::ffi::c_int;
        }
        for (db, line) in [
            (c"passwd", c"files"),
            (c"group", c"files"),
            (c"shadow", c"files"),
            (c"initgroups", c"files"),
            (c"hosts", c"files dns"),
            (c"services", c"files"),
        ] {
            // SAFETY: both arguments are NUL-terminated static strings, valid for the
            // whole program whatever glibc keeps of them; this runs first in main, before
            // any thread exists or any lookup started, as the function requires.
            unsafe {
                __nss_configure_lookup(db.as_ptr(), line.as_ptr());
            }
        }
    }
}

/// `fork(2)`: `Ok(None)` in the child, `Ok(Some(pid))` in the parent.
///
/// For single-threaded processes (the holder), where the child may go on running
/// ordinary Rust code.
///
/// # Safety
///
/// The calling process must have one thread. The child of a multi-threaded process has
/// only the thread that forked: locks other threads held (the allocator's, stdio's) stay
/// locked forever and their data half-written, so it may call only async-signal-safe
/// functions (signal-safety(7)) until it execs, which ordinary Rust code does not keep to.
pub unsafe fn fork() -> io::Result<Option<u32>> {
    // SAFETY: the caller promises a single-threaded process (see `# Safety`), where the
    // child gets a complete, consistent copy of the parent's memory and locks.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid as u32)),
    }
}

/// `fork(2)` of a process that is checked to be single-threaded: `Ok(None)` in the child,
/// `Ok(Some(pid))` in the parent; an error, without forking, when another thread runs.
///
/// The child of a single-threaded process inherits a complete and consistent state (no
/// lock held by a vanished thread), so it may go on running ordinary Rust code: join a
/// box and exec a command there ([`crate::runtime::join::spawn`]).
pub fn fork_single_threaded() -> io::Result<Option<u32>> {
    let threads = proc::thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "cannot fork: {threads} threads run in this process (box forks only when it runs one)"
        )));
    }
    // SAFETY: fork is unsound in multi-threaded programs because the child inherits locks
    // held by threads that do not exist in it; this process was checked just above to run
    // one thread, and nothing between the check and the fork starts one.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid as u32)),
    }
}

/// Spawn `command` as a grandchild: the child std forks forks again, ends at once and
/// is reaped by the caller's `wait` on the returned [`std::process::Child`]; the
/// grandchild execs the program, parented to init (or a subreaper). For a process the
/// caller will not wait for, while the caller goes on to exec something else that must
/// not inherit a child. Safe in a multi-threaded caller: only async-signal-safe calls
/// run between fork and exec. `spawn` returns once the grandchild has exec'd (std's
/// error pipe closes then), with its exec error if it failed.
pub fn spawn_detached(command: &mut std::process::Command) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe functions may be called: fork(2) and _exit(2) are, and it
    // touches no memory of the parent's.
    unsafe {
        command.pre_exec(|| match libc::fork() {
            -1 => Err(io::Error::last_os_error()),
            0 => Ok(()),
            _ => libc::_exit(0),
        });
    }
    command.spawn()
}

/// What [`mount_setattr`] sets on mounts: only flags a user namespace may add to mounts it
/// inherited locked from the host, and private propagation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountAttrs {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    /// Propagation private: mounts the host makes later below the source do not arrive.
    pub private: bool,
}

impl MountAttrs {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == MountAttrs::default()
    }
}

/// `mount_setattr(2)` on the mount `fd` is the root of (`AT_EMPTY_PATH`), and with
/// `recursive` on every mount below it too (`AT_RECURSIVE`): set the flags of `attrs`.
///
/// Setting read-only, nosuid, nodev or noexec and making mounts private are changes a user
/// namespace may make to mounts it inherited locked from the host (mount_namespaces(7)):
/// the kernel refuses to clear those flags there, and this call only sets them, leaving
/// every other attribute as it is. Fails with `ENOSYS` before Linux 5.12.
pub fn mount_setattr(
    fd: std::os::fd::BorrowedFd<'_>,
    attrs: MountAttrs,
    recursive: bool,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    /// `struct mount_attr` of <linux/mount.h> (MOUNT_ATTR_SIZE_VER0, 32 bytes).
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    // The MOUNT_ATTR_* of <linux/mount.h>.
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    const MOUNT_ATTR_NOEXEC: u64 = 0x8;
    /// `MS_PRIVATE` of <linux/mount.h> (a `c_ulong` in libc, 32 bits wide on some targets).
    const MS_PRIVATE: u64 = 1 << 18;
    let set = [
        (attrs.read_only, MOUNT_ATTR_RDONLY),
        (attrs.nosuid, MOUNT_ATTR_NOSUID),
        (attrs.nodev, MOUNT_ATTR_NODEV),
        (attrs.noexec, MOUNT_ATTR_NOEXEC),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |all, (_, bit)| all | bit);
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: if attrs.private { MS_PRIVATE } else { 0 },
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: every pointer passed is valid for the duration of the call: the empty path
    // is a static NUL-terminated string, and `attr` is a live, properly laid out
    // `struct mount_attr` whose size is passed alongside it. The kernel only reads them.
    // The fd is borrowed, so it stays open during the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Bind the host directory `source` (with what is mounted below it) on the directory
/// `target` (a descriptor, so no path is resolved again), with `attrs` on every mount of
/// the bound tree: open_tree(2) `OPEN_TREE_CLONE | AT_RECURSIVE`, [`mount_setattr`] on
/// the detached tree, move_mount(2). Before Linux 5.12 (no mount_setattr), the top mount
/// is remounted with the flags once attached.
pub fn bind_tree(
    source: &std::path::Path,
    target: &std::os::fd::OwnedFd,
    attrs: MountAttrs,
) -> io::Result<()> {
    use rustix::mount::{MountFlags, MoveMountFlags, OpenTreeFlags};
    use std::os::fd::{AsFd, AsRawFd};
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        source,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )?;
    let set = match mount_setattr(tree.as_fd(), attrs, true) {
        Ok(()) => true,
        Err(err) if err.raw_os_error() == Some(libc::ENOSYS) => false,
        Err(err) => return Err(err),
    };
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        target.as_fd(),
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?;
    if set || attrs.is_empty() {
        return Ok(());
    }
    // The path of the tree's descriptor is the mount itself; the flags the host locked
    // on it must be kept (mount_namespaces(7)).
    let path = format!("/proc/self/fd/{}", tree.as_raw_fd());
    let have = rustix::fs::statvfs(path.as_str())?.f_flag;
    let mut flags = MountFlags::BIND;
    use rustix::fs::StatVfsMountFlags as V;
    for (on, flag) in [
        (
            attrs.read_only || have.contains(V::RDONLY),
            MountFlags::RDONLY,
        ),
        (attrs.nosuid || have.contains(V::NOSUID), MountFlags::NOSUID),
        (attrs.nodev || have.contains(V::NODEV), MountFlags::NODEV),
        (attrs.noexec || have.contains(V::NOEXEC), MountFlags::NOEXEC),
        (have.contains(V::NOATIME), MountFlags::NOATIME),
        (have.contains(V::NODIRATIME), MountFlags::NODIRATIME),
        (have.contains(V::RELATIME), MountFlags::RELATIME),
    ] {
        if on {
            flags |= flag;
        }
    }
    Ok(rustix::mount::mount_remount(path.as_str(), flags, "")?)
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

/// Set the disposition of `signals` to `handler` (SIG_IGN or SIG_DFL only); returns the
/// old ones.
fn set_dispositions(
    signals: &[nix::sys::signal::Signal],
    handler: nix::sys::signal::SigHandler,
) -> Vec<(nix::sys::signal::Signal, nix::sys::signal::SigHandler)> {
    use nix::sys::signal::{SigHandler, signal};
    assert!(
        matches!(handler, SigHandler::SigIgn | SigHandler::SigDfl),
        "only SIG_IGN and SIG_DFL are installed here"
    );
    signals
        .iter()
        // SAFETY: SIG_IGN and SIG_DFL (asserted above) run no handler code, so none of
        // the async-signal-safety rules that make `signal` unsafe apply. Restoring an old
        // disposition (see `Ignored`) reinstalls what was there before.
        .filter_map(|&sig| Some((sig, unsafe { signal(sig, handler) }.ok()?)))
        .collect()
}

/// Signals ignored until this is dropped, then restored to what they were.
pub struct Ignored(Vec<(nix::sys::signal::Signal, nix::sys::signal::SigHandler)>);

impl Drop for Ignored {
    fn drop(&mut self) {
        for &(sig, old) in &self.0 {
            // SAFETY: `old` is the disposition `signal` returned for `sig`: a handler
            // that was installed before, or SIG_IGN/SIG_DFL; reinstalling it is as sound
            // as it was then.
            let _ = unsafe { nix::sys::signal::signal(sig, old) };
        }
    }
}

/// Ignore SIGINT and SIGQUIT while a child runs on the terminal (as `system(3)` does):
/// the terminal's Ctrl-C and Ctrl-\ are for the child.
pub fn ignore_interrupts() -> Ignored {
    use nix::sys::signal::{SigHandler, Signal};
    Ignored(set_dispositions(
        &[Signal::SIGINT, Signal::SIGQUIT],
        SigHandler::SigIgn,
    ))
}

/// Give SIGINT and SIGQUIT their default action back (a child of a caller that ignores
/// them while the child has the terminal, before it execs).
pub fn default_interrupts() {
    use nix::sys::signal::{SigHandler, Signal};
    set_dispositions(&[Signal::SIGINT, Signal::SIGQUIT], SigHandler::SigDfl);
}

/// End this process at once with `code`, running no exit handlers and flushing no
/// buffers: for a forked child, whose copies of the parent's buffers are the parent's to
/// write.
pub fn exit_now(code: u8) -> ! {
    // SAFETY: _exit(2) ends the process without touching any memory of it; no Rust
    // invariant can be broken by a process that no longer runs.
    unsafe { libc::_exit(i32::from(code)) }
}

/// Whether SIGINT arrived while an [`Interrupts`] guard was alive.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_interrupt(_signal: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// SIGINT noted rather than fatal while this guard lives (a Ctrl-C during long work
/// that runs children on the terminal: the foreground child gets it and ends, this
/// process says what was interrupted); the old disposition comes back on drop.
pub struct Interrupts {
    old: Option<nix::sys::signal::SigAction>,
}

impl Interrupts {
    pub fn note() -> Interrupts {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        INTERRUPTED.store(false, std::sync::atomic::Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(note_interrupt),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; it
        // touches no other state of the program.
        let old = unsafe { sigaction(Signal::SIGINT, &action) }.ok();
        Interrupts { old }
    }

    /// Whether SIGINT arrived since [`Interrupts::note`].
    pub fn arrived(&self) -> bool {
        INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            // SAFETY: reinstalls the disposition `sigaction` returned for SIGINT; it is as
            // sound as it was before.
            let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, old) };
        }
    }
}

/// Ignore SIGHUP and SIGINT for good (a process that must outlive its terminal).
pub fn ignore_hangups() {
    use nix::sys::signal::{SigHandler, Signal};
    set_dispositions(&[Signal::SIGHUP, Signal::SIGINT], SigHandler::SigIgn);
}

/// End this process by `signal`, as its default action does (a shell then reports the
/// signal, as for the command that was killed by it): default disposition, unblocked,
/// raised. Returns when the signal does not end a process (SIGTSTP, SIGCONT, ...).
pub fn die_by(signal: nix::sys::signal::Signal) {
    use nix::sys::signal::{SigHandler, SigSet};
    set_dispositions(&[signal], SigHandler::SigDfl);
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = set.thread_unblock();
    let _ = nix::sys::signal::raise(signal);
}

/// Block until this process's parent has exited (it is gone at once if it already has).
/// The parent is named by getppid(2) and checked again once its pidfd is open, so a pid
/// the kernel gave to another process meanwhile is never waited for.
pub fn wait_for_parent_exit(expected: i32) {
    use rustix::event::{PollFd, PollFlags, poll};
    let parent = rustix::process::getppid();
    if parent.map(|p| p.as_raw_nonzero().get()) != Some(expected) {
        return;
    }
    let Some(pid) = parent else { return };
    let Ok(pidfd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else {
        return;
    };
    if rustix::process::getppid() != Some(pid) {
        return;
    }
    loop {
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(n) if n > 0 => return,
            Err(rustix::io::Errno::INTR) | Ok(_) => continue,
            Err(_) => return,
        }
    }
}

/// Close every file descriptor above 2 that this process inherited.
///
/// For long-lived re-executions of box (the holder): whatever the caller left open (the
/// write end of a pipeline, make's jobserver, a CI runner's pipes) must not be held for
/// the box's lifetime. Call it first thing, before this process opens anything itself.
///
/// # Safety
///
/// No object of this process may own a descriptor above 2 (a `File`, an `OwnedFd`, a
/// library's internal descriptor), and no other thread may open one meanwhile: this
/// closes them all, and such an owner would go on using (or later close) a number that
/// names nothing, or another file opened since under the same number.
pub unsafe fn close_inherited_fds() {
    // SAFETY: the caller makes the same promise (see `# Safety`), and keeps nothing.
    unsafe { close_inherited_fds_except(None) }
}

/// [`close_inherited_fds`], but leave `keep` open: a descriptor the parent passed on
/// purpose ([`pass_fd`]), named on the command line; take it with [`take_passed_fd`].
///
/// # Safety
///
/// As for [`close_inherited_fds`]: no object of this process owns a descriptor above 2
/// but `keep`, and no other thread opens one meanwhile.
pub unsafe fn close_inherited_fds_except(keep: Option<i32>) {
    let keep = keep.filter(|&fd| fd > 2);
    // Everything from 3 up, around `keep` if any.
    let ranges: Vec<(u32, u32)> = match keep {
        Some(fd) => [(3, fd as u32 - 1), (fd as u32 + 1, u32::MAX)]
            .into_iter()
            .filter(|(first, last)| first <= last)
            .collect(),
        None => vec![(3, u32::MAX)],
    };
    let done = ranges.iter().all(|&(first, last)| {
        // SAFETY: close_range only closes descriptors; the caller promises that no object
        // of this process owns one above 2 but `keep`, which these ranges leave out, so
        // nothing will use or close them again.
        unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) == 0 }
    });
    if done {
        return;
    }
    // Kernels before 5.9: list the descriptors first, then close them.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd > 2 && Some(fd) != keep)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: as above (`keep` is filtered out of the list); the directory handle
        // used for the listing is already closed, so closing its old number fails
        // harmlessly with EBADF.
        unsafe { libc::close(fd) };
    }
}

/// Let the child that `command` starts inherit `fd` (under the same number), which box
/// opens close-on-exec everywhere: only that child gets it, not children other threads
/// start meanwhile. Keep `fd` open until `command` is spawned. The child names it with
/// [`take_passed_fd`].
pub fn pass_fd(command: &mut std::process::Command, fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = fd.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe functions may be called: fcntl(2) is, and it touches no memory of
    // the parent's. The caller keeps `fd` open until the command is spawned (documented
    // above), so the number still names the same file at fork.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Descriptor `fd` (a number on this process's command line, see [`pass_fd`]), if it is
/// open; close-on-exec again, so that what this process starts
/// does not inherit it. Call it right after [`close_inherited_fds_except`] kept it.
///
/// # Safety
///
/// Nothing else in this process may own `fd`: the returned `OwnedFd` closes it when
/// dropped, so another owner would use or close a number that names nothing, or another
/// file. Take it once, before anything in the process could have opened that number.
pub unsafe fn take_passed_fd(fd: Option<i32>) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let fd = fd.filter(|&fd| fd > 2)?;
    // SAFETY: F_SETFD only sets the descriptor's flags (and fails if it is not open).
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return None;
    }
    // SAFETY: the descriptor is open (F_SETFD succeeded), and the caller promises that
    // nothing else in this process owns it (see `# Safety`).
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// `ioctl(fd, NS_GET_PARENT)` (ioctl_ns(2)): the parent of the user namespace `fd`
/// refers to, as a new descriptor. `EPERM` once the parent is outside the caller's own
/// user namespace (box walks up from a process's namespace towards its own).
pub fn parent_user_namespace(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    /// `NS_GET_PARENT` of <linux/nsfs.h>: `_IO(0xb7, 0x2)`.
    const NS_GET_PARENT: libc::c_ulong = (0xb7 << 8) | 0x2;
    // SAFETY: NS_GET_PARENT takes no argument and only reads the namespace `fd` refers
    // to; `fd` is borrowed, so it stays open during the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_PARENT as _) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the ioctl returns a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(rc) })
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)` (seccomp(2)): attach the classic-BPF
/// program `prog` to the calling thread. Falls back to `prctl(PR_SET_SECCOMP)` on kernels
/// before 3.17, which lack the seccomp syscall. The caller sets no_new_privs first.
pub fn seccomp_filter(prog: &[libc::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog`, which is borrowed for the whole call and holds
    // `len` initialised `struct sock_filter`s; the kernel copies the program before the
    // call returns and never writes through the pointer (the `*mut` is the C type's).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    // SAFETY: as above; prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog) takes the same
    // `struct sock_fprog` and only reads it during the call.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
