//! The jail spec: one typed value that says everything the runtime does
//! for a jail, lowered once from the effective config ([`crate::Jail`]).
//!
//! Every check that can fail before `clone` runs here, in [`lower`], so
//! `--check` and a launch accept and reject exactly the same inputs with
//! the same message. The runtime (`nsjail` crate) takes the parts of a
//! [`JailSpec`] and never reads the protobuf config.
//!
//! Units are the kernel's unless a field says otherwise: rlimits in
//! bytes/seconds/counts (nsjail's MiB/KiB already applied), cgroup limits
//! in bytes, time limits in seconds.

pub mod cgroup;
pub mod mount;
pub mod net;
pub mod seccomp;
pub mod usernet;

use std::ffi::CString;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::proto::config::{LogLevel as ProtoLogLevel, Mode, NsJailConfig, RLimit};
use crate::rlimit::{rlimit_plan, RlimitValue};
use crate::values::IdRange;
use crate::Jail;

pub use cgroup::CgroupRequest;
pub use mount::{FsSpec, MountEntry, MountSpecError};
pub use net::{NetSpec, NetSpecError};

/// Why a config cannot become a jail (each message one line: what, where,
/// and what to change).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A mount entry cannot be used.
    #[error(transparent)]
    Mount(#[from] MountSpecError),
    /// A network setting cannot be used.
    #[error(transparent)]
    Net(#[from] NetSpecError),
    /// A string destined for execve holds a NUL byte.
    #[error("{what} contains a NUL byte: remove it")]
    Nul {
        /// Which string (`argument 2`, `environment variable 'X'`, ...).
        what: String,
    },
    /// `--cap`/`cap` with a name we do not know.
    #[error("unknown capability '{0}' (use names like CAP_NET_RAW)")]
    UnknownCap(String),
    /// `bindhost` is not a numeric address (LISTEN mode).
    #[error("Couldn't convert '{0}' (bindhost) into an IPv6 address: give a numeric IPv4 or IPv6 address, e.g. 127.0.0.1 or ::1")]
    BadBindhost(String),
    /// nsjail's own rlimit could not be read (for a `SOFT`/`HARD` value).
    #[error("reading nsjail's own {name} (for rlimit type SOFT/HARD) failed: {err}")]
    Rlimit {
        /// `RLIMIT_AS`...
        name: &'static str,
        /// The OS error.
        err: String,
    },
    /// The seccomp policy file could not be read.
    #[error("couldn't read the seccomp policy file '{path}': {err}; check the path (--seccomp_policy/-P, seccomp_policy_file)")]
    SeccompRead {
        /// The file.
        path: String,
        /// The OS error.
        err: String,
    },
    /// Kafel rejected the policy.
    #[error("Could not compile policy: {0}")]
    SeccompCompile(#[from] kafel::Error),
}

/// How nsjail runs the jail (`--mode`/`-M`, `mode`), as nsjail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    /// `-Mo`: one jail, nsjail exits with its status.
    #[default]
    Once,
    /// `-Ml`: a TCP server, one jail per connection.
    Listen,
    /// `-Mr`: one jail after the other until a fatal signal.
    Rerun,
    /// `-Me`: nsjail itself becomes the jail (no supervisor).
    Execve,
}

/// Which namespaces the jail gets (`clone_new*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespaces {
    /// `CLONE_NEWUSER`.
    pub user: bool,
    /// `CLONE_NEWNS`.
    pub mount: bool,
    /// `CLONE_NEWPID`.
    pub pid: bool,
    /// `CLONE_NEWIPC`.
    pub ipc: bool,
    /// `CLONE_NEWUTS`.
    pub uts: bool,
    /// `CLONE_NEWNET`.
    pub net: bool,
    /// `CLONE_NEWCGROUP`.
    pub cgroup: bool,
    /// `CLONE_NEWTIME`.
    pub time: bool,
}

impl Default for Namespaces {
    /// nsjail's defaults: all but time.
    fn default() -> Self {
        Namespaces {
            user: true,
            mount: true,
            pid: true,
            ipc: true,
            uts: true,
            net: true,
            cgroup: true,
            time: false,
        }
    }
}

