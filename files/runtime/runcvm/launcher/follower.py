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

Then it starts afresh, as a new interpreter: the hand-over's imports (pyroute2) are 20 MiB that
an idle VM's follower would hold for the VM's whole life. The new start idles in
launcher/network_watch.py, on the standard library alone, until Docker connects or disconnects a
network; then it runs `follow` here, which imports pyroute2 and QEMU's monitor client as it acts.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import select
import socket
import sys
import time
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan
from runcvm import netlink
from runcvm.launcher import handover, network_watch, qemu, say

if t.TYPE_CHECKING:
    from pyroute2 import IPRoute
    from qemu.qmp.legacy import QEMUMonitorProtocol

# Docker sets a new interface up with a burst of requests (move, rename, addresses, up, routes);
# the follower takes the interface once none has come for this long.
SETTLE_SECONDS = 0.5
# How long QEMU may take to answer on its monitor socket, and the guest to let go of a NIC that is
# unplugged (under TCG, with the guest busy).
QMP_CONNECT_TIMEOUT = 60
UNPLUG_TIMEOUT = 30
LISTENED = (netlink.RTMGRP_LINK | netlink.RTMGRP_IPV4_IFADDR | netlink.RTMGRP_IPV4_ROUTE | netlink.RTMGRP_IPV6_IFADDR
            | netlink.RTMGRP_IPV6_ROUTE)
# The follower's second start (hand_over_and_follow): a new interpreter, on the launcher's module
# path, that follows the network it was handed in its arguments.
FOLLOW = ("import os, sys; sys.path[:] = sys.argv[1].split(os.pathsep); "
          "from runcvm.launcher.network_watch import follow; follow(int(sys.argv[2]), sys.argv[3])")


@dataclasses.dataclass(frozen=True)
class Attached:
    interface: plan.Interface
    port: str  # the PCIe root port its NIC sits on


