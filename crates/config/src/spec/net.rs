//! The network part of a jail (§12 of nsjail's behaviour): which
//! interfaces it gets, the MACVLAN `vs`, its traffic rules — validated and
//! typed here, so a bad address is refused by `--check` and by a launch
//! with the same line. The runtime (`nsjail::net`) only turns these values
//! into netlink requests.

use std::net::{IpAddr, Ipv4Addr};

use crate::proto::config::ns_jail_config::traffic_rule::{IpFamily, Protocol, TrafficAction};
use crate::proto::config::ns_jail_config::TrafficRule;
use crate::proto::config::{Mode, NsJailConfig};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// A network setting that cannot be used (one line: the field, its value,
/// why, and what to write instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetSpecError {
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
    /// A setting this implementation does not support (or not in this mode).
    #[error("{0}")]
    Unsupported(String),
}

fn invalid(field: &str, value: &str, why: impl Into<String>) -> NetSpecError {
    NetSpecError::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// MACVLAN mode (`macvlan_vs_mo`), as the kernel's `MACVLAN_MODE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// `private` (nsjail's default).
    Private,
    /// `vepa`.
    Vepa,
    /// `bridge`.
    Bridge,
    /// `passthru`.
    Passthru,
}

/// The MACVLAN `vs` of the jail (`macvlan_iface` and `macvlan_vs_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacvlanSpec {
    /// `macvlan_iface`: the host interface it is stacked on.
    pub parent: String,
    /// `macvlan_vs_mo`.
    pub mode: MacvlanMode,
    /// `macvlan_vs_ma`; `None` = the kernel picks one.
    pub mac: Option<[u8; 6]>,
    /// IPv4 address and prefix length; `None` (0.0.0.0) = leave `vs`
    /// unconfigured (as nsjail).
    pub addr: Option<(Ipv4Addr, u8)>,
    /// Default gateway; `None` (0.0.0.0) = no default route.
    pub gw: Option<Ipv4Addr>,
}

/// What a traffic rule does with a matching packet (nsjail: DROP =
/// blackhole route, REJECT = unreachable, ALLOW = look up the main table;
/// no action = DROP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerdict {
    /// Silently dropped (FIB rule action `blackhole`).
    Drop,
    /// Refused (FIB rule action `unreachable`).
    Reject,
    /// Routed normally (main table).
    Allow,
}

/// The IP protocol a traffic rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleProto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP.
    Icmp,
    /// ICMPv6.
    Icmpv6,
}

/// One `traffic_rule`, validated (a FIB policy rule in the jail's network
/// namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficRuleSpec {
    /// 1-based position, for messages (`traffic_rule #N`).
    pub index: usize,
    /// IPv6 rule (`ip_family: IPV6`), else IPv4.
    pub ipv6: bool,
    /// Source network (address, prefix length).
    pub src: Option<(IpAddr, u8)>,
    /// Destination network (address, prefix length).
    pub dst: Option<(IpAddr, u8)>,
    /// Input interface name.
    pub iif: Option<String>,
    /// Output interface name.
    pub oif: Option<String>,
    /// Protocol.
    pub proto: Option<RuleProto>,
    /// Source port range (inclusive).
    pub sport: Option<(u16, u16)>,
    /// Destination port range (inclusive).
    pub dport: Option<(u16, u16)>,
    /// What to do.
    pub verdict: RuleVerdict,
}

impl TrafficRuleSpec {
    /// `installing traffic_rule #N (IPv4, dst_ip ..., action DROP)`, for messages.
    pub fn describe(&self) -> String {
        let mut desc = Vec::new();
        let net = |(a, l): (IpAddr, u8)| {
            let max = if a.is_ipv6() { 128 } else { 32 };
            if l == max {
                a.to_string()
            } else {
                format!("{a}/{l}")
            }
        };
        if let Some(s) = self.src {
            desc.push(format!("src_ip {}", net(s)));
        }
        if let Some(d) = self.dst {
            desc.push(format!("dst_ip {}", net(d)));
        }
        if let Some(i) = &self.iif {
            desc.push(format!("iif {i}"));
        }
        if let Some(o) = &self.oif {
            desc.push(format!("oif {o}"));
        }
        if let Some(p) = self.proto {
            desc.push(format!("proto {}", format!("{p:?}").to_ascii_uppercase()));
        }
        if let Some((s, e)) = self.sport {
            desc.push(format!("sport {s}-{e}"));
        }
        if let Some((s, e)) = self.dport {
            desc.push(format!("dport {s}-{e}"));
        }
        desc.push(format!(
            "action {}",
            format!("{:?}", self.verdict).to_ascii_uppercase()
        ));
        format!(
            "installing traffic_rule #{} ({}, {})",
            self.index,
            if self.ipv6 { "IPv6" } else { "IPv4" },
            desc.join(", ")
        )
    }
}

