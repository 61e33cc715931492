//! Processes: clone/fork/unshare, exec, signals to and reaping of children, exit.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{check, err, err_from, flag_names, SysError, SysResult};

/// Outcome of [`clone_process`] as seen by the caller.
pub enum Forked {
    /// We are the new child.
    Child,
    /// We are the parent; the child has this pid.
    Parent(libc::pid_t),
}

/// The kernel's `struct clone_args` (clone3), every field up to `cgroup`.
#[repr(C)]
#[derive(Default)]
pub(super) struct CloneArgs {
    pub(super) flags: u64,
    pub(super) pidfd: u64,
    pub(super) child_tid: u64,
    pub(super) parent_tid: u64,
    pub(super) exit_signal: u64,
    pub(super) stack: u64,
    pub(super) stack_size: u64,
    pub(super) tls: u64,
    pub(super) set_tid: u64,
    pub(super) set_tid_size: u64,
    pub(super) cgroup: u64,
}

/// `CLONE_CLEAR_SIGHAND` (not in every libc version).
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// Create a child process like fork(2) but with `flags` (the `CLONE_NEW*`
/// bits). Tries `clone3` with `CLONE_CLEAR_SIGHAND`, then `clone3` without
/// it, then the legacy `clone` (no new stack: the child continues on a copy
/// of ours, exactly like fork). The exit signal is SIGCHLD.
///
/// The caller must be single-threaded: the child only has the calling thread.
pub fn clone_process(flags: u64) -> SysResult<Forked> {
    let mut args = CloneArgs {
        flags: flags | CLONE_CLEAR_SIGHAND,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    for attempt in 0..2 {
        // SAFETY: clone3 without CLONE_VM and without a stack duplicates the
        // address space like fork(2); `args` is a valid clone_args of the
        // size passed. The process is single-threaded (documented contract),
        // so the child is in a consistent state.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if rc == 0 {
            return Ok(Forked::Child);
        }
        if rc > 0 {
            return Ok(Forked::Parent(rc as libc::pid_t));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL) if attempt == 0 => args.flags = flags,
            Some(libc::ENOSYS) => break,
            _ => return Err(err_from("clone3", describe_clone_flags(flags), e)),
        }
    }
    if flags & libc::CLONE_NEWTIME as u64 != 0 {
        // Its bit is CSIGNAL's in the legacy call: only clone3 can do it.
        return Err(err_from(
            "clone",
            describe_clone_flags(flags),
            io::Error::new(
                io::ErrorKind::Unsupported,
                "CLONE_NEWTIME needs clone3(), which this kernel lacks; remove --enable_clone_newtime",
            ),
        ));
    }
    // SAFETY: legacy clone with a NULL stack and no CLONE_VM behaves like
    // fork(2): the child runs on a copy of the parent's stack.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    };
    match rc {
        0 => Ok(Forked::Child),
        r if r > 0 => Ok(Forked::Parent(r as libc::pid_t)),
        _ => Err(err("clone", describe_clone_flags(flags))),
    }
}

/// Human-readable `CLONE_NEW*` flag list for messages.
pub fn describe_clone_flags(flags: u64) -> String {
    let names: [(u64, &str); 8] = [
        (libc::CLONE_NEWUSER as u64, "CLONE_NEWUSER"),
        (libc::CLONE_NEWNS as u64, "CLONE_NEWNS"),
        (libc::CLONE_NEWPID as u64, "CLONE_NEWPID"),
        (libc::CLONE_NEWIPC as u64, "CLONE_NEWIPC"),
        (libc::CLONE_NEWUTS as u64, "CLONE_NEWUTS"),
        (libc::CLONE_NEWNET as u64, "CLONE_NEWNET"),
        (libc::CLONE_NEWCGROUP as u64, "CLONE_NEWCGROUP"),
        (libc::CLONE_NEWTIME as u64, "CLONE_NEWTIME"),
    ];
    flag_names(flags, &names)
}

/// execve(2); only returns on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> SysError {
    let a = ptr_array(argv);
    let e = ptr_array(envp);
    // SAFETY: `path` is a C string; `a` and `e` are NULL-terminated arrays of
    // pointers into `argv`/`envp`, which outlive the call.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    err("execve", format!("'{}'", path.to_string_lossy()))
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH); only returns on failure.
pub fn execveat_fd(
    fd: BorrowedFd<'_>,
    shown: &str,
    argv: &[CString],
    envp: &[CString],
) -> SysError {
    let a = ptr_array(argv);
    let e = ptr_array(envp);
    let empty = c"";
    // SAFETY: as in `execve`; `empty` is a static C string.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    err("execveat", format!("'{shown}' (fd {})", fd.as_raw_fd()))
}

fn ptr_array(v: &[CString]) -> Vec<*const libc::c_char> {
    let mut p: Vec<*const libc::c_char> = v.iter().map(|c| c.as_ptr()).collect();
    p.push(std::ptr::null());
    p
}

