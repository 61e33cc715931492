//! `seccomp_unotify`: trace a jail's file and socket syscalls with a seccomp
//! user-notification filter and report what it touched (nsjail §9).
//!
//! * The child installs `USER_NOTIF { <traced syscalls> } DEFAULT ALLOW`
//!   with `SECCOMP_FILTER_FLAG_NEW_LISTENER` just before the main policy,
//!   sends the listener descriptor to the supervisor over the launch
//!   socketpair (see [`crate::protocol`]) and waits for the supervisor's ack.
//! * The supervisor has no extra thread: the listener is one more descriptor
//!   in its wait loops ([`Tracer::poll_in`] in ONCE/RERUN and while a jail
//!   starts, [`Tracer::listener`]/[`Tracer::serve`] in LISTEN). Each notification is decoded (path
//!   arguments read from `/proc/PID/mem`, resolved against the jail's cwd or
//!   dirfd, checked in the jail's root and on the host; open flags; socket
//!   type and address), kept only when `SECCOMP_IOCTL_NOTIF_ID_VALID` says the
//!   data came from the still-waiting caller, and always answered with
//!   `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the jail behaves exactly as without
//!   tracing.
//! * One jail is traced at a time ([`Tracer::claim`]); a jail started while
//!   another is traced runs untraced (logged). RERUN traces each run in turn.
//! * [`Tracer::finish`] logs the aggregate (`unotify.Stat` text proto: `fs_access`
//!   and `net_access` entries with counts) at INFO and writes it to
//!   `seccomp_unotify_report`.
//!
//! Differences from nsjail, on purpose: `execve` records show `argv` but not
//! the environment (secrets live there); syscalls of a foreign architecture
//! (32-bit calls on x86_64) are let through untraced instead of killed; the
//! filter is not installed at all for a jail that will not be traced (nsjail
//! closes the listener, which makes every traced call fail with ENOSYS);
//! a run that traced nothing logs one line and still writes the (empty)
//! report file. EXECVE mode has no supervisor left to answer: it warns and
//! runs untraced.

//!
//! Modules: [`install`] (child side), `decode` (one notification → records),
//! `stats` (aggregation and the text-proto report), `raw` (the ioctls).

mod decode;
pub mod install;
mod raw;
mod stats;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use crate::seccomp::{self, Filter, SeccompError};
use crate::sys::{self, SysError};

use stats::Stats;

/// At most this many distinct `fs_access` + `net_access` entries are kept
/// (the jail chooses the paths; memory must stay bounded).
const MAX_ENTRIES: usize = 10_000;
/// At most this many distinct syscall/argument variants per entry.
const MAX_VARIANTS: usize = 64;
/// Longest path read from the jail.
const MAX_PATH: usize = 4096;
/// `argv` entries and bytes per entry shown for exec calls.
const MAX_ARGV: usize = 16;
const MAX_ARG_LEN: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Skip,
    /// A path (string pointer), relative to the last `Dirfd` or the cwd.
    Path,
    /// A directory descriptor for the next `Path`.
    Dirfd,
    /// open(2) flags of the last path.
    Flags,
    /// A permission mode.
    Octal,
    /// access(2) mode.
    Access,
    Uid,
    Gid,
    /// exec argv.
    Argv,
    /// A socket descriptor.
    Fd,
    /// A sockaddr pointer; its length is the next argument.
    Saddr,
    /// send flags.
    IFlags,
    Domain,
    SType,
    Proto,
    /// `struct open_how *` (openat2).
    OpenHow,
}

use Role::*;

