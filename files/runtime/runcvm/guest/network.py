"""Gives the VM the container's network: at boot, and each network `docker network connect`
adds while it runs (the launcher hot-plugs a NIC for it, then says what it is)."""

from __future__ import annotations

import os
import socket

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.plan import Interface, Network, Route, template_mac
from runcvm.guest import log
from runcvm.netlink import RTMGRP_LINK, Netlink, changes, events
from runcvm.relay import Loop

SYS_NET = "/sys/class/net"
# How an interface with IPv6 addresses is set, as Docker sets a container's: the addresses are
# static, as Docker gave them: no router advertisements, no duplicate address detection to wait for.
STATIC_IPV6 = (("accept_ra", "0"), ("autoconf", "0"), ("accept_dad", "0"))


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
    still open); with them, they are static (STATIC_IPV6)."""
    if not has_ipv6(network):
        for scope in ("all", "default", "lo"):
            set_ipv6(scope, "disable_ipv6", "1")
        return
    for scope in ("all", "default", *(interface.name for interface in network.interfaces)):
        for setting, value in STATIC_IPV6:
            set_ipv6(scope, setting, value)


def take_container_macs(network: Network) -> None:
    """A VM restored from a warm start's template has the template's NICs, numbered by their MACs
    in the order of the container's interfaces: each takes the MAC of its interface."""
    links = links_by_mac()
    with Netlink() as netlink:
        for index, interface in enumerate(network.interfaces):
            netlink.set_link(links[template_mac(index)], address=interface.mac)


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
            _bring_up(netlink, interface)
        if network.launcher_address:
            netlink.add_route(f"{network.launcher_address}/32", None, network.launcher_interface)
        _add_routes(netlink, network.routes)


def _bring_up(netlink: Netlink, interface: Interface) -> None:
    for address in interface.addresses:
        netlink.add_address(interface.name, address)
    netlink.set_link(interface.name, up=True)


def _add_routes(netlink: Netlink, routes: tuple[Route, ...]) -> None:
    for route in routes:
        netlink.add_route(route.destination, route.gateway, route.interface)


def configure_added(added: Network, current: str) -> None:
    """Give the hot-plugged NIC the kernel named `current` the one interface of `added`."""
    (interface,) = added.interfaces
    with Netlink() as netlink:
        if current != interface.name:
            netlink.set_link(current, new_name=interface.name)
        netlink.set_link(interface.name, mtu=interface.mtu)
        if has_ipv6(added):  # the VM may have booted with IPv6 off
            for setting, value in (("disable_ipv6", "0"), *STATIC_IPV6):
                set_ipv6(interface.name, setting, value)
        _bring_up(netlink, interface)
        _add_routes(netlink, added.routes)


class HotPlugged:
    """The networks whose NICs the launcher has hot-plugged: each is configured as soon as the VM's
    kernel has its NIC, which a netlink event says (nothing polls)."""

    def __init__(self, loop: Loop):
        self.loop = loop
        self.waiting: list[Network] = []
        self.events: socket.socket | None = None

    def add(self, added: Network) -> None:
        self.waiting.append(added)
        if self.events is None:
            self.events = events(RTMGRP_LINK)
            self.loop.set_reader(self.events.fileno(), self._on_link_event)
        self._configure_present()  # the NIC may be there already

    def _on_link_event(self) -> None:
        try:
            changes(self.events)
        except OSError:  # news lost: the links are looked at afresh anyway
            pass
        self._configure_present()

    def _configure_present(self) -> None:
        links = links_by_mac()
        for added in list(self.waiting):
            (interface,) = added.interfaces
            if interface.mac not in links:
                continue
            self.waiting.remove(added)
            try:
                configure_added(added, links[interface.mac])
            except OSError as error:
                log(f"cannot configure {interface.name}: {error}")
        if not self.waiting:
            self.loop.set_reader(self.events.fileno(), None)
            self.events.close()
            self.events = None
