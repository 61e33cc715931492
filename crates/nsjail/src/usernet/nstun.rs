//! NSTUN, the supervisor's side: a user-space TCP/UDP/ICMP NAT for every
//! jail's TUN device, in ONE event loop per supervisor.
//!
//! * The loop runs in a helper process forked from the supervisor on its
//!   first NSTUN jail (ours; nsjail runs a thread per jail). A process, not
//!   a thread: the supervisor clones jails, and a clone taken while another
//!   thread holds a lock (malloc, the logger, stdio) would deadlock the
//!   jail. It is invisible to the supervisor's reaping (no exit signal),
//!   dies with the supervisor (parent-death signal, control socket EOF), and
//!   is killed and reaped when the supervisor ends ([`shutdown`]).
//! * The supervisor hands each jail's TUN descriptor over a seqpacket socket
//!   ([`attach`]) and takes its counters back when the jail ends
//!   ([`detach`]); the helper closes the jail's flows and listeners then.
//! * TCP: the jail's connections are terminated by smoltcp (a well-kept
//!   user-space TCP/IP stack; no TCP state machine of ours). A SYN is held
//!   until the host connection (from nsjail's network namespace) is made;
//!   then a smoltcp socket listening on exactly the original destination
//!   takes the SYN, so a refused host connection is a RST to the jail. Bytes
//!   move between the smoltcp socket and the host socket, bounded by the
//!   socket buffers (`flow_buffer` each way).
//! * UDP and ICMP echo: one host socket per (jail port, destination), the
//!   replies written back as IP packets (ENCAP_SOCKS5: through a SOCKS5 UDP
//!   association; ENCAP_CONNECT cannot carry UDP: dropped, as nsjail); REJECT and refusals answered by
//!   smoltcp (ICMP port unreachable / TCP RST for packets no socket takes).
//! * nsjail's SSRF gate: packets to loopback, ANY, broadcast, multicast (and
//!   for IPv6 link-local, v4-mapped) are dropped; only a rule's target
//!   (REDIRECT, ENCAP_*) may be loopback. Spoofed sources and fragments are
//!   dropped too.
//! * Rules: first match per family and direction, no match = ALLOW; DROP,
//!   REJECT, ALLOW, REDIRECT, ENCAP_SOCKS5 (TCP and UDP), ENCAP_CONNECT (TCP);
//!   HOST_TO_GUEST REDIRECT rules are TCP/UDP listeners on the host whose
//!   connections (datagrams) are forwarded into the jail, seen there as
//!   coming from the gateway address.
//! * Bounds: at most `max_flows` flows per jail (more are refused and
//!   counted); flows idle for [`UDP_IDLE`] (UDP/ICMP) or stuck connecting
//!   for [`CONNECT_TIMEOUT`] are closed.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nsjail_config::spec::usernet::{FlowMatch, NstunAction, NstunSpec, L4};
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::net::{AddressFamily, Protocol, SocketFlags, SocketType};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as SInstant;
use smoltcp::wire::{
    HardwareAddress, Icmpv4Packet, Icmpv6Packet, IpAddress, IpCidr, IpProtocol, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpPacket, UdpPacket, UdpRepr,
};

use super::NetCounters;
use crate::sys::{self, ChildState, Spawned};

/// UDP and ICMP flows idle this long are closed (ours).
pub const UDP_IDLE: Duration = Duration::from_secs(60);
/// A host connection not made within this is refused (RST) (ours).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- supervisor

/// The helper process and its control socket.
struct Helper {
    pid: i32,
    pidfd: OwnedFd,
    ctl: OwnedFd,
}

static HELPER: Mutex<Option<Helper>> = Mutex::new(None);

fn helper_for(spec: &NstunSpec) -> Result<std::sync::MutexGuard<'static, Option<Helper>>, String> {
    let mut h = HELPER.lock().unwrap_or_else(|e| e.into_inner());
    let alive = h.as_ref().is_some_and(|x| {
        matches!(
            sys::reap_pidfd(x.pidfd.as_fd(), true),
            Ok(ChildState::Running)
        )
    });
    if !alive {
        if let Some(dead) = h.take() {
            log::warn!(
                "the NSTUN network process (pid {}) had ended; starting a new one",
                dead.pid
            );
        }
        let (a, b) = sys::seqpacket_pair().map_err(|e| e.to_string())?;
        match sys::spawn_quiet().map_err(|e| format!("starting the NSTUN network process: {e}"))? {
            Spawned::Child => {
                drop(a);
                let code = helper_main(spec.clone(), b);
                sys::exit_now(code)
            }
            Spawned::Parent(pid, pidfd) => {
                drop(b);
                log::debug!("NSTUN network process started, pid {pid}");
                *h = Some(Helper { pid, pidfd, ctl: a });
            }
        }
    }
    Ok(h)
}

fn ask(h: &Helper, msg: &[u8], fd: Option<&OwnedFd>) -> Result<String, String> {
    let sent = match fd {
        Some(f) => sys::send_bytes_fd(h.ctl.as_fd(), msg, f.as_fd()),
        None => sys::write_all(h.ctl.as_fd(), msg),
    };
    sent.map_err(|e| format!("talking to the NSTUN network process: {e}"))?;
    let mut buf = [0u8; 1024];
    match sys::read(h.ctl.as_fd(), &mut buf) {
        Ok(0) | Err(_) => Err("the NSTUN network process ended".to_string()),
        Ok(n) => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
    }
}

/// Hand the jail `pid`'s TUN device to the network process.
///
/// # Errors
/// The process could not be started, or refused the jail (a host listener
/// that cannot be bound).
pub fn attach(spec: &NstunSpec, pid: i32, tun: OwnedFd) -> Result<(), String> {
    let h = helper_for(spec)?;
    let reply = ask(
        h.as_ref().expect("helper"),
        format!("A{pid}").as_bytes(),
        Some(&tun),
    )?;
    match reply.strip_prefix("OK") {
        Some(_) => Ok(()),
        None => Err(reply.strip_prefix("ERR ").unwrap_or(&reply).to_string()),
    }
}

/// The jail `pid` has ended: close its flows, return its counters.
pub fn detach(pid: i32) -> Option<NetCounters> {
    let h = HELPER.lock().unwrap_or_else(|e| e.into_inner());
    let reply = ask(h.as_ref()?, format!("D{pid}").as_bytes(), None).ok()?;
    let v: Vec<u64> = reply
        .strip_prefix("S ")?
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 4).then(|| NetCounters {
        flows_opened: v[0],
        flows_refused: v[1],
        bytes_out: v[2],
        bytes_in: v[3],
    })
}

/// End the network process (supervisor exit): close its socket, reap it.
pub fn shutdown() {
    if let Some(h) = HELPER.lock().unwrap_or_else(|e| e.into_inner()).take() {
        drop(h.ctl);
        if !sys::poll_in(h.pidfd.as_fd(), 1000).unwrap_or(false) {
            let _ = sys::pidfd_kill(h.pidfd.as_fd(), libc::SIGKILL);
        }
        let _ = sys::reap_pidfd(h.pidfd.as_fd(), false);
    }
}

// ------------------------------------------------------------ the helper

/// The TUN device as a smoltcp device: received packets are queued by the
/// loop (after the rule checks), sent ones written straight to the TUN.
struct TunDev {
    fd: OwnedFd,
    rxq: VecDeque<Vec<u8>>,
    mtu: usize,
    /// Reused for every packet smoltcp sends.
    tx: Vec<u8>,
}

struct RxTok(Vec<u8>);
struct TxTok<'a>(&'a OwnedFd, &'a mut Vec<u8>);

impl smoltcp::phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let buf = self.1;
        buf.clear();
        buf.resize(len, 0);
        let r = f(buf);
        tun_write(self.0, buf);
        r
    }
}

/// One packet to the jail; a full TUN queue drops it (TCP retransmits).
fn tun_write(fd: &OwnedFd, pkt: &[u8]) {
    let _ = rustix::io::write(fd, pkt);
}

impl Device for TunDev {
    type RxToken<'a> = RxTok;
    type TxToken<'a> = TxTok<'a>;
    fn receive(&mut self, _t: SInstant) -> Option<(RxTok, TxTok<'_>)> {
        let p = self.rxq.pop_front()?;
        Some((RxTok(p), TxTok(&self.fd, &mut self.tx)))
    }
    fn transmit(&mut self, _t: SInstant) -> Option<TxTok<'_>> {
        Some(TxTok(&self.fd, &mut self.tx))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.mtu;
        // The jail's kernel checksums what it sends; verifying 64 KiB
        // segments again costs throughput and protects nothing (a jail
        // sending bad checksums only corrupts its own data).
        c.checksum.tcp = smoltcp::phy::Checksum::Tx;
        c.checksum.ipv4 = smoltcp::phy::Checksum::Tx;
        c
    }
}

