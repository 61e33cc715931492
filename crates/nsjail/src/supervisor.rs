//! The supervision core shared by ONCE, RERUN and LISTEN ([`Supervisor`]):
//! launching through the [`crate::launch`] protocol, deadlines and the time
//! limit, reaping (with the seccomp-kill diagnosis), the run report and its
//! numbering, cgroup teardown, the `seccomp_unotify` tracer, and signal
//! handling — once. ONCE and RERUN live here ([`run_once`], [`run_rerun`]);
//! LISTEN (`listen.rs`) keeps only accept, connection limits and the relay.
//!
//! Signals are blocked in the calling thread and read from a signalfd
//! ([`Signals`], which restores the caller's mask and dispositions when it
//! is dropped); the ONCE/RERUN wait polls it with a timeout that ends
//! exactly at the time limit (enforced within a few ms, far finer than
//! nsjail's 1 s). SIGINT/SIGTERM/SIGHUP (and in ONCE also SIGQUIT) kill the
//! jail (or are forwarded with `forward_signals`), the jail is reaped and
//! cleaned up, and nsjail returns 128+signal. SIGUSR1 (and SIGQUIT in RERUN,
//! as nsjail) lists the live jails.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nsjail_config::spec::{JailSpec, RunMode};

use crate::cgroup::{CgroupStats, Cgroups, JailCgroup};
use crate::child::{ChildIo, Plan};
use crate::launch::{self, finish_cgroup, log_exit, LaunchFailure, Launched, STANDALONE};
use crate::report::{LineSink, Phases, Report, Status};
use crate::seccomp_report::Violation;
use crate::sys::{self, ChildState, Reaped};
use crate::unotify::Tracer;

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
    /// What the child needs could not be prepared.
    #[error(transparent)]
    Plan(#[from] crate::child::PlanError),
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The supervisor's signals: [`HANDLED_SIGNALS`] blocked in the calling
/// thread and read from a signalfd, SIGTTIN/SIGTTOU ignored. Dropping it
/// puts the caller's signal mask and those two dispositions back.
pub struct Signals {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
    old_actions: Vec<(libc::c_int, libc::sigaction)>,
}

impl Signals {
    /// Block, ignore, open the signalfd.
    pub fn take() -> Result<Signals, SuperError> {
        let set = sys::sigset(&HANDLED_SIGNALS);
        let old_mask = sys::thread_sigmask(libc::SIG_BLOCK, &set)?;
        let mut s = Signals {
            fd: match sys::signalfd(&set) {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = sys::thread_sigmask(libc::SIG_SETMASK, &old_mask);
                    return Err(e.into());
                }
            },
            old_mask,
            old_actions: Vec::new(),
        };
        for sig in [libc::SIGTTIN, libc::SIGTTOU] {
            s.old_actions.push((sig, sys::ignore_signal(sig)?));
        }
        Ok(s)
    }

    /// The signalfd, for an event loop.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The next pending signal, if any (non-blocking).
    pub fn next(&self) -> Option<libc::c_int> {
        sys::signalfd_read(self.fd.as_fd())
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for (sig, old) in &self.old_actions {
            let _ = sys::restore_signal(*sig, old);
        }
        let _ = sys::thread_sigmask(libc::SIG_SETMASK, &self.old_mask);
    }
}

/// One launched jail under supervision.
#[derive(Debug)]
pub struct Running {
    /// Its pid (in our PID namespace).
    pub pid: i32,
    /// The peer (LISTEN) or [`STANDALONE`].
    pub remote: String,
    /// When it started (for a parked RERUN jail: when it was released).
    pub start: Instant,
    /// When its time limit ends.
    pub deadline: Option<Instant>,
    /// It was killed for its time limit.
    pub time_limit_hit: bool,
    /// Where the launch's time went.
    phases: Phases,
    /// When its exec was seen.
    exec_at: Instant,
    /// nsjail ended it on this fatal signal (SIGINT/SIGTERM/SIGHUP...).
    pub stopped_by: Option<i32>,
    cg: Option<JailCgroup>,
}

impl Running {
    /// nsjail stops on fatal signal `sig`: kill the jail, and say so in its
    /// report (status `stopped`).
    pub fn stop(&mut self, sig: i32) {
        self.stopped_by = Some(sig);
        self.kill();
    }

