//! ONCE mode: launch one jail, supervise it, reap it, report.
//!
//! Signals are blocked and read from a signalfd; the loop polls it with a
//! timeout that ends exactly at the time limit (so the limit is enforced
//! within a few ms, far finer than nsjail's 1 s). SIGINT/SIGTERM/SIGQUIT/
//! SIGHUP kill the jail (or are forwarded with `forward_signals`), the jail
//! is reaped and cleaned up, and nsjail returns 128+signal.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use config::Jail;

use crate::cgroup::{CgroupStats, Cgroups, JailCgroup};
use crate::child::{self, Plan};
use crate::report::{Report, Status};
use crate::seccomp::Filter;
use crate::sys::{self, ChildState, Forked};
use crate::user;

const REMOTE: &str = "[STANDALONE MODE]";
const FATAL_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGQUIT, libc::SIGHUP];

/// Errors of the supervisor itself (not of the jail).
#[derive(Debug, thiserror::Error)]
pub enum SuperError {
    /// A raw call failed.
    #[error(transparent)]
    Sys(#[from] sys::SysError),
}

/// The clone flags for the enabled namespaces.
pub fn clone_flags(cfg: &config::NsJailConfig) -> u64 {
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

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Run one jail to completion. Returns nsjail's exit code and the report.
pub fn run_once(
    jail: &Jail,
    filter: Option<&Filter>,
    cgroups: &Cgroups,
) -> Result<Report, SuperError> {
    let cfg = &jail.cfg;
    let handled = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGQUIT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGCHLD,
        libc::SIGALRM,
        libc::SIGPIPE,
    ];
    let set = sys::sigset(&handled);
    sys::sigprocmask(libc::SIG_BLOCK, &set)?;
    let sfd = sys::signalfd(&set)?;
    for s in [libc::SIGTTIN, libc::SIGTTOU] {
        sys::signal_disposition(s, true)?;
    }

    let start = Instant::now();
    let plan = match Plan::prepare(jail, filter) {
        Ok(p) => p,
        Err(e) => {
            return Ok(Report::setup_failed(e.to_string(), ms(start.elapsed())));
        }
    };
    let kmsg = filter.and_then(|_| crate::seccomp_report::open_kmsg());

    let (parent_sock, child_sock) = sys::socketpair()?;
    let flags = clone_flags(cfg);
    let pid = match sys::clone_process(flags) {
        Ok(Forked::Child) => {
            drop(parent_sock);
            drop(sfd);
            child::run(&plan, child_sock)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => {
            let msg = format!("{e} (namespaces need root or unprivileged user namespaces; try disabling some with --disable_clone_*)");
            return Ok(Report::setup_failed(msg, ms(start.elapsed())));
        }
    };
    drop(child_sock);

    // Parent part, in nsjail's order: cgroups, then the id maps, then 'D'.
    let mut jail_cg: Option<JailCgroup> = None;
    let mut parent_setup = || -> Result<(), String> {
        jail_cg = Some(cgroups.create_for(pid).map_err(|e| e.to_string())?);
        if flags & libc::CLONE_NEWUSER as u64 != 0 {
            user::write_maps(pid, &plan.maps).map_err(|e| e.to_string())?;
        }
        sys::write_all(parent_sock.as_raw_fd(), b"D")
            .map_err(|e| format!("releasing the child (pid={pid}): {e}"))
    };
    let setup_error = match parent_setup() {
        Ok(()) => read_child_error(&parent_sock),
        Err(parent_err) => {
            // The child may have failed first (and explained why): prefer its words.
            let _ = sys::kill(pid, libc::SIGKILL);
            Some(read_child_error(&parent_sock).unwrap_or(parent_err))
        }
    };
    drop(parent_sock);
    drop(plan);

    if let Some(err) = setup_error {
        let reaped = sys::reap(pid)?;
        log_exit(pid, reaped.state);
        finish_cgroup(jail_cg);
        let mut r = Report::setup_failed(err, ms(start.elapsed()));
        r.user_ms = reaped.user_us / 1000;
        r.sys_ms = reaped.sys_us / 1000;
        r.max_rss_kb = reaped.max_rss_kb;
        return Ok(r);
    }

    let outcome = supervise(jail, pid, start, &sfd)?;
    let mut syscall = None;
    if let ChildState::Signaled(libc::SIGSYS) = outcome.state {
        syscall = crate::seccomp_report::violation(pid, kmsg.as_ref());
    }
    let reaped = sys::reap(pid)?;
    let wall = start.elapsed();
    log_exit(pid, reaped.state);
    let stats = cgroups.is_active().then(|| finish_cgroup(jail_cg));

    let (exit_code, status, signal) = match reaped.state {
        ChildState::Exited(c) => (c, Status::Exited, None),
        ChildState::Signaled(s) => (
            128 + s,
            if s == libc::SIGSYS {
                Status::Seccomp
            } else if outcome.time_limit_hit {
                Status::TimeLimit
            } else if s == libc::SIGKILL && stats.as_ref().is_some_and(|c| c.oom_killed) {
                Status::Oom
            } else if hit_cpu_rlimit(&jail.cfg, s, reaped.user_us + reaped.sys_us) {
                Status::RlimitCpu
            } else {
                Status::Signaled
            },
            Some(s),
        ),
        ChildState::Running => (255, Status::SetupFailed, None),
    };
    let exit_code = match outcome.fatal_signal {
        Some(s) => 128 + s,
        None => exit_code,
    };
    Ok(Report {
        exit_code,
        status,
        signal,
        wall_ms: ms(wall),
        user_ms: reaped.user_us / 1000,
        sys_ms: reaped.sys_us / 1000,
        max_rss_kb: reaped.max_rss_kb,
        syscall,
        error: None,
        cgroup: stats.map(cgroup_fields).unwrap_or_default(),
    })
}

/// Whether death by `sig` after `cpu_us` of CPU time is the kernel enforcing
/// `rlimit_cpu` (SIGXCPU at the soft limit, SIGKILL at the hard one; nsjail
/// sets both to the same value).
fn hit_cpu_rlimit(cfg: &config::NsJailConfig, sig: i32, cpu_us: u64) -> bool {
    if cfg.disable_rl() || cfg.rlimit_cpu_type() != config::RLimit::VALUE {
        return false;
    }
    // CPU time is charged in ticks: allow a little under the limit.
    let limit_us = cfg.rlimit_cpu().saturating_mul(1_000_000);
    (sig == libc::SIGKILL || sig == libc::SIGXCPU) && cpu_us + 50_000 >= limit_us
}

/// Read the jail's cgroup accounting, then remove its directories.
fn finish_cgroup(cg: Option<JailCgroup>) -> CgroupStats {
    let Some(cg) = cg else {
        return CgroupStats::default();
    };
    let stats = cg.stats();
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

/// Read the socket until EOF (exec happened) or an error text arrives.
fn read_child_error(sock: &OwnedFd) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match sys::read(sock.as_raw_fd(), &mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Some(format!("reading the child's status: {e}")),
        }
    }
    if buf.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&buf).into_owned())
    }
}

