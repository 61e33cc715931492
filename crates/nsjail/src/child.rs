//! The jailed child between clone and exec, in nsjail's order (§5.3).
//!
//! Everything that needs lookups or allocation-heavy work is prepared in
//! the supervisor ([`Plan::prepare`]); the child only issues system calls.
//! Any failure is sent to the parent as text over the socketpair and the
//! child exits with 255; a successful exec closes the (close-on-exec)
//! socket, which the parent sees as EOF.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use nsjail_config::spec::JailSpec;

use crate::caps;
use crate::mount;
use crate::net;
use crate::ns_init;
use crate::protocol::{ChildEnd, ChildTimings, ToChild};
use crate::rlimit;
use crate::seccomp::{self, Filter};
use crate::sys;
use crate::user;

/// Errors while preparing the plan in the supervisor.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A raw call failed (opening the program for `exec_fd`).
    #[error(transparent)]
    Sys(#[from] sys::SysError),
    /// The `seccomp_unotify` tracing policy did not compile.
    #[error("seccomp_unotify: {0}")]
    Unotify(#[from] crate::seccomp::SeccompError),
}

/// Everything the child needs, computed before clone: the jail spec and
/// what the runtime derives from it (filters, rule messages, the program
/// opened for `exec_fd`).
pub struct Plan<'a> {
    /// The jail.
    pub spec: &'a JailSpec,
    /// The policy's filter.
    pub filter: Option<Filter>,
    /// Ours: the AF_VSOCK filter ([`seccomp::vsock_filter`]) when the
    /// jail has its own network namespace and `--allow_vsock` is not given.
    pub vsock: Option<Filter>,
    /// The `seccomp_unotify` tracing filter (installed only in the jail
    /// being traced, see [`crate::unotify`]).
    pub unotify: Option<Filter>,
    /// Executable opened before namespacing (`exec_fd`).
    pub exec_fd: Option<OwnedFd>,
    /// The network of the jail.
    pub net: net::NetPlan,
}

impl<'a> Plan<'a> {
    /// Derive what the child needs from the spec.
    pub fn prepare(spec: &'a JailSpec) -> Result<Plan<'a>, PlanError> {
        let exec_fd = if spec.exec.exec_fd {
            Some(sys::open(
                &spec.exec.path.to_string_lossy(),
                libc::O_PATH,
                0,
            )?)
        } else {
            None
        };
        Ok(Plan {
            spec,
            filter: spec.seccomp.as_ref().map(Filter::new),
            vsock: spec.deny_vsock.then(seccomp::vsock_filter),
            unotify: if spec.unotify {
                Some(crate::unotify::compile_filter()?)
            } else {
                None
            },
            exec_fd,
            net: net::NetPlan::new(&spec.net),
        })
    }

    /// Whether a user namespace is created.
    pub fn userns(&self) -> bool {
        self.spec.namespaces.user
    }
}

/// Per-launch inputs of the child that are not part of the (shared) plan.
#[derive(Debug, Clone, Default)]
pub struct ChildIo<'a> {
    /// Descriptors to put on 0, 1, 2 (LISTEN: the connection's pipes);
    /// `None` keeps nsjail's own stdio.
    pub stdio: Option<[BorrowedFd<'a>; 3]>,
    /// Who the jail is for, in the "Executing" line (`[STANDALONE MODE]`
    /// or the remote address).
    pub remote: String,
    /// RERUN pre-launch: once set up, report [`crate::protocol::FromChild::Parked`]
    /// and wait for a release before announcing, installing seccomp and
    /// exec'ing.
    pub park: bool,
}

/// The child's entry point after clone; never returns. `trace`: install the
/// `seccomp_unotify` filter (a parked child learns it when released).
pub fn run(plan: &Plan, end: ChildEnd, io: &ChildIo, trace: bool) -> ! {
    let msg = match setup_and_exec(plan, Some(&end), io, trace) {
        Ok(never) => match never {},
        Err(m) => m,
    };
    end.fail(&msg);
    sys::exit_now(255)
}

/// EXECVE mode: the same sequence in our own (already unshared) process,
/// with the parent's part (id maps) done by ourselves; returns only the
/// reason of a failure.
pub fn exec_in_place(plan: &Plan, io: &ChildIo) -> String {
    match setup_and_exec(plan, None, io, false) {
        Ok(never) => match never {},
        Err(m) => m,
    }
}

enum Never {}

fn step<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn setup_and_exec(
    plan: &Plan,
    sync: Option<&ChildEnd>,
    io: &ChildIo,
    mut trace: bool,
) -> Result<Never, String> {
    let spec = plan.spec;
    let process = &spec.process;
    let newpid = spec.namespaces.pid;
    // Phase times for the run report (clock_gettime: no lock, no allocation).
    let mut mark = std::time::Instant::now();
    let mut timings: ChildTimings = [0; 6];
    let mut lap = |slot: usize| {
        let now = std::time::Instant::now();
        timings[slot] = now.duration_since(mark).as_micros() as u64;
        mark = now;
    };

    // 1. oom_score_adj
    if let Some(adj) = process.oom_score_adj {
        if let Err(e) = std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
            log::warn!("Couldn't write '{adj}' to /proc/self/oom_score_adj: {e}");
        }
    }

