//! LISTEN mode (`-Ml` or any `--port`): a TCP server launching one jail per
//! connection.
//!
//! * The listener is an IPv6 socket on `bindhost` (default `::`, dual-stack;
//!   IPv4 text becomes `::ffff:a.b.c.d`), `SO_REUSEADDR`, non-blocking.
//! * Like nsjail, the jail never holds the connection: its stdin is a pipe
//!   and its stdout+stderr another, and the supervisor moves the bytes
//!   between socket and pipes with `splice(2)` (zero-copy in the kernel).
//!   The jail cannot `getpeername`, `setsockopt` or `shutdown` the client's
//!   socket, and the supervisor sees both ends close.
//! * One thread, one epoll set for the listener, the signalfd and every
//!   connection's socket and pipe ends (level-triggered; a direction whose
//!   destination is full waits for the destination instead of its source),
//!   so hundreds of concurrent connections cost only their descriptors.
//! * The client closing (EOF, RST) kills its jail; the jail closing its
//!   output (normally: exiting) closes the connection, after what it wrote
//!   has been sent. A jail that cannot be set up only drops its connection.
//! * `max_conns` (total) and `max_conns_per_ip` (same remote IPv6 address):
//!   connections over a limit are closed with a warning, as nsjail.
//! * SIGINT/SIGTERM/SIGHUP: kill and reap every jail, remove their cgroups,
//!   exit 0 (nsjail dies on SIGHUP without cleaning up; we clean up).
//!   SIGUSR1/SIGQUIT: list the live jails.
//! * The remote address appears in the log lines and the run report only:
//!   nsjail does not put it into the jail's environment, nor do we.
//! * Between clone and exec a new jail holds copies of all our descriptors
//!   (every one is close-on-exec, so the exec drops them); that is why
//!   descriptors are removed from the epoll set explicitly and connections
//!   are `shutdown` before they are closed.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv6Addr, Shutdown, SocketAddr, SocketAddrV6, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nsjail_config::spec::{JailSpec, ListenSpec};
use rustix::event::epoll::{self, EventData, EventFlags};

use crate::cgroup::Cgroups;
use crate::child::ChildIo;
use crate::report::LineSink;
use crate::supervisor::{self, signal_action, Running, SignalAction, SuperError, Supervisor};
use crate::sys;

/// Errors that stop the server before it serves.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// bind/listen failed.
    #[error("bind(host:[{host}], port:{port}) failed: {err} (use another --port or --bindhost, or stop the process using it)")]
    Bind {
        /// The address.
        host: String,
        /// The port.
        port: u32,
        /// The OS error text.
        err: String,
    },
    /// The jail plan could not be prepared.
    #[error("{0}")]
    Plan(String),
    /// The event loop's own calls failed.
    #[error("the LISTEN event loop failed: {0}")]
    Loop(String),
    /// A supervisor call failed.
    #[error(transparent)]
    Super(#[from] SuperError),
}

impl From<io::Error> for ListenError {
    fn from(e: io::Error) -> Self {
        ListenError::Loop(e.to_string())
    }
}

impl From<rustix::io::Errno> for ListenError {
    fn from(e: rustix::io::Errno) -> Self {
        ListenError::Loop(io::Error::from(e).to_string())
    }
}

/// nsjail's address text: `[ipv6]:port` (IPv4 peers as `::ffff:a.b.c.d`).
pub fn addr_text(a: &SocketAddr) -> String {
    let ip = match a {
        SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
        SocketAddr::V6(v6) => *v6.ip(),
    };
    format!("[{ip}]:{}", a.port())
}

fn ip6_of(a: &SocketAddr) -> Ipv6Addr {
    match a {
        SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
        SocketAddr::V6(v6) => *v6.ip(),
    }
}

const TOKEN_LISTENER: u64 = u64::MAX;
const TOKEN_SIGNALS: u64 = u64::MAX - 1;
const TOKEN_UNOTIFY: u64 = u64::MAX - 2;
const KIND_SOCK: u64 = 1;
const KIND_IN: u64 = 2;
const KIND_OUT: u64 = 3;
const CHUNK: usize = 1 << 16;

fn token(idx: usize, kind: u64) -> u64 {
    ((idx as u64) << 2) | kind
}

