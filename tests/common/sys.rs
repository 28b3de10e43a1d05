//! Long-lived helper processes that die with the test process, and the harness's only
//! `unsafe` (the `pre_exec` hook that sets the parent-death signal, and SIGHUP's default
//! action given back).
//!
//! PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process
//! (prctl(2)). libtest runs each test on its own short-lived thread, so a registry spawned
//! from a test thread would be killed as soon as that test returned. Every such child is
//! therefore spawned by one dedicated thread that blocks forever on a channel.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, Once, OnceLock};

type Request = (Command, Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::Builder::new()
            .name("daemon-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so `recv` never fails and this thread
                // (the parent of every daemon, for pdeathsig) lives as long as the process.
                while let Ok((mut command, reply)) = rx.recv() {
                    let _ = reply.send(spawn_with_pdeathsig(&mut command));
                }
                loop {
                    std::thread::park();
                }
            })
            .expect("starting the daemon spawner thread");
        Mutex::new(tx)
    })
}

fn spawn_with_pdeathsig(command: &mut Command) -> io::Result<Child> {
    // SAFETY: the closure runs between fork and exec in the child, where only
    // async-signal-safe calls are allowed; prctl(PR_SET_PDEATHSIG) is a plain syscall that
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(io::Error::from)
        });
    }
    command.spawn()
}

/// Spawn a daemon that is killed when the test process exits (however it exits).
pub fn spawn_daemon(command: Command) -> io::Result<Child> {
    let (tx, rx) = channel();
    spawner()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, tx))
        .expect("the daemon spawner thread is gone");
    rx.recv().expect("the daemon spawner thread did not answer")
}

/// Give SIGHUP its default action in the test process, and so in every box it runs. A
/// run started under `nohup` (or by anything else that ignores SIGHUP) hands the ignored
/// disposition to every child, across exec: the tests of what a hangup does to a box's
/// processes (`box stop`, `box ephemeral`) would then see nothing happen.
pub fn default_hangups() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: installs the default disposition, no handler: nothing runs in signal
        // context, and no other thread of the harness depends on SIGHUP being ignored.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGHUP,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    });
}