fn log_exit(pid: i32, state: ChildState) {
    match state {
        ChildState::Exited(c) => {
            log::info!("pid={pid} ({REMOTE}) exited with status: {c}, (PIDs left: 0)")
        }
        ChildState::Signaled(s) => log::info!(
            "pid={pid} ({REMOTE}) terminated with signal: {} ({s}), (PIDs left: 0)",
            sys::signal_name(s)
        ),
        ChildState::Running => {}
    }
}

struct Outcome {
    state: ChildState,
    time_limit_hit: bool,
    fatal_signal: Option<i32>,
}

fn supervise(jail: &Jail, pid: i32, start: Instant, sfd: &OwnedFd) -> Result<Outcome, SuperError> {
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
                let run = now.duration_since(start).as_secs();
                log::info!(
                    "pid={pid} run time >= time limit ({run} >= {limit}) ({REMOTE}). Killing it"
                );
                let _ = sys::kill(pid, libc::SIGCONT);
                sys::kill(pid, libc::SIGKILL)?;
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
        if !sys::poll_in(sfd.as_raw_fd(), timeout)? {
            continue;
        }
        while let Some(sig) = sys::signalfd_read(sfd) {
            if FATAL_SIGNALS.contains(&sig) {
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
            } else if sig == libc::SIGUSR1 {
                let run = start.elapsed().as_secs();
                log::info!("Total number of spawned namespaces: 1");
                let left = if limit > 0 {
                    format!(" (time left: {} s.)", (limit as u64).saturating_sub(run))
                } else {
                    String::new()
                };
                log::info!("pid={pid}, Remote host: {REMOTE}, Run time: {run} sec.{left}");
            }
        }
    }
}
