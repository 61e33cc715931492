//! The Kafel policy: compiled once in the supervisor, installed in the child
//! as the very last step before exec.

use crate::sys::{self, SysError};

/// Errors preparing the policy.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The policy file could not be read.
    #[error("couldn't read the seccomp policy file '{path}': {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Kafel rejected the policy.
    #[error("Could not compile policy: {0}")]
    Compile(#[from] kafel::Error),
}

/// A compiled filter ready to install.
#[derive(Debug, Clone)]
pub struct Filter {
    insns: Vec<libc::sock_filter>,
    /// Number of policy rules (for `--check`).
    pub rule_count: usize,
    /// The compiler's warnings, one line each (for `--check`).
    pub warnings: Vec<String>,
    log: bool,
}

/// Compile `seccomp_policy_file` or the joined `seccomp_string`s; `None`
/// when there is no policy.
pub fn prepare(cfg: &config::NsJailConfig) -> Result<Option<Filter>, SeccompError> {
    let text = if cfg.has_seccomp_policy_file() {
        let path = cfg.seccomp_policy_file();
        std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
            path: path.to_string(),
            source,
        })?
    } else if !cfg.seccomp_string.is_empty() {
        cfg.seccomp_string.join("\n")
    } else {
        return Ok(None);
    };
    let prog = kafel::compile(&text, &kafel::CompileOptions::default())?;
    Ok(Some(Filter {
        insns: to_libc(&prog.filter),
        rule_count: prog.rule_count,
        warnings: prog
            .warnings
            .iter()
            .map(|w| format!("seccomp policy {w}"))
            .collect(),
        log: cfg.seccomp_log(),
    }))
}

fn to_libc(prog: &[kafel::SockFilter]) -> Vec<libc::sock_filter> {
    prog.iter()
        .map(|f| libc::sock_filter {
            code: f.code,
            jt: f.jt,
            jf: f.jf,
            k: f.k,
        })
        .collect()
}

/// Compile the `seccomp_unotify` tracing policy (`USER_NOTIF { ... } DEFAULT
/// ALLOW`). Kafel's program kills syscalls of a foreign architecture (e.g.
/// 32-bit calls on x86_64); tracing must not change what the jail may do, so
/// three instructions in front let those through untouched (cBPF jumps are
/// relative: the kafel program is unchanged behind them).
pub fn compile_tracing(policy: &str) -> Result<Filter, SeccompError> {
    let prog = kafel::compile(policy, &kafel::CompileOptions::default())?;
    let arch = kafel::Arch::native().audit_arch();
    let mut insns = vec![
        // ld [arch]
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 4,
        },
        // jeq #native, +1, +0
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 1,
            jf: 0,
            k: arch,
        },
        // ret ALLOW (foreign architecture: not traced)
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: kafel::RET_ALLOW,
        },
    ];
    insns.extend(to_libc(&prog.filter));
    Ok(Filter {
        insns,
        rule_count: prog.rule_count,
        warnings: Vec::new(),
        log: false,
    })
}

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

impl Filter {
    /// The BPF instructions.
    pub fn insns(&self) -> &[libc::sock_filter] {
        &self.insns
    }

    /// The verdict of the filter for syscall `nr` with `args` on the native
    /// architecture (`None` when the program cannot be interpreted).
    pub fn verdict(&self, nr: u32, args: [u64; 6]) -> Option<u32> {
        let prog: Vec<kafel::SockFilter> = self
            .insns
            .iter()
            .map(|f| kafel::SockFilter {
                code: f.code,
                jt: f.jt,
                jf: f.jf,
                k: f.k,
            })
            .collect();
        let data = kafel::interp::SeccompData {
            nr: nr as i32,
            arch: kafel::Arch::native().audit_arch(),
            instruction_pointer: 0,
            args,
        };
        kafel::interp::run(&prog, &data).ok()
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

/// Install (child). Sets no_new_privs first, as the kernel requires for an
/// unprivileged filter and as nsjail always does.
pub fn install(f: &Filter) -> Result<(), SysError> {
    rustix::thread::set_no_new_privs(true)
        .map_err(|e| sys::err_from("prctl", "PR_SET_NO_NEW_PRIVS", e.into()))?;
    sys::install_seccomp(&f.insns, f.log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(policy: &str) -> Filter {
        let prog = kafel::compile(policy, &kafel::CompileOptions::default()).expect("policy");
        Filter {
            insns: to_libc(&prog.filter),
            rule_count: prog.rule_count,
            warnings: Vec::new(),
            log: false,
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
    fn tracing_filter_lets_foreign_arch_through() {
        let f = compile_tracing("USER_NOTIF { openat } DEFAULT ALLOW").expect("compiles");
        let prog: Vec<kafel::SockFilter> = f
            .insns()
            .iter()
            .map(|i| kafel::SockFilter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let nr = kafel::syscall_number(kafel::Arch::native(), "openat").unwrap();
        let mut d = kafel::interp::SeccompData {
            nr: nr as i32,
            arch: kafel::Arch::native().audit_arch(),
            instruction_pointer: 0,
            args: [0; 6],
        };
        assert_eq!(kafel::interp::run(&prog, &d), Ok(kafel::RET_USER_NOTIF));
        d.nr += 1000;
        assert_eq!(kafel::interp::run(&prog, &d), Ok(kafel::RET_ALLOW));
        d.arch = 0x4000_0003; // AUDIT_ARCH_I386
        d.nr = 5;
        assert_eq!(kafel::interp::run(&prog, &d), Ok(kafel::RET_ALLOW));
    }
}