    /// Kill the jail's processes (the cgroup's too, when it has one).
    pub fn kill(&self) {
        let _ = sys::kill(self.pid, libc::SIGKILL);
        if let Some(cg) = &self.cg {
            cg.kill_all();
        }
    }
}

/// How a supervised jail ended (before it is reaped).
struct Outcome {
    state: ChildState,
    fatal_signal: Option<i32>,
}

/// What the supervisor does with a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// Stop: SIGINT/SIGTERM/SIGHUP (and SIGQUIT where it is fatal).
    Stop(i32),
    /// List the live jails (SIGUSR1, SIGQUIT where it is not fatal).
    List,
    /// A child changed state.
    Child,
    /// Nothing to do.
    Ignore,
}

/// The classification of a signal, as nsjail.
pub fn signal_action(sig: i32, quit_is_fatal: bool) -> SignalAction {
    match sig {
        libc::SIGINT | libc::SIGTERM | libc::SIGHUP => SignalAction::Stop(sig),
        libc::SIGQUIT if quit_is_fatal => SignalAction::Stop(sig),
        libc::SIGUSR1 | libc::SIGQUIT => SignalAction::List,
        libc::SIGCHLD => SignalAction::Child,
        _ => SignalAction::Ignore,
    }
}

/// The supervision core: one per supervisor loop (or embedded run).
pub struct Supervisor<'a> {
    /// The jail spec every jail is launched from.
    pub spec: &'a JailSpec,
    plan: Plan<'a>,
    cgroups: &'a Cgroups,
    sink: Option<&'a LineSink>,
    kmsg: Option<OwnedFd>,
    /// The `seccomp_unotify` tracer.
    pub tracer: Tracer,
    /// stdin's terminal state, put back when the supervisor is dropped
    /// (before the signals, while SIGTTOU is still ignored).
    _tty: Option<crate::tty::TermState>,
    /// The signals (restored when the supervisor is dropped).
    pub signals: Signals,
    runs: u64,
}

