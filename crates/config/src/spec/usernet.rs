//! User-mode networking (`user_net`, §3.6 and §12 of nsjail's behaviour),
//! lowered into typed values: which backend (the built-in NSTUN stack or
//! the external `pasta`), the jail's addresses, NSTUN's rules in order and
//! its host listeners, pasta's options.
//!
//! Two schemas are accepted, told apart by the fields a config sets:
//! * current nsjail (unreleased HEAD): `user_net { backend pasta rule4
//!   rule6 ip4 gw4 ip6 gw6 ns_iface }`; the message's presence enables it
//!   (`--user_net`);
//! * released nsjail 3.5/3.6 (and its README): `user_net { enable ip mask
//!   gw ip6 mask6 gw6 ns_iface tcp_ports udp_ports ... }` with pasta behind
//!   it (`--use_pasta`); `enable` decides.
//!
//! Fields of both in one message are refused with one line. Every check
//! that can fail before clone is here, so `--check` and a launch agree.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use crate::proto::config::ns_jail_config::user_net::nstun_rule::{Action, Direction, Protocol};
use crate::proto::config::ns_jail_config::user_net::{Backend, NstunRule};
use crate::proto::config::ns_jail_config::UserNet;
use crate::proto::config::NsJailConfig;

use super::net::{NetSpecError, IFNAME_MAX};

/// MTU of NSTUN's TUN device, as nsjail (`NSTUN_MTU`: 64 KiB - 1 KiB).
pub const NSTUN_MTU: u32 = 64 * 1024 - 1024;
/// Default cap on a jail's open NSTUN flows (ours; nsjail caps each
/// protocol's flow table at 1024).
pub const DEFAULT_MAX_FLOWS: u32 = 1024;
/// Default bytes buffered per NSTUN flow and direction (ours).
pub const DEFAULT_FLOW_BUFFER: u32 = 256 * 1024;

/// Which `user_net` schema a config used (for messages and `--check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Current nsjail: `backend`, `pasta {}`, `rule4`/`rule6`, `ip4`/`gw4`.
    Current,
    /// nsjail 3.5/3.6: `enable`, `ip`, `mask`, `gw`, `tcp_ports`, ... (pasta).
    Release36,
}

/// The user-mode network of a jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNetSpec {
    /// The schema the config used.
    pub schema: Schema,
    /// The interface name inside the jail (`ns_iface`, default `eth0`).
    pub ns_iface: String,
    /// The backend and its settings.
    pub backend: UserNetBackend,
}

/// A user-mode network backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNetBackend {
    /// The built-in stack: a TUN device in the jail, NAT in the supervisor.
    Nstun(NstunSpec),
    /// The external `pasta` program.
    Pasta(PastaSpec),
}

/// NSTUN: the addresses of the jail's TUN device, its rules and host
/// listeners, and the bounds on its flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NstunSpec {
    /// The jail's IPv4 address (`ip4`); `None` when empty (no IPv4).
    pub ip4: Option<Ipv4Addr>,
    /// The point-to-point peer / gateway (`gw4`).
    pub gw4: Option<Ipv4Addr>,
    /// The jail's IPv6 address (`ip6`, /128); `None` when empty.
    pub ip6: Option<Ipv6Addr>,
    /// The IPv6 gateway (`gw6`).
    pub gw6: Option<Ipv6Addr>,
    /// The TUN device's MTU in bytes ([`NSTUN_MTU`], as nsjail).
    pub mtu: u32,
    /// `rule4` then `rule6`, each in config order; first match wins within
    /// a family and direction; no match = ALLOW (as nsjail).
    pub rules: Vec<NstunRuleSpec>,
    /// Host listeners of HOST_TO_GUEST REDIRECT rules, one per port.
    pub forwards: Vec<ForwardSpec>,
    /// Cap on the jail's open flows (ours; `nsjailrs_max_flows`).
    pub max_flows: u32,
    /// Bytes buffered per flow and direction (ours; `nsjailrs_flow_buffer`).
    pub flow_buffer: u32,
}

/// The transport protocol an NSTUN rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP / ICMPv6 (echo).
    Icmp,
}

/// What an NSTUN rule does with a matching flow (as nsjail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NstunAction {
    /// Silently dropped.
    Drop,
    /// Refused: TCP RST, or ICMP port unreachable for UDP.
    Reject,
    /// Connected to its destination from nsjail's network namespace.
    Allow,
    /// Connected to `ip`:`port` instead; a missing part keeps the
    /// destination's (ours: nsjail needs both for UDP). For HOST_TO_GUEST:
    /// the port in the jail.
    Redirect {
        /// The new destination address.
        ip: Option<IpAddr>,
        /// The new destination port.
        port: Option<u16>,
    },
    /// Tunnelled through a SOCKS5 proxy (TCP CONNECT, UDP ASSOCIATE).
    Socks5(SocketAddrV4),
    /// Tunnelled through an HTTP proxy with `CONNECT` (TCP only).
    Connect(SocketAddrV4),
}

impl NstunAction {
    /// nsjail's name of the action.
    pub fn name(&self) -> &'static str {
        match self {
            NstunAction::Drop => "DROP",
            NstunAction::Reject => "REJECT",
            NstunAction::Allow => "ALLOW",
            NstunAction::Redirect { .. } => "REDIRECT",
            NstunAction::Socks5(_) => "ENCAP_SOCKS5",
            NstunAction::Connect(_) => "ENCAP_CONNECT",
        }
    }
}

/// One `rule4`/`rule6`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NstunRuleSpec {
    /// `rule4 #N` / `rule6 #N` (1-based), for messages.
    pub name: String,
    /// A `rule6`.
    pub v6: bool,
    /// HOST_TO_GUEST (inbound through a host listener), else GUEST_TO_HOST.
    pub inbound: bool,
    /// The protocol; `None` = any.
    pub proto: Option<L4>,
    /// Source network (address, prefix length).
    pub src: Option<(IpAddr, u8)>,
    /// Destination network.
    pub dst: Option<(IpAddr, u8)>,
    /// Source port range (inclusive); `None` = any (as nsjail: port 0 = any).
    pub sport: Option<(u16, u16)>,
    /// Destination port range (inclusive); `None` = any.
    pub dport: Option<(u16, u16)>,
    /// What to do.
    pub action: NstunAction,
}

