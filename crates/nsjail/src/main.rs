//! The `nsjail` binary: parse → `--check` → run → exit code.
//!
//! Every failure ends here as one `[F]` line and exit code 255; nothing
//! panics on bad input.

use std::process::ExitCode;

use nsjail::{cgroup, listen, logging, mount, report, supervisor};
use nsjail_config::spec::{JailSpec, LogLevel, RunMode, SpecError};
use nsjail_config::Jail;

/// A fatal error of the supervisor: printed once, exit 255.
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Fatal {
        Fatal(e.to_string())
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => ExitCode::from(code),
        Err(Fatal(msg)) => {
            logging::fatal("main", line!(), &msg);
            ExitCode::from(255)
        }
    }
}

fn log_settings(jail: &Jail) -> logging::LogSettings {
    let log = nsjail_config::spec::log_spec(jail);
    logging::LogSettings {
        fd: log.fd,
        file: log.file,
        level: Some(match log.level {
            LogLevel::Debug => logging::Level::Debug,
            LogLevel::Info => logging::Level::Info,
            LogLevel::Warning => logging::Level::Warning,
            LogLevel::Error => logging::Level::Error,
            LogLevel::Fatal => logging::Level::Fatal,
        }),
    }
}

fn real_main() -> Result<u8, Fatal> {
    let jail = match nsjail_config::parse_args(std::env::args_os().skip(1)) {
        Ok(nsjail_config::Parsed::Help) => {
            print!("{}", nsjail_config::usage());
            return Ok(0);
        }
        Ok(nsjail_config::Parsed::Version) => {
            print!("{}", nsjail::version_text());
            return Ok(0);
        }
        Ok(nsjail_config::Parsed::Run(j)) => j,
        Err(e) => {
            if e.is_usage() {
                eprint!("{}", nsjail_config::usage());
            }
            return Err(Fatal(e.to_string()));
        }
    };
    let mut settings = log_settings(&jail);
    if jail.check_only {
        // --check answers on the terminal: never into a daemon's log file.
        settings.fd = Some(2);
        settings.file = None;
    }
    logging::init(&settings);

    // nsjail §5.1 step 5: what `rlimit_nofile_type: SOFT` gives a jail (the
    // lowering resolves SOFT/HARD), and room for LISTEN's connections.
    nsjail::sys::raise_nofile(8192);
    // Every check that can fail before clone happens here, the same for
    // --check and a launch (also settings the runtime cannot honour: never
    // a jail without them).
    let spec = jail.lower().map_err(|e| match e {
        SpecError::SeccompCompile(_) | SpecError::SeccompRead { .. } => {
            log::error!("{e}");
            Fatal("Couldn't prepare sandboxing policy (fix the seccomp policy)".to_string())
        }
        e => Fatal(e.to_string()),
    })?;
    // Traps the lowered spec shows (policy, threads, a program outside the
    // jail) and the compiler's warnings: in --check and in the log.
    let spec_warnings: Vec<String> = spec
        .seccomp
        .iter()
        .flat_map(|f| {
            f.clone3_trap()
                .into_iter()
                .chain(f.exec_trap(spec.exec.exec_fd))
                .chain(f.thread_env_trap(&spec.exec.envp))
                .chain(f.warnings.iter().cloned())
        })
        .chain(program_missing(&spec))
        .collect();
    let host = nsjail_config::HostFacts::probe();
    if jail.check_only {
        let extra: Vec<String> = spec
            .warnings
            .iter()
            .cloned()
            .chain(spec_warnings.iter().cloned())
            .collect();
        print!(
            "{}",
            nsjail_config::check_report(
                &jail,
                &host,
                spec.seccomp.as_ref().map(|f| f.rule_count),
                &extra
            )
        );
        return Ok(0);
    }
    if spec.namespaces.time && spec.mode != RunMode::Execve {
        // nsjail's warning; the flag is passed to clone3 all the same, and
        // the child (not only its children) is in the new time namespace.
        log::warn!(
            "CLONE_NEWTIME requested, but it's only supported with the unshare() mode (-Me)"
        );
    }
    if spec.daemon {
        // Logging already goes to its own descriptor (a file for a daemon
        // without a target); daemon(3) only swaps 0-2 for /dev/null.
        nsjail::sys::daemonize().map_err(|e| Fatal(format!("{e} (--daemon)")))?;
    }
    log_parameters(&jail, &spec);
    for w in nsjail_config::trap_warnings(&jail, &host)
        .into_iter()
        .chain(spec.warnings.iter().cloned())
        .chain(spec_warnings)
    {
        log::warn!("{w}");
    }

    let cgroups = cgroup::Cgroups::setup(&spec.cgroup).map_err(|e| {
        log::error!("{e}");
        Fatal("Couldn't setup parent cgroup (fix the cgroup_* settings)".to_string())
    })?;
    let mode = spec.mode;
    if mode == RunMode::Execve {
        // Returns only when the jail could not be entered.
        let err = nsjail::execve::run(&spec, cgroups);
        return Err(Fatal(format!(
            "Launching the process in place failed: {err}"
        )));
    }
    let sink = match (&spec.run_report, mode) {
        (Some(path), RunMode::Rerun | RunMode::Listen) => {
            Some(report::LineSink::open(path).map_err(|e| {
                Fatal(format!(
                    "couldn't open the run report '{}' (--run_report): {e}",
                    path.display()
                ))
            })?)
        }
        _ => None,
    };
    let code = match mode {
        RunMode::Rerun => supervisor::run_rerun(&spec, &cgroups, sink.as_ref())?,
        RunMode::Listen => listen::run_listen(&spec, &cgroups, sink.as_ref())?,
        _ => {
            let report = supervisor::run_once(&spec, &cgroups)?;
            if let Some(err) = &report.error {
                // The one line that survives `log_fd: -1` (see logging::fatal).
                logging::fatal(
                    "main",
                    line!(),
                    &format!("Couldn't launch the child process: {err}"),
                );
            }
            if let Some(path) = &spec.run_report {
                report.write(path).map_err(|e| {
                    Fatal(format!(
                        "couldn't write the run report to '{}' (--run_report): {e}",
                        path.display()
                    ))
                })?;
            }
            report.exit_code
        }
    };
    cgroups.teardown();
    Ok(code.clamp(0, 255) as u8)
}

