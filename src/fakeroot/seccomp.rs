//! The seccomp filter of box's fake root: the decision table (which system calls are
//! faked, which pass through, which are refused) and the classic-BPF program built from
//! it (seccomp(2)).
//!
//! A box without subordinate ids maps one id. Its root ([`crate::fakeroot`]) is
//! that id in a user namespace nested in the box's, so the ownership and identity calls
//! a package manager makes as root cannot succeed: `chown(f, 0, 42)` names a group that
//! has no mapping (EINVAL), `setresuid(42, ...)` a user that does not exist there, and
//! `setgroups` is denied in a namespace whose gid map an unprivileged user wrote
//! (user_namespaces(7)). The filter turns exactly those calls into successful no-ops
//! (`SECCOMP_RET_ERRNO` with error 0: the call returns 0 and the kernel does nothing), as
//! enroot's `--root` and charliecloud's `--seccomp` do. Everything else reaches the
//! kernel unchanged.
//!
//! Invariants:
//! - the filter never grants anything: it only answers some calls itself, with success,
//!   without doing them. What a process may do is still decided by the kernel for the
//!   user's own id (the nested namespace maps nothing else), so every file the fake root
//!   writes is the user's, and a faked `chown` leaves it so;
//! - the identity *queries* (getuid, getresuid, getgroups, stat) pass through: a
//!   stateless filter can only return 0 or an error, never "the id you last set", so a
//!   program that checks its drop of privileges (apt does, `APT::Sandbox::Verify::IDs`)
//!   sees that it is still root. box tells apt that there is no sandbox user in such a
//!   box instead (see [`crate::fakeroot`]);
//! - every ABI the kernel may run a process with on this architecture is decoded with
//!   its own syscall numbers (x86-64 and i386 on x86-64; AArch64 and 32-bit ARM on
//!   AArch64), because the same number means another call in another ABI (x86-64's 92
//!   is chown, i386's 92 is truncate). A call the filter cannot decode (the x32 ABI, an
//!   unknown `AUDIT_ARCH`) is refused with ENOSYS, never guessed at;
//! - the program is built from [`decide`]'s table only, and a unit test runs it (a small
//!   interpreter of the instructions used) against the table for every number.

use std::fmt;

use anyhow::Result;

use crate::error::failure;

/// What the filter does with one system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Return 0 without doing anything.
    Fake,
    /// Let the kernel do it (and decide whether it is allowed).
    Pass,
    /// Return ENOSYS without doing anything: a call from an ABI the filter cannot decode.
    Refuse,
}

/// One ABI the filter decodes: its `AUDIT_ARCH_*` value (`struct seccomp_data.arch`) and
/// the numbers of the calls it fakes there.
#[derive(Debug)]
pub struct Abi {
    pub name: &'static str,
    pub audit_arch: u32,
    /// (name, number) of every faked call.
    pub faked: &'static [(&'static str, u32)],
    /// Numbers from this one up are another ABI sharing the `AUDIT_ARCH` value (x32 on
    /// x86-64 sets bit 30, `__X32_SYSCALL_BIT`), refused.
    pub refuse_from: Option<u32>,
}

/// `AUDIT_ARCH_*` of <linux/audit.h>: the ELF machine, plus 64-bit and little-endian flags.
const AUDIT_ARCH_64BIT: u32 = 0x8000_0000;
const AUDIT_ARCH_LE: u32 = 0x4000_0000;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_X86_64: u32 = 62 | AUDIT_ARCH_64BIT | AUDIT_ARCH_LE;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_I386: u32 = 3 | AUDIT_ARCH_LE;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_AARCH64: u32 = 183 | AUDIT_ARCH_64BIT | AUDIT_ARCH_LE;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_ARM: u32 = 40 | AUDIT_ARCH_LE;

/// The x32 ABI's bit in the syscall number on x86-64 (`__X32_SYSCALL_BIT`).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The calls of the 32-bit ABIs (i386, ARM EABI) that are faked: the 16-bit-id originals
/// and their `*32` successors. The two ABIs number these alike (arch/x86/entry/syscalls/
/// syscall_32.tbl, arch/arm/tools/syscall.tbl) but for fchownat, which is added per ABI.
macro_rules! faked_32bit {
    ($fchownat:expr) => {
        &[
            ("chown", 182),
            ("fchown", 95),
            ("lchown", 16),
            ("fchownat", $fchownat),
            ("chown32", 212),
            ("fchown32", 207),
            ("lchown32", 198),
            ("setuid", 23),
            ("setgid", 46),
            ("setreuid", 70),
            ("setregid", 71),
            ("setresuid", 164),
            ("setresgid", 170),
            ("setfsuid", 138),
            ("setfsgid", 139),
            ("setgroups", 81),
            ("setuid32", 213),
            ("setgid32", 214),
            ("setreuid32", 203),
            ("setregid32", 204),
            ("setresuid32", 208),
            ("setresgid32", 210),
            ("setfsuid32", 215),
            ("setfsgid32", 216),
            ("setgroups32", 206),
        ]
    };
}

