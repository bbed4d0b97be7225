"""Gives the VM the container's network, with the payload's busybox `ip`."""

from __future__ import annotations

import os
import subprocess

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import BUSYBOX
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.plan import DEFAULT_ROUTE, Network

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
        for address in interface.addresses:
            ip("addr", "add", address, "dev", interface.name)
        ip("link", "set", "dev", interface.name, "up")
    if network.dns_proxy:
        ip("route", "add", f"{network.dns_proxy}/32", "dev", network.dns_proxy_interface, "scope", "link")
    for route in network.routes:
        destination = "default" if route.destination == DEFAULT_ROUTE else route.destination
        via = ["via", route.gateway] if route.gateway else []
        ip("route", "add", destination, *via, "dev", route.interface)
