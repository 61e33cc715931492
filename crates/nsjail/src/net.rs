//! Networking of a jail in its own network namespace (§12).
//!
//! * Supervisor, right after clone ([`NetPlan::setup_parent`]): move each
//!   `iface_own` interface into the jail's namespace, then create the MACVLAN
//!   `vs` on `macvlan_iface` directly inside it (both by `IFLA_NET_NS_PID`).
//! * Child, at nsjail's step 5.4 ([`NetPlan::setup_child`]): `lo` up (unless
//!   `iface_no_lo`), `vs` configured (IPv4 + netmask, up, default route via
//!   the gateway), then each `traffic_rule` as a FIB policy rule.
//!
//! Everything is validated before clone ([`NetPlan::prepare`]), so bad input
//! is one clear error and never a half-made jail. A netlink socket is opened
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
//! * `user_net` (NSTUN / pasta) is not implemented: [`refuse_unsupported`]
//!   makes nsjail exit instead of running a jail without the network asked for.

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
use nsjail_config::ns_jail_config::traffic_rule::{IpFamily, Protocol, TrafficAction};
use nsjail_config::ns_jail_config::TrafficRule;
use nsjail_config::Mode;

use crate::sys;

/// Name of the MACVLAN interface inside the jail (as nsjail).
pub const VS: &str = "vs";

/// How long (RETRIES x RETRY_PAUSE) to wait for the previous jail's MACVLAN
/// to be freed by the kernel before giving up.
const RETRIES: u32 = 200;
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

/// What went wrong with the jail's network.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A setting has a value we cannot use.
    #[error("{field}: '{value}' {why}")]
    Invalid {
        /// The setting (flag or config field).
        field: String,
        /// Its value.
        value: String,
        /// Why it is wrong and what to write instead.
        why: String,
    },
    /// A setting that this implementation does not support (yet).
    #[error("{0}")]
    Unsupported(String),
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

fn invalid(field: &str, value: &str, why: impl Into<String>) -> NetError {
    NetError::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// Refuse settings the runtime cannot honour, instead of running a jail
/// without them. Called once, before anything is launched.
pub fn refuse_unsupported(cfg: &nsjail_config::NsJailConfig) -> Result<(), NetError> {
    if cfg.user_net.is_some() {
        let backend = match cfg.user_net.backend() {
            nsjail_config::ns_jail_config::user_net::Backend::PASTA => "PASTA",
            _ => "NSTUN",
        };
        return Err(NetError::Unsupported(format!(
            "user_net (--user_net, backend {backend}) is not supported by this implementation yet; \
             remove it and use --macvlan_iface/-I (a MACVLAN 'vs' on a host interface), --iface_own, \
             or -N/--disable_clone_newnet to share the host's network"
        )));
    }
    Ok(())
}

/// The MACVLAN `vs` of the jail.
#[derive(Debug, Clone)]
struct Macvlan {
    /// `macvlan_iface`: the host interface it is stacked on.
    parent: String,
    mode: MacVlanMode,
    mac: Option<[u8; 6]>,
    /// IPv4 and prefix length; `None` = 0.0.0.0 = leave `vs` unconfigured.
    addr: Option<(Ipv4Addr, u8)>,
    /// Default gateway; `None` = 0.0.0.0 = no default route.
    gw: Option<Ipv4Addr>,
}

/// One traffic rule, ready to send.
#[derive(Debug, Clone)]
struct Rule {
    /// `traffic_rule #N (...)` for messages.
    what: String,
    msg: RuleMessage,
}

/// The network part of a jail, resolved before clone.
#[derive(Debug, Clone, Default)]
pub struct NetPlan {
    newnet: bool,
    lo: bool,
    own: Vec<String>,
    macvlan: Option<Macvlan>,
    rules: Vec<Rule>,
}

fn check_ifname(field: &str, name: &str) -> Result<(), NetError> {
    if name.is_empty()
        || name.len() > IFNAME_MAX
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        return Err(invalid(
            field,
            name,
            format!(
                "is not an interface name (1-{IFNAME_MAX} bytes, no '/', ':' or spaces; see 'ip link')"
            ),
        ));
    }
    Ok(())
}

fn parse_v4(field: &str, s: &str, example: &str) -> Result<Ipv4Addr, NetError> {
    s.parse::<Ipv4Addr>().map_err(|_| {
        invalid(
            field,
            s,
            format!("is not an IPv4 address; write it like {example}"),
        )
    })
}