/// A flow's identity, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowMatch {
    /// HOST_TO_GUEST.
    pub inbound: bool,
    /// Protocol.
    pub proto: L4,
    /// Source address and port (0 for ICMP).
    pub src: SocketAddr,
    /// Destination address and port (0 for ICMP).
    pub dst: SocketAddr,
}

fn in_net(a: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len as u32)
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len as u32)
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

impl NstunRuleSpec {
    /// Whether the rule matches `f` (family, direction, protocol, networks,
    /// port ranges), as nsjail's `evaluate_rules4/6`.
    pub fn matches(&self, f: &FlowMatch) -> bool {
        let in_range = |r: Option<(u16, u16)>, p: u16| r.is_none_or(|(s, e)| p >= s && p <= e);
        self.v6 == f.dst.is_ipv6()
            && self.inbound == f.inbound
            && self.proto.is_none_or(|p| p == f.proto)
            && self.src.is_none_or(|n| in_net(f.src.ip(), n))
            && self.dst.is_none_or(|n| in_net(f.dst.ip(), n))
            && in_range(self.sport, f.src.port())
            && in_range(self.dport, f.dst.port())
    }

    /// `rule4 #2: TCP dst 192.0.2.0/24 dport 80 -> REDIRECT 127.0.0.1:8080`.
    pub fn describe(&self) -> String {
        let mut d = vec![format!(
            "{}:{}",
            self.name,
            if self.inbound { " HOST_TO_GUEST" } else { "" }
        )];
        d.push(match self.proto {
            None => "ANY".to_string(),
            Some(p) => format!("{p:?}").to_ascii_uppercase(),
        });
        let net = |(a, l): (IpAddr, u8)| format!("{a}/{l}");
        if let Some(s) = self.src {
            d.push(format!("src {}", net(s)));
        }
        if let Some((s, e)) = self.sport {
            d.push(format!("sport {s}-{e}"));
        }
        if let Some(n) = self.dst {
            d.push(format!("dst {}", net(n)));
        }
        if let Some((s, e)) = self.dport {
            d.push(format!("dport {s}-{e}"));
        }
        d.push("->".to_string());
        d.push(match self.action {
            NstunAction::Redirect { ip, port } => format!(
                "REDIRECT {}:{}",
                ip.map_or("(same address)".to_string(), |i| i.to_string()),
                port.map_or("(same port)".to_string(), |p| p.to_string())
            ),
            NstunAction::Socks5(p) => format!("ENCAP_SOCKS5 via {p}"),
            NstunAction::Connect(p) => format!("ENCAP_CONNECT via {p}"),
            a => a.name().to_string(),
        });
        d.join(" ")
    }
}

impl NstunSpec {
    /// The first rule matching `f`; `None` = no rule (ALLOW, as nsjail).
    pub fn evaluate(&self, f: &FlowMatch) -> Option<&NstunRuleSpec> {
        self.rules.iter().find(|r| r.matches(f))
    }
}

/// A host listener of a HOST_TO_GUEST REDIRECT rule: connections to
/// `listen` are forwarded into the jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSpec {
    /// The rule (`rule4 #1`).
    pub rule: String,
    /// TCP or UDP.
    pub proto: L4,
    /// The host address and port listened on (the rule's `src_ip`, else
    /// ANY of the rule's family; the port from `dport..dport_end`).
    pub listen: SocketAddr,
    /// The address in the jail (`redirect_ip`, else the jail's address).
    pub to_ip: Option<IpAddr>,
    /// The port in the jail (`redirect_port` plus the offset into the
    /// range, else the listen port).
    pub to_port: u16,
}

/// pasta's options (nsjail builds its command line from them; see
/// [`PastaSpec::args`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastaSpec {
    /// The schema (3.6 and current nsjail order the options differently).
    pub schema: Schema,
    /// NAT (current `pasta.nat`; 3.6 always): false = `--splice-only`.
    pub nat: bool,
    /// IPv4 address, netmask, gateway (`-a -n -g`).
    pub ip4: Option<(Ipv4Addr, Option<String>, Option<Ipv4Addr>)>,
    /// IPv6 address and gateway (`-a -g`).
    pub ip6: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
    /// Only IPv4 (`-4`).
    pub only4: bool,
    /// Only IPv6 (`-6`).
    pub only6: bool,
    /// pasta's DHCP server (else `--no-dhcp`).
    pub dhcp4: bool,
    /// pasta's DHCPv6 server (else `--no-dhcpv6`).
    pub dhcp6: bool,
    /// Router advertisements (else `--no-ra`).
    pub ra: bool,
    /// `--dhcp-dns`.
    pub dhcp_dns: bool,
    /// `--dns-forward ADDR`.
    pub dns_forward: Option<String>,
    /// TCP handler (else `--no-tcp`).
    pub tcp: bool,
    /// UDP handler (else `--no-udp`).
    pub udp: bool,
    /// ICMP handler (else `--no-icmp`).
    pub icmp: bool,
    /// The gateway address is mapped to the host (else `--no-map-gw`).
    pub map_gw: bool,
    /// `-t SPEC`: TCP ports forwarded host → jail.
    pub tcp_in: Option<String>,
    /// `-u SPEC`: UDP ports forwarded host → jail.
    pub udp_in: Option<String>,
    /// `-T SPEC`: TCP ports forwarded jail → host (current schema).
    pub tcp_out: Option<String>,
    /// `-U SPEC`: UDP ports forwarded jail → host (current schema).
    pub udp_out: Option<String>,
}