/// One connection and its jail.
struct Conn {
    remote: String,
    ip: Ipv6Addr,
    sock: Option<TcpStream>,
    /// Write end of the jail's stdin pipe.
    in_w: Option<OwnedFd>,
    /// Read end of the jail's stdout/stderr pipe.
    out_r: Option<OwnedFd>,
    /// Registered epoll interest of each descriptor (None = not registered).
    ev_sock: Option<EventFlags>,
    ev_in: Option<EventFlags>,
    ev_out: Option<EventFlags>,
    /// client→jail is waiting for room in the stdin pipe.
    in_full: bool,
    /// jail→client is waiting for room in the socket.
    sock_full: bool,
    /// The jail, until reaped.
    jail: Option<Running>,
    killed: bool,
}

struct Server<'a> {
    sup: Supervisor<'a>,
    listen: &'a ListenSpec,
    ep: OwnedFd,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    by_pid: HashMap<i32, usize>,
}

/// Run the LISTEN server until a fatal signal. Returns nsjail's exit code (0).
pub fn run_listen(
    spec: &JailSpec,
    cgroups: &Cgroups,
    sink: Option<&LineSink>,
) -> Result<i32, ListenError> {
    let Some(listen) = &spec.listen else {
        return Err(ListenError::Plan(
            "the jail spec has no LISTEN settings (lower it with mode LISTEN)".to_string(),
        ));
    };
    // First, so that no descriptor of ours can take the number 0, 1 or 2
    // (the jail's stdio is dup2'ed onto those).
    sys::ensure_std_fds();
    let sup = Supervisor::new(spec, cgroups, sink).map_err(|e| ListenError::Plan(e.to_string()))?;
    sys::raise_nofile(8192);
    let ip = listen.addr;
    let port = u32::from(listen.port);
    let listener = TcpListener::bind(SocketAddrV6::new(ip, listen.port, 0, 0)).map_err(|e| {
        ListenError::Bind {
            host: ip.to_string(),
            port,
            err: sys::errno_text(&e),
        }
    })?;
    listener.set_nonblocking(true)?;
    log::info!("Listening on {}", addr_text(&listener.local_addr()?));

    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        &listener,
        EventData::new_u64(TOKEN_LISTENER),
        EventFlags::IN,
    )?;
    epoll::add(
        &ep,
        sup.signals.fd(),
        EventData::new_u64(TOKEN_SIGNALS),
        EventFlags::IN,
    )?;
    let mut srv = Server {
        sup,
        listen,
        ep,
        conns: Vec::new(),
        free: Vec::new(),
        by_pid: HashMap::new(),
    };
    let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
    loop {
        srv.enforce_time_limits();
        let timeout = srv.next_deadline().map(|d| {
            let left = d.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
            rustix::event::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            }
        });
        events.clear();
        match epoll::wait(
            &srv.ep,
            rustix::buffer::spare_capacity(&mut events),
            timeout.as_ref(),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            let flags = ev.flags;
            match ev.data.u64() {
                TOKEN_LISTENER => srv.accept_all(&listener),
                TOKEN_UNOTIFY => srv.sup.tracer.serve(),
                TOKEN_SIGNALS => {
                    while let Some(sig) = srv.sup.signals.next() {
                        match signal_action(sig, false) {
                            SignalAction::Stop(sig) => {
                                log::info!(
                                    "Server stops due to fatal signal ({sig}) caught. Exiting"
                                );
                                srv.shutdown(sig);
                                srv.sup.close();
                                return Ok(0);
                            }
                            SignalAction::List => srv.display(),
                            SignalAction::Child => srv.reap_all(),
                            SignalAction::Ignore => {}
                        }
                    }
                }
                t => {
                    let idx = (t >> 2) as usize;
                    match t & 3 {
                        KIND_SOCK => srv.on_sock(idx, flags),
                        KIND_IN => srv.on_in(idx, flags),
                        KIND_OUT => srv.on_out(idx),
                        _ => {}
                    }
                    srv.update_interest(idx);
                }
            }
        }
    }
}

