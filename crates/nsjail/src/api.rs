//! The library API: run a command in a jail from Rust, the way
//! [`std::process::Command`] runs a process (ours; nsjail has no library).
//!
//! ```
//! use std::time::Duration;
//!
//! let out = nsjail::Command::new("/bin/echo")
//!     .arg("hello")
//!     .chroot("/")
//!     .time_limit(Duration::from_secs(5))
//!     .output()?;
//! assert_eq!(out.stdout, b"hello\n");
//! assert_eq!(out.report.status, nsjail::Status::Exited);
//! # Ok::<(), nsjail::Error>(())
//! ```
//!
//! A [`Command`] starts from nsjail's command-line defaults (every
//! namespace, the empty root tmpfs, `/proc`, nsjail's rlimits), takes config
//! files or texts and any nsjail flag, and is lowered with the same code as
//! the `nsjail` binary ([`Command::spec`] is what `--check` validates). Only
//! ONCE mode is run by the library.
//!
//! # How a jail is run, and why it is safe in a multi-threaded program
//!
//! [`Command::spawn`] forks (through the C library, whose own locks stay
//! consistent) a *supervisor process* that has only the calling thread. It
//! sets up the cgroups, clones the jail, supervises it (time limit, reaping,
//! the run report, cleanup) and sends the [`Report`] back over a pipe; the
//! caller gets a [`Child`] whose [`Child::wait`] returns it. So:
//! * the jail's child never runs in a copy of a multi-threaded process: no
//!   lock another thread held at `clone` can deadlock it;
//! * the caller's signal mask and dispositions are never touched (the
//!   supervisor blocks signals in its own process);
//! * many jails can be run concurrently from many threads; each has its
//!   own supervisor (and seccomp-notify tracer).
//!
//! The supervisor process logs nothing (the `log` backend of the embedding
//! program may hold locks of other threads); everything it knows is in the
//! report. Between `fork` and its exit it takes no Rust lock of the caller.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nsjail_config::spec::{JailSpec, RunMode, SpecError};
use nsjail_config::{ConfigError, Parsed};

use crate::cgroup::Cgroups;
use crate::child::ChildIo;
use crate::report::Report;
use crate::sys::{self, Forked};

/// What the library can fail with (the jail's own failures are in the
/// [`Report`]: `status: setup_failed` with its `error`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or a config is not valid (as the `nsjail` binary says it).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The config cannot become a jail (as `nsjail --check` says it).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The jail asks for something the library does not run.
    #[error("{0}")]
    Unsupported(String),
    /// An operating-system call of the library failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The supervisor process ended without a report (it was killed).
    #[error("the jail's supervisor process (pid {pid}) ended without a report ({how}); the jail was not run to its end")]
    NoReport {
        /// Its pid.
        pid: i32,
        /// How it ended.
        how: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

fn sys_err(what: &str) -> impl FnOnce(sys::SysError) -> Error + '_ {
    move |e| Error::Io {
        what: what.to_string(),
        source: e.source,
    }
}

/// Where a standard stream of the jailed program goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdio {
    /// The caller's own descriptor (the default).
    #[default]
    Inherit,
    /// A pipe the caller reads ([`Child::stdout`]) or writes ([`Child::stdin`]).
    Piped,
    /// `/dev/null`.
    Null,
}

/// A jail to run, built in code. Every setter returns the builder.
#[derive(Debug, Clone)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    flags: Vec<OsString>,
    configs: Vec<(PathBuf, Vec<u8>)>,
    stdio: [Stdio; 3],
}