impl PastaSpec {
    /// pasta's options in nsjail's order for the schema (without the
    /// program name and without the target, which the runtime adds).
    pub fn args(&self, ns_iface: &str) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |s: &str| a.push(s.to_string());
        let dhcp = |a: &mut Vec<String>| {
            for (on, flag) in [
                (self.dhcp4, "--no-dhcp"),
                (self.dhcp6, "--no-dhcpv6"),
                (self.ra, "--no-ra"),
            ] {
                if !on {
                    a.push(flag.to_string());
                }
            }
            if !self.dhcp4 && !self.dhcp6 {
                a.push("--config-net".to_string());
            }
        };
        let nat_opts = |a: &mut Vec<String>| {
            if self.dhcp_dns {
                a.push("--dhcp-dns".into());
            }
            if let Some(d) = &self.dns_forward {
                a.extend(["--dns-forward".into(), d.clone()]);
            }
            for (on, flag) in [
                (self.tcp, "--no-tcp"),
                (self.udp, "--no-udp"),
                (self.icmp, "--no-icmp"),
                (self.map_gw, "--no-map-gw"),
            ] {
                if !on {
                    a.push(flag.to_string());
                }
            }
            if let Some((ip, mask, gw)) = &self.ip4 {
                a.extend(["-a".into(), ip.to_string()]);
                if let Some(m) = mask {
                    a.extend(["-n".into(), m.clone()]);
                }
                if let Some(g) = gw {
                    a.extend(["-g".into(), g.to_string()]);
                }
            }
            if let Some((ip, gw)) = &self.ip6 {
                a.extend(["-a".into(), ip.to_string()]);
                if let Some(g) = gw {
                    a.extend(["-g".into(), g.to_string()]);
                }
            }
            if self.only6 {
                a.push("-6".into());
            }
            if self.only4 {
                a.push("-4".into());
            }
            a.extend(["-I".into(), ns_iface.to_string()]);
        };
        let ports = |a: &mut Vec<String>| {
            for (flag, spec) in [
                ("-t", &self.tcp_in),
                ("-u", &self.udp_in),
                ("-T", &self.tcp_out),
                ("-U", &self.udp_out),
            ] {
                if let Some(s) = spec {
                    a.extend([flag.to_string(), s.clone()]);
                }
            }
        };
        match self.schema {
            Schema::Release36 => {
                // 3.6: DHCP switches, -f -q, ports, then the NAT options.
                dhcp(&mut a);
                a.extend(["-f".into(), "-q".into()]);
                ports(&mut a);
                nat_opts(&mut a);
            }
            Schema::Current => {
                push("-f");
                push("-q");
                if self.nat {
                    dhcp(&mut a);
                    nat_opts(&mut a);
                }
                ports(&mut a);
                if !self.nat {
                    a.push("--splice-only".into());
                }
            }
        }
        a
    }
}

/// The fields only 3.5/3.6's schema has, with whether `u` sets them.
fn release36_fields(u: &UserNet) -> Vec<&'static str> {
    [
        (u.has_enable(), "enable"),
        (u.has_ip(), "ip"),
        (u.has_mask(), "mask"),
        (u.has_gw(), "gw"),
        (u.has_mask6(), "mask6"),
        (u.has_tcp_ports(), "tcp_ports"),
        (u.has_udp_ports(), "udp_ports"),
        (u.has_enable_ip4_dhcp(), "enable_ip4_dhcp"),
        (u.has_enable_dns(), "enable_dns"),
        (u.has_dns_forward(), "dns_forward"),
        (u.has_enable_tcp(), "enable_tcp"),
        (u.has_enable_udp(), "enable_udp"),
        (u.has_enable_icmp(), "enable_icmp"),
        (u.has_no_map_gw(), "no_map_gw"),
        (u.has_enable_ip6_dhcp(), "enable_ip6_dhcp"),
        (u.has_enable_ip6_ra(), "enable_ip6_ra"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect()
}

/// The fields only the current schema has, with whether `u` sets them.
fn current_fields(u: &UserNet) -> Vec<&'static str> {
    [
        (u.has_backend(), "backend"),
        (u.pasta.is_some(), "pasta"),
        (!u.rule4.is_empty(), "rule4"),
        (!u.rule6.is_empty(), "rule6"),
        (u.has_ip4(), "ip4"),
        (u.has_gw4(), "gw4"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect()
}

fn invalid(field: &str, value: &str, why: impl Into<String>) -> NetSpecError {
    NetSpecError::Invalid {
        field: format!("user_net.{field}"),
        value: value.to_string(),
        why: why.into(),
    }
}

fn opt_v4(field: &str, s: &str) -> Result<Option<Ipv4Addr>, NetSpecError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        invalid(
            field,
            s,
            "is not an IPv4 address; write it like 10.255.255.2",
        )
    })
}

fn opt_v6(field: &str, s: &str) -> Result<Option<Ipv6Addr>, NetSpecError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| invalid(field, s, "is not an IPv6 address; write it like fc00::2"))
}

/// A pasta port-forwarding spec (`none`, `auto`, `22,80-90:8080`, ...):
/// one word of the characters pasta's syntax uses.
fn port_spec(field: &str, s: &str) -> Result<Option<String>, NetSpecError> {
    if s.is_empty() {
        return Ok(None);
    }
    let ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ",-:~/%.[]_".contains(c));
    if !ok {
        return Err(invalid(
            field,
            s,
            "is not a pasta port spec (none, auto, or a list like 22,80-90:8080 without spaces)",
        ));
    }
    Ok(Some(s.to_string()))
}

/// An IPv4 netmask, dotted or as bits (pasta's `-n`).
fn mask4(field: &str, s: &str) -> Result<Option<String>, NetSpecError> {
    if s.is_empty() {
        return Ok(None);
    }
    let ok = match s.parse::<u8>() {
        Ok(bits) => bits <= 32,
        Err(_) => s
            .parse::<Ipv4Addr>()
            .map(|m| {
                let m = u32::from(m);
                m.leading_ones() + m.trailing_zeros() == 32
            })
            .unwrap_or(false),
    };
    if !ok {
        return Err(invalid(
            field,
            s,
            "is not an IPv4 netmask; write it like 255.255.255.0 or 24",
        ));
    }
    Ok(Some(s.to_string()))
}

fn check_iface(s: &str) -> Result<(), NetSpecError> {
    if s.is_empty()
        || s.len() > IFNAME_MAX
        || s == "."
        || s == ".."
        || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(invalid(
            "ns_iface",
            s,
            format!("is not an interface name (1-{IFNAME_MAX} bytes, no '/', ':' or spaces)"),
        ));
    }
    Ok(())
}

