"""The guest's network configuration, made in a scratch network namespace through the guest init's
own netlink requests, and read back with pyroute2."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from harness.netns import snapshot
from pyroute2 import IPRoute, netns

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.plan import Interface, Network, Route

NIC_MAC = "52:54:00:12:34:56"
NETWORK = Network(
    interfaces=(Interface(name="eth0", mac=NIC_MAC, mtu=1400, addresses=("172.30.0.5/16", "fd00:30::5/64"),
                          tap="tap-eth0", bridge="br-eth0"),),
    routes=(Route("0.0.0.0/0", "172.30.0.1", "eth0"), Route("::/0", "fd00:30::1", "eth0"),
            Route("10.9.0.0/16", None, "eth0")),
    launcher_address="169.254.0.53", launcher_interface="eth0")


@pytest.fixture
def vm_namespace():
    """A namespace holding what a VM has at boot: lo and a NIC named by the kernel, both down."""
    name = f"runcvm-guest-{uuid.uuid4().hex[:8]}"
    netns.create(name)
    try:
        with IPRoute(netns=name) as ipr:
            ipr.link("add", ifname="ens3", kind="veth", peer="peer0", address=NIC_MAC)
            (peer,) = ipr.link_lookup(ifname="peer0")
            ipr.link("set", index=peer, state="up")
        yield name
    finally:
        netns.remove(name)


def configure_in(namespace: str, wanted: Network) -> subprocess.CompletedProcess:
    """Run the guest's configure() in `namespace`, with a /sys of that namespace (`ip netns exec`
    mounts one), as the guest init runs it in the VM."""
    script = ("import sys; from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan; "
              "from runcvm.guest import network; "
              "network.configure(plan.loads(plan.Network, sys.stdin.read(), 'the network'))")
    return subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", script],
                          input=plan.dumps(wanted), capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_the_vm_gets_the_containers_links_addresses_and_routes(vm_namespace):
    completed = configure_in(vm_namespace, NETWORK)
    assert completed.returncode == 0, completed.stderr
    seen = snapshot(vm_namespace)
    assert ("eth0", "veth", None, 1400, True) in seen["links"]
    assert ("lo", None, None, 65536, True) in seen["links"]
    assert {"172.30.0.5/16", "fd00:30::5/64"} <= {address for link, address in seen["addresses"] if link == "eth0"}
    main = {route[1:] for route in seen["routes"] if route[0] == 254}
    assert {("None/0", "172.30.0.1", "eth0"), ("None/0", "fd00:30::1", "eth0"),  # None/0: default
            ("10.9.0.0/16", None, "eth0"), ("169.254.0.53/32", None, "eth0")} <= main


def test_a_refused_request_names_what_was_asked(vm_namespace):
    unreachable = Network(interfaces=NETWORK.interfaces, routes=(Route("0.0.0.0/0", "192.0.2.1", "eth0"),))
    completed = configure_in(vm_namespace, unreachable)
    assert completed.returncode != 0
    assert "adding route 0.0.0.0/0 via 192.0.2.1 dev eth0: Network is unreachable" in completed.stderr