impl<'a> Supervisor<'a> {
    /// Take the signals and prepare what every jail needs.
    pub fn new(
        spec: &'a JailSpec,
        cgroups: &'a Cgroups,
        sink: Option<&'a LineSink>,
    ) -> Result<Supervisor<'a>, SuperError> {
        let signals = Signals::take()?;
        let plan = Plan::prepare(spec)?;
        Ok(Supervisor {
            spec,
            plan,
            cgroups,
            sink,
            kmsg: spec
                .seccomp
                .as_ref()
                .and_then(|_| crate::seccomp_report::open_kmsg()),
            tracer: Tracer::new(spec),
            _tty: crate::tty::TermState::save(),
            signals,
            runs: 0,
        })
    }

    /// Whether the supervisor has per-jail work with host interfaces
    /// (`iface_own`, MACVLAN): such jails cannot be prepared ahead.
    pub fn has_parent_work(&self) -> bool {
        self.plan.net.has_parent_work()
    }

    fn running(&self, l: Launched, remote: &str) -> Running {
        let limit = self.spec.time_limit;
        Running {
            pid: l.pid,
            remote: launch::remote_of(remote).to_string(),
            start: l.start,
            deadline: (limit > 0).then(|| l.start + Duration::from_secs(limit as u64)),
            time_limit_hit: false,
            stopped_by: None,
            cg: l.cg,
            phases: l.phases,
            exec_at: Instant::now(),
        }
    }

    /// Launch one jail to its exec. A failure is already cleaned up; its
    /// report is recorded (numbered, appended to the sink).
    pub fn launch(&mut self, io: &ChildIo, live: usize) -> Result<Running, LaunchFailure> {
        match launch::launch(&self.plan, self.cgroups, &mut self.tracer, io, live) {
            Ok(l) => Ok(self.running(l, &io.remote)),
            Err(mut f) => {
                if !io.remote.is_empty() {
                    f.report.remote = Some(io.remote.clone());
                }
                self.record(&mut f.report);
                Err(f)
            }
        }
    }

    /// Clone a jail that sets itself up and waits ([`Supervisor::release`]).
    fn park(&mut self) -> Result<Launched, LaunchFailure> {
        let io = ChildIo {
            park: true,
            ..ChildIo::default()
        };
        launch::launch(&self.plan, self.cgroups, &mut self.tracer, &io, 0)
    }

    /// Let a parked jail exec.
    fn release(
        &mut self,
        parked: Result<Launched, LaunchFailure>,
    ) -> Result<Running, LaunchFailure> {
        match parked.and_then(|p| p.release(&mut self.tracer, 0)) {
            Ok(l) => Ok(self.running(l, "")),
            Err(mut f) => {
                self.record(&mut f.report);
                Err(f)
            }
        }
    }

    /// Number a report (RERUN and LISTEN: in the order the runs end) and
    /// append it to the run-report sink.
    fn record(&mut self, report: &mut Report) {
        if self.spec.mode == RunMode::Once {
            return;
        }
        self.runs += 1;
        report.run = Some(self.runs);
        if let Some(s) = self.sink {
            s.append(report);
        }
    }

    /// Kill `r` if its time limit has passed; true when it was killed now.
    pub fn enforce_time_limit(&self, r: &mut Running, now: Instant) -> bool {
        match r.deadline {
            Some(d) if !r.time_limit_hit && now >= d => {
                r.time_limit_hit = true;
                kill_for_time_limit(r.pid, r.start, self.spec.time_limit, &r.remote);
                true
            }
            _ => false,
        }
    }

    /// Reap `pid` (which has ended): names the syscall of a seccomp kill
    /// first (from the zombie), then collects its status and rusage.
    pub fn reap(
        &self,
        pid: i32,
        state: ChildState,
    ) -> Result<(Reaped, Option<Violation>), SuperError> {
        let syscall = match state {
            ChildState::Signaled(libc::SIGSYS) => {
                crate::seccomp_report::violation(pid, self.kmsg.as_ref())
            }
            _ => None,
        };
        Ok((sys::reap(pid)?, syscall))
    }

    /// The end of a run: nsjail's exit line, cgroup accounting and removal,
    /// the report (recorded).
    pub fn finish(
        &mut self,
        r: Running,
        reaped: &Reaped,
        syscall: Option<Violation>,
        left: usize,
    ) -> Report {
        let wall = r.start.elapsed();
        let mut phases = r.phases;
        phases.run_us = r.exec_at.elapsed().as_micros() as u64;
        let net = crate::usernet::end(r.pid);
        log_exit(r.pid, &r.remote, reaped.state, left);
        let t = Instant::now();
        let stats = if self.cgroups.is_active() {
            Some(finish_cgroup(r.cg))
        } else {
            None
        };
        phases.teardown_us = t.elapsed().as_micros() as u64;
        let ending = Ending {
            time_limit_hit: r.time_limit_hit,
            stopped_by: r.stopped_by,
        };
        let mut report = finished_report(
            self.spec.rlimit_cpu_secs,
            reaped,
            wall,
            ending,
            syscall,
            stats,
        );
        report.phases_us = Some(phases);
        if r.remote != STANDALONE {
            report.remote = Some(r.remote);
        }
        report.net = net;
        self.record(&mut report);
        report
    }

    /// ONCE/RERUN: wait until `r` ends (time limit, signals, seccomp
    /// notifications on the way), reap it and report. Returns the report
    /// (exit code 128+signal after a fatal signal) and that signal.
    fn run_to_end(
        &mut self,
        mut r: Running,
        quit_is_fatal: bool,
    ) -> Result<(Report, Option<i32>), SuperError> {
        let outcome = self.wait(&mut r, quit_is_fatal)?;
        let (reaped, syscall) = self.reap(r.pid, outcome.state)?;
        let mut report = self.finish(r, &reaped, syscall, 0);
        if let Some(s) = outcome.fatal_signal {
            report.exit_code = 128 + s;
        }
        Ok((report, outcome.fatal_signal))
    }

    fn wait(&mut self, r: &mut Running, quit_is_fatal: bool) -> Result<Outcome, SuperError> {
        let mut fatal_signal = None;
        loop {
            let state = sys::peek_child(r.pid)?;
            if !matches!(state, ChildState::Running) {
                return Ok(Outcome {
                    state,
                    fatal_signal,
                });
            }
            let now = Instant::now();
            if self.enforce_time_limit(r, now) {
                continue;
            }
            let timeout = match r.deadline.filter(|_| !r.time_limit_hit) {
                Some(d) => {
                    let left = d.saturating_duration_since(now);
                    (left.as_micros().div_ceil(1000)).min(i32::MAX as u128) as i32
                }
                None => -1,
            };
            // Also answers the traced jail's seccomp_unotify notifications.
            if !self.tracer.poll_in(self.signals.fd(), timeout)? {
                continue;
            }
            while let Some(sig) = self.signals.next() {
                match signal_action(sig, quit_is_fatal) {
                    SignalAction::Stop(sig) => {
                        fatal_signal = Some(sig);
                        r.stopped_by = Some(sig);
                        if self.spec.forward_signals {
                            log::info!(
                                "Forwarding signal {} ({sig}) to pid={}",
                                sys::signal_name(sig),
                                r.pid
                            );
                            sys::kill(r.pid, sig)?;
                        } else {
                            log::info!("Server stops due to fatal signal ({sig}) caught. Exiting");
                            sys::kill(r.pid, libc::SIGKILL)?;
                        }
                    }
                    SignalAction::List => display_jails(
                        std::iter::once((r.pid, r.remote.as_str(), r.start)),
                        self.spec.time_limit,
                    ),
                    SignalAction::Child | SignalAction::Ignore => {}
                }
            }
        }
    }

    /// The end of the supervisor: the tracer's report.
    pub fn close(mut self) {
        self.tracer.finish();
        crate::usernet::nstun::shutdown();
    }
}

