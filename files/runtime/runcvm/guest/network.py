"""Gives the VM the container's network, with the payload's busybox `ip`."""

from __future__ import annotations

import os
import subprocess

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import BUSYBOX
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.plan import DEFAULT_ROUTE, DEFAULT_ROUTE_6, Network

SYS_NET = "/sys/class/net"


def ip(*args: str) -> None:
    completed = subprocess.run([BUSYBOX, "ip", *args], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {completed.stderr.strip()}")


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
    ip("link", "set", "lo", "up")
    links = links_by_mac()
    # Rename in two passes, so that names the VM gave its NICs never collide with the ones wanted.
    temporary = {}
    for index, interface in enumerate(network.interfaces):
        current = links.get(interface.mac)
        if current is None:
            raise OSError(f"the VM has no NIC with MAC {interface.mac} for {interface.name}")
        temporary[interface.name] = f"runcvm{index}"
        ip("link", "set", "dev", current, "name", temporary[interface.name])
    for interface in network.interfaces:
        ip("link", "set", "dev", temporary[interface.name], "name", interface.name)
        ip("link", "set", "dev", interface.name, "mtu", str(interface.mtu))
    configure_ipv6(network)
    for interface in network.interfaces:
        for address in interface.addresses:
            ip("addr", "add", address, "dev", interface.name)
        ip("link", "set", "dev", interface.name, "up")
    if network.dns_proxy:
        ip("route", "add", f"{network.dns_proxy}/32", "dev", network.dns_proxy_interface, "scope", "link")
    for route in network.routes:
        family = ["-6"] if ":" in route.destination else []
        destination = "default" if route.destination in (DEFAULT_ROUTE, DEFAULT_ROUTE_6) else route.destination
        via = ["via", route.gateway] if route.gateway else []
        ip(*family, "route", "add", destination, *via, "dev", route.interface)
