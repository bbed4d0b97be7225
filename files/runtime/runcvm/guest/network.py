"""Gives the VM the container's network."""

from __future__ import annotations

import os

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.plan import Network
from runcvm.guest.netlink import Netlink

SYS_NET = "/sys/class/net"


def links_by_mac() -> dict[str, str]:
    links = {}
    for name in os.listdir(SYS_NET):
        try:
            with open(f"{SYS_NET}/{name}/address", encoding="ascii") as handle:
                links[handle.read().strip()] = name
        except OSError:
            continue
    return links


def has_ipv6(network: Network) -> bool:
    return any(":" in address for interface in network.interfaces for address in interface.addresses)


def set_ipv6(scope: str, setting: str, value: str) -> None:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{scope}/{setting}", "w", encoding="ascii") as handle:
            handle.write(value)
    except OSError:
        pass


def configure_ipv6(network: Network) -> None:
    """As Docker does for a container: without IPv6 addresses, no interface gets one (IPv6 sockets
    still open); with them, they are static, as Docker gave them: no router advertisements, and no
    duplicate address detection to wait for."""
    if not has_ipv6(network):
        for scope in ("all", "default", "lo"):
            set_ipv6(scope, "disable_ipv6", "1")
        return
    for scope in ("all", "default", *(interface.name for interface in network.interfaces)):
        for setting, value in (("accept_ra", "0"), ("autoconf", "0"), ("accept_dad", "0")):
            set_ipv6(scope, setting, value)


def configure(network: Network) -> None:
    with Netlink() as netlink:
        netlink.set_link("lo", up=True)
        links = links_by_mac()
        # Rename in two passes, so that names the VM gave its NICs never collide with the ones wanted.
        temporary = {}
        for index, interface in enumerate(network.interfaces):
            current = links.get(interface.mac)
            if current is None:
                raise OSError(f"the VM has no NIC with MAC {interface.mac} for {interface.name}")
            temporary[interface.name] = f"runcvm{index}"
            netlink.set_link(current, new_name=temporary[interface.name])
        for interface in network.interfaces:
            netlink.set_link(temporary[interface.name], new_name=interface.name, mtu=interface.mtu)
        configure_ipv6(network)
        for interface in network.interfaces:
            for address in interface.addresses:
                netlink.add_address(interface.name, address)
            netlink.set_link(interface.name, up=True)
        if network.dns_proxy:
            netlink.add_route(f"{network.dns_proxy}/32", None, network.dns_proxy_interface)
        for route in network.routes:
            netlink.add_route(route.destination, route.gateway, route.interface)