/// Run one jail to completion; its report (`exit_code` is nsjail's).
pub fn run_once(spec: &JailSpec, cgroups: &Cgroups) -> Result<Report, SuperError> {
    run_once_with(spec, cgroups, &ChildIo::default())
}

/// [`run_once`] with the jail's stdio given (`io.stdio`).
pub fn run_once_with(
    spec: &JailSpec,
    cgroups: &Cgroups,
    io: &ChildIo,
) -> Result<Report, SuperError> {
    let start = Instant::now();
    let mut sup = match Supervisor::new(spec, cgroups, None) {
        Ok(s) => s,
        Err(SuperError::Plan(e)) => {
            return Ok(Report::setup_failed(e.to_string(), ms(start.elapsed())))
        }
        Err(e) => return Err(e),
    };
    let report = match sup.launch(io, 0) {
        Ok(r) => sup.run_to_end(r, true)?.0,
        Err(f) => *f.report,
    };
    sup.close();
    Ok(report)
}

/// How many RERUN jails are cloned ahead of the running one (measured on 2
/// cores, /bin/true: 0 → ~500 runs/s, 1 → ~620, 2 → ~700, 3 → ~710).
const PIPELINE: usize = 2;

/// RERUN: launch the command again after each exit until a fatal signal.
/// Each run is a fresh jail (new namespaces, its own cgroup). Returns
/// nsjail's exit code: 128+signal, or 255 when a jail cannot be launched.
pub fn run_rerun(
    spec: &JailSpec,
    cgroups: &Cgroups,
    sink: Option<&LineSink>,
) -> Result<i32, SuperError> {
    let mut sup = match Supervisor::new(spec, cgroups, sink) {
        Ok(s) => s,
        Err(SuperError::Plan(e)) => {
            log::error!("Couldn't launch the child process: {e}");
            return Ok(255);
        }
        Err(e) => return Err(e),
    };
    // Pipelined: while run n executes, runs n+1.. are cloned and set
    // themselves up to just before the exec (parked), each in its own
    // namespaces and cgroup; the next one is released the moment run n has
    // been reaped, so runs stay strictly one after the other. None when each
    // jail takes host interfaces (iface_own, MACVLAN with its address and
    // MAC): they could not coexist. None without a PID namespace either: the
    // running jail could then signal the jails cloned ahead (same uid) and
    // end the whole loop.
    let depth = if sup.has_parent_work() || !spec.namespaces.pid {
        0
    } else {
        PIPELINE
    };
    let mut ahead: VecDeque<Result<Launched, LaunchFailure>> =
        (0..depth).map(|_| sup.park()).collect();
    let code = loop {
        let next = ahead.pop_front().unwrap_or_else(|| sup.park());
        let run = match sup.release(next) {
            Ok(r) => r,
            Err(f) => {
                log::error!("Couldn't launch the child process: {}", f.error);
                break 255;
            }
        };
        if depth > 0 {
            ahead.push_back(sup.park());
        }
        let (_, fatal) = sup.run_to_end(run, false)?;
        if let Some(sig) = fatal {
            break 128 + sig;
        }
    };
    for l in ahead.into_iter().flatten() {
        l.abandon();
    }
    sup.close();
    Ok(code)
}

