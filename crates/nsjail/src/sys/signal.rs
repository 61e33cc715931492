//! Signal masks, dispositions, signalfd, names.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{check, err, err_from, SysResult};

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
pub fn signalfd_read(fd: BorrowedFd<'_>) -> Option<libc::c_int> {
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

/// Block until one of the (blocked) signals in `set` is pending, consume it.
pub fn sigwait(set: &libc::sigset_t) {
    // SAFETY: `set` is a valid initialised sigset; the siginfo is not requested.
    unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
}
