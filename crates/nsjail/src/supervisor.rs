//! Launching jails ([`launch`]) and the clone-based standalone modes: ONCE
//! ([`run_once`]) and RERUN ([`run_rerun`]). LISTEN lives in `listen.rs`.
//!
//! Signals are blocked and read from a signalfd; the loop polls it with a
//! timeout that ends exactly at the time limit (so the limit is enforced
//! within a few ms, far finer than nsjail's 1 s). SIGINT/SIGTERM/SIGHUP (and
//! in ONCE also SIGQUIT) kill the jail (or are forwarded with
//! `forward_signals`), the jail is reaped and cleaned up, and nsjail
//! returns 128+signal. SIGUSR1 (and SIGQUIT in RERUN, as nsjail) lists the
//! live jail.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nsjail_config::Jail;

use crate::cgroup::{CgroupStats, Cgroups, JailCgroup};
use crate::child::{self, ChildIo, Plan};
use crate::report::{LineSink, Report, Status};
use crate::seccomp::Filter;
use crate::sys::{self, ChildState, Forked, Reaped};
use crate::user;

/// The remote text of the standalone modes.
pub const STANDALONE: &str = "[STANDALONE MODE]";

/// Every signal the supervisor reads from its signalfd.
pub const HANDLED_SIGNALS: [libc::c_int; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGCHLD,
    libc::SIGALRM,
    libc::SIGPIPE,
];

