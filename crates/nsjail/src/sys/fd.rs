//! Descriptors: open, dup, close-on-exec, pipes and socketpairs, reads and
//! writes, poll, SCM_RIGHTS, splice, lseek.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{check, cstring, err, err_from, SysResult};

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

/// Set or clear FD_CLOEXEC on descriptor number `fd` (a number the jail is
/// to inherit, or not: `pass_fd`).
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
pub fn dup2(old: BorrowedFd<'_>, new: RawFd) -> SysResult<()> {
    // SAFETY: integer arguments; errors are reported via errno.
    let rc = unsafe { libc::dup2(old.as_raw_fd(), new) };
    check(rc as libc::c_long, "dup2", || {
        format!("{} -> {new}", old.as_raw_fd())
    })
    .map(|_| ())
}

/// fcntl(F_DUPFD_CLOEXEC): a close-on-exec duplicate of `fd` numbered >= `min`.
pub fn dup_cloexec(fd: BorrowedFd<'_>, min: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: integer arguments; errors are reported via errno.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    check(rc as libc::c_long, "fcntl(F_DUPFD_CLOEXEC)", || {
        fd.as_raw_fd().to_string()
    })?;
    // SAFETY: `rc` is a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

/// [`dup_cloexec`] of a descriptor *number* given by the operator
/// (`-L N`, `log_fd: N`): it may not be open, which is an error here.
pub fn dup_number_cloexec(fd: RawFd, min: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: integer arguments; a closed or invalid number gives EBADF.
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
pub fn flock_exclusive(fd: BorrowedFd<'_>, wait: bool) -> io::Result<bool> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock(2) takes a descriptor and flags; an invalid fd is EBADF.
        let rc = unsafe { libc::flock(fd.as_raw_fd(), op) };
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
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid readable slice.
        let rc = unsafe {
            libc::write(
                fd.as_raw_fd(),
                buf.as_ptr() as *const libc::c_void,
                buf.len(),
            )
        };
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
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a valid writable slice.
        let rc = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
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

/// Everything a helper writes into `fd` until it closes it (or exits); a
/// read error ends the message as EOF does.
pub fn read_to_eof(fd: BorrowedFd<'_>) -> Vec<u8> {
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

fn pollfd(fd: BorrowedFd<'_>, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }
}

/// Wait up to `timeout_ms` (-1 = forever) for `fd` to be readable.
/// EINTR counts as "not readable".
pub fn poll_in(fd: BorrowedFd<'_>, timeout_ms: i32) -> SysResult<bool> {
    let mut p = [pollfd(fd, libc::POLLIN)];
    poll(&mut p, timeout_ms)
        .map(|n| n > 0)
        .map_err(|e| err_from("poll", fd.as_raw_fd().to_string(), e))
}

/// Wait for two descriptors: (`a` has an event, `b` has an event).
pub fn poll_two(a: BorrowedFd<'_>, b: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<(bool, bool)> {
    let mut p = [pollfd(a, libc::POLLIN), pollfd(b, libc::POLLIN)];
    poll(&mut p, timeout_ms)?;
    Ok((p[0].revents != 0, p[1].revents != 0))
}

/// (readable, hung up) of `fd`, without waiting.
pub fn poll_now(fd: BorrowedFd<'_>) -> (bool, bool) {
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
pub fn peer_closed(fd: BorrowedFd<'_>) -> bool {
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
pub fn send_fd(sock: BorrowedFd<'_>, byte: u8, fd: BorrowedFd<'_>) -> io::Result<()> {
    send_bytes_fd(sock, &[byte], fd)
}

/// sendmsg `data` with `fd` attached (SCM_RIGHTS).
pub fn send_bytes_fd(sock: BorrowedFd<'_>, data: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; CMSG_BUF / 8];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    // SAFETY: CMSG_SPACE is a pure size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: the control buffer (aligned, CMSG_BUF bytes) holds one header with
    // one int, as msg_controllen says; `data` is only read by sendmsg.
    let rc = unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd.as_raw_fd());
        libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// recvmsg into `buf`, taking a descriptor passed with the data.
pub fn recv_with_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
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
        let rc = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
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

/// isatty(3).
pub fn isatty(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: integer argument.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

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
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: integer descriptors, NULL offsets (both are streams).
        let rc = unsafe {
            libc::splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
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

/// close_range(first, ~0, 0): close every descriptor from `first` up.
pub fn close_from(first: u32) {
    // SAFETY: integer arguments; closing descriptors we no longer use.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
}

/// Close every descriptor from 3 up except those in `keep` (close_range
/// over the gaps).
pub fn close_all_except(keep: &[RawFd]) {
    for (first, last) in ranges_except(keep) {
        // SAFETY: integer arguments; closing descriptors we do not use.
        unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    }
}

/// The descriptor ranges (first, last; inclusive) from 3 up to `u32::MAX`
/// that leave out every number of `keep` (numbers below 3 are ignored).
pub fn ranges_except(keep: &[RawFd]) -> Vec<(u32, u32)> {
    let mut keep: Vec<u32> = keep.iter().filter(|f| **f > 2).map(|f| *f as u32).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut out = Vec::with_capacity(keep.len() + 1);
    let mut next = 3u32;
    for k in keep {
        if k > next {
            out.push((next, k - 1));
        }
        next = k + 1;
    }
    out.push((next, u32::MAX));
    out
}

/// ioctl(FIONREAD): bytes waiting to be read on a pipe or socket (0 on error).
pub fn pending_bytes(fd: BorrowedFd<'_>) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into `n`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD as _, &mut n) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_leave_out_the_kept_numbers() {
        assert_eq!(ranges_except(&[]), vec![(3, u32::MAX)]);
        assert_eq!(
            ranges_except(&[9, 1, 4, 9, 5]),
            vec![(3, 3), (6, 8), (10, u32::MAX)]
        );
        assert_eq!(ranges_except(&[3]), vec![(4, u32::MAX)]);
    }
}