/// A contiguous IPv4 netmask as a prefix length.
fn netmask_prefix(field: &str, s: &str) -> Result<u8, NetError> {
    let m = u32::from(parse_v4(field, s, "255.255.255.0")?);
    let prefix = m.leading_ones();
    let expect = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    if m != expect {
        return Err(invalid(
            field,
            s,
            "is not a contiguous netmask (ones then zeros, like 255.255.255.0)",
        ));
    }
    Ok(prefix as u8)
}

fn parse_mac(field: &str, s: &str) -> Result<[u8; 6], NetError> {
    let bad = || {
        invalid(
            field,
            s,
            "is not a unicast MAC address; write six hex bytes like 02:00:00:00:00:01",
        )
    };
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (d, p) in mac.iter_mut().zip(&parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *d = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 || mac == [0; 6] {
        return Err(bad());
    }
    Ok(mac)
}

fn macvlan_mode(s: &str) -> Result<MacVlanMode, NetError> {
    match s.to_ascii_lowercase().as_str() {
        "private" => Ok(MacVlanMode::Private),
        "vepa" => Ok(MacVlanMode::Vepa),
        "bridge" => Ok(MacVlanMode::Bridge),
        "passthru" => Ok(MacVlanMode::Passthrough),
        _ => Err(invalid(
            "macvlan_vs_mo",
            s,
            "is not a MACVLAN mode; use private, vepa, bridge or passthru",
        )),
    }
}

/// `ADDR[/BITS]` of the rule's family.
fn parse_cidr(field: &str, s: &str, v6: bool) -> Result<(IpAddr, u8), NetError> {
    let fam = if v6 { "IPv6" } else { "IPv4" };
    let example = if v6 { "2001:db8::/32" } else { "192.0.2.0/24" };
    let (a, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| {
        invalid(
            field,
            s,
            format!("is not an {fam} address or network; write it like {example} (ip_family selects IPv4/IPv6)"),
        )
    })?;
    if addr.is_ipv6() != v6 {
        return Err(invalid(
            field,
            s,
            format!("is not an {fam} address, but the rule's ip_family is {fam}; set ip_family: {} or use an {fam} address", if v6 { "IPV4" } else { "IPV6" }),
        ));
    }
    let max = if v6 { 128 } else { 32 };
    let len = match bits {
        None => max,
        Some(b) => match b.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(invalid(
                    field,
                    s,
                    format!("has a bad prefix length; use /0 to /{max}"),
                ))
            }
        },
    };
    Ok((addr, len))
}

fn port_range(
    n: usize,
    name: &str,
    start: Option<u32>,
    end: Option<u32>,
) -> Result<Option<RulePortRange>, NetError> {
    let field = format!("traffic_rule #{n}: {name}");
    let (start, end) = match (start, end) {
        (None, None) => return Ok(None),
        (None, Some(e)) => {
            return Err(invalid(
                &format!("{field}_end"),
                &e.to_string(),
                format!("is given without {name}; set {name} (the range start) too"),
            ))
        }
        (Some(s), e) => (s, e.unwrap_or(s)),
    };
    for (f, v) in [(field.clone(), start), (format!("{field}_end"), end)] {
        if v > 65535 {
            return Err(invalid(&f, &v.to_string(), "is not a port (0-65535)"));
        }
    }
    if end < start {
        return Err(invalid(
            &format!("{field}_end"),
            &end.to_string(),
            format!("is below {name} {start}; a range must not be empty"),
        ));
    }
    Ok(Some(RulePortRange {
        start: start as u16,
        end: end as u16,
    }))
}