impl Server<'_> {
    fn conn(&mut self, idx: usize) -> Option<&mut Conn> {
        self.conns.get_mut(idx).and_then(|c| c.as_mut())
    }

    fn live_jails(&self) -> usize {
        self.by_pid.len()
    }

    fn accept_all(&mut self, listener: &TcpListener) {
        for _ in 0..64 {
            match listener.accept() {
                Ok((s, a)) => self.new_conn(s, a),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE/ENFILE/ENOMEM: the connection waits in the
                    // backlog; back off instead of spinning on it.
                    log::error!("accept() failed: {}", sys::errno_text(&e));
                    std::thread::sleep(Duration::from_millis(10));
                    return;
                }
            }
        }
    }

    fn new_conn(&mut self, sock: TcpStream, peer: SocketAddr) {
        let listen = self.listen;
        let remote = addr_text(&peer);
        let local = sock
            .local_addr()
            .map(|a| addr_text(&a))
            .unwrap_or_else(|_| "[unknown]".to_string());
        log::info!("New connection from: {remote} on: {local}");
        let max = listen.max_conns as usize;
        // Like nsjail: a jail counts until it is reaped.
        let live = self.conns.len() - self.free.len();
        if max != 0 && live >= max {
            log::warn!(
                "Rejecting connection from '{remote}', max_conns limit reached: {}",
                listen.max_conns
            );
            let _ = sock.shutdown(Shutdown::Both);
            return;
        }
        let ip = ip6_of(&peer);
        let per_ip = listen.max_conns_per_ip as usize;
        if per_ip != 0 {
            let n = self.conns.iter().flatten().filter(|c| c.ip == ip).count();
            if n >= per_ip {
                log::warn!(
                    "Rejecting connection from '{remote}', max_conns_per_ip limit reached: {}",
                    listen.max_conns_per_ip
                );
                let _ = sock.shutdown(Shutdown::Both);
                return;
            }
        }
        if let Err(e) = self.start_jail(sock, remote.clone(), ip) {
            log::warn!("Couldn't launch the child process for {remote}: {e}; connection dropped");
        }
    }

    fn start_jail(&mut self, sock: TcpStream, remote: String, ip: Ipv6Addr) -> Result<(), String> {
        sock.set_nonblocking(true).map_err(|e| e.to_string())?;
        let (in_r, in_w) = sys::pipe_cloexec().map_err(|e| e.to_string())?;
        let (out_r, out_w) = sys::pipe_cloexec().map_err(|e| e.to_string())?;
        let io = ChildIo {
            stdio: Some([in_r.as_fd(), out_w.as_fd(), out_w.as_fd()]),
            remote: remote.clone(),
            park: false,
        };
        let live = self.live_jails();
        let jail = match self.sup.launch(&io, live) {
            Ok(j) => j,
            Err(f) => {
                let _ = sock.shutdown(Shutdown::Both);
                return Err(f.error);
            }
        };
        drop((in_r, out_w));
        // A jail traced with seccomp_unotify: its listener joins the loop
        // (adding it again is harmless; closing it removes it).
        if let Some(l) = self.sup.tracer.listener() {
            let _ = epoll::add(
                &self.ep,
                l,
                EventData::new_u64(TOKEN_UNOTIFY),
                EventFlags::IN,
            );
        }
        let pid = jail.pid;
        let conn = Conn {
            remote,
            ip,
            sock: Some(sock),
            in_w: Some(in_w),
            out_r: Some(out_r),
            ev_sock: None,
            ev_in: None,
            ev_out: None,
            in_full: false,
            sock_full: false,
            jail: Some(jail),
            killed: false,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(conn);
                i
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        };
        self.by_pid.insert(pid, idx);
        self.update_interest(idx);
        Ok(())
    }

    /// (Re)register each descriptor of a connection with the interest its
    /// state calls for; a descriptor with nothing to wait for is removed
    /// from the set (so HUP/ERR on it cannot spin the loop).
    fn update_interest(&mut self, idx: usize) {
        let ep = self.ep.as_fd();
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        let want_sock = c.sock.as_ref().map(|_| {
            let mut f = EventFlags::RDHUP;
            if c.in_w.is_some() && !c.in_full {
                f |= EventFlags::IN;
            }
            if c.sock_full {
                f |= EventFlags::OUT;
            }
            f
        });
        let want_in = c
            .in_w
            .as_ref()
            .and_then(|_| c.in_full.then_some(EventFlags::OUT));
        let want_out = c
            .out_r
            .as_ref()
            .and_then(|_| (!c.sock_full).then_some(EventFlags::IN));
        reg(
            ep,
            c.sock.as_ref().map(|s| s.as_fd()),
            &mut c.ev_sock,
            want_sock,
            token(idx, KIND_SOCK),
        );
        reg(
            ep,
            c.in_w.as_ref().map(|s| s.as_fd()),
            &mut c.ev_in,
            want_in,
            token(idx, KIND_IN),
        );
        reg(
            ep,
            c.out_r.as_ref().map(|s| s.as_fd()),
            &mut c.ev_out,
            want_out,
            token(idx, KIND_OUT),
        );
    }

    fn on_sock(&mut self, idx: usize, flags: EventFlags) {
        if let Some(why) = self.sock_event(idx, flags) {
            self.disconnect(idx, why);
        }
    }

    fn sock_event(&mut self, idx: usize, flags: EventFlags) -> Option<&'static str> {
        const GONE: &str = "the client closed the connection";
        let ep = self.ep.as_fd();
        let c = self.conns.get_mut(idx).and_then(|c| c.as_mut())?;
        let sock = c.sock.as_ref().map(|s| s.as_fd())?;
        if flags.intersects(EventFlags::ERR | EventFlags::HUP) {
            return Some(GONE);
        }
        if flags.contains(EventFlags::OUT) {
            c.sock_full = false;
        }
        if !flags.intersects(EventFlags::IN | EventFlags::RDHUP) {
            return None;
        }
        match (c.in_w.as_ref().map(|f| f.as_fd()), c.in_full) {
            (Some(in_w), false) => match sys::splice(sock, in_w, CHUNK) {
                Ok(0) => Some(GONE),
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.in_full = true;
                    None
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    // The jail closed its stdin: stop reading the client.
                    close_fd(ep, &mut c.in_w, &mut c.ev_in);
                    None
                }
                Err(_) => Some("the connection failed"),
            },
            // Nothing reads the client any more and it hung up.
            _ if flags.contains(EventFlags::RDHUP) => Some(GONE),
            _ => None,
        }
    }

    fn on_in(&mut self, idx: usize, flags: EventFlags) {
        let ep = self.ep.as_fd();
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        c.in_full = false;
        if flags.contains(EventFlags::ERR) {
            // The jail's side of stdin is closed.
            close_fd(ep, &mut c.in_w, &mut c.ev_in);
        }
    }

    fn on_out(&mut self, idx: usize) {
        if let Some(why) = self.out_event(idx) {
            self.disconnect(idx, why);
        }
    }

    fn out_event(&mut self, idx: usize) -> Option<&'static str> {
        let c = self.conn(idx)?;
        let out_r = c.out_r.as_ref().map(|f| f.as_fd())?;
        let sock = c.sock.as_ref().map(|s| s.as_fd())?;
        match sys::splice(out_r, sock, CHUNK) {
            Ok(0) => Some("the jail closed its output"),
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if sys::pending_bytes(out_r) > 0 {
                    c.sock_full = true;
                    None
                } else if c.jail.is_none() {
                    Some("the jail has exited")
                } else {
                    None
                }
            }
            Err(_) => Some("the client closed the connection"),
        }
    }

    /// Send what the jail wrote before it ended, as far as the socket takes
    /// it without blocking. Returns true when everything went out.
    fn drain(&mut self, idx: usize) -> bool {
        let Some(c) = self.conn(idx) else { return true };
        let (Some(out_r), Some(sock)) = (
            c.out_r.as_ref().map(|f| f.as_fd()),
            c.sock.as_ref().map(|s| s.as_fd()),
        ) else {
            return true;
        };
        for _ in 0..64 {
            match sys::splice(out_r, sock, CHUNK) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if sys::pending_bytes(out_r) == 0 {
                        return true;
                    }
                    c.sock_full = true;
                    return false;
                }
                Err(_) => return true,
            }
        }
        false
    }

    /// Close the connection's descriptors; kill its jail if still running;
    /// forget the connection once its jail is reaped.
    fn disconnect(&mut self, idx: usize, why: &str) {
        let ep = self.ep.as_fd();
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        if c.sock.is_some() {
            log::debug!("Closing the connection of {} ({why})", c.remote);
            if let Some(s) = &c.sock {
                // Shutdown reaches the client at once even if a jail being
                // set up still holds a copy of the descriptor until its exec.
                let _ = s.shutdown(Shutdown::Both);
            }
            if c.ev_sock.take().is_some() {
                if let Some(s) = &c.sock {
                    let _ = epoll::delete(ep, s);
                }
            }
            c.sock = None;
        }
        close_fd(ep, &mut c.in_w, &mut c.ev_in);
        close_fd(ep, &mut c.out_r, &mut c.ev_out);
        match &c.jail {
            Some(j) if !c.killed => {
                c.killed = true;
                j.kill();
            }
            Some(_) => {}
            None => {
                self.conns[idx] = None;
                self.free.push(idx);
            }
        }
    }

    fn reap_all(&mut self) {
        while let Some((pid, state)) = sys::peek_any_child() {
            let Ok((reaped, syscall)) = self.sup.reap(pid, state) else {
                break;
            };
            let Some(idx) = self.by_pid.remove(&pid) else {
                log::debug!("Reaped pid={pid}, not a jail of ours");
                continue;
            };
            let left = self.live_jails();
            let Some(jail) = self.conn(idx).and_then(|c| c.jail.take()) else {
                continue;
            };
            self.sup.finish(jail, &reaped, syscall, left);
            // The jail is gone: close its stdin, flush its output, close.
            let ep = self.ep.as_fd();
            if let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) {
                close_fd(ep, &mut c.in_w, &mut c.ev_in);
            }
            if self.drain(idx) {
                self.disconnect(idx, "the jail has exited");
            } else {
                self.update_interest(idx);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .flatten()
            .filter_map(|c| c.jail.as_ref())
            .filter(|j| !j.time_limit_hit)
            .filter_map(|j| j.deadline)
            .min()
    }

    fn enforce_time_limits(&mut self) {
        let now = Instant::now();
        for c in self.conns.iter_mut().flatten() {
            if let Some(j) = c.jail.as_mut() {
                self.sup.enforce_time_limit(j, now);
            }
        }
    }

    fn display(&self) {
        let mut live: Vec<(i32, &str, Instant)> = self
            .conns
            .iter()
            .flatten()
            .filter_map(|c| c.jail.as_ref().map(|j| (j.pid, c.remote.as_str(), j.start)))
            .collect();
        live.sort_by_key(|x| x.0);
        supervisor::display_jails(live.into_iter(), self.sup.spec.time_limit);
    }

    /// Kill every jail (its report says `stopped` by `sig`), reap it,
    /// remove its cgroup, close every connection.
    fn shutdown(&mut self, sig: i32) {
        for c in self.conns.iter_mut().flatten() {
            if let Some(j) = &mut c.jail {
                j.stop(sig);
            }
        }
        let pids: Vec<i32> = self.by_pid.keys().copied().collect();
        for pid in pids {
            let Ok(reaped) = sys::reap(pid) else { continue };
            let Some(idx) = self.by_pid.remove(&pid) else {
                continue;
            };
            let left = self.live_jails();
            let Some(jail) = self.conn(idx).and_then(|c| c.jail.take()) else {
                continue;
            };
            self.sup.finish(jail, &reaped, None, left);
        }
        for idx in 0..self.conns.len() {
            self.disconnect(idx, "nsjail is stopping");
        }
    }
}

