//! Launching one jail: clone, the supervisor's part (interfaces, cgroup,
//! id maps) over the [`crate::protocol`], and the wait for its exec; a
//! failure kills, reaps and cleans the half-made jail.

use std::time::Instant;

use crate::cgroup::{CgroupStats, Cgroups, JailCgroup};
use crate::child::{self, ChildIo, Plan};
use crate::protocol::{self, SupervisorEnd, ToChild};
use crate::report::{Phases, Report};
use crate::sys::{self, ChildState, Forked};
use crate::unotify::Tracer;
use crate::user;

/// The remote text of the standalone modes.
pub const STANDALONE: &str = "[STANDALONE MODE]";

/// A jail that reached its exec (or, launched with `park`, is set up and
/// waits for [`Launched::release`]).
#[derive(Debug)]
pub struct Launched {
    /// Its pid (in our namespace).
    pub pid: i32,
    /// Its cgroup(s).
    pub cg: Option<JailCgroup>,
    /// When the clone happened (for a parked jail: when it was released).
    pub start: Instant,
    /// A parked jail's end of the socketpair.
    parked: Option<SupervisorEnd>,
    /// Where the launch's time went so far (the supervisor fills in the run
    /// and the teardown).
    pub phases: Phases,
}

/// Fold what the child said of its phases into `p`; the time from its
/// timings to its exec is the seccomp filters and the execve.
fn child_phases(p: &mut Phases, st: &protocol::Status) {
    if let Some(t) = st.timings {
        p.child_wait_us = t[0];
        p.ids_us = t[1];
        p.mounts_us = t[2];
        p.child_net_us = t[3];
        p.process_us = t[4] + t[5];
    }
    if let Some(at) = st.timings_at {
        p.seccomp_exec_us = at.elapsed().as_micros() as u64;
    }
}

impl Launched {
    /// Let a parked jail exec (traced when `tracer` claims it); wait until
    /// it did (or failed).
    pub fn release(mut self, tracer: &mut Tracer, live: usize) -> Result<Launched, LaunchFailure> {
        let Some(end) = self.parked.take() else {
            return Ok(self);
        };
        let err = match end.read_parked() {
            Err(e) => Some(e),
            Ok(()) => {
                self.start = Instant::now();
                let traced = tracer.claim();
                let go = if traced {
                    ToChild::ReleaseTraced
                } else {
                    ToChild::Release
                };
                let err = match end.send(go) {
                    Ok(()) => {
                        let st = end.read_status(traced.then_some(&mut *tracer), self.pid);
                        child_phases(&mut self.phases, &st);
                        st.error
                    }
                    Err(e) => Some(format!("releasing the child (pid={}): {e}", self.pid)),
                };
                tracer.unclaim();
                err
            }
        };
        match err {
            None => Ok(self),
            Some(error) => Err(fail_jail(
                self.pid, self.cg, error, STANDALONE, live, self.start,
            )),
        }
    }

    /// Kill a parked jail that is not wanted any more; reap it, remove its cgroup.
    pub fn abandon(self) {
        let _ = sys::kill(self.pid, libc::SIGKILL);
        let _ = sys::reap(self.pid);
        crate::usernet::end(self.pid);
        finish_cgroup(self.cg);
    }
}

/// A jail that failed before its exec (already killed, reaped, cleaned).
#[derive(Debug)]
pub struct LaunchFailure {
    /// Why (the child's own words when it said something).
    pub error: String,
    /// The report of the failed run.
    pub report: Box<Report>,
}

fn fail_jail(
    pid: i32,
    cg: Option<JailCgroup>,
    error: String,
    remote: &str,
    live: usize,
    start: Instant,
) -> LaunchFailure {
    let _ = sys::kill(pid, libc::SIGKILL);
    crate::usernet::end(pid);
    let mut report = Report::setup_failed(error.clone(), 0);
    if let Ok(reaped) = sys::reap(pid) {
        log_exit(pid, remote, reaped.state, live);
        report.user_ms = reaped.user_us / 1000;
        report.sys_ms = reaped.sys_us / 1000;
        report.max_rss_kb = reaped.max_rss_kb;
    }
    finish_cgroup(cg);
    report.wall_ms = start.elapsed().as_millis() as u64;
    LaunchFailure {
        error,
        report: Box::new(report),
    }
}

/// The message for a failed clone3/unshare of the jail's namespaces: the
/// cause and its fix, in particular for an unprivileged user.
pub fn clone_failure(e: &sys::SysError, flags: u64) -> String {
    let userns = flags & libc::CLONE_NEWUSER as u64 != 0;
    let errno = e.source.raw_os_error();
    let root = rustix::process::geteuid().is_root();
    if !root && !userns && errno == Some(libc::EPERM) {
        format!(
            "{e}: without root (uid {}), the other namespaces need a user namespace to own them, \
             and --disable_clone_newuser (clone_newuser: false) turned it off; drop that option, \
             or run nsjail as root",
            rustix::process::geteuid().as_raw()
        )
    } else if !root && userns && matches!(errno, Some(libc::EPERM | libc::ENOSPC | libc::EACCES)) {
        format!(
            "{e}: this host refuses user namespaces to unprivileged users \
             (see /proc/sys/user/max_user_namespaces, kernel.unprivileged_userns_clone, \
             kernel.apparmor_restrict_unprivileged_userns, or a container's seccomp policy); \
             allow them, or run nsjail as root"
        )
    } else {
        format!("{e} (namespaces need root or unprivileged user namespaces; try disabling some with --disable_clone_*)")
    }
}