impl Namespaces {
    /// The `CLONE_NEW*` flags for clone3/unshare.
    pub fn clone_flags(&self) -> u64 {
        let mut f = 0u64;
        for (on, bit) in [
            (self.user, libc::CLONE_NEWUSER),
            (self.mount, libc::CLONE_NEWNS),
            (self.pid, libc::CLONE_NEWPID),
            (self.ipc, libc::CLONE_NEWIPC),
            (self.uts, libc::CLONE_NEWUTS),
            (self.net, libc::CLONE_NEWNET),
            (self.cgroup, libc::CLONE_NEWCGROUP),
            (self.time, libc::CLONE_NEWTIME),
        ] {
            if on {
                f |= bit as u64;
            }
        }
        f
    }
}

/// The uid and gid maps of the user namespace; never empty (default: nsjail's
/// own id mapped to itself). The first range's inside id is the id the
/// program runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdMaps {
    /// uid ranges.
    pub uids: Vec<IdRange>,
    /// gid ranges.
    pub gids: Vec<IdRange>,
}

/// The program to run (nsjail runs it with `execv`: no `PATH` search).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSpec {
    /// The path given to execve (`exec_bin.path`, or `argv[0]`).
    pub path: CString,
    /// argv, `argv[0]` included.
    pub argv: Vec<CString>,
    /// The environment, `NAME=VALUE` each (`keep_env`, then `envar`).
    pub envp: Vec<CString>,
    /// Open the program before entering the jail and run it with
    /// `execveat` (`exec_bin.exec_fd`, `--execute_fd`).
    pub exec_fd: bool,
}

/// One rlimit to set in the jail (soft = hard = `value`, kernel units;
/// `RLIM64_INFINITY` = unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlimitSpec {
    /// `RLIMIT_*` number.
    pub resource: u32,
    /// `RLIMIT_AS`, for messages.
    pub name: &'static str,
    /// The value.
    pub value: u64,
}

/// A compiled seccomp-bpf program (Kafel policy) and how to install it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompSpec {
    /// The BPF instructions.
    pub program: Vec<kafel::SockFilter>,
    /// Number of policy rules (for `--check`).
    pub rule_count: usize,
    /// `seccomp_log`: `SECCOMP_FILTER_FLAG_LOG`.
    pub log: bool,
    /// The compiler's warnings, one line each (`seccomp policy LINE:COL:
    /// warning: ...`), for `--check` and the start-up log.
    pub warnings: Vec<String>,
}

/// Settings of the jailed process itself, applied by the child before exec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessSpec {
    /// `hostname` (with a UTS namespace).
    pub hostname: String,
    /// Capabilities to keep: (number, name).
    pub caps: Vec<(u32, String)>,
    /// `keep_caps`: keep every capability.
    pub keep_caps: bool,
    /// `PR_SET_NO_NEW_PRIVS` (not `disable_no_new_privs`).
    pub no_new_privs: bool,
    /// `nice_level`.
    pub nice: i32,
    /// `personality(2)` bits from the `persona_*` fields.
    pub personality: u64,
    /// `max_cpus` (0 = all).
    pub max_cpus: u32,
    /// `use_core_scheduling`.
    pub core_scheduling: bool,
    /// `disable_tsc` (x86 only).
    pub disable_tsc: bool,
    /// `oom_score_adj`, if set.
    pub oom_score_adj: Option<i32>,
    /// Call `setsid` (not `skip_setsid`).
    pub setsid: bool,
    /// `silent`: stdio to /dev/null.
    pub silent: bool,
    /// `stderr_to_null`.
    pub stderr_to_null: bool,
    /// `pass_fd`: descriptors the program inherits (besides 0-2).
    pub pass_fds: Vec<i32>,
}

/// LISTEN mode's server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// `bindhost` (IPv4 as IPv4-mapped IPv6).
    pub addr: Ipv6Addr,
    /// `port`.
    pub port: u16,
    /// `max_conns` (0 = unlimited).
    pub max_conns: u32,
    /// `max_conns_per_ip` (0 = unlimited).
    pub max_conns_per_ip: u32,
}

/// Log levels, as nsjail's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// `-v`.
    Debug,
    /// The default.
    #[default]
    Info,
    /// `-q`.
    Warning,
    /// Errors only.
    Error,
    /// `-Q`: fatal only.
    Fatal,
}

/// Where nsjail's own log goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSpec {
    /// A descriptor (`log_fd`, `-L`); stderr by default. Negative = no log.
    pub fd: Option<i32>,
    /// A file (`log_file`, `-l`), appended to.
    pub file: Option<String>,
    /// The threshold.
    pub level: LogLevel,
}

