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

/// `AF_VSOCK` (linux/socket.h).
pub const AF_VSOCK: u32 = 40;

/// The architectures (as the audit record names them) whose `socket(2)`
/// the AF_VSOCK filter checks on this target, each with its syscall numbers
/// of `socket` (x32's too on x86_64; the compat 32-bit table beside the
/// native one).
fn vsock_sections() -> Vec<(u32, Vec<u32>)> {
    let nr = |a: kafel::Arch| kafel::syscall_number(a, "socket");
    let mut out = Vec::new();
    for a in [kafel::Arch::native()]
        .into_iter()
        .chain(match kafel::Arch::native() {
            kafel::Arch::X86_64 => Some(kafel::Arch::X86),
            kafel::Arch::Aarch64 => Some(kafel::Arch::Arm),
            _ => None,
        })
    {
        let mut nrs: Vec<u32> = nr(a).into_iter().collect();
        if a == kafel::Arch::X86_64 {
            nrs.extend(nr(a).map(|n| n | 0x4000_0000)); // x32
        }
        out.push((a.audit_arch(), nrs));
    }
    out
}

/// Ours: the filter a jail with its own network namespace gets beside the
/// user's policy (unless `--allow_vsock`): `socket(AF_VSOCK, ...)` fails
/// with EAFNOSUPPORT, because vsock addresses the host's (hypervisor's)
/// socket space, which no network namespace separates. Everything else is
/// allowed (the user's policy decides; the kernel applies the stricter
/// verdict of the two). i386's `socketcall(2)` passes its arguments in
/// memory, which seccomp cannot read: a 32-bit program using it is not
/// covered.
pub fn vsock_filter() -> Filter {
    let ins = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let sections = vsock_sections();
    // [ld arch] then per arch: [jeq arch] [ld nr] [jeq nr]... [ret ALLOW],
    // then [ret ALLOW] (other arches), then the argument check.
    let total: usize = 1 + sections.iter().map(|(_, n)| 3 + n.len()).sum::<usize>() + 1;
    let check = total;
    let mut v = vec![ins(ld, 0, 0, 4)];
    for (arch, nrs) in &sections {
        let len = 3 + nrs.len();
        v.push(ins(jeq, 0, (len - 1) as u8, *arch));
        v.push(ins(ld, 0, 0, 0));
        for n in nrs {
            let at = v.len();
            v.push(ins(jeq, (check - at - 1) as u8, 0, *n));
        }
        v.push(ins(ret, 0, 0, kafel::RET_ALLOW));
    }
    v.push(ins(ret, 0, 0, kafel::RET_ALLOW));
    debug_assert_eq!(v.len(), check);
    // args[0] (the domain, an int): the low 32 bits, little-endian.
    v.push(ins(ld, 0, 0, 16));
    v.push(ins(jeq, 0, 1, AF_VSOCK));
    v.push(ins(ret, 0, 0, kafel::RET_ERRNO | libc::EAFNOSUPPORT as u32));
    v.push(ins(ret, 0, 0, kafel::RET_ALLOW));
    Filter {
        insns: v,
        log: false,
    }
}

/// Install the AF_VSOCK filter ([`vsock_filter`]). Sets no_new_privs unless
/// the config disabled it; then only a jail that kept CAP_SYS_ADMIN can
/// install it, and otherwise the launch fails (never a silently open vsock).
pub fn install_vsock(f: &Filter, no_new_privs: bool) -> Result<(), SysError> {
    if no_new_privs {
        return install(f);
    }
    sys::install_seccomp(&f.insns, f.log).map_err(|mut e| {
        e.what = format!(
            "{}: the AF_VSOCK filter (ours, for a jail with its own network namespace) needs \
             no_new_privs or CAP_SYS_ADMIN; drop disable_no_new_privs, keep CAP_SYS_ADMIN, or \
             pass --allow_vsock",
            e.what
        );
        e
    })
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

    /// Run the vsock filter on a seccomp_data (kafel's interpreter).
    fn verdict(arch: u32, nr: u32, a0: u64) -> u32 {
        let prog: Vec<kafel::SockFilter> = vsock_filter()
            .insns()
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
            arch,
            instruction_pointer: 0,
            args: [a0, 0, 0, 0, 0, 0],
        };
        kafel::interp::run(&prog, &data).expect("runs")
    }

    #[test]
    fn vsock_filter_denies_only_socket_af_vsock() {
        let native = kafel::Arch::native();
        let a = native.audit_arch();
        let socket = kafel::syscall_number(native, "socket").unwrap();
        let denied = kafel::RET_ERRNO | libc::EAFNOSUPPORT as u32;
        assert_eq!(verdict(a, socket, AF_VSOCK as u64), denied);
        // upper bits of the int argument are not the domain
        assert_eq!(verdict(a, socket, (1 << 32) | AF_VSOCK as u64), denied);
        assert_eq!(verdict(a, socket, libc::AF_INET as u64), kafel::RET_ALLOW);
        assert_eq!(verdict(a, socket, libc::AF_UNIX as u64), kafel::RET_ALLOW);
        let read = kafel::syscall_number(native, "read").unwrap();
        assert_eq!(verdict(a, read, AF_VSOCK as u64), kafel::RET_ALLOW);
        if native == kafel::Arch::X86_64 {
            // i386 socket (359) and x32 socket are covered too.
            let i386 = kafel::AUDIT_ARCH_I386;
            assert_eq!(verdict(i386, 359, AF_VSOCK as u64), denied);
            assert_eq!(verdict(i386, 41, AF_VSOCK as u64), kafel::RET_ALLOW);
            assert_eq!(verdict(a, 0x4000_0000 | socket, AF_VSOCK as u64), denied);
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