/// The traced syscalls (kernel names; those missing on the native
/// architecture are left out) and what their arguments are.
const TRACED: &[(&str, [Role; 6])] = &[
    ("open", [Path, Flags, Skip, Skip, Skip, Skip]),
    ("stat", [Path, Skip, Skip, Skip, Skip, Skip]),
    ("lstat", [Path, Skip, Skip, Skip, Skip, Skip]),
    ("access", [Path, Access, Skip, Skip, Skip, Skip]),
    ("chmod", [Path, Octal, Skip, Skip, Skip, Skip]),
    ("chown", [Path, Uid, Gid, Skip, Skip, Skip]),
    ("lchown", [Path, Uid, Gid, Skip, Skip, Skip]),
    ("readlink", [Path, Skip, Skip, Skip, Skip, Skip]),
    ("mkdir", [Path, Octal, Skip, Skip, Skip, Skip]),
    ("mknod", [Path, Octal, Skip, Skip, Skip, Skip]),
    ("rmdir", [Path, Skip, Skip, Skip, Skip, Skip]),
    ("unlink", [Path, Skip, Skip, Skip, Skip, Skip]),
    ("execve", [Path, Argv, Skip, Skip, Skip, Skip]),
    ("chdir", [Path, Skip, Skip, Skip, Skip, Skip]),
    ("chroot", [Path, Skip, Skip, Skip, Skip, Skip]),
    ("openat", [Dirfd, Path, Flags, Skip, Skip, Skip]),
    ("openat2", [Dirfd, Path, OpenHow, Skip, Skip, Skip]),
    ("newfstatat", [Dirfd, Path, Skip, Skip, Skip, Skip]),
    ("statx", [Dirfd, Path, Skip, Skip, Skip, Skip]),
    ("faccessat", [Dirfd, Path, Access, Skip, Skip, Skip]),
    ("faccessat2", [Dirfd, Path, Access, Skip, Skip, Skip]),
    ("fchmodat", [Dirfd, Path, Octal, Skip, Skip, Skip]),
    ("fchmodat2", [Dirfd, Path, Octal, Skip, Skip, Skip]),
    ("fchownat", [Dirfd, Path, Uid, Gid, Skip, Skip]),
    ("readlinkat", [Dirfd, Path, Skip, Skip, Skip, Skip]),
    ("mkdirat", [Dirfd, Path, Octal, Skip, Skip, Skip]),
    ("mknodat", [Dirfd, Path, Octal, Skip, Skip, Skip]),
    ("unlinkat", [Dirfd, Path, Skip, Skip, Skip, Skip]),
    ("execveat", [Dirfd, Path, Argv, Skip, Skip, Skip]),
    ("rename", [Path, Path, Skip, Skip, Skip, Skip]),
    ("link", [Path, Path, Skip, Skip, Skip, Skip]),
    ("symlink", [Path, Path, Skip, Skip, Skip, Skip]),
    ("renameat", [Dirfd, Path, Dirfd, Path, Skip, Skip]),
    ("renameat2", [Dirfd, Path, Dirfd, Path, Skip, Skip]),
    ("linkat", [Dirfd, Path, Dirfd, Path, Skip, Skip]),
    ("symlinkat", [Path, Dirfd, Path, Skip, Skip, Skip]),
    ("connect", [Fd, Saddr, Skip, Skip, Skip, Skip]),
    ("bind", [Fd, Saddr, Skip, Skip, Skip, Skip]),
    ("sendto", [Fd, Skip, Skip, IFlags, Saddr, Skip]),
    ("socket", [Domain, SType, Proto, Skip, Skip, Skip]),
];

/// The tracing policy for `arch`. `#pragma x32`: tracing must not change what
/// the jail may do, so x32 numbers are left to DEFAULT ALLOW (the jail's own
/// policy still gives them the foreign-ABI verdict).
pub fn policy_text(arch: kafel::Arch) -> String {
    let names: Vec<&str> = TRACED
        .iter()
        .map(|t| t.0)
        .filter(|n| kafel::syscall_number(arch, n).is_some())
        .collect();
    format!(
        "USER_NOTIF {{\n  {}\n}}\nDEFAULT ALLOW\n#pragma x32\n",
        names.join(",\n  ")
    )
}

/// Compile the tracing filter for the native architecture.
pub fn compile_filter() -> Result<Filter, SeccompError> {
    seccomp::compile_tracing(&policy_text(kafel::Arch::native()))
}

/// Record one notification (only data read while the caller still waits
/// is about that caller) and let the call continue.
fn answer(stats: &mut Stats, l: BorrowedFd<'_>, n: &libc::seccomp_notif) {
    let recs = decode::decode(n);
    if raw::notif_id_valid(l, n.id) {
        for r in recs {
            stats.add(r);
        }
    }
    if let Err(e) = raw::notif_continue(l, n.id) {
        if e.raw_os_error() != Some(libc::ENOENT) {
            log::warn!("seccomp_unotify: SECCOMP_IOCTL_NOTIF_SEND failed: {e}");
        }
    }
}

/// The jail being traced.
struct Tracing {
    pid: i32,
    listener: OwnedFd,
}

/// The seccomp-notify tracer of one supervisor: at most one jail traced at
/// a time, its notifications answered from the supervisor's own wait loops,
/// the accesses aggregated into one report. An owned value: each
/// supervisor (or embedding program) has its own.
pub struct Tracer {
    /// `seccomp_unotify` is on.
    enabled: bool,
    /// A launch that will be traced is under way.
    claimed: bool,
    tracing: Option<Tracing>,
    stats: Stats,
    traced_jails: u64,
    report: Option<PathBuf>,
}

impl Tracer {
    /// A tracer for jails of `spec` (inactive unless `seccomp_unotify`).
    pub fn new(spec: &nsjail_config::spec::JailSpec) -> Tracer {
        Tracer {
            enabled: spec.unotify,
            claimed: false,
            tracing: None,
            stats: Stats::default(),
            traced_jails: 0,
            report: spec.unotify_report.clone(),
        }
    }

