"""RunCVM moves the addresses and interfaces of a container's network namespace to its VM, so it
must never run in a namespace that is not the container's own: the host's (--network=host) or
another container's (--network=container:). The runtime refuses such containers at create, and
the launcher checks again before it touches a link; both are proven on namespaces made here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harness.netns import SCRATCH_ADDRESS, SCRATCH_GATEWAY, scratch_namespace, snapshot

DEBIAN = "debian"
# Runs the launcher's network hand-over inside a namespace, as the launcher does: its taps, then
# the follower it forks, which moves the addresses and reports the network, then starts afresh
# without pyroute2 to follow the namespace, named as ps shows it. With "connect", an interface is
# then put into the namespace as `docker network connect` does, for the idle follower to wake and
# take into a bridge of its own (the VM's QEMU it would then plug a NIC into is not there). The
# follower is stopped at the end. Prints the interfaces handed over, that the follower started
# afresh, and what it took. argv: namespace, the id the runtime would record as the host's
# ("this" for the namespace's own id), "connect" or nothing.
HAND_OVER = """
import os, signal, sys, time
from pyroute2 import netns
netns.setns(sys.argv[1])
from runcvm.launcher import follower, handover
from runcvm.namespaces import namespace_id
try:
    moving = handover.HandOver(handover.container_links(), with_launcher_address=False,
                               host_namespace=namespace_id() if sys.argv[2] == "this" else sys.argv[2])
except handover.NetworkError as error:
    print(error)
    sys.exit(3)
try:
    print(sorted(interface.name for interface in moving.wait().interfaces))
    deadline = time.monotonic() + 30
    def seen(name):
        return open(f"/proc/{moving.follower}/{name}").read()
    while follower.FOLLOW not in seen("cmdline") or seen("comm").strip() != "runcvm-network":
        assert time.monotonic() < deadline, f"the follower never started afresh: {seen('cmdline')!r}, {seen('comm')!r}"
        time.sleep(0.1)
    print("followed afresh")
    if sys.argv[3:] == ["connect"]:
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            ipr.link("add", ifname="net1", kind="veth", peer="net1-peer")
            (net1,) = ipr.link_lookup(ifname="net1")
            ipr.link("set", index=net1, state="up")
            deadline = time.monotonic() + 60
            while not ipr.get_links(net1)[0].get_attr("IFLA_MASTER"):
                assert time.monotonic() < deadline, "the follower never took net1"
                time.sleep(0.1)
        print("took net1")
finally:
    os.kill(moving.follower, signal.SIGKILL)
    os.waitpid(moving.follower, 0)
"""


def hand_over_in(namespace: str, host_namespace: str, *then: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HAND_OVER, namespace, host_namespace, *then], capture_output=True,
                          text=True, timeout=180, check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_the_launcher_leaves_the_hosts_namespace_untouched():
    with scratch_namespace() as host:
        before = snapshot(host)
        refused = hand_over_in(host, "this")
        assert refused.returncode == 3, refused.stderr
        assert "in the host's network namespace (--network=host) and leaves it untouched" in refused.stdout
        assert snapshot(host) == before


def test_the_launcher_refuses_when_it_does_not_know_the_hosts_namespace():
    with scratch_namespace() as namespace:
        before = snapshot(namespace)
        refused = hand_over_in(namespace, "")
        assert refused.returncode == 3 and "did not say which network namespace is the host's" in refused.stdout
        assert snapshot(namespace) == before


def test_the_launcher_takes_over_a_namespace_of_its_own():
    """The other side of the guard, so the two tests above can fail: in a namespace that is not
    the host's, the hand-over does move the address off the interface onto a bridge."""
    with scratch_namespace() as namespace:
        handed = hand_over_in(namespace, "0:0", "connect")
        assert handed.returncode == 0, handed.stderr + handed.stdout
        # The namespace's Ethernet links, not lo; then the follower waits on, as a new interpreter,
        # and wakes for the interface that comes.
        assert handed.stdout.split("\n")[:3] == ["['eth0', 'peer0']", "followed afresh", "took net1"]
        after = snapshot(namespace)
        assert ("eth0", f"{SCRATCH_ADDRESS}/24") not in after["addresses"]
        assert ("eth0", "veth", "br-eth0", 1500, True) in after["links"]
        assert ("tap-eth0", "tun", "br-eth0", 1500, True) in after["links"]  # the launcher's tap, bridged


def refused_run(docker_cli, runcvm, image, network):
    return docker_cli.cli("run", "--rm", f"--runtime={runcvm}", f"--network={network}", image, "true", check=False)


def test_network_host_is_refused_at_create_and_the_host_keeps_its_network(docker_cli, runcvm, test_images):
    before = snapshot()
    refused = refused_run(docker_cli, runcvm, test_images[DEBIAN], "host")
    assert refused.returncode != 0
    assert b"--network=host is not supported by RunCVM" in refused.stderr
    assert b"use the default bridge network, a user-defined network" in refused.stderr
    assert snapshot() == before
    assert docker_cli.cli("ps", "-aq", "--filter", f"label=org.runcvm.test={docker_cli.owner}").stdout == b""


def test_another_containers_namespace_is_refused_and_left_as_it_was(docker_cli, runcvm, test_images):
    neighbour = docker_cli.cli("run", "-d", "--runtime=runc", test_images[DEBIAN], "sleep", "600").stdout.decode().strip()
    pid = docker_cli.cli("inspect", "-f", "{{.State.Pid}}", neighbour).stdout.decode().strip()
    namespace = f"/proc/{pid}/ns/net"
    before = snapshot(namespace)
    refused = refused_run(docker_cli, runcvm, test_images[DEBIAN], f"container:{neighbour}")
    assert refused.returncode != 0
    assert b"joins another network namespace" in refused.stderr and b"--network=container:" in refused.stderr
    assert snapshot(namespace) == before
    assert docker_cli.cli("inspect", "-f", "{{.State.Running}}", neighbour).stdout.strip() == b"true"


CAPTURE = """
import sys
from pyroute2 import IPRoute, netns
netns.setns(sys.argv[1])
from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from runcvm.launcher import network
with IPRoute() as ipr:
    (eth0,) = ipr.link_lookup(ifname="eth0")
    ipr.addr("add", index=eth0, address="fd00:db8::2", prefixlen=64)
    ipr.route("add", dst="::/0", gateway="fd00:db8::1", oif=eth0)
    print(plan.dumps(network.capture(ipr, [eth0])))
"""


def test_an_ipv6_network_is_captured_with_its_global_addresses_and_routes():
    """What the VM is to take on a network with IPv6: Docker's addresses and default routes of
    both families; not the link-local address (the VM makes its own) nor the subnet routes (they
    come back with the addresses)."""
    with scratch_namespace() as namespace:
        captured = subprocess.run([sys.executable, "-c", CAPTURE, namespace], capture_output=True, text=True,
                                  timeout=60, check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert captured.returncode == 0, captured.stderr
    network = json.loads(captured.stdout)
    (interface,) = [i for i in network["interfaces"] if i["name"] == "eth0"]
    assert interface["addresses"] == [f"{SCRATCH_ADDRESS}/24", "fd00:db8::2/64"]
    assert sorted((route["destination"], route["gateway"]) for route in network["routes"]) == \
        [("0.0.0.0/0", SCRATCH_GATEWAY), ("::/0", "fd00:db8::1")]
