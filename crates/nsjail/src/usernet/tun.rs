//! NSTUN, the jail's side: the TUN device `ns_iface` in the jail's network
//! namespace, configured as nsjail does (observed inside nsjail:
//! `eth0 10.255.255.2 peer 10.255.255.1/32`, `fc00::2/128`, `default dev
//! eth0`): IPv4 with the gateway as point-to-point peer, IPv6 /128, the MTU,
//! up, default routes through the device. Created by the child right after
//! clone and handed to the supervisor before anything else.

use std::net::IpAddr;
use std::os::fd::OwnedFd;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nsjail_config::spec::usernet::NstunSpec;

use crate::net::Rtnl;
use crate::sys;

/// Create and configure the TUN device; returns its descriptor.
///
/// # Errors
/// What failed (creating the device, an address, a route), one line.
pub fn create(spec: &NstunSpec, ifname: &str) -> Result<OwnedFd, String> {
    let fd = sys::tun_create(ifname).map_err(|e| {
        format!(
            "creating the TUN device '{ifname}' (user_net NSTUN): {e}; /dev/net/tun must be \
             there and usable (CONFIG_TUN; mode 0666 for rootless use)"
        )
    })?;
    let mut nl = Rtnl::open("the jail's").map_err(|e| e.to_string())?;
    let index = nl
        .link_index(ifname)
        .map_err(|e| format!("finding the TUN device '{ifname}': {e}"))?;
    let req = |nl: &mut Rtnl, m: RouteNetlinkMessage, flags: u16, what: String| {
        nl.request(m, flags)
            .map(|_| ())
            .map_err(|e| format!("{what} on the TUN device '{ifname}' (user_net NSTUN): {e}"))
    };
    let mut l = LinkMessage::default();
    l.header.index = index;
    l.header.flags = LinkFlags::Up;
    l.header.change_mask = LinkFlags::Up;
    l.attributes.push(LinkAttribute::Mtu(spec.mtu));
    req(
        &mut nl,
        RouteNetlinkMessage::SetLink(l),
        0,
        format!("setting MTU {} and up", spec.mtu),
    )?;
    if let (Some(ip), Some(gw)) = (spec.ip4, spec.gw4) {
        let mut a = AddressMessage::default();
        a.header.family = AddressFamily::Inet;
        a.header.prefix_len = 32;
        a.header.index = index;
        a.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        a.attributes.push(AddressAttribute::Address(IpAddr::V4(gw)));
        req(
            &mut nl,
            RouteNetlinkMessage::NewAddress(a),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("setting {ip} peer {gw}/32"),
        )?;
    }
    if let Some(ip6) = spec.ip6 {
        let mut a = AddressMessage::default();
        a.header.family = AddressFamily::Inet6;
        a.header.prefix_len = 128;
        a.header.index = index;
        a.attributes
            .push(AddressAttribute::Address(IpAddr::V6(ip6)));
        a.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        req(
            &mut nl,
            RouteNetlinkMessage::NewAddress(a),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("setting {ip6}/128"),
        )?;
    }
    for (v6, on) in [(false, spec.ip4.is_some()), (true, spec.ip6.is_some())] {
        if !on {
            continue;
        }
        let mut r = RouteMessage::default();
        r.header.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        r.header.table = RouteHeader::RT_TABLE_MAIN;
        r.header.protocol = RouteProtocol::Boot;
        r.header.scope = if v6 {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        r.header.kind = RouteType::Unicast;
        r.attributes.push(RouteAttribute::Oif(index));
        req(
            &mut nl,
            RouteNetlinkMessage::NewRoute(r),
            NLM_F_CREATE | NLM_F_EXCL,
            format!(
                "adding the default {} route",
                if v6 { "IPv6" } else { "IPv4" }
            ),
        )?;
    }
    Ok(fd)
}