/// Everything the runtime needs to launch and supervise a jail.
#[derive(Debug, Clone)]
pub struct JailSpec {
    /// ONCE, LISTEN, RERUN or EXECVE.
    pub mode: RunMode,
    /// The program.
    pub exec: ExecSpec,
    /// The namespaces.
    pub namespaces: Namespaces,
    /// uid/gid maps.
    pub ids: IdMaps,
    /// The filesystem view.
    pub fs: FsSpec,
    /// The network.
    pub net: NetSpec,
    /// The cgroup limits asked for.
    pub cgroup: CgroupRequest,
    /// The rlimits, in nsjail's order, values resolved (empty with `disable_rl`).
    pub rlimits: Vec<RlimitSpec>,
    /// `rlimit_cpu` in seconds when the jail gets a fixed CPU-time limit
    /// (for naming a death `rlimit_cpu` in the run report).
    pub rlimit_cpu_secs: Option<u64>,
    /// The Kafel policy, compiled.
    pub seccomp: Option<SeccompSpec>,
    /// Ours: `socket(AF_VSOCK, ...)` fails with EAFNOSUPPORT through a small
    /// filter beside the policy; true for a jail with its own network
    /// namespace unless `--allow_vsock` (vsock crosses network namespaces).
    pub deny_vsock: bool,
    /// `seccomp_unotify`: trace the jail's file and network calls.
    pub unotify: bool,
    /// `seccomp_unotify_report`: where the tracing report goes (else the log).
    pub unotify_report: Option<PathBuf>,
    /// The process settings.
    pub process: ProcessSpec,
    /// Wall-clock time limit in seconds (0 = none).
    pub time_limit: u32,
    /// `forward_signals`: pass SIGINT/TERM/HUP to the jail instead of killing it.
    pub forward_signals: bool,
    /// LISTEN settings (`None` in other modes).
    pub listen: Option<ListenSpec>,
    /// nsjail's own log.
    pub log: LogSpec,
    /// `daemon`.
    pub daemon: bool,
    /// `--run_report FILE` (ours).
    pub run_report: Option<PathBuf>,
    /// Warnings found while lowering (to be logged once).
    pub warnings: Vec<String>,
}

fn cstr(what: impl FnOnce() -> String, s: &str) -> Result<CString, SpecError> {
    CString::new(s).map_err(|_| SpecError::Nul { what: what() })
}

/// The environment: nsjail's own (`keep_env`) or empty, then each `envar`
/// (`NAME=VALUE`; a bare `NAME` copies nsjail's value, or is skipped with a
/// warning when unset), later entries replacing earlier ones.
fn environment(cfg: &NsJailConfig, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = if cfg.keep_env() {
        std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    for e in &cfg.envar {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(e) {
                Ok(v) => (e.clone(), v),
                Err(_) => {
                    warnings.push(format!("Environment variable '{e}' (from --env/envar) is not set in nsjail's environment; skipping it"));
                    continue;
                }
            },
        };
        if let Some(slot) = env.iter_mut().find(|(n, _)| *n == k) {
            slot.1 = v;
        } else {
            env.push((k, v));
        }
    }
    env
}

/// nsjail's own log settings of `jail` (fd, file, level), which the binary
/// needs before the rest is lowered (to report a lowering error where the
/// config says).
pub fn log_spec(jail: &Jail) -> LogSpec {
    let cfg = &jail.cfg;
    LogSpec {
        fd: cfg.has_log_fd().then(|| cfg.log_fd()),
        file: cfg.has_log_file().then(|| cfg.log_file().to_string()),
        level: match cfg.log_level() {
            ProtoLogLevel::DEBUG => LogLevel::Debug,
            ProtoLogLevel::INFO => LogLevel::Info,
            ProtoLogLevel::WARNING => LogLevel::Warning,
            ProtoLogLevel::ERROR => LogLevel::Error,
            ProtoLogLevel::FATAL => LogLevel::Fatal,
        },
    }
}

