//! Every raw system call the runtime needs that no safe crate wraps, each
//! wrapped once. Errors carry the call and what it was applied to.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A failed system call: which call, on what, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{call}({what}) failed: {}", errno_text(source))]
pub struct SysError {
    /// The call that failed, e.g. `mount`.
    pub call: &'static str,
    /// What it was applied to (a path, a pid, a flag set...).
    pub what: String,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// An OS error as `strerror` words, without Rust's " (os error N)" suffix.
pub fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// Result of the wrappers in this module.
pub type SysResult<T> = Result<T, SysError>;

fn err(call: &'static str, what: impl Into<String>) -> SysError {
    SysError {
        call,
        what: what.into(),
        source: io::Error::last_os_error(),
    }
}

/// Build the error from an explicit errno value.
pub fn err_from(call: &'static str, what: impl Into<String>, e: io::Error) -> SysError {
    SysError {
        call,
        what: what.into(),
        source: e,
    }
}

fn check(
    rc: libc::c_long,
    call: &'static str,
    what: impl FnOnce() -> String,
) -> SysResult<libc::c_long> {
    if rc < 0 {
        Err(err(call, what()))
    } else {
        Ok(rc)
    }
}

/// Turn a string into a C string; interior NULs become an `InvalidInput` error.
pub fn cstring(call: &'static str, s: &str) -> SysResult<CString> {
    CString::new(s).map_err(|_| {
        err_from(
            call,
            s.replace('\0', "\\0"),
            io::Error::new(io::ErrorKind::InvalidInput, "string contains a NUL byte"),
        )
    })
}

/// Outcome of [`clone_process`] as seen by the caller.
pub enum Forked {
    /// We are the new child.
    Child,
    /// We are the parent; the child has this pid.
    Parent(libc::pid_t),
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_CLEAR_SIGHAND` (not in every libc version).
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// Create a child process like fork(2) but with `flags` (the `CLONE_NEW*`
/// bits). Tries `clone3` with `CLONE_CLEAR_SIGHAND`, then `clone3` without
/// it, then the legacy `clone` (no new stack: the child continues on a copy
/// of ours, exactly like fork). The exit signal is SIGCHLD.
///
/// The caller must be single-threaded: the child only has the calling thread.
pub fn clone_process(flags: u64) -> SysResult<Forked> {
    let mut args = CloneArgs {
        flags: flags | CLONE_CLEAR_SIGHAND,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    for attempt in 0..2 {
        // SAFETY: clone3 without CLONE_VM and without a stack duplicates the
        // address space like fork(2); `args` is a valid clone_args of the
        // size passed. The process is single-threaded (documented contract),
        // so the child is in a consistent state.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if rc == 0 {
            return Ok(Forked::Child);
        }
        if rc > 0 {
            return Ok(Forked::Parent(rc as libc::pid_t));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL) if attempt == 0 => args.flags = flags,
            Some(libc::ENOSYS) => break,
            _ => return Err(err_from("clone3", describe_clone_flags(flags), e)),
        }
    }
    if flags & libc::CLONE_NEWTIME as u64 != 0 {
        // Its bit is CSIGNAL's in the legacy call: only clone3 can do it.
        return Err(err_from(
            "clone",
            describe_clone_flags(flags),
            io::Error::new(
                io::ErrorKind::Unsupported,
                "CLONE_NEWTIME needs clone3(), which this kernel lacks; remove --enable_clone_newtime",
            ),
        ));
    }
    // SAFETY: legacy clone with a NULL stack and no CLONE_VM behaves like
    // fork(2): the child runs on a copy of the parent's stack.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    };
    match rc {
        0 => Ok(Forked::Child),
        r if r > 0 => Ok(Forked::Parent(r as libc::pid_t)),
        _ => Err(err("clone", describe_clone_flags(flags))),
    }
}

/// Human-readable `CLONE_NEW*` flag list for messages.
pub fn describe_clone_flags(flags: u64) -> String {
    let names: [(u64, &str); 8] = [
        (libc::CLONE_NEWUSER as u64, "CLONE_NEWUSER"),
        (libc::CLONE_NEWNS as u64, "CLONE_NEWNS"),
        (libc::CLONE_NEWPID as u64, "CLONE_NEWPID"),
        (libc::CLONE_NEWIPC as u64, "CLONE_NEWIPC"),
        (libc::CLONE_NEWUTS as u64, "CLONE_NEWUTS"),
        (libc::CLONE_NEWNET as u64, "CLONE_NEWNET"),
        (libc::CLONE_NEWCGROUP as u64, "CLONE_NEWCGROUP"),
        (libc::CLONE_NEWTIME as u64, "CLONE_NEWTIME"),
    ];
    flag_names(flags, &names)
}

/// The names of the bits of `flags` set in `names` (in the table's order)
/// joined with `|`, or `0` when none is: how nsjail prints flag words.
fn flag_names<T>(flags: T, names: &[(T, &str)]) -> String
where
    T: Copy + std::ops::BitAnd<Output = T> + PartialEq + Default,
{
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| flags & *b != T::default())
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

/// mount(2) with raw flags.
pub fn mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> SysResult<()> {
    let what = || {
        format!(
            "'{}' -> '{}', type:'{}', flags:{}, options:'{}'",
            src.unwrap_or("none"),
            target,
            fstype.unwrap_or(""),
            mount_flags_str(flags),
            data.unwrap_or("")
        )
    };
    let c_src = cstring("mount", src.unwrap_or("none"))?;
    let c_tgt = cstring("mount", target)?;
    let c_fs = fstype.map(|f| cstring("mount", f)).transpose()?;
    let c_data = data.map(|d| cstring("mount", d)).transpose()?;
    // SAFETY: all pointers are NUL-terminated C strings that outlive the
    // call, or NULL where mount(2) accepts NULL.
    let rc = unsafe {
        libc::mount(
            c_src.as_ptr(),
            c_tgt.as_ptr(),
            c_fs.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            flags,
            c_data
                .as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr() as *const libc::c_void),
        )
    };
    check(rc as libc::c_long, "mount", what).map(|_| ())
}

/// Render mount flags as `MS_RDONLY|MS_BIND|...`.
pub fn mount_flags_str(flags: libc::c_ulong) -> String {
    let names: [(libc::c_ulong, &str); 14] = [
        (libc::MS_RDONLY, "MS_RDONLY"),
        (libc::MS_NOSUID, "MS_NOSUID"),
        (libc::MS_NODEV, "MS_NODEV"),
        (libc::MS_NOEXEC, "MS_NOEXEC"),
        (libc::MS_SYNCHRONOUS, "MS_SYNCHRONOUS"),
        (libc::MS_REMOUNT, "MS_REMOUNT"),
        (libc::MS_MANDLOCK, "MS_MANDLOCK"),
        (libc::MS_NOATIME, "MS_NOATIME"),
        (libc::MS_NODIRATIME, "MS_NODIRATIME"),
        (libc::MS_BIND, "MS_BIND"),
        (libc::MS_MOVE, "MS_MOVE"),
        (libc::MS_REC, "MS_REC"),
        (libc::MS_PRIVATE, "MS_PRIVATE"),
        (libc::MS_RELATIME, "MS_RELATIME"),
    ];
    flag_names(flags, &names)
}

/// umount2(2).
pub fn umount2(target: &str, flags: libc::c_int) -> SysResult<()> {
    let c = cstring("umount2", target)?;
    // SAFETY: `c` is a valid C string for the duration of the call.
    let rc = unsafe { libc::umount2(c.as_ptr(), flags) };
    check(rc as libc::c_long, "umount2", || target.to_string()).map(|_| ())
}

/// pivot_root(2).
pub fn pivot_root(new_root: &str, put_old: &str) -> SysResult<()> {
    let n = cstring("pivot_root", new_root)?;
    let o = cstring("pivot_root", put_old)?;
    // SAFETY: both are valid C strings for the duration of the call.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) };
    check(rc, "pivot_root", || format!("'{new_root}', '{put_old}'")).map(|_| ())
}

/// statvfs(3) mount flags (`f_flag`) of the filesystem holding `path`,
/// translated to `MS_*` values.
pub fn statvfs_flags(path: &str) -> SysResult<libc::c_ulong> {
    let c = cstring("statvfs", path)?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `st` is a writable statvfs buffer, `c` a valid C string.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    check(rc as libc::c_long, "statvfs", || path.to_string())?;
    // SAFETY: statvfs succeeded and filled the structure.
    let st = unsafe { st.assume_init() };
    let f = st.f_flag;
    let map: [(libc::c_ulong, libc::c_ulong); 9] = [
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_SYNCHRONOUS, libc::MS_SYNCHRONOUS),
        (libc::ST_MANDLOCK, libc::MS_MANDLOCK),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        // musl's libc lacks ST_RELATIME; the kernel value is 0x1000.
        (0x1000, libc::MS_RELATIME),
    ];
    Ok(map
        .iter()
        .filter(|(st, _)| f & st != 0)
        .fold(0, |acc, (_, ms)| acc | ms))
}

/// `MOUNT_ATTR_RDONLY` for [`mount_setattr`].
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
/// `MOUNT_ATTR_NOSUID` for [`mount_setattr`].
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
/// `MOUNT_ATTR_NODEV` for [`mount_setattr`].
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
/// `MOUNT_ATTR_NOEXEC` for [`mount_setattr`].
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount at `path` (with `AT_RECURSIVE`: on every
/// mount below it too): set the `MOUNT_ATTR_*` bits in `set`, clear those
/// in `clr`. Linux >= 5.12; ENOSYS before.
pub fn mount_setattr(path: &str, recursive: bool, set: u64, clr: u64) -> SysResult<()> {
    let c = cstring("mount_setattr", path)?;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `c` is a valid C string and `attr` a readable mount_attr whose
    // size is passed along; both outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(rc, "mount_setattr", || {
        format!(
            "'{path}', set:{set:#x}, clr:{clr:#x}{}",
            if recursive { ", AT_RECURSIVE" } else { "" }
        )
    })
    .map(|_| ())
}

/// chroot(2).
pub fn chroot(path: &str) -> SysResult<()> {
    rustix::process::chroot(path).map_err(|e| err_from("chroot", path, e.into()))
}

/// chdir(2).
pub fn chdir(path: &str) -> SysResult<()> {
    rustix::process::chdir(path).map_err(|e| err_from("chdir", path, e.into()))
}

/// setgroups(2) for the calling thread (the child is single-threaded).
pub fn setgroups(groups: &[libc::gid_t]) -> SysResult<()> {
    // SAFETY: the pointer/length pair describes a valid slice.
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    check(rc, "setgroups", || format!("{groups:?}")).map(|_| ())
}

/// setresuid(2) as a raw syscall (affects the calling thread only, which is
/// the whole process in the single-threaded child).
pub fn setresuid(uid: libc::uid_t) -> SysResult<()> {
    // SAFETY: plain integer arguments.
    let rc = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    check(rc, "setresuid", || uid.to_string()).map(|_| ())
}

/// setresgid(2) as a raw syscall (see [`setresuid`]).
pub fn setresgid(gid: libc::gid_t) -> SysResult<()> {
    // SAFETY: plain integer arguments.
    let rc = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    check(rc, "setresgid", || gid.to_string()).map(|_| ())
}

/// personality(2).
pub fn personality(flags: libc::c_ulong) -> SysResult<()> {
    // SAFETY: plain integer argument.
    let rc = unsafe { libc::personality(flags) };
    check(rc as libc::c_long, "personality", || format!("{flags:#x}")).map(|_| ())
}

/// prctl(2) with integer arguments; for the options no safe crate covers.
pub fn prctl(option: libc::c_int, arg2: libc::c_ulong, name: &'static str) -> SysResult<()> {
    // SAFETY: the options used with this wrapper take only integer arguments.
    let rc = unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(rc as libc::c_long, "prctl", || name.to_string()).map(|_| ())
}

/// prctl(PR_CAP_AMBIENT, op, cap).
pub fn prctl_ambient(op: libc::c_int, cap: u32) -> SysResult<()> {
    // SAFETY: PR_CAP_AMBIENT takes only integer arguments.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            op as libc::c_ulong,
            cap as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(rc as libc::c_long, "prctl", || {
        format!("PR_CAP_AMBIENT op={op} cap={cap}")
    })
    .map(|_| ())
}

/// setpriority(PRIO_PROCESS, 0, nice).
pub fn set_nice(nice: i32) -> SysResult<()> {
    // SAFETY: plain integer arguments.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    check(rc as libc::c_long, "setpriority", || nice.to_string()).map(|_| ())
}

/// prlimit(2) on ourselves: set soft and hard limit.
pub fn set_rlimit(resource: u32, name: &str, soft: u64, hard: u64) -> SysResult<()> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit64; old-limit pointer is NULL.
    let rc = unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) };
    check(rc as libc::c_long, "setrlimit", || {
        format!("{name}, {soft}")
    })
    .map(|_| ())
}

/// getrlimit(2) on ourselves: (soft, hard).
pub fn get_rlimit(resource: u32) -> SysResult<(u64, u64)> {
    let mut lim = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a writable rlimit64; new-limit pointer is NULL.
    let rc = unsafe { libc::prlimit64(0, resource as _, std::ptr::null(), &mut lim) };
    check(rc as libc::c_long, "getrlimit", || resource.to_string())?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Install a classic-BPF seccomp filter. `log` selects seccomp(2) with
/// `SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_TSYNC`; otherwise
/// `prctl(PR_SET_SECCOMP)`. The instructions must have the exact layout of
/// `struct sock_filter` (`{u16 code; u8 jt; u8 jf; u32 k}`).
pub fn install_seccomp(filter: &[libc::sock_filter], log: bool) -> SysResult<()> {
    let prog = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let rc = if log {
        // SAFETY: `prog` points to `len` valid instructions that outlive the call.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_TSYNC,
                &prog as *const libc::sock_fprog,
            )
        }
    } else {
        // SAFETY: as above; PR_SET_SECCOMP takes a pointer to a sock_fprog.
        unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) as libc::c_long
        }
    };
    check(rc, "seccomp", || {
        format!(
            "{} instructions{}",
            filter.len(),
            if log {
                ", SECCOMP_FILTER_FLAG_LOG|TSYNC"
            } else {
                ""
            }
        )
    })
    .map(|_| ())
}

/// execve(2); only returns on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> SysError {
    let a = ptr_array(argv);
    let e = ptr_array(envp);
    // SAFETY: `path` is a C string; `a` and `e` are NULL-terminated arrays of
    // pointers into `argv`/`envp`, which outlive the call.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    err("execve", format!("'{}'", path.to_string_lossy()))
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH); only returns on failure.
pub fn execveat_fd(fd: RawFd, shown: &str, argv: &[CString], envp: &[CString]) -> SysError {
    let a = ptr_array(argv);
    let e = ptr_array(envp);
    let empty = c"";
    // SAFETY: as in `execve`; `empty` is a static C string.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            empty.as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    err("execveat", format!("'{shown}' (fd {fd})"))
}

fn ptr_array(v: &[CString]) -> Vec<*const libc::c_char> {
    let mut p: Vec<*const libc::c_char> = v.iter().map(|c| c.as_ptr()).collect();
    p.push(std::ptr::null());
    p
}

/// Mark every fd from `first` up to and including `last` close-on-exec.
/// Uses close_range(CLOSE_RANGE_CLOEXEC); falls back to fcntl on /proc/self/fd.
pub fn cloexec_range(first: u32, last: u32) -> SysResult<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: plain integer arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            last,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let dir =
        std::fs::read_dir("/proc/self/fd").map_err(|e| err_from("opendir", "/proc/self/fd", e))?;
    let fds: Vec<u32> = dir
        .filter_map(|d| d.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|f| (first..=last).contains(f)) {
        set_cloexec(fd as RawFd, true)?;
    }
    Ok(())
}

/// Set or clear FD_CLOEXEC on `fd`.
pub fn set_cloexec(fd: RawFd, on: bool) -> SysResult<()> {
    // SAFETY: F_GETFD/F_SETFD take integer arguments; a bad fd gives EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(err("fcntl(F_GETFD)", fd.to_string()));
    }
    let nf = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, nf) };
    check(rc as libc::c_long, "fcntl(F_SETFD)", || fd.to_string()).map(|_| ())
}

/// dup2(2).
pub fn dup2(old: RawFd, new: RawFd) -> SysResult<()> {
    // SAFETY: integer arguments; errors are reported via errno.
    let rc = unsafe { libc::dup2(old, new) };
    check(rc as libc::c_long, "dup2", || format!("{old} -> {new}")).map(|_| ())
}

/// fcntl(F_DUPFD_CLOEXEC): a close-on-exec duplicate of `fd` numbered >= `min`.
pub fn dup_cloexec(fd: RawFd, min: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: integer arguments; errors are reported via errno.
    let rc = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    check(rc as libc::c_long, "fcntl(F_DUPFD_CLOEXEC)", || {
        fd.to_string()
    })?;
    // SAFETY: `rc` is a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

/// open(2) returning an owned fd (always O_CLOEXEC).
pub fn open(path: &str, flags: libc::c_int, mode: libc::mode_t) -> SysResult<OwnedFd> {
    let c = cstring("open", path)?;
    // SAFETY: `c` is a valid C string; mode is passed as the variadic arg.
    let rc = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    check(rc as libc::c_long, "open", || format!("'{path}'"))?;
    // SAFETY: `rc` is a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

/// flock(2) on `fd`: `LOCK_EX` (waiting when `wait`, else `LOCK_NB`). Ok(false)
/// when `wait` is false and another open file description holds a lock.
pub fn flock_exclusive(fd: RawFd, wait: bool) -> io::Result<bool> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock(2) takes a descriptor and flags; an invalid fd is EBADF.
        let rc = unsafe { libc::flock(fd, op) };
        if rc == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if !wait => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC).
pub fn socketpair() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    check(rc as libc::c_long, "socketpair", || {
        "AF_UNIX, SOCK_STREAM".into()
    })?;
    // SAFETY: both descriptors are fresh and owned by us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Write all of `buf` to `fd` (retrying on EINTR and short writes).
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid readable slice.
        let rc = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[rc as usize..];
    }
    Ok(())
}

/// read(2) once, retrying on EINTR; `Ok(0)` is EOF.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a valid writable slice.
        let rc = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A set of signals.
pub fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is a writable sigset_t; sigemptyset/sigaddset initialise it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for s in signals {
            libc::sigaddset(set.as_mut_ptr(), *s);
        }
        set.assume_init()
    }
}

/// sigprocmask(how, set).
pub fn sigprocmask(how: libc::c_int, set: &libc::sigset_t) -> SysResult<()> {
    // SAFETY: `set` is a valid initialised sigset; the old set is not requested.
    let rc = unsafe { libc::sigprocmask(how, set, std::ptr::null_mut()) };
    check(rc as libc::c_long, "sigprocmask", || how.to_string()).map(|_| ())
}

/// pthread_sigmask(how, set) for the calling thread; returns the previous mask.
pub fn thread_sigmask(how: libc::c_int, set: &libc::sigset_t) -> SysResult<libc::sigset_t> {
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: `set` is an initialised sigset and `old` a writable one.
    let rc = unsafe { libc::pthread_sigmask(how, set, old.as_mut_ptr()) };
    if rc != 0 {
        return Err(err_from(
            "pthread_sigmask",
            how.to_string(),
            io::Error::from_raw_os_error(rc),
        ));
    }
    // SAFETY: pthread_sigmask filled `old`.
    Ok(unsafe { old.assume_init() })
}

/// Set `sig`'s disposition to SIG_IGN; returns the previous action.
pub fn ignore_signal(sig: libc::c_int) -> SysResult<libc::sigaction> {
    // SAFETY: sigaction is plain data; all-zero is an empty action.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = libc::SIG_IGN;
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: `act` is a valid action installing SIG_IGN (no code of ours
    // runs in signal context); `old` is writable.
    let rc = unsafe { libc::sigaction(sig, &act, old.as_mut_ptr()) };
    check(rc as libc::c_long, "sigaction", || sig.to_string())?;
    // SAFETY: sigaction filled `old`.
    Ok(unsafe { old.assume_init() })
}

/// Put back an action returned by [`ignore_signal`].
pub fn restore_signal(sig: libc::c_int, old: &libc::sigaction) -> SysResult<()> {
    // SAFETY: `old` is an action the kernel gave us for this signal.
    let rc = unsafe { libc::sigaction(sig, old, std::ptr::null_mut()) };
    check(rc as libc::c_long, "sigaction", || sig.to_string()).map(|_| ())
}

/// Unblock every signal.
pub fn unblock_all_signals() -> SysResult<()> {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigfillset initialises the writable set.
    let set = unsafe {
        libc::sigfillset(set.as_mut_ptr());
        set.assume_init()
    };
    sigprocmask(libc::SIG_UNBLOCK, &set)
}

/// Set the disposition of `sig` to SIG_DFL or SIG_IGN.
pub fn signal_disposition(sig: libc::c_int, ignore: bool) -> SysResult<()> {
    let handler = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: installing SIG_DFL/SIG_IGN runs no code of ours in signal context.
    let rc = unsafe { libc::signal(sig, handler) };
    if rc == libc::SIG_ERR {
        return Err(err("signal", sig.to_string()));
    }
    Ok(())
}

/// signalfd(-1, set, SFD_CLOEXEC|SFD_NONBLOCK).
pub fn signalfd(set: &libc::sigset_t) -> SysResult<OwnedFd> {
    // SAFETY: `set` is a valid sigset; -1 asks for a new descriptor.
    let rc = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    check(rc as libc::c_long, "signalfd", String::new)?;
    // SAFETY: fresh descriptor owned by us.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

/// Read one pending signal number from a non-blocking signalfd.
pub fn signalfd_read(fd: &OwnedFd) -> Option<libc::c_int> {
    let mut info = std::mem::MaybeUninit::<libc::signalfd_siginfo>::zeroed();
    let sz = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reading into a buffer of exactly the struct's size.
    let rc = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr() as *mut libc::c_void, sz) };
    if rc as usize != sz {
        return None;
    }
    // SAFETY: the kernel filled the whole structure.
    Some(unsafe { info.assume_init() }.ssi_signo as libc::c_int)
}

/// Everything a helper writes into `fd` until it closes it (or exits); a
/// read error ends the message as EOF does.
pub fn read_to_eof(fd: RawFd) -> Vec<u8> {
    let mut msg = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        msg.extend_from_slice(&buf[..n]);
    }
    msg
}

/// poll(2): the one wrapper. EINTR returns `Ok(0)` (nothing ready).
fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, writable slice of pollfds of the given length.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(rc as usize)
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Wait up to `timeout_ms` (-1 = forever) for `fd` to be readable.
/// EINTR counts as "not readable".
pub fn poll_in(fd: RawFd, timeout_ms: i32) -> SysResult<bool> {
    let mut p = [pollfd(fd, libc::POLLIN)];
    poll(&mut p, timeout_ms)
        .map(|n| n > 0)
        .map_err(|e| err_from("poll", fd.to_string(), e))
}

/// Wait for two descriptors: (`a` has an event, `b` has an event).
pub fn poll_two(a: RawFd, b: RawFd, timeout_ms: i32) -> io::Result<(bool, bool)> {
    let mut p = [pollfd(a, libc::POLLIN), pollfd(b, libc::POLLIN)];
    poll(&mut p, timeout_ms)?;
    Ok((p[0].revents != 0, p[1].revents != 0))
}

/// (readable, hung up) of `fd`, without waiting.
pub fn poll_now(fd: RawFd) -> (bool, bool) {
    let mut p = [pollfd(fd, libc::POLLIN)];
    if !matches!(poll(&mut p, 0), Ok(n) if n > 0) {
        return (false, false);
    }
    (
        p[0].revents & libc::POLLIN != 0,
        p[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
    )
}

/// Whether the other end of the stream socket `fd` has been closed
/// (poll(2) with no wait: POLLHUP/POLLRDHUP). Errors count as closed: the
/// caller uses it to learn that its parent is gone.
pub fn peer_closed(fd: RawFd) -> bool {
    let mut p = [pollfd(fd, libc::POLLRDHUP)];
    match poll(&mut p, 0) {
        Err(_) => true,
        Ok(_) => {
            p[0].revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR | libc::POLLNVAL) != 0
        }
    }
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
                    let n =
                        ((*c).cmsg_len as usize).saturating_sub(hdr) / std::mem::size_of::<RawFd>();
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

/// kill(2). ESRCH is not an error (the process is already gone).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> SysResult<()> {
    // SAFETY: integer arguments.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH) {
        return Err(err("kill", format!("pid={pid}, sig={sig}")));
    }
    Ok(())
}

/// How a child ended, as seen without reaping it.
#[derive(Debug, Clone, Copy)]
pub enum ChildState {
    /// Still running.
    Running,
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// waitid(P_PID, pid, WEXITED|WNOHANG|WNOWAIT): peek at the state.
pub fn peek_child(pid: libc::pid_t) -> SysResult<ChildState> {
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is a writable siginfo_t.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    check(rc as libc::c_long, "waitid", || format!("pid={pid}"))?;
    // SAFETY: waitid succeeded; a zeroed siginfo means "no state change".
    let info = unsafe { info.assume_init() };
    // SAFETY: si_pid/si_status are valid to read for SIGCHLD siginfo (and zero otherwise).
    let (spid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if spid == 0 {
        return Ok(ChildState::Running);
    }
    Ok(if info.si_code == libc::CLD_EXITED {
        ChildState::Exited(status)
    } else {
        ChildState::Signaled(status)
    })
}

/// The result of reaping a child with wait4.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    /// How it ended.
    pub state: ChildState,
    /// User CPU time in microseconds.
    pub user_us: u64,
    /// System CPU time in microseconds.
    pub sys_us: u64,
    /// Peak resident set size in KiB.
    pub max_rss_kb: u64,
}

/// wait4(pid, 0): reap the child (blocking) and collect its rusage.
pub fn reap(pid: libc::pid_t) -> SysResult<Reaped> {
    let mut status: libc::c_int = 0;
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: `status` and `ru` are writable.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, ru.as_mut_ptr()) };
        if rc == pid {
            break;
        }
        if rc < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Err(err("wait4", format!("pid={pid}")));
    }
    // SAFETY: wait4 filled the rusage.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    let state = if libc::WIFEXITED(status) {
        ChildState::Exited(libc::WEXITSTATUS(status))
    } else {
        ChildState::Signaled(libc::WTERMSIG(status))
    };
    Ok(Reaped {
        state,
        user_us: tv(ru.ru_utime),
        sys_us: tv(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss as u64,
    })
}

/// `_exit(2)`: leave at once, without running destructors or atexit hooks.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is always safe to call.
    unsafe { libc::_exit(code) }
}

/// ioctl(SIOCGIFFLAGS/SIOCSIFFLAGS) to set IFF_UP|IFF_RUNNING on `ifname`.
pub fn interface_up(ifname: &str) -> SysResult<()> {
    // SAFETY: plain socket(2) call.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(s as libc::c_long, "socket", || "AF_INET, SOCK_DGRAM".into())?;
    // SAFETY: fresh descriptor owned by us.
    let sock = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.len() >= req.ifr_name.len() {
        return Err(err_from(
            "ioctl(SIOCGIFFLAGS)",
            ifname,
            io::Error::new(io::ErrorKind::InvalidInput, "interface name too long"),
        ));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq for SIOCGIFFLAGS.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) };
    check(rc as libc::c_long, "ioctl(SIOCGIFFLAGS)", || ifname.into())?;
    // SAFETY: the union member ifru_flags was filled by SIOCGIFFLAGS.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: `req` is a valid ifreq for SIOCSIFFLAGS.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) };
    check(rc as libc::c_long, "ioctl(SIOCSIFFLAGS)", || ifname.into()).map(|_| ())
}

/// sethostname(2).
pub fn sethostname(name: &str) -> SysResult<()> {
    rustix::system::sethostname(name.as_bytes())
        .map_err(|e| err_from("sethostname", name, e.into()))
}

/// Local time broken down for log lines: (tm, gmtoff seconds).
pub fn localtime_now() -> (libc::tm, i64) {
    // SAFETY: time(NULL) is always safe.
    let t = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: tm is plain data; localtime_r fills it from `t`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    unsafe { libc::localtime_r(&t, &mut tm) };
    let off = tm.tm_gmtoff;
    (tm, off)
}

/// isatty(3).
pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: integer argument.
    unsafe { libc::isatty(fd) == 1 }
}

/// The name of a signal (`SIGKILL`), or `SIG<n>` when unknown.
pub fn signal_name(sig: i32) -> String {
    let n = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("SIG{sig}"),
    };
    n.to_string()
}

// ---- Execution modes (LISTEN / RERUN / EXECVE) ----------------------------

/// pipe2(O_CLOEXEC): (read end, write end).
pub fn pipe_cloexec() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    check(rc as libc::c_long, "pipe2", || "O_CLOEXEC".into())?;
    // SAFETY: both descriptors are fresh and owned by us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// splice(2) up to `len` bytes from `from` to `to` with
/// `SPLICE_F_MOVE|SPLICE_F_NONBLOCK` (one side must be a pipe). `Ok(0)` is
/// EOF on `from`; `WouldBlock` means nothing to read or no room to write.
pub fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: integer descriptors, NULL offsets (both are streams).
        let rc = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// daemon(3) with `nochdir` = 1, `noclose` = 0: fork, the parent exits,
/// the child starts a new session with 0/1/2 on /dev/null.
pub fn daemonize() -> SysResult<()> {
    // SAFETY: called while single-threaded; daemon() forks and _exits the parent.
    let rc = unsafe { libc::daemon(1, 0) };
    check(rc as libc::c_long, "daemon", || {
        "nochdir=1, noclose=0".into()
    })
    .map(|_| ())
}

/// unshare(2) with `CLONE_NEW*` flags.
pub fn unshare(flags: u64) -> SysResult<()> {
    // SAFETY: integer argument; the caller is single-threaded (CLONE_NEWUSER requires it).
    let rc = unsafe { libc::unshare(flags as libc::c_int) };
    check(rc as libc::c_long, "unshare", || {
        describe_clone_flags(flags)
    })
    .map(|_| ())
}

/// waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT): the pid and state of any child
/// that has ended, without reaping it; `None` when none has.
pub fn peek_any_child() -> Option<(libc::pid_t, ChildState)> {
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is a writable siginfo_t.
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc < 0 {
        return None;
    }
    // SAFETY: waitid succeeded; a zeroed siginfo means "no state change".
    let info = unsafe { info.assume_init() };
    // SAFETY: si_pid/si_status are valid to read for SIGCHLD siginfo (and zero otherwise).
    let (spid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if spid == 0 {
        return None;
    }
    let state = if info.si_code == libc::CLD_EXITED {
        ChildState::Exited(status)
    } else {
        ChildState::Signaled(status)
    };
    Some((spid, state))
}

/// Reap every ended child without blocking (waitpid(-1, WNOHANG) until none).
pub fn reap_zombies() {
    loop {
        let mut status = 0;
        // SAFETY: `status` is writable.
        let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if rc <= 0 {
            return;
        }
    }
}

/// Block until one of the (blocked) signals in `set` is pending, consume it.
pub fn sigwait(set: &libc::sigset_t) {
    // SAFETY: `set` is a valid initialised sigset; the siginfo is not requested.
    unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
}

/// close_range(first, ~0, 0): close every descriptor from `first` up.
pub fn close_from(first: u32) {
    // SAFETY: integer arguments; closing descriptors we no longer use.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
}

/// Raise the soft RLIMIT_NOFILE to `min(want, hard)` if it is lower.
// The cast is a no-op with glibc but not with musl (c_int there).
#[allow(clippy::unnecessary_cast)]
pub fn raise_nofile(want: u64) {
    if let Ok((soft, hard)) = get_rlimit(libc::RLIMIT_NOFILE as u32) {
        let target = want.min(hard);
        if soft < target {
            let _ = set_rlimit(libc::RLIMIT_NOFILE as u32, "RLIMIT_NOFILE", target, hard);
        }
    }
}

/// ioctl(FIONREAD): bytes waiting to be read on a pipe or socket (0 on error).
pub fn pending_bytes(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD as _, &mut n) };
    if rc < 0 {
        0
    } else {
        n.max(0) as usize
    }
}

/// Make sure descriptors 0, 1 and 2 are open (on /dev/null if not), so that
/// fresh descriptors never take those numbers.
pub fn ensure_std_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD on an integer descriptor only queries it.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            continue;
        }
        let p = c"/dev/null";
        // SAFETY: valid C string; the new descriptor takes the lowest free
        // number (this one) and is meant to stay open for the process's life.
        unsafe { libc::open(p.as_ptr(), libc::O_RDWR) };
    }
}