fn rule_message(n: usize, r: &TrafficRule) -> Result<Rule, NetError> {
    let v6 = r.ip_family() == IpFamily::IPV6;
    let mut msg = RuleMessage::default();
    msg.header.family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let mut desc = Vec::new();
    if r.has_src_ip() && !r.src_ip().is_empty() {
        let (a, len) = parse_cidr(&format!("traffic_rule #{n}: src_ip"), r.src_ip(), v6)?;
        msg.header.src_len = len;
        msg.attributes.push(RuleAttribute::Source(a));
        desc.push(format!("src_ip {}", r.src_ip()));
    }
    if r.has_dst_ip() && !r.dst_ip().is_empty() {
        let (a, len) = parse_cidr(&format!("traffic_rule #{n}: dst_ip"), r.dst_ip(), v6)?;
        msg.header.dst_len = len;
        msg.attributes.push(RuleAttribute::Destination(a));
        desc.push(format!("dst_ip {}", r.dst_ip()));
    }
    if r.has_iif() && !r.iif().is_empty() {
        check_ifname(&format!("traffic_rule #{n}: iif"), r.iif())?;
        msg.attributes
            .push(RuleAttribute::Iifname(r.iif().to_string()));
        desc.push(format!("iif {}", r.iif()));
    }
    if r.has_oif() && !r.oif().is_empty() {
        check_ifname(&format!("traffic_rule #{n}: oif"), r.oif())?;
        msg.attributes
            .push(RuleAttribute::Oifname(r.oif().to_string()));
        desc.push(format!("oif {}", r.oif()));
    }
    let proto = match r.proto() {
        Protocol::UNKNOWN_PROTO => None,
        Protocol::TCP => Some(IpProtocol::Tcp),
        Protocol::UDP => Some(IpProtocol::Udp),
        Protocol::ICMP => Some(IpProtocol::Icmp),
        Protocol::ICMPV6 => Some(IpProtocol::Other(libc::IPPROTO_ICMPV6)),
    };
    if let Some(p) = proto {
        msg.attributes.push(RuleAttribute::IpProtocol(p));
        desc.push(format!("proto {:?}", r.proto()));
    }
    let sport = port_range(
        n,
        "sport",
        r.has_sport().then(|| r.sport()),
        r.has_sport_end().then(|| r.sport_end()),
    )?;
    if let Some(p) = sport {
        msg.attributes.push(RuleAttribute::SourcePortRange(p));
        desc.push(format!("sport {}-{}", p.start, p.end));
    }
    let dport = port_range(
        n,
        "dport",
        r.has_dport().then(|| r.dport()),
        r.has_dport_end().then(|| r.dport_end()),
    )?;
    if let Some(p) = dport {
        msg.attributes.push(RuleAttribute::DestinationPortRange(p));
        desc.push(format!("dport {}-{}", p.start, p.end));
    }
    // nsjail: DROP = blackhole, REJECT = unreachable, ALLOW = lookup main;
    // no action at all = blackhole.
    let action = if r.has_action() {
        r.action()
    } else {
        TrafficAction::DROP
    };
    match action {
        TrafficAction::DROP => msg.header.action = RuleAction::Blackhole,
        TrafficAction::REJECT => msg.header.action = RuleAction::Unreachable,
        TrafficAction::ALLOW => {
            msg.header.action = RuleAction::ToTable;
            msg.header.table = RouteHeader::RT_TABLE_MAIN;
            msg.attributes
                .push(RuleAttribute::Table(RouteHeader::RT_TABLE_MAIN as u32));
        }
        TrafficAction::UNKNOWN_ACTION => {
            return Err(invalid(
                &format!("traffic_rule #{n}: action"),
                "UNKNOWN_ACTION",
                "is not an action; use DROP, REJECT or ALLOW",
            ))
        }
    }
    desc.push(format!("action {action:?}"));
    Ok(Rule {
        what: format!(
            "installing traffic_rule #{n} ({}, {})",
            if v6 { "IPv6" } else { "IPv4" },
            desc.join(", ")
        ),
        msg,
    })
}

