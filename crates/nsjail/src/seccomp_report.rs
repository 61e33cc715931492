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

/// What an audit seccomp record (`type=1326`) says about the killed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// `syscall=N`.
    pub nr: i64,
    /// `arch=HEX`: the `AUDIT_ARCH_*` of the call (i386's for `int 0x80`
    /// from a 64-bit program), when the record has it.
    pub arch: Option<u32>,
}

/// Find the audit seccomp record for host pid `pid` in `line`.
pub fn parse_record(line: &str, pid: i32) -> Option<Record> {
    if !line.contains("type=1326") {
        return None;
    }
    let want = format!("pid={pid}");
    let mut found_pid = false;
    let mut nr = None;
    let mut arch = None;
    for w in line.split_whitespace() {
        if w == want {
            found_pid = true;
        }
        if let Some(v) = w.strip_prefix("syscall=") {
            nr = v.parse().ok();
        }
        if let Some(v) = w.strip_prefix("arch=") {
            arch = u32::from_str_radix(v, 16).ok();
        }
    }
    if found_pid {
        nr.map(|nr| Record { nr, arch })
    } else {
        None
    }
}

fn from_kmsg(fd: &OwnedFd, pid: i32) -> Option<Record> {
    // The audit record may reach the log a moment after the death (it is
    // printed by a kernel thread): look for up to 100 ms.
    let until = Instant::now() + Duration::from_millis(100);
    let mut buf = vec![0u8; 8192];
    loop {
        match sys::read(fd.as_fd(), &mut buf) {
            Ok(n) if n > 0 => {
                if let Some(r) = parse_record(&String::from_utf8_lossy(&buf[..n]), pid) {
                    return Some(r);
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

/// The call a seccomp kill stopped, as the run report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The syscall's name in its architecture's table, else its number.
    pub syscall: String,
    /// The architecture of the call from the audit record (`x86_64`,
    /// `i386`, `x32`, `aarch64`, `arm`, or `0x...` for one we have no table
    /// of); the native one when the record has no `arch=`.
    pub arch: String,
}

/// Name `nr` from the table of the architecture the audit record gives
/// (ours: a compat call, e.g. i386 `int 0x80` getpid = 20 on x86_64, is named
/// from the i386 table, not as x86_64's 20 = writev).
pub fn name_call(r: Record) -> Violation {
    let native = kafel::Arch::native();
    let arch = match r.arch {
        None => Some(native),
        Some(a) => kafel::Arch::ALL.into_iter().find(|x| x.audit_arch() == a),
    };
    let (arch_name, name) = match (arch, u32::try_from(r.nr).ok()) {
        (Some(kafel::Arch::X86_64), Some(n)) if n & kafel::X32_SYSCALL_BIT != 0 => (
            "x32".to_string(),
            // x32 shares x86_64's numbers below 512 (its own calls are 512+).
            Some(n & !kafel::X32_SYSCALL_BIT)
                .filter(|n| *n < 512)
                .and_then(|n| kafel::syscall_name(kafel::Arch::X86_64, n)),
        ),
        (Some(a), Some(n)) => (a.name().to_string(), kafel::syscall_name(a, n)),
        (Some(a), None) => (a.name().to_string(), None),
        (None, _) => (format!("{:#x}", r.arch.unwrap_or(0)), None),
    };
    Violation {
        syscall: name.map_or_else(|| r.nr.to_string(), str::to_string),
        arch: arch_name,
    }
}

/// Log nsjail's seccomp-violation warnings for `pid` (killed by SIGSYS, not
/// yet reaped) and return the call, named from its architecture's table,
/// when the kernel log is readable.
pub fn violation(pid: i32, kmsg: Option<&OwnedFd>) -> Option<Violation> {
    log::warn!("pid={pid} committed a syscall/seccomp violation and exited with SIGSYS");
    match kmsg.and_then(|k| from_kmsg(k, pid)) {
        Some(r) => {
            let v = name_call(r);
            log::warn!(
                "pid={pid} the forbidden syscall was {} (number {}, arch {})",
                v.syscall,
                r.nr,
                v.arch
            );
            Some(v)
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
        let r = parse_record(l, 4242).unwrap();
        assert_eq!(r.nr, 110);
        assert_eq!(r.arch, Some(kafel::AUDIT_ARCH_X86_64));
        assert_eq!(parse_record(l, 424), None);
        assert_eq!(parse_record("6,1,1,-;hello pid=4242 syscall=1", 4242), None);
    }

    #[test]
    fn compat_calls_are_named_from_their_own_table() {
        let native = kafel::Arch::native();
        // i386 int 0x80 getpid (20) is not x86_64's 20 (writev).
        let v = name_call(Record {
            nr: 20,
            arch: Some(kafel::AUDIT_ARCH_I386),
        });
        assert_eq!((v.syscall.as_str(), v.arch.as_str()), ("getpid", "i386"));
        let n = kafel::syscall_number(native, "getpid").unwrap();
        let v = name_call(Record {
            nr: n as i64,
            arch: Some(native.audit_arch()),
        });
        assert_eq!(
            (v.syscall.as_str(), v.arch.as_str()),
            ("getpid", native.name())
        );
        // x32 getpid
        let v = name_call(Record {
            nr: 0x4000_0027,
            arch: Some(kafel::AUDIT_ARCH_X86_64),
        });
        assert_eq!((v.syscall.as_str(), v.arch.as_str()), ("getpid", "x32"));
        // an architecture we have no table of: the number, the raw arch
        let v = name_call(Record {
            nr: 5,
            arch: Some(0x1234),
        });
        assert_eq!((v.syscall.as_str(), v.arch.as_str()), ("5", "0x1234"));
    }
}
