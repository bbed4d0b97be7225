"""The network follower: keeps the VM's NICs in step with the container's network while it runs.

`docker network connect` puts a new interface into the container's network namespace, and
`docker network disconnect` takes one away. The follower hears both from the kernel (rtnetlink
events; it never polls). A new interface is handed to the VM as the boot ones were (its addresses
move to the VM's side of a bridge and a tap), a NIC for it is hot-plugged into QEMU over QMP, and
the launcher is told, so that the guest gives that NIC the interface's name, addresses and routes.
An interface taken away has its NIC unplugged and its bridge and tap removed.

It is a child of the launcher, forked before the launcher gives up CAP_NET_ADMIN: the one process
in the container that keeps it. QEMU, virtiofsd and the launcher itself run without it. It hands
the boot interfaces over first, and reports that network (or why it could not) to the launcher
(launcher/handover.py) as its first line.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import os
import select
import socket
import time
import typing as t

from pyroute2 import IPRoute, NetlinkError
from qemu.qmp import QMPError
from qemu.qmp.legacy import QEMUMonitorProtocol

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan
from runcvm import netlink
from runcvm.launcher import handover, network, qemu, say

# Docker sets a new interface up with a burst of requests (move, rename, addresses, up, routes);
# the follower takes the interface once none has come for this long.
SETTLE_SECONDS = 0.5
# How long QEMU may take to answer on its monitor socket, and the guest to let go of a NIC that is
# unplugged (under TCG, with the guest busy).
QMP_CONNECT_TIMEOUT = 60
UNPLUG_TIMEOUT = 30
LISTENED = (netlink.RTMGRP_LINK | netlink.RTMGRP_IPV4_IFADDR | netlink.RTMGRP_IPV4_ROUTE | netlink.RTMGRP_IPV6_IFADDR
            | netlink.RTMGRP_IPV6_ROUTE)
PR_SET_NAME = 15


@dataclasses.dataclass(frozen=True)
class Attached:
    interface: plan.Interface
    port: str  # the PCIe root port its NIC sits on


class Follower:
    def __init__(self, ipr: IPRoute, boot: plan.Network, reports: int, monitor: QEMUMonitorProtocol | None = None):
        """`ipr` makes requests in the container's network namespace, which the follower listens
        to; `boot`: the interfaces the VM booted with, each NIC on the root port of its index;
        `reports`: where to write each added network (plan.dumps, one a line) for the guest;
        `monitor`: QEMU's, else it is connected to when first needed."""
        self.ipr = ipr
        self.events: socket.socket | None = None
        self.reports = reports
        self.monitor = monitor
        self.ports: dict[str, str | None] = {qemu.nic_port(index): None
                                             for index in range(len(boot.interfaces) + qemu.SPARE_NIC_PORTS)}
        self.attached: dict[int, Attached] = {}
        for number, interface in enumerate(boot.interfaces):
            (index,) = ipr.link_lookup(ifname=interface.name)
            self._attached(index, Attached(interface, qemu.nic_port(number)))
        # Links Docker is changing: when it last did.
        self.settling: dict[int, float] = {}

    def listen(self) -> None:
        """Listen to this network namespace (the one the calling thread is in)."""
        self.events = netlink.events(LISTENED)
        self.take_stock()  # what Docker did before the follower listened

    def take_stock(self) -> None:
        """Look at every link afresh: those gone let their NICs go, the others may be new."""
        present = {link["index"] for link in self.ipr.get_links()}
        for index in set(self.attached) - present:
            self.heard(netlink.RTM_DELLINK, index)
        for index in present:
            self.heard(netlink.RTM_NEWLINK, index)

    def step(self, longest: float | None = None) -> None:
        """Wait for the kernel's next messages (at most `longest` seconds) and act on what has settled."""
        timeout = longest
        if self.settling:
            settled = max(0.0, min(self.settling.values()) + SETTLE_SECONDS - time.monotonic())
            timeout = settled if longest is None else min(settled, longest)
        select.select([self.events], [], [], timeout)
        try:
            for kind, index in netlink.changes(self.events):
                self.heard(kind, index)
        except OSError as error:
            if error.errno != errno.ENOBUFS:
                raise
            self.take_stock()  # some of the kernel's news was lost
        self.take_settled()

    def heard(self, kind: int, index: int) -> None:
        """A change to link `index` (a link, address or route message): note that Docker is
        changing it, or let its NIC go with it."""
        if kind == netlink.RTM_DELLINK:
            self.settling.pop(index, None)
            if index in self.attached:
                self.detach(index)
        elif index not in self.attached:
            self.settling[index] = time.monotonic()

    def take_settled(self) -> None:
        now = time.monotonic()
        for index, changed in list(self.settling.items()):
            if now - changed < SETTLE_SECONDS:
                continue
            del self.settling[index]
            if self._is_new_interface(index):
                self.attach(index)

    def _is_new_interface(self, index: int) -> bool:
        """Docker's end of a veth, up, in no bridge: not one of the follower's own bridges and taps
        nor an interface already handed over (a later event puts a link that is not up yet back)."""
        try:
            (link,) = self.ipr.get_links(index)
        except NetlinkError:
            return False  # gone again
        info = link.get_attr("IFLA_LINKINFO")
        return (info is not None and info.get_attr("IFLA_INFO_KIND") == "veth"
                and link.get_attr("IFLA_MASTER") is None and bool(link["flags"] & netlink.IFF_UP))

    def attach(self, index: int) -> None:
        added = network.capture(self.ipr, (index,))
        (interface,) = added.interfaces
        port = next((port for port, user in self.ports.items() if user is None), None)
        if port is None:
            say(f"{interface.name} cannot reach the VM: all {len(self.ports)} of its NIC slots are in use "
                "(disconnect a network first)")
            return
        try:
            network.transplant(self.ipr, added, with_launcher_address=False)
            monitor = self._monitor()
            monitor.cmd("netdev_add", **qemu.tap_netdev(interface.name, interface.tap))
            monitor.cmd("device_add", **qemu.nic_device(interface.name, interface.mac, port))
        except (NetlinkError, network.NetworkError, QMPError, OSError) as error:
            say(f"cannot give the VM {interface.name}: {error}")
            return
        self._attached(index, Attached(interface, port))
        os.write(self.reports, plan.dumps(added).encode() + b"\n")

    def detach(self, index: int) -> None:
        attached = self.attached.pop(index)
        self.ports[attached.port] = None
        netdev, nic = qemu.nic_ids(attached.interface.name)
        try:
            monitor = self._monitor()
            monitor.cmd("device_del", id=nic)
            self._wait_deleted(monitor, nic)
            monitor.cmd("netdev_del", id=netdev)
            network.release(self.ipr, attached.interface)
        except (NetlinkError, QMPError, OSError, TimeoutError) as error:
            say(f"cannot take {attached.interface.name} from the VM: {error!r}")

    def _attached(self, index: int, attached: Attached) -> None:
        self.attached[index] = attached
        self.ports[attached.port] = attached.interface.name

    def _monitor(self) -> QEMUMonitorProtocol:
        """QEMU's monitor, once QEMU answers on it (the first change may come while QEMU starts)."""
        deadline = time.monotonic() + QMP_CONNECT_TIMEOUT
        while self.monitor is None:
            monitor = QEMUMonitorProtocol(layout.QMP_SOCKET)
            try:
                monitor.connect()
                self.monitor = monitor
            except QMPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return self.monitor

    @staticmethod
    def _wait_deleted(monitor: QEMUMonitorProtocol, device: str) -> None:
        """Until the guest has let go of `device` (QEMU's DEVICE_DELETED); TimeoutError after UNPLUG_TIMEOUT."""
        deadline = time.monotonic() + UNPLUG_TIMEOUT
        while True:
            event = monitor.pull_event(wait=max(0.01, deadline - time.monotonic()))
            if event and event.get("event") == "DEVICE_DELETED" and event.get("data", {}).get("device") == device:
                return


def hand_over_and_follow(links: list[handover.Link], with_launcher_address: bool, host_namespace: str | None,
                         reports: int) -> t.NoReturn:
    """The follower's life, in the child the launcher forked: hand `links` over to the VM, report
    the network (or why not) on `reports`, then follow the container's network until killed."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_NAME, b"runcvm-network")  # as ps and docker top show it
        null = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1):  # the workload's streams are the launcher's to relay
            os.dup2(null, stream)
        try:
            boot = network.hand_over(with_launcher_address, host_namespace, [link.index for link in links])
        except (handover.NetworkError, NetlinkError, OSError) as error:
            os.write(reports, handover.FAILED + str(error).encode() + b"\n")
            os._exit(1)
        os.write(reports, plan.dumps(boot).encode() + b"\n")
        with IPRoute() as ipr:
            follower = Follower(ipr, boot, reports)
            follower.listen()
            while True:
                follower.step()
    except Exception as error:  # pylint: disable=broad-exception-caught
        say(f"the network follower failed; docker network connect and disconnect no longer reach the VM: {error!r}")
    finally:
        os._exit(1)  # never back into the launcher's code