/// A proxy handshake in progress (ENCAP_SOCKS5 / ENCAP_CONNECT, TCP).
enum Proxy {
    Socks5Greeting,
    Socks5Connect,
    Connect,
}

enum TcpState {
    /// The host connection is being made; the jail's SYN waits.
    Connecting {
        syn: Vec<u8>,
        proxy: Option<Proxy>,
        since: Instant,
    },
    /// Connected to the proxy, talking to it.
    Handshake {
        syn: Vec<u8>,
        proxy: Proxy,
        got: Vec<u8>,
        since: Instant,
    },
    /// Bytes flow.
    Open {
        handle: SocketHandle,
        /// Bytes from the host not yet in the smoltcp socket (after a proxy reply).
        early: Vec<u8>,
    },
}

struct TcpFlow {
    host: TcpStream,
    state: TcpState,
    host_eof: bool,
    host_wr_shut: bool,
}

struct UdpFlow {
    sock: UdpSocket,
    /// The jail's end.
    guest: SocketAddr,
    /// Where the jail sent it (the replies' source).
    orig: SocketAddr,
    last: Instant,
    /// ENCAP_SOCKS5: the UDP ASSOCIATE control connection.
    socks: Option<Socks5Udp>,
}

/// A SOCKS5 UDP association in the making (or made: `ready`).
struct Socks5Udp {
    ctl: TcpStream,
    /// 0 connecting, 1 greeting sent, 2 ASSOCIATE sent, 3 ready.
    step: u8,
    got: Vec<u8>,
    /// Datagrams from the jail waiting for the association (at most 16).
    queue: Vec<Vec<u8>>,
}

/// The SOCKS5 UDP request header for `dst` (RFC 1928 §7).
fn socks5_udp_header(dst: SocketAddr) -> Vec<u8> {
    let mut h = vec![0, 0, 0];
    match dst.ip() {
        IpAddr::V4(a) => {
            h.push(1);
            h.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            h.push(4);
            h.extend_from_slice(&a.octets());
        }
    }
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

/// The payload of a SOCKS5 UDP reply (its header skipped).
fn socks5_udp_payload(d: &[u8]) -> Option<&[u8]> {
    let len = match d.get(3)? {
        1 => 10,
        4 => 22,
        3 => 7 + *d.get(4)? as usize,
        _ => return None,
    };
    (d.len() >= len && d[2] == 0).then(|| &d[len..])
}

struct IcmpFlow {
    sock: OwnedFd,
    raw: bool,
    guest: IpAddr,
    orig: IpAddr,
    ident: u16,
    last: Instant,
}

/// A HOST_TO_GUEST UDP association: a host peer of a UDP listener, seen in
/// the jail as the gateway address and a port of its own.
struct InboundUdp {
    listener: usize,
    peer: SocketAddr,
    last: Instant,
}

/// A flow's key: (the jail's end, the other end as the jail sees it).
type Key = (SocketAddr, SocketAddr);

struct Jail {
    dev: TunDev,
    iface: Interface,
    sockets: SocketSet<'static>,
    guest4: Option<Ipv4Addr>,
    guest6: Option<Ipv6Addr>,
    gw4: Option<Ipv4Addr>,
    gw6: Option<Ipv6Addr>,
    tcp: HashMap<Key, TcpFlow>,
    udp: HashMap<Key, UdpFlow>,
    icmp: HashMap<(IpAddr, u16), IcmpFlow>,
    listeners: Vec<(TcpListener, SocketAddr, Option<IpAddr>, u16)>,
    /// HOST_TO_GUEST UDP: (socket, listen address, jail address, jail port).
    udp_listeners: Vec<(UdpSocket, SocketAddr, Option<IpAddr>, u16)>,
    /// Inbound UDP associations by the gateway end the jail answers to.
    inbound_udp: HashMap<SocketAddr, InboundUdp>,
    counters: NetCounters,
    next_port: u16,
    warned_cap: bool,
}

/// What an epoll token stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Tun,
    Tcp(Key),
    Udp(Key),
    Icmp((IpAddr, u16)),
    Listener(usize),
    UdpListener(usize),
    UdpCtl(Key),
}

/// Closed TCP sockets kept for reuse (their buffers), at most.
const POOL: usize = 64;

struct Loop {
    spec: NstunSpec,
    /// Closed smoltcp TCP sockets, reused (see [`POOL`]).
    pool: Vec<tcp::Socket<'static>>,
    /// Scratch for datagrams from host sockets.
    scratch: Vec<u8>,
    ep: OwnedFd,
    jails: HashMap<i32, Jail>,
    owners: HashMap<RawFd, (i32, What)>,
    start: Instant,
}

const CTL: u64 = u64::MAX;

fn now_s(start: Instant) -> SInstant {
    SInstant::from_micros(start.elapsed().as_micros() as i64)
}

fn helper_main(spec: NstunSpec, ctl: OwnedFd) -> i32 {
    let _ = sys::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        "PR_SET_PDEATHSIG",
    );
    let _ = sys::unblock_all_signals();
    let _ = sys::signal_disposition(libc::SIGPIPE, true);
    let mut keep = vec![ctl.as_raw_fd()];
    keep.extend(crate::logging::log_fd());
    sys::close_all_except(&keep);
    let ep = match epoll::create(epoll::CreateFlags::CLOEXEC) {
        Ok(e) => e,
        Err(e) => {
            log::error!("NSTUN: epoll_create: {e}");
            return 1;
        }
    };
    if epoll::add(&ep, &ctl, EventData::new_u64(CTL), EventFlags::IN).is_err() {
        return 1;
    }
    let mut l = Loop {
        spec,
        pool: Vec::new(),
        scratch: vec![0u8; 65536],
        ep,
        jails: HashMap::new(),
        owners: HashMap::new(),
        start: Instant::now(),
    };
    let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
    let mut last_gc = Instant::now();
    loop {
        let ms = l.timeout_ms() as i64;
        let timeout = rustix::event::Timespec {
            tv_sec: ms / 1000,
            tv_nsec: (ms % 1000) * 1_000_000,
        };
        events.clear();
        let _ = epoll::wait(
            &l.ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timeout),
        );
        let mut touched: Vec<i32> = Vec::new();
        for ev in &events {
            let tok = ev.data.u64();
            if tok == CTL {
                if !l.control(&ctl) {
                    return 0;
                }
                continue;
            }
            let fd = tok as RawFd;
            let Some(&(jid, what)) = l.owners.get(&fd) else {
                continue;
            };
            l.event(jid, what);
            if !touched.contains(&jid) {
                touched.push(jid);
            }
        }
        if events.is_empty() || last_gc.elapsed() > Duration::from_millis(500) {
            touched = l.jails.keys().copied().collect();
            if last_gc.elapsed() > Duration::from_secs(1) {
                l.gc();
                last_gc = Instant::now();
            }
        }
        for j in touched {
            l.service(j);
        }
    }
}

impl Loop {
    fn timeout_ms(&mut self) -> i32 {
        let now = now_s(self.start);
        let mut t = 1000u64;
        for j in self.jails.values_mut() {
            if let Some(d) = j.iface.poll_delay(now, &j.sockets) {
                t = t.min(d.total_millis());
            }
        }
        t as i32
    }

    /// A control message; false = the supervisor is gone.
    fn control(&mut self, ctl: &OwnedFd) -> bool {
        let mut buf = [0u8; 256];
        let (n, fd) = match sys::recv_with_fd(ctl.as_fd(), &mut buf) {
            Ok((0, _)) | Err(_) => return false,
            Ok(x) => x,
        };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let reply = match (
            msg.get(..1),
            msg.get(1..).and_then(|p| p.parse::<i32>().ok()),
            fd,
        ) {
            (Some("A"), Some(pid), Some(tun)) => match self.add_jail(pid, tun) {
                Ok(()) => "OK".to_string(),
                Err(e) => format!("ERR {e}"),
            },
            (Some("D"), Some(pid), _) => {
                let c = self.remove_jail(pid);
                format!(
                    "S {} {} {} {}",
                    c.flows_opened, c.flows_refused, c.bytes_out, c.bytes_in
                )
            }
            _ => "ERR bad request".to_string(),
        };
        sys::write_all(ctl.as_fd(), reply.as_bytes()).is_ok()
    }

