//! Errors of the cgroup module. Each says what failed, on which path, with
//! which value and errno, and what to change.

use std::io;
use std::path::PathBuf;

/// A cgroup operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A requested limit can be provided by neither cgroup version.
    #[error(
        "cgroup limit {limit} cannot be applied: cgroup v2: {v2}; cgroup v1: {v1}. \
         Fix one of those, or remove the limit from the config"
    )]
    Unavailable {
        /// The config fields concerned (`cgroup_mem_max=134217728`).
        limit: String,
        /// Why v2 cannot provide it.
        v2: String,
        /// Why v1 cannot provide it.
        v1: String,
    },
    /// mkdir of a cgroup directory failed.
    #[error("cgroup: mkdir('{path}', 0700) for {limit} failed: {source}; {hint}")]
    Mkdir {
        path: PathBuf,
        limit: String,
        #[source]
        source: io::Error,
        hint: String,
    },
    /// A jail's cgroup directory exists already and is not a leftover we
    /// may remove (ours: a jail never adopts a cgroup it did not create).
    #[error(
        "cgroup: '{path}' for {limit} already exists and is not ours to reuse: {why}; a jail \
         never adopts a cgroup it did not create: remove it once its cgroup.procs is empty, or \
         set another cgroup parent (cgroup_*_parent / cgroupv2_mount)"
    )]
    Exists {
        path: PathBuf,
        limit: String,
        why: String,
    },
    /// Writing a control file failed.
    #[error("cgroup: writing '{value}' to '{path}' for {limit} failed: {source}; {hint}")]
    Write {
        path: PathBuf,
        value: String,
        limit: String,
        #[source]
        source: io::Error,
        hint: String,
    },
    /// Removing a jail's cgroup directory failed.
    #[error(
        "cgroup: rmdir('{path}') failed: {source}; processes are probably still in it \
         (see its cgroup.procs); kill them and remove the directory by hand"
    )]
    Rmdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A short hint for a write/mkdir errno.
pub(crate) fn hint_for(e: &io::Error, what: &str) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => {
            format!("run nsjail as root or delegate {what} to its user")
        }
        Some(libc::ENOENT) => format!(
            "{what} does not exist: check the cgroup mount path and that the controller is \
             mounted there"
        ),
        Some(libc::EINVAL) => {
            "the kernel rejected the value: check the limit (memsw must be >= mem_max)".into()
        }
        Some(libc::EBUSY) => format!(
            "{what} is busy: the no-internal-process rule (a cgroup with processes cannot \
             enable controllers for its children)"
        ),
        Some(libc::ENOSPC) => "the cgroup hierarchy is full (cgroup.max.descendants)".into(),
        Some(libc::ESRCH) => "the jailed process is already gone".into(),
        _ => format!("check {what}"),
    }
}