fn reg(
    ep: std::os::fd::BorrowedFd<'_>,
    fd: Option<std::os::fd::BorrowedFd<'_>>,
    cur: &mut Option<EventFlags>,
    want: Option<EventFlags>,
    tok: u64,
) {
    let Some(fd) = fd else {
        *cur = None;
        return;
    };
    if *cur == want {
        return;
    }
    let r = match (*cur, want) {
        (None, Some(w)) => epoll::add(ep, fd, EventData::new_u64(tok), w),
        (Some(_), Some(w)) => epoll::modify(ep, fd, EventData::new_u64(tok), w),
        (Some(_), None) => epoll::delete(ep, fd),
        (None, None) => Ok(()),
    };
    if let Err(e) = r {
        log::warn!(
            "epoll_ctl(fd={}) failed: {}",
            fd.as_raw_fd(),
            io::Error::from(e)
        );
    }
    *cur = want;
}

/// Deregister (explicitly: a copy held by a jail being set up would keep a
/// closed descriptor in the epoll set) and close.
fn close_fd(
    ep: std::os::fd::BorrowedFd<'_>,
    fd: &mut Option<OwnedFd>,
    cur: &mut Option<EventFlags>,
) {
    if let Some(f) = fd.take() {
        if cur.take().is_some() {
            let _ = epoll::delete(ep, &f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_text_as_nsjail() {
        let a: SocketAddr = "127.0.0.1:40760".parse().unwrap();
        assert_eq!(addr_text(&a), "[::ffff:127.0.0.1]:40760");
        let b: SocketAddr = "[::1]:5".parse().unwrap();
        assert_eq!(addr_text(&b), "[::1]:5");
    }
}