fn cgroup_fields(s: CgroupStats, jail_oom_killed: bool) -> crate::report::CgroupFields {
    crate::report::CgroupFields {
        oom_killed: Some(jail_oom_killed),
        oom_kills: s.oom_kills,
        mem_peak_bytes: s.mem_peak_bytes,
        cpu_usage_us: s.cpu_usage_us,
        pids_peak: s.pids_peak,
    }
}

/// What the supervisor itself did to a jail before it ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ending {
    /// Killed at the wall-clock time limit.
    pub time_limit_hit: bool,
    /// Killed (or signalled) because nsjail got this fatal signal.
    pub stopped_by: Option<i32>,
}

/// The report of a jail that ran and was reaped. The status says why the
/// jail ended, first match: seccomp (SIGSYS), nsjail's own kill (time
/// limit, then a fatal signal nsjail got: `stopped`), the OOM killer (a
/// SIGKILL nsjail did not send while the cgroup counted OOM kills), the CPU
/// rlimit, else `signaled`. A child's OOM kill alone shows in `oom_kills`.
pub fn finished_report(
    rlimit_cpu_secs: Option<u64>,
    reaped: &Reaped,
    wall: Duration,
    ending: Ending,
    syscall: Option<Violation>,
    stats: Option<CgroupStats>,
) -> Report {
    let oom_kills = stats.as_ref().and_then(|c| c.oom_kills).unwrap_or(0);
    let (exit_code, status, signal) = match reaped.state {
        ChildState::Exited(c) => (c, Status::Exited, None),
        ChildState::Signaled(s) => (
            128 + s,
            if s == libc::SIGSYS {
                Status::Seccomp
            } else if ending.time_limit_hit {
                Status::TimeLimit
            } else if ending.stopped_by.is_some() {
                Status::Stopped
            } else if s == libc::SIGKILL && oom_kills > 0 {
                Status::Oom
            } else if hit_cpu_rlimit(rlimit_cpu_secs, s, reaped.user_us + reaped.sys_us) {
                Status::RlimitCpu
            } else {
                Status::Signaled
            },
            Some(s),
        ),
        ChildState::Running => (255, Status::SetupFailed, None),
    };
    // The whole jail's CPU time where the kernel accounts it per cgroup;
    // else what wait4 says of the first process and what it reaped.
    let (user_us, sys_us, cpu_source) = match stats.as_ref().map(|c| (c.cpu_user_us, c.cpu_sys_us))
    {
        Some((Some(u), Some(s))) => (u, s, "cgroup"),
        _ => (reaped.user_us, reaped.sys_us, "rusage"),
    };
    Report {
        exit_code,
        status,
        signal,
        wall_ms: ms(wall),
        user_ms: user_us / 1000,
        sys_ms: sys_us / 1000,
        cpu_source: Some(cpu_source.to_string()),
        max_rss_kb: reaped.max_rss_kb,
        syscall_arch: syscall.as_ref().map(|v| v.arch.clone()),
        syscall: syscall.map(|v| v.syscall),
        error: None,
        cgroup: stats
            .map(|s| crate::report::CgroupFields {
                // v1 hosts often mount cpuacct apart from cpu: then the
                // reaped processes' rusage is the account we have.
                cpu_usage_us: s.cpu_usage_us.or(Some(reaped.user_us + reaped.sys_us)),
                ..cgroup_fields(s, status == Status::Oom)
            })
            .unwrap_or_default(),
        remote: None,
        run: None,
        phases_us: None,
        stopped_by: ending.stopped_by,
        net: None,
    }
}

