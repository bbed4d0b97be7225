"""When the idle network follower wakes the follower proper: Docker has put an interface into the
container, or taken a boot one away. Until then it holds no more than the standard library."""

from __future__ import annotations

from runcvm.launcher import network_watch
from runcvm.netlink import LinkInfo

# A container's namespace once its boot network is handed over: eth0 in its bridge, with the tap.
HANDED_OVER = [LinkInfo(1, "lo", None, None, True), LinkInfo(2, "eth0", "veth", 4, True),
               LinkInfo(3, "tap-eth0", "tun", 4, True), LinkInfo(4, "br-eth0", "bridge", None, True)]
BOOT = {"eth0"}


def test_a_network_as_handed_over_gives_no_work():
    assert not network_watch.has_work(HANDED_OVER, BOOT)


def test_an_interface_docker_connects_gives_work_once_it_is_up():
    connecting = LinkInfo(9, "eth1", "veth", None, False)
    assert not network_watch.has_work([*HANDED_OVER, connecting], BOOT)  # Docker is still setting it up
    assert network_watch.has_work([*HANDED_OVER, connecting._replace(up=True)], BOOT)


def test_a_boot_interface_docker_disconnects_gives_work():
    assert network_watch.has_work([link for link in HANDED_OVER if link.name != "eth0"], BOOT)


def test_a_container_without_a_network_waits_for_its_first_interface():
    assert not network_watch.has_work([HANDED_OVER[0]], set())
    assert network_watch.has_work([HANDED_OVER[0], LinkInfo(9, "eth0", "veth", None, True)], set())