    /// Whether the jail about to start is to be traced: true when tracing is
    /// on and no other jail is traced or being launched traced (then the new
    /// jail runs untraced, logged). Ended by [`Tracer::attach`] or
    /// [`Tracer::unclaim`].
    pub fn claim(&mut self) -> bool {
        if !self.enabled {
            return false;
        }
        self.serve(); // notices a traced jail that is gone
        if self.claimed || self.tracing.is_some() {
            let who = self
                .tracing
                .as_ref()
                .map(|t| format!("pid={}", t.pid))
                .unwrap_or_else(|| "another jail being launched".to_string());
            log::info!(
                "seccomp_unotify: {who} is being traced; this jail is not traced (one jail at a time)"
            );
            return false;
        }
        self.claimed = true;
        true
    }

    /// The claimed launch ended without a listener (failed or not traced).
    pub fn unclaim(&mut self) {
        self.claimed = false;
    }

    /// Trace `pid` through `listener` (received from the child). Without a
    /// claim the listener is refused (closed) with a warning.
    pub fn attach(&mut self, pid: i32, listener: OwnedFd) {
        if !self.claimed {
            log::warn!("pid={pid} sent a seccomp_unotify listener it was not asked for; ignored");
            return;
        }
        self.claimed = false;
        self.tracing = Some(Tracing { pid, listener });
        self.traced_jails += 1;
        log::info!("seccomp_unotify: tracing the file and socket syscalls of pid={pid}");
    }

    /// The traced jail's listener, for an event loop (LISTEN adds it to its
    /// epoll set; closing it removes it).
    pub fn listener(&self) -> Option<BorrowedFd<'_>> {
        self.tracing.as_ref().map(|t| t.listener.as_fd())
    }

    /// Wait up to `timeout_ms` for `fd` to be readable, answering the traced
    /// jail's notifications meanwhile: returns whether `fd` is readable
    /// (false after a notification was served, so the caller re-checks its
    /// own state).
    pub fn poll_in(&mut self, fd: BorrowedFd<'_>, timeout_ms: i32) -> Result<bool, SysError> {
        let Some(t) = self.tracing.as_ref() else {
            return sys::poll_in(fd, timeout_ms);
        };
        let (ready, other) = sys::poll_two(fd, t.listener.as_fd(), timeout_ms)
            .map_err(|e| sys::err_from("poll", fd.as_raw_fd().to_string(), e))?;
        if other {
            self.serve();
        }
        Ok(ready)
    }

    /// Answer every pending notification; stop tracing once every traced
    /// process is gone.
    pub fn serve(&mut self) {
        // Bounded per call: the wait loops call again while more arrive.
        for _ in 0..256 {
            let Some(t) = &self.tracing else { return };
            let l = t.listener.as_fd();
            let (readable, hup) = sys::poll_now(l);
            if readable {
                match raw::notif_recv(l) {
                    Ok(n) => answer(&mut self.stats, l, &n),
                    // The caller went away between poll and receive.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => {}
                    Err(e) => {
                        log::error!(
                            "seccomp_unotify: SECCOMP_IOCTL_NOTIF_RECV failed: {e}; tracing stops"
                        );
                        self.tracing = None;
                        return;
                    }
                }
                continue;
            }
            if hup {
                log::debug!("seccomp_unotify: pid={} and its processes are gone", t.pid);
                self.tracing = None;
            }
            return;
        }
    }

    /// End of the run: answer what is left, stop tracing, log the report at
    /// INFO and write it to `seccomp_unotify_report` (when set).
    pub fn finish(&mut self) {
        if !self.enabled {
            return;
        }
        self.serve();
        self.tracing = None;
        let text = self.stats.render();
        if text.is_empty() {
            log::info!(
                "seccomp_unotify: no file or network access traced ({} jail(s) traced)",
                self.traced_jails
            );
        } else {
            log::info!("unotify report:\n{text}");
        }
        if let Some(path) = &self.report {
            if let Err(e) = crate::report::write_file(path, text.as_bytes()) {
                log::warn!(
                    "Couldn't write the seccomp_unotify report to '{}': {} (check seccomp_unotify_report)",
                    path.display(),
                    sys::errno_text(&e)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_compiles_and_names_exist() {
        let arch = kafel::Arch::native();
        let text = policy_text(arch);
        assert!(text.starts_with("USER_NOTIF {"), "{text}");
        assert!(text.contains("openat"), "{text}");
        assert!(text.contains("connect"), "{text}");
        compile_filter().expect("the tracing policy compiles");
        for arch in kafel::Arch::ALL {
            kafel::compile(
                &policy_text(arch),
                &kafel::CompileOptions {
                    arch,
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{arch}: {e}"));
        }
    }
}
