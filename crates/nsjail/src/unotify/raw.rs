//! The seccomp user-notification calls, each wrapped once.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

/// SECCOMP_IOCTL_NOTIF_RECV (call only when the listener is readable).
pub fn notif_recv(fd: BorrowedFd<'_>) -> io::Result<libc::seccomp_notif> {
    // SAFETY: the kernel requires a zeroed structure; all-zero is valid.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `n` is a writable seccomp_notif, the size the request encodes.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut n) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n)
}

/// SECCOMP_IOCTL_NOTIF_ID_VALID: the caller of `id` still waits.
pub fn notif_id_valid(fd: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    // SAFETY: `id` is a readable u64.
    unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
            &mut id,
        ) == 0
    }
}

/// SECCOMP_IOCTL_NOTIF_SEND with SECCOMP_USER_NOTIF_FLAG_CONTINUE.
pub fn notif_continue(fd: BorrowedFd<'_>, id: u64) -> io::Result<()> {
    let mut r = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    loop {
        // SAFETY: `r` is a valid seccomp_notif_resp.
        let rc =
            unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut r) };
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