/// The program will not exist inside the jail (not with `--execute_fd`,
/// which opens it on the host).
fn program_missing(spec: &JailSpec) -> Option<String> {
    let path = spec.exec.path.to_string_lossy();
    if spec.exec.exec_fd {
        return None;
    }
    let why = spec.fs.program_missing(&path)?;
    Some(format!(
        "the program '{path}' will not exist inside the jail: {why}"
    ))
}

fn log_parameters(jail: &Jail, spec: &JailSpec) {
    let cfg = &jail.cfg;
    log::info!(
        "Mode: {}",
        match spec.mode {
            RunMode::Listen => "LISTEN_TCP",
            RunMode::Rerun => "STANDALONE_RERUN",
            RunMode::Execve => "STANDALONE_EXECVE",
            RunMode::Once => "STANDALONE_ONCE",
        }
    );
    log::info!(
        "Jail parameters: hostname:'{}', chroot:'{}', process:'{}', bind:[{}]:{}, max_conns:{}, max_conns_per_ip:{}, time_limit:{}, daemonize:{}, clone_newnet:{}, clone_newuser:{}, clone_newns:{}, clone_newpid:{}, clone_newipc:{}, clone_newuts:{}, clone_newcgroup:{}, clone_newtime:{}, keep_caps:{}, disable_no_new_privs:{}, max_cpus:{}",
        cfg.hostname(),
        jail.chroot.as_deref().unwrap_or(""),
        jail.exec_path(),
        cfg.bindhost(),
        cfg.port(),
        cfg.max_conns(),
        cfg.max_conns_per_ip(),
        cfg.time_limit(),
        cfg.daemon(),
        cfg.clone_newnet(),
        cfg.clone_newuser(),
        cfg.clone_newns(),
        cfg.clone_newpid(),
        cfg.clone_newipc(),
        cfg.clone_newuts(),
        cfg.clone_newcgroup(),
        cfg.clone_newtime(),
        cfg.keep_caps(),
        cfg.disable_no_new_privs(),
        cfg.max_cpus(),
    );
    if log::log_enabled!(log::Level::Info) {
        for m in &spec.fs.mounts {
            log::info!("{}", mount::describe(m));
        }
    }
    for (kind, maps) in [("uid", &cfg.uidmap), ("gid", &cfg.gidmap)] {
        for m in maps.iter() {
            log::info!(
                "{} map: inside_{kind}:{} outside_{kind}:{} count:{} new{kind}map:{}",
                if kind == "uid" { "Uid" } else { "Gid" },
                m.inside_id(),
                m.outside_id(),
                m.count(),
                m.use_newidmap()
            );
            if cfg.clone_newuser()
                && (m.outside_id() == "0"
                    || (m.outside_id().is_empty() && rustix::process::geteuid().is_root()))
            {
                log::warn!(
                    "Process will be {}=0 in the global user namespace, and will have user root-level access to files",
                    kind.to_uppercase()
                );
            }
        }
    }
}
