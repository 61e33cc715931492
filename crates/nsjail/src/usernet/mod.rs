//! User-mode networking of a jail (`user_net`, §3.6/§12): the runtime side
//! of [`nsjail_config::spec::usernet::UserNetSpec`].
//!
//! * Supervisor, after clone and the id maps, before the child proceeds
//!   ([`start_parent`]): PASTA starts `pasta` on the jail's namespace
//!   ([`pasta`]). The jail's network lives in a per-supervisor registry keyed
//!   by the jail's pid, ended by [`end`] when the jail is reaped (or its
//!   launch fails): pasta killed and reaped, nothing left behind.
//! * Child, right after it may proceed ([`child_wait`]): PASTA — wait until
//!   pasta has configured the interface (up, with its default route), so the
//!   program never starts before its network (ours: nsjail starts it at
//!   once and races pasta).

pub mod nstun;
pub mod pasta;
pub mod tun;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use nsjail_config::spec::net::NetSpec;
use nsjail_config::spec::usernet::{UserNetBackend, UserNetSpec};

use crate::protocol::{ChildEnd, SupervisorEnd};

/// How long the child waits for pasta to configure its interface.
pub const PASTA_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-jail network counters (ours), in the run report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetCounters {
    /// Flows (TCP connections, UDP and ICMP echo associations) opened.
    pub flows_opened: u64,
    /// Flows refused: by a DROP/REJECT rule, the flow cap, or a failed
    /// host connection.
    pub flows_refused: u64,
    /// Payload bytes from the jail to the host side.
    pub bytes_out: u64,
    /// Payload bytes from the host side to the jail.
    pub bytes_in: u64,
}

/// The network of one running jail.
#[derive(Debug)]
enum JailNet {
    Pasta(pasta::Pasta),
    Nstun,
}

/// Every running jail's network, by jail pid (supervisor only; the jails
/// never touch it).
static ACTIVE: Mutex<Option<HashMap<i32, JailNet>>> = Mutex::new(None);

/// Supervisor side, after clone and the id maps, before the child proceeds:
/// start the jail's user network. NSTUN: `end` delivers the jail's TUN
/// device, which goes to the network process.
///
/// # Errors
/// Why the network could not be started (the launch then fails).
pub fn start_parent(spec: &UserNetSpec, pid: i32, end: &SupervisorEnd) -> Result<(), String> {
    let net = match &spec.backend {
        UserNetBackend::Pasta(p) => JailNet::Pasta(pasta::Pasta::start(p, &spec.ns_iface, pid)?),
        UserNetBackend::Nstun(n) => {
            let tun = end.recv_tun()?;
            nstun::attach(n, pid, tun)?;
            JailNet::Nstun
        }
    };
    ACTIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(pid, net);
    Ok(())
}

/// The jail `pid` has ended (or its launch failed): stop its network;
/// NSTUN's counters.
pub fn end(pid: i32) -> Option<NetCounters> {
    let net = ACTIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .and_then(|m| m.remove(&pid));
    match net {
        Some(JailNet::Pasta(mut p)) => {
            p.stop();
            None
        }
        Some(JailNet::Nstun) => nstun::detach(pid),
        None => None,
    }
}

/// Child side, right after clone (before the supervisor's part): NSTUN's
/// TUN device, created and configured in the jail's namespace and sent to
/// the supervisor.
///
/// # Errors
/// The device could not be made or sent.
pub fn child_tun(net: &NetSpec, end: &ChildEnd) -> Result<(), String> {
    let Some(u) = &net.user else {
        return Ok(());
    };
    let UserNetBackend::Nstun(n) = &u.backend else {
        return Ok(());
    };
    let fd = tun::create(n, &u.ns_iface)?;
    end.send_tun(fd.as_fd())
}

/// Child side, once the supervisor let it proceed: wait for the user
/// network to be usable.
///
/// # Errors
/// The interface did not come up in time.
pub fn child_wait(net: &NetSpec) -> Result<(), String> {
    let Some(u) = &net.user else {
        return Ok(());
    };
    let UserNetBackend::Pasta(p) = &u.backend else {
        return Ok(());
    };
    if !p.nat || p.dhcp4 || p.dhcp6 {
        // pasta configures nothing (splice only) or leaves it to DHCP.
        return Ok(());
    }
    let want4 = !p.only6;
    let start = Instant::now();
    loop {
        let ready = if want4 {
            has_default_route4(&u.ns_iface)
        } else {
            has_default_route6(&u.ns_iface)
        };
        if ready {
            return Ok(());
        }
        if start.elapsed() > PASTA_READY_TIMEOUT {
            return Err(format!(
                "pasta did not configure '{}' in the jail within {} s (no default {} route on it); \
                 see pasta's lines in nsjail's log",
                u.ns_iface,
                PASTA_READY_TIMEOUT.as_secs(),
                if want4 { "IPv4" } else { "IPv6" }
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether `/proc/self/net/route` (our network namespace) has a default
/// route through `iface`.
fn has_default_route4(iface: &str) -> bool {
    std::fs::read_to_string("/proc/self/net/route").is_ok_and(|t| {
        t.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 7 && f[0] == iface && f[1] == "00000000" && f[7] == "00000000"
        })
    })
}

/// Same for IPv6 (`/proc/self/net/ipv6_route`: destination `::/0`).
fn has_default_route6(iface: &str) -> bool {
    std::fs::read_to_string("/proc/self/net/ipv6_route").is_ok_and(|t| {
        t.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 10
                && f[0] == "00000000000000000000000000000000"
                && f[1] == "00"
                && f[9] == iface
        })
    })
}