/// Lower `cfg.user_net`: `None` when user-mode networking is off (no
/// message; 3.6's `enable: false`).
///
/// # Errors
/// One line naming the field: both schemas mixed, a bad address, port or
/// rule, or user-mode networking without the jail's own network namespace.
pub fn lower(cfg: &NsJailConfig) -> Result<Option<UserNetSpec>, NetSpecError> {
    let Some(u) = cfg.user_net.as_ref() else {
        return Ok(None);
    };
    let old = release36_fields(u);
    let new = current_fields(u);
    if let (Some(o), Some(n)) = (old.first(), new.first()) {
        return Err(NetSpecError::Unsupported(format!(
            "user_net mixes nsjail 3.5/3.6's fields ({}) with current nsjail's ({}) \
             (--use_pasta sets 3.6's 'enable', --user_net current nsjail's 'backend'); \
             write one schema: '{o}' belongs to 3.6's pasta-only form, '{n}' to the NSTUN/PASTA form",
            old.join(", "),
            new.join(", ")
        )));
    }
    let schema = if old.is_empty() {
        Schema::Current
    } else {
        Schema::Release36
    };
    if schema == Schema::Release36 && !u.enable() {
        return Ok(None);
    }
    if !cfg.clone_newnet() {
        return Err(NetSpecError::Unsupported(
            "user_net (--user_net/--use_pasta) needs the jail's own network namespace, but it is \
             disabled (-N/--disable_clone_newnet, clone_newnet: false); enable it or remove user_net"
                .to_string(),
        ));
    }
    if cfg.mode() == crate::proto::config::Mode::EXECVE {
        return Err(NetSpecError::Unsupported(
            "user_net is not supported in EXECVE mode (-Me): no supervisor stays outside the jail \
             to run the network (nsjail skips it silently there); use -Mo, -Mr or -Ml"
                .to_string(),
        ));
    }
    check_iface(u.ns_iface())?;
    let backend = match schema {
        Schema::Release36 => UserNetBackend::Pasta(lower_pasta36(u)?),
        Schema::Current => match u.backend() {
            Backend::PASTA => UserNetBackend::Pasta(lower_pasta(u)?),
            Backend::NSTUN => UserNetBackend::Nstun(lower_nstun(u)?),
        },
    };
    Ok(Some(UserNetSpec {
        schema,
        ns_iface: u.ns_iface().to_string(),
        backend,
    }))
}

fn lower_pasta36(u: &UserNet) -> Result<PastaSpec, NetSpecError> {
    let ip = opt_v4("ip", u.ip())?;
    let ip6 = opt_v6("ip6", u.ip6())?;
    let ip4_on = ip.is_some() || u.enable_ip4_dhcp();
    let ip6_on = ip6.is_some() || u.enable_ip6_dhcp() || u.enable_ip6_ra();
    if !ip4_on && !ip6_on {
        return Err(invalid(
            "ip",
            "",
            "and ip6 are both empty (and no DHCP): the jail would have no address; set ip or ip6",
        ));
    }
    Ok(PastaSpec {
        schema: Schema::Release36,
        nat: true,
        ip4: match ip {
            Some(a) => Some((a, mask4("mask", u.mask())?, opt_v4("gw", u.gw())?)),
            None => None,
        },
        ip6: match ip6 {
            Some(a) => Some((a, opt_v6("gw6", u.gw6())?)),
            None => None,
        },
        // 3.6 passes -4 when IPv4 is off and -6 when IPv6 is off (pasta's
        // -4 means IPv4 *only*); ours passes the family that is on.
        only4: !ip6_on,
        only6: !ip4_on,
        dhcp4: u.enable_ip4_dhcp(),
        dhcp6: u.enable_ip6_dhcp(),
        ra: u.enable_ip6_ra(),
        dhcp_dns: u.enable_dns(),
        dns_forward: opt_dns("dns_forward", u.dns_forward())?,
        tcp: u.enable_tcp(),
        udp: u.enable_udp(),
        icmp: u.enable_icmp(),
        map_gw: !u.no_map_gw(),
        tcp_in: port_spec("tcp_ports", u.tcp_ports())?,
        udp_in: port_spec("udp_ports", u.udp_ports())?,
        tcp_out: None,
        udp_out: None,
    })
}

fn opt_dns(field: &str, s: &str) -> Result<Option<String>, NetSpecError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<IpAddr>().map_err(|_| {
        invalid(
            field,
            s,
            "is not an IP address; write the address DNS queries are sent to, like 10.255.255.3",
        )
    })?;
    Ok(Some(s.to_string()))
}

fn lower_pasta(u: &UserNet) -> Result<PastaSpec, NetSpecError> {
    let p = &u.pasta;
    if !p.ip4_enabled() && !p.ip6_enabled() {
        return Err(invalid(
            "pasta.ip4_enabled",
            "false",
            "and pasta.ip6_enabled are both false: the jail would have no network; enable one",
        ));
    }
    let ip4 = opt_v4("ip4", u.ip4())?;
    let ip6 = opt_v6("ip6", u.ip6())?;
    Ok(PastaSpec {
        schema: Schema::Current,
        nat: p.nat(),
        ip4: match ip4 {
            Some(a) => Some((a, mask4("pasta.mask4", p.mask4())?, opt_v4("gw4", u.gw4())?)),
            None => None,
        },
        ip6: match ip6 {
            Some(a) => Some((a, opt_v6("gw6", u.gw6())?)),
            None => None,
        },
        only4: !p.ip6_enabled(),
        only6: !p.ip4_enabled(),
        dhcp4: p.enable_ip4_dhcp(),
        dhcp6: p.enable_ip6_dhcp(),
        ra: p.enable_ip6_ra(),
        dhcp_dns: p.enable_dns(),
        dns_forward: opt_dns("pasta.dns_forward", p.dns_forward())?,
        tcp: p.enable_tcp(),
        udp: p.enable_udp(),
        icmp: p.enable_icmp(),
        map_gw: p.map_gw(),
        tcp_in: port_spec("pasta.tcp_map_in", p.tcp_map_in())?,
        udp_in: port_spec("pasta.udp_map_in", p.udp_map_in())?,
        tcp_out: port_spec("pasta.tcp_map_out", p.tcp_map_out())?,
        udp_out: port_spec("pasta.udp_map_out", p.udp_map_out())?,
    })
}