fn personality(cfg: &NsJailConfig) -> u64 {
    const ADDR_NO_RANDOMIZE: u64 = 0x0040000;
    const MMAP_PAGE_ZERO: u64 = 0x0100000;
    const ADDR_COMPAT_LAYOUT: u64 = 0x0200000;
    const READ_IMPLIES_EXEC: u64 = 0x0400000;
    const ADDR_LIMIT_3GB: u64 = 0x8000000;
    let mut p = 0;
    for (on, f) in [
        (cfg.persona_addr_compat_layout(), ADDR_COMPAT_LAYOUT),
        (cfg.persona_mmap_page_zero(), MMAP_PAGE_ZERO),
        (cfg.persona_read_implies_exec(), READ_IMPLIES_EXEC),
        (cfg.persona_addr_limit_3gb(), ADDR_LIMIT_3GB),
        (cfg.persona_addr_no_randomize(), ADDR_NO_RANDOMIZE),
    ] {
        if on {
            p |= f;
        }
    }
    p
}

/// `bindhost` as an IPv6 address (IPv4 text becomes IPv4-mapped), as nsjail.
///
/// # Errors
/// [`SpecError::BadBindhost`] for anything but a numeric address.
pub fn parse_bindhost(host: &str) -> Result<Ipv6Addr, SpecError> {
    let h = host.trim();
    if let Ok(v4) = h.parse::<Ipv4Addr>() {
        return Ok(v4.to_ipv6_mapped());
    }
    let h6 = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    h6.parse::<Ipv6Addr>()
        .map_err(|_| SpecError::BadBindhost(host.to_string()))
}