    /// Watch `fd` (edge- or level-triggered per `flags`) for the jail `jid`.
    fn watch(
        ep: &OwnedFd,
        owners: &mut HashMap<RawFd, (i32, What)>,
        jid: i32,
        fd: std::os::fd::BorrowedFd<'_>,
        what: What,
        flags: EventFlags,
    ) {
        if epoll::add(ep, fd, EventData::new_u64(fd.as_raw_fd() as u64), flags).is_ok() {
            owners.insert(fd.as_raw_fd(), (jid, what));
        }
    }

    /// Forget `fd` (closing it removes it from the epoll set).
    fn unwatch(&mut self, fd: RawFd) {
        self.owners.remove(&fd);
    }

    fn add_jail(&mut self, pid: i32, tun: OwnedFd) -> Result<(), String> {
        let s = &self.spec;
        let mut dev = TunDev {
            fd: tun,
            rxq: VecDeque::new(),
            mtu: s.mtu as usize,
            tx: Vec::new(),
        };
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = (pid as u64) ^ (self.start.elapsed().as_nanos() as u64);
        let mut iface = Interface::new(cfg, &mut dev, now_s(self.start));
        iface.set_any_ip(true);
        iface.update_ip_addrs(|a| {
            if let Some(g) = s.gw4 {
                let _ = a.push(IpCidr::new(IpAddress::Ipv4(g), 32));
            }
            if let Some(g) = s.gw6 {
                let _ = a.push(IpCidr::new(IpAddress::Ipv6(g), 128));
            }
        });
        if let Some(g) = s.gw4 {
            let _ = iface.routes_mut().add_default_ipv4_route(g);
        }
        if let Some(g) = s.gw6 {
            let _ = iface.routes_mut().add_default_ipv6_route(g);
        }
        let mut listeners = Vec::new();
        let mut udp_listeners = Vec::new();
        for f in &s.forwards {
            let fail = |e: io::Error| {
                format!(
                    "{}: listening on host {} for HOST_TO_GUEST forwarding failed: {e}; use another dport or stop what uses it",
                    f.rule, f.listen
                )
            };
            let kind = if f.proto == L4::Tcp {
                listeners.push((
                    tcp_listener(f.listen).map_err(fail)?,
                    f.listen,
                    f.to_ip,
                    f.to_port,
                ));
                "TCP"
            } else {
                udp_listeners.push((
                    udp_bound(f.listen).map_err(fail)?,
                    f.listen,
                    f.to_ip,
                    f.to_port,
                ));
                "UDP"
            };
            log::info!(
                "Listening on host port {} for inbound {kind} redirection to the jail (pid={pid}) port {}",
                f.listen, f.to_port
            );
        }
        let jail = Jail {
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
            guest4: s.ip4,
            guest6: s.ip6,
            gw4: s.gw4,
            gw6: s.gw6,
            tcp: HashMap::new(),
            udp: HashMap::new(),
            icmp: HashMap::new(),
            listeners: Vec::new(),
            udp_listeners: Vec::new(),
            inbound_udp: HashMap::new(),
            counters: NetCounters::default(),
            next_port: 49152,
            warned_cap: false,
        };
        self.jails.insert(pid, jail);
        let j = self.jails.get_mut(&pid).expect("jail");
        Self::watch(
            &self.ep,
            &mut self.owners,
            pid,
            j.dev.fd.as_fd(),
            What::Tun,
            EventFlags::IN,
        );
        for (i, l) in listeners.into_iter().enumerate() {
            Self::watch(
                &self.ep,
                &mut self.owners,
                pid,
                l.0.as_fd(),
                What::Listener(i),
                EventFlags::IN,
            );
            j.listeners.push(l);
        }
        for (i, l) in udp_listeners.into_iter().enumerate() {
            Self::watch(
                &self.ep,
                &mut self.owners,
                pid,
                l.0.as_fd(),
                What::UdpListener(i),
                EventFlags::IN,
            );
            j.udp_listeners.push(l);
        }
        Ok(())
    }

    fn remove_jail(&mut self, pid: i32) -> NetCounters {
        let Some(j) = self.jails.remove(&pid) else {
            return NetCounters::default();
        };
        let mut fds: Vec<RawFd> = vec![j.dev.fd.as_raw_fd()];
        fds.extend(j.tcp.values().map(|f| f.host.as_raw_fd()));
        fds.extend(j.udp.values().map(|f| f.sock.as_raw_fd()));
        fds.extend(
            j.udp
                .values()
                .filter_map(|f| f.socks.as_ref().map(|x| x.ctl.as_raw_fd())),
        );
        fds.extend(j.icmp.values().map(|f| f.sock.as_raw_fd()));
        fds.extend(j.listeners.iter().map(|l| l.0.as_raw_fd()));
        fds.extend(j.udp_listeners.iter().map(|l| l.0.as_raw_fd()));
        for fd in fds {
            self.unwatch(fd);
        }
        j.counters
    }

    fn event(&mut self, jid: i32, what: What) {
        match what {
            What::Tun => self.read_tun(jid),
            What::Tcp(k) => self.pump_tcp(jid, k),
            What::Udp(k) => self.read_udp(jid, k),
            What::Icmp(k) => self.read_icmp(jid, k),
            What::Listener(i) => self.accept(jid, i),
            What::UdpListener(i) => self.inbound_datagrams(jid, i),
            What::UdpCtl(k) => self.pump_socks_udp(jid, k),
        }
    }

    /// Poll the jail's stack, move every flow's bytes, poll again.
    fn service(&mut self, jid: i32) {
        let now = now_s(self.start);
        let keys: Vec<Key> = match self.jails.get_mut(&jid) {
            Some(j) => {
                j.iface.poll(now, &mut j.dev, &mut j.sockets);
                j.tcp.keys().copied().collect()
            }
            None => return,
        };
        for k in keys {
            self.pump_tcp(jid, k);
        }
        if let Some(j) = self.jails.get_mut(&jid) {
            j.iface.poll(now, &mut j.dev, &mut j.sockets);
        }
    }

    fn gc(&mut self) {
        let ids: Vec<i32> = self.jails.keys().copied().collect();
        for jid in ids {
            let Some(j) = self.jails.get_mut(&jid) else {
                continue;
            };
            let stale_udp: Vec<Key> = j
                .udp
                .iter()
                .filter(|(_, f)| f.last.elapsed() > UDP_IDLE)
                .map(|(k, _)| *k)
                .collect();
            let stale_icmp: Vec<(IpAddr, u16)> = j
                .icmp
                .iter()
                .filter(|(_, f)| f.last.elapsed() > UDP_IDLE)
                .map(|(k, _)| *k)
                .collect();
            let stuck: Vec<Key> = j
                .tcp
                .iter()
                .filter(|(_, f)| match &f.state {
                    TcpState::Connecting { since, .. } | TcpState::Handshake { since, .. } => {
                        since.elapsed() > CONNECT_TIMEOUT
                    }
                    _ => false,
                })
                .map(|(k, _)| *k)
                .collect();
            j.inbound_udp.retain(|_, a| a.last.elapsed() <= UDP_IDLE);
            for k in stale_udp {
                self.close_udp(jid, k);
            }
            for k in stale_icmp {
                if let Some(f) = self.jails.get_mut(&jid).and_then(|j| j.icmp.remove(&k)) {
                    self.unwatch(f.sock.as_raw_fd());
                }
            }
            for k in stuck {
                self.refuse_tcp(jid, k);
            }
        }
    }

    fn flows(j: &Jail) -> usize {
        j.tcp.len() + j.udp.len() + j.icmp.len() + j.inbound_udp.len()
    }

