"""Gives the VM the container's network, with the payload's busybox `ip`."""

from __future__ import annotations

import os
import subprocess

IP = "/.runcvm/guest/bin/busybox"
SYS_NET = "/sys/class/net"


def ip(*args: str) -> None:
    completed = subprocess.run([IP, "ip", *args], capture_output=True, text=True, check=False)
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


def configure(state: dict) -> None:
    ip("link", "set", "lo", "up")
    links = links_by_mac()
    # Rename in two passes, so that names the VM gave its NICs never collide with the ones wanted.
    temporary = {}
    for index, interface in enumerate(state["interfaces"]):
        current = links.get(interface["mac"])
        if current is None:
            raise OSError(f"the VM has no NIC with MAC {interface['mac']} for {interface['name']}")
        temporary[interface["name"]] = f"runcvm{index}"
        ip("link", "set", "dev", current, "name", temporary[interface["name"]])
    for interface in state["interfaces"]:
        name = interface["name"]
        ip("link", "set", "dev", temporary[name], "name", name)
        ip("link", "set", "dev", name, "mtu", str(interface["mtu"]))
        for address in interface["addresses"]:
            ip("addr", "add", address, "dev", name)
        ip("link", "set", "dev", name, "up")
    proxy = state.get("dns_proxy")
    if proxy:
        gateway = next((r["interface"] for r in state["routes"] if r["destination"] == "0.0.0.0/0"),
                       state["interfaces"][0]["name"])
        ip("route", "add", f"{proxy}/32", "dev", gateway, "scope", "link")
    for route in state["routes"]:
        destination = "default" if route["destination"] == "0.0.0.0/0" else route["destination"]
        via = ["via", route["gateway"]] if route["gateway"] else []
        ip("route", "add", destination, *via, "dev", route["interface"])
