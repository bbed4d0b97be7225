"""Hands the container's network to the VM.

Docker configured the container's interfaces before the launcher started. For each one the
launcher records its addresses, MTU and routes, takes the addresses off it, and joins it and a
new tap device in a bridge; QEMU gives the tap to the VM, whose NIC then takes the addresses.
Frames for the container's IP now reach the VM. The VM's NIC MAC differs from the container's
(52:54:00 and its last three octets) because the bridge keeps the veth's own MAC for itself.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import socket
import typing as t

from pyroute2 import IPRoute, NetlinkError

from runcvm.namespaces import namespace_id

RT_TABLE_MAIN = 254
RT_SCOPE_LINK = 253
VM_MAC_PREFIX = "52:54:00"
# The address the VM sends DNS queries to when the container's resolver is on its loopback
# (Docker's embedded DNS at 127.0.0.11): the launcher answers there, on the bridge, and forwards.
DNS_PROXY_ADDRESS = "169.254.169.254"


class NetworkError(Exception):
    pass


@dataclasses.dataclass
class Interface:
    name: str
    mac: str           # the VM NIC's
    mtu: int
    addresses: list[str]
    tap: str
    bridge: str


@dataclasses.dataclass
class Route:
    destination: str   # CIDR; 0.0.0.0/0 is the default route
    gateway: str | None
    interface: str


@dataclasses.dataclass
class NetState:
    interfaces: list[Interface]
    routes: list[Route]
    dns_proxy: str | None = None

    def to_json(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, t.Any]) -> NetState:
        return cls([Interface(**i) for i in raw["interfaces"]], [Route(**r) for r in raw["routes"]],
                   raw.get("dns_proxy"))


def vm_mac(container_mac: str) -> str:
    return ":".join([VM_MAC_PREFIX, *container_mac.split(":")[3:]])


def capture(ipr: IPRoute) -> NetState:
    """The container's interfaces (all but loopback) and its routes, as Docker set them up."""
    interfaces, names = [], {}
    for link in ipr.get_links():
        name = link.get_attr("IFLA_IFNAME")
        if name == "lo" or link.get_attr("IFLA_ADDRESS") is None:
            continue
        names[link["index"]] = name
        addresses = [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                     for a in ipr.get_addr(family=socket.AF_INET, index=link["index"])]
        interfaces.append(Interface(name, vm_mac(link.get_attr("IFLA_ADDRESS")), link.get_attr("IFLA_MTU"),
                                    addresses, tap=f"tap-{name}"[:15], bridge=f"br-{name}"[:15]))
    routes = []
    for route in ipr.get_routes(family=socket.AF_INET, table=RT_TABLE_MAIN):
        interface = names.get(route.get_attr("RTA_OIF"))
        if interface is None or route["scope"] == RT_SCOPE_LINK:
            continue  # the subnet routes come back with the addresses
        destination = f"{route.get_attr('RTA_DST') or '0.0.0.0'}/{route['dst_len']}"
        routes.append(Route(destination, route.get_attr("RTA_GATEWAY"), interface))
    return NetState(interfaces, routes)


def transplant(ipr: IPRoute, state: NetState, with_dns_proxy: bool) -> None:
    """Move every interface's addresses to the VM side: bridge + tap per interface."""
    for interface in state.interfaces:
        (index,) = ipr.link_lookup(ifname=interface.name) or [None]
        if index is None:
            raise NetworkError(f"interface {interface.name} vanished while the VM was being set up")
        for address in interface.addresses:
            network = ipaddress.ip_interface(address)
            _ignore(errno.EADDRNOTAVAIL, ipr.addr, "del", index=index, address=str(network.ip),
                    prefixlen=network.network.prefixlen)
        ipr.link("add", ifname=interface.bridge, kind="bridge", br_stp_state=0, br_forward_delay=0,
                 br_ageing_time=0)
        (bridge,) = ipr.link_lookup(ifname=interface.bridge)
        ipr.link("set", index=bridge, mtu=interface.mtu)
        ipr.link("add", ifname=interface.tap, kind="tuntap", mode="tap")
        (tap,) = ipr.link_lookup(ifname=interface.tap)
        for port in (index, tap):
            ipr.link("set", index=port, master=bridge, mtu=interface.mtu, state="up")
        ipr.link("set", index=bridge, state="up")
    gateway = next((route.interface for route in state.routes if route.destination == "0.0.0.0/0"), None)
    proxy_interface = gateway or (state.interfaces[0].name if state.interfaces else None)
    if with_dns_proxy and proxy_interface:
        bridge_name = next(i.bridge for i in state.interfaces if i.name == proxy_interface)
        (bridge,) = ipr.link_lookup(ifname=bridge_name)
        ipr.addr("add", index=bridge, address=DNS_PROXY_ADDRESS, prefixlen=32)
        # Answers to the VM leave through the bridge: the container has no other route to it now.
        for address in next(i for i in state.interfaces if i.name == proxy_interface).addresses:
            ipr.route("add", dst=str(ipaddress.ip_interface(address).ip), dst_len=32, oif=bridge,
                      scope=RT_SCOPE_LINK)
        state.dns_proxy = DNS_PROXY_ADDRESS


def _ignore(code: int, call: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> None:
    try:
        call(*args, **kwargs)
    except NetlinkError as error:
        if error.code != code:
            raise


def check_own_namespace(host_namespace: str | None) -> None:
    """Refuse to go on in a network namespace that is not the container's own. The runtime refuses
    such containers at create; this is the last check before addresses and links move."""
    if not host_namespace:
        raise NetworkError("the runtime did not say which network namespace is the host's, so the launcher "
                           "cannot tell that this one is the container's own")
    if namespace_id() == host_namespace:
        raise NetworkError("the launcher is in the host's network namespace (--network=host) and leaves it "
                           "untouched: RunCVM needs a network namespace of the container's own")


def hand_over(with_dns_proxy: bool, host_namespace: str | None) -> NetState:
    """Capture the container's network and move it to the VM's side; say what the VM must set.
    `host_namespace` (from namespace_id) is the one namespace never to touch."""
    check_own_namespace(host_namespace)
    with IPRoute() as ipr:
        state = capture(ipr)
        transplant(ipr, state, with_dns_proxy)
    return state