impl NetPlan {
    /// Validate and resolve the networking settings.
    pub fn prepare(cfg: &nsjail_config::NsJailConfig) -> Result<NetPlan, NetError> {
        let newnet = cfg.clone_newnet();
        let wants_macvlan = !cfg.macvlan_iface().is_empty();
        let used: Vec<&str> = [
            (!cfg.iface_own.is_empty(), "iface_own (--iface_own)"),
            (wants_macvlan, "macvlan_iface (--macvlan_iface/-I)"),
            (!cfg.traffic_rule.is_empty(), "traffic_rule"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        if !newnet {
            if let Some(first) = used.first() {
                return Err(NetError::Unsupported(format!(
                    "{first} needs the jail's own network namespace, but it is disabled (-N/--disable_clone_newnet, clone_newnet: false); \
                     enable it or remove {}",
                    used.join(", ")
                )));
            }
            return Ok(NetPlan::default());
        }
        if cfg.mode() == Mode::EXECVE && (!cfg.iface_own.is_empty() || wants_macvlan) {
            return Err(NetError::Unsupported(
                "iface_own and macvlan_iface are not supported in EXECVE mode (-Me): no supervisor \
                 stays outside the jail's network namespace to hand interfaces in (nsjail skips \
                 them silently there); use -Mo, -Mr or -Ml"
                    .to_string(),
            ));
        }
        let mut own = Vec::new();
        for name in &cfg.iface_own {
            check_ifname("iface_own", name)?;
            own.push(name.clone());
        }
        let macvlan = if wants_macvlan {
            check_ifname("macvlan_iface", cfg.macvlan_iface())?;
            if own.iter().any(|o| o == cfg.macvlan_iface()) {
                return Err(invalid(
                    "macvlan_iface",
                    cfg.macvlan_iface(),
                    "is also given to iface_own, so it is moved away before 'vs' can be stacked on it; use different interfaces",
                ));
            }
            let ip = parse_v4("macvlan_vs_ip", cfg.macvlan_vs_ip(), "192.168.0.2")?;
            let prefix = netmask_prefix("macvlan_vs_nm", cfg.macvlan_vs_nm())?;
            let gw = parse_v4("macvlan_vs_gw", cfg.macvlan_vs_gw(), "192.168.0.1")?;
            let mac = if cfg.macvlan_vs_ma().is_empty() {
                None
            } else {
                Some(parse_mac("macvlan_vs_ma", cfg.macvlan_vs_ma())?)
            };
            Some(Macvlan {
                parent: cfg.macvlan_iface().to_string(),
                mode: macvlan_mode(cfg.macvlan_vs_mo())?,
                mac,
                addr: (!ip.is_unspecified()).then_some((ip, prefix)),
                gw: (!gw.is_unspecified()).then_some(gw),
            })
        } else {
            None
        };
        let rules = cfg
            .traffic_rule
            .iter()
            .enumerate()
            .map(|(i, r)| rule_message(i + 1, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetPlan {
            newnet,
            lo: !cfg.iface_no_lo(),
            own,
            macvlan,
            rules,
        })
    }

    /// Whether the supervisor has work to do for each jail (`iface_own`,
    /// MACVLAN): such jails cannot be set up ahead of time.
    pub fn has_parent_work(&self) -> bool {
        !self.own.is_empty() || self.macvlan.is_some()
    }

    /// Supervisor side, right after clone: hand the interfaces to the jail
    /// `pid` (in our pid namespace).
    pub fn setup_parent(&self, pid: i32) -> Result<(), NetError> {
        if !self.has_parent_work() {
            return Ok(());
        }
        let mut nl = Rtnl::open("nsjail's")?;
        for name in &self.own {
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
        if let Some(mv) = &self.macvlan {
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
                LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(mv.mode)])),
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
        if !self.newnet {
            return Ok(());
        }
        if self.lo {
            sys::interface_up("lo").map_err(|e| NetError::Request {
                what: "bringing up the loopback interface 'lo'".to_string(),
                source: e.source,
                hint: String::new(),
            })?;
        }
        let vs = self
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
struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    fn open(ns: &str) -> Result<Rtnl, NetError> {
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
    fn link_index(&mut self, name: &str) -> io::Result<u32> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0)? {
            Some(RouteNetlinkMessage::NewLink(l)) if l.header.index > 0 => Ok(l.header.index),
            _ => Err(io::Error::from_raw_os_error(libc::ENODEV)),
        }
    }

    /// Send one request with NLM_F_ACK; return the reply message (if the
    /// kernel sent one before its acknowledgement) or the kernel's error.
    fn request(
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

    fn cfg(text: &str) -> nsjail_config::NsJailConfig {
        nsjail_config::textformat::parse::<nsjail_config::NsJailConfig>(text)
            .expect("test config parses")
            .0
    }

    #[test]
    fn netmask_must_be_contiguous() {
        assert_eq!(netmask_prefix("nm", "255.255.255.0").unwrap(), 24);
        assert_eq!(netmask_prefix("nm", "0.0.0.0").unwrap(), 0);
        assert_eq!(netmask_prefix("nm", "255.255.255.255").unwrap(), 32);
        let e = netmask_prefix("macvlan_vs_nm", "255.0.255.0").unwrap_err();
        assert!(e.to_string().contains("contiguous"), "{e}");
        assert!(netmask_prefix("nm", "255.255.255").is_err());
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("ma", "02:00:00:AA:bb:0c").unwrap(),
            [2, 0, 0, 0xaa, 0xbb, 0xc]
        );
        for bad in [
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "02:00:00:00:00",
            "zz:00:00:00:00:01",
            "02:000:0:0:0:1",
        ] {
            assert!(parse_mac("macvlan_vs_ma", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_family_and_prefix() {
        assert_eq!(
            parse_cidr("f", "10.1.0.0/16", false).unwrap(),
            ("10.1.0.0".parse().unwrap(), 16)
        );
        assert_eq!(parse_cidr("f", "2001:db8::1", true).unwrap().1, 128);
        assert!(parse_cidr("f", "2001:db8::1", false).is_err());
        assert!(parse_cidr("f", "10.0.0.0/33", false).is_err());
        assert!(parse_cidr("f", "10.0.0/8", false).is_err());
    }

    #[test]
    fn rules_follow_nsjail_actions() {
        let c = cfg(r#"
            traffic_rule { dst_ip: "192.0.2.1" proto: TCP dport: 80 dport_end: 90 }
            traffic_rule { src_ip: "192.0.2.0/24" action: REJECT sport: 53 }
            traffic_rule { oif: "vs" action: ALLOW }
            traffic_rule { dst_ip: "2001:db8::/32" ip_family: IPV6 proto: ICMPV6 action: DROP }
        "#);
        let p = NetPlan::prepare(&c).unwrap();
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
    }

    #[test]
    fn bad_rules_are_refused_with_the_field() {
        for (text, needle) in [
            (r#"traffic_rule { dst_ip: "2001:db8::1" }"#, "dst_ip"),
            (r#"traffic_rule { dport: 70000 }"#, "dport"),
            (r#"traffic_rule { dport: 90 dport_end: 80 }"#, "dport_end"),
            (r#"traffic_rule { sport_end: 80 }"#, "sport_end"),
            (
                r#"traffic_rule { iif: "a-very-long-interface-name" }"#,
                "iif",
            ),
            (r#"traffic_rule { action: UNKNOWN_ACTION }"#, "action"),
        ] {
            let e = NetPlan::prepare(&cfg(text)).unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.contains("traffic_rule #1"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn macvlan_settings_are_validated() {
        let ok =
            NetPlan::prepare(&cfg(r#"macvlan_iface: "eth0" macvlan_vs_ip: "0.0.0.0""#)).unwrap();
        let mv = ok.macvlan.unwrap();
        assert!(mv.addr.is_none());
        assert_eq!(mv.mode, MacVlanMode::Private);
        assert_eq!(mv.gw, Some(Ipv4Addr::new(192, 168, 0, 1)));
        for (text, needle) in [
            (
                r#"macvlan_iface: "eth0" macvlan_vs_ip: "300.1.1.1""#,
                "macvlan_vs_ip",
            ),
            (
                r#"macvlan_iface: "eth0" macvlan_vs_gw: "gw""#,
                "macvlan_vs_gw",
            ),
            (
                r#"macvlan_iface: "eth0" macvlan_vs_ma: "ff:ff:ff:ff:ff:ff""#,
                "macvlan_vs_ma",
            ),
            (r#"macvlan_iface: "eth0/1""#, "macvlan_iface"),
            (r#"iface_own: "eth0" macvlan_iface: "eth0""#, "iface_own"),
        ] {
            let e = NetPlan::prepare(&cfg(text)).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn no_netns_means_no_network_features() {
        let e = NetPlan::prepare(&cfg(r#"clone_newnet: false iface_own: "veth0""#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("iface_own") && e.contains("clone_newnet"), "{e}");
        let e = NetPlan::prepare(&cfg(r#"mode: EXECVE macvlan_iface: "eth0""#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("EXECVE"), "{e}");
        assert!(!NetPlan::prepare(&cfg("clone_newnet: false"))
            .unwrap()
            .has_parent_work());
    }

    #[test]
    fn user_net_is_refused() {
        let e = refuse_unsupported(&cfg("user_net { }"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("user_net") && e.contains("not supported"), "{e}");
        assert!(refuse_unsupported(&cfg("")).is_ok());
    }
}
