//! The seccomp part of a jail: the compiled Kafel policy and what it means
//! for programs that use threads (the `clone3` trap `--check` warns about).

use super::SeccompSpec;

/// `clone` flags of a new thread as glibc's `pthread_create` passes them.
const THREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;

/// A seccomp verdict in Kafel's words.
fn verdict_text(v: u32) -> String {
    match v & kafel::RET_ACTION_FULL {
        kafel::RET_ALLOW => "ALLOW".into(),
        kafel::RET_LOG => "LOG".into(),
        kafel::RET_ERRNO => format!("ERRNO({})", v & kafel::RET_DATA),
        kafel::RET_TRAP => format!("TRAP({})", v & kafel::RET_DATA),
        kafel::RET_TRACE => format!("TRACE({})", v & kafel::RET_DATA),
        kafel::RET_USER_NOTIF => "USER_NOTIF".into(),
        kafel::RET_KILL_PROCESS => "KILL_PROCESS".into(),
        _ => "KILL".into(),
    }
}

impl SeccompSpec {
    /// The verdict of the filter for syscall `nr` with `args` on the native
    /// architecture (`None` when the program cannot be interpreted).
    pub fn verdict(&self, nr: u32, args: [u64; 6]) -> Option<u32> {
        let data = kafel::interp::SeccompData {
            nr: nr as i32,
            arch: kafel::Arch::native().audit_arch(),
            instruction_pointer: 0,
            args,
        };
        kafel::interp::run(&self.program, &data).ok()
    }

    /// The glibc thread trap: glibc (2.34+) creates threads with `clone3` and
    /// falls back to `clone` only when `clone3` fails with ENOSYS. A policy
    /// that allows `clone` for threads but kills/traps `clone3` or returns
    /// another errno for it breaks every `pthread_create`. Returns the
    /// warning (what happens and what to change), or `None` when the policy
    /// is consistent (including when `clone` is denied as well, on purpose).
    pub fn clone3_trap(&self) -> Option<String> {
        let arch = kafel::Arch::native();
        let clone = kafel::syscall_number(arch, "clone")?;
        let clone3 = kafel::syscall_number(arch, "clone3")?;
        let thread = self.verdict(clone, [THREAD_CLONE_FLAGS, 0, 0, 0, 0, 0])?;
        if !matches!(
            thread & kafel::RET_ACTION_FULL,
            kafel::RET_ALLOW | kafel::RET_LOG
        ) {
            return None;
        }
        // clone3(struct clone_args *, size): the pointer is opaque to seccomp.
        let v3 = self.verdict(clone3, [0, 88, 0, 0, 0, 0])?;
        let effect = match v3 & kafel::RET_ACTION_FULL {
            kafel::RET_ERRNO if v3 & kafel::RET_DATA == libc::ENOSYS as u32 => return None,
            kafel::RET_ERRNO => format!(
                "pthread_create fails with errno {} instead of falling back to clone",
                v3 & kafel::RET_DATA
            ),
            kafel::RET_TRAP => "the process gets SIGSYS at its first pthread_create".into(),
            kafel::RET_KILL_PROCESS | kafel::RET_KILL_THREAD => {
                "the process is killed (SIGSYS) at its first pthread_create".into()
            }
            _ => return None,
        };
        Some(format!(
            "seccomp policy: clone3 gets {} while clone (for threads) gets {}; glibc creates threads with clone3 and falls back to clone only when clone3 fails with ENOSYS (38), so {effect}. If threads should work through clone, give clone3 ERRNO(38) instead: ERRNO(38) {{ clone3 }}",
            verdict_text(v3),
            verdict_text(thread)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(policy: &str) -> SeccompSpec {
        let prog = kafel::compile(policy, &kafel::CompileOptions::default()).expect("policy");
        SeccompSpec {
            program: prog.filter,
            rule_count: prog.rule_count,
            log: false,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn clone3_trap_is_detected() {
        for (p, effect) in [
            ("KILL { clone3 } DEFAULT ALLOW", "killed"),
            ("KILL_PROCESS { clone3 } DEFAULT ALLOW", "killed"),
            ("TRAP(0) { clone3 } DEFAULT ALLOW", "SIGSYS"),
            ("ERRNO(1) { clone3 } DEFAULT ALLOW", "errno 1"),
            ("ALLOW { clone, read } DEFAULT KILL", "killed"),
        ] {
            let w = filter(p)
                .clone3_trap()
                .unwrap_or_else(|| panic!("{p}: no warning"));
            assert!(w.contains(effect), "{p}: {w}");
            assert!(w.contains("ERRNO(38) { clone3 }"), "{p}: {w}");
        }
    }

    #[test]
    fn consistent_policies_do_not_warn() {
        for p in [
            "DEFAULT ALLOW",
            "ERRNO(38) { clone3 } DEFAULT ALLOW",
            "KILL { clone, clone3 } DEFAULT ALLOW",
            "ERRNO(1) { clone } KILL { clone3 } DEFAULT ALLOW",
            // clone allowed for fork-like flags only: threads fail either way.
            "ALLOW { clone { (clone_flags & 0x100) == 0 } } KILL { clone3 } DEFAULT KILL",
            "USER_NOTIF { clone3 } DEFAULT ALLOW",
        ] {
            assert_eq!(filter(p).clone3_trap(), None, "{p}");
        }
    }
}
