//! `seccomp_unotify`: trace a jail's file and socket syscalls with a seccomp
//! user-notification filter and report what it touched (nsjail §9).
//!
//! * The child installs `USER_NOTIF { <traced syscalls> } DEFAULT ALLOW`
//!   with `SECCOMP_FILTER_FLAG_NEW_LISTENER` just before the main policy,
//!   sends the listener descriptor to the supervisor over the launch
//!   socketpair (`SCM_RIGHTS`, with [`FD_MARKER`]) and waits for `'D'`.
//! * The supervisor has no extra thread: the listener is one more descriptor
//!   in its wait loops ([`poll_in`] in ONCE/RERUN and while a jail starts,
//!   [`epoll_add`]/[`serve`] in LISTEN). Each notification is decoded (path
//!   arguments read from `/proc/PID/mem`, resolved against the jail's cwd or
//!   dirfd, checked in the jail's root and on the host; open flags; socket
//!   type and address), kept only when `SECCOMP_IOCTL_NOTIF_ID_VALID` says the
//!   data came from the still-waiting caller, and always answered with
//!   `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the jail behaves exactly as without
//!   tracing.
//! * One jail is traced at a time ([`try_claim`]); a jail started while
//!   another is traced runs untraced (logged). RERUN traces each run in turn.
//! * [`finish`] logs the aggregate (`unotify.Stat` text proto: `fs_access`
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

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use crate::seccomp::{self, Filter, SeccompError};
use crate::sys::{self, SysError};

/// The byte that carries the listener descriptor (child → supervisor).
pub const FD_MARKER: u8 = 0x0e;
/// A parked (RERUN) child is released with this byte instead of `'G'` when
/// it is to be traced.
pub const GO_TRACED: u8 = b'T';
/// The supervisor's answer once it holds the listener.
const ACK: u8 = b'D';

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

// ---------------------------------------------------------------------------
// Child side

/// Child, right before the main policy: install the tracing filter, hand the
/// listener to the supervisor over `sync`, wait for its `'D'`. Between the
/// install and the send only untraced calls happen (sendmsg, close).
pub fn install_in_child(f: &Filter, sync: RawFd) -> Result<(), String> {
    rustix::thread::set_no_new_privs(true)
        .map_err(|e| format!("prctl(PR_SET_NO_NEW_PRIVS) failed: {e}"))?;
    let listener = raw::install_listener(f.insns()).map_err(|e| {
        format!("{e} (seccomp_unotify needs a kernel with SECCOMP_FILTER_FLAG_NEW_LISTENER, 5.0+; drop --seccomp_unotify)")
    })?;
    raw::send_fd(sync, FD_MARKER, listener.as_raw_fd())
        .map_err(|e| format!("sending the seccomp_unotify listener to nsjail failed: {e}"))?;
    drop(listener);
    let mut b = [0u8; 1];
    match sys::read(sync, &mut b) {
        Ok(1) if b[0] == ACK => Ok(()),
        _ => sys::exit_now(255), // the supervisor is gone or failed; it reports
    }
}

// ---------------------------------------------------------------------------
// Supervisor side: who is traced

struct Tracing {
    pid: i32,
    listener: OwnedFd,
}

#[derive(Default)]
struct State {
    /// A launch holds a [`Claim`].
    claimed: bool,
    tracing: Option<Tracing>,
    stats: Stats,
    traced_jails: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut g = STATE.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(State::default))
}

/// The right to trace the jail being launched (at most one exists). Dropped
/// without [`attach`], it frees the tracer again.
#[derive(Debug)]
pub struct Claim(());

impl Drop for Claim {
    fn drop(&mut self) {
        with(|s| s.claimed = false);
    }
}

/// Claim the tracer for the jail about to start; `None` when tracing is off
/// or another jail is being traced (logged).
pub fn try_claim(enabled: bool) -> Option<Claim> {
    if !enabled {
        return None;
    }
    with(|s| {
        s.serve(); // notices a traced jail that is gone
        if s.claimed || s.tracing.is_some() {
            let who = s
                .tracing
                .as_ref()
                .map(|t| format!("pid={}", t.pid))
                .unwrap_or_else(|| "another jail being launched".to_string());
            log::info!(
                "seccomp_unotify: {who} is being traced; this jail is not traced (one jail at a time)"
            );
            return None;
        }
        s.claimed = true;
        Some(Claim(()))
    })
}

fn attach(claim: Claim, pid: i32, listener: OwnedFd) {
    with(|s| {
        s.tracing = Some(Tracing { pid, listener });
        s.traced_jails += 1;
    });
    drop(claim);
    log::info!("seccomp_unotify: tracing the file and socket syscalls of pid={pid}");
}

/// Answer every pending notification; stop tracing once every traced
/// process is gone.
pub fn serve() {
    with(|s| s.serve());
}

/// LISTEN: add the listener (if one is traced now) to `ep` with `token`.
/// Adding it twice is harmless; closing it removes it.
pub fn epoll_add(ep: &OwnedFd, token: u64) {
    use rustix::event::epoll;
    with(|s| {
        if let Some(t) = &s.tracing {
            let _ = epoll::add(
                ep,
                &t.listener,
                epoll::EventData::new_u64(token),
                epoll::EventFlags::IN,
            );
        }
    });
}

