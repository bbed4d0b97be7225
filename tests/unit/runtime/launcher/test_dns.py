"""The DNS the VM gets when Docker's resolver is on the container's loopback."""

from __future__ import annotations

import socket
import threading

import pytest

from runcvm.launcher import dns


DOCKER_RESOLV = "search example\nnameserver 127.0.0.11\noptions ndots:0\n"


def test_dns_proxy_only_for_loopback_resolvers():
    assert dns.needs_proxy(DOCKER_RESOLV)
    assert not dns.needs_proxy("nameserver 192.0.2.53\n")
    assert dns.loopback_nameserver("nameserver 192.0.2.53\nnameserver 127.0.0.11\n") == "127.0.0.11"
    assert dns.for_vm(DOCKER_RESOLV, "169.254.0.53") == \
        "search example\nnameserver 169.254.0.53\noptions ndots:0\n"


def test_the_proxy_outlives_a_query_it_cannot_forward():
    """On loopback addresses of this machine only: a fake resolver that echoes what it gets."""
    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    resolver.bind(("127.0.0.2", 0))
    port = resolver.getsockname()[1]
    threading.Thread(target=lambda: resolver.sendto(*resolver.recvfrom(512)), daemon=True).start()
    # The broadcast address without SO_BROADCAST: sending the first query there fails.
    proxy = dns.DnsProxy("127.0.0.1", "255.255.255.255", port)
    proxy.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(0.5)
    client.sendto(b"lost", ("127.0.0.1", port))
    with pytest.raises(socket.timeout):
        client.recv(512)
    proxy.upstream = "127.0.0.2"
    client.settimeout(10)
    client.sendto(b"query", ("127.0.0.1", port))
    assert client.recv(512) == b"query"