    /// Datagrams to a HOST_TO_GUEST UDP listener: into the jail, from the
    /// gateway address and a port standing for the host peer.
    fn inbound_datagrams(&mut self, jid: i32, idx: usize) {
        for _ in 0..64 {
            let Some(j) = self.jails.get_mut(&jid) else {
                return;
            };
            let Some((sock, listen, to_ip, to_port)) = j.udp_listeners.get(idx) else {
                return;
            };
            let (listen, to_ip, to_port) = (*listen, *to_ip, *to_port);
            let (n, peer) = match sock.recv_from(&mut self.scratch) {
                Ok(x) => x,
                Err(_) => return,
            };
            let f = FlowMatch {
                inbound: true,
                proto: L4::Udp,
                src: peer,
                dst: listen,
            };
            if matches!(
                self.spec.evaluate(&f).map(|r| r.action),
                Some(NstunAction::Drop | NstunAction::Reject)
            ) {
                continue;
            }
            let existing = j
                .inbound_udp
                .iter()
                .find(|(_, a)| a.listener == idx && a.peer == peer)
                .map(|(k, _)| *k);
            let gw_end = match existing {
                Some(k) => k,
                None => {
                    if !self.admit(jid) {
                        continue;
                    }
                    let Some(j) = self.jails.get_mut(&jid) else {
                        return;
                    };
                    let gw = if listen.is_ipv6() {
                        j.gw6.map(IpAddr::V6)
                    } else {
                        j.gw4.map(IpAddr::V4)
                    };
                    let Some(gw) = gw else {
                        continue;
                    };
                    j.next_port = if j.next_port >= 65000 {
                        49152
                    } else {
                        j.next_port + 1
                    };
                    let k = SocketAddr::new(gw, j.next_port);
                    j.inbound_udp.insert(
                        k,
                        InboundUdp {
                            listener: idx,
                            peer,
                            last: Instant::now(),
                        },
                    );
                    k
                }
            };
            let Some(j) = self.jails.get_mut(&jid) else {
                return;
            };
            let guest = if listen.is_ipv6() {
                to_ip.or(j.guest6.map(IpAddr::V6))
            } else {
                to_ip.or(j.guest4.map(IpAddr::V4))
            };
            let Some(guest) = guest else {
                continue;
            };
            if let Some(a) = j.inbound_udp.get_mut(&gw_end) {
                a.last = Instant::now();
            }
            if let Some(p) = udp_packet(gw_end, SocketAddr::new(guest, to_port), &self.scratch[..n])
            {
                if p.len() <= j.dev.mtu {
                    tun_write(&j.dev.fd, &p);
                    j.counters.bytes_in += n as u64;
                }
            }
        }
    }

    /// Room for one more flow; counts a refusal when there is none.
    fn admit(&mut self, jid: i32) -> bool {
        let max = self.spec.max_flows as usize;
        let Some(j) = self.jails.get_mut(&jid) else {
            return false;
        };
        if Self::flows(j) >= max {
            j.counters.flows_refused += 1;
            if !j.warned_cap {
                j.warned_cap = true;
                log::warn!("NSTUN: the jail (pid={jid}) has {max} flows open (user_net.nsjailrs_max_flows); refusing new ones");
            }
            return false;
        }
        j.counters.flows_opened += 1;
        true
    }