/// [`sys::poll_in`] that also answers notifications while it waits: returns
/// whether `fd` is readable (false after a notification was served, so
/// the caller re-checks its own state).
pub fn poll_in(fd: RawFd, timeout_ms: i32) -> Result<bool, SysError> {
    let listener = with(|s| s.tracing.as_ref().map(|t| t.listener.as_raw_fd()));
    let Some(l) = listener else {
        return sys::poll_in(fd, timeout_ms);
    };
    let (ready, other) =
        raw::poll2(fd, l, timeout_ms).map_err(|e| sys::err_from("poll", fd.to_string(), e))?;
    if other {
        serve();
    }
    Ok(ready)
}

/// Read a launching child's status stream until EOF (exec) — the text of
/// its error if it failed — answering notifications meanwhile. When the
/// child sends its listener, the tracer is attached to `pid` with `claim`
/// and the child is told to go on.
pub fn read_child_status(
    sock: &OwnedFd,
    pid: i32,
    mut claim: Option<Claim>,
) -> io::Result<Vec<u8>> {
    let fd = sock.as_raw_fd();
    let mut out = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if !poll_in(fd, -1).map_err(|e| e.source)? {
            continue;
        }
        let (n, passed) = raw::recv_with_fd(fd, &mut chunk)?;
        let mut data = &chunk[..n];
        if let Some(listener) = passed {
            if data.first() == Some(&FD_MARKER) {
                data = &data[1..];
            }
            match claim.take() {
                Some(c) => attach(c, pid, listener),
                None => log::warn!(
                    "pid={pid} sent a seccomp_unotify listener it was not asked for; ignored"
                ),
            }
            sys::write_all(fd, &[ACK])?;
        }
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data);
    }
}

/// End of the run: answer what is left, stop tracing, log the report at INFO
/// and write it to `seccomp_unotify_report` (when set).
pub fn finish(cfg: &config::NsJailConfig) {
    if !cfg.seccomp_unotify() {
        return;
    }
    let (text, jails) = with(|s| {
        s.serve();
        s.tracing = None;
        (s.stats.render(), s.traced_jails)
    });
    if text.is_empty() {
        log::info!("seccomp_unotify: no file or network access traced ({jails} jail(s) traced)");
    } else {
        log::info!("unotify report:\n{text}");
    }
    if cfg.has_seccomp_unotify_report() {
        let path = cfg.seccomp_unotify_report();
        if let Err(e) = crate::report::write_file(path.as_ref(), text.as_bytes()) {
            log::warn!(
                "Couldn't write the seccomp_unotify report to '{path}': {} (check seccomp_unotify_report)",
                sys::errno_text(&e)
            );
        }
    }
}

impl State {
    fn serve(&mut self) {
        // Bounded per call: the wait loops call again while more arrive.
        for _ in 0..256 {
            let Some(t) = &self.tracing else { return };
            let l = t.listener.as_raw_fd();
            let (readable, hup) = raw::poll_now(l);
            if readable {
                match raw::notif_recv(l) {
                    Ok(n) => self.handle(l, &n),
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

    fn handle(&mut self, l: RawFd, n: &libc::seccomp_notif) {
        let recs = decode(n);
        // Only data read while the caller still waits is about that caller.
        if raw::notif_id_valid(l, n.id) {
            for r in recs {
                self.stats.add(r);
            }
        }
        if let Err(e) = raw::notif_continue(l, n.id) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                log::warn!("seccomp_unotify: SECCOMP_IOCTL_NOTIF_SEND failed: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding one notification

/// `Stat.Path.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum FileKind {
    Unknown,
    Nonexistent,
    Regular,
    Dir,
    Chr,
    Blk,
    Fifo,
    Link,
    Sock,
}

impl FileKind {
    fn name(self) -> &'static str {
        match self {
            FileKind::Unknown => "UNKNOWN",
            FileKind::Nonexistent => "NONEXISTENT",
            FileKind::Regular => "REGULAR",
            FileKind::Dir => "DIR",
            FileKind::Chr => "CHR",
            FileKind::Blk => "BLK",
            FileKind::Fifo => "FIFO",
            FileKind::Link => "LINK",
            FileKind::Sock => "SOCK",
        }
    }

    fn exists(self) -> bool {
        !matches!(self, FileKind::Unknown | FileKind::Nonexistent)
    }

    fn of_mode(mode: u32) -> FileKind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => FileKind::Regular,
            libc::S_IFDIR => FileKind::Dir,
            libc::S_IFCHR => FileKind::Chr,
            libc::S_IFBLK => FileKind::Blk,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFLNK => FileKind::Link,
            libc::S_IFSOCK => FileKind::Sock,
            _ => FileKind::Unknown,
        }
    }
}

/// `Stat.Path.Mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum AccessMode {
    Unspecified,
    RdOnly,
    WrOnly,
    RdWr,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PathInfo {
    path: String,
    jail: FileKind,
    main: FileKind,
    mode: AccessMode,
}

/// `Stat.NetResource.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum NetKind {
    Ipv4,
    Ipv6,
    Unix,
    Netlink,
}

impl NetKind {
    fn name(self) -> &'static str {
        match self {
            NetKind::Ipv4 => "IPV4",
            NetKind::Ipv6 => "IPV6",
            NetKind::Unix => "UNIX",
            NetKind::Netlink => "NETLINK",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct NetInfo {
    kind: NetKind,
    endpoint: String,
    port: Option<u16>,
    socket_path: Option<PathInfo>,
}

/// One thing a syscall touched.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Touched {
    Fs(PathInfo),
    Net(NetInfo),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    what: Touched,
    syscall: String,
    args: String,
}

/// The traced process's memory, opened on first use.
struct Mem {
    pid: u32,
    file: Option<Option<File>>,
}

impl Mem {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        let pid = self.pid;
        let f = self
            .file
            .get_or_insert_with(|| File::open(format!("/proc/{pid}/mem")).ok());
        let Some(f) = f else { return 0 };
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], addr.wrapping_add(done as u64)) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        done
    }