/// The network of a jail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSpec {
    /// The jail has its own network namespace (`clone_newnet`).
    pub newnet: bool,
    /// Bring `lo` up in it (not `iface_no_lo`).
    pub lo: bool,
    /// `iface_own`: host interfaces moved into the jail.
    pub own: Vec<String>,
    /// The MACVLAN `vs`.
    pub macvlan: Option<MacvlanSpec>,
    /// `traffic_rule`s in config order.
    pub rules: Vec<TrafficRuleSpec>,
    /// User-mode networking (`user_net`, NSTUN or pasta).
    pub user: Option<super::usernet::UserNetSpec>,
}

impl NetSpec {
    /// Whether the supervisor has work to do for each jail (`iface_own`,
    /// MACVLAN): such jails cannot be set up ahead of time.
    pub fn has_parent_work(&self) -> bool {
        !self.own.is_empty() || self.macvlan.is_some()
    }

    /// Validate and type the networking settings of `cfg` (ours: nsjail
    /// checks most of these only while setting the jail up).
    ///
    /// # Errors
    /// [`NetSpecError`] naming the field, e.g. `macvlan_vs_ip: 'bogus' is not
    /// an IPv4 address; write it like 192.168.0.2`.
    pub fn lower(cfg: &NsJailConfig) -> Result<NetSpec, NetSpecError> {
        let user = super::usernet::lower(cfg)?;
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
                return Err(NetSpecError::Unsupported(format!(
                    "{first} needs the jail's own network namespace, but it is disabled (-N/--disable_clone_newnet, clone_newnet: false); \
                     enable it or remove {}",
                    used.join(", ")
                )));
            }
            return Ok(NetSpec::default());
        }
        if cfg.mode() == Mode::EXECVE && (!cfg.iface_own.is_empty() || wants_macvlan) {
            return Err(NetSpecError::Unsupported(
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
            Some(MacvlanSpec {
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
            .map(|(i, r)| lower_rule(i + 1, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetSpec {
            newnet,
            lo: !cfg.iface_no_lo(),
            own,
            macvlan,
            rules,
            user,
        })
    }
}

fn check_ifname(field: &str, name: &str) -> Result<(), NetSpecError> {
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

fn parse_v4(field: &str, s: &str, example: &str) -> Result<Ipv4Addr, NetSpecError> {
    s.parse::<Ipv4Addr>().map_err(|_| {
        invalid(
            field,
            s,
            format!("is not an IPv4 address; write it like {example}"),
        )
    })
}

/// A contiguous IPv4 netmask as a prefix length.
fn netmask_prefix(field: &str, s: &str) -> Result<u8, NetSpecError> {
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

fn parse_mac(field: &str, s: &str) -> Result<[u8; 6], NetSpecError> {
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

fn macvlan_mode(s: &str) -> Result<MacvlanMode, NetSpecError> {
    match s.to_ascii_lowercase().as_str() {
        "private" => Ok(MacvlanMode::Private),
        "vepa" => Ok(MacvlanMode::Vepa),
        "bridge" => Ok(MacvlanMode::Bridge),
        "passthru" => Ok(MacvlanMode::Passthru),
        _ => Err(invalid(
            "macvlan_vs_mo",
            s,
            "is not a MACVLAN mode; use private, vepa, bridge or passthru",
        )),
    }
}

/// `ADDR[/BITS]` of the rule's family.
fn parse_cidr(field: &str, s: &str, v6: bool) -> Result<(IpAddr, u8), NetSpecError> {
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
) -> Result<Option<(u16, u16)>, NetSpecError> {
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
    Ok(Some((start as u16, end as u16)))
}

fn lower_rule(n: usize, r: &TrafficRule) -> Result<TrafficRuleSpec, NetSpecError> {
    let v6 = r.ip_family() == IpFamily::IPV6;
    let net = |name: &str, has: bool, v: &str| -> Result<Option<(IpAddr, u8)>, NetSpecError> {
        if has && !v.is_empty() {
            parse_cidr(&format!("traffic_rule #{n}: {name}"), v, v6).map(Some)
        } else {
            Ok(None)
        }
    };
    let iface = |name: &str, has: bool, v: &str| -> Result<Option<String>, NetSpecError> {
        if has && !v.is_empty() {
            check_ifname(&format!("traffic_rule #{n}: {name}"), v)?;
            Ok(Some(v.to_string()))
        } else {
            Ok(None)
        }
    };
    let verdict = match if r.has_action() {
        r.action()
    } else {
        TrafficAction::DROP
    } {
        TrafficAction::DROP => RuleVerdict::Drop,
        TrafficAction::REJECT => RuleVerdict::Reject,
        TrafficAction::ALLOW => RuleVerdict::Allow,
        TrafficAction::UNKNOWN_ACTION => {
            return Err(invalid(
                &format!("traffic_rule #{n}: action"),
                "UNKNOWN_ACTION",
                "is not an action; use DROP, REJECT or ALLOW",
            ))
        }
    };
    Ok(TrafficRuleSpec {
        index: n,
        ipv6: v6,
        src: net("src_ip", r.has_src_ip(), r.src_ip())?,
        dst: net("dst_ip", r.has_dst_ip(), r.dst_ip())?,
        iif: iface("iif", r.has_iif(), r.iif())?,
        oif: iface("oif", r.has_oif(), r.oif())?,
        proto: match r.proto() {
            Protocol::UNKNOWN_PROTO => None,
            Protocol::TCP => Some(RuleProto::Tcp),
            Protocol::UDP => Some(RuleProto::Udp),
            Protocol::ICMP => Some(RuleProto::Icmp),
            Protocol::ICMPV6 => Some(RuleProto::Icmpv6),
        },
        sport: port_range(
            n,
            "sport",
            r.has_sport().then(|| r.sport()),
            r.has_sport_end().then(|| r.sport_end()),
        )?,
        dport: port_range(
            n,
            "dport",
            r.has_dport().then(|| r.dport()),
            r.has_dport_end().then(|| r.dport_end()),
        )?,
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> NsJailConfig {
        crate::textformat::parse::<NsJailConfig>(text)
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
        let p = NetSpec::lower(&c).unwrap();
        assert_eq!(p.rules.len(), 4);
        let r0 = &p.rules[0];
        assert_eq!(r0.verdict, RuleVerdict::Drop);
        assert_eq!(r0.dst, Some(("192.0.2.1".parse().unwrap(), 32)));
        assert_eq!(r0.proto, Some(RuleProto::Tcp));
        assert_eq!(r0.dport, Some((80, 90)));
        assert_eq!(
            r0.describe(),
            "installing traffic_rule #1 (IPv4, dst_ip 192.0.2.1, proto TCP, dport 80-90, action DROP)"
        );
        let r1 = &p.rules[1];
        assert_eq!(r1.verdict, RuleVerdict::Reject);
        assert_eq!(r1.src, Some(("192.0.2.0".parse().unwrap(), 24)));
        assert_eq!(r1.sport, Some((53, 53)));
        assert_eq!(p.rules[2].verdict, RuleVerdict::Allow);
        assert_eq!(p.rules[2].oif.as_deref(), Some("vs"));
        assert!(p.rules[3].ipv6);
        assert_eq!(p.rules[3].proto, Some(RuleProto::Icmpv6));
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
            let e = NetSpec::lower(&cfg(text)).unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.contains("traffic_rule #1"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn macvlan_settings_are_validated() {
        let ok = NetSpec::lower(&cfg(r#"macvlan_iface: "eth0" macvlan_vs_ip: "0.0.0.0""#)).unwrap();
        let mv = ok.macvlan.unwrap();
        assert!(mv.addr.is_none());
        assert_eq!(mv.mode, MacvlanMode::Private);
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
            let e = NetSpec::lower(&cfg(text)).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn no_netns_means_no_network_features() {
        let e = NetSpec::lower(&cfg(r#"clone_newnet: false iface_own: "veth0""#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("iface_own") && e.contains("clone_newnet"), "{e}");
        let e = NetSpec::lower(&cfg(r#"mode: EXECVE macvlan_iface: "eth0""#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("EXECVE"), "{e}");
        assert!(!NetSpec::lower(&cfg("clone_newnet: false"))
            .unwrap()
            .has_parent_work());
    }

    #[test]
    fn user_net_is_lowered_into_the_net_spec() {
        let n = NetSpec::lower(&cfg("user_net { }")).unwrap();
        assert!(n.user.is_some());
        assert!(NetSpec::lower(&cfg("")).unwrap().user.is_none());
    }
}