/// Whether death by `sig` is the kernel enforcing `rlimit_cpu` (SIGXCPU at
/// the soft limit, SIGKILL at the hard one; nsjail sets both the same).
/// Asked only once nsjail's own kills and the OOM killer are ruled out.
///
/// The kernel checks the limit against CPU time charged in whole ticks to
/// whatever runs at each tick; on a loaded CPU that charge runs ahead of the
/// precise runtime `wait4` reports (observed: killed at 4.92 s of a 5 s
/// limit), so the reported time is no measure of the limit and no tolerance
/// around it is safe. Ours: only a SIGKILL before half the limit (someone
/// else's `kill -9`; tick charging is never off by 2x) is `signaled`.
fn hit_cpu_rlimit(rlimit_cpu_secs: Option<u64>, sig: i32, cpu_us: u64) -> bool {
    let Some(secs) = rlimit_cpu_secs else {
        return false;
    };
    let half_limit_us = secs.saturating_mul(500_000);
    sig == libc::SIGXCPU || (sig == libc::SIGKILL && cpu_us >= half_limit_us)
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

    /// A fixed `rlimit_cpu` of `secs` (what the lowering gives for
    /// `rlimit_cpu_type: VALUE`; SOFT/HARD/INF and `disable_rl` give `None`,
    /// see crates/config/tests/lowering.rs).
    fn cfg_cpu(secs: u64) -> Option<u64> {
        Some(secs)
    }

    fn oom(killed: bool) -> Option<CgroupStats> {
        Some(CgroupStats {
            oom_killed: killed,
            oom_kills: Some(u64::from(killed)),
            ..Default::default()
        })
    }

    fn status(
        cfg: &Option<u64>,
        r: &Reaped,
        time_limit_hit: bool,
        stats: Option<CgroupStats>,
    ) -> (Status, i32, Option<i32>) {
        let rep = finished_report(
            *cfg,
            r,
            Duration::from_millis(7),
            Ending {
                time_limit_hit,
                stopped_by: None,
            },
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
        for sig in [libc::SIGKILL, libc::SIGTERM, libc::SIGSEGV] {
            let r = reaped(ChildState::Signaled(sig), 10);
            assert_eq!(
                status(&c, &r, false, oom(false)),
                (Status::Signaled, 128 + sig, Some(sig)),
                "signal {sig}"
            );
        }
        // SIGXCPU without a fixed CPU limit: someone's kill -XCPU.
        let r = reaped(ChildState::Signaled(libc::SIGXCPU), 10);
        assert_eq!(status(&None, &r, false, None).0, Status::Signaled);
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
        }
        // A SIGKILL far under the limit (under half: tick charging is never
        // off by 2x) is someone else's kill -9.
        let r = reaped(ChildState::Signaled(libc::SIGKILL), 500);
        assert_eq!(status(&c, &r, false, None).0, Status::Signaled);
        // SIGTERM after the CPU time: not the kernel's rlimit signal.
        let r = reaped(ChildState::Signaled(libc::SIGTERM), 3000);
        assert_eq!(status(&c, &r, false, None).0, Status::Signaled);
    }

    #[test]
    fn rlimit_cpu_only_when_a_value_limit_was_set() {
        let r = reaped(ChildState::Signaled(libc::SIGXCPU), 3000);
        // SOFT/HARD types and disable_rl lower to no fixed limit.
        let none: Option<u64> = None;
        assert!(!hit_cpu_rlimit(none, libc::SIGXCPU, 3_000_000));
        assert_eq!(status(&none, &r, false, None).0, Status::Signaled);
        assert!(hit_cpu_rlimit(cfg_cpu(2), libc::SIGXCPU, 3_000_000));
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
            cfg_cpu(1),
            &r,
            Duration::from_millis(42),
            Ending::default(),
            Some(Violation {
                syscall: "ptrace".into(),
                arch: "x86_64".into(),
            }),
            None,
        );
        assert_eq!((rep.wall_ms, rep.user_ms, rep.sys_ms), (42, 12, 6));
        assert_eq!(rep.max_rss_kb, 4321);
        assert_eq!(rep.syscall.as_deref(), Some("ptrace"));
        assert!(rep.cgroup.oom_killed.is_none());
        // With cgroup stats but no cpuacct: the rusage stands in for cpu_usage_us.
        let with = finished_report(
            cfg_cpu(1),
            &r,
            Duration::ZERO,
            Ending::default(),
            None,
            oom(false),
        );
        assert_eq!(with.cgroup.oom_killed, Some(false));
        assert_eq!(with.cgroup.cpu_usage_us, Some(19_134));
    }

    fn spec(extra: &[&str]) -> Option<u64> {
        let mut a: Vec<std::ffi::OsString> = extra.iter().map(|s| s.into()).collect();
        a.extend(["--", "/bin/true"].iter().map(|s| s.into()));
        let jail = match nsjail_config::parse_args(a) {
            Ok(nsjail_config::Parsed::Run(j)) => j,
            _ => panic!("parse"),
        };
        jail.lower().expect("lower").rlimit_cpu_secs
    }

    fn died(sig: i32, cpu_us: u64) -> Reaped {
        Reaped {
            state: ChildState::Signaled(sig),
            user_us: cpu_us,
            sys_us: 0,
            max_rss_kb: 0,
        }
    }

    fn oom_n(kills: u64) -> Option<CgroupStats> {
        Some(CgroupStats {
            oom_killed: kills > 0,
            oom_kills: Some(kills),
            ..CgroupStats::default()
        })
    }

    #[test]
    fn a_childs_oom_then_sigterm_is_stopped_not_oom() {
        let s = spec(&[]);
        let end = Ending {
            time_limit_hit: false,
            stopped_by: Some(libc::SIGTERM),
        };
        let r = finished_report(
            s,
            &died(libc::SIGKILL, 0),
            Duration::ZERO,
            end,
            None,
            oom_n(1),
        );
        assert_eq!(r.status, Status::Stopped);
        let v = r.to_json();
        assert_eq!(v["status"], "stopped");
        assert_eq!(v["oom_killed"], false);
        assert_eq!(v["oom_kills"], 1);
        assert_eq!(v["stopped_by"], libc::SIGTERM);
    }

    #[test]
    fn oom_only_for_a_sigkill_nsjail_did_not_send() {
        let s = spec(&[]);
        let r = |reaped: Reaped, end: Ending, st| {
            finished_report(s, &reaped, Duration::ZERO, end, None, st)
        };
        let none = Ending::default();
        let oomed = r(died(libc::SIGKILL, 0), none, oom_n(1));
        assert_eq!(oomed.status, Status::Oom);
        assert_eq!(oomed.cgroup.oom_killed, Some(true));
        // The child was OOM-killed, pid 1 exited by itself.
        let exited = Reaped {
            state: ChildState::Exited(0),
            ..died(0, 0)
        };
        let e = r(exited, none, oom_n(1));
        assert_eq!(e.status, Status::Exited);
        assert_eq!(e.cgroup.oom_killed, Some(false));
        assert_eq!(e.cgroup.oom_kills, Some(1));
        // Killed at the time limit after a child's OOM: time_limit.
        let tl = Ending {
            time_limit_hit: true,
            ..none
        };
        assert_eq!(
            r(died(libc::SIGKILL, 0), tl, oom_n(2)).status,
            Status::TimeLimit
        );
        // A SIGKILL at the CPU rlimit is rlimit_cpu however far the
        // reported runtime lags the kernel's tick charge (4.92 s of 5 s
        // observed under load), but an early kill -9 is not.
        let cpu = spec(&["--rlimit_cpu", "5"]);
        let rc = |us| {
            finished_report(
                cpu,
                &died(libc::SIGKILL, us),
                Duration::ZERO,
                none,
                None,
                None,
            )
        };
        assert_eq!(rc(4_920_000).status, Status::RlimitCpu);
        assert_eq!(rc(4_000_000).status, Status::RlimitCpu);
        assert_eq!(rc(300_000).status, Status::Signaled);
        // CPU time from the cgroup (children killed at the time limit
        // included) when it has it, said so.
        let tree = Some(CgroupStats {
            cpu_user_us: Some(9_000_000),
            cpu_sys_us: Some(50_000),
            ..CgroupStats::default()
        });
        let t = r(died(libc::SIGKILL, 1_000), tl, tree);
        assert_eq!(
            (t.user_ms, t.sys_ms, t.cpu_source),
            (9_000, 50, Some("cgroup".to_string()))
        );
        let t = r(died(libc::SIGKILL, 1_000), tl, oom_n(0));
        assert_eq!((t.user_ms, t.cpu_source.as_deref()), (1, Some("rusage")));
        // A SIGKILL without any OOM kill is not oom.
        assert_eq!(
            r(died(libc::SIGKILL, 0), none, oom_n(0)).status,
            Status::Signaled
        );
    }
}
