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
//!
//! Unlike nsjail, nothing is left on the host: with cgroups, a small
//! watcher process (`start_cgroup_watcher`) creates the jail's cgroup for
//! us, waits for our pid to end (pidfd) and then removes the cgroup
//! directories (and the parents it created). It is not our child (double
//! fork, so the program never sees or waits for it), runs in its own session,
//! stays in the original cgroup and PID namespace, ignores the terminal
//! signals, and exits as soon as the cleanup is done.

use std::os::fd::AsFd;

use nsjail_config::spec::JailSpec;

use crate::cgroup::Cgroups;
use crate::child::{self, ChildIo, Plan};
use crate::launch::clone_failure;
use crate::sys::{self, Forked};

/// Run EXECVE mode; returns only on failure, with the reason.
pub fn run(spec: &JailSpec, cgroups: Cgroups) -> String {
    let plan = match Plan::prepare(spec) {
        Ok(p) => p,
        Err(e) => return e.to_string(),
    };
    if spec.unotify {
        log::warn!(
            "seccomp_unotify is not available in EXECVE mode (-Me): no supervisor stays behind to answer the notifications; the program runs untraced (use -Mo to trace it)"
        );
    }
    let me = std::process::id() as i32;
    if cgroups.is_active() {
        if let Err(e) = start_cgroup_watcher(cgroups, me) {
            return format!("putting ourselves into the jail's cgroup: {e}");
        }
    } else {
        // Nothing to clean up; nothing to undo either.
        std::mem::forget(cgroups);
    }
    let flags = spec.namespaces.clone_flags();
    if let Err(e) = sys::unshare(flags) {
        return clone_failure(&e, flags);
    }
    child::exec_in_place(&plan, &ChildIo::default())
}

/// Start the cgroup watcher for `target` (our own pid): it creates the
/// jail's cgroup(s) with `target` in them and reports back; once `target` has
/// ended, it kills what is left in them and removes them (and every parent
/// it created, and undoes a v2 self-move). Returns when `target` is in its
/// cgroup, or why that failed.
fn start_cgroup_watcher(cgroups: Cgroups, target: i32) -> Result<(), String> {
    let (r, w) = sys::pipe_cloexec().map_err(|e| e.to_string())?;
    match sys::clone_process(0).map_err(|e| format!("{e} (starting the cgroup watcher)"))? {
        Forked::Child => {
            drop(r);
            // Double fork: the watcher must not be a child of the program.
            match sys::clone_process(0) {
                Ok(Forked::Child) => watcher_main(cgroups, target, w),
                Ok(Forked::Parent(_)) => sys::exit_now(0),
                Err(e) => {
                    let _ = sys::write_all(w.as_fd(), e.to_string().as_bytes());
                    sys::exit_now(1)
                }
            }
        }
        Forked::Parent(mid) => {
            drop(w);
            // The watcher owns the clean-up (and the v2 self-move undo) now.
            std::mem::forget(cgroups);
            let _ = sys::reap(mid);
            let msg = sys::read_to_eof(r.as_fd());
            match msg.first() {
                Some(0) => Ok(()),
                Some(_) => Err(String::from_utf8_lossy(&msg).into_owned()),
                None => Err("the cgroup watcher ended without a word".to_string()),
            }
        }
    }
}

fn watcher_main(cgroups: Cgroups, target: i32, status: std::os::fd::OwnedFd) -> ! {
    let _ = rustix::process::setsid();
    for s in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
        libc::SIGUSR1,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ] {
        let _ = sys::signal_disposition(s, true);
    }
    let _ = sys::unblock_all_signals();
    let _ = rustix::thread::set_name(c"nsjail-cgclean");
    // The program's stdin/stdout are not ours to hold open; stderr stays
    // for our warnings.
    if let Ok(null) = sys::open("/dev/null", libc::O_RDWR, 0) {
        let _ = sys::dup2(null.as_fd(), 0);
        let _ = sys::dup2(null.as_fd(), 1);
    }
    let fail = |msg: String| -> ! {
        let _ = sys::write_all(status.as_fd(), msg.as_bytes());
        sys::exit_now(1)
    };
    // The target waits for our word, so it is alive now.
    let pidfd = match rustix::process::Pid::from_raw(target)
        .ok_or(rustix::io::Errno::INVAL)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()))
    {
        Ok(fd) => fd,
        Err(e) => fail(format!(
            "pidfd_open({target}) failed: {e} (the cgroup clean-up needs Linux 5.3+)"
        )),
    };
    let cg = match cgroups.create_for(target) {
        Ok(cg) => cg,
        Err(e) => {
            cgroups.teardown();
            fail(e.to_string())
        }
    };
    if sys::write_all(status.as_fd(), &[0]).is_err() {
        // The target is gone already; clean up below.
        log::debug!("cgroup watcher: the program ended before it was told to go on");
    }
    drop(status);
    loop {
        match sys::poll_in(pidfd.as_fd(), -1) {
            Ok(true) => break,
            Ok(false) => continue,
            Err(e) => {
                log::warn!("cgroup watcher: {e}; cleaning up now");
                break;
            }
        }
    }
    // What the program left running in its cgroup cannot stay there.
    cg.kill_all();
    if let Err(e) = cg.remove() {
        log::warn!("{e}");
    }
    cgroups.teardown();
    sys::exit_now(0)
}
