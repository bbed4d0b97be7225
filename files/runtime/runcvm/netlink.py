"""The little rtnetlink RunCVM speaks with the standard library alone: the requests the guest init
makes to give the VM its network (set a link's name, MAC, MTU and state, add an address, add a route),
and the kernel's news of links, addresses and routes as they change, which the guest init and the
launcher's network follower listen to; and the list of links the follower looks at as it waits.

Written with the standard library on purpose: under TCG, importing pyroute2 in the guest costs
8-12 s and each fork of busybox `ip` 110-150 ms, on the path of every boot; these requests cost
a system call each. The follower waits for Docker's changes for the VM's whole life, and with
pyroute2 imported it would hold 20 MiB more all along; it imports it only when it acts.
(pyroute2's event socket cannot be waited on with select either: it reads ahead.)
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import typing as t

# From linux/rtnetlink.h, linux/netlink.h, linux/if_link.h, linux/if_addr.h.
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE, RTM_DELROUTE = 16, 17, 18, 20, 21, 24, 25
# Multicast groups: link changes; IPv4 and IPv6 addresses and routes.
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x1, 0x10, 0x40, 0x100, 0x400
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x300, 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFLA_ADDRESS, IFLA_MTU, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_INFO_KIND = 1, 4, 3, 10, 18, 1
# The flags the kernel may set in an attribute's type (nested, byte order).
NLA_TYPE_MASK = 0x3FFF
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


def _attributes(data: bytes) -> dict[int, bytes]:
    """The attributes packed in `data`, by type (the last of each)."""
    found, offset = {}, 0
    while offset + _ATTRIBUTE.size <= len(data):
        length, kind = _ATTRIBUTE.unpack_from(data, offset)
        if length < _ATTRIBUTE.size:
            break
        found[kind & NLA_TYPE_MASK] = data[offset + _ATTRIBUTE.size:offset + length]
        offset += length + (-length % 4)
    return found


class LinkInfo(t.NamedTuple):
    """What `ip -d link` says of a link that the network follower looks at."""
    index: int
    name: str
    kind: str | None  # "veth", "bridge", "tun"...; None for lo and physical devices
    master: int | None  # the index of the bridge it is in
    up: bool


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

    def links(self) -> list[LinkInfo]:
        """Every link in this socket's network namespace, as `ip link` lists them."""
        self._sequence += 1
        self._socket.send(_HEADER.pack(_HEADER.size + _LINK.size, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP,
                                       self._sequence, 0) + _LINK.pack(socket.AF_UNSPEC, 0, 0, 0, 0))
        found = []
        while True:
            for kind, sequence, body in _messages(self._socket.recv(1 << 16)):
                if sequence != self._sequence:
                    continue
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body)[0]
                    raise OSError(code, f"listing links: {os.strerror(code)}")
                if kind == RTM_NEWLINK:
                    found.append(_link_info(body))

    def set_link(self, name: str, *, new_name: str | None = None, mtu: int | None = None, up: bool = False,
                 address: str | None = None) -> None:
        body = _LINK.pack(socket.AF_UNSPEC, 0, socket.if_nametoindex(name), IFF_UP if up else 0, IFF_UP if up else 0)
        if address is not None:
            body += _attribute(IFLA_ADDRESS, bytes.fromhex(address.replace(":", "")))
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


def _messages(data: bytes) -> t.Iterator[tuple[int, int, bytes]]:
    """The netlink messages that one read gave: (type, sequence number, body) each."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, sequence, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield kind, sequence, data[offset + _HEADER.size:offset + length]
        offset += length + (-length % 4)


def _link_info(body: bytes) -> LinkInfo:
    _family, _type, index, flags, _change = _LINK.unpack_from(body)
    attributes = _attributes(body[_LINK.size:])
    kind = _attributes(attributes.get(IFLA_LINKINFO, b"")).get(IFLA_INFO_KIND)
    master = attributes.get(IFLA_MASTER)
    return LinkInfo(index, attributes.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(),
                    kind.rstrip(b"\0").decode() if kind is not None else None,
                    struct.unpack("=I", master)[0] if master else None, bool(flags & IFF_UP))


# Room for the kernel's news between two reads; more, and the socket overruns (ENOBUFS).
EVENTS_BUFFER = 1 << 20


def events(groups: int) -> socket.socket:
    """A non-blocking socket on which the kernel tells of changes in `groups` (RTMGRP_*)."""
    listener = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                             socket.NETLINK_ROUTE)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, EVENTS_BUFFER)
    listener.bind((0, groups))
    return listener


def changes(listener: socket.socket) -> list[tuple[int, int]]:
    """What the kernel has told on `listener` so far: (message type, index of the link it concerns)
    of each link, address and route message; [] when nothing is waiting. OSError(ENOBUFS) when
    some of it was lost: the listener must look afresh."""
    found = []
    while True:
        try:
            data = listener.recv(65536)
        except BlockingIOError:
            return found
        for kind, _sequence, body in _messages(data):
            index = _link_of(kind, body)
            if index is not None:
                found.append((kind, index))


def _link_of(kind: int, body: bytes) -> int | None:
    if kind in (RTM_NEWLINK, RTM_DELLINK) and len(body) >= _LINK.size:
        return _LINK.unpack_from(body)[2]
    if kind in (RTM_NEWADDR, RTM_DELADDR) and len(body) >= _ADDRESS.size:
        return _ADDRESS.unpack_from(body)[4]
    if kind in (RTM_NEWROUTE, RTM_DELROUTE):
        interface = _attributes(body[_ROUTE.size:]).get(RTA_OIF)
        if interface is not None:
            return struct.unpack("=i", interface)[0]
    return None
