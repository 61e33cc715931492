//! Network interfaces (ioctl).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{check, err_from, SysResult};

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