    /// A NUL-terminated string of at most `max` bytes, read page by page
    /// (the next page may not be mapped).
    fn string(&mut self, addr: u64, max: usize) -> String {
        if addr == 0 {
            return "NULL".to_string();
        }
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            let page_left = 4096 - (at % 4096) as usize;
            let mut chunk = vec![0u8; page_left.min(max - out.len())];
            let n = self.read(at, &mut chunk);
            if n == 0 {
                break;
            }
            if let Some(z) = chunk[..n].iter().position(|b| *b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return String::from_utf8_lossy(&out).into_owned();
            }
            out.extend_from_slice(&chunk[..n]);
            at = at.wrapping_add(n as u64);
            if n < chunk.len() {
                break;
            }
        }
        if out.is_empty() {
            "<invalid_ptr>".to_string()
        } else {
            String::from_utf8_lossy(&out).into_owned()
        }
    }

    fn u64_at(&mut self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        (self.read(addr, &mut b) == 8).then(|| u64::from_ne_bytes(b))
    }
}

fn abs_path(pid: u32, dirfd: i32, raw: &str) -> String {
    if raw.starts_with('/') || raw == "NULL" || raw == "<invalid_ptr>" {
        return raw.to_string();
    }
    let link = if dirfd == libc::AT_FDCWD {
        format!("/proc/{pid}/cwd")
    } else {
        format!("/proc/{pid}/fd/{dirfd}")
    };
    match std::fs::read_link(link) {
        Ok(base) => {
            let mut b = base.to_string_lossy().into_owned();
            if raw.is_empty() {
                return b; // AT_EMPTY_PATH style: the descriptor itself
            }
            if !b.ends_with('/') {
                b.push('/');
            }
            b.push_str(raw);
            b
        }
        Err(_) => raw.to_string(),
    }
}

fn kind_of_result(r: io::Result<u32>) -> FileKind {
    match r {
        Ok(mode) => FileKind::of_mode(mode),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            FileKind::Nonexistent
        }
        Err(_) => FileKind::Unknown,
    }
}