fn lower_nstun(u: &UserNet) -> Result<NstunSpec, NetSpecError> {
    let ip4 = opt_v4("ip4", u.ip4())?;
    let gw4 = opt_v4("gw4", u.gw4())?;
    let ip6 = opt_v6("ip6", u.ip6())?;
    let gw6 = opt_v6("gw6", u.gw6())?;
    if ip4.is_none() && ip6.is_none() {
        return Err(invalid(
            "ip4",
            "",
            "and ip6 are both empty: the jail's TUN device would have no address; set one",
        ));
    }
    if ip4.is_some() && gw4.is_none() {
        return Err(invalid(
            "gw4",
            "",
            "is empty: NSTUN's point-to-point link needs the gateway's IPv4 address (default 10.255.255.1)",
        ));
    }
    if ip4.is_some() && ip4 == gw4 {
        return Err(invalid(
            "gw4",
            u.gw4(),
            "is the jail's own ip4; use another address",
        ));
    }
    if ip6.is_some() && ip6 == gw6 {
        return Err(invalid(
            "gw6",
            u.gw6(),
            "is the jail's own ip6; use another address",
        ));
    }
    let mut rules = Vec::new();
    let mut forwards = Vec::new();
    for (v6, list) in [(false, &u.rule4), (true, &u.rule6)] {
        for (i, r) in list.iter().enumerate() {
            let name = format!("user_net.rule{} #{}", if v6 { 6 } else { 4 }, i + 1);
            let rule = lower_rule(&name, v6, r)?;
            if rule.inbound {
                if let NstunAction::Redirect { ip, port } = rule.action {
                    forwards.extend(forwards_of(&rule, ip, port, ip4, ip6)?);
                }
            }
            rules.push(rule);
        }
    }
    let or = |v: u32, d: u32| if v == 0 { d } else { v };
    Ok(NstunSpec {
        ip4,
        gw4,
        ip6,
        gw6,
        mtu: NSTUN_MTU,
        rules,
        forwards,
        max_flows: or(u.nsjailrs_max_flows(), DEFAULT_MAX_FLOWS),
        flow_buffer: or(u.nsjailrs_flow_buffer(), DEFAULT_FLOW_BUFFER).max(4096),
    })
}

fn forwards_of(
    rule: &NstunRuleSpec,
    ip: Option<IpAddr>,
    port: Option<u16>,
    ip4: Option<Ipv4Addr>,
    ip6: Option<Ipv6Addr>,
) -> Result<Vec<ForwardSpec>, NetSpecError> {
    let bad = |why: &str| {
        NetSpecError::Unsupported(format!("{}: a HOST_TO_GUEST REDIRECT {why}", rule.name))
    };
    let proto = match rule.proto {
        Some(p @ (L4::Tcp | L4::Udp)) => p,
        _ => {
            return Err(bad(
                "forwards TCP or UDP only; set proto: TCP or proto: UDP",
            ))
        }
    };
    let Some((start, end)) = rule.dport else {
        return Err(bad("needs dport (the host port to listen on)"));
    };
    if (rule.v6 && ip6.is_none() && ip.is_none()) || (!rule.v6 && ip4.is_none() && ip.is_none()) {
        return Err(bad(
            "targets a family the jail has no address in; set ip4/ip6 or redirect_ip",
        ));
    }
    let host = match rule.src {
        Some((a, _)) => a,
        None if rule.v6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    Ok((start..=end)
        .map(|p| ForwardSpec {
            rule: rule.name.clone(),
            proto,
            listen: SocketAddr::new(host, p),
            to_ip: ip,
            to_port: port.map_or(p, |t| t.saturating_add(p - start)),
        })
        .collect())
}

fn parse_net(field: &str, s: &str, v6: bool) -> Result<(IpAddr, u8), NetSpecError> {
    let fam = if v6 { "IPv6" } else { "IPv4" };
    let ex = if v6 { "2001:db8::/32" } else { "192.0.2.0/24" };
    let bad = |why: String| invalid(field, s, why);
    let (a, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| {
        bad(format!(
            "is not an {fam} address or network; write it like {ex}"
        ))
    })?;
    if addr.is_ipv6() != v6 {
        return Err(bad(format!(
            "is not {fam}; {} takes {fam} networks",
            if v6 { "rule6" } else { "rule4" }
        )));
    }
    let max = if v6 { 128 } else { 32 };
    let len = match bits {
        None => max,
        Some(b) => match b.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(bad(format!("has a bad prefix length; use /0 to /{max}"))),
        },
    };
    Ok((addr, len))
}

fn ports(
    name: &str,
    field: &str,
    start: Option<u32>,
    end: Option<u32>,
) -> Result<Option<(u16, u16)>, NetSpecError> {
    let f = format!("{name}: {field}");
    let s = start.unwrap_or(0);
    let e = end.unwrap_or(s);
    for (n, v) in [(f.clone(), s), (format!("{f}_end"), e)] {
        if v > 65535 {
            return Err(NetSpecError::Invalid {
                field: n,
                value: v.to_string(),
                why: "is not a port (0-65535)".to_string(),
            });
        }
    }
    if s == 0 {
        // As nsjail: a start of 0 means any port.
        return Ok(None);
    }
    if e < s {
        return Err(NetSpecError::Invalid {
            field: format!("{f}_end"),
            value: e.to_string(),
            why: format!("is below {field} {s}; a range must not be empty"),
        });
    }
    Ok(Some((s as u16, e as u16)))
}

