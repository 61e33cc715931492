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

/// Environment variables by which programs ask their libraries for
/// worker threads (OpenMP, BLAS flavours, numexpr, Go).
const THREAD_ENV: [&str; 6] = [
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "GOMAXPROCS",
];

/// Whether a verdict lets the call run (possibly watched).
fn runs(v: u32) -> bool {
    matches!(
        v & kafel::RET_ACTION_FULL,
        kafel::RET_ALLOW | kafel::RET_LOG | kafel::RET_USER_NOTIF | kafel::RET_TRACE
    )
}

impl SeccompSpec {
    /// The trap of a policy that kills or denies the very `execve` (or,
    /// with `exec_fd`, `execveat`) by which nsjail starts the program: the
    /// filter is installed right before it, so the jail can never start
    /// (nsjail#131, kafel#37). `None` when that call runs (for any
    /// arguments we try: a rule on the arguments may still refuse nsjail's).
    pub fn exec_trap(&self, exec_fd: bool) -> Option<String> {
        let arch = kafel::Arch::native();
        let name = if exec_fd { "execveat" } else { "execve" };
        let nr = kafel::syscall_number(arch, name)?;
        let probes = [
            [0u64; 6],
            [0x7fff_0000, 0x7fff_1000, 0x7fff_2000, 0, 0x1000, 0],
        ];
        let verdicts: Vec<u32> = probes
            .iter()
            .map(|a| self.verdict(nr, *a))
            .collect::<Option<_>>()?;
        if verdicts.iter().any(|v| runs(*v)) {
            return None;
        }
        Some(format!(
            "seccomp policy: {name} gets {}, but the policy is installed right before nsjail's own {name} of the program: the jail can never start (it dies or fails at exec); allow {name} (e.g. ALLOW {{ {name} }} before the rule that denies it)",
            verdict_text(verdicts[0])
        ))
    }

    /// The trap of an environment that asks libraries for threads
    /// (`OMP_NUM_THREADS=2`, ...) under a policy that stops thread
    /// creation: clone3 does not run and does not fail with ENOSYS (glibc's
    /// fallback), or it does and `clone` with thread flags does not run.
    /// `envp` holds `NAME=VALUE` entries.
    pub fn thread_env_trap(&self, envp: &[std::ffi::CString]) -> Option<String> {
        let asked: Vec<String> = envp
            .iter()
            .filter_map(|e| e.to_str().ok())
            .filter_map(|e| e.split_once('='))
            .filter(|(k, v)| THREAD_ENV.contains(k) && v.trim().parse::<u64>().is_ok_and(|n| n > 1))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if asked.is_empty() {
            return None;
        }
        let arch = kafel::Arch::native();
        let clone = kafel::syscall_number(arch, "clone")?;
        let thread = self.verdict(clone, [THREAD_CLONE_FLAGS, 0, 0, 0, 0, 0])?;
        let v3 = match kafel::syscall_number(arch, "clone3") {
            Some(nr) => self.verdict(nr, [0, 88, 0, 0, 0, 0])?,
            None => kafel::RET_ERRNO | libc::ENOSYS as u32,
        };
        let enosys = v3 & kafel::RET_ACTION_FULL == kafel::RET_ERRNO
            && v3 & kafel::RET_DATA == libc::ENOSYS as u32;
        let threads_work = runs(v3) || (enosys && runs(thread));
        if threads_work {
            return None;
        }
        Some(format!(
            "the environment asks libraries for threads ({}) but the seccomp policy stops thread creation (clone3 gets {}, clone for threads gets {}): the first pthread_create fails or kills the program; allow clone for threads with ERRNO(38) {{ clone3 }}, or set these variables to 1",
            asked.join(", "),
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

    #[test]
    fn exec_trap_when_the_policy_denies_the_programs_exec() {
        assert!(filter("KILL { execve } DEFAULT ALLOW")
            .exec_trap(false)
            .unwrap()
            .contains("can never start"));
        assert!(filter("ERRNO(1) { execve } DEFAULT ALLOW")
            .exec_trap(false)
            .is_some());
        assert!(filter("ALLOW { read } DEFAULT KILL")
            .exec_trap(false)
            .is_some());
        assert_eq!(
            filter("KILL { ptrace } DEFAULT ALLOW").exec_trap(false),
            None
        );
        // with exec_fd the program starts with execveat
        assert_eq!(
            filter("KILL { execve } DEFAULT ALLOW").exec_trap(true),
            None
        );
        assert!(filter("KILL { execveat } DEFAULT ALLOW")
            .exec_trap(true)
            .is_some());
    }

    #[test]
    fn thread_env_trap_needs_both_the_variables_and_a_policy_that_stops_threads() {
        let env = |v: &[&str]| -> Vec<std::ffi::CString> {
            v.iter()
                .map(|s| std::ffi::CString::new(*s).unwrap())
                .collect()
        };
        let stop = filter("KILL { clone, clone3 } DEFAULT ALLOW");
        let w = stop
            .thread_env_trap(&env(&["PATH=/bin", "OMP_NUM_THREADS=2"]))
            .unwrap();
        assert!(w.contains("OMP_NUM_THREADS=2"), "{w}");
        assert_eq!(stop.thread_env_trap(&env(&["OMP_NUM_THREADS=1"])), None);
        assert_eq!(stop.thread_env_trap(&env(&["PATH=/bin"])), None);
        let fallback = filter("ERRNO(38) { clone3 } DEFAULT ALLOW");
        assert_eq!(fallback.thread_env_trap(&env(&["MKL_NUM_THREADS=4"])), None);
        let no_threads = filter("ERRNO(38) { clone3 } KILL { clone } DEFAULT ALLOW");
        assert!(no_threads
            .thread_env_trap(&env(&["MKL_NUM_THREADS=4"]))
            .is_some());
    }
}