impl Command {
    /// A jail running `program` (an absolute path: nsjail runs it with
    /// `execv`, no `PATH` search) with nsjail's defaults.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            flags: Vec::new(),
            configs: Vec::new(),
            stdio: [Stdio::Inherit; 3],
        }
    }

    /// One argument of the program.
    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    /// Arguments of the program.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Any nsjail command-line flag, with its value as a second call or in
    /// the same string (`"--rlimit_as"`, `"512"`; `"--disable_proc"`).
    /// Applied in order after the configs, as on nsjail's command line.
    pub fn flag(&mut self, f: impl AsRef<OsStr>) -> &mut Command {
        self.flags.push(f.as_ref().to_os_string());
        self
    }

    /// Several nsjail flags.
    pub fn flags<I, S>(&mut self, flags: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.flags
            .extend(flags.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// A config file (protobuf text or JSON), as `--config FILE`.
    pub fn config_file(&mut self, path: impl AsRef<Path>) -> &mut Command {
        self.flag("--config").flag(path.as_ref())
    }

    /// A config held in memory (protobuf text or JSON), applied before the
    /// flags; `name` names it in error messages.
    pub fn config_text(&mut self, name: impl AsRef<Path>, text: impl AsRef<[u8]>) -> &mut Command {
        self.configs
            .push((name.as_ref().to_path_buf(), text.as_ref().to_vec()));
        self
    }

    /// `--chroot DIR`: bind `dir` read-only as the jail's root.
    pub fn chroot(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.flag("--chroot").flag(dir.as_ref())
    }

    /// `-R SRC:DST`: a read-only bind mount.
    pub fn bind_ro(&mut self, src: impl AsRef<Path>, dst: impl AsRef<Path>) -> &mut Command {
        let v = bind_spec(src.as_ref(), dst.as_ref());
        self.flag("-R").flag(v)
    }

    /// `-B SRC:DST`: a read-write bind mount.
    pub fn bind_rw(&mut self, src: impl AsRef<Path>, dst: impl AsRef<Path>) -> &mut Command {
        let v = bind_spec(src.as_ref(), dst.as_ref());
        self.flag("-B").flag(v)
    }

    /// `-T DST`: a tmpfs.
    pub fn tmpfs(&mut self, dst: impl AsRef<Path>) -> &mut Command {
        self.flag("-T").flag(dst.as_ref())
    }

    /// `-E NAME=VALUE`: an environment variable of the program (nsjail's
    /// own environment is not passed unless [`Command::keep_env`]).
    pub fn env(&mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        let mut v = name.as_ref().to_os_string();
        v.push("=");
        v.push(value.as_ref());
        self.flag("-E").flag(v)
    }

    /// `-e`: pass the caller's environment.
    pub fn keep_env(&mut self) -> &mut Command {
        self.flag("--keep_env")
    }

    /// `-D DIR`: the working directory inside the jail.
    pub fn cwd(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.flag("--cwd").flag(dir.as_ref())
    }

    /// `-t SECS`: the wall-clock time limit (nsjail counts whole seconds:
    /// rounded up; zero = none).
    pub fn time_limit(&mut self, limit: Duration) -> &mut Command {
        let secs = limit.as_secs() + u64::from(limit.subsec_nanos() > 0);
        self.flag("--time_limit").flag(secs.to_string())
    }

    /// `--seccomp_string`: a Kafel policy.
    pub fn seccomp_policy(&mut self, kafel: impl AsRef<str>) -> &mut Command {
        self.flag("--seccomp_string").flag(kafel.as_ref())
    }

    /// `--cgroup_mem_max BYTES` (cgroup v2 or v1 memory limit).
    pub fn memory_limit(&mut self, bytes: u64) -> &mut Command {
        self.flag("--cgroup_mem_max").flag(bytes.to_string())
    }

    /// `--cgroup_pids_max N`.
    pub fn pids_limit(&mut self, n: u64) -> &mut Command {
        self.flag("--cgroup_pids_max").flag(n.to_string())
    }

    /// The program's stdin.
    pub fn stdin(&mut self, s: Stdio) -> &mut Command {
        self.stdio[0] = s;
        self
    }

    /// The program's stdout.
    pub fn stdout(&mut self, s: Stdio) -> &mut Command {
        self.stdio[1] = s;
        self
    }

    /// The program's stderr.
    pub fn stderr(&mut self, s: Stdio) -> &mut Command {
        self.stdio[2] = s;
        self
    }

    /// The jail this command describes, validated and lowered exactly as
    /// `nsjail --check` and a launch of the binary do.
    ///
    /// ```
    /// let spec = nsjail::Command::new("/bin/true")
    ///     .config_text("inline.cfg", "hostname: \"box\"")
    ///     .flags(["--rlimit_as", "64"])
    ///     .spec()?;
    /// assert_eq!(spec.process.hostname, "box");
    /// let as_limit = spec.rlimits.iter().find(|l| l.name == "RLIMIT_AS").unwrap();
    /// assert_eq!(as_limit.value, 64 << 20); // nsjail's MiB, in bytes
    ///
    /// let bad = nsjail::Command::new("/bin/true").flags(["--macvlan_iface", "eth0", "--macvlan_vs_ip", "bogus"]).spec();
    /// assert!(bad.unwrap_err().to_string().contains("macvlan_vs_ip"));
    /// # Ok::<(), nsjail::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::Spec`] with nsjail's one-line message.
    pub fn spec(&self) -> Result<JailSpec, Error> {
        let mut argv = self.flags.clone();
        argv.push("--".into());
        argv.push(self.program.clone());
        argv.extend(self.args.iter().cloned());
        let configs: Vec<(&Path, &[u8])> = self
            .configs
            .iter()
            .map(|(n, t)| (n.as_path(), t.as_slice()))
            .collect();
        match nsjail_config::parse_args_with_configs(&configs, argv)? {
            Parsed::Run(jail) => Ok(jail.lower()?),
            Parsed::Help | Parsed::Version => Err(Error::Unsupported(
                "--help and --version are not a jail: remove them from the flags".to_string(),
            )),
        }
    }

    /// Start the jail; returns once the supervisor process runs (the jail's
    /// own set-up failures are in the report of [`Child::wait`]).
    ///
    /// ```
    /// use std::io::Read;
    /// use nsjail::{Command, Status, Stdio};
    ///
    /// let mut child = Command::new("/bin/sh")
    ///     .args(["-c", "echo out; exit 7"])
    ///     .chroot("/")
    ///     .stdout(Stdio::Piped)
    ///     .spawn()?;
    /// let mut text = String::new();
    /// child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    /// let report = child.wait()?;
    /// assert_eq!(text, "out\n");
    /// assert_eq!((report.status, report.exit_code), (Status::Exited, 7));
    /// # Ok::<(), nsjail::Error>(())
    /// ```
    ///
    /// # Errors
    /// Invalid settings, a mode other than ONCE, or a failed pipe/fork.
    pub fn spawn(&self) -> Result<Child, Error> {
        spawn_spec(&self.spec()?, self.stdio)
    }

    /// Run the jail to its end with stdout and stderr captured (stdin from
    /// `/dev/null` unless set otherwise).
    ///
    /// # Errors
    /// As [`Command::spawn`] and [`Child::wait`].
    pub fn output(&self) -> Result<Output, Error> {
        let mut stdio = self.stdio;
        if self.stdio[0] == Stdio::Inherit {
            stdio[0] = Stdio::Null;
        }
        stdio[1] = Stdio::Piped;
        stdio[2] = Stdio::Piped;
        let mut child = spawn_spec(&self.spec()?, stdio)?;
        let mut out_pipe = child.stdout.take();
        let err_pipe = child.stderr.take();
        // Read stderr on a thread so that neither pipe can fill up and stall
        // the jail.
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut e) = err_pipe {
                let _ = e.read_to_end(&mut buf);
            }
            buf
        });
        let mut stdout = Vec::new();
        if let Some(o) = out_pipe.as_mut() {
            o.read_to_end(&mut stdout)
                .map_err(io_err("reading the jail's stdout"))?;
        }
        let stderr = err_reader.join().unwrap_or_default();
        let report = child.wait()?;
        Ok(Output {
            report,
            stdout,
            stderr,
        })
    }

    /// Run the jail to its end with the stdio as set; its report.
    ///
    /// # Errors
    /// As [`Command::spawn`] and [`Child::wait`].
    pub fn status(&self) -> Result<Report, Error> {
        self.spawn()?.wait()
    }
}

