"""RunCVM's own rtnetlink, against this machine's kernel: the list of links the network follower
looks at (their kinds and bridges are proven in network namespaces, test_network_follower.py)."""

from __future__ import annotations

import socket

from runcvm import netlink


def test_the_links_are_listed_as_ip_link_lists_them():
    with netlink.Netlink() as kernel:
        links = kernel.links()
    assert [link.name for link in links] == [name for _index, name in socket.if_nameindex()]
    (loopback,) = [link for link in links if link.name == "lo"]
    assert loopback == netlink.LinkInfo(socket.if_nametoindex("lo"), "lo", None, None, True)
