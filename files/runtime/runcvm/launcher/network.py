"""Hands the container's network to the VM: the network follower's part (launcher/handover.py
has the launcher's).

Docker configured the container's interfaces before the launcher started. For each one the
follower records its addresses, MTU and routes, takes the addresses off it, and joins it and a
tap device (the launcher's, or a new one) in a bridge; QEMU gives the tap to the VM, whose NIC
then takes the addresses. Frames for the container's IP now reach the VM. The VM's NIC MAC
differs from the container's (handover.vm_mac) because the bridge keeps the veth's own MAC for itself.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import socket
import typing as t

from pyroute2 import IPRoute, NetlinkError

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.plan import (
    DEFAULT_ROUTE, DEFAULT_ROUTE_6, Interface, Network, Route,
)
from runcvm.launcher.handover import LAUNCHER_ADDRESS, Link, NetworkError, check_own_namespace

RT_TABLE_MAIN = 254
RT_SCOPE_LINK = 253
RT_SCOPE_UNIVERSE = 0
RTPROT_KERNEL = 2
FAMILIES = {socket.AF_INET: DEFAULT_ROUTE, socket.AF_INET6: DEFAULT_ROUTE_6}


def capture(ipr: IPRoute, indexes: t.Sequence[int]) -> Network:
    """The container's interfaces at `indexes` with their IPv4 and global IPv6 addresses, and
    their routes, as Docker set them up. Link-local IPv6 addresses stay: the VM makes its own."""
    interfaces, names = [], {}
    for found in ipr.get_links(*indexes) if indexes else ():  # no index asks pyroute2 for every link
        link = Link(found.get_attr("IFLA_IFNAME"), found["index"], found.get_attr("IFLA_ADDRESS"))
        names[link.index] = link.name
        addresses = tuple(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                          for family in FAMILIES for a in ipr.get_addr(family=family, index=link.index)
                          if a["scope"] == RT_SCOPE_UNIVERSE)
        interfaces.append(Interface(link.name, link.vm_mac, found.get_attr("IFLA_MTU"), addresses, tap=link.tap,
                                    bridge=link.bridge))
    routes = []
    for family, default in FAMILIES.items():
        for route in ipr.get_routes(family=family, table=RT_TABLE_MAIN):
            interface = names.get(route.get_attr("RTA_OIF"))
            if interface is None or route["scope"] == RT_SCOPE_LINK or route["proto"] == RTPROT_KERNEL:
                continue  # the subnet routes come back with the addresses
            destination = f"{route.get_attr('RTA_DST')}/{route['dst_len']}" if route["dst_len"] else default
            routes.append(Route(destination, route.get_attr("RTA_GATEWAY"), interface))
    return Network(tuple(interfaces), tuple(routes))


def transplant(ipr: IPRoute, network: Network, with_launcher_address: bool) -> Network:
    """Move every interface's addresses to the VM side: bridge + tap per interface. With
    `with_launcher_address`, LAUNCHER_ADDRESS goes on the bridge of the interface with the default
    route (or the first), and the returned Network says which."""
    for interface in network.interfaces:
        (index,) = ipr.link_lookup(ifname=interface.name) or [None]
        if index is None:
            raise NetworkError(f"interface {interface.name} vanished while the VM was being set up")
        for address in interface.addresses:
            ip_interface = ipaddress.ip_interface(address)
            _ignore(errno.EADDRNOTAVAIL, ipr.addr, "del", index=index, address=str(ip_interface.ip),
                    prefixlen=ip_interface.network.prefixlen)
        ipr.link("add", ifname=interface.bridge, kind="bridge", br_stp_state=0, br_forward_delay=0,
                 br_ageing_time=0)
        (bridge,) = ipr.link_lookup(ifname=interface.bridge)
        ipr.link("set", index=bridge, mtu=interface.mtu)
        if not ipr.link_lookup(ifname=interface.tap):  # the launcher made the boot interfaces' taps
            ipr.link("add", ifname=interface.tap, kind="tuntap", mode="tap")
        (tap,) = ipr.link_lookup(ifname=interface.tap)
        for port in (index, tap):
            ipr.link("set", index=port, master=bridge, mtu=interface.mtu, state="up")
        ipr.link("set", index=bridge, state="up")
    gateway = next((route.interface for route in network.routes if route.destination == DEFAULT_ROUTE), None)
    reached = next((i for i in network.interfaces if i.name == gateway), None) or \
        (network.interfaces[0] if network.interfaces else None)
    if not with_launcher_address or reached is None:
        return network
    (bridge,) = ipr.link_lookup(ifname=reached.bridge)
    ipr.addr("add", index=bridge, address=LAUNCHER_ADDRESS, prefixlen=32)
    # Answers to the VM (it connects over IPv4) leave through the bridge: the container has no
    # other route to it now.
    for address in map(ipaddress.ip_interface, reached.addresses):
        if address.version == 4:
            ipr.route("add", dst=str(address.ip), dst_len=32, oif=bridge, scope=RT_SCOPE_LINK)
    return dataclasses.replace(network, launcher_address=LAUNCHER_ADDRESS, launcher_interface=reached.name)


def release(ipr: IPRoute, interface: Interface) -> None:
    """Remove what transplant made for `interface` (Docker has taken the interface itself away)."""
    for name in (interface.tap, interface.bridge):
        _ignore(errno.ENODEV, ipr.link, "del", ifname=name)


def _ignore(code: int, call: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> None:
    try:
        call(*args, **kwargs)
    except NetlinkError as error:
        if error.code != code:
            raise


def hand_over(with_launcher_address: bool, host_namespace: str | None, indexes: t.Sequence[int]) -> Network:
    """Capture the container's network (the links at `indexes`, handover.container_links) and
    move it to the VM's side; say what the VM must set. `host_namespace` (from namespace_id) is the one namespace never
    to touch."""
    check_own_namespace(host_namespace)
    with IPRoute() as ipr:
        return transplant(ipr, capture(ipr, indexes), with_launcher_address)
