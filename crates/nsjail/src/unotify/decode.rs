//! Decoding one seccomp notification: the syscall's name and arguments,
//! path arguments read from `/proc/PID/mem` and resolved against the
//! caller's cwd or dirfd (checked in the jail's root and on the host), open
//! flags, socket type and address.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use super::raw;
use super::Role::*;
use super::{MAX_ARGV, MAX_ARG_LEN, MAX_PATH, TRACED};

/// `Stat.Path.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum FileKind {
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
    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn exists(self) -> bool {
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
pub(super) enum AccessMode {
    Unspecified,
    RdOnly,
    WrOnly,
    RdWr,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct PathInfo {
    pub(super) path: String,
    pub(super) jail: FileKind,
    pub(super) main: FileKind,
    pub(super) mode: AccessMode,
}

/// `Stat.NetResource.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum NetKind {
    Ipv4,
    Ipv6,
    Unix,
    Netlink,
}

impl NetKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            NetKind::Ipv4 => "IPV4",
            NetKind::Ipv6 => "IPV6",
            NetKind::Unix => "UNIX",
            NetKind::Netlink => "NETLINK",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct NetInfo {
    pub(super) kind: NetKind,
    pub(super) endpoint: String,
    pub(super) port: Option<u16>,
    pub(super) socket_path: Option<PathInfo>,
}

/// One thing a syscall touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Touched {
    Fs(PathInfo),
    Net(NetInfo),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) what: Touched,
    pub(super) syscall: String,
    pub(super) args: String,
}

/// The traced process's memory, opened on first use.
pub(super) struct Mem {
    pub(super) pid: u32,
    pub(super) file: Option<Option<File>>,
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
pub(super) fn open_flags(flags: u64) -> (AccessMode, String) {
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

pub(super) fn access_text(m: u64) -> String {
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
pub(super) fn decode(n: &libc::seccomp_notif) -> Vec<Record> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
