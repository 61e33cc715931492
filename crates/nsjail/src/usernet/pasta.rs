//! The PASTA backend: the external `pasta` program (Debian's `passt`
//! package) connects the jail's network namespace to the host's.
//!
//! * Located as nsjail: `$NSJAIL_PASTA_PATH`, else `pasta` from `PATH`;
//!   missing → one error naming the package.
//! * Probed once per supervisor with `pasta --help` (ours): as root, a
//!   pasta that knows `--runas` and `--netns-only` is started with `--runas
//!   0 --netns-only --netns /proc/PID/ns/net` — Debian 12's pasta (2023-03)
//!   otherwise drops to `nobody` and cannot open the jail's namespaces
//!   (observed); else with the PID as its last argument (nsjail's form).
//! * A keeper process per jail (invisible to the supervisor's reaping, see
//!   [`sys::spawn_quiet`]) forks and execs pasta and watches it: if pasta
//!   dies while the jail runs, the keeper logs one line and kills the jail
//!   (as nsjail: "Pasta process N exited unexpectedly"); when the jail ends
//!   the supervisor closes the keeper's control pipe and the keeper kills
//!   and reaps pasta, then exits and is reaped. pasta's stderr is logged
//!   (nsjail sends it to /dev/null; its error lines are the only clue).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nsjail_config::spec::usernet::PastaSpec;

use crate::sys::{self, ChildState, Forked, Spawned};

/// What the installed pasta supports (from `pasta --help`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PastaCaps {
    /// `--runas UID`.
    pub runas: bool,
    /// `--netns-only` (do not join the target's user namespace).
    pub netns_only: bool,
    /// `--splice-only` (`pasta { nat: false }`).
    pub splice_only: bool,
}

impl PastaCaps {
    /// Read the options out of pasta's help text.
    pub fn from_help(help: &str) -> PastaCaps {
        let has = |o: &str| {
            help.split(|c: char| c.is_whitespace() || c == ',')
                .any(|w| w == o)
        };
        PastaCaps {
            runas: has("--runas"),
            netns_only: has("--netns-only"),
            splice_only: has("--splice-only"),
        }
    }
}