    fn read_tun(&mut self, jid: i32) {
        let size = self.spec.mtu as usize + 64;
        // Bounded batch (at most 64 packets, 4 MiB, queued before smoltcp
        // takes them), so one jail cannot starve the others.
        for _ in 0..64 {
            // Read into the spare capacity: no zeroing, no copy.
            let mut buf = Vec::with_capacity(size);
            {
                let Some(j) = self.jails.get(&jid) else {
                    return;
                };
                match rustix::io::read(&j.dev.fd, rustix::buffer::spare_capacity(&mut buf)) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            self.guest_packet(jid, buf);
        }
    }

    fn guest_packet(&mut self, jid: i32, pkt: Vec<u8>) {
        let Some(j) = self.jails.get(&jid) else {
            return;
        };
        let (src, dst, proto, l4): (IpAddr, IpAddr, IpProtocol, usize) =
            match pkt.first().map(|b| b >> 4) {
                Some(4) => {
                    let Ok(p) = Ipv4Packet::new_checked(&pkt[..]) else {
                        return;
                    };
                    if p.more_frags() || p.frag_offset() != 0 {
                        return;
                    }
                    let (s, d) = (p.src_addr(), p.dst_addr());
                    if Some(s) != j.guest4 {
                        log::debug!("NSTUN: dropping a packet from {s}: not the jail's address");
                        return;
                    }
                    if ssrf_gate_drops(d.into()) {
                        log::debug!("NSTUN: dropping a packet to {d} (loopback, ANY or broadcast)");
                        return;
                    }
                    (s.into(), d.into(), p.next_header(), p.header_len() as usize)
                }
                Some(6) => {
                    let Ok(p) = Ipv6Packet::new_checked(&pkt[..]) else {
                        return;
                    };
                    let (s, d) = (p.src_addr(), p.dst_addr());
                    if Some(s) != j.guest6 {
                        return;
                    }
                    if ssrf_gate_drops(d.into()) {
                        log::debug!(
                        "NSTUN: dropping a packet to {d} (loopback, ANY, link-local or v4-mapped)"
                    );
                        return;
                    }
                    (s.into(), d.into(), p.next_header(), 40)
                }
                _ => return,
            };
        if pkt.len() < l4 {
            return;
        }
        match proto {
            IpProtocol::Tcp => {
                let Ok(t) = TcpPacket::new_checked(&pkt[l4..]) else {
                    return;
                };
                let key = (
                    SocketAddr::new(src, t.src_port()),
                    SocketAddr::new(dst, t.dst_port()),
                );
                let (syn, ack) = (t.syn(), t.ack());
                let known = self
                    .jails
                    .get(&jid)
                    .is_some_and(|j| j.tcp.contains_key(&key));
                if syn && !ack && !known {
                    self.new_tcp(jid, key, pkt);
                } else if let Some(j) = self.jails.get_mut(&jid) {
                    match j.tcp.get(&key).map(|f| &f.state) {
                        Some(TcpState::Connecting { .. } | TcpState::Handshake { .. }) => {}
                        _ => j.dev.rxq.push_back(pkt),
                    }
                }
            }
            IpProtocol::Udp => {
                let Ok(u) = UdpPacket::new_checked(&pkt[l4..]) else {
                    return;
                };
                let key = (
                    SocketAddr::new(src, u.src_port()),
                    SocketAddr::new(dst, u.dst_port()),
                );
                let data = u.payload().to_vec();
                self.guest_udp(jid, key, data, pkt);
            }
            IpProtocol::Icmp => {
                let Ok(p) = Icmpv4Packet::new_checked(&pkt[l4..]) else {
                    return;
                };
                if p.msg_type() == smoltcp::wire::Icmpv4Message::EchoRequest {
                    let (id, data) = (p.echo_ident(), pkt[l4..].to_vec());
                    self.guest_echo(jid, src, dst, id, data);
                }
            }
            IpProtocol::Icmpv6 => {
                let Ok(p) = Icmpv6Packet::new_checked(&pkt[l4..]) else {
                    return;
                };
                if p.msg_type() == smoltcp::wire::Icmpv6Message::EchoRequest {
                    let (id, data) = (p.echo_ident(), pkt[l4..].to_vec());
                    self.guest_echo(jid, src, dst, id, data);
                }
            }
            _ => {}
        }
    }

    /// The rule's verdict for an outgoing flow: `Err(true)` = REJECT,
    /// `Err(false)` = DROP, else the host address to connect to and the
    /// proxy to talk to on the way.
    fn verdict(&self, proto: L4, key: Key) -> Result<(SocketAddr, Option<NstunAction>), bool> {
        let f = FlowMatch {
            inbound: false,
            proto,
            src: key.0,
            dst: key.1,
        };
        let action = self
            .spec
            .evaluate(&f)
            .map_or(NstunAction::Allow, |r| r.action);
        match action {
            NstunAction::Drop => Err(false),
            NstunAction::Reject => Err(true),
            NstunAction::Allow => Ok((key.1, None)),
            NstunAction::Redirect { ip, port } => Ok((
                SocketAddr::new(ip.unwrap_or(key.1.ip()), port.unwrap_or(key.1.port())),
                None,
            )),
            a @ (NstunAction::Socks5(p) | NstunAction::Connect(p)) => {
                Ok((SocketAddr::V4(p), Some(a)))
            }
        }
    }

    fn new_tcp(&mut self, jid: i32, key: Key, syn: Vec<u8>) {
        let (target, proxy) = match self.verdict(L4::Tcp, key) {
            Ok(v) => v,
            Err(reject) => {
                if let Some(j) = self.jails.get_mut(&jid) {
                    j.counters.flows_refused += 1;
                    if reject {
                        // No socket takes it: smoltcp answers with a RST.
                        j.dev.rxq.push_back(syn);
                    }
                }
                return;
            }
        };
        if !self.admit(jid) {
            if let Some(j) = self.jails.get_mut(&jid) {
                j.dev.rxq.push_back(syn);
            }
            return;
        }
        let host = match tcp_connect(target) {
            Ok(s) => s,
            Err(e) => {
                log::debug!("NSTUN: connecting to {target} for {}: {e}", key.1);
                if let Some(j) = self.jails.get_mut(&jid) {
                    j.counters.flows_opened -= 1;
                    j.counters.flows_refused += 1;
                    j.dev.rxq.push_back(syn);
                }
                return;
            }
        };
        let proxy = proxy.map(|a| match a {
            NstunAction::Socks5(_) => Proxy::Socks5Greeting,
            _ => Proxy::Connect,
        });
        let flow = TcpFlow {
            host,
            state: TcpState::Connecting {
                syn,
                proxy,
                since: Instant::now(),
            },
            host_eof: false,
            host_wr_shut: false,
        };
        if let Some(j) = self.jails.get_mut(&jid) {
            let f = j.tcp.entry(key).or_insert(flow);
            Self::watch(
                &self.ep,
                &mut self.owners,
                jid,
                f.host.as_fd(),
                What::Tcp(key),
                EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET,
            );
        }
        // A local destination is often connected already: no need to wait
        // for the next round of the loop.
        self.pump_tcp(jid, key);
    }

    /// Give up a TCP flow that never opened: RST to the jail.
    fn refuse_tcp(&mut self, jid: i32, key: Key) {
        let Some(j) = self.jails.get_mut(&jid) else {
            return;
        };
        let Some(f) = j.tcp.remove(&key) else {
            return;
        };
        j.counters.flows_opened = j.counters.flows_opened.saturating_sub(1);
        j.counters.flows_refused += 1;
        if let TcpState::Connecting { syn, .. } | TcpState::Handshake { syn, .. } = f.state {
            j.dev.rxq.push_back(syn);
        }
        let fd = f.host.as_raw_fd();
        self.unwatch(fd);
    }

    fn close_tcp(&mut self, jid: i32, key: Key) {
        let Some(j) = self.jails.get_mut(&jid) else {
            return;
        };
        let Some(f) = j.tcp.remove(&key) else {
            return;
        };
        if let TcpState::Open { handle, .. } = f.state {
            if let smoltcp::socket::Socket::Tcp(s) = j.sockets.remove(handle) {
                // Kept for the next flow: its buffers are the costly part.
                if self.pool.len() < POOL {
                    self.pool.push(s);
                }
            }
        }
        let fd = f.host.as_raw_fd();
        self.unwatch(fd);
    }

    /// A smoltcp TCP socket with `flow_buffer` bytes each way: a closed one
    /// from the pool (`listen`/`connect` reset it), else a new one.
    fn tcp_socket(&mut self) -> tcp::Socket<'static> {
        let buf = self.spec.flow_buffer as usize;
        let mut s = self.pool.pop().unwrap_or_else(|| {
            tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0u8; buf]),
                tcp::SocketBuffer::new(vec![0u8; buf]),
            )
        });
        s.abort();
        s.set_nagle_enabled(false);
        s
    }

    /// The host side is connected (and the proxy agreed): a smoltcp socket
    /// on the original destination takes the held SYN.
    fn open_tcp(&mut self, jid: i32, key: Key, syn: Vec<u8>, early: Vec<u8>) {
        let mut s = self.tcp_socket();
        let Some(j) = self.jails.get_mut(&jid) else {
            return;
        };
        let ep = smoltcp::wire::IpListenEndpoint {
            addr: Some(key.1.ip().into()),
            port: key.1.port(),
        };
        if s.listen(ep).is_err() {
            return;
        }
        let handle = j.sockets.add(s);
        j.dev.rxq.push_back(syn);
        if let Some(f) = j.tcp.get_mut(&key) {
            f.state = TcpState::Open { handle, early };
        }
    }

    fn pump_tcp(&mut self, jid: i32, key: Key) {
        /// What to do once the flow is no longer borrowed.
        enum Next {
            Nothing,
            Refuse,
            Open(Vec<u8>, Vec<u8>),
            Again,
            Close,
        }
        let next = {
            let Some(j) = self.jails.get_mut(&jid) else {
                return;
            };
            let Jail {
                tcp: flows,
                sockets,
                counters,
                ..
            } = j;
            let Some(f) = flows.get_mut(&key) else {
                return;
            };
            match &mut f.state {
                TcpState::Connecting { .. } => {
                    if !matches!(rustix::net::sockopt::socket_error(&f.host), Ok(Ok(()))) {
                        Next::Refuse
                    } else if f.host.peer_addr().is_err() {
                        Next::Nothing // still connecting
                    } else {
                        let placeholder = TcpState::Open {
                            handle: SocketHandle::default(),
                            early: Vec::new(),
                        };
                        let TcpState::Connecting { syn, proxy, .. } =
                            std::mem::replace(&mut f.state, placeholder)
                        else {
                            unreachable!("matched above")
                        };
                        match proxy {
                            None => Next::Open(syn, Vec::new()),
                            Some(p) => {
                                let req = match &p {
                                    Proxy::Socks5Greeting => vec![5, 1, 0],
                                    Proxy::Connect | Proxy::Socks5Connect => {
                                        let d = key.1;
                                        format!("CONNECT {d} HTTP/1.1\r\nHost: {d}\r\n\r\n")
                                            .into_bytes()
                                    }
                                };
                                let ok = f.host.write_all(&req).is_ok();
                                f.state = TcpState::Handshake {
                                    syn,
                                    proxy: p,
                                    got: Vec::new(),
                                    since: Instant::now(),
                                };
                                if ok {
                                    Next::Again
                                } else {
                                    Next::Refuse
                                }
                            }
                        }
                    }
                }
                TcpState::Handshake { proxy, got, .. } => {
                    let mut b = [0u8; 4096];
                    let mut next = None;
                    loop {
                        match f.host.read(&mut b) {
                            Ok(0) => next = Some(Next::Refuse),
                            Ok(n) => {
                                got.extend_from_slice(&b[..n]);
                                if got.len() > 8192 {
                                    next = Some(Next::Refuse);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => next = Some(Next::Refuse),
                        }
                        if next.is_some() {
                            break;
                        }
                    }
                    match next {
                        Some(n) => n,
                        None => match proxy_step(proxy, got, key.1) {
                            Step::More => Next::Nothing,
                            Step::Fail(why) => {
                                log::debug!("NSTUN: proxy refused {}: {why}", key.1);
                                Next::Refuse
                            }
                            Step::Send(p, req) => {
                                *proxy = p;
                                got.clear();
                                if f.host.write_all(&req).is_ok() {
                                    Next::Again
                                } else {
                                    Next::Refuse
                                }
                            }
                            Step::Done(early) => {
                                let placeholder = TcpState::Open {
                                    handle: SocketHandle::default(),
                                    early: Vec::new(),
                                };
                                match std::mem::replace(&mut f.state, placeholder) {
                                    TcpState::Handshake { syn, .. } => Next::Open(syn, early),
                                    _ => Next::Nothing,
                                }
                            }
                        },
                    }
                }
                TcpState::Open { handle, early } => {
                    let s = sockets.get_mut::<tcp::Socket>(*handle);
                    let mut dead = false;
                    // jail -> host
                    while s.can_recv() {
                        let r = s.recv(|buf| match f.host.write(buf) {
                            Ok(n) => (n, Ok(n)),
                            Err(e) => (0, Err(e)),
                        });
                        match r {
                            Ok(Ok(0)) => break,
                            Ok(Ok(n)) => counters.bytes_out += n as u64,
                            Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                            _ => {
                                dead = true;
                                break;
                            }
                        }
                    }
                    // The jail sent its FIN and everything before it is out.
                    let fin_in = matches!(
                        s.state(),
                        tcp::State::CloseWait
                            | tcp::State::LastAck
                            | tcp::State::Closing
                            | tcp::State::TimeWait
                    );
                    if fin_in && s.recv_queue() == 0 && !f.host_wr_shut {
                        f.host_wr_shut = true;
                        let _ = f.host.shutdown(std::net::Shutdown::Write);
                    }
                    // host -> jail
                    if !early.is_empty() && s.can_send() {
                        let n = s.send_slice(early).unwrap_or(0);
                        counters.bytes_in += n as u64;
                        early.drain(..n);
                    }
                    while early.is_empty() && !f.host_eof && s.can_send() {
                        let r = s.send(|buf| match f.host.read(buf) {
                            Ok(n) => (n, Ok(n)),
                            Err(e) => (0, Err(e)),
                        });
                        match r {
                            Ok(Ok(0)) => {
                                f.host_eof = true;
                                s.close();
                            }
                            Ok(Ok(n)) => counters.bytes_in += n as u64,
                            Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                            _ => {
                                dead = true;
                                break;
                            }
                        }
                    }
                    if dead {
                        s.abort();
                    }
                    let st = s.state();
                    if st == tcp::State::Closed || (st == tcp::State::TimeWait && f.host_eof) {
                        Next::Close
                    } else {
                        Next::Nothing
                    }
                }
            }
        };
        match next {
            Next::Nothing => {}
            Next::Refuse => self.refuse_tcp(jid, key),
            Next::Close => self.close_tcp(jid, key),
            Next::Again => self.pump_tcp(jid, key),
            Next::Open(syn, early) => self.open_tcp(jid, key, syn, early),
        }
    }

    fn accept(&mut self, jid: i32, idx: usize) {
        loop {
            let Some((l, listen, to_ip, to_port)) =
                self.jails.get(&jid).and_then(|j| j.listeners.get(idx))
            else {
                return;
            };
            let (listen, to_ip, to_port) = (*listen, *to_ip, *to_port);
            let (stream, peer) = match l.accept() {
                Ok(x) => x,
                Err(_) => return,
            };
            let local = stream.local_addr().unwrap_or(listen);
            let f = FlowMatch {
                inbound: true,
                proto: L4::Tcp,
                src: peer,
                dst: local,
            };
            let action = self.spec.evaluate(&f).map(|r| r.action);
            if matches!(action, Some(NstunAction::Drop | NstunAction::Reject)) {
                if let Some(j) = self.jails.get_mut(&jid) {
                    j.counters.flows_refused += 1;
                }
                continue;
            }
            if !self.admit(jid) {
                continue;
            }
            let mut s = self.tcp_socket();
            let Some(j) = self.jails.get_mut(&jid) else {
                return;
            };
            let (guest, gw): (Option<IpAddr>, Option<IpAddr>) = if listen.is_ipv6() {
                (to_ip.or(j.guest6.map(IpAddr::V6)), j.gw6.map(IpAddr::V6))
            } else {
                (to_ip.or(j.guest4.map(IpAddr::V4)), j.gw4.map(IpAddr::V4))
            };
            let (Some(guest), Some(gw)) = (guest, gw) else {
                j.counters.flows_opened -= 1;
                continue;
            };
            j.next_port = if j.next_port >= 65000 {
                49152
            } else {
                j.next_port + 1
            };
            let local_ep = SocketAddr::new(gw, j.next_port);
            let remote = SocketAddr::new(guest, to_port);
            let cx = j.iface.context();
            if s.connect(
                cx,
                (IpAddress::from(guest), to_port),
                (IpAddress::from(gw), local_ep.port()),
            )
            .is_err()
            {
                j.counters.flows_opened -= 1;
                continue;
            }
            let _ = stream.set_nonblocking(true);
            let _ = stream.set_nodelay(true);
            let handle = j.sockets.add(s);
            let key = (remote, local_ep);
            let f = j.tcp.entry(key).or_insert(TcpFlow {
                host: stream,
                state: TcpState::Open {
                    handle,
                    early: Vec::new(),
                },
                host_eof: false,
                host_wr_shut: false,
            });
            Self::watch(
                &self.ep,
                &mut self.owners,
                jid,
                f.host.as_fd(),
                What::Tcp(key),
                EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET,
            );
        }
    }

    fn guest_udp(&mut self, jid: i32, key: Key, data: Vec<u8>, pkt: Vec<u8>) {
        // An answer to a HOST_TO_GUEST association goes back to its peer.
        if let Some(j) = self.jails.get_mut(&jid) {
            if let Some(a) = j.inbound_udp.get_mut(&key.1) {
                a.last = Instant::now();
                if let Some((sock, ..)) = j.udp_listeners.get(a.listener) {
                    if sock.send_to(&data, a.peer).is_ok() {
                        j.counters.bytes_out += data.len() as u64;
                    }
                }
                return;
            }
        }
        if let Some(j) = self.jails.get_mut(&jid) {
            if let Some(f) = j.udp.get_mut(&key) {
                f.last = Instant::now();
                let sent = match &mut f.socks {
                    None => f.sock.send(&data).is_ok(),
                    Some(x) if x.step == 3 => {
                        let mut m = socks5_udp_header(key.1);
                        m.extend_from_slice(&data);
                        f.sock.send(&m).is_ok()
                    }
                    Some(x) => {
                        if x.queue.len() < 16 {
                            x.queue.push(data.clone());
                        }
                        false
                    }
                };
                if sent {
                    j.counters.bytes_out += data.len() as u64;
                }
                return;
            }
        }
        let target = match self.verdict(L4::Udp, key) {
            Ok((proxy, Some(NstunAction::Socks5(_)))) => {
                return self.new_socks_udp(jid, key, proxy, data, pkt);
            }
            Ok((_, Some(a))) => {
                log::debug!(
                    "NSTUN: {} for UDP to {} is not supported; dropped",
                    a.name(),
                    key.1
                );
                if let Some(j) = self.jails.get_mut(&jid) {
                    j.counters.flows_refused += 1;
                }
                return;
            }
            Ok((t, None)) => t,
            Err(reject) => {
                if let Some(j) = self.jails.get_mut(&jid) {
                    j.counters.flows_refused += 1;
                    if reject {
                        // No socket takes it: smoltcp answers "port unreachable".
                        j.dev.rxq.push_back(pkt);
                    }
                }
                return;
            }
        };
        if !self.admit(jid) {
            if let Some(j) = self.jails.get_mut(&jid) {
                j.dev.rxq.push_back(pkt);
            }
            return;
        }
        let any: SocketAddr = if target.is_ipv6() {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let sock = match UdpSocket::bind(any).and_then(|s| s.connect(target).map(|_| s)) {
            Ok(s) => s,
            Err(e) => {
                log::debug!("NSTUN: UDP to {target}: {e}");
                if let Some(j) = self.jails.get_mut(&jid) {
                    j.counters.flows_opened -= 1;
                    j.counters.flows_refused += 1;
                    j.dev.rxq.push_back(pkt);
                }
                return;
            }
        };
        let _ = sock.set_nonblocking(true);
        let sent = sock.send(&data).is_ok();
        if let Some(j) = self.jails.get_mut(&jid) {
            if sent {
                j.counters.bytes_out += data.len() as u64;
            }
            let f = j.udp.entry(key).or_insert(UdpFlow {
                sock,
                guest: key.0,
                orig: key.1,
                last: Instant::now(),
                socks: None,
            });
            Self::watch(
                &self.ep,
                &mut self.owners,
                jid,
                f.sock.as_fd(),
                What::Udp(key),
                EventFlags::IN,
            );
        }
    }

    fn close_udp(&mut self, jid: i32, key: Key) {
        if let Some(f) = self.jails.get_mut(&jid).and_then(|j| j.udp.remove(&key)) {
            self.unwatch(f.sock.as_raw_fd());
            if let Some(x) = &f.socks {
                self.unwatch(x.ctl.as_raw_fd());
            }
        }
    }

    /// ENCAP_SOCKS5 for UDP: a control connection to the proxy asks for a
    /// UDP association; datagrams wait for it (16 at most).
    fn new_socks_udp(
        &mut self,
        jid: i32,
        key: Key,
        proxy: SocketAddr,
        data: Vec<u8>,
        pkt: Vec<u8>,
    ) {
        if !self.admit(jid) {
            if let Some(j) = self.jails.get_mut(&jid) {
                j.dev.rxq.push_back(pkt);
            }
            return;
        }
        let any: SocketAddr = (Ipv4Addr::UNSPECIFIED, 0).into();
        let made = tcp_connect(proxy).and_then(|c| Ok((c, UdpSocket::bind(any)?)));
        let (ctl, sock) = match made {
            Ok(x) => x,
            Err(e) => {
                log::debug!("NSTUN: SOCKS5 proxy {proxy} for UDP to {}: {e}", key.1);
                if let Some(j) = self.jails.get_mut(&jid) {
                    j.counters.flows_opened -= 1;
                    j.counters.flows_refused += 1;
                }
                return;
            }
        };
        let _ = sock.set_nonblocking(true);
        if let Some(j) = self.jails.get_mut(&jid) {
            let f = j.udp.entry(key).or_insert(UdpFlow {
                sock,
                guest: key.0,
                orig: key.1,
                last: Instant::now(),
                socks: Some(Socks5Udp {
                    ctl,
                    step: 0,
                    got: Vec::new(),
                    queue: vec![data],
                }),
            });
            Self::watch(
                &self.ep,
                &mut self.owners,
                jid,
                f.sock.as_fd(),
                What::Udp(key),
                EventFlags::IN,
            );
            if let Some(x) = &f.socks {
                Self::watch(
                    &self.ep,
                    &mut self.owners,
                    jid,
                    x.ctl.as_fd(),
                    What::UdpCtl(key),
                    EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET,
                );
            }
        }
    }

    /// The SOCKS5 UDP ASSOCIATE handshake; the association ends with its
    /// control connection.
    fn pump_socks_udp(&mut self, jid: i32, key: Key) {
        let mut dead = false;
        if let Some(j) = self.jails.get_mut(&jid) {
            let Some(f) = j.udp.get_mut(&key) else {
                return;
            };
            let Some(x) = f.socks.as_mut() else {
                return;
            };
            if x.step == 0 {
                if !matches!(rustix::net::sockopt::socket_error(&x.ctl), Ok(Ok(()))) {
                    dead = true;
                } else if x.ctl.peer_addr().is_ok() {
                    dead = x.ctl.write_all(&[5, 1, 0]).is_err();
                    x.step = 1;
                }
            }
            let mut b = [0u8; 512];
            while !dead && x.step >= 1 {
                match x.ctl.read(&mut b) {
                    Ok(0) => dead = true,
                    Ok(n) => x.got.extend_from_slice(&b[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => dead = true,
                }
                if x.got.len() > 512 {
                    dead = true;
                }
            }
            if !dead && x.step == 1 && x.got.len() >= 2 {
                if x.got[..2] != [5, 0] {
                    dead = true;
                } else {
                    x.got.drain(..2);
                    // UDP ASSOCIATE, our address not known to the proxy.
                    dead = x.ctl.write_all(&[5, 3, 0, 1, 0, 0, 0, 0, 0, 0]).is_err();
                    x.step = 2;
                }
            }
            if !dead && x.step == 2 && x.got.len() >= 5 {
                let len = match x.got[3] {
                    1 => 10,
                    4 => 22,
                    _ => 0,
                };
                if x.got[1] != 0 || len == 0 {
                    dead = true;
                } else if x.got.len() >= len {
                    let port = u16::from_be_bytes([x.got[len - 2], x.got[len - 1]]);
                    let ip: IpAddr = if len == 10 {
                        Ipv4Addr::new(x.got[4], x.got[5], x.got[6], x.got[7]).into()
                    } else {
                        let mut o = [0u8; 16];
                        o.copy_from_slice(&x.got[4..20]);
                        Ipv6Addr::from(o).into()
                    };
                    // A relay "anywhere" means the proxy's own address.
                    let ip = if ip.is_unspecified() {
                        x.ctl.peer_addr().map(|a| a.ip()).unwrap_or(ip)
                    } else {
                        ip
                    };
                    dead = f.sock.connect(SocketAddr::new(ip, port)).is_err();
                    x.step = 3;
                    for d in std::mem::take(&mut x.queue) {
                        let mut m = socks5_udp_header(key.1);
                        m.extend_from_slice(&d);
                        if f.sock.send(&m).is_ok() {
                            j.counters.bytes_out += d.len() as u64;
                        }
                    }
                }
            }
        }
        if dead {
            log::debug!(
                "NSTUN: SOCKS5 UDP association for {} failed or ended",
                key.1
            );
            self.close_udp(jid, key);
        }
    }

    fn read_udp(&mut self, jid: i32, key: Key) {
        let Some(j) = self.jails.get_mut(&jid) else {
            return;
        };
        let Some(f) = j.udp.get_mut(&key) else {
            return;
        };
        let buf = &mut self.scratch;
        for _ in 0..64 {
            let n = match f.sock.recv(buf) {
                Ok(n) => n,
                Err(_) => break,
            };
            f.last = Instant::now();
            let payload = match &f.socks {
                Some(_) => match socks5_udp_payload(&buf[..n]) {
                    Some(p) => p,
                    None => continue,
                },
                None => &buf[..n],
            };
            let n = payload.len();
            if let Some(p) = udp_packet(f.orig, f.guest, payload) {
                if p.len() <= j.dev.mtu {
                    tun_write(&j.dev.fd, &p);
                    j.counters.bytes_in += n as u64;
                }
            }
        }
    }

    fn guest_echo(&mut self, jid: i32, src: IpAddr, dst: IpAddr, ident: u16, icmp: Vec<u8>) {
        let key = (dst, ident);
        if let Some(f) = self.jails.get_mut(&jid).and_then(|j| j.icmp.get_mut(&key)) {
            f.last = Instant::now();
            let _ = rustix::io::write(&f.sock, &icmp);
            return;
        }
        let target =
            match self.verdict(L4::Icmp, (SocketAddr::new(src, 0), SocketAddr::new(dst, 0))) {
                Ok((t, None)) => t.ip(),
                _ => {
                    if let Some(j) = self.jails.get_mut(&jid) {
                        j.counters.flows_refused += 1;
                    }
                    return;
                }
            };
        if !self.admit(jid) {
            return;
        }
        let Some((sock, raw)) = icmp_socket(target) else {
            if let Some(j) = self.jails.get_mut(&jid) {
                j.counters.flows_opened -= 1;
                j.counters.flows_refused += 1;
            }
            return;
        };
        let _ = rustix::io::write(&sock, &icmp);
        if let Some(j) = self.jails.get_mut(&jid) {
            let f = j.icmp.entry(key).or_insert(IcmpFlow {
                sock,
                raw,
                guest: src,
                orig: dst,
                ident,
                last: Instant::now(),
            });
            Self::watch(
                &self.ep,
                &mut self.owners,
                jid,
                f.sock.as_fd(),
                What::Icmp(key),
                EventFlags::IN,
            );
        }
    }

    fn read_icmp(&mut self, jid: i32, key: (IpAddr, u16)) {
        let Some(j) = self.jails.get_mut(&jid) else {
            return;
        };
        let Some(f) = j.icmp.get_mut(&key) else {
            return;
        };
        let buf = &mut self.scratch;
        for _ in 0..64 {
            let n = match rustix::io::read(&f.sock, &mut buf[..]) {
                Ok(n) => n,
                Err(_) => break,
            };
            let mut msg = &buf[..n];
            if f.raw && f.orig.is_ipv4() {
                // IPv4 raw sockets deliver the IP header.
                let ihl = msg.first().map_or(0, |b| (b & 0xf) as usize * 4);
                if msg.len() < ihl {
                    continue;
                }
                msg = &msg[ihl..];
            }
            if msg.len() < 8 {
                continue;
            }
            let reply_type = if f.orig.is_ipv4() { 0 } else { 129 };
            if msg[0] != reply_type || (f.raw && u16::from_be_bytes([msg[4], msg[5]]) != f.ident) {
                continue;
            }
            f.last = Instant::now();
            let mut m = msg.to_vec();
            m[4..6].copy_from_slice(&f.ident.to_be_bytes());
            if let Some(p) = icmp_packet(f.orig, f.guest, &mut m) {
                tun_write(&j.dev.fd, &p);
                j.counters.bytes_in += n as u64;
            }
        }
    }
}

/// nsjail's SSRF gate: packets from the jail to these destinations are
/// dropped (loopback, ANY, broadcast, multicast; IPv6 link-/site-local,
/// v4-mapped and v4-compatible too). Rules may still send flows to
/// loopback: they rewrite the target, not the packet's destination.
pub fn ssrf_gate_drops(dst: IpAddr) -> bool {
    match dst {
        IpAddr::V4(d) => {
            d.is_loopback() || d.is_unspecified() || d.is_broadcast() || d.is_multicast()
        }
        IpAddr::V6(d) => {
            let seg = d.segments();
            d.is_multicast()
                || seg[0] & 0xffc0 == 0xfe80
                || seg[0] & 0xffc0 == 0xfec0
                || d.to_ipv4_mapped().is_some()
                // ::1, :: and the v4-compatible ::a.b.c.d
                || seg[..6] == [0; 6]
        }
    }
}

/// A proxy handshake's next step.
enum Step {
    More,
    Fail(String),
    Send(Proxy, Vec<u8>),
    Done(Vec<u8>),
}

fn proxy_step(p: &Proxy, got: &[u8], dst: SocketAddr) -> Step {
    match p {
        Proxy::Socks5Greeting => {
            if got.len() < 2 {
                return Step::More;
            }
            if got[..2] != [5, 0] {
                return Step::Fail(format!("SOCKS5 greeting answered {:?}", &got[..2]));
            }
            let mut req = vec![5, 1, 0];
            match dst.ip() {
                IpAddr::V4(a) => {
                    req.push(1);
                    req.extend_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    req.push(4);
                    req.extend_from_slice(&a.octets());
                }
            }
            req.extend_from_slice(&dst.port().to_be_bytes());
            Step::Send(Proxy::Socks5Connect, req)
        }
        Proxy::Socks5Connect => {
            if got.len() < 5 {
                return Step::More;
            }
            if got[0] != 5 || got[1] != 0 {
                return Step::Fail(format!("SOCKS5 CONNECT answered code {}", got[1]));
            }
            let len = match got[3] {
                1 => 10,
                4 => 22,
                3 => 7 + got[4] as usize,
                _ => return Step::Fail("SOCKS5 reply with a bad address type".into()),
            };
            if got.len() < len {
                return Step::More;
            }
            Step::Done(got[len..].to_vec())
        }
        Proxy::Connect => {
            let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Step::More;
            };
            let head = String::from_utf8_lossy(&got[..end]);
            let status = head.lines().next().unwrap_or("");
            if status.split_whitespace().nth(1) != Some("200") {
                return Step::Fail(format!("HTTP CONNECT answered '{status}'"));
            }
            Step::Done(got[end + 4..].to_vec())
        }
    }
}

fn tcp_connect(to: SocketAddr) -> io::Result<TcpStream> {
    let fam = if to.is_ipv6() {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let fd = rustix::net::socket_with(
        fam,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
    match rustix::net::connect(&fd, &to) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(TcpStream::from(fd))
}

/// A non-blocking socket of `kind` bound to `at` with SO_REUSEADDR; an
/// IPv6 one takes IPv6 only (as nsjail: a rule6 listener does not also take
/// IPv4).
fn bound_socket(at: SocketAddr, kind: SocketType) -> io::Result<rustix::fd::OwnedFd> {
    let fam = if at.is_ipv6() {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let fd = rustix::net::socket_with(
        fam,
        kind,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    if at.is_ipv6() {
        rustix::net::sockopt::set_ipv6_v6only(&fd, true)?;
    }
    rustix::net::bind(&fd, &at)?;
    Ok(fd)
}

fn tcp_listener(at: SocketAddr) -> io::Result<TcpListener> {
    let fd = bound_socket(at, SocketType::STREAM)?;
    rustix::net::listen(&fd, 128)?;
    Ok(TcpListener::from(fd))
}

/// A UDP socket bound to `at` (IPv6: IPv6 only, as nsjail), non-blocking.
fn udp_bound(at: SocketAddr) -> io::Result<UdpSocket> {
    Ok(UdpSocket::from(bound_socket(at, SocketType::DGRAM)?))
}

/// An ICMP echo socket connected to `to`: an unprivileged ping socket
/// where the host allows it, else a raw socket (root).
fn icmp_socket(to: IpAddr) -> Option<(OwnedFd, bool)> {
    let (fam, proto) = match to {
        IpAddr::V4(_) => (
            AddressFamily::INET,
            Protocol::from_raw(std::num::NonZeroU32::new(1)?),
        ),
        IpAddr::V6(_) => (
            AddressFamily::INET6,
            Protocol::from_raw(std::num::NonZeroU32::new(58)?),
        ),
    };
    for (ty, raw) in [(SocketType::DGRAM, false), (SocketType::RAW, true)] {
        let Ok(fd) = rustix::net::socket_with(
            fam,
            ty,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            Some(proto),
        ) else {
            continue;
        };
        if rustix::net::connect(&fd, &SocketAddr::new(to, 0)).is_ok() {
            return Some((fd, raw));
        }
    }
    None
}

fn ip_header(
    src: IpAddr,
    dst: IpAddr,
    proto: IpProtocol,
    payload: usize,
) -> Option<(Vec<u8>, usize)> {
    let caps = ChecksumCapabilities::default();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let r = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: proto,
                payload_len: payload,
                hop_limit: 64,
            };
            let mut buf = vec![0u8; r.buffer_len() + payload];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
            Some((buf, r.buffer_len()))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let r = Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: proto,
                payload_len: payload,
                hop_limit: 64,
            };
            let mut buf = vec![0u8; r.buffer_len() + payload];
            r.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
            Some((buf, r.buffer_len()))
        }
        _ => None,
    }
}

/// A UDP datagram from `from` to `to` as an IP packet.
fn udp_packet(from: SocketAddr, to: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    let (mut buf, off) = ip_header(from.ip(), to.ip(), IpProtocol::Udp, 8 + data.len())?;
    let r = UdpRepr {
        src_port: from.port(),
        dst_port: to.port(),
    };
    r.emit(
        &mut UdpPacket::new_unchecked(&mut buf[off..]),
        &from.ip().into(),
        &to.ip().into(),
        data.len(),
        |p| p.copy_from_slice(data),
        &ChecksumCapabilities::default(),
    );
    Some(buf)
}

/// An ICMP(v6) message from `from` to `to` with its checksum recomputed.
fn icmp_packet(from: IpAddr, to: IpAddr, msg: &mut [u8]) -> Option<Vec<u8>> {
    let proto = if from.is_ipv4() {
        IpProtocol::Icmp
    } else {
        IpProtocol::Icmpv6
    };
    let (mut buf, off) = ip_header(from, to, proto, msg.len())?;
    buf[off..].copy_from_slice(msg);
    match (from, to) {
        (IpAddr::V4(_), _) => Icmpv4Packet::new_unchecked(&mut buf[off..]).fill_checksum(),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            Icmpv6Packet::new_unchecked(&mut buf[off..]).fill_checksum(&s, &d)
        }
        _ => return None,
    }
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssrf_gate_drops_what_nsjail_drops() {
        for d in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:192.0.2.1",
            "::10.0.0.1",
            "ff02::1",
        ] {
            assert!(ssrf_gate_drops(d.parse().unwrap()), "{d}");
        }
        for d in [
            "10.255.255.1",
            "192.0.2.1",
            "198.51.100.1",
            "fc00::1",
            "2001:db8::1",
            "fd00::1",
        ] {
            assert!(!ssrf_gate_drops(d.parse().unwrap()), "{d}");
        }
    }

    #[test]
    fn socks5_handshake_steps() {
        let dst: SocketAddr = "192.0.2.7:80".parse().unwrap();
        let Step::Send(next, req) = proxy_step(&Proxy::Socks5Greeting, &[5, 0], dst) else {
            panic!("greeting")
        };
        assert_eq!(req, [5, 1, 0, 1, 192, 0, 2, 7, 0, 80]);
        assert!(matches!(
            proxy_step(&next, &[5, 0, 0, 1, 0], dst),
            Step::More
        ));
        let Step::Done(early) = proxy_step(&next, &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0, b'x'], dst)
        else {
            panic!("connect")
        };
        assert_eq!(early, b"x");
        assert!(matches!(
            proxy_step(&next, &[5, 5, 0, 1, 0], dst),
            Step::Fail(_)
        ));
        assert!(matches!(
            proxy_step(&Proxy::Socks5Greeting, &[5, 0xff], dst),
            Step::Fail(_)
        ));
    }

    #[test]
    fn http_connect_needs_a_200() {
        let dst: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        assert!(matches!(
            proxy_step(&Proxy::Connect, b"HTTP/1.1 200 OK\r\n", dst),
            Step::More
        ));
        let Step::Done(e) = proxy_step(&Proxy::Connect, b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nhi", dst)
        else {
            panic!()
        };
        assert_eq!(e, b"hi");
        assert!(matches!(
            proxy_step(&Proxy::Connect, b"HTTP/1.1 403 Forbidden\r\n\r\n", dst),
            Step::Fail(_)
        ));
    }

    #[test]
    fn reply_packets_parse_back() {
        let p = udp_packet(
            "198.51.100.1:53".parse().unwrap(),
            "10.255.255.2:4000".parse().unwrap(),
            b"abc",
        )
        .unwrap();
        let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
        assert!(ip.verify_checksum());
        let u = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.payload()),
            (53, 4000, &b"abc"[..])
        );
        assert!(u.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
    }
}
