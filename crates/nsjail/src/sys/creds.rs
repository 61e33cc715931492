//! The calling process's identity and limits: ids, groups, capabilities
//! bits (prctl), personality, nice, rlimits, the seccomp filter, hostname.

use super::{check, err_from, SysResult};

/// setgroups(2) for the calling thread (the child is single-threaded).
pub fn setgroups(groups: &[libc::gid_t]) -> SysResult<()> {
    // SAFETY: the pointer/length pair describes a valid slice.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    check(rc, "setgroups", || format!("{groups:?}")).map(|_| ())
}

/// setresuid(2) as a raw syscall (affects the calling thread only, which is
/// the whole process in the single-threaded child).
pub fn setresuid(uid: libc::uid_t) -> SysResult<()> {
    // SAFETY: plain integer arguments.
    let rc = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    check(rc, "setresuid", || uid.to_string()).map(|_| ())
}

/// setresgid(2) as a raw syscall (see [`setresuid`]).
pub fn setresgid(gid: libc::gid_t) -> SysResult<()> {
    // SAFETY: plain integer arguments.
    let rc = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    check(rc, "setresgid", || gid.to_string()).map(|_| ())
}

/// personality(2).
pub fn personality(flags: libc::c_ulong) -> SysResult<()> {
    // SAFETY: plain integer argument.
    let rc = unsafe { libc::personality(flags) };
    check(rc as libc::c_long, "personality", || format!("{flags:#x}")).map(|_| ())
}

/// prctl(2) with integer arguments; for the options no safe crate covers.
pub fn prctl(option: libc::c_int, arg2: libc::c_ulong, name: &'static str) -> SysResult<()> {
    // SAFETY: the options used with this wrapper take only integer arguments.
    let rc = unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(rc as libc::c_long, "prctl", || name.to_string()).map(|_| ())
}

/// prctl(PR_CAP_AMBIENT, op, cap).
pub fn prctl_ambient(op: libc::c_int, cap: u32) -> SysResult<()> {
    // SAFETY: PR_CAP_AMBIENT takes only integer arguments.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            op as libc::c_ulong,
            cap as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(rc as libc::c_long, "prctl", || {
        format!("PR_CAP_AMBIENT op={op} cap={cap}")
    })
    .map(|_| ())
}

/// setpriority(PRIO_PROCESS, 0, nice).
pub fn set_nice(nice: i32) -> SysResult<()> {
    // SAFETY: plain integer arguments.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    check(rc as libc::c_long, "setpriority", || nice.to_string()).map(|_| ())
}

/// prlimit(2) on ourselves: set soft and hard limit.
pub fn set_rlimit(resource: u32, name: &str, soft: u64, hard: u64) -> SysResult<()> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit64; old-limit pointer is NULL.
    let rc = unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) };
    check(rc as libc::c_long, "setrlimit", || {
        format!("{name}, {soft}")
    })
    .map(|_| ())
}

/// getrlimit(2) on ourselves: (soft, hard).
pub fn get_rlimit(resource: u32) -> SysResult<(u64, u64)> {
    let mut lim = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a writable rlimit64; new-limit pointer is NULL.
    let rc = unsafe { libc::prlimit64(0, resource as _, std::ptr::null(), &mut lim) };
    check(rc as libc::c_long, "getrlimit", || resource.to_string())?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Install a classic-BPF seccomp filter. `log` selects seccomp(2) with
/// `SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_TSYNC`; otherwise
/// `prctl(PR_SET_SECCOMP)`. The instructions must have the exact layout of
/// `struct sock_filter` (`{u16 code; u8 jt; u8 jf; u32 k}`).
pub fn install_seccomp(filter: &[libc::sock_filter], log: bool) -> SysResult<()> {
    let prog = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let rc = if log {
        // SAFETY: `prog` points to `len` valid instructions that outlive the call.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_TSYNC,
                &prog as *const libc::sock_fprog,
            )
        }
    } else {
        // SAFETY: as above; PR_SET_SECCOMP takes a pointer to a sock_fprog.
        unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) as libc::c_long
        }
    };
    check(rc, "seccomp", || {
        format!(
            "{} instructions{}",
            filter.len(),
            if log {
                ", SECCOMP_FILTER_FLAG_LOG|TSYNC"
            } else {
                ""
            }
        )
    })
    .map(|_| ())
}

/// sethostname(2).
pub fn sethostname(name: &str) -> SysResult<()> {
    rustix::system::sethostname(name.as_bytes())
        .map_err(|e| err_from("sethostname", name, e.into()))
}

/// Raise the soft RLIMIT_NOFILE to `min(want, hard)` if it is lower.
// The cast is a no-op with glibc but not with musl (c_int there).
#[allow(clippy::unnecessary_cast)]
pub fn raise_nofile(want: u64) {
    if let Ok((soft, hard)) = get_rlimit(libc::RLIMIT_NOFILE as u32) {
        let target = want.min(hard);
        if soft < target {
            let _ = set_rlimit(libc::RLIMIT_NOFILE as u32, "RLIMIT_NOFILE", target, hard);
        }
    }
}