fn bind_spec(src: &Path, dst: &Path) -> OsString {
    let mut v = src.as_os_str().to_os_string();
    v.push(":");
    v.push(dst.as_os_str());
    v
}

/// What [`Command::output`] returns.
#[derive(Debug, Clone)]
pub struct Output {
    /// The run report.
    pub report: Report,
    /// Everything the program wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the program wrote to stderr.
    pub stderr: Vec<u8>,
}

/// A running jail. Dropping it without [`Child::wait`] stops the jail
/// (SIGTERM to its supervisor, which kills and cleans up) and reaps the
/// supervisor: nothing is left behind.
#[derive(Debug)]
pub struct Child {
    pid: i32,
    report: Option<File>,
    /// The program's stdin, with [`Stdio::Piped`].
    pub stdin: Option<File>,
    /// The program's stdout, with [`Stdio::Piped`].
    pub stdout: Option<File>,
    /// The program's stderr, with [`Stdio::Piped`].
    pub stderr: Option<File>,
    done: bool,
}

impl Child {
    /// The pid of the jail's supervisor process (the caller's child).
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Stop the jail: its supervisor kills it, cleans up and reports
    /// (`exit_code` 128+15).
    ///
    /// # Errors
    /// The kill failed (the supervisor is already gone: not an error).
    pub fn kill(&mut self) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        sys::kill(self.pid, libc::SIGTERM).map_err(sys_err("signalling the supervisor"))
    }

    /// Wait for the jail to end (its time limit included) and return its
    /// report. Closes [`Child::stdin`] first, as `std` does.
    ///
    /// # Errors
    /// [`Error::NoReport`] when the supervisor was killed from outside.
    pub fn wait(&mut self) -> Result<Report, Error> {
        drop(self.stdin.take());
        let mut text = Vec::new();
        if let Some(mut r) = self.report.take() {
            r.read_to_end(&mut text)
                .map_err(io_err("reading the jail's report"))?;
        }
        let reaped = if self.done {
            None
        } else {
            self.done = true;
            Some(sys::reap(self.pid).map_err(sys_err("waiting for the supervisor"))?)
        };
        serde_json::from_slice::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| Report::from_json(v).ok())
            .ok_or_else(|| Error::NoReport {
                pid: self.pid,
                how: reaped
                    .map(|r| format!("{:?}", r.state))
                    .unwrap_or_else(|| "already waited for".to_string()),
            })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.done {
            let _ = sys::kill(self.pid, libc::SIGTERM);
            drop(self.report.take());
            let _ = sys::reap(self.pid);
        }
    }
}