fn lower_rule(name: &str, v6: bool, r: &NstunRule) -> Result<NstunRuleSpec, NetSpecError> {
    let field = |f: &str| format!("{name}: {f}");
    let proto = match r.proto() {
        Protocol::ANY => None,
        Protocol::TCP => Some(L4::Tcp),
        Protocol::UDP => Some(L4::Udp),
        Protocol::ICMP => Some(L4::Icmp),
    };
    let net = |f: &str, has: bool, v: &str| -> Result<Option<(IpAddr, u8)>, NetSpecError> {
        if has && !v.is_empty() {
            let n = parse_net(&field(f), v, v6)?;
            // As nsjail: an all-zero address matches anything.
            Ok((!n.0.is_unspecified()).then_some(n))
        } else {
            Ok(None)
        }
    };
    let port = if r.has_redirect_port() {
        let p = r.redirect_port();
        if p == 0 || p > 65535 {
            return Err(NetSpecError::Invalid {
                field: field("redirect_port"),
                value: p.to_string(),
                why: "is not a port (1-65535)".to_string(),
            });
        }
        Some(p as u16)
    } else {
        None
    };
    let redirect_ip = r.redirect_ip();
    let proxy = |what: &str| -> Result<SocketAddrV4, NetSpecError> {
        if proto == Some(L4::Icmp) {
            return Err(NetSpecError::Unsupported(format!(
                "{name}: {what} cannot carry ICMP (as nsjail); use proto: TCP or UDP, or another action"
            )));
        }
        let ip: Ipv4Addr = redirect_ip.parse().map_err(|_| NetSpecError::Invalid {
            field: field("redirect_ip"),
            value: redirect_ip.to_string(),
            why: format!("is not the IPv4 address of the {what} proxy (proxies are always IPv4, as nsjail); write it like 127.0.0.1"),
        })?;
        let Some(p) = port else {
            return Err(NetSpecError::Invalid {
                field: field("redirect_port"),
                value: String::new(),
                why: format!("is missing: {what} needs the proxy's port"),
            });
        };
        Ok(SocketAddrV4::new(ip, p))
    };
    let action = match r.action() {
        Action::DROP => NstunAction::Drop,
        Action::REJECT => NstunAction::Reject,
        Action::ALLOW => NstunAction::Allow,
        Action::REDIRECT => {
            let ip = if redirect_ip.is_empty() {
                None
            } else {
                let a: IpAddr = redirect_ip.parse().map_err(|_| NetSpecError::Invalid {
                    field: field("redirect_ip"),
                    value: redirect_ip.to_string(),
                    why: format!("is not an {} address", if v6 { "IPv6" } else { "IPv4" }),
                })?;
                if a.is_ipv6() != v6 {
                    return Err(NetSpecError::Invalid {
                        field: field("redirect_ip"),
                        value: redirect_ip.to_string(),
                        why: format!(
                            "is not {}; a {} REDIRECT stays in its family",
                            if v6 { "IPv6" } else { "IPv4" },
                            if v6 { "rule6" } else { "rule4" }
                        ),
                    });
                }
                (!a.is_unspecified()).then_some(a)
            };
            NstunAction::Redirect { ip, port }
        }
        Action::ENCAP_SOCKS5 => NstunAction::Socks5(proxy("ENCAP_SOCKS5")?),
        Action::ENCAP_CONNECT => NstunAction::Connect(proxy("ENCAP_CONNECT")?),
    };
    let inbound = r.direction() == Direction::HOST_TO_GUEST;
    if inbound && matches!(action, NstunAction::Socks5(_) | NstunAction::Connect(_)) {
        return Err(NetSpecError::Unsupported(format!(
            "{name}: {} applies to the jail's outgoing flows only; drop direction: HOST_TO_GUEST",
            action.name()
        )));
    }
    Ok(NstunRuleSpec {
        name: name.to_string(),
        v6,
        inbound,
        proto,
        src: net("src_ip", r.has_src_ip(), r.src_ip())?,
        dst: net("dst_ip", r.has_dst_ip(), r.dst_ip())?,
        sport: ports(
            name,
            "sport",
            r.has_sport().then(|| r.sport()),
            r.has_sport_end().then(|| r.sport_end()),
        )?,
        dport: ports(
            name,
            "dport",
            r.has_dport().then(|| r.dport()),
            r.has_dport_end().then(|| r.dport_end()),
        )?,
        action,
    })
}

