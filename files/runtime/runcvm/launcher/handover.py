"""The launcher's side of handing the container's network to the VM, which it starts before QEMU
and finishes while QEMU loads a warm start's template.

The launcher finds the container's interfaces and makes a tap for each, with the standard
library alone (what QEMU's command line needs), then forks the network follower
(launcher/follower.py), which imports pyroute2, moves each interface's addresses to the VM's side
(launcher/network.py) and reports the moved network back on its pipe. pyroute2's imports take
0.2-0.3 s under load on these hosts; in the follower they no longer hold QEMU back.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import socket
import struct

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import VM_MAC_PREFIX
from runcvm.namespaces import namespace_id

# From linux/sockios.h, linux/if_tun.h, linux/if_arp.h.
SIOCGIFHWADDR = 0x8927
TUNSETIFF, TUNSETPERSIST = 0x400454CA, 0x400454CB
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
ARPHRD_ETHER = 1
IFNAMSIZ = 16
TUN_DEVICE = "/dev/net/tun"
# The launcher's address on the bridge, for what the VM must reach in the container: the DNS
# proxy, when the container's resolver is on its loopback (Docker's embedded DNS at 127.0.0.11),
# and QEMU's VNC display (RUNCVM_QEMU_DISPLAY=vnc), which the guest relays its port to. It is
# link-local from the block RFC 3927 keeps out of automatic use (169.254.0.0/24), so it is neither
# a peer's address nor the clouds' metadata service (169.254.169.254), which the VM reaches.
LAUNCHER_ADDRESS = "169.254.0.53"
# What the follower's first line starts with when it could not hand the network over.
FAILED = b"!"


class NetworkError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Link:
    """An interface of the container's that the VM gets a NIC for."""
    name: str
    index: int
    mac: str  # the container's

    @property
    def vm_mac(self) -> str:
        return vm_mac(self.mac)

    @property
    def tap(self) -> str:
        return f"tap-{self.name}"[:IFNAMSIZ - 1]

    @property
    def bridge(self) -> str:
        return f"br-{self.name}"[:IFNAMSIZ - 1]


def vm_mac(container_mac: str) -> str:
    """The VM NIC's MAC: 52:54:00 and the container's last three octets (the bridge keeps the
    veth's own MAC for itself)."""
    return ":".join([VM_MAC_PREFIX, *container_mac.split(":")[3:]])


def check_own_namespace(host_namespace: str | None) -> None:
    """Refuse to go on in a network namespace that is not the container's own. The runtime refuses
    such containers at create; this is the last check before a link is made or moved."""
    if not host_namespace:
        raise NetworkError("the runtime did not say which network namespace is the host's, so the launcher "
                           "cannot tell that this one is the container's own")
    if namespace_id() == host_namespace:
        raise NetworkError("the launcher is in the host's network namespace (--network=host) and leaves it "
                           "untouched: RunCVM needs a network namespace of the container's own")


def container_links() -> list[Link]:
    """The container's Ethernet interfaces, in the kernel's order: what Docker gave it, without
    loopback and the fallback devices a tunnel module puts in every namespace (no MAC)."""
    links = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for index, name in sorted(socket.if_nameindex()):
            answer = fcntl.ioctl(probe, SIOCGIFHWADDR, struct.pack("16sH14s", name.encode(), 0, b""))
            family, address = struct.unpack_from("16xH6s", answer)
            if family == ARPHRD_ETHER and any(address):
                links.append(Link(name, index, address.hex(":")))
    return links


def make_tap(name: str) -> None:
    """A persistent tap named `name`, which QEMU opens by name without CAP_NET_ADMIN (as
    `ip tuntap add mode tap` makes it)."""
    tun = os.open(TUN_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        fcntl.ioctl(tun, TUNSETPERSIST, 1)
    finally:
        os.close(tun)


class HandOver:
    """The container's network on its way to the VM: its taps are made and the follower moves
    the rest. `wait` gives the network as the VM is to take it."""

    def __init__(self, links: list[Link], with_launcher_address: bool, host_namespace: str | None):
        check_own_namespace(host_namespace)
        for link in links:
            make_tap(link.tap)
        self.reports, write_end = os.pipe2(os.O_CLOEXEC)
        self.follower = os.fork()
        if self.follower == 0:
            try:
                os.close(self.reports)
                # Here only: the follower's imports (pyroute2) are what the launcher leaves to it.
                from runcvm.launcher import follower  # pylint: disable=import-outside-toplevel
                follower.hand_over_and_follow(links, with_launcher_address, host_namespace, write_end)
            except Exception as error:  # pylint: disable=broad-exception-caught  # its imports failed
                os.write(write_end, FAILED + f"the network follower could not start: {error!r}".encode() + b"\n")
            finally:
                os._exit(1)  # never back into the launcher's code
        os.close(write_end)
        self.network: plan.Network | None = None
        self.rest = b""  # what the follower reported after the network: networks it added since

    def wait(self) -> plan.Network:
        """The network once the follower has moved it; NetworkError saying why it could not."""
        if self.network is None:
            received = b""
            while b"\n" not in received:
                data = os.read(self.reports, 65536)
                if not data:
                    raise NetworkError("the network follower ended before it had handed the network over")
                received += data
            line, _newline, self.rest = received.partition(b"\n")
            if line.startswith(FAILED):
                raise NetworkError(line[len(FAILED):].decode(errors="replace"))
            self.network = plan.loads(plan.Network, line, "the network the follower handed over")
        return self.network
