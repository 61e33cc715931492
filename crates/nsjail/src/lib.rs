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

pub mod api;
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
pub mod usernet;

pub use api::{spawn_spec, Child, Command, Error, Output, Stdio};
pub use nsjail_config::spec::JailSpec;
pub use report::{Report, Status};

/// What `nsjail --version` prints: the version, then the build's features.
pub fn version_text() -> String {
    let arches: Vec<&str> = kafel::Arch::ALL.iter().map(|a| a.name()).collect();
    let libc = if cfg!(target_env = "musl") {
        "musl, static"
    } else {
        "glibc"
    };
    let mut v = format!(
        "nsjail {} (a Rust re-implementation of Google's nsjail)\n",
        env!("CARGO_PKG_VERSION")
    );
    v.push_str(&format!(
        "build: {}-linux ({libc})\n",
        std::env::consts::ARCH
    ));
    v.push_str(
        "kernel API: probed at run time, not chosen at build time: clone3, else clone; \
         mount_setattr(AT_RECURSIVE), else mount(2) remounts (--experimental_mnt auto); \
         cgroup v2 where asked and available, else v1\n",
    );
    v.push_str(&format!(
        "seccomp: Kafel policies compiled in-process for {} (this build runs {})\n",
        arches.join(", "),
        kafel::Arch::native().name()
    ));
    v
}

/// The generated documentation shipped in the package, as (path below
/// `crates/nsjail/doc/`, content): the man page and the bash, zsh and fish
/// completions, all from the option table behind `--help`.
pub fn docs_files() -> Vec<(&'static str, String)> {
    use nsjail_config::docs;
    vec![
        ("nsjail.1", docs::man_page(env!("CARGO_PKG_VERSION"))),
        ("completions/nsjail.bash", docs::bash_completion()),
        ("completions/_nsjail", docs::zsh_completion()),
        ("completions/nsjail.fish", docs::fish_completion()),
    ]
}
