//! Helper processes that stay out of the supervisor's reaping (`exit_signal`
//! 0: invisible to `waitid(P_ALL)` without `__WALL`), watched and reaped
//! through pidfds; used by user-mode networking (`crate::usernet`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{check, err, ChildState, SysResult};

/// Outcome of [`spawn_quiet`] as seen by the caller.
pub enum Spawned {
    /// We are the new process.
    Child,
    /// We are the parent: the child's pid and a pidfd for it.
    Parent(libc::pid_t, OwnedFd),
}

use super::process::CloneArgs;

/// clone3(CLONE_PIDFD) with no exit signal: a forked process the
/// supervisor's `waitid(P_ALL)`/SIGCHLD handling never sees. Reap it with
/// [`reap_pidfd`]. The caller must be single-threaded (as for fork).
pub fn spawn_quiet() -> SysResult<Spawned> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: 0,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack duplicates the
    // address space like fork(2); `args` is a valid clone_args of the size
    // passed and `pidfd` outlives the call. Single-threaded caller.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let rc = check(rc, "clone3", || "CLONE_PIDFD, no exit signal".into())?;
    if rc == 0 {
        return Ok(Spawned::Child);
    }
    // SAFETY: the kernel stored a new descriptor owned by us in `pidfd`.
    Ok(Spawned::Parent(rc as libc::pid_t, unsafe {
        OwnedFd::from_raw_fd(pidfd)
    }))
}

/// pidfd_open(2) (close-on-exec).
pub fn pidfd_open(pid: libc::pid_t) -> SysResult<OwnedFd> {
    // SAFETY: integer arguments.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = check(rc, "pidfd_open", || format!("pid={pid}"))?;
    // SAFETY: a new descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2): signal exactly that process (ESRCH once reaped).
pub fn pidfd_kill(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: integer arguments; a NULL siginfo is allowed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    check(rc, "pidfd_send_signal", || format!("signal {sig}")).map(|_| ())
}

/// waitid(P_PIDFD, WEXITED|__WALL), blocking unless `nohang`: reap the
/// process (`Running` when `nohang` and it still runs).
pub fn reap_pidfd(pidfd: BorrowedFd<'_>, nohang: bool) -> SysResult<ChildState> {
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    let flags = libc::WEXITED | libc::__WALL | if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: `info` is a writable siginfo_t.
        let rc = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                info.as_mut_ptr(),
                flags,
            )
        };
        if rc < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if rc < 0 {
            return Err(err("waitid", "P_PIDFD"));
        }
        break;
    }
    // SAFETY: waitid succeeded; a zeroed siginfo means "no state change".
    let info = unsafe { info.assume_init() };
    // SAFETY: si_pid/si_status are valid to read for SIGCHLD siginfo (zero otherwise).
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

/// poll(2) for POLLIN on each of `fds`: which have an event (readable,
/// hung up or in error). EINTR = none.
pub fn poll_many(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is a valid, writable array of pollfds of that length.
    let rc = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(p.iter().map(|x| x.revents != 0).collect())
}

/// socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC): message boundaries kept.
pub fn seqpacket_pair() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    check(rc as libc::c_long, "socketpair", || {
        "AF_UNIX, SOCK_SEQPACKET".into()
    })?;
    // SAFETY: two new descriptors owned by us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