    // 2. standard fds
    if let Some(fds) = io.stdio {
        for (t, f) in fds.iter().enumerate() {
            step("putting the connection on stdio", sys::dup2(*f, t as RawFd))?;
        }
    }
    if process.silent || process.stderr_to_null {
        let null = step("opening /dev/null", sys::open("/dev/null", libc::O_RDWR, 0))?;
        let targets: &[RawFd] = if process.silent { &[0, 1, 2] } else { &[2] };
        for t in targets {
            step(
                "redirecting stdio to /dev/null",
                sys::dup2(null.as_fd(), *t),
            )?;
        }
    }

    // 3. signals back to default, all unblocked
    for s in [libc::SIGTTIN, libc::SIGTTOU, libc::SIGPIPE] {
        let _ = sys::signal_disposition(s, false);
    }
    step("unblocking signals", sys::unblock_all_signals())?;

    // user_net NSTUN: the TUN device, made in the jail's network namespace
    // and handed to the supervisor before its part (as nsjail).
    if let Some(end) = sync {
        step(
            "setting up the user network",
            crate::usernet::child_tun(&spec.net, end),
        )?;
    }

    // 4. wait for the parent (maps, cgroups); EXECVE: write our own maps
    match sync {
        // the parent is gone or failed; it reports
        Some(end) if end.recv() != Some(ToChild::Proceed) => sys::exit_now(255),
        Some(_) => {}
        None if plan.userns() => step(
            "writing our own uid/gid maps",
            user::write_self_maps(&spec.ids),
        )?,
        None => {}
    }
    // pasta (started before Proceed) configures the interface meanwhile.
    step(
        "waiting for the user network",
        crate::usernet::child_wait(&spec.net),
    )?;
    lap(0);

    // 5. containment
    if plan.userns() || rustix::process::geteuid().is_root() {
        step(
            "switching uid/gid",
            user::switch_ids(&spec.ids, plan.userns()),
        )?;
    }
    lap(1);
    if sync.is_none() && newpid {
        // EXECVE: PID 1 of the new namespace, and /proc mounted from inside it.
        step("starting the namespace init", ns_init::spawn_init())?;
        step(
            "setting up the filesystem",
            ns_init::mount_in_helper(|| mount::setup(&spec.fs)),
        )?;
    } else {
        step("setting up the filesystem", mount::setup(&spec.fs))?;
    }
    lap(2);
    step("setting up the network", plan.net.setup_child())?;
    lap(3);
    if spec.namespaces.uts {
        step(
            "setting the hostname (--hostname)",
            sys::sethostname(&process.hostname),
        )?;
    }
    if process.no_new_privs {
        if let Err(e) = rustix::thread::set_no_new_privs(true) {
            log::warn!("prctl(PR_SET_NO_NEW_PRIVS) failed: {e}");
        }
    }
    step(
        "setting capabilities (--keep_caps/--cap)",
        caps::apply(process.keep_caps, &process.caps),
    )?;
    if process.max_cpus > 0 {
        restrict_cpus(process.max_cpus as usize);
    }
    if process.core_scheduling {
        step(
            "creating a core-scheduling cookie (--use_core_scheduling; needs a kernel with CONFIG_SCHED_CORE, or remove the option)",
            core_scheduling(),
        )?;
    }
    if process.disable_tsc {
        #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
        step(
            "disabling the TSC (--disable_tsc)",
            sys::prctl(
                libc::PR_SET_TSC,
                libc::PR_TSC_SIGSEGV as libc::c_ulong,
                "PR_SET_TSC",
            ),
        )?;
        #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
        log::warn!("--disable_tsc is only supported on x86; ignored");
    }
    step("setting resource limits", rlimit::apply(&spec.rlimits))?;
    step(
        "setting the parent-death signal",
        sys::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            "PR_SET_PDEATHSIG",
        ),
    )?;
    // The signal only covers a parent that dies from now on (and the uid
    // switch above would have cleared an earlier one). If nsjail died in
    // between, its end of the socketpair is closed: never run the program
    // without a supervisor (getppid() cannot tell: it is 0 in a new PID
    // namespace either way).
    if let Some(end) = sync {
        if end.supervisor_gone() {
            sys::exit_now(255);
        }
    }
    if process.personality != 0 {
        step(
            "setting the personality (--persona_*)",
            sys::personality(process.personality as libc::c_ulong),
        )?;
    }
    if let Err(e) = sys::set_nice(process.nice) {
        log::warn!("{e}");
    }
    if process.setsid {
        if let Err(e) = rustix::process::setsid() {
            log::warn!("setsid() failed: {e}");
        }
    }
    step(
        "marking file descriptors close-on-exec",
        mark_cloexec(&process.pass_fds),
    )?;
    lap(4);

    if io.park {
        if let Some(end) = sync {
            step("reporting ready", end.parked())?;
            match end.recv() {
                Some(ToChild::Release) => {}
                Some(ToChild::ReleaseTraced) => trace = true,
                _ => sys::exit_now(255), // not wanted any more
            }
        }
    }

    // 6./7. environment is prepared; announce
    log::info!(
        "Executing '{}' for '{}'",
        spec.exec.path.to_string_lossy(),
        if io.remote.is_empty() {
            "[STANDALONE MODE]"
        } else {
            &io.remote
        }
    );
    log::debug!("argv: {:?}", spec.exec.argv);

    // 8. seccomp, last: the tracing filter first (its listener goes to the
    // supervisor, which must hold it before any traced call), then the policy
    lap(5);
    if let Some(end) = sync {
        end.timings(&timings);
    }
    if let (true, Some(f), Some(end)) = (trace, &plan.unotify, sync) {
        let listener = crate::unotify::install::install_listener(f)?;
        end.send_listener(listener.as_fd())?;
        drop(listener);
    }
    if let Some(f) = &plan.vsock {
        step(
            "installing the AF_VSOCK filter",
            seccomp::install_vsock(f, spec.process.no_new_privs),
        )?;
    }
    if let Some(f) = &plan.filter {
        step("installing the seccomp filter", seccomp::install(f))?;
    }

    // 9. exec
    let exec = &spec.exec;
    let e = match &plan.exec_fd {
        Some(fd) => sys::execveat_fd(
            fd.as_fd(),
            &exec.path.to_string_lossy(),
            &exec.argv,
            &exec.envp,
        ),
        None => sys::execve(&exec.path, &exec.argv, &exec.envp),
    };
    let path = exec.path.to_string_lossy();
    let missing = e.source.raw_os_error() == Some(libc::ENOENT) && plan.exec_fd.is_none();
    Err(exec_error_text(
        &path,
        &e.to_string(),
        missing.then(|| spec.fs.program_missing(&path)).flatten(),
    ))
}

