//! The SIGSYS report: which syscall a seccomp-killed jail made.
//!
//! A killed process is a zombie whose `/proc/PID/syscall` no longer says
//! anything, and the syscall number travels only in the SIGSYS siginfo the
//! jail itself received. The kernel does log every seccomp kill as an audit
//! record (`type=1326 ... pid=P ... syscall=N`) to the kernel log, so the
//! supervisor opens `/dev/kmsg` (positioned at its end) before launching a
//! jail that has a policy, and reads the new records after a SIGSYS death.
//! Without access to the kernel log the syscall stays unknown.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::sys;

/// Open the kernel log for reading new records (non-blocking, at the end).
pub fn open_kmsg() -> Option<OwnedFd> {
    let fd = sys::open("/dev/kmsg", libc::O_RDONLY | libc::O_NONBLOCK, 0).ok()?;
    // SEEK_END on /dev/kmsg skips the old records.
    let _ = rustix::fs::seek(&fd, rustix::fs::SeekFrom::End(0));
    Some(fd)
}

/// Find `syscall=N` in an audit seccomp record for host pid `pid`.
pub fn parse_record(line: &str, pid: i32) -> Option<i64> {
    if !line.contains("type=1326") {
        return None;
    }
    let want = format!("pid={pid}");
    let mut found_pid = false;
    let mut nr = None;
    for w in line.split_whitespace() {
        if w == want {
            found_pid = true;
        }
        if let Some(v) = w.strip_prefix("syscall=") {
            nr = v.parse().ok();
        }
    }
    if found_pid {
        nr
    } else {
        None
    }
}

fn from_kmsg(fd: &OwnedFd, pid: i32) -> Option<i64> {
    // The audit record may reach the log a moment after the death (it is
    // printed by a kernel thread): look for up to 100 ms.
    let until = Instant::now() + Duration::from_millis(100);
    let mut buf = vec![0u8; 8192];
    loop {
        match sys::read(fd.as_fd(), &mut buf) {
            Ok(n) if n > 0 => {
                if let Some(nr) = parse_record(&String::from_utf8_lossy(&buf[..n]), pid) {
                    return Some(nr);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {} // overwritten records
            _ => {
                if Instant::now() >= until {
                    return None;
                }
                let _ = sys::poll_in(fd.as_fd(), 10);
            }
        }
    }
}

/// Log nsjail's seccomp-violation warnings for `pid` (killed by SIGSYS, not
/// yet reaped) and return the syscall's name (or number) when known.
pub fn violation(pid: i32, kmsg: Option<&OwnedFd>) -> Option<String> {
    log::warn!("pid={pid} committed a syscall/seccomp violation and exited with SIGSYS");
    let nr = kmsg.and_then(|k| from_kmsg(k, pid));
    match nr {
        Some(nr) => {
            let name = u32::try_from(nr)
                .ok()
                .and_then(|n| kafel::syscall_name(kafel::Arch::native(), n))
                .map(str::to_string);
            let shown = name.clone().unwrap_or_else(|| format!("#{nr}"));
            log::warn!("pid={pid} the forbidden syscall was {shown} (number {nr})");
            Some(name.unwrap_or_else(|| nr.to_string()))
        }
        None => {
            log::warn!(
                "pid={pid} syscall unknown (the kernel log was not readable); see 'dmesg' or 'journalctl -ek' for the audit record"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_record() {
        let l = "5,1234,99,-;audit: type=1326 audit(1.2:3): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=4242 comm=\"python3\" exe=\"/usr/bin/python3.11\" sig=31 arch=c000003e syscall=110 compat=0 ip=0x7f code=0x80000000";
        assert_eq!(parse_record(l, 4242), Some(110));
        assert_eq!(parse_record(l, 424), None);
        assert_eq!(parse_record("6,1,1,-;hello pid=4242 syscall=1", 4242), None);
    }
}
