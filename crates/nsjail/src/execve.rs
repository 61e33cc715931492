//! EXECVE mode (`-Me`): no supervisor. We join the jail ourselves and exec
//! the target in place, so its exit code is ours.
//!
//! Order: cgroups (before unshare, while we still act in the host's user
//! namespace; with `clone_newcgroup` the jail's cgroup then becomes the
//! namespace root, where nsjail leaves its own), `unshare(flags)`, then the
//! child sequence of [`child`] in our own process: own id maps (with
//! `setgroups` denied, as the kernel requires even for root — nsjail fails
//! there), user switch, with a new PID namespace a minimal init as its PID 1
//! (reaps zombies, dies with us) and the mounts done from a `CLONE_FS` helper
//! inside that namespace (so `/proc` shows it), then net, limits, seccomp,
//! exec. As in nsjail the target itself stays in the old PID namespace (its
//! `$$` is a host pid); its children are in the new one.

use std::os::fd::AsRawFd;

use config::Jail;

use crate::cgroup::Cgroups;
use crate::child::{self, ChildIo, Plan};
use crate::seccomp::Filter;
use crate::supervisor::clone_flags;
use crate::sys::{self, Forked};

/// Run EXECVE mode; returns only on failure, with the reason.
pub fn run(jail: &Jail, filter: Option<&Filter>, cgroups: Cgroups) -> String {
    let plan = match Plan::prepare(jail, filter) {
        Ok(p) => p,
        Err(e) => return e.to_string(),
    };
    let me = std::process::id() as i32;
    match cgroups.create_for(me) {
        // We live in it from now on: nothing may remove it (nor undo the
        // v2 self-move of the supervisor set-up) when these values go away.
        Ok(cg) => std::mem::forget(cg),
        Err(e) => return format!("putting ourselves into the jail's cgroup: {e}"),
    }
    std::mem::forget(cgroups);
    let flags = clone_flags(&jail.cfg);
    if let Err(e) = sys::unshare(flags) {
        return format!(
            "{e} (namespaces need root or unprivileged user namespaces; try disabling some with --disable_clone_*)"
        );
    }
    child::exec_in_place(&plan, &ChildIo::default())
}

/// Fork the PID namespace's init: PID 1, named `ns-init`, not dumpable,
/// killed when we (its parent) go away, reaping every orphan meanwhile.
pub fn spawn_init() -> Result<(), sys::SysError> {
    match sys::clone_process(0)? {
        Forked::Parent(_) => Ok(()),
        Forked::Child => init_loop(),
    }
}

fn init_loop() -> ! {
    let _ = sys::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        "PR_SET_PDEATHSIG",
    );
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
                    let _ = sys::write_all(w.as_raw_fd(), e.to_string().as_bytes());
                    255
                }
            };
            sys::exit_now(code)
        }
        Forked::Parent(pid) => pid,
    };
    drop(w);
    let mut msg = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = sys::read(r.as_raw_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        msg.extend_from_slice(&buf[..n]);
    }
    let reaped = sys::reap(pid).map_err(|e| e.to_string())?;
    if !msg.is_empty() {
        return Err(String::from_utf8_lossy(&msg).into_owned());
    }
    match reaped.state {
        sys::ChildState::Exited(0) => Ok(()),
        s => Err(format!("the mount helper (pid={pid}) ended with {s:?}")),
    }
}