fn is_loopback(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_loopback(),
        IpAddr::V6(v) => v.is_loopback() || v.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

impl UserNetSpec {
    /// The effective user network for `--check`: backend, addresses, rules
    /// in order, forwards (one line each).
    pub fn describe(&self) -> Vec<String> {
        let mut l = Vec::new();
        let schema = match self.schema {
            Schema::Current => "current nsjail schema",
            Schema::Release36 => "nsjail 3.5/3.6 schema",
        };
        match &self.backend {
            UserNetBackend::Nstun(n) => {
                l.push(format!(
                    "user network: NSTUN (built-in, {schema}), {} in the jail, MTU {}",
                    self.ns_iface, n.mtu
                ));
                if let Some(ip) = n.ip4 {
                    l.push(format!(
                        "  IPv4: {ip} peer {}/32, default route dev {}",
                        n.gw4.map_or("-".to_string(), |g| g.to_string()),
                        self.ns_iface
                    ));
                }
                if let Some(ip) = n.ip6 {
                    l.push(format!(
                        "  IPv6: {ip}/128 (gateway {}), default route dev {}",
                        n.gw6.map_or("-".to_string(), |g| g.to_string()),
                        self.ns_iface
                    ));
                }
                l.push(format!(
                    "  limits: {} flows, {} bytes buffered per flow and direction",
                    n.max_flows, n.flow_buffer
                ));
                if n.rules.is_empty() {
                    l.push("  rules: none (everything ALLOWed except loopback/ANY/broadcast destinations)".into());
                } else {
                    l.push(format!(
                        "  rules, first match wins, no match = ALLOW ({}):",
                        n.rules.len()
                    ));
                    for r in &n.rules {
                        l.push(format!("    {}", r.describe()));
                    }
                }
                for f in &n.forwards {
                    l.push(format!(
                        "  forward: host {} {} -> jail {}:{} ({})",
                        format!("{:?}", f.proto).to_ascii_uppercase(),
                        f.listen,
                        f.to_ip
                            .map_or("(jail address)".to_string(), |a| a.to_string()),
                        f.to_port,
                        f.rule
                    ));
                }
            }
            UserNetBackend::Pasta(p) => {
                l.push(format!(
                    "user network: PASTA (external 'pasta', {schema}), {} in the jail",
                    self.ns_iface
                ));
                l.push(format!(
                    "  pasta options: {}",
                    p.args(&self.ns_iface).join(" ")
                ));
            }
        }
        l
    }

    /// Where the jail can reach the host's loopback services or the real
    /// network (for `--check` and the start-up log).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        match &self.backend {
            UserNetBackend::Pasta(p) => {
                if p.nat && p.map_gw {
                    w.push(format!(
                        "user_net (pasta): the gateway address{} reaches the host's loopback services (pasta maps it to the host); set {} to prevent that",
                        p.ip4.as_ref().and_then(|(_, _, g)| *g).map_or(String::new(), |g| format!(" {g}")),
                        if self.schema == Schema::Release36 { "no_map_gw: true" } else { "pasta { map_gw: false }" }
                    ));
                }
                if p.nat && (p.tcp || p.udp || p.icmp) {
                    w.push("user_net (pasta): the jail reaches the real network through the host (NAT); use NSTUN with rules, or no user_net, to restrict it".to_string());
                }
            }
            UserNetBackend::Nstun(n) => {
                for r in &n.rules {
                    let target = match r.action {
                        NstunAction::Redirect { ip: Some(ip), .. } if !r.inbound => Some(ip),
                        NstunAction::Socks5(p) | NstunAction::Connect(p) => {
                            Some(IpAddr::V4(*p.ip()))
                        }
                        _ => None,
                    };
                    if let Some(t) = target.filter(|t| is_loopback(*t)) {
                        w.push(format!(
                            "{} sends the jail's flows to the host's loopback ({t}): the jail reaches that host service",
                            r.name
                        ));
                    }
                }
                for f in &n.forwards {
                    if f.listen.ip().is_unspecified() {
                        w.push(format!(
                            "{} listens on every host address ({}), not only loopback; set src_ip to restrict it",
                            f.rule, f.listen
                        ));
                    }
                }
                for (v6, on) in [(false, n.ip4.is_some()), (true, n.ip6.is_some())] {
                    let closed = n.rules.iter().any(|r| {
                        r.v6 == v6
                            && !r.inbound
                            && r.src.is_none()
                            && r.dst.is_none()
                            && r.sport.is_none()
                            && r.dport.is_none()
                            && r.proto.is_none()
                            && matches!(r.action, NstunAction::Drop | NstunAction::Reject)
                    });
                    if on && !closed {
                        w.push(format!(
                            "user_net (NSTUN): {} flows no rule catches are connected from nsjail's network namespace (NAT): the jail reaches the real network, the gateway address included; end {} with a catch-all DROP to prevent that",
                            if v6 { "IPv6" } else { "IPv4" },
                            if v6 { "rule6" } else { "rule4" }
                        ));
                    }
                }
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> NsJailConfig {
        crate::textformat::parse::<NsJailConfig>(text)
            .expect("test config parses")
            .0
    }

    fn nstun(text: &str) -> NstunSpec {
        match lower(&cfg(text)).unwrap().unwrap().backend {
            UserNetBackend::Nstun(n) => n,
            b => panic!("not NSTUN: {b:?}"),
        }
    }

    fn pasta(text: &str) -> (PastaSpec, String) {
        let u = lower(&cfg(text)).unwrap().unwrap();
        match u.backend {
            UserNetBackend::Pasta(p) => (p, u.ns_iface),
            b => panic!("not PASTA: {b:?}"),
        }
    }

    #[test]
    fn presence_enables_current_and_enable_decides_release36() {
        assert!(lower(&cfg("")).unwrap().is_none());
        let n = nstun("user_net { }");
        assert_eq!(n.ip4, Some(Ipv4Addr::new(10, 255, 255, 2)));
        assert_eq!(n.gw4, Some(Ipv4Addr::new(10, 255, 255, 1)));
        assert_eq!(n.ip6, Some("fc00::2".parse().unwrap()));
        assert_eq!(n.mtu, NSTUN_MTU);
        assert!(lower(&cfg("user_net { enable: false ip: \"10.0.0.2\" }"))
            .unwrap()
            .is_none());
        assert!(lower(&cfg("user_net { ip: \"10.0.0.2\" }"))
            .unwrap()
            .is_none());
        let (p, _) = pasta("user_net { enable: true }");
        assert_eq!(p.schema, Schema::Release36);
    }

    #[test]
    fn mixing_schemas_is_one_error_naming_both() {
        let e = lower(&cfg("user_net { enable: true backend: PASTA }"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("enable") && e.contains("backend") && !e.contains('\n'),
            "{e}"
        );
        let e = lower(&cfg(
            "user_net { tcp_ports: \"80\" rule4 { action: DROP } }",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("tcp_ports") && e.contains("rule4"), "{e}");
    }

    #[test]
    fn readme_36_pasta_command_line() {
        let (p, i) = pasta(
            r#"user_net { enable: true ip: "10.255.255.2" gw: "10.255.255.1" ip6: "fc00::2"
               gw6: "fc00::1" tcp_ports: "80,443" enable_dns: true }"#,
        );
        assert_eq!(
            p.args(&i).join(" "),
            "--no-dhcp --no-dhcpv6 --no-ra --config-net -f -q -t 80,443 -u none --dhcp-dns \
             -a 10.255.255.2 -n 255.255.255.0 -g 10.255.255.1 -a fc00::2 -g fc00::1 -I eth0"
        );
        // IPv4 only: pasta gets -4 (IPv4 only), not 3.6's swapped flag.
        let (p, i) =
            pasta(r#"user_net { enable: true ip6: "" no_map_gw: true enable_icmp: false }"#);
        let a = p.args(&i).join(" ");
        assert!(
            a.contains(" -4 ") && !a.contains(" -6 ") && !a.contains("fc00"),
            "{a}"
        );
        assert!(a.contains("--no-icmp --no-map-gw"), "{a}");
    }

    #[test]
    fn current_pasta_command_line() {
        let (p, i) = pasta("user_net { backend: PASTA pasta { nat: true } }");
        assert_eq!(
            p.args(&i).join(" "),
            "-f -q --no-dhcp --no-dhcpv6 --no-ra --config-net -a 10.255.255.2 -n 255.255.255.0 \
             -g 10.255.255.1 -a fc00::2 -g fc00::1 -I eth0 -t none -u none -T none -U none"
        );
        // Ours: without the pasta {} sub-message pasta still starts, with
        // the defaults (nsjail starts nothing then).
        let (d, i) = pasta("user_net { backend: PASTA }");
        assert!(d.nat && d.map_gw);
        assert_eq!(d.args(&i), p.args(&i));
        let (p, i) = pasta(
            r#"user_net { backend: PASTA ns_iface: "tap9" pasta { nat: false tcp_map_in: "8888" ip6_enabled: false } }"#,
        );
        assert_eq!(
            p.args(&i).join(" "),
            "-f -q -t 8888 -u none -T none -U none --splice-only"
        );
        let e = lower(&cfg(
            "user_net { backend: PASTA pasta { ip4_enabled: false ip6_enabled: false } }",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("ip4_enabled"), "{e}");
        let e = lower(&cfg(
            r#"user_net { backend: PASTA pasta { tcp_map_in: "80; rm" } }"#,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("tcp_map_in"), "{e}");
    }

    #[test]
    fn rules_lower_with_every_field_and_match_first() {
        let n = nstun(
            r#"user_net {
                rule4 { proto: TCP dst_ip: "192.0.2.0/24" dport: 80 dport_end: 90 action: REJECT }
                rule4 { proto: TCP dport: 85 action: ALLOW }
                rule4 { proto: UDP src_ip: "10.255.255.2" sport: 1000 sport_end: 2000 action: REDIRECT redirect_ip: "127.0.0.1" redirect_port: 5353 }
                rule4 { proto: TCP action: ENCAP_SOCKS5 redirect_ip: "127.0.0.1" redirect_port: 1080 }
                rule6 { proto: TCP action: ENCAP_CONNECT redirect_ip: "127.0.0.1" redirect_port: 3128 }
                rule6 { action: DROP }
            }"#,
        );
        assert_eq!(n.rules.len(), 6);
        let f = |proto, src: &str, dst: &str| FlowMatch {
            inbound: false,
            proto,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
        };
        let hit = |m: FlowMatch| n.evaluate(&m).map(|r| r.name.clone());
        // First match wins: 192.0.2.1:85 is REJECTed by #1, not ALLOWed by #2.
        assert_eq!(
            hit(f(L4::Tcp, "10.255.255.2:4000", "192.0.2.1:85")).as_deref(),
            Some("user_net.rule4 #1")
        );
        assert_eq!(
            hit(f(L4::Tcp, "10.255.255.2:4000", "198.51.100.1:85")).as_deref(),
            Some("user_net.rule4 #2")
        );
        assert_eq!(
            hit(f(L4::Udp, "10.255.255.2:1500", "198.51.100.1:53")).as_deref(),
            Some("user_net.rule4 #3")
        );
        assert_eq!(
            hit(f(L4::Udp, "10.255.255.2:2500", "198.51.100.1:53")),
            None
        );
        assert_eq!(
            hit(f(L4::Tcp, "10.255.255.2:4000", "198.51.100.1:22")).as_deref(),
            Some("user_net.rule4 #4")
        );
        assert_eq!(
            hit(f(L4::Tcp, "[fc00::2]:4000", "[2001:db8::1]:443")).as_deref(),
            Some("user_net.rule6 #1")
        );
        assert_eq!(
            hit(f(L4::Udp, "[fc00::2]:4000", "[2001:db8::1]:443")).as_deref(),
            Some("user_net.rule6 #2")
        );
        assert_eq!(
            n.rules[2].action,
            NstunAction::Redirect {
                ip: Some("127.0.0.1".parse().unwrap()),
                port: Some(5353)
            }
        );
        assert_eq!(
            n.rules[4].action,
            NstunAction::Connect("127.0.0.1:3128".parse().unwrap())
        );
        // Inbound flows are not matched by outbound rules.
        let mut inb = f(L4::Tcp, "10.255.255.2:4000", "192.0.2.1:85");
        inb.inbound = true;
        assert_eq!(n.evaluate(&inb), None);
    }

    #[test]
    fn host_to_guest_redirects_become_forwards() {
        let n = nstun(
            r#"user_net {
                rule4 { direction: HOST_TO_GUEST action: REDIRECT proto: TCP src_ip: "127.0.0.1" dport: 8080 dport_end: 8081 redirect_port: 8000 }
                rule6 { direction: HOST_TO_GUEST action: REDIRECT proto: UDP dport: 53535 }
            }"#,
        );
        assert_eq!(n.forwards.len(), 3);
        assert_eq!(n.forwards[0].listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((n.forwards[0].to_port, n.forwards[1].to_port), (8000, 8001));
        assert_eq!(n.forwards[2].listen, "[::]:53535".parse().unwrap());
        assert_eq!(n.forwards[2].proto, L4::Udp);
        for bad in [
            "rule4 { direction: HOST_TO_GUEST action: REDIRECT proto: TCP }",
            "rule4 { direction: HOST_TO_GUEST action: REDIRECT dport: 80 }",
            "rule4 { direction: HOST_TO_GUEST action: ENCAP_SOCKS5 proto: TCP redirect_ip: \"127.0.0.1\" redirect_port: 1 }",
        ] {
            assert!(lower(&cfg(&format!("user_net {{ {bad} }}"))).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_rules_name_the_rule_and_field() {
        for (text, needle) in [
            (r#"rule4 { dst_ip: "2001:db8::1" }"#, "rule4 #1: dst_ip"),
            (r#"rule6 { src_ip: "10.0.0.0/8" }"#, "rule6 #1: src_ip"),
            (r#"rule4 { dport: 70000 }"#, "dport"),
            (r#"rule4 { dport: 90 dport_end: 80 }"#, "dport_end"),
            (
                r#"rule4 { proto: ICMP action: ENCAP_SOCKS5 redirect_ip: "127.0.0.1" redirect_port: 1080 }"#,
                "ICMP",
            ),
            (
                r#"rule4 { action: ENCAP_CONNECT redirect_ip: "proxy" redirect_port: 3128 }"#,
                "redirect_ip",
            ),
            (
                r#"rule4 { action: ENCAP_CONNECT redirect_ip: "127.0.0.1" }"#,
                "redirect_port",
            ),
            (
                r#"rule4 { action: REDIRECT redirect_ip: "fc00::1" }"#,
                "redirect_ip",
            ),
            (r#"ip4: "10.0.0.300""#, "ip4"),
            (r#"ns_iface: "a/b""#, "ns_iface"),
        ] {
            let e = lower(&cfg(&format!("user_net {{ {text} }}")))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle) && !e.contains('\n'), "{text}: {e}");
        }
    }

    #[test]
    fn needs_a_network_namespace_and_a_supervisor() {
        let e = lower(&cfg("clone_newnet: false user_net { }")).unwrap_err();
        assert!(e.to_string().contains("clone_newnet"), "{e}");
        let e = lower(&cfg("mode: EXECVE user_net { }")).unwrap_err();
        assert!(e.to_string().contains("EXECVE"), "{e}");
        // 3.6's enable: false is off, so nothing to refuse.
        assert!(
            lower(&cfg("clone_newnet: false user_net { enable: false }"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn check_warns_about_loopback_and_the_real_network() {
        let u = lower(&cfg(
            r#"user_net { rule4 { proto: TCP action: REDIRECT redirect_ip: "127.0.0.1" redirect_port: 5201 } }"#,
        ))
        .unwrap()
        .unwrap();
        let w = u.warnings().join("\n");
        assert!(w.contains("rule4 #1") && w.contains("loopback"), "{w}");
        assert!(w.contains("real network"), "{w}");
        let u = lower(&cfg(
            "user_net { rule4 { action: DROP } rule6 { action: DROP } }",
        ))
        .unwrap()
        .unwrap();
        assert!(u.warnings().is_empty(), "{:?}", u.warnings());
        let u = lower(&cfg("user_net { enable: true }")).unwrap().unwrap();
        let w = u.warnings().join("\n");
        assert!(w.contains("no_map_gw") && w.contains("real network"), "{w}");
        let u = lower(&cfg("user_net { enable: true no_map_gw: true }"))
            .unwrap()
            .unwrap();
        assert!(!u.warnings().join("\n").contains("loopback"));
        let d = u.describe().join("\n");
        assert!(d.contains("PASTA") && d.contains("--no-map-gw"), "{d}");
    }
}
