"""The few rtnetlink requests the guest init makes to give the VM its network: set a link's name,
MTU and state, add an address, add a route.

Written with the standard library on purpose: under TCG, importing pyroute2 in the guest costs
8-12 s and each fork of busybox `ip` 110-150 ms, on the path of every boot; these requests cost
a system call each.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

# From linux/rtnetlink.h, linux/netlink.h, linux/if_link.h, linux/if_addr.h.
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
IFLA_MTU, IFLA_IFNAME = 4, 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
IFF_UP = 0x1

_HEADER = struct.Struct("=IHHII")          # nlmsghdr
_LINK = struct.Struct("=BxHiII")           # ifinfomsg
_ADDRESS = struct.Struct("=BBBBi")         # ifaddrmsg
_ROUTE = struct.Struct("=BBBBBBBBI")       # rtmsg
_ATTRIBUTE = struct.Struct("=HH")          # rtattr


def _attribute(kind: int, value: bytes) -> bytes:
    length = _ATTRIBUTE.size + len(value)
    return _ATTRIBUTE.pack(length, kind) + value + b"\0" * (-length % 4)


class Netlink:
    """A route netlink socket; each request waits for the kernel's answer and raises OSError
    (with the kernel's errno and what was asked) when it is refused."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self._socket.bind((0, 0))
        self._sequence = 0

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._socket.close()

    def _request(self, kind: int, flags: int, body: bytes, what: str) -> None:
        self._sequence += 1
        self._socket.send(_HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags,
                                       self._sequence, 0) + body)
        while True:
            answer = self._socket.recv(65536)
            _length, answer_kind, _flags, sequence, _port = _HEADER.unpack_from(answer)
            if answer_kind == NLMSG_ERROR and sequence == self._sequence:
                code = -struct.unpack_from("=i", answer, _HEADER.size)[0]
                if code:
                    raise OSError(code, f"{what}: {os.strerror(code)}")
                return

    def set_link(self, name: str, *, new_name: str | None = None, mtu: int | None = None, up: bool = False) -> None:
        body = _LINK.pack(socket.AF_UNSPEC, 0, socket.if_nametoindex(name), IFF_UP if up else 0, IFF_UP if up else 0)
        if new_name is not None:
            body += _attribute(IFLA_IFNAME, new_name.encode() + b"\0")
        if mtu is not None:
            body += _attribute(IFLA_MTU, struct.pack("=I", mtu))
        self._request(RTM_NEWLINK, 0, body, f"setting link {name}")

    def add_address(self, interface: str, address: str) -> None:
        """`address` in CIDR form, as `ip addr add` takes it."""
        network = ipaddress.ip_interface(address)
        family = socket.AF_INET6 if network.version == 6 else socket.AF_INET
        packed = network.ip.packed
        body = _ADDRESS.pack(family, network.network.prefixlen, 0, RT_SCOPE_UNIVERSE,
                             socket.if_nametoindex(interface))
        body += _attribute(IFA_LOCAL, packed) + _attribute(IFA_ADDRESS, packed)
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"adding {address} to {interface}")

    def add_route(self, destination: str, gateway: str | None, interface: str) -> None:
        """As `ip route add`: a route with no gateway reaches its destination on the link."""
        network = ipaddress.ip_network(destination, strict=False)
        family = socket.AF_INET6 if network.version == 6 else socket.AF_INET
        scope = RT_SCOPE_LINK if gateway is None and family == socket.AF_INET else RT_SCOPE_UNIVERSE
        body = _ROUTE.pack(family, network.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0)
        if network.prefixlen:
            body += _attribute(RTA_DST, network.network_address.packed)
        if gateway is not None:
            body += _attribute(RTA_GATEWAY, ipaddress.ip_address(gateway).packed)
        body += _attribute(RTA_OIF, struct.pack("=i", socket.if_nametoindex(interface)))
        via = f" via {gateway}" if gateway else ""
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, f"adding route {destination}{via} dev {interface}")
