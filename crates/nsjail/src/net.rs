//! Networking of a jail in its own network namespace (§12).
//!
//! * Supervisor, right after clone ([`NetPlan::setup_parent`]): move each
//!   `iface_own` interface into the jail's namespace, then create the MACVLAN
//!   `vs` on `macvlan_iface` directly inside it (both by `IFLA_NET_NS_PID`).
//! * Child, at nsjail's step 5.4 ([`NetPlan::setup_child`]): `lo` up (unless
//!   `iface_no_lo`), `vs` configured (IPv4 + netmask, up, default route via
//!   the gateway), then each `traffic_rule` as a FIB policy rule.
//!
//! Everything is validated while the config is lowered
//! ([`nsjail_config::spec::NetSpec`]), so bad input is one clear error (also
//! under `--check`) and never a half-made jail. A netlink socket is opened
//! only when one of these features is used.
//!
//! Kernel facts worth knowing (observed, documented in the tests):
//! * When the jail's network namespace dies, virtual interfaces moved into
//!   it (veth, macvlan...) are destroyed with it — a veth end given to
//!   `iface_own` takes its peer along; physical interfaces go back to the
//!   *initial* network namespace, not to the one they came from.
//! * Traffic rules carry no priority (as nsjail): the kernel gives each new
//!   rule the preference just below the previous one (32765, 32764, ...),
//!   so a later `traffic_rule` is evaluated before an earlier one.
//! * `user_net` (NSTUN / pasta) lives in [`crate::usernet`].

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage, RulePortRange};
use netlink_packet_route::{AddressFamily, IpProtocol, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nsjail_config::spec::net::{MacvlanMode, NetSpec, RuleProto, RuleVerdict, TrafficRuleSpec};

use crate::sys;

/// Name of the MACVLAN interface inside the jail (as nsjail).
pub const VS: &str = "vs";

/// How long (RETRIES x RETRY_PAUSE) to wait for the previous jail's MACVLAN
/// to be freed by the kernel before giving up.
const RETRIES: u32 = 200;
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// What went wrong with the jail's network.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink or ioctl request failed.
    #[error("{what} failed: {}{hint}", sys::errno_text(source))]
    Request {
        /// What was being done (names the interface, address or rule).
        what: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
        /// What to check or change.
        hint: String,
    },
}

/// The hint for EPERM on an interface of nsjail's own network namespace
/// when nsjail is not root: it lacks CAP_NET_ADMIN there.
fn unpriv_hint(e: &io::Error) -> Option<String> {
    let euid = rustix::process::geteuid();
    (e.raw_os_error() == Some(libc::EPERM) && !euid.is_root()).then(|| {
        format!(
            "; as uid {} (not root) nsjail has no CAP_NET_ADMIN in its own network namespace, \
             which holds the interface: run nsjail as root, or start it inside a user+network \
             namespace of your own that holds the interface (e.g. a veth made after 'unshare -Urn')",
            euid.as_raw()
        )
    })
}

/// One traffic rule, ready to send.
#[derive(Debug, Clone)]
struct Rule {
    /// `installing traffic_rule #N (...)` for messages.
    what: String,
    msg: RuleMessage,
}

/// The network part of a jail: its [`NetSpec`] with the netlink messages
/// of its traffic rules built once, before clone.
#[derive(Debug, Clone, Default)]
pub struct NetPlan {
    spec: NetSpec,
    rules: Vec<Rule>,
}

