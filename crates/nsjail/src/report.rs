//! `--run_report FILE`: a JSON account of one jail run.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the jail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The program exited by itself.
    Exited,
    /// Killed by a signal (not seccomp, not the time limit).
    Signaled,
    /// Killed at the wall-clock time limit.
    TimeLimit,
    /// Killed by SIGSYS (seccomp).
    Seccomp,
    /// Killed by the cgroup OOM killer (the memory limit): the jail's own
    /// process died of a SIGKILL nsjail did not send while the OOM killer
    /// was killing in its cgroup (ours; a child's OOM kill alone is
    /// `oom_kills`, not this status).
    Oom,
    /// Ended by nsjail because nsjail got SIGINT/SIGTERM/SIGHUP (SIGQUIT in
    /// ONCE): killed, or killed by the forwarded signal (ours).
    Stopped,
    /// Killed on reaching its CPU-time rlimit (`rlimit_cpu`).
    RlimitCpu,
    /// The jail could not be set up or the program not executed.
    SetupFailed,
}

impl Status {
    /// The JSON string.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Exited => "exited",
            Status::Signaled => "signaled",
            Status::TimeLimit => "time_limit",
            Status::Seccomp => "seccomp",
            Status::Oom => "oom",
            Status::Stopped => "stopped",
            Status::RlimitCpu => "rlimit_cpu",
            Status::SetupFailed => "setup_failed",
        }
    }
}

/// Optional cgroup statistics (filled when the jail had cgroups; absent
/// from the JSON otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupFields {
    /// The jail ended because the OOM killer killed it (status `oom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_killed: Option<bool>,
    /// Processes of the jail (children included) the OOM killer killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// Peak memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_peak_bytes: Option<u64>,
    /// CPU usage in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usage_us: Option<u64>,
    /// Peak number of pids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_peak: Option<u64>,
}

/// Where the time of one launch went, in microseconds (ours): the
/// supervisor's steps and, reported by the child before its exec, the
/// child's. `run_us` is the program's own time (exec to reap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    /// clone3/clone of the jail's first process (all its namespaces).
    pub clone_us: u64,
    /// Supervisor: interfaces moved into the jail (`iface_own`, MACVLAN).
    pub parent_net_us: u64,
    /// Supervisor: the jail's cgroup created and the child attached.
    pub cgroup_us: u64,
    /// Supervisor: uid/gid maps written.
    pub id_maps_us: u64,
    /// Child: waiting for the supervisor's part (clone to "proceed").
    pub child_wait_us: u64,
    /// Child: uid/gid switch.
    pub ids_us: u64,
    /// Child: the whole mount tree, pivot_root included.
    pub mounts_us: u64,
    /// Child: lo, MACVLAN address, traffic rules.
    pub child_net_us: u64,
    /// Child: hostname, capabilities, CPUs, rlimits, personality, setsid,
    /// close-on-exec marks.
    pub process_us: u64,
    /// Child: seccomp filters installed and execve done (until the
    /// supervisor sees the exec).
    pub seccomp_exec_us: u64,
    /// The program's run: exec to reap.
    pub run_us: u64,
    /// Supervisor: cgroup accounting read and directories removed.
    pub teardown_us: u64,
}

/// Everything the report holds: the `--run_report` JSON document, field
/// for field (ours; nsjail has no run report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// nsjail's exit code.
    pub exit_code: i32,
    /// How the jail ended.
    pub status: Status,
    /// The terminating signal, if any.
    pub signal: Option<i32>,
    /// Wall-clock run time in ms (clone to reap).
    pub wall_ms: u64,
    /// User CPU time in ms (see `cpu_source`).
    pub user_ms: u64,
    /// System CPU time in ms (see `cpu_source`).
    pub sys_ms: u64,
    /// Where `user_ms`/`sys_ms` come from (ours): `cgroup` (every process
    /// the jail had, killed ones included) or `rusage` (the jail's first
    /// process and the descendants it reaped, as `wait4` tells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_source: Option<String>,
    /// Peak RSS in KiB.
    pub max_rss_kb: u64,
    /// Syscall name (or number) for seccomp kills, when known, from the
    /// table of `syscall_arch`.
    pub syscall: Option<String>,
    /// The architecture of the killed call, from the kernel's audit record
    /// (`x86_64`, `i386` for `int 0x80`, `x32`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall_arch: Option<String>,
    /// Setup failure reason.
    pub error: Option<String>,
    /// cgroup statistics.
    #[serde(flatten)]
    pub cgroup: CgroupFields,
    /// LISTEN: the client's address (`[::ffff:127.0.0.1]:40760`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// RERUN/LISTEN: the sequence number of this run (1, 2, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    /// Where the launch's time went (absent for a jail that failed before
    /// its exec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases_us: Option<Phases>,
    /// The signal nsjail got that made it end the jail (status `stopped`,
    /// or `exited` when the jail exited by itself after a forwarded one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<i32>,
    /// user_net NSTUN: the jail's network counters (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<crate::usernet::NetCounters>,
}