/// `(name, number)` of native calls; the numbers come from the libc crate, which takes
/// them from the kernel's headers for the target (they are small and non-negative).
macro_rules! native {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), sys::$name as u32)),*]
    };
}

/// The native syscall numbers under their plain names, for [`native!`].
#[allow(non_upper_case_globals)]
mod sys {
    #[cfg(target_arch = "x86_64")]
    pub use libc::{SYS_chown as chown, SYS_lchown as lchown};
    pub use libc::{
        SYS_fchown as fchown, SYS_fchownat as fchownat, SYS_setfsgid as setfsgid,
        SYS_setfsuid as setfsuid, SYS_setgid as setgid, SYS_setgroups as setgroups,
        SYS_setregid as setregid, SYS_setresgid as setresgid, SYS_setresuid as setresuid,
        SYS_setreuid as setreuid, SYS_setuid as setuid,
    };
}

/// The ABIs of this architecture, native first.
#[cfg(target_arch = "x86_64")]
pub const ABIS: &[Abi] = &[
    Abi {
        name: "x86-64",
        audit_arch: AUDIT_ARCH_X86_64,
        faked: native!(
            chown, fchown, lchown, fchownat, setuid, setgid, setreuid, setregid, setresuid,
            setresgid, setfsuid, setfsgid, setgroups,
        ),
        refuse_from: Some(X32_SYSCALL_BIT),
    },
    Abi {
        name: "i386",
        audit_arch: AUDIT_ARCH_I386,
        faked: faked_32bit!(298),
        refuse_from: None,
    },
];

/// The ABIs of this architecture, native first. AArch64 has no chown/lchown, only the
/// `*at` forms (and no 16-bit ids).
#[cfg(target_arch = "aarch64")]
pub const ABIS: &[Abi] = &[
    Abi {
        name: "aarch64",
        audit_arch: AUDIT_ARCH_AARCH64,
        faked: native!(
            fchown, fchownat, setuid, setgid, setreuid, setregid, setresuid, setresgid, setfsuid,
            setfsgid, setgroups,
        ),
        refuse_from: None,
    },
    Abi {
        name: "arm",
        audit_arch: AUDIT_ARCH_ARM,
        faked: faked_32bit!(325),
        refuse_from: None,
    },
];

/// Architectures without a table: [`install`] says so.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const ABIS: &[Abi] = &[];

/// The decision table: what the filter does with call `nr` made through the ABI
/// `audit_arch`.
pub fn decide(audit_arch: u32, nr: u32) -> Verdict {
    let Some(abi) = ABIS.iter().find(|a| a.audit_arch == audit_arch) else {
        return Verdict::Refuse;
    };
    if abi.refuse_from.is_some_and(|from| nr >= from) {
        Verdict::Refuse
    } else if abi.faked.iter().any(|&(_, n)| n == nr) {
        Verdict::Fake
    } else {
        Verdict::Pass
    }
}

// Classic BPF (<linux/filter.h>, <linux/bpf_common.h>): only what the program uses.
const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JMP_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// Offsets in `struct seccomp_data` (seccomp(2)): `int nr; __u32 arch; ...`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
/// Return values (seccomp(2)); `SECCOMP_RET_ERRNO | 0` makes the call return 0.
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_FAKE: u32 = libc::SECCOMP_RET_ERRNO;
const RET_REFUSE: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// One BPF instruction (`struct sock_filter`).
pub type Insn = libc::sock_filter;

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Jump targets while building: resolved to relative offsets at the end.
#[derive(Clone, Copy)]
enum Target {
    Next,
    Fake,
    Refuse,
    Abi(usize),
}