fn rlimits(cfg: &NsJailConfig) -> Result<Vec<RlimitSpec>, SpecError> {
    if cfg.disable_rl() {
        return Ok(Vec::new());
    }
    let mut host: Option<Vec<(&'static str, u64, u64)>> = None;
    let mut out = Vec::new();
    for s in rlimit_plan(cfg) {
        let mut current = |hard: bool| -> Result<u64, SpecError> {
            let all = host.get_or_insert_with(crate::check::current_rlimits);
            all.iter()
                .find(|(n, _, _)| *n == s.name)
                .map(|&(_, soft, h)| if hard { h } else { soft })
                .ok_or(SpecError::Rlimit {
                    name: s.name,
                    err: "getrlimit failed".to_string(),
                })
        };
        let value = match s.value {
            RlimitValue::Value(v) => v,
            RlimitValue::Inf => libc::RLIM64_INFINITY,
            RlimitValue::Soft => current(false)?,
            RlimitValue::Hard => current(true)?,
        };
        // nsjail's own limits too: above 2^63-1 the kernel reads a limit as
        // negative (ours, see rlimit::saturate).
        let value = match crate::rlimit::saturate(value) {
            RlimitValue::Value(v) => v,
            _ => libc::RLIM64_INFINITY,
        };
        // u32 on glibc, c_int on musl.
        #[allow(clippy::unnecessary_cast)]
        let resource = s.resource as u32;
        out.push(RlimitSpec {
            resource,
            name: s.name,
            value,
        });
    }
    Ok(out)
}

fn seccomp(cfg: &NsJailConfig) -> Result<Option<SeccompSpec>, SpecError> {
    let text = if cfg.has_seccomp_policy_file() {
        let path = cfg.seccomp_policy_file();
        std::fs::read_to_string(path).map_err(|e| SpecError::SeccompRead {
            path: path.to_string(),
            err: e.to_string(),
        })?
    } else if !cfg.seccomp_string.is_empty() {
        cfg.seccomp_string.join("\n")
    } else {
        return Ok(None);
    };
    let prog = kafel::compile(&text, &kafel::CompileOptions::default())?;
    Ok(Some(SeccompSpec {
        program: prog.filter,
        rule_count: prog.rule_count,
        log: cfg.seccomp_log(),
        warnings: prog
            .warnings
            .iter()
            .map(|w| format!("seccomp policy {w}"))
            .collect(),
    }))
}

/// Lower the effective config into the jail spec: every validation that
/// can fail before `clone` (ours: nsjail finds some of these only while
/// launching). Reads the host where the config asks it to: env prefixes
/// and `keep_env` (nsjail's environment), `SOFT`/`HARD` rlimits (nsjail's
/// own limits), the seccomp policy file, `stat` of bind sources.
///
/// # Errors
/// [`SpecError`], one line naming the field or flag and the fix.
pub fn lower(jail: &Jail) -> Result<JailSpec, SpecError> {
    let cfg = &jail.cfg;
    let mut warnings = Vec::new();

    let mode = match cfg.mode() {
        Mode::LISTEN => RunMode::Listen,
        Mode::RERUN => RunMode::Rerun,
        Mode::EXECVE => RunMode::Execve,
        Mode::ONCE => RunMode::Once,
    };
    let namespaces = Namespaces {
        user: cfg.clone_newuser(),
        mount: cfg.clone_newns(),
        pid: cfg.clone_newpid(),
        ipc: cfg.clone_newipc(),
        uts: cfg.clone_newuts(),
        net: cfg.clone_newnet(),
        cgroup: cfg.clone_newcgroup(),
        time: cfg.clone_newtime(),
    };

    let mut mounts = Vec::new();
    if namespaces.mount {
        for m in &cfg.mount {
            let (e, w) = MountEntry::lower(m)?;
            warnings.extend(w);
            mounts.push(e);
        }
        if !jail.allow_bind_symlinks {
            mount::check_bind_symlinks(&mounts)?;
        }
    }
    let fs = FsSpec {
        newns: namespaces.mount,
        chroot: jail.chroot.clone(),
        mounts,
        root_rw: jail.root_rw,
        no_pivotroot: cfg.no_pivotroot(),
        api: jail.mount_api,
        cwd: cfg.cwd().to_string(),
    };

    let mut caps = Vec::new();
    for name in &cfg.cap {
        match crate::cap_from_name(name) {
            Some(nr) => caps.push((nr, name.clone())),
            None => return Err(SpecError::UnknownCap(name.clone())),
        }
    }

    let argv = jail
        .argv
        .iter()
        .enumerate()
        .map(|(i, a)| cstr(|| format!("argument {i}"), a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = environment(cfg, &mut warnings)
        .into_iter()
        .map(|(k, v)| {
            cstr(
                || format!("environment variable '{k}'"),
                &format!("{k}={v}"),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let exec = ExecSpec {
        path: cstr(|| "the program path".to_string(), jail.exec_path())?,
        argv,
        envp,
        exec_fd: cfg.exec_bin.exec_fd(),
    };

    let listen = if mode == RunMode::Listen {
        Some(ListenSpec {
            addr: parse_bindhost(cfg.bindhost())?,
            // validate() refused ports above 65535.
            port: cfg.port() as u16,
            max_conns: cfg.max_conns(),
            max_conns_per_ip: cfg.max_conns_per_ip(),
        })
    } else {
        None
    };

    let log = log_spec(jail);

    let net = NetSpec::lower(cfg)?;
    if let Some(u) = &net.user {
        warnings.extend(u.warnings());
    }

    Ok(JailSpec {
        mode,
        exec,
        namespaces,
        ids: IdMaps {
            uids: jail.uid_map.clone(),
            gids: jail.gid_map.clone(),
        },
        fs,
        net,
        cgroup: CgroupRequest::from_config(cfg),
        rlimits: rlimits(cfg)?,
        rlimit_cpu_secs: (!cfg.disable_rl() && cfg.rlimit_cpu_type() == RLimit::VALUE)
            .then(|| cfg.rlimit_cpu()),
        seccomp: seccomp(cfg)?,
        deny_vsock: cfg.clone_newnet() && !jail.allow_vsock,
        unotify: cfg.seccomp_unotify(),
        unotify_report: cfg
            .has_seccomp_unotify_report()
            .then(|| PathBuf::from(cfg.seccomp_unotify_report())),
        process: ProcessSpec {
            hostname: cfg.hostname().to_string(),
            caps,
            keep_caps: cfg.keep_caps(),
            no_new_privs: !cfg.disable_no_new_privs(),
            nice: cfg.nice_level(),
            personality: personality(cfg),
            max_cpus: cfg.max_cpus(),
            core_scheduling: cfg.use_core_scheduling(),
            disable_tsc: cfg.disable_tsc(),
            oom_score_adj: cfg.has_oom_score_adj().then(|| cfg.oom_score_adj()),
            setsid: !cfg.skip_setsid(),
            silent: cfg.silent(),
            stderr_to_null: cfg.stderr_to_null(),
            pass_fds: cfg.pass_fd.clone(),
        },
        time_limit: cfg.time_limit(),
        forward_signals: cfg.forward_signals(),
        listen,
        log,
        daemon: cfg.daemon(),
        run_report: jail.run_report.clone(),
        warnings,
    })
}