impl Report {
    /// A report for a failure before the program ran.
    pub fn setup_failed(error: String, wall_ms: u64) -> Report {
        Report {
            exit_code: 255,
            status: Status::SetupFailed,
            signal: None,
            wall_ms,
            user_ms: 0,
            sys_ms: 0,
            cpu_source: None,
            max_rss_kb: 0,
            syscall: None,
            syscall_arch: None,
            error: Some(error),
            cgroup: CgroupFields::default(),
            remote: None,
            net: None,
            run: None,
            phases_us: None,
            stopped_by: None,
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A report read back from its JSON document.
    ///
    /// # Errors
    /// The serde error when `v` is not a run report.
    pub fn from_json(v: Value) -> Result<Report, serde_json::Error> {
        serde_json::from_value(v)
    }

    /// The document as one line (RERUN/LISTEN: one line per run).
    pub fn to_line(&self) -> String {
        let mut s = self.to_json().to_string();
        s.push('\n');
        s
    }

    /// Write the report to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text =
            serde_json::to_string_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        text.push('\n');
        write_file(path, text.as_bytes())
    }
}

/// Replace the content of the report file `path` with `text`. Reports are
/// written by nsjail (often root) after the jail ran, possibly into a
/// directory the jail could write: a symlink there is never followed (it
/// could point at any host file) and a FIFO, socket or device is refused
/// without blocking.
pub fn write_file(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o666)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::other(
                "it is a symlink, which a report never follows: remove it, or write the report where the jail cannot",
            ),
            Some(libc::ENXIO) => std::io::Error::other(
                "it is a FIFO or socket, not a file: remove it, or write the report where the jail cannot",
            ),
            _ => e,
        })?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other(
            "it is not a regular file: remove it, or write the report where the jail cannot",
        ));
    }
    f.set_len(0)?;
    f.write_all(text)
}

/// `--run_report` in RERUN and LISTEN: one JSON line appended per run,
/// each with a single `write` on an `O_APPEND` descriptor (so lines from
/// concurrent writers never interleave).
#[derive(Debug)]
pub struct LineSink {
    file: std::fs::File,
}

impl LineSink {
    /// Open (create) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<LineSink> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(LineSink { file })
    }

    /// Append one report line; a failure is logged, never fatal.
    pub fn append(&self, r: &Report) {
        use std::io::Write;
        if let Err(e) = (&self.file).write_all(r.to_line().as_bytes()) {
            log::warn!("couldn't append to the run report (--run_report): {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields() {
        let mut r =
            Report::setup_failed("execve('/x') failed: No such file or directory".into(), 3);
        r.cgroup.oom_killed = Some(false);
        let v = r.to_json();
        assert_eq!(v["exit_code"], 255);
        assert_eq!(v["status"], "setup_failed");
        assert!(v["signal"].is_null());
        assert_eq!(v["wall_ms"], 3);
        assert_eq!(v["oom_killed"], false);
        assert!(v.get("pids_peak").is_none());
        assert!(v["error"].as_str().unwrap().contains("/x"));
        assert!(v.get("remote").is_none());
    }

    #[test]
    fn line_has_remote_and_run() {
        let mut r = Report::setup_failed("x".into(), 1);
        r.remote = Some("[::ffff:127.0.0.1]:4000".into());
        r.run = Some(7);
        let l = r.to_line();
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1, "{l}");
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["remote"], "[::ffff:127.0.0.1]:4000");
        assert_eq!(v["run"], 7);
    }

    #[test]
    fn every_status_has_its_documented_name() {
        let all = [
            (Status::Exited, "exited"),
            (Status::Signaled, "signaled"),
            (Status::TimeLimit, "time_limit"),
            (Status::Seccomp, "seccomp"),
            (Status::Oom, "oom"),
            (Status::RlimitCpu, "rlimit_cpu"),
            (Status::SetupFailed, "setup_failed"),
        ];
        for (st, name) in all {
            let mut r = Report::setup_failed("x".into(), 1);
            r.status = st;
            assert_eq!(r.to_json()["status"], name);
        }
    }

    #[test]
    fn signal_death_reports_the_signal_and_no_error() {
        let mut r = Report::setup_failed(String::new(), 9);
        r.status = Status::Signaled;
        r.exit_code = 128 + libc::SIGTERM;
        r.signal = Some(libc::SIGTERM);
        r.error = None;
        r.syscall = None;
        let v = r.to_json();
        assert_eq!(v["status"], "signaled");
        assert_eq!(v["signal"], libc::SIGTERM);
        assert_eq!(v["exit_code"], 128 + libc::SIGTERM);
        assert!(v["error"].is_null() && v["syscall"].is_null());
    }
}
