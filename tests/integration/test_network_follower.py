"""The launcher's network follower, in network namespaces made for the test: what `docker network
connect` and `disconnect` do to a container's namespace (a veth end comes in with its address,
or goes) makes the follower hand the interface over or take it back, and ask QEMU's monitor to
plug or unplug its NIC. The monitor here is a stand-in that records the requests; the real QEMU
and guest are in test_live_network.py."""

from __future__ import annotations

import contextlib
import errno
import os
import time
import uuid

import pytest
from pyroute2 import IPRoute, netns

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from harness.netns import snapshot
from runcvm.launcher import follower, network

BOUND = 10  # seconds for the follower to act on what it heard; it takes about SETTLE_SECONDS


class RecordingMonitor:
    """Stands in for QEMU's monitor: records each request, and answers an unplug as a guest does."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []

    def cmd(self, name: str, **arguments) -> dict:
        self.requests.append((name, arguments))
        return {}

    def pull_event(self, wait: float) -> dict | None:
        del wait
        name, arguments = self.requests[-1]
        return {"event": "DEVICE_DELETED", "data": {"device": arguments["id"]}} if name == "device_del" else None


@contextlib.contextmanager
def namespaces():
    """A container's network namespace and the "host" side of its veths, each made for the test."""
    names = tuple(f"runcvm-test-{side}-{uuid.uuid4().hex[:8]}" for side in ("host", "container"))
    for name in names:
        netns.create(name)
    try:
        with IPRoute(netns=names[0]) as host, IPRoute(netns=names[1]) as container:
            yield host, container, names[1]
    finally:
        for name in names:
            netns.remove(name)


def plug(host: IPRoute, container: IPRoute, container_ns: str, name: str, address: str) -> None:
    """What Docker does for a network: a veth pair, one end in the container named `name`, with
    the network's address, up."""
    host.link("add", ifname=f"host-{name}", kind="veth", peer={"ifname": name, "net_ns_fd": container_ns})
    (index,) = container.link_lookup(ifname=name)
    ip, prefix = address.split("/")
    container.addr("add", index=index, address=ip, prefixlen=int(prefix))
    container.link("set", index=index, state="up")


def unplug(host: IPRoute, name: str) -> None:
    """`docker network disconnect`: the veth goes, both ends."""
    host.link("del", ifname=f"host-{name}")


def listening(watcher: follower.Follower, namespace: str) -> follower.Follower:
    """`watcher`, listening to `namespace` (as the real one, in the container's)."""
    netns.pushns(namespace)
    try:
        watcher.listen()
    finally:
        netns.popns()
    return watcher


def step_until(follower_, condition) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, "the follower did not act on what Docker did"
        follower_.step(longest=0.2)


def test_connect_and_disconnect_plug_and_unplug_a_nic_and_leave_nothing_behind():
    with namespaces() as (host, container, container_ns):
        plug(host, container, container_ns, "eth0", "192.0.2.10/24")
        boot = network.transplant(container, network.capture(container, container.link_lookup(ifname="eth0")),
                                  with_launcher_address=False)
        booted = snapshot(container_ns)
        monitor = RecordingMonitor()
        reports, write_end = os.pipe()
        watcher = listening(follower.Follower(boot, write_end, monitor, container), container_ns)

        for _round in range(2):  # the port a disconnect frees is the one the next connect takes
            plug(host, container, container_ns, "eth1", "198.51.100.20/24")
            step_until(watcher, lambda: len(monitor.requests) == 2)
            added = plan.loads(plan.Network, os.read(reports, 65536), "the report")
            assert added == plan.Network((plan.Interface("eth1", added.interfaces[0].mac, 1500, ("198.51.100.20/24",),
                                                         "tap-eth1", "br-eth1"),), ())
            assert monitor.requests == [
                ("netdev_add", {"type": "tap", "id": "net-eth1", "ifname": "tap-eth1", "script": "no", "downscript": "no"}),
                ("device_add", {"driver": "virtio-net-pci", "id": "nic-eth1", "netdev": "net-eth1",
                                "mac": added.interfaces[0].mac, "bus": "nicport1"})]
            now = snapshot(container_ns)
            assert ("eth1", "veth", "br-eth1", 1500, True) in now["links"]
            assert ("tap-eth1", "tun", "br-eth1", 1500, True) in now["links"]
            assert not [address for address in now["addresses"] if address[0] == "eth1"]

            monitor.requests.clear()
            unplug(host, "eth1")
            step_until(watcher, lambda: len(monitor.requests) == 2)
            assert monitor.requests == [("device_del", {"id": "nic-eth1"}), ("netdev_del", {"id": "net-eth1"})]
            assert snapshot(container_ns) == booted
            monitor.requests.clear()

        # The network the container booted with can go too.
        unplug(host, "eth0")
        step_until(watcher, lambda: len(monitor.requests) == 2)
        assert monitor.requests == [("device_del", {"id": "nic-eth0"}), ("netdev_del", {"id": "net-eth0"})]
        assert [link[0] for link in snapshot(container_ns)["links"]] == ["lo"]


def test_a_connect_with_no_free_slot_is_refused_in_words(capfd):
    with namespaces() as (host, container, container_ns):
        monitor = RecordingMonitor()
        watcher = listening(follower.Follower(plan.Network((), ()), os.pipe()[1], monitor, container), container_ns)
        for number in range(len(watcher.ports) + 1):
            plug(host, container, container_ns, f"eth{number}", f"198.51.100.{number + 1}/24")
        step_until(watcher, lambda: len(monitor.requests) == 2 * len(watcher.ports) and "slots" in capfd.readouterr().err)


@pytest.fixture(autouse=True)
def _root_only():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")


def test_news_the_kernel_could_not_keep_is_made_up_for_by_a_fresh_look(monkeypatch):
    """When the kernel's news overruns the follower's socket (ENOBUFS), it looks at every link."""
    with namespaces() as (host, container, container_ns):
        monitor = RecordingMonitor()
        watcher = listening(follower.Follower(plan.Network((), ()), os.pipe()[1], monitor, container), container_ns)
        plug(host, container, container_ns, "eth0", "198.51.100.1/24")
        step_until(watcher, lambda: len(monitor.requests) == 2)
        unplug(host, "eth0")

        def overrun(_listener):
            raise OSError(errno.ENOBUFS, "No buffer space available")

        monkeypatch.setattr(follower.netlink, "changes", overrun)  # the news of the unplug, lost
        watcher.step(longest=0.2)
        assert [name for name, _arguments in monitor.requests[2:]] == ["device_del", "netdev_del"]