/// The exec failure line, with the fix for the most common cause: like
/// nsjail, the program is run with execv, so a bare name is not looked up
/// in PATH.
fn exec_error_text(path: &str, err: &str, not_in_jail: Option<String>) -> String {
    if !path.contains('/') {
        format!("{err} (the program is not searched in PATH: give its absolute path, e.g. /usr/bin/{path})")
    } else if let Some(why) = not_in_jail {
        format!("{err}: {why}")
    } else {
        err.to_string()
    }
}

/// `prctl(PR_SCHED_CORE, PR_SCHED_CORE_CREATE, self, THREAD_GROUP)`: a new
/// core-scheduling cookie for the jail (our pid is valid in our own pid
/// namespace).
fn core_scheduling() -> Result<(), String> {
    rustix::thread::create_core_scheduling_cookie(
        rustix::process::getpid(),
        rustix::thread::CoreSchedulingScope::ThreadGroup,
    )
    .map_err(|e| {
        format!(
            "prctl(PR_SCHED_CORE, PR_SCHED_CORE_CREATE) failed: {}",
            sys::errno_text(&std::io::Error::from(e))
        )
    })
}

/// Keep `n` randomly chosen CPUs of the current affinity mask.
fn restrict_cpus(n: usize) {
    let Ok(cur) = rustix::thread::sched_getaffinity(None) else {
        log::warn!("sched_getaffinity() failed; --max_cpus ignored");
        return;
    };
    let mut avail: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|c| cur.is_set(*c))
        .collect();
    if n >= avail.len() {
        if n > avail.len() {
            log::warn!(
                "--max_cpus {n} is more than the {} CPUs available; using all",
                avail.len()
            );
        }
        return;
    }
    // Cheap randomness: time and pid mixed (no file reads on the hot path).
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ ((std::process::id() as u64) << 32);
    let mut set = rustix::thread::CpuSet::new();
    for _ in 0..n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let i = (seed % avail.len() as u64) as usize;
        set.set(avail.swap_remove(i));
    }
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        log::warn!("sched_setaffinity() failed: {e}; --max_cpus ignored");
    }
}

/// Every fd except 0-2 and `pass_fd` becomes close-on-exec; `pass_fd`
/// entries are made inheritable.
fn mark_cloexec(pass: &[i32]) -> Result<(), sys::SysError> {
    for (first, last) in sys::ranges_except(pass) {
        sys::cloexec_range(first, last)?;
    }
    for &k in pass.iter().filter(|f| **f > 2) {
        if let Err(e) = sys::set_cloexec(k as RawFd, false) {
            log::warn!("--pass_fd {k}: {e}");
        }
    }
    Ok(())
}