/// The filter program built from [`ABIS`]:
///
/// ```text
///     load arch; for each ABI: if arch == its AUDIT_ARCH goto its block;  return REFUSE
///   block:  load nr; [if nr >= refuse_from goto refuse]; for each faked: if nr == n goto fake;
///           return ALLOW
///   fake:   return ERRNO(0)
///   refuse: return ERRNO(ENOSYS)
/// ```
pub fn program() -> Vec<Insn> {
    // (instruction, jump-if-true target, jump-if-false target)
    let mut code: Vec<(Insn, Target, Target)> = Vec::new();
    let plain = |i: Insn| (i, Target::Next, Target::Next);
    code.push(plain(stmt(BPF_LD_W_ABS, DATA_ARCH)));
    for (index, abi) in ABIS.iter().enumerate() {
        code.push((
            stmt(BPF_JMP_JEQ_K, abi.audit_arch),
            Target::Abi(index),
            Target::Next,
        ));
    }
    code.push(plain(stmt(BPF_RET_K, RET_REFUSE)));
    let mut blocks = Vec::new();
    for abi in ABIS {
        blocks.push(code.len());
        code.push(plain(stmt(BPF_LD_W_ABS, DATA_NR)));
        if let Some(from) = abi.refuse_from {
            code.push((stmt(BPF_JMP_JGE_K, from), Target::Refuse, Target::Next));
        }
        for &(_, nr) in abi.faked {
            code.push((stmt(BPF_JMP_JEQ_K, nr), Target::Fake, Target::Next));
        }
        code.push(plain(stmt(BPF_RET_K, RET_ALLOW)));
    }
    let fake = code.len();
    code.push(plain(stmt(BPF_RET_K, RET_FAKE)));
    let refuse = code.len();
    code.push(plain(stmt(BPF_RET_K, RET_REFUSE)));

    let offset = |at: usize, target: Target| -> u8 {
        let to = match target {
            Target::Next => return 0,
            Target::Fake => fake,
            Target::Refuse => refuse,
            Target::Abi(i) => blocks[i],
        };
        // Jumps go forward only, at most 255 instructions (a few dozen here).
        u8::try_from(to - at - 1).expect("a seccomp jump within 255 instructions")
    };
    code.iter()
        .enumerate()
        .map(|(at, &(mut insn, jt, jf))| {
            insn.jt = offset(at, jt);
            insn.jf = offset(at, jf);
            insn
        })
        .collect()
}

/// Install the filter on the calling thread (and so on everything it executes and
/// forks): sets no_new_privs first, which seccomp(2) requires of a caller without
/// CAP_SYS_ADMIN in its user namespace, and which also keeps exec from changing ids
/// (prctl(2)). Call it in a single-threaded process (the filter is per thread).
pub fn install() -> Result<()> {
    if ABIS.is_empty() {
        return Err(failure(
            format!(
                "box's fake root has no seccomp table for the {} architecture",
                std::env::consts::ARCH
            ),
            "use a box with subordinate ids (see `box create --help`) on this machine",
        ));
    }
    rustix::thread::set_no_new_privs(true).map_err(|e| {
        failure(
            format!("prctl(PR_SET_NO_NEW_PRIVS) failed: {e}"),
            "the kernel is too old for box's fake root (Linux 3.5 or later is needed)",
        )
    })?;
    crate::sys::seccomp_filter(&program()).map_err(|e| not_installed(&e))
}

/// The error of a failed installation, naming what the kernel lacks.
fn not_installed(err: &std::io::Error) -> anyhow::Error {
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => failure(
            format!("this kernel has no seccomp filter support ({err})"),
            format!(
                "box's fake root (root in a box without subordinate ids) needs a kernel built with CONFIG_SECCOMP_FILTER; \
                 or give your user subordinate ids so boxes have a real root (`{}`)",
                crate::sys::idmap::add_subids_command("$USER")
            ),
        ),
        _ => failure(
            format!("installing the seccomp filter of box's fake root failed: {err}"),
            "a security module or an outer seccomp filter may forbid it; check `dmesg`",
        ),
    }
}

