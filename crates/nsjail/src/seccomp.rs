//! The Kafel policy: compiled once in the supervisor, installed in the child
//! as the very last step before exec.

use crate::sys::{self, SysError};

/// Errors preparing a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// Kafel rejected the policy.
    #[error("Could not compile policy: {0}")]
    Compile(#[from] kafel::Error),
}

/// A compiled filter ready to install.
#[derive(Debug, Clone)]
pub struct Filter {
    insns: Vec<libc::sock_filter>,
    log: bool,
}

impl Filter {
    /// The filter of a jail's compiled policy.
    pub fn new(spec: &nsjail_config::spec::SeccompSpec) -> Filter {
        Filter {
            insns: to_libc(&spec.program),
            log: spec.log,
        }
    }

    /// The BPF instructions.
    pub fn insns(&self) -> &[libc::sock_filter] {
        &self.insns
    }
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
    Ok(Filter { insns, log: false })
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