/// One standard stream of the jail: the descriptor the jail gets (in the
/// supervisor) and the caller's end, if piped.
struct StreamEnds {
    jail: Option<OwnedFd>,
    caller: Option<File>,
}

fn stream(which: usize, how: Stdio) -> Result<StreamEnds, Error> {
    match how {
        Stdio::Inherit => Ok(StreamEnds {
            jail: None,
            caller: None,
        }),
        Stdio::Null => Ok(StreamEnds {
            jail: Some(
                sys::open("/dev/null", libc::O_RDWR | libc::O_CLOEXEC, 0)
                    .map_err(sys_err("opening /dev/null"))?,
            ),
            caller: None,
        }),
        Stdio::Piped => {
            let (r, w) = sys::pipe_cloexec().map_err(sys_err("creating a pipe"))?;
            let (jail, caller) = if which == 0 { (r, w) } else { (w, r) };
            Ok(StreamEnds {
                jail: Some(jail),
                caller: Some(File::from(caller)),
            })
        }
    }
}

/// Start a jail from a spec built or changed in code (see
/// [`Command::spec`]): its stdin, stdout and stderr as given.
///
/// # Errors
/// A mode other than ONCE, or a failed pipe/fork.
pub fn spawn_spec(spec: &JailSpec, stdio: [Stdio; 3]) -> Result<Child, Error> {
    if spec.mode != RunMode::Once {
        return Err(Error::Unsupported(format!(
            "the library runs ONCE mode only, the jail asks for {:?}: use the nsjail binary for LISTEN, RERUN and EXECVE",
            spec.mode
        )));
    }
    let mut ends = Vec::with_capacity(3);
    for (i, s) in stdio.into_iter().enumerate() {
        ends.push(stream(i, s)?);
    }
    let (report_r, report_w) = sys::pipe_cloexec().map_err(sys_err("creating a pipe"))?;
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let inherited = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    let jail_fds: [BorrowedFd<'_>; 3] =
        [0, 1, 2].map(|i| ends[i].jail.as_ref().map_or(inherited[i], |f| f.as_fd()));
    match sys::fork().map_err(sys_err("forking the jail's supervisor"))? {
        Forked::Child => supervisor_process(spec, jail_fds, report_w.as_fd()),
        Forked::Parent(pid) => {
            drop(report_w);
            let mut callers = ends.into_iter().map(|e| e.caller);
            Ok(Child {
                pid,
                report: Some(File::from(report_r)),
                stdin: callers.next().flatten(),
                stdout: callers.next().flatten(),
                stderr: callers.next().flatten(),
                done: false,
            })
        }
    }
}

/// The forked supervisor: only the calling thread exists here. Logs
/// nothing, keeps only its own descriptors, runs the jail in ONCE mode and
/// writes the report.
fn supervisor_process(spec: &JailSpec, jail_fds: [BorrowedFd<'_>; 3], report: BorrowedFd<'_>) -> ! {
    // The embedding program's log backend may hold locks of threads that
    // do not exist here: every log call becomes a no-op.
    log::set_max_level(log::LevelFilter::Off);
    let mut keep: Vec<RawFd> = jail_fds.iter().map(|f| f.as_raw_fd()).collect();
    keep.push(report.as_raw_fd());
    keep.extend(spec.process.pass_fds.iter().copied());
    // Other threads' descriptors (their pipes) must not stay open here.
    sys::close_all_except(&keep);
    let started = std::time::Instant::now();
    let report_of = |r: Result<Report, String>| match r {
        Ok(r) => r,
        Err(e) => Report::setup_failed(e, started.elapsed().as_millis() as u64),
    };
    let result = match Cgroups::setup(&spec.cgroup) {
        Ok(cgroups) => {
            let io = ChildIo {
                stdio: Some(jail_fds),
                ..ChildIo::default()
            };
            let r =
                crate::supervisor::run_once_with(spec, &cgroups, &io).map_err(|e| e.to_string());
            cgroups.teardown();
            report_of(r)
        }
        Err(e) => report_of(Err(format!(
            "{e} (the cgroup limits of the jail cannot be set up)"
        ))),
    };
    let _ = sys::write_all(report, result.to_line().as_bytes());
    sys::exit_now(0)
}
