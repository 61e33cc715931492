//! `--run_report FILE`: a JSON account of one jail run.

use std::path::Path;

use serde_json::{json, Map, Value};

/// How the jail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The program exited by itself.
    Exited,
    /// Killed by a signal (not seccomp, not the time limit).
    Signaled,
    /// Killed at the wall-clock time limit.
    TimeLimit,
    /// Killed by SIGSYS (seccomp).
    Seccomp,
    /// Killed by the cgroup OOM killer (the memory limit).
    Oom,
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
            Status::RlimitCpu => "rlimit_cpu",
            Status::SetupFailed => "setup_failed",
        }
    }
}

/// Optional cgroup statistics (filled when the jail had cgroups).
#[derive(Debug, Clone, Default)]
pub struct CgroupFields {
    /// The cgroup OOM killer fired.
    pub oom_killed: Option<bool>,
    /// Peak memory in bytes.
    pub mem_peak_bytes: Option<u64>,
    /// CPU usage in microseconds.
    pub cpu_usage_us: Option<u64>,
    /// Peak number of pids.
    pub pids_peak: Option<u64>,
}

/// Everything the report holds.
#[derive(Debug, Clone)]
pub struct Report {
    /// nsjail's exit code.
    pub exit_code: i32,
    /// How the jail ended.
    pub status: Status,
    /// The terminating signal, if any.
    pub signal: Option<i32>,
    /// Wall-clock run time in ms (clone to reap).
    pub wall_ms: u64,
    /// User CPU time in ms.
    pub user_ms: u64,
    /// System CPU time in ms.
    pub sys_ms: u64,
    /// Peak RSS in KiB.
    pub max_rss_kb: u64,
    /// Syscall name (or number) for seccomp kills, when known.
    pub syscall: Option<String>,
    /// Setup failure reason.
    pub error: Option<String>,
    /// cgroup statistics.
    pub cgroup: CgroupFields,
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
            max_rss_kb: 0,
            syscall: None,
            error: Some(error),
            cgroup: CgroupFields::default(),
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "exit_code": self.exit_code,
            "status": self.status.as_str(),
            "signal": self.signal,
            "wall_ms": self.wall_ms,
            "user_ms": self.user_ms,
            "sys_ms": self.sys_ms,
            "max_rss_kb": self.max_rss_kb,
            "syscall": self.syscall,
            "error": self.error,
        });
        let c = &self.cgroup;
        let mut extra = Map::new();
        if let Some(x) = c.oom_killed {
            extra.insert("oom_killed".into(), x.into());
        }
        if let Some(x) = c.mem_peak_bytes {
            extra.insert("mem_peak_bytes".into(), x.into());
        }
        if let Some(x) = c.cpu_usage_us {
            extra.insert("cpu_usage_us".into(), x.into());
        }
        if let Some(x) = c.pids_peak {
            extra.insert("pids_peak".into(), x.into());
        }
        if let Value::Object(m) = &mut v {
            m.extend(extra);
        }
        v
    }

    /// Write the report to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text =
            serde_json::to_string_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(path, text)
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
    }
}