/// Launch one jail: clone, the parent's part (interfaces, cgroup, id maps,
/// [`ToChild::Proceed`]), wait for the exec (with `io.park`: for the child
/// to be set up, see [`Launched::release`]). `live` = other jails alive,
/// for the "PIDs left" log line. A failure kills, reaps and cleans the
/// half-made jail.
pub fn launch(
    plan: &Plan,
    cgroups: &Cgroups,
    tracer: &mut Tracer,
    io: &ChildIo,
    live: usize,
) -> Result<Launched, LaunchFailure> {
    let start = Instant::now();
    let flags = plan.spec.namespaces.clone_flags();
    let fail = |error: String| LaunchFailure {
        report: Box::new(Report::setup_failed(
            error.clone(),
            start.elapsed().as_millis() as u64,
        )),
        error,
    };
    let (sup_end, child_end) = protocol::pair().map_err(|e| fail(e.to_string()))?;
    // A parked jail learns whether it is traced when it is released.
    let traced = plan.unotify.is_some() && !io.park && tracer.claim();
    let mut phases = Phases::default();
    let t_clone = Instant::now();
    let pid = match sys::clone_process(flags) {
        Ok(Forked::Child) => {
            drop(sup_end);
            child::run(plan, child_end, io, traced)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            tracer.unclaim();
            return Err(fail(clone_failure(&e, flags)));
        }
    };
    phases.clone_us = t_clone.elapsed().as_micros() as u64;
    drop(child_end);

    // Parent part, in nsjail's order: network (iface_own, MACVLAN), cgroups,
    // then the id maps, the user network (pasta), then Proceed.
    let mut jail_cg: Option<JailCgroup> = None;
    let mut parent_setup = || -> Result<(), String> {
        let us = |t: Instant| t.elapsed().as_micros() as u64;
        let t = Instant::now();
        plan.net.setup_parent(pid).map_err(|e| e.to_string())?;
        phases.parent_net_us = us(t);
        let t = Instant::now();
        jail_cg = Some(cgroups.create_for(pid).map_err(|e| e.to_string())?);
        phases.cgroup_us = us(t);
        let t = Instant::now();
        if flags & libc::CLONE_NEWUSER as u64 != 0 {
            user::write_maps(pid, &plan.spec.ids).map_err(|e| e.to_string())?;
        }
        phases.id_maps_us = us(t);
        // After the maps: a rootless pasta joins the jail's user namespace.
        if let Some(u) = &plan.spec.net.user {
            crate::usernet::start_parent(u, pid, &sup_end)?;
        }
        sup_end
            .send(ToChild::Proceed)
            .map_err(|e| format!("releasing the child (pid={pid}): {e}"))
    };
    let setup_error = match parent_setup() {
        Ok(()) if io.park => {
            // The child sets itself up while we go on; release() waits.
            return Ok(Launched {
                pid,
                cg: jail_cg,
                start,
                parked: Some(sup_end),
                phases,
            });
        }
        Ok(()) => {
            let st = sup_end.read_status(traced.then_some(&mut *tracer), pid);
            child_phases(&mut phases, &st);
            st.error
        }
        Err(parent_err) => {
            // The child may have failed first (and explained why): prefer its words.
            let _ = sys::kill(pid, libc::SIGKILL);
            Some(
                sup_end
                    .read_status(traced.then_some(&mut *tracer), pid)
                    .error
                    .unwrap_or(parent_err),
            )
        }
    };
    tracer.unclaim();
    drop(sup_end);
    match setup_error {
        None => Ok(Launched {
            pid,
            cg: jail_cg,
            start,
            parked: None,
            phases,
        }),
        Some(error) => Err(fail_jail(
            pid,
            jail_cg,
            error,
            remote_of(&io.remote),
            live,
            start,
        )),
    }
}

/// The remote text of a jail: the peer address, or [`STANDALONE`].
pub fn remote_of(remote: &str) -> &str {
    if remote.is_empty() {
        STANDALONE
    } else {
        remote
    }
}

/// Read the jail's cgroup accounting, then remove its directories.
pub fn finish_cgroup(cg: Option<JailCgroup>) -> CgroupStats {
    let Some(cg) = cg else {
        return CgroupStats::default();
    };
    let stats = cg.stats();
    cg.kill_all();
    if let Err(e) = cg.remove() {
        log::warn!("{e}");
    }
    stats
}

/// nsjail's line for a reaped jail.
pub fn log_exit(pid: i32, remote: &str, state: ChildState, left: usize) {
    match state {
        ChildState::Exited(c) => {
            log::info!("pid={pid} ({remote}) exited with status: {c}, (PIDs left: {left})")
        }
        ChildState::Signaled(s) => log::info!(
            "pid={pid} ({remote}) terminated with signal: {} ({s}), (PIDs left: {left})",
            sys::signal_name(s)
        ),
        ChildState::Running => {}
    }
}