fn rule_message(r: &TrafficRuleSpec) -> Rule {
    let mut msg = RuleMessage::default();
    msg.header.family = if r.ipv6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    if let Some((a, len)) = r.src {
        msg.header.src_len = len;
        msg.attributes.push(RuleAttribute::Source(a));
    }
    if let Some((a, len)) = r.dst {
        msg.header.dst_len = len;
        msg.attributes.push(RuleAttribute::Destination(a));
    }
    if let Some(i) = &r.iif {
        msg.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        msg.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some(p) = r.proto {
        msg.attributes.push(RuleAttribute::IpProtocol(match p {
            RuleProto::Tcp => IpProtocol::Tcp,
            RuleProto::Udp => IpProtocol::Udp,
            RuleProto::Icmp => IpProtocol::Icmp,
            RuleProto::Icmpv6 => IpProtocol::Other(libc::IPPROTO_ICMPV6),
        }));
    }
    if let Some((start, end)) = r.sport {
        msg.attributes
            .push(RuleAttribute::SourcePortRange(RulePortRange { start, end }));
    }
    if let Some((start, end)) = r.dport {
        msg.attributes
            .push(RuleAttribute::DestinationPortRange(RulePortRange {
                start,
                end,
            }));
    }
    // nsjail: DROP = blackhole, REJECT = unreachable, ALLOW = lookup main.
    match r.verdict {
        RuleVerdict::Drop => msg.header.action = RuleAction::Blackhole,
        RuleVerdict::Reject => msg.header.action = RuleAction::Unreachable,
        RuleVerdict::Allow => {
            msg.header.action = RuleAction::ToTable;
            msg.header.table = RouteHeader::RT_TABLE_MAIN;
            msg.attributes
                .push(RuleAttribute::Table(RouteHeader::RT_TABLE_MAIN as u32));
        }
    }
    Rule {
        what: r.describe(),
        msg,
    }
}

fn kernel_mode(m: MacvlanMode) -> MacVlanMode {
    match m {
        MacvlanMode::Private => MacVlanMode::Private,
        MacvlanMode::Vepa => MacVlanMode::Vepa,
        MacvlanMode::Bridge => MacVlanMode::Bridge,
        MacvlanMode::Passthru => MacVlanMode::Passthrough,
    }
}

impl NetPlan {
    /// The plan of a validated network spec (builds the rule messages).
    pub fn new(spec: &NetSpec) -> NetPlan {
        NetPlan {
            rules: spec.rules.iter().map(rule_message).collect(),
            spec: spec.clone(),
        }
    }

    /// Whether the supervisor has work to do for each jail (`iface_own`,
    /// MACVLAN): such jails cannot be set up ahead of time.
    pub fn has_parent_work(&self) -> bool {
        self.spec.has_parent_work()
    }

    /// Supervisor side, right after clone: hand the interfaces to the jail
    /// `pid` (in our pid namespace).
    pub fn setup_parent(&self, pid: i32) -> Result<(), NetError> {
        if !self.has_parent_work() {
            return Ok(());
        }
        let mut nl = Rtnl::open("nsjail's")?;
        for name in &self.spec.own {
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(name.clone()));
            m.attributes.push(LinkAttribute::NetNsPid(pid as u32));
            nl.request(RouteNetlinkMessage::SetLink(m), 0)
                .map_err(|e| NetError::Request {
                    what: format!("moving interface '{name}' (iface_own) into the jail's network namespace (pid={pid})"),
                    hint: unpriv_hint(&e).unwrap_or_else(|| "; it must exist in nsjail's network namespace (see 'ip link') and not be in use by another jail".to_string()),
                    source: e,
                })?;
        }
        if let Some(mv) = &self.spec.macvlan {
            let parent = nl.link_index(&mv.parent).map_err(|e| NetError::Request {
                what: format!(
                    "looking up the MACVLAN parent interface '{}' (macvlan_iface/-I)",
                    mv.parent
                ),
                source: e,
                hint: "; give an interface of nsjail's network namespace (see 'ip link')"
                    .to_string(),
            })?;
            let mut m = LinkMessage::default();
            m.attributes.push(LinkAttribute::IfName(VS.to_string()));
            m.attributes.push(LinkAttribute::Link(parent));
            m.attributes.push(LinkAttribute::NetNsPid(pid as u32));
            if let Some(mac) = mv.mac {
                m.attributes.push(LinkAttribute::Address(mac.to_vec()));
            }
            m.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::MacVlan),
                LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(kernel_mode(
                    mv.mode,
                ))])),
            ]));
            nl.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
                .map_err(|e| NetError::Request {
                    what: format!(
                        "creating MACVLAN '{VS}' (mode {:?}{}) on '{}' in the jail's network namespace (pid={pid})",
                        mv.mode,
                        mv.mac.map(|m| format!(", MAC {}", mac_text(&m))).unwrap_or_default(),
                        mv.parent
                    ),
                    hint: unpriv_hint(&e).unwrap_or_else(|| "; check macvlan_iface (an Ethernet interface, not a macvlan in passthru use) and macvlan_vs_ma (unique, unicast)".to_string()),
                    source: e,
                })?;
        }
        Ok(())
    }

    /// Child side, in the jail's network namespace (nsjail's step 5.4).
    pub fn setup_child(&self) -> Result<(), NetError> {
        if !self.spec.newnet {
            return Ok(());
        }
        if self.spec.lo {
            sys::interface_up("lo").map_err(|e| NetError::Request {
                what: "bringing up the loopback interface 'lo'".to_string(),
                source: e.source,
                hint: String::new(),
            })?;
        }
        let vs = self
            .spec
            .macvlan
            .as_ref()
            .and_then(|m| m.addr.map(|a| (a, m.gw)));
        if vs.is_none() && self.rules.is_empty() {
            return Ok(());
        }
        let mut nl = Rtnl::open("the jail's")?;
        if let Some(((ip, prefix), gw)) = vs {
            configure_vs(&mut nl, ip, prefix, gw)?;
        }
        for r in &self.rules {
            nl.request(RouteNetlinkMessage::NewRule(r.msg.clone()), NLM_F_CREATE)
                .map_err(|e| NetError::Request {
                    what: r.what.clone(),
                    source: e,
                    hint: "; check the rule's addresses, interface names and ports".to_string(),
                })?;
        }
        Ok(())
    }
}

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// IPv4 + netmask on `vs`, `vs` up, default route via `gw`.
fn configure_vs(
    nl: &mut Rtnl,
    ip: Ipv4Addr,
    prefix: u8,
    gw: Option<Ipv4Addr>,
) -> Result<(), NetError> {
    let req = |what: String, hint: &str| {
        let hint = hint.to_string();
        move |e| NetError::Request {
            what,
            source: e,
            hint,
        }
    };
    let index = nl
        .link_index(VS)
        .map_err(req(format!("finding '{VS}' in the jail"), ""))?;
    let mut a = AddressMessage::default();
    a.header.family = AddressFamily::Inet;
    a.header.prefix_len = prefix;
    a.header.index = index;
    a.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
    a.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
    if prefix < 31 {
        let host = if prefix == 0 {
            u32::MAX
        } else {
            u32::MAX >> prefix
        };
        a.attributes
            .push(AddressAttribute::Broadcast(Ipv4Addr::from(
                u32::from(ip) | host,
            )));
    }
    nl.request(
        RouteNetlinkMessage::NewAddress(a),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .map_err(req(
        format!("setting {ip}/{prefix} on '{VS}' (macvlan_vs_ip/macvlan_vs_nm)"),
        "; check macvlan_vs_ip and macvlan_vs_nm",
    ))?;
    let mut l = LinkMessage::default();
    l.header.index = index;
    l.header.flags = LinkFlags::Up;
    l.header.change_mask = LinkFlags::Up;
    // The `vs` of the jail before (RERUN) may still be up in its dying
    // namespace, holding the same MAC: the kernel frees it asynchronously,
    // within milliseconds. Wait for that, boundedly.
    let mut tries = 0;
    loop {
        match nl.request(RouteNetlinkMessage::SetLink(l.clone()), 0) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) && tries < RETRIES => {
                tries += 1;
                std::thread::sleep(RETRY_PAUSE);
            }
            r => {
                r.map_err(req(
                    format!("bringing '{VS}' up"),
                    "; another interface on the same parent uses this MAC (macvlan_vs_ma)",
                ))?;
                break;
            }
        }
    }
    if let Some(gw) = gw {
        let mut r = RouteMessage::default();
        r.header.address_family = AddressFamily::Inet;
        r.header.table = RouteHeader::RT_TABLE_MAIN;
        r.header.protocol = RouteProtocol::Boot;
        r.header.scope = RouteScope::Universe;
        r.header.kind = RouteType::Unicast;
        r.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        r.attributes.push(RouteAttribute::Oif(index));
        nl.request(RouteNetlinkMessage::NewRoute(r), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(req(
                format!("adding the default route via {gw} on '{VS}' (macvlan_vs_gw)"),
                &format!(
                    "; the gateway must be inside {ip}/{prefix} (or use 0.0.0.0 for no route)"
                ),
            ))?;
    }
    Ok(())
}