/// Errors of the supervisor itself (not of the jail).
#[derive(Debug, thiserror::Error)]
pub enum SuperError {
    /// A raw call failed.
    #[error(transparent)]
    Sys(#[from] sys::SysError),
}

/// The clone flags for the enabled namespaces.
pub fn clone_flags(cfg: &nsjail_config::NsJailConfig) -> u64 {
    let mut f = 0u64;
    for (on, bit) in [
        (cfg.clone_newuser(), libc::CLONE_NEWUSER),
        (cfg.clone_newns(), libc::CLONE_NEWNS),
        (cfg.clone_newpid(), libc::CLONE_NEWPID),
        (cfg.clone_newipc(), libc::CLONE_NEWIPC),
        (cfg.clone_newuts(), libc::CLONE_NEWUTS),
        (cfg.clone_newnet(), libc::CLONE_NEWNET),
        (cfg.clone_newcgroup(), libc::CLONE_NEWCGROUP),
        (cfg.clone_newtime(), libc::CLONE_NEWTIME),
    ] {
        if on {
            f |= bit as u64;
        }
    }
    f
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Block the handled signals, ignore SIGTTIN/SIGTTOU, return the signalfd.
pub fn signal_fd() -> Result<OwnedFd, SuperError> {
    let set = sys::sigset(&HANDLED_SIGNALS);
    sys::sigprocmask(libc::SIG_BLOCK, &set)?;
    let sfd = sys::signalfd(&set)?;
    for s in [libc::SIGTTIN, libc::SIGTTOU] {
        sys::signal_disposition(s, true)?;
    }
    Ok(sfd)
}

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
    parked: Option<OwnedFd>,
    /// `seccomp_unotify` is on (a parked jail may be traced when released).
    unotify: bool,
}

impl Launched {
    /// Let a parked jail exec; wait until it did (or failed).
    pub fn release(mut self, live: usize) -> Result<Launched, LaunchFailure> {
        let Some(sock) = self.parked.take() else {
            return Ok(self);
        };
        let err = match read_parked(&sock) {
            Some(e) => Some(e),
            None => {
                self.start = Instant::now();
                let claim = crate::unotify::try_claim(self.unotify);
                let go = if claim.is_some() {
                    crate::unotify::GO_TRACED
                } else {
                    b'G'
                };
                match sys::write_all(sock.as_raw_fd(), &[go]) {
                    Ok(()) => read_child_error(&sock, self.pid, claim),
                    Err(e) => Some(format!("releasing the child (pid={}): {e}", self.pid)),
                }
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
    let mut report = Report::setup_failed(error.clone(), 0);
    if let Ok(reaped) = sys::reap(pid) {
        log_exit(pid, remote, reaped.state, live);
        report.user_ms = reaped.user_us / 1000;
        report.sys_ms = reaped.sys_us / 1000;
        report.max_rss_kb = reaped.max_rss_kb;
    }
    finish_cgroup(cg);
    report.wall_ms = ms(start.elapsed());
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

/// Launch one jail: clone, the parent's part (cgroup, id maps, `'D'`), wait
/// for the exec (with `io.park`: for the child to be set up, see
/// [`Launched::release`]). `live` = other jails alive, for the "PIDs left"
/// log line. A failure kills, reaps and cleans the half-made jail.
pub fn launch(
    plan: &Plan,
    cgroups: &Cgroups,
    flags: u64,
    io: &ChildIo,
    live: usize,
) -> Result<Launched, LaunchFailure> {
    let start = Instant::now();
    let fail = |error: String| LaunchFailure {
        report: Box::new(Report::setup_failed(error.clone(), ms(start.elapsed()))),
        error,
    };
    let (parent_sock, child_sock) = sys::socketpair().map_err(|e| fail(e.to_string()))?;
    // A parked jail learns whether it is traced when it is released.
    let mut claim = crate::unotify::try_claim(plan.unotify.is_some() && !io.park);
    let pid = match sys::clone_process(flags) {
        Ok(Forked::Child) => {
            drop(parent_sock);
            child::run(plan, child_sock, io, claim.is_some())
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            return Err(fail(clone_failure(&e, flags)));
        }
    };
    drop(child_sock);

    // Parent part, in nsjail's order: network (iface_own, MACVLAN), cgroups,
    // then the id maps, then 'D'.
    let mut jail_cg: Option<JailCgroup> = None;
    let mut parent_setup = || -> Result<(), String> {
        plan.net.setup_parent(pid).map_err(|e| e.to_string())?;
        jail_cg = Some(cgroups.create_for(pid).map_err(|e| e.to_string())?);
        if flags & libc::CLONE_NEWUSER as u64 != 0 {
            user::write_maps(pid, &plan.maps).map_err(|e| e.to_string())?;
        }
        sys::write_all(parent_sock.as_raw_fd(), b"D")
            .map_err(|e| format!("releasing the child (pid={pid}): {e}"))
    };
    let setup_error = match parent_setup() {
        Ok(()) if io.park => {
            // The child sets itself up while we go on; release() waits.
            return Ok(Launched {
                pid,
                cg: jail_cg,
                start,
                parked: Some(parent_sock),
                unotify: plan.unotify.is_some(),
            });
        }
        Ok(()) => read_child_error(&parent_sock, pid, claim.take()),
        Err(parent_err) => {
            // The child may have failed first (and explained why): prefer its words.
            let _ = sys::kill(pid, libc::SIGKILL);
            Some(read_child_error(&parent_sock, pid, claim.take()).unwrap_or(parent_err))
        }
    };
    drop(parent_sock);
    match setup_error {
        None => Ok(Launched {
            pid,
            cg: jail_cg,
            start,
            parked: None,
            unotify: plan.unotify.is_some(),
        }),
        Some(error) => Err(fail_jail(pid, jail_cg, error, remote_of(io), live, start)),
    }
}

/// A parked child's first message: [`child::PARKED`] (None) or its error.
fn read_parked(sock: &OwnedFd) -> Option<String> {
    let mut b = [0u8; 1];
    match sys::read(sock.as_raw_fd(), &mut b) {
        Ok(1) if b[0] == child::PARKED => None,
        Ok(1) => {
            let rest = read_child_error(sock, 0, None).unwrap_or_default();
            Some(format!("{}{rest}", b[0] as char))
        }
        Ok(_) => Some("the child ended before it was set up".to_string()),
        Err(e) => Some(format!("reading the child's status: {e}")),
    }
}

fn remote_of(io: &ChildIo) -> &str {
    if io.remote.is_empty() {
        STANDALONE
    } else {
        &io.remote
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

fn cgroup_fields(s: CgroupStats) -> crate::report::CgroupFields {
    crate::report::CgroupFields {
        oom_killed: Some(s.oom_killed),
        mem_peak_bytes: s.mem_peak_bytes,
        cpu_usage_us: s.cpu_usage_us,
        pids_peak: s.pids_peak,
    }
}

/// The report of a jail that ran and was reaped.
pub fn finished_report(
    cfg: &nsjail_config::NsJailConfig,
    reaped: &Reaped,
    wall: Duration,
    time_limit_hit: bool,
    syscall: Option<String>,
    stats: Option<CgroupStats>,
) -> Report {
    let (exit_code, status, signal) = match reaped.state {
        ChildState::Exited(c) => (c, Status::Exited, None),
        ChildState::Signaled(s) => (
            128 + s,
            if s == libc::SIGSYS {
                Status::Seccomp
            } else if time_limit_hit {
                Status::TimeLimit
            } else if s == libc::SIGKILL && stats.as_ref().is_some_and(|c| c.oom_killed) {
                Status::Oom
            } else if hit_cpu_rlimit(cfg, s, reaped.user_us + reaped.sys_us) {
                Status::RlimitCpu
            } else {
                Status::Signaled
            },
            Some(s),
        ),
        ChildState::Running => (255, Status::SetupFailed, None),
    };
    Report {
        exit_code,
        status,
        signal,
        wall_ms: ms(wall),
        user_ms: reaped.user_us / 1000,
        sys_ms: reaped.sys_us / 1000,
        max_rss_kb: reaped.max_rss_kb,
        syscall,
        error: None,
        cgroup: stats
            .map(|s| crate::report::CgroupFields {
                // v1 hosts often mount cpuacct apart from cpu: then the
                // reaped processes' rusage is the account we have.
                cpu_usage_us: s.cpu_usage_us.or(Some(reaped.user_us + reaped.sys_us)),
                ..cgroup_fields(s)
            })
            .unwrap_or_default(),
        remote: None,
        run: None,
    }
}

/// Whether death by `sig` after `cpu_us` of CPU time is the kernel enforcing
/// `rlimit_cpu` (SIGXCPU at the soft limit, SIGKILL at the hard one; nsjail
/// sets both to the same value).
fn hit_cpu_rlimit(cfg: &nsjail_config::NsJailConfig, sig: i32, cpu_us: u64) -> bool {
    if cfg.disable_rl() || cfg.rlimit_cpu_type() != nsjail_config::RLimit::VALUE {
        return false;
    }
    // CPU time is charged in ticks: allow a little under the limit.
    let limit_us = cfg.rlimit_cpu().saturating_mul(1_000_000);
    (sig == libc::SIGKILL || sig == libc::SIGXCPU) && cpu_us + 50_000 >= limit_us
}

/// Read the socket until EOF (exec happened) or an error text arrives.
/// With `claim`, the child sends its `seccomp_unotify` listener on the way
/// (see [`crate::unotify::read_child_status`]).
fn read_child_error(
    sock: &OwnedFd,
    pid: i32,
    claim: Option<crate::unotify::Claim>,
) -> Option<String> {
    let buf = match crate::unotify::read_child_status(sock, pid, claim) {
        Ok(b) => b,
        Err(e) => return Some(format!("reading the child's status: {e}")),
    };
    if buf.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&buf).into_owned())
    }
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

/// nsjail's SIGUSR1/SIGQUIT listing: a count, then one line per live jail.
pub fn display_jails<'a>(
    jails: impl ExactSizeIterator<Item = (i32, &'a str, Instant)>,
    limit: u32,
) {
    log::info!("Total number of spawned namespaces: {}", jails.len());
    for (pid, remote, start) in jails {
        let run = start.elapsed().as_secs();
        let left = if limit > 0 {
            (limit as u64).saturating_sub(run).to_string()
        } else {
            "unlimited".to_string()
        };
        log::info!("pid={pid}, Remote host: {remote}, Run time: {run} sec. (time left: {left} s.)");
    }
}

/// The time limit kill (nsjail sends SIGCONT first: stopped namespaced
/// processes may otherwise not die).
pub fn kill_for_time_limit(pid: i32, start: Instant, limit: u32, remote: &str) {
    let run = start.elapsed().as_secs();
    log::info!("pid={pid} run time >= time limit ({run} >= {limit}) ({remote}). Killing it");
    let _ = sys::kill(pid, libc::SIGCONT);
    let _ = sys::kill(pid, libc::SIGKILL);
}

/// Run one jail to completion. Returns nsjail's exit code and the report.
pub fn run_once(
    jail: &Jail,
    filter: Option<&Filter>,
    cgroups: &Cgroups,
) -> Result<Report, SuperError> {
    let sfd = signal_fd()?;
    let start = Instant::now();
    let plan = match Plan::prepare(jail, filter) {
        Ok(p) => p,
        Err(e) => {
            return Ok(Report::setup_failed(e.to_string(), ms(start.elapsed())));
        }
    };
    let kmsg = filter.and_then(|_| crate::seccomp_report::open_kmsg());
    let flags = clone_flags(&jail.cfg);
    let run = match launch(&plan, cgroups, flags, &ChildIo::default(), 0) {
        Ok(l) => l,
        Err(f) => return Ok(*f.report),
    };
    drop(plan);
    let (report, _) = supervise_to_end(jail, run, &sfd, kmsg.as_ref(), true, cgroups)?;
    Ok(report)
}

/// Supervise a launched jail until it ends, reap it, clean up, report.
/// Returns the report (exit code already 128+signal after a fatal signal)
/// and the fatal signal, if one arrived.
fn supervise_to_end(
    jail: &Jail,
    run: Launched,
    sfd: &OwnedFd,
    kmsg: Option<&OwnedFd>,
    quit_is_fatal: bool,
    cgroups: &Cgroups,
) -> Result<(Report, Option<i32>), SuperError> {
    let Launched { pid, cg, start, .. } = run;
    let outcome = supervise(jail, pid, start, sfd, quit_is_fatal)?;
    let mut syscall = None;
    if let ChildState::Signaled(libc::SIGSYS) = outcome.state {
        syscall = crate::seccomp_report::violation(pid, kmsg);
    }
    let reaped = sys::reap(pid)?;
    let wall = start.elapsed();
    log_exit(pid, STANDALONE, reaped.state, 0);
    let stats = if cgroups.is_active() {
        Some(finish_cgroup(cg))
    } else {
        drop(cg);
        None
    };
    let mut report = finished_report(
        &jail.cfg,
        &reaped,
        wall,
        outcome.time_limit_hit,
        syscall,
        stats,
    );
    if let Some(s) = outcome.fatal_signal {
        report.exit_code = 128 + s;
    }
    Ok((report, outcome.fatal_signal))
}

/// RERUN: launch the command again after each exit until a fatal signal.
/// Each run is a fresh jail (new namespaces, its own cgroup). Returns
/// nsjail's exit code: 128+signal, or 255 when a jail cannot be launched.
pub fn run_rerun(
    jail: &Jail,
    filter: Option<&Filter>,
    cgroups: &Cgroups,
    sink: Option<&LineSink>,
) -> Result<i32, SuperError> {
    let sfd = signal_fd()?;
    let plan = match Plan::prepare(jail, filter) {
        Ok(p) => p,
        Err(e) => {
            log::error!("Couldn't launch the child process: {e}");
            return Ok(255);
        }
    };
    let kmsg = filter.and_then(|_| crate::seccomp_report::open_kmsg());
    let flags = clone_flags(&jail.cfg);
    // Pipelined: while run n executes, runs n+1.. are cloned and set
    // themselves up to just before the exec (parked), each in its own
    // namespaces and cgroup; the next one is released ('G') the moment run
    // n has been reaped, so runs stay strictly one after the other.
    let io = ChildIo {
        park: true,
        ..ChildIo::default()
    };
    // PIPELINE jails are cloned ahead and set themselves up concurrently;
    // none when each jail takes host interfaces (iface_own, MACVLAN with
    // its address and MAC): they could not coexist. None without a PID
    // namespace either: the running jail could then signal the jails cloned
    // ahead (same uid) and end the whole loop.
    let depth = if plan.net.has_parent_work() || !jail.cfg.clone_newpid() {
        0
    } else {
        PIPELINE
    };
    let mut ahead: std::collections::VecDeque<Result<Launched, LaunchFailure>> = (0..depth)
        .map(|_| launch(&plan, cgroups, flags, &io, 0))
        .collect();
    for n in 1u64.. {
        let next = ahead
            .pop_front()
            .unwrap_or_else(|| launch(&plan, cgroups, flags, &io, 0));
        let run = match next.and_then(|p| p.release(0)) {
            Ok(l) => l,
            Err(mut f) => {
                f.report.run = Some(n);
                if let Some(s) = sink {
                    s.append(&f.report);
                }
                log::error!("Couldn't launch the child process: {}", f.error);
                abandon_all(ahead);
                return Ok(255);
            }
        };
        if depth > 0 {
            ahead.push_back(launch(&plan, cgroups, flags, &io, 1));
        }
        let (mut report, fatal) = supervise_to_end(jail, run, &sfd, kmsg.as_ref(), false, cgroups)?;
        report.run = Some(n);
        if let Some(s) = sink {
            s.append(&report);
        }
        if let Some(sig) = fatal {
            abandon_all(ahead);
            return Ok(128 + sig);
        }
    }
    Ok(0)
}

/// How many RERUN jails are cloned ahead of the running one (measured on 2
/// cores, /bin/true: 0 → ~500 runs/s, 1 → ~620, 2 → ~700, 3 → ~710).
const PIPELINE: usize = 2;

fn abandon_all(ahead: std::collections::VecDeque<Result<Launched, LaunchFailure>>) {
    for l in ahead.into_iter().flatten() {
        l.abandon();
    }
}

struct Outcome {
    state: ChildState,
    time_limit_hit: bool,
    fatal_signal: Option<i32>,
}

fn supervise(
    jail: &Jail,
    pid: i32,
    start: Instant,
    sfd: &OwnedFd,
    quit_is_fatal: bool,
) -> Result<Outcome, SuperError> {
    let cfg = &jail.cfg;
    let limit = cfg.time_limit();
    let deadline = (limit > 0).then(|| start + Duration::from_secs(limit as u64));
    let mut time_limit_hit = false;
    let mut fatal_signal = None;
    loop {
        let state = sys::peek_child(pid)?;
        if !matches!(state, ChildState::Running) {
            return Ok(Outcome {
                state,
                time_limit_hit,
                fatal_signal,
            });
        }
        let now = Instant::now();
        if let Some(d) = deadline.filter(|_| !time_limit_hit) {
            if now >= d {
                kill_for_time_limit(pid, start, limit, STANDALONE);
                time_limit_hit = true;
                continue;
            }
        }
        let timeout = match deadline.filter(|_| !time_limit_hit) {
            Some(d) => {
                let left = d.saturating_duration_since(now);
                (left.as_micros().div_ceil(1000)).min(i32::MAX as u128) as i32
            }
            None => -1,
        };
        // Also answers the traced jail's seccomp_unotify notifications.
        if !crate::unotify::poll_in(sfd.as_raw_fd(), timeout)? {
            continue;
        }
        while let Some(sig) = sys::signalfd_read(sfd) {
            let fatal = matches!(sig, libc::SIGINT | libc::SIGTERM | libc::SIGHUP)
                || (sig == libc::SIGQUIT && quit_is_fatal);
            if fatal {
                fatal_signal = Some(sig);
                if cfg.forward_signals() {
                    log::info!(
                        "Forwarding signal {} ({sig}) to pid={pid}",
                        sys::signal_name(sig)
                    );
                    sys::kill(pid, sig)?;
                } else {
                    log::info!("Server stops due to fatal signal ({sig}) caught. Exiting");
                    sys::kill(pid, libc::SIGKILL)?;
                }
            } else if sig == libc::SIGUSR1 || sig == libc::SIGQUIT {
                display_jails(std::iter::once((pid, STANDALONE, start)), limit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The status classification of [`finished_report`]: each status from
    //! the evidence that names it, and the near misses that must not.
    use super::*;

    fn reaped(state: ChildState, cpu_ms: u64) -> Reaped {
        Reaped {
            state,
            user_us: cpu_ms * 1000,
            sys_us: 0,
            max_rss_kb: 1234,
        }
    }

    fn cfg_cpu(secs: u64) -> nsjail_config::NsJailConfig {
        let mut c = nsjail_config::NsJailConfig::new();
        c.set_rlimit_cpu(secs);
        c.set_rlimit_cpu_type(nsjail_config::RLimit::VALUE);
        c
    }

    fn oom(killed: bool) -> Option<CgroupStats> {
        Some(CgroupStats {
            oom_killed: killed,
            ..Default::default()
        })
    }

    fn status(
        cfg: &nsjail_config::NsJailConfig,
        r: &Reaped,
        time_limit_hit: bool,
        stats: Option<CgroupStats>,
    ) -> (Status, i32, Option<i32>) {
        let rep = finished_report(
            cfg,
            r,
            Duration::from_millis(7),
            time_limit_hit,
            None,
            stats,
        );
        (rep.status, rep.exit_code, rep.signal)
    }

    #[test]
    fn exited_keeps_the_code_and_no_signal() {
        let c = cfg_cpu(1);
        // Even with CPU time past the limit and an OOM kill recorded: an exit is an exit.
        let r = reaped(ChildState::Exited(3), 5000);
        assert_eq!(status(&c, &r, true, oom(true)), (Status::Exited, 3, None));
        assert_eq!(
            status(&c, &reaped(ChildState::Exited(0), 0), false, None),
            (Status::Exited, 0, None)
        );
    }

    #[test]
    fn a_plain_signal_death_is_signaled() {
        let c = cfg_cpu(600);
        for sig in [libc::SIGKILL, libc::SIGTERM, libc::SIGSEGV, libc::SIGXCPU] {
            let r = reaped(ChildState::Signaled(sig), 10);
            assert_eq!(
                status(&c, &r, false, oom(false)),
                (Status::Signaled, 128 + sig, Some(sig)),
                "signal {sig}"
            );
        }
    }

    #[test]
    fn sigsys_is_seccomp_before_anything_else() {
        let r = reaped(ChildState::Signaled(libc::SIGSYS), 5000);
        assert_eq!(status(&cfg_cpu(1), &r, true, oom(true)).0, Status::Seccomp);
    }

    #[test]
    fn time_limit_wins_over_oom_and_cpu() {
        let r = reaped(ChildState::Signaled(libc::SIGKILL), 5000);
        assert_eq!(
            status(&cfg_cpu(1), &r, true, oom(true)),
            (Status::TimeLimit, 137, Some(libc::SIGKILL))
        );
    }

    #[test]
    fn oom_needs_sigkill_and_the_cgroup_saying_so() {
        let c = cfg_cpu(600);
        let kill = reaped(ChildState::Signaled(libc::SIGKILL), 10);
        assert_eq!(status(&c, &kill, false, oom(true)).0, Status::Oom);
        assert_eq!(status(&c, &kill, false, oom(false)).0, Status::Signaled);
        assert_eq!(status(&c, &kill, false, None).0, Status::Signaled);
        let segv = reaped(ChildState::Signaled(libc::SIGSEGV), 10);
        assert_eq!(status(&c, &segv, false, oom(true)).0, Status::Signaled);
    }

    #[test]
    fn rlimit_cpu_needs_the_cpu_time_and_the_right_signal() {
        let c = cfg_cpu(2);
        for sig in [libc::SIGXCPU, libc::SIGKILL] {
            // At the limit, or a tick under it (CPU time is charged in ticks).
            for ms in [2000, 1960, 2500] {
                let r = reaped(ChildState::Signaled(sig), ms);
                assert_eq!(
                    status(&c, &r, false, None).0,
                    Status::RlimitCpu,
                    "sig {sig}, {ms} ms"
                );
            }
            // Well under the limit: someone else's signal.
            let r = reaped(ChildState::Signaled(sig), 1500);
            assert_eq!(status(&c, &r, false, None).0, Status::Signaled);
        }
        // SIGTERM after the CPU time: not the kernel's rlimit signal.
        let r = reaped(ChildState::Signaled(libc::SIGTERM), 3000);
        assert_eq!(status(&c, &r, false, None).0, Status::Signaled);
    }

    #[test]
    fn rlimit_cpu_only_when_a_value_limit_was_set() {
        let r = reaped(ChildState::Signaled(libc::SIGXCPU), 3000);
        let mut soft = cfg_cpu(2);
        soft.set_rlimit_cpu_type(nsjail_config::RLimit::SOFT);
        assert!(!hit_cpu_rlimit(&soft, libc::SIGXCPU, 3_000_000));
        assert_eq!(status(&soft, &r, false, None).0, Status::Signaled);
        let mut disabled = cfg_cpu(2);
        disabled.set_disable_rl(true);
        assert_eq!(status(&disabled, &r, false, None).0, Status::Signaled);
        assert!(hit_cpu_rlimit(&cfg_cpu(2), libc::SIGXCPU, 3_000_000));
    }

    #[test]
    fn a_child_never_reaped_is_a_setup_failure() {
        let r = reaped(ChildState::Running, 0);
        assert_eq!(
            status(&cfg_cpu(1), &r, false, None),
            (Status::SetupFailed, 255, None)
        );
    }

    #[test]
    fn the_report_carries_the_measurements() {
        let r = Reaped {
            state: ChildState::Exited(0),
            user_us: 12_345,
            sys_us: 6_789,
            max_rss_kb: 4321,
        };
        let rep = finished_report(
            &cfg_cpu(1),
            &r,
            Duration::from_millis(42),
            false,
            Some("ptrace".into()),
            None,
        );
        assert_eq!((rep.wall_ms, rep.user_ms, rep.sys_ms), (42, 12, 6));
        assert_eq!(rep.max_rss_kb, 4321);
        assert_eq!(rep.syscall.as_deref(), Some("ptrace"));
        assert!(rep.cgroup.oom_killed.is_none());
        // With cgroup stats but no cpuacct: the rusage stands in for cpu_usage_us.
        let with = finished_report(&cfg_cpu(1), &r, Duration::ZERO, false, None, oom(false));
        assert_eq!(with.cgroup.oom_killed, Some(false));
        assert_eq!(with.cgroup.cpu_usage_us, Some(19_134));
    }
}