class Follower:
    def __init__(self, boot: plan.Network, reports: int, monitor: QEMUMonitorProtocol | None = None,
                 ipr: IPRoute | None = None):
        """`boot`: the interfaces the VM booted with, each NIC on the root port of its index;
        `reports`: where to write each added network (plan.dumps, one a line) for the guest;
        `monitor`: QEMU's, and `ipr`, which makes requests in the container's network namespace:
        else each is made when first needed."""
        self.boot = boot
        self.reports = reports
        self.monitor = monitor
        self.ipr = ipr
        self.events: socket.socket | None = None
        self.netlink: netlink.Netlink | None = None
        self.ports: dict[str, str | None] = {qemu.nic_port(index): None
                                             for index in range(len(boot.interfaces) + qemu.SPARE_NIC_PORTS)}
        self.attached: dict[int, Attached] = {}
        # Links Docker is changing: when it last did.
        self.settling: dict[int, float] = {}

    def listen(self) -> None:
        """Listen to this network namespace (the one the calling thread is in)."""
        self.events = netlink.events(LISTENED)
        self.netlink = netlink.Netlink()
        indexes = {link.name: link.index for link in self.netlink.links()}
        for number, interface in enumerate(self.boot.interfaces):
            # An interface already gone gets an index no link has: take_stock lets its NIC go.
            self._attached(indexes.get(interface.name, -1 - number), Attached(interface, qemu.nic_port(number)))
        self.take_stock()  # what Docker did before the follower listened

    def take_stock(self) -> None:
        """Look at every link afresh: those gone let their NICs go, the others may be new."""
        present = {link.index for link in self.netlink.links()}
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
        """Whether link `index` is one to hand over (network_watch.is_unclaimed_interface); a link
        that is not up yet is looked at again on the event that sets it up."""
        link = next((link for link in self.netlink.links() if link.index == index), None)  # None: gone again
        return link is not None and network_watch.is_unclaimed_interface(link)

    def attach(self, index: int) -> None:
        # pylint: disable=import-outside-toplevel  # imported when the follower first acts (the module's docstring)
        from pyroute2 import NetlinkError
        from qemu.qmp import QMPError

        from runcvm.launcher import network
        added = network.capture(self._ipr(), (index,))
        (interface,) = added.interfaces
        port = next((port for port, user in self.ports.items() if user is None), None)
        if port is None:
            say(f"{interface.name} cannot reach the VM: all {len(self.ports)} of its NIC slots are in use "
                "(disconnect a network first)")
            return
        try:
            network.transplant(self._ipr(), added, with_launcher_address=False)
            monitor = self._monitor()
            monitor.cmd("netdev_add", **qemu.tap_netdev(interface.name, interface.tap))
            monitor.cmd("device_add", **qemu.nic_device(interface.name, interface.mac, port))
        except (NetlinkError, network.NetworkError, QMPError, OSError) as error:
            say(f"cannot give the VM {interface.name}: {error}")
            return
        self._attached(index, Attached(interface, port))
        os.write(self.reports, plan.dumps(added).encode() + b"\n")

    def detach(self, index: int) -> None:
        # pylint: disable=import-outside-toplevel  # imported when the follower first acts (the module's docstring)
        from pyroute2 import NetlinkError
        from qemu.qmp import QMPError

        from runcvm.launcher import network
        attached = self.attached.pop(index)
        self.ports[attached.port] = None
        netdev, nic = qemu.nic_ids(attached.interface.name)
        try:
            monitor = self._monitor()
            monitor.cmd("device_del", id=nic)
            self._wait_deleted(monitor, nic)
            monitor.cmd("netdev_del", id=netdev)
            network.release(self._ipr(), attached.interface)
        except (NetlinkError, QMPError, OSError, TimeoutError) as error:
            say(f"cannot take {attached.interface.name} from the VM: {error!r}")

    def _attached(self, index: int, attached: Attached) -> None:
        self.attached[index] = attached
        self.ports[attached.port] = attached.interface.name

    def _ipr(self) -> IPRoute:
        if self.ipr is None:
            from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel,redefined-outer-name
            self.ipr = IPRoute()
        return self.ipr

    def _monitor(self) -> QEMUMonitorProtocol:
        """QEMU's monitor, once QEMU answers on it (the first change may come while QEMU starts)."""
        # pylint: disable=import-outside-toplevel,redefined-outer-name
        from qemu.qmp import QMPError
        from qemu.qmp.legacy import QEMUMonitorProtocol
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
    """The follower's start, in the child the launcher forked: hand `links` over to the VM, report
    the network (or why not) on `reports`, then start afresh to follow the container's network."""
    try:
        network_watch.name_this_process()
        null = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1):  # the workload's streams are the launcher's to relay
            os.dup2(null, stream)
        # pylint: disable=import-outside-toplevel  # what the hand-over needs, the new start leaves behind
        from pyroute2 import NetlinkError

        from runcvm.launcher import network
        try:
            boot = plan.dumps(network.hand_over(with_launcher_address, host_namespace, [link.index for link in links]))
        except (handover.NetworkError, NetlinkError, OSError) as error:
            os.write(reports, handover.FAILED + str(error).encode() + b"\n")
            os._exit(1)
        os.write(reports, boot.encode() + b"\n")
        os.set_inheritable(reports, True)
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", FOLLOW, os.pathsep.join(sys.path), str(reports), boot])
    except Exception as error:  # pylint: disable=broad-exception-caught
        say(f"{network_watch.GAVE_UP}: {error!r}")
    finally:
        os._exit(1)  # never back into the launcher's code


def follow(reports: int, boot: str) -> t.NoReturn:
    """Follow the container's network handed over as `boot` (plan.dumps of it), reporting each
    network added on `reports`, until killed; network_watch runs it, once there is work."""
    follower = Follower(plan.loads(plan.Network, boot, "the network handed over"), reports)
    follower.listen()
    while True:
        follower.step()