/// A blocking NETLINK_ROUTE socket bound to the network namespace it was
/// opened in.
pub(crate) struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    pub(crate) fn open(ns: &str) -> Result<Rtnl, NetError> {
        let fail = |e| NetError::Request {
            what: format!("opening a NETLINK_ROUTE socket in {ns} network namespace"),
            source: e,
            hint: String::new(),
        };
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(fail)?;
        sock.bind_auto().map_err(fail)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(fail)?;
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; 32 * 1024],
        })
    }

    /// The index of interface `name` (RTM_GETLINK by name).
    pub(crate) fn link_index(&mut self, name: &str) -> io::Result<u32> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0)? {
            Some(RouteNetlinkMessage::NewLink(l)) if l.header.index > 0 => Ok(l.header.index),
            _ => Err(io::Error::from_raw_os_error(libc::ENODEV)),
        }
    }

    /// Send one request with NLM_F_ACK; return the reply message (if the
    /// kernel sent one before its acknowledgement) or the kernel's error.
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Option<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut nl = NetlinkMessage::from(msg);
        nl.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        nl.header.sequence_number = self.seq;
        nl.finalize();
        let mut out = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let mut reply = None;
        // The kernel answers synchronously; a handful of datagrams at most.
        for _ in 0..64 {
            let n = {
                let mut b: &mut [u8] = &mut self.buf[..];
                self.sock.recv(&mut b, 0)?
            }
            .min(self.buf.len());
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes([
                    self.buf[off],
                    self.buf[off + 1],
                    self.buf[off + 2],
                    self.buf[off + 3],
                ]) as usize;
                if len < 16 || off + len > n {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink reply",
                    ));
                }
                let m =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..off + len]);
                off += (len + 3) & !3;
                let m = match m {
                    Ok(m) => m,
                    // A reply we cannot decode (a newer kernel attribute):
                    // only its acknowledgement matters to us.
                    Err(_) => continue,
                };
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(reply),
                            Some(_) => Err(e.to_io()),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(reply),
                    NetlinkPayload::InnerMessage(i) => reply = Some(i),
                    _ => {}
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no acknowledgement from the kernel",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> NetPlan {
        let cfg = nsjail_config::textformat::parse::<nsjail_config::NsJailConfig>(text)
            .expect("test config parses")
            .0;
        NetPlan::new(&NetSpec::lower(&cfg).expect("valid network settings"))
    }

    #[test]
    fn rules_become_nsjail_fib_rules() {
        let p = plan(
            r#"
            traffic_rule { dst_ip: "192.0.2.1" proto: TCP dport: 80 dport_end: 90 }
            traffic_rule { src_ip: "192.0.2.0/24" action: REJECT sport: 53 }
            traffic_rule { oif: "vs" action: ALLOW }
            traffic_rule { dst_ip: "2001:db8::/32" ip_family: IPV6 proto: ICMPV6 action: DROP }
        "#,
        );
        assert_eq!(p.rules.len(), 4);
        let r0 = &p.rules[0].msg;
        assert_eq!(r0.header.action, RuleAction::Blackhole);
        assert_eq!(r0.header.dst_len, 32);
        assert!(r0
            .attributes
            .contains(&RuleAttribute::IpProtocol(IpProtocol::Tcp)));
        assert!(r0
            .attributes
            .contains(&RuleAttribute::DestinationPortRange(RulePortRange {
                start: 80,
                end: 90
            })));
        assert!(p.rules[0]
            .what
            .starts_with("installing traffic_rule #1 (IPv4"));
        let r1 = &p.rules[1].msg;
        assert_eq!(r1.header.action, RuleAction::Unreachable);
        assert_eq!(r1.header.src_len, 24);
        assert!(r1
            .attributes
            .contains(&RuleAttribute::SourcePortRange(RulePortRange {
                start: 53,
                end: 53
            })));
        let r2 = &p.rules[2].msg;
        assert_eq!(r2.header.action, RuleAction::ToTable);
        assert_eq!(r2.header.table, 254);
        assert!(r2.attributes.contains(&RuleAttribute::Oifname("vs".into())));
        assert_eq!(p.rules[3].msg.header.family, AddressFamily::Inet6);
        assert!(p.rules[3]
            .msg
            .attributes
            .contains(&RuleAttribute::IpProtocol(IpProtocol::Other(
                libc::IPPROTO_ICMPV6
            ))));
    }

    #[test]
    fn macvlan_modes_map_to_the_kernel_modes() {
        assert_eq!(kernel_mode(MacvlanMode::Private), MacVlanMode::Private);
        assert_eq!(kernel_mode(MacvlanMode::Passthru), MacVlanMode::Passthrough);
        assert!(plan(r#"macvlan_iface: "eth0""#).has_parent_work());
        assert!(!plan("clone_newnet: false").has_parent_work());
    }
}