/// kill(2). ESRCH is not an error (the process is already gone).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: integer arguments.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH) {
        return Err(err("kill", format!("pid={pid}, sig={sig}")));
    }
    Ok(())
}

/// How a child ended, as seen without reaping it.
#[derive(Debug, Clone, Copy)]
pub enum ChildState {
    /// Still running.
    Running,
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// waitid(P_PID, pid, WEXITED|WNOHANG|WNOWAIT): peek at the state.
pub fn peek_child(pid: libc::pid_t) -> SysResult<ChildState> {
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is a writable siginfo_t.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    check(rc as libc::c_long, "waitid", || format!("pid={pid}"))?;
    // SAFETY: waitid succeeded; a zeroed siginfo means "no state change".
    let info = unsafe { info.assume_init() };
    // SAFETY: si_pid/si_status are valid to read for SIGCHLD siginfo (and zero otherwise).
    let (spid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if spid == 0 {
        return Ok(ChildState::Running);
    }
    Ok(if info.si_code == libc::CLD_EXITED {
        ChildState::Exited(status)
    } else {
        ChildState::Signaled(status)
    })
}

/// The result of reaping a child with wait4.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    /// How it ended.
    pub state: ChildState,
    /// User CPU time in microseconds.
    pub user_us: u64,
    /// System CPU time in microseconds.
    pub sys_us: u64,
    /// Peak resident set size in KiB.
    pub max_rss_kb: u64,
}

/// wait4(pid, 0): reap the child (blocking) and collect its rusage.
pub fn reap(pid: libc::pid_t) -> SysResult<Reaped> {
    let mut status: libc::c_int = 0;
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: `status` and `ru` are writable.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, ru.as_mut_ptr()) };
        if rc == pid {
            break;
        }
        if rc < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Err(err("wait4", format!("pid={pid}")));
    }
    // SAFETY: wait4 filled the rusage.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    let state = if libc::WIFEXITED(status) {
        ChildState::Exited(libc::WEXITSTATUS(status))
    } else {
        ChildState::Signaled(libc::WTERMSIG(status))
    };
    Ok(Reaped {
        state,
        user_us: tv(ru.ru_utime),
        sys_us: tv(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss as u64,
    })
}

/// `_exit(2)`: leave at once, without running destructors or atexit hooks.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is always safe to call.
    unsafe { libc::_exit(code) }
}

/// daemon(3) with `nochdir` = 1, `noclose` = 0: fork, the parent exits,
/// the child starts a new session with 0/1/2 on /dev/null.
pub fn daemonize() -> SysResult<()> {
    // SAFETY: called while single-threaded; daemon() forks and _exits the parent.
    let rc = unsafe { libc::daemon(1, 0) };
    check(rc as libc::c_long, "daemon", || {
        "nochdir=1, noclose=0".into()
    })
    .map(|_| ())
}

/// unshare(2) with `CLONE_NEW*` flags.
pub fn unshare(flags: u64) -> SysResult<()> {
    // SAFETY: integer argument; the caller is single-threaded (CLONE_NEWUSER requires it).
    let rc = unsafe { libc::unshare(flags as libc::c_int) };
    check(rc as libc::c_long, "unshare", || {
        describe_clone_flags(flags)
    })
    .map(|_| ())
}

/// waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT): the pid and state of any child
/// that has ended, without reaping it; `None` when none has.
pub fn peek_any_child() -> Option<(libc::pid_t, ChildState)> {
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is a writable siginfo_t.
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc < 0 {
        return None;
    }
    // SAFETY: waitid succeeded; a zeroed siginfo means "no state change".
    let info = unsafe { info.assume_init() };
    // SAFETY: si_pid/si_status are valid to read for SIGCHLD siginfo (and zero otherwise).
    let (spid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if spid == 0 {
        return None;
    }
    let state = if info.si_code == libc::CLD_EXITED {
        ChildState::Exited(status)
    } else {
        ChildState::Signaled(status)
    };
    Some((spid, state))
}

/// Reap every ended child without blocking (waitpid(-1, WNOHANG) until none).
pub fn reap_zombies() {
    loop {
        let mut status = 0;
        // SAFETY: `status` is writable.
        let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if rc <= 0 {
            return;
        }
    }
}

/// fork(2) through the C library: in a multi-threaded caller the C library's
/// own locks (malloc, stdio) are consistent in the child, which has only
/// the calling thread. The child must not touch locks other threads may
/// hold (Rust `Mutex`es of the caller, the `log` backend) and must leave
/// with [`exit_now`].
pub fn fork() -> SysResult<Forked> {
    // SAFETY: fork has no memory-safety preconditions; the contract above is
    // upheld by the callers (the library's supervisor process).
    let rc = unsafe { libc::fork() };
    match rc {
        0 => Ok(Forked::Child),
        pid if pid > 0 => Ok(Forked::Parent(pid)),
        _ => Err(err("fork", String::new())),
    }
}
