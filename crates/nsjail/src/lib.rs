//! The nsjail runtime: one module per concern.
//!
//! * [`sys`]: every raw system call, wrapped once;
//! * [`logging`]: nsjail's log line format;
//! * [`user`], [`mount`], [`net`], [`caps`], [`rlimit`], [`seccomp`]: the
//!   parts of the jail, used by [`child`] in nsjail's order;
//! * [`supervisor`]: ONCE mode (launch, time limit, signals, reaping);
//! * [`seccomp_report`]: naming the syscall of a seccomp kill;
//! * [`report`]: `--run_report` JSON;
//! * [`unotify`]: `seccomp_unotify` tracing and its report.

pub mod caps;
pub mod cgroup;
pub mod child;
pub mod execve;
pub mod launch;
pub mod listen;
pub mod logging;
pub mod mount;
pub mod net;
pub mod ns_init;
pub mod protocol;
pub mod report;
pub mod rlimit;
pub mod seccomp;
pub mod seccomp_report;
pub mod supervisor;
pub mod sys;
pub mod tty;
pub mod unotify;
pub mod user;