/// The type of `path` in the jail's root (resolved inside it: its absolute
/// symlinks stay in the jail) and on the host.
fn path_info(pid: u32, path: String) -> PathInfo {
    use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
    let jail = if path.starts_with('/') {
        let rel = path.trim_start_matches('/');
        let r = rfs::open(
            format!("/proc/{pid}/root"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .and_then(|root| {
            rfs::openat2(
                &root,
                if rel.is_empty() { "." } else { rel },
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT,
            )
        })
        .and_then(|fd| rfs::fstat(&fd))
        .map(|st| st.st_mode)
        .map_err(io::Error::from);
        kind_of_result(r)
    } else {
        FileKind::Unknown
    };
    let main = if path.starts_with('/') {
        kind_of_result(
            rustix::fs::lstat(path.as_str())
                .map(|st| st.st_mode)
                .map_err(io::Error::from),
        )
    } else {
        FileKind::Unknown
    };
    PathInfo {
        path,
        jail,
        main,
        mode: AccessMode::Unspecified,
    }
}

const OPEN_FLAG_NAMES: &[(libc::c_int, &str)] = &[
    (libc::O_CREAT, "O_CREAT"),
    (libc::O_EXCL, "O_EXCL"),
    (libc::O_NOCTTY, "O_NOCTTY"),
    (libc::O_TRUNC, "O_TRUNC"),
    (libc::O_APPEND, "O_APPEND"),
    (libc::O_NONBLOCK, "O_NONBLOCK"),
    (libc::O_SYNC, "O_SYNC"),
    (libc::O_DSYNC, "O_DSYNC"),
    (libc::O_ASYNC, "FASYNC"),
    (libc::O_DIRECT, "O_DIRECT"),
    (libc::O_TMPFILE, "O_TMPFILE"),
    (libc::O_DIRECTORY, "O_DIRECTORY"),
    (libc::O_NOFOLLOW, "O_NOFOLLOW"),
    (libc::O_NOATIME, "O_NOATIME"),
    (libc::O_CLOEXEC, "O_CLOEXEC"),
    (libc::O_PATH, "O_PATH"),
];

/// The access mode and the other flag names (`O_CREAT|O_CLOEXEC`) of open flags.
fn open_flags(flags: u64) -> (AccessMode, String) {
    let f = flags as libc::c_int;
    let mode = match f & libc::O_ACCMODE {
        libc::O_RDONLY => AccessMode::RdOnly,
        libc::O_WRONLY => AccessMode::WrOnly,
        libc::O_RDWR => AccessMode::RdWr,
        _ => AccessMode::Unspecified,
    };
    let mut rest = f & !libc::O_ACCMODE;
    let mut names = Vec::new();
    for (v, n) in OPEN_FLAG_NAMES {
        // Multi-bit flags (O_SYNC ⊃ O_DSYNC, O_TMPFILE ⊃ O_DIRECTORY) first.
        if *v != 0 && rest & v == *v {
            names.push(*n);
            rest &= !v;
        }
    }
    (mode, names.join("|"))
}

fn access_text(m: u64) -> String {
    if m == 0 {
        return "F_OK".to_string();
    }
    let mut v = Vec::new();
    for (bit, n) in [(4, "R_OK"), (2, "W_OK"), (1, "X_OK")] {
        if m & bit != 0 {
            v.push(n);
        }
    }
    v.join("|")
}

fn domain_text(d: u64) -> String {
    match d as libc::c_int {
        libc::AF_UNIX => "AF_UNIX".into(),
        libc::AF_INET => "AF_INET".into(),
        libc::AF_INET6 => "AF_INET6".into(),
        libc::AF_NETLINK => "AF_NETLINK".into(),
        libc::AF_PACKET => "AF_PACKET".into(),
        libc::AF_VSOCK => "AF_VSOCK".into(),
        libc::AF_ALG => "AF_ALG".into(),
        n => n.to_string(),
    }
}

fn sock_type_text(t: i32) -> String {
    let mut s = match t & 0xf {
        libc::SOCK_STREAM => "SOCK_STREAM".to_string(),
        libc::SOCK_DGRAM => "SOCK_DGRAM".to_string(),
        libc::SOCK_RAW => "SOCK_RAW".to_string(),
        libc::SOCK_SEQPACKET => "SOCK_SEQPACKET".to_string(),
        libc::SOCK_RDM => "SOCK_RDM".to_string(),
        n => format!("SOCK_TYPE_{n}"),
    };
    if t & libc::SOCK_CLOEXEC != 0 {
        s.push_str("|SOCK_CLOEXEC");
    }
    if t & libc::SOCK_NONBLOCK != 0 {
        s.push_str("|SOCK_NONBLOCK");
    }
    s
}

fn proto_text(p: i32) -> String {
    match p {
        0 => "0".into(),
        libc::IPPROTO_TCP => "IPPROTO_TCP".into(),
        libc::IPPROTO_UDP => "IPPROTO_UDP".into(),
        libc::IPPROTO_ICMP => "IPPROTO_ICMP".into(),
        libc::IPPROTO_ICMPV6 => "IPPROTO_ICMPV6".into(),
        libc::IPPROTO_SCTP => "IPPROTO_SCTP".into(),
        libc::IPPROTO_RAW => "IPPROTO_RAW".into(),
        n => format!("proto_{n}"),
    }
}

/// The type of socket `fd` of process `pid` (a copy via pidfd_getfd).
fn socket_type(pid: u32, fd: u64) -> Option<(i32, i32)> {
    let pid = rustix::process::Pid::from_raw(pid as i32)?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    let fd = rustix::process::pidfd_getfd(
        &pidfd,
        i32::try_from(fd).ok()?,
        rustix::process::PidfdGetfdFlags::empty(),
    )
    .ok()?;
    raw::socket_type(fd.as_fd())
}

/// A sockaddr of `len` bytes at `addr`, for a socket of type `stype`.
fn sockaddr(mem: &mut Mem, pid: u32, addr: u64, len: u64, stype: Option<i32>) -> Option<NetInfo> {
    if addr == 0 || !(2..=128).contains(&len) {
        return None;
    }
    let mut b = vec![0u8; len as usize];
    let n = mem.read(addr, &mut b);
    if n < 2 {
        return None;
    }
    b.truncate(n);
    let family = u16::from_ne_bytes([b[0], b[1]]) as libc::c_int;
    // The port is meaningful for stream and datagram sockets (for raw ones
    // that field is a protocol); shown too when the type is unknown.
    let with_port = !matches!(stype.map(|t| t & 0xf), Some(libc::SOCK_RAW));
    let port = |b: &[u8]| (with_port && b.len() >= 4).then(|| u16::from_be_bytes([b[2], b[3]]));
    match family {
        libc::AF_INET if b.len() >= 8 => Some(NetInfo {
            kind: NetKind::Ipv4,
            endpoint: std::net::Ipv4Addr::new(b[4], b[5], b[6], b[7]).to_string(),
            port: port(&b),
            socket_path: None,
        }),
        libc::AF_INET6 if b.len() >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            Some(NetInfo {
                kind: NetKind::Ipv6,
                endpoint: std::net::Ipv6Addr::from(a).to_string(),
                port: port(&b),
                socket_path: None,
            })
        }
        libc::AF_UNIX => {
            let p = &b[2..];
            if p.is_empty() {
                Some(NetInfo {
                    kind: NetKind::Unix,
                    endpoint: "anonymous unix socket".into(),
                    port: None,
                    socket_path: None,
                })
            } else if p[0] == 0 {
                let name = &p[1..];
                let end = name.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
                Some(NetInfo {
                    kind: NetKind::Unix,
                    endpoint: format!("@{}", String::from_utf8_lossy(&name[..end])),
                    port: None,
                    socket_path: None,
                })
            } else {
                let end = p.iter().position(|c| *c == 0).unwrap_or(p.len());
                let raw = String::from_utf8_lossy(&p[..end]).into_owned();
                let abs = abs_path(pid, libc::AT_FDCWD, &raw);
                Some(NetInfo {
                    kind: NetKind::Unix,
                    endpoint: abs.clone(),
                    port: None,
                    socket_path: Some(path_info(pid, abs)),
                })
            }
        }
        libc::AF_NETLINK => Some(NetInfo {
            kind: NetKind::Netlink,
            endpoint: "NETLINK".into(),
            port: None,
            socket_path: None,
        }),
        _ => None,
    }
}

/// What one notification touched (empty for an unknown syscall or one that
/// names nothing, like `socket`).
fn decode(n: &libc::seccomp_notif) -> Vec<Record> {
    let arch = kafel::Arch::native();
    if n.data.arch != arch.audit_arch() {
        return Vec::new();
    }
    let Ok(nr) = u32::try_from(n.data.nr) else {
        return Vec::new();
    };
    let Some(name) = kafel::syscall_name(arch, nr) else {
        return Vec::new();
    };
    let Some((_, roles)) = TRACED.iter().find(|t| t.0 == name) else {
        return Vec::new();
    };
    let pid = n.pid;
    let mut mem = Mem { pid, file: None };
    let a = n.data.args;
    let mut args = String::new();
    let mut paths: Vec<PathInfo> = Vec::new();
    let mut extra: Vec<String> = Vec::new(); // mode_extra per path
    let mut net = None;
    let mut dirfd = libc::AT_FDCWD;
    let mut stype = None;
    for (i, role) in roles.iter().enumerate() {
        let v = a[i];
        match role {
            Skip => {}
            Path => {
                let raw = mem.string(v, MAX_PATH);
                paths.push(path_info(pid, abs_path(pid, dirfd, &raw)));
                extra.push(String::new());
                dirfd = libc::AT_FDCWD;
            }
            Dirfd => {
                dirfd = v as i32;
                if dirfd == libc::AT_FDCWD {
                    args.push_str("dirfd=AT_FDCWD ");
                } else {
                    args.push_str(&format!("dirfd={dirfd} "));
                }
            }
            Flags | OpenHow => {
                let flags = if *role == Flags {
                    Some(v)
                } else {
                    // struct open_how { u64 flags; u64 mode; u64 resolve; }
                    let resolve = mem.u64_at(v.wrapping_add(16));
                    if let Some(r) = resolve.filter(|r| *r != 0) {
                        args.push_str(&format!("resolve={r:#x} "));
                    }
                    mem.u64_at(v)
                };
                if let (Some(f), Some(p), Some(x)) = (flags, paths.last_mut(), extra.last_mut()) {
                    let (m, names) = open_flags(f);
                    p.mode = m;
                    *x = names;
                }
            }
            Octal => args.push_str(&format!("mode=0{:o} ", v as u32)),
            Access => args.push_str(&format!("mode={} ", access_text(v))),
            Uid => args.push_str(&format!("owner={} ", v as i32)),
            Gid => args.push_str(&format!("group={} ", v as i32)),
            Argv => {
                if v != 0 {
                    for k in 0..MAX_ARGV {
                        let Some(p) = mem.u64_at(v.wrapping_add(8 * k as u64)) else {
                            break;
                        };
                        if p == 0 {
                            break;
                        }
                        args.push_str(&format!("argv[{k}]={} ", mem.string(p, MAX_ARG_LEN)));
                    }
                }
            }
            Fd => {
                if let Some((t, p)) = socket_type(pid, v) {
                    stype = Some(t);
                    args.push_str(&format!("type={}", sock_type_text(t)));
                    if p != 0 {
                        args.push_str(&format!(" ({})", proto_text(p)));
                    }
                    args.push(' ');
                }
            }
            Saddr => {
                let len = a.get(i + 1).copied().unwrap_or(0);
                net = sockaddr(&mut mem, pid, v, len, stype);
            }
            IFlags => args.push_str(&format!("flags={} ", v as i32)),
            Domain => args.push_str(&format!("domain={} ", domain_text(v))),
            SType => args.push_str(&format!("type={} ", sock_type_text(v as i32))),
            Proto => args.push_str(&format!("protocol={} ", proto_text(v as i32))),
        }
    }
    let mut out = Vec::new();
    for (p, x) in paths.into_iter().zip(extra) {
        let mut a = args.clone();
        if !x.is_empty() {
            a.push_str(&format!("mode_extra={x} "));
        }
        out.push(Record {
            what: Touched::Fs(p),
            syscall: name.to_string(),
            args: a,
        });
    }
    if let Some(n) = net {
        out.push(Record {
            what: Touched::Net(n),
            syscall: name.to_string(),
            args,
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Aggregation and the text-proto report

#[derive(Debug, Default)]
struct Variant {
    name: String,
    args: String,
    count: u64,
}

#[derive(Debug)]
struct Entry {
    what: Touched,
    count: u64,
    syscalls: Vec<Variant>,
    /// Variants not kept (over [`MAX_VARIANTS`]).
    dropped: u64,
}

#[derive(Debug, Default)]
struct Stats {
    entries: Vec<Entry>,
    index: HashMap<TouchedKey, usize>,
    /// Records not kept (over [`MAX_ENTRIES`]).
    dropped: u64,
}

/// The identity of an entry (everything but the counts).
#[derive(Debug, PartialEq, Eq, Hash)]
enum TouchedKey {
    Fs(PathInfo),
    Net(NetInfo),
}

impl Stats {
    fn add(&mut self, r: Record) {
        let key = match &r.what {
            Touched::Fs(p) => TouchedKey::Fs(p.clone()),
            Touched::Net(n) => TouchedKey::Net(n.clone()),
        };
        let idx = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                if self.entries.len() >= MAX_ENTRIES {
                    self.dropped += 1;
                    return;
                }
                self.entries.push(Entry {
                    what: r.what,
                    count: 0,
                    syscalls: Vec::new(),
                    dropped: 0,
                });
                self.index.insert(key, self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[idx];
        e.count = e.count.saturating_add(1);
        let at = e
            .syscalls
            .iter()
            .position(|v| v.name == r.syscall && v.args == r.args);
        match at {
            Some(i) => e.syscalls[i].count = e.syscalls[i].count.saturating_add(1),
            None if e.syscalls.len() < MAX_VARIANTS => e.syscalls.push(Variant {
                name: r.syscall,
                args: r.args,
                count: 1,
            }),
            None => e.dropped += 1,
        }
    }

    /// The `unotify.Stat` text proto: every `fs_access`, then every
    /// `net_access`, fields in field-number order (as protobuf prints them).
    fn render(&self) -> String {
        let mut o = String::new();
        for e in self
            .entries
            .iter()
            .filter(|e| matches!(e.what, Touched::Fs(_)))
        {
            let Touched::Fs(p) = &e.what else { continue };
            o.push_str("fs_access {\n");
            render_path_fields(&mut o, "  ", p, Some(e));
            o.push_str("}\n");
        }
        for e in self
            .entries
            .iter()
            .filter(|e| matches!(e.what, Touched::Net(_)))
        {
            let Touched::Net(n) = &e.what else { continue };
            o.push_str("net_access {\n");
            o.push_str(&format!("  type: {}\n", n.kind.name()));
            if !n.endpoint.is_empty() {
                o.push_str(&format!("  endpoint: {}\n", quote(&n.endpoint)));
            }
            if let Some(p) = &n.socket_path {
                o.push_str("  socket_path {\n");
                render_path_fields(&mut o, "    ", p, None);
                o.push_str("  }\n");
            }
            o.push_str(&format!("  count: {}\n", e.count));
            render_variants(&mut o, e);
            if let Some(port) = n.port {
                o.push_str(&format!("  port: {port}\n"));
            }
            o.push_str("}\n");
        }
        if self.dropped > 0 {
            o.push_str(&format!(
                "# {} further accesses not recorded (more than {MAX_ENTRIES} distinct entries)\n",
                self.dropped
            ));
        }
        o
    }
}

fn render_variants(o: &mut String, e: &Entry) {
    for v in &e.syscalls {
        o.push_str("  syscall {\n");
        o.push_str(&format!("    name: {}\n", quote(&v.name)));
        if !v.args.is_empty() {
            o.push_str(&format!("    args: {}\n", quote(&v.args)));
        }
        o.push_str(&format!("    count: {}\n", v.count));
        o.push_str("  }\n");
    }
    if e.dropped > 0 {
        o.push_str(&format!(
            "  # {} further calls with other arguments not itemised\n",
            e.dropped
        ));
    }
}

fn render_path_fields(o: &mut String, ind: &str, p: &PathInfo, e: Option<&Entry>) {
    o.push_str(&format!("{ind}path: {}\n", quote(&p.path)));
    o.push_str(&format!("{ind}jail_type: {}\n", p.jail.name()));
    o.push_str(&format!("{ind}main_type: {}\n", p.main.name()));
    let mode = match p.mode {
        AccessMode::Unspecified => None,
        AccessMode::RdOnly => Some("RDONLY"),
        AccessMode::WrOnly => Some("WRONLY"),
        AccessMode::RdWr => Some("RDWR"),
    };
    if let Some(m) = mode {
        o.push_str(&format!("{ind}mode: {m}\n"));
    }
    if let Some(e) = e {
        o.push_str(&format!("{ind}count: {}\n", e.count));
        render_variants(o, e);
    }
    o.push_str(&format!("{ind}exists_in_jail: {}\n", p.jail.exists()));
    o.push_str(&format!("{ind}exists_in_main: {}\n", p.main.exists()));
}

/// A text-proto string literal (C escapes; other bytes as they are).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\'' => q.push_str("\\'"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                q.push_str(&format!("\\{:03o}", c as u32))
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

// ---------------------------------------------------------------------------
// Raw calls (each wrapped once)

mod raw {
    use std::io;
    use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

    use crate::sys::{self, SysError};

    /// seccomp(SET_MODE_FILTER, NEW_LISTENER): install and return the listener.
    pub fn install_listener(insns: &[libc::sock_filter]) -> Result<OwnedFd, SysError> {
        let prog = libc::sock_fprog {
            len: insns.len() as libc::c_ushort,
            filter: insns.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points to `len` valid instructions that outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            return Err(sys::err_from(
                "seccomp",
                "SECCOMP_FILTER_FLAG_NEW_LISTENER",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: a fresh descriptor returned to us by the kernel.
        Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
    }

    const CMSG_BUF: usize = 64;

    /// sendmsg one byte with `fd` attached (SCM_RIGHTS).
    pub fn send_fd(sock: RawFd, byte: u8, fd: RawFd) -> io::Result<()> {
        let mut data = [byte];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr() as *mut libc::c_void,
            iov_len: 1,
        };
        let mut cbuf = [0u64; CMSG_BUF / 8];
        // SAFETY: msghdr is plain data; zeroed is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: CMSG_SPACE is a pure size computation.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
        // SAFETY: the control buffer (aligned, CMSG_BUF bytes) holds one
        // header with one int, as msg_controllen says; CMSG_* stay inside it.
        let rc = unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
            libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL)
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// recvmsg into `buf`, taking a descriptor passed with the data.
    pub fn recv_with_fd(sock: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
        loop {
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: buf.len(),
            };
            let mut cbuf = [0u64; CMSG_BUF / 8];
            // SAFETY: msghdr is plain data; zeroed is a valid empty header.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = CMSG_BUF as _;
            // SAFETY: `msg` describes `buf` and `cbuf`, both alive and writable.
            let rc = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut fd = None;
            // SAFETY: the kernel filled `msg_controllen` bytes of `cbuf`; the
            // CMSG_* walk stays within them. Each SCM_RIGHTS int is a
            // descriptor now owned by us (closed if more than one arrived).
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                        let hdr = libc::CMSG_LEN(0) as usize;
                        let n = ((*c).cmsg_len as usize).saturating_sub(hdr)
                            / std::mem::size_of::<RawFd>();
                        let data = libc::CMSG_DATA(c) as *const RawFd;
                        for k in 0..n {
                            let raw = std::ptr::read_unaligned(data.add(k));
                            let owned = OwnedFd::from_raw_fd(raw);
                            if fd.is_none() {
                                fd = Some(owned);
                            }
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            return Ok((rc as usize, fd));
        }
    }

    /// poll two descriptors: (`a` readable, `b` has any event).
    pub fn poll2(a: RawFd, b: RawFd, timeout_ms: i32) -> io::Result<(bool, bool)> {
        let mut p = [
            libc::pollfd {
                fd: a,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: b,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        let rc = unsafe { libc::poll(p.as_mut_ptr(), 2, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok((false, false));
            }
            return Err(e);
        }
        Ok((p[0].revents != 0, p[1].revents != 0))
    }

    /// (readable, hung up) of a listener, without waiting.
    pub fn poll_now(fd: RawFd) -> (bool, bool) {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, 0) };
        if rc <= 0 {
            return (false, false);
        }
        (
            p.revents & libc::POLLIN != 0,
            p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        )
    }

    /// SECCOMP_IOCTL_NOTIF_RECV (call only when the listener is readable).
    pub fn notif_recv(fd: RawFd) -> io::Result<libc::seccomp_notif> {
        // SAFETY: the kernel requires a zeroed structure; all-zero is valid.
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: `n` is a writable seccomp_notif, the size the request encodes.
        let rc = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut n) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n)
    }

    /// SECCOMP_IOCTL_NOTIF_ID_VALID: the caller of `id` still waits.
    pub fn notif_id_valid(fd: RawFd, id: u64) -> bool {
        let mut id = id;
        // SAFETY: `id` is a readable u64.
        unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _, &mut id) == 0 }
    }

    /// SECCOMP_IOCTL_NOTIF_SEND with SECCOMP_USER_NOTIF_FLAG_CONTINUE.
    pub fn notif_continue(fd: RawFd, id: u64) -> io::Result<()> {
        let mut r = libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        loop {
            // SAFETY: `r` is a valid seccomp_notif_resp.
            let rc = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut r) };
            if rc == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// SO_TYPE and SO_PROTOCOL of a socket.
    pub fn socket_type(fd: BorrowedFd<'_>) -> Option<(i32, i32)> {
        use std::os::fd::AsRawFd;
        let get = |opt: libc::c_int| -> Option<i32> {
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `v`/`len` are a writable int and its size.
            let rc = unsafe {
                libc::getsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    &mut v as *mut libc::c_int as *mut libc::c_void,
                    &mut len,
                )
            };
            (rc == 0).then_some(v)
        };
        Some((get(libc::SO_TYPE)?, get(libc::SO_PROTOCOL).unwrap_or(0)))
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

    #[test]
    fn open_flags_are_named() {
        let (m, x) =
            open_flags((libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC) as u64);
        assert_eq!(m, AccessMode::WrOnly);
        assert_eq!(x, "O_CREAT|O_TRUNC|O_CLOEXEC");
        let (m, x) = open_flags(libc::O_RDONLY as u64);
        assert_eq!((m, x.as_str()), (AccessMode::RdOnly, ""));
        let (_, x) = open_flags((libc::O_RDWR | libc::O_SYNC) as u64);
        assert_eq!(x, "O_SYNC");
        let (_, x) = open_flags((libc::O_RDWR | libc::O_TMPFILE) as u64);
        assert_eq!(x, "O_TMPFILE");
        assert_eq!(access_text(0), "F_OK");
        assert_eq!(access_text(6), "R_OK|W_OK");
    }

    fn fs(path: &str, mode: AccessMode, syscall: &str, args: &str) -> Record {
        Record {
            what: Touched::Fs(PathInfo {
                path: path.into(),
                jail: FileKind::Regular,
                main: FileKind::Nonexistent,
                mode,
            }),
            syscall: syscall.into(),
            args: args.into(),
        }
    }

    #[test]
    fn report_aggregates_and_renders_text_proto() {
        let mut s = Stats::default();
        s.add(fs(
            "/etc/passwd",
            AccessMode::RdOnly,
            "openat",
            "dirfd=AT_FDCWD ",
        ));
        s.add(fs(
            "/etc/passwd",
            AccessMode::RdOnly,
            "openat",
            "dirfd=AT_FDCWD ",
        ));
        s.add(fs("/etc/passwd", AccessMode::RdOnly, "openat", "dirfd=3 "));
        s.add(fs(
            "/etc/passwd",
            AccessMode::WrOnly,
            "openat",
            "dirfd=AT_FDCWD ",
        ));
        s.add(Record {
            what: Touched::Net(NetInfo {
                kind: NetKind::Ipv4,
                endpoint: "127.0.0.1".into(),
                port: Some(80),
                socket_path: None,
            }),
            syscall: "connect".into(),
            args: "type=SOCK_STREAM (IPPROTO_TCP) ".into(),
        });
        let r = s.render();
        let expect = "fs_access {\n  path: \"/etc/passwd\"\n  jail_type: REGULAR\n  main_type: NONEXISTENT\n  mode: RDONLY\n  count: 3\n  syscall {\n    name: \"openat\"\n    args: \"dirfd=AT_FDCWD \"\n    count: 2\n  }\n  syscall {\n    name: \"openat\"\n    args: \"dirfd=3 \"\n    count: 1\n  }\n  exists_in_jail: true\n  exists_in_main: false\n}\n";
        assert!(r.starts_with(expect), "{r}");
        assert!(r.contains("  mode: WRONLY\n  count: 1\n"), "{r}");
        assert!(
            r.contains("net_access {\n  type: IPV4\n  endpoint: \"127.0.0.1\"\n  count: 1\n  syscall {\n    name: \"connect\"\n    args: \"type=SOCK_STREAM (IPPROTO_TCP) \"\n    count: 1\n  }\n  port: 80\n}\n"),
            "{r}"
        );
    }

    #[test]
    fn report_is_bounded() {
        let mut s = Stats::default();
        for i in 0..MAX_ENTRIES + 5 {
            s.add(fs(&format!("/f{i}"), AccessMode::RdOnly, "openat", ""));
        }
        for i in 0..MAX_VARIANTS + 3 {
            s.add(fs(
                "/f0",
                AccessMode::RdOnly,
                "openat",
                &format!("dirfd={i} "),
            ));
        }
        assert_eq!(s.entries.len(), MAX_ENTRIES);
        assert_eq!(s.dropped, 5);
        assert_eq!(s.entries[0].syscalls.len(), MAX_VARIANTS);
        let r = s.render();
        assert!(r.contains("# 5 further accesses not recorded"), "tail");
        assert!(r.contains("further calls with other arguments not itemised"));
    }

    fn own_mem() -> Mem {
        Mem {
            pid: std::process::id(),
            file: None,
        }
    }

    #[test]
    fn strings_and_sockaddrs_are_read_from_process_memory() {
        let mut mem = own_mem();
        let s = c"/etc/some path";
        assert_eq!(mem.string(s.as_ptr() as u64, MAX_PATH), "/etc/some path");
        assert_eq!(mem.string(s.as_ptr() as u64, 4), "/etc");
        assert_eq!(mem.string(0, MAX_PATH), "NULL");
        assert_eq!(mem.string(8, MAX_PATH), "<invalid_ptr>");

        let pid = std::process::id();
        // struct sockaddr_in for 127.0.0.1:8080.
        let mut v4 = [0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        let n = sockaddr(
            &mut mem,
            pid,
            v4.as_ptr() as u64,
            16,
            Some(libc::SOCK_STREAM),
        )
        .expect("decoded");
        assert_eq!(
            (n.kind, n.endpoint.as_str(), n.port),
            (NetKind::Ipv4, "127.0.0.1", Some(8080))
        );
        // Raw sockets: that field is not a port.
        let n = sockaddr(&mut mem, pid, v4.as_ptr() as u64, 16, Some(libc::SOCK_RAW)).unwrap();
        assert_eq!(n.port, None);
        // struct sockaddr_in6 for [::1]:53.
        let mut v6 = [0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&53u16.to_be_bytes());
        v6[23] = 1;
        let n = sockaddr(
            &mut mem,
            pid,
            v6.as_ptr() as u64,
            28,
            Some(libc::SOCK_DGRAM),
        )
        .unwrap();
        assert_eq!(
            (n.kind, n.endpoint.as_str(), n.port),
            (NetKind::Ipv6, "::1", Some(53))
        );
        // Abstract unix socket.
        let mut un = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        un.extend_from_slice(b"\0hidden");
        let n = sockaddr(&mut mem, pid, un.as_ptr() as u64, un.len() as u64, None).unwrap();
        assert_eq!((n.kind, n.endpoint.as_str()), (NetKind::Unix, "@hidden"));
        // Too long or NULL: nothing.
        assert!(sockaddr(&mut mem, pid, v4.as_ptr() as u64, 4096, None).is_none());
        assert!(sockaddr(&mut mem, pid, 0, 16, None).is_none());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\001é\"");
    }
}
