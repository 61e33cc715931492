//! TUN devices (user_net NSTUN).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{check, err_from, open, SysResult};

/// `TUNSETIFF` = `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `IFF_TUN` (layer 3, no Ethernet header).
const IFF_TUN: libc::c_short = 0x0001;
/// `IFF_NO_PI` (no packet information header before each packet).
const IFF_NO_PI: libc::c_short = 0x1000;

/// Open `/dev/net/tun` (non-blocking, close-on-exec) and create the TUN
/// interface `name` (IFF_TUN|IFF_NO_PI, as nsjail) in the caller's network
/// namespace.
pub fn tun_create(name: &str) -> SysResult<OwnedFd> {
    let fd = open(
        "/dev/net/tun",
        libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        0,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= req.ifr_name.len() {
        return Err(err_from(
            "ioctl(TUNSETIFF)",
            name,
            io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"),
        ));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = IFF_TUN | IFF_NO_PI;
    // SAFETY: `req` is a valid ifreq for TUNSETIFF on a /dev/net/tun descriptor.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req) };
    check(rc as libc::c_long, "ioctl(TUNSETIFF)", || name.into())?;
    Ok(fd)
}