/// The table in words, for `--dry-run`.
pub struct Description;

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for abi in ABIS {
            let names: Vec<&str> = abi.faked.iter().map(|(n, _)| *n).collect();
            writeln!(
                f,
                "  fake (return 0, change nothing), {}: {}",
                abi.name,
                names.join(" ")
            )?;
        }
        writeln!(
            f,
            "  pass through: everything else, e.g. getuid/getresuid/getgroups, chmod, mknod, mount (the kernel decides, for your own id)"
        )?;
        write!(
            f,
            "  refuse (ENOSYS): calls through an ABI without a table{}",
            if cfg!(target_arch = "x86_64") {
                " (x32, unknown AUDIT_ARCH)"
            } else {
                " (unknown AUDIT_ARCH)"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `prog` as the kernel would for a call (`nr`, `arch`): the classic-BPF subset
    /// [`program`] uses, with the checks the kernel's verifier makes on the way.
    fn run(prog: &[Insn], arch: u32, nr: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let insn = prog.get(pc).expect("the program ran off its end");
            pc += 1;
            match insn.code {
                BPF_LD_W_ABS => {
                    acc = match insn.k {
                        DATA_NR => nr,
                        DATA_ARCH => arch,
                        other => panic!("load from offset {other}"),
                    }
                }
                BPF_JMP_JEQ_K | BPF_JMP_JGE_K => {
                    let taken = if insn.code == BPF_JMP_JEQ_K {
                        acc == insn.k
                    } else {
                        acc >= insn.k
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                BPF_RET_K => return insn.k,
                other => panic!("instruction {other:#x} is not in the subset"),
            }
        }
    }

    fn verdict_of(ret: u32) -> Verdict {
        match ret {
            RET_ALLOW => Verdict::Pass,
            RET_FAKE => Verdict::Fake,
            RET_REFUSE => Verdict::Refuse,
            other => panic!("unexpected return value {other:#x}"),
        }
    }

    #[test]
    fn the_program_does_what_the_table_says_for_every_call_of_every_abi() {
        let prog = program();
        // BPF_MAXINSNS
        assert!(prog.len() <= 4096);
        for abi in ABIS {
            for nr in 0..1024 {
                assert_eq!(
                    verdict_of(run(&prog, abi.audit_arch, nr)),
                    decide(abi.audit_arch, nr),
                    "{} call {nr}",
                    abi.name
                );
            }
        }
        // An architecture without a table: refused, whatever the number.
        for nr in [0, 92, 105] {
            assert_eq!(verdict_of(run(&prog, 0x1234, nr)), Verdict::Refuse);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ownership_and_identity_changes_are_faked_queries_and_the_rest_pass() {
        let native = AUDIT_ARCH_X86_64;
        let fake = |nr: libc::c_long| decide(native, nr as u32);
        for nr in [
            libc::SYS_chown,
            libc::SYS_fchown,
            libc::SYS_lchown,
            libc::SYS_fchownat,
            libc::SYS_setuid,
            libc::SYS_setgid,
            libc::SYS_setreuid,
            libc::SYS_setregid,
            libc::SYS_setresuid,
            libc::SYS_setresgid,
            libc::SYS_setfsuid,
            libc::SYS_setfsgid,
            libc::SYS_setgroups,
        ] {
            assert_eq!(fake(nr), Verdict::Fake, "call {nr}");
        }
        // apt's check of its drop to _apt, and everything the kernel must judge.
        for nr in [
            libc::SYS_getuid,
            libc::SYS_geteuid,
            libc::SYS_getresuid,
            libc::SYS_getresgid,
            libc::SYS_getgroups,
            libc::SYS_openat,
            libc::SYS_chmod,
            libc::SYS_fchmodat,
            libc::SYS_mknodat,
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_capset,
            libc::SYS_execve,
            libc::SYS_truncate,
        ] {
            assert_eq!(fake(nr), Verdict::Pass, "call {nr}");
        }
        // The same number is another call in i386: 92 is chown here, truncate there.
        assert_eq!(decide(AUDIT_ARCH_I386, 92), Verdict::Pass);
        assert_eq!(decide(AUDIT_ARCH_I386, 212), Verdict::Fake); // chown32
        assert_eq!(decide(AUDIT_ARCH_I386, 208), Verdict::Fake); // setresuid32
        assert_eq!(decide(AUDIT_ARCH_I386, 209), Verdict::Pass); // getresuid32
        // x32 shares x86-64's AUDIT_ARCH but not its numbers: refused.
        assert_eq!(
            decide(native, X32_SYSCALL_BIT | libc::SYS_chown as u32),
            Verdict::Refuse
        );
        assert_eq!(decide(native, X32_SYSCALL_BIT), Verdict::Refuse);
        assert_eq!(decide(0xdead, libc::SYS_getpid as u32), Verdict::Refuse);
    }

    #[test]
    fn the_description_names_the_faked_calls_and_the_refusal() {
        let text = Description.to_string();
        for abi in ABIS {
            assert!(text.contains(abi.name), "{text}");
        }
        assert!(
            text.contains("setresuid") && text.contains("fchownat"),
            "{text}"
        );
        assert!(text.contains("refuse (ENOSYS)"), "{text}");
    }

    #[test]
    fn a_kernel_without_seccomp_filters_is_named() {
        let err = not_installed(&std::io::Error::from_raw_os_error(libc::EINVAL));
        let hint = err.downcast_ref::<crate::error::Hint>().unwrap();
        assert!(crate::error::message(&err).contains("no seccomp filter support"));
        assert!(hint.0.contains("CONFIG_SECCOMP_FILTER"));
    }
}
