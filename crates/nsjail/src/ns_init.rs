//! The PID namespace helpers of EXECVE mode, used by the child sequence
//! ([`crate::child`]) when nsjail enters the jail itself: a minimal init as
//! PID 1 of the new namespace, and a `CLONE_FS` helper inside it that builds
//! the mount tree (so `/proc` shows that namespace).

use std::os::fd::AsFd;

use crate::sys::{self, Forked};

/// Fork the PID namespace's init: PID 1, named `ns-init`, not dumpable,
/// killed when we (its parent) go away, reaping every orphan meanwhile.
/// Returns once the init holds its parent-death signal: a program that
/// exits at once (or is killed) could otherwise end before the init asked
/// for the signal, leaving the init behind on the host.
pub fn spawn_init() -> Result<(), sys::SysError> {
    let (ready_r, ready_w) = sys::pipe_cloexec()?;
    match sys::clone_process(0)? {
        Forked::Parent(_) => {
            drop(ready_w);
            // One byte once armed; EOF if it died first (nothing to wait for).
            let mut b = [0u8; 1];
            let _ = sys::read(ready_r.as_fd(), &mut b);
            Ok(())
        }
        Forked::Child => {
            drop(ready_r);
            init_loop(ready_w)
        }
    }
}

fn init_loop(ready: std::os::fd::OwnedFd) -> ! {
    let _ = sys::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        "PR_SET_PDEATHSIG",
    );
    // The parent may have died before the signal was armed: then nobody
    // reads the pipe (EPIPE) and the init has nothing to serve.
    if sys::write_all(ready.as_fd(), b"R").is_err() {
        sys::exit_now(0);
    }
    drop(ready);
    let _ = sys::prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE");
    let _ = rustix::thread::set_name(c"ns-init");
    sys::close_from(0);
    let set = sys::sigset(&[libc::SIGCHLD]);
    let _ = sys::sigprocmask(libc::SIG_BLOCK, &set);
    loop {
        sys::reap_zombies();
        sys::sigwait(&set);
    }
}

/// Run `f` (the mount set-up) in a helper sharing our filesystem context
/// (`CLONE_FS`: root and cwd changes apply to us too) but living in the new
/// PID namespace, so the procfs it mounts belongs to that namespace.
pub fn mount_in_helper<E: std::fmt::Display>(
    f: impl FnOnce() -> Result<(), E>,
) -> Result<(), String> {
    let (r, w) = sys::pipe_cloexec().map_err(|e| e.to_string())?;
    let pid = match sys::clone_process(libc::CLONE_FS as u64).map_err(|e| e.to_string())? {
        Forked::Child => {
            drop(r);
            let code = match f() {
                Ok(()) => 0,
                Err(e) => {
                    let _ = sys::write_all(w.as_fd(), e.to_string().as_bytes());
                    255
                }
            };
            sys::exit_now(code)
        }
        Forked::Parent(pid) => pid,
    };
    drop(w);
    let msg = sys::read_to_eof(r.as_fd());
    let reaped = sys::reap(pid).map_err(|e| e.to_string())?;
    if !msg.is_empty() {
        return Err(String::from_utf8_lossy(&msg).into_owned());
    }
    match reaped.state {
        sys::ChildState::Exited(0) => Ok(()),
        s => Err(format!("the mount helper (pid={pid}) ended with {s:?}")),
    }
}