/// The pasta program: `$NSJAIL_PASTA_PATH`, else `pasta` from `PATH`.
///
/// # Errors
/// One line saying where it was looked for and which package provides it.
pub fn locate() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NSJAIL_PASTA_PATH") {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(format!(
                "pasta (user_net backend PASTA, --use_pasta) not found at '{}' ($NSJAIL_PASTA_PATH): \
                 point it at the pasta binary, or unset it and install the 'passt' package",
                p.display()
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("pasta"))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            "pasta (user_net backend PASTA, --use_pasta) is not installed: no 'pasta' in PATH \
             and $NSJAIL_PASTA_PATH is unset; install the 'passt' package (it provides pasta)"
                .to_string()
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `pasta --help`, once per program (its text goes to stdout or stderr,
/// depending on the version).
fn probe(prog: &Path) -> PastaCaps {
    static CAPS: OnceLock<(PathBuf, PastaCaps)> = OnceLock::new();
    if let Some((p, c)) = CAPS.get() {
        if p == prog {
            return *c;
        }
    }
    let caps = std::process::Command::new(prog)
        .arg("--help")
        .stdin(std::process::Stdio::null())
        .output()
        .map(|o| {
            let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
            t.push_str(&String::from_utf8_lossy(&o.stderr));
            PastaCaps::from_help(&t)
        })
        .unwrap_or_default();
    log::debug!("pasta '{}' supports: {caps:?}", prog.display());
    let _ = CAPS.set((prog.to_path_buf(), caps));
    caps
}

/// pasta's full argv for the jail `pid` (program name first).
///
/// # Errors
/// A setting this pasta cannot honour (`nat: false` without `--splice-only`).
pub fn command_line(
    spec: &PastaSpec,
    ns_iface: &str,
    pid: i32,
    caps: PastaCaps,
    root: bool,
) -> Result<Vec<String>, String> {
    if !spec.nat && !caps.splice_only {
        return Err(
            "user_net.pasta.nat: false needs pasta's --splice-only, which the installed pasta \
             lacks; set nat: true or install a newer passt"
                .to_string(),
        );
    }
    let mut argv = vec!["pasta".to_string()];
    argv.extend(spec.args(ns_iface));
    if root && caps.runas && caps.netns_only {
        argv.extend([
            "--runas".to_string(),
            "0".to_string(),
            "--netns-only".to_string(),
            "--netns".to_string(),
            format!("/proc/{pid}/ns/net"),
        ]);
    } else {
        argv.push(pid.to_string());
    }
    Ok(argv)
}

/// A running pasta for one jail, through its keeper process.
#[derive(Debug)]
pub struct Pasta {
    keeper: OwnedFd,
    keeper_pid: i32,
    /// pasta's pid (for messages).
    pub pid: i32,
    ctl: Option<OwnedFd>,
}

impl Pasta {
    /// Start pasta for the jail `jail_pid` and wait until it runs.
    ///
    /// # Errors
    /// pasta missing, not startable, or the keeper failing.
    pub fn start(spec: &PastaSpec, ns_iface: &str, jail_pid: i32) -> Result<Pasta, String> {
        let prog = locate()?;
        let caps = probe(&prog);
        let argv = command_line(
            spec,
            ns_iface,
            jail_pid,
            caps,
            rustix::process::geteuid().is_root(),
        )?;
        log::debug!("starting {}: {}", prog.display(), argv.join(" "));
        let cstr = |s: &str| CString::new(s).map_err(|_| format!("'{s}' contains a NUL byte"));
        let prog_c = cstr(&prog.to_string_lossy())?;
        let argv_c = argv
            .iter()
            .map(|a| cstr(a))
            .collect::<Result<Vec<_>, _>>()?;
        let envp: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.into_encoded_bytes();
                kv.push(b'=');
                kv.extend(v.into_encoded_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let jail = sys::pidfd_open(jail_pid).map_err(|e| e.to_string())?;
        let (status_r, status_w) = sys::pipe_cloexec().map_err(|e| e.to_string())?;
        let (ctl_r, ctl_w) = sys::pipe_cloexec().map_err(|e| e.to_string())?;
        match sys::spawn_quiet().map_err(|e| format!("starting pasta's keeper: {e}"))? {
            Spawned::Child => {
                drop(status_r);
                drop(ctl_w);
                let code = keeper_main(&prog_c, &argv_c, &envp, jail, status_w, ctl_r, jail_pid);
                sys::exit_now(code)
            }
            Spawned::Parent(keeper_pid, keeper) => {
                drop(status_w);
                drop(ctl_r);
                drop(jail);
                let text =
                    String::from_utf8_lossy(&sys::read_to_eof(status_r.as_fd())).into_owned();
                let mut p = Pasta {
                    keeper,
                    keeper_pid,
                    pid: 0,
                    ctl: Some(ctl_w),
                };
                match text.strip_prefix("OK ").and_then(|t| t.trim().parse().ok()) {
                    Some(pid) => {
                        p.pid = pid;
                        log::info!("Spawned pasta for pid={jail_pid}, pasta_pid={pid}");
                        Ok(p)
                    }
                    None => {
                        p.stop();
                        Err(match text.strip_prefix("ERR ") {
                            Some(e) => e.to_string(),
                            None => "pasta's keeper process ended before pasta started".to_string(),
                        })
                    }
                }
            }
        }
    }

    /// Kill and reap pasta (through the keeper), then reap the keeper.
    pub fn stop(&mut self) {
        if self.ctl.take().is_some() {
            // The keeper kills pasta within KILL_GRACE on EOF; never wait
            // forever on it.
            let deadline = Instant::now() + KILL_GRACE * 4;
            loop {
                match sys::reap_pidfd(self.keeper.as_fd(), true) {
                    Ok(ChildState::Running) if Instant::now() < deadline => {
                        let _ = sys::poll_in(self.keeper.as_fd(), 20);
                    }
                    Ok(ChildState::Running) => {
                        let _ = sys::pidfd_kill(self.keeper.as_fd(), libc::SIGKILL);
                        let _ = sys::reap_pidfd(self.keeper.as_fd(), false);
                        break;
                    }
                    _ => break,
                }
            }
            log::debug!(
                "pasta (pid {}) and its keeper (pid {}) stopped",
                self.pid,
                self.keeper_pid
            );
        }
    }
}

impl Drop for Pasta {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long pasta gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_millis(300);

/// The keeper: start pasta, report, watch. Returns the exit code.
fn keeper_main(
    prog: &CString,
    argv: &[CString],
    envp: &[CString],
    jail: OwnedFd,
    status: OwnedFd,
    ctl: OwnedFd,
    jail_pid: i32,
) -> i32 {
    let _ = sys::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        "PR_SET_PDEATHSIG",
    );
    let _ = sys::unblock_all_signals();
    let mut keep = vec![jail.as_raw_fd(), status.as_raw_fd(), ctl.as_raw_fd()];
    keep.extend(crate::logging::log_fd());
    sys::close_all_except(&keep);
    let report = |s: &str| {
        let _ = sys::write_all(status.as_fd(), s.as_bytes());
    };
    let pipes = sys::pipe_cloexec().and_then(|a| sys::pipe_cloexec().map(|b| (a, b)));
    let ((err_r, err_w), (log_r, log_w)) = match pipes {
        Ok(p) => p,
        Err(e) => {
            report(&format!("ERR starting pasta: {e}"));
            return 1;
        }
    };
    let pasta_pid = match sys::fork() {
        Err(e) => {
            report(&format!("ERR starting pasta: {e}"));
            return 1;
        }
        Ok(Forked::Child) => {
            let _ = sys::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                "PR_SET_PDEATHSIG",
            );
            if let Ok(null) = sys::open("/dev/null", libc::O_RDWR, 0) {
                let _ = sys::dup2(null.as_fd(), 0);
                let _ = sys::dup2(null.as_fd(), 1);
            }
            let _ = sys::dup2(log_w.as_fd(), 2);
            // Rust ignores SIGPIPE, and exec keeps that; pasta refuses to
            // start unless its SIGPIPE disposition is the default
            // ("Couldn't install signal handlers", observed).
            for s in [libc::SIGPIPE, libc::SIGTTIN, libc::SIGTTOU] {
                let _ = sys::signal_disposition(s, false);
            }
            let e = sys::execve(prog, argv, envp);
            let _ = sys::write_all(
                err_w.as_fd(),
                format!(
                    "executing '{}': {}",
                    prog.to_string_lossy(),
                    sys::errno_text(&e.source)
                )
                .as_bytes(),
            );
            sys::exit_now(127)
        }
        Ok(Forked::Parent(p)) => p,
    };
    drop(err_w);
    drop(log_w);
    let exec_err = sys::read_to_eof(err_r.as_fd());
    if !exec_err.is_empty() {
        let _ = sys::reap(pasta_pid);
        report(&format!(
            "ERR starting pasta failed: {}; install the 'passt' package or fix $NSJAIL_PASTA_PATH",
            String::from_utf8_lossy(&exec_err)
        ));
        return 1;
    }
    let pasta = match sys::pidfd_open(pasta_pid) {
        Ok(p) => p,
        Err(e) => {
            let _ = sys::kill(pasta_pid, libc::SIGKILL);
            let _ = sys::reap(pasta_pid);
            report(&format!("ERR watching pasta: {e}"));
            return 1;
        }
    };
    report(&format!("OK {pasta_pid}"));
    drop(status);
    let mut log_open = true;
    let mut jail_alive = true;
    let mut pending = String::new();
    loop {
        let mut fds: Vec<BorrowedFd<'_>> = vec![pasta.as_fd(), ctl.as_fd()];
        if log_open {
            fds.push(log_r.as_fd());
        }
        if jail_alive {
            fds.push(jail.as_fd());
        }
        let Ok(ready) = sys::poll_many(&fds, -1) else {
            continue;
        };
        let mut i = 2;
        if log_open {
            if ready[i] {
                let mut buf = [0u8; 4096];
                match sys::read(log_r.as_fd(), &mut buf) {
                    Ok(0) | Err(_) => log_open = false,
                    Ok(n) => {
                        pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                        while let Some(nl) = pending.find('\n') {
                            let line: String = pending.drain(..=nl).collect();
                            let line = line.trim();
                            if !line.is_empty() && !line.starts_with("Failed to send") {
                                log::warn!("pasta (pid {pasta_pid}): {line}");
                            }
                        }
                    }
                }
            }
            i += 1;
        }
        if jail_alive && ready[i] {
            // The jail has exited; pasta may follow (its namespace is gone).
            jail_alive = false;
        }
        if ready[1] {
            // Control EOF: the jail is over (or the supervisor is gone).
            let _ = sys::kill(pasta_pid, libc::SIGTERM);
            if !sys::poll_in(pasta.as_fd(), KILL_GRACE.as_millis() as i32).unwrap_or(false) {
                let _ = sys::kill(pasta_pid, libc::SIGKILL);
            }
            let _ = sys::reap(pasta_pid);
            return 0;
        }
        if ready[0] {
            let state = sys::reap(pasta_pid).map(|r| r.state);
            let jail_gone = !jail_alive || sys::poll_in(jail.as_fd(), 0).unwrap_or(true);
            if !jail_gone {
                let how = match state {
                    Ok(ChildState::Exited(c)) => format!("with status {c}"),
                    Ok(ChildState::Signaled(s)) => format!("by signal {s}"),
                    _ => "for an unknown reason".to_string(),
                };
                log::error!(
                    "Pasta process {pasta_pid} exited unexpectedly {how}; killing the jail (pid={jail_pid}), which lost its network"
                );
                let _ = sys::pidfd_kill(jail.as_fd(), libc::SIGKILL);
            }
            // Wait for the supervisor to close the control pipe.
            let _ = sys::poll_in(ctl.as_fd(), -1);
            return 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_text_options_are_found_as_words() {
        let debian = "  --runas UID|UID:GID \tRun as given UID\n  --netns-only\t\tDon't join\n  --no-netns-quit\n";
        assert_eq!(
            PastaCaps::from_help(debian),
            PastaCaps {
                runas: true,
                netns_only: true,
                splice_only: false
            }
        );
        assert_eq!(
            PastaCaps::from_help("--runas-ish --netns-onlyx"),
            PastaCaps::default()
        );
    }

    #[test]
    fn root_uses_the_netns_path_when_pasta_can() {
        let spec = match nsjail_config::spec::usernet::lower(
            &nsjail_config::textformat::parse::<nsjail_config::NsJailConfig>(
                "user_net { enable: true }",
            )
            .unwrap()
            .0,
        )
        .unwrap()
        .unwrap()
        .backend
        {
            nsjail_config::spec::usernet::UserNetBackend::Pasta(p) => p,
            _ => unreachable!(),
        };
        let caps = PastaCaps {
            runas: true,
            netns_only: true,
            splice_only: false,
        };
        let a = command_line(&spec, "eth0", 42, caps, true).unwrap();
        assert_eq!(a[0], "pasta");
        assert_eq!(
            a[a.len() - 5..],
            ["--runas", "0", "--netns-only", "--netns", "/proc/42/ns/net"]
        );
        let a = command_line(&spec, "eth0", 42, caps, false).unwrap();
        assert_eq!(a.last().map(String::as_str), Some("42"));
        let a = command_line(&spec, "eth0", 42, PastaCaps::default(), true).unwrap();
        assert_eq!(a.last().map(String::as_str), Some("42"));
    }
}
