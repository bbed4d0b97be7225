"""A running VM follows `docker network connect` and `disconnect` as a runc container does: the new
network's addresses (IPv4 and IPv6) are the VM's, its peers are reached by name both ways, and on
disconnect the addresses, the NIC and everything RunCVM made for it go, round after round. Should
the follower die, the VM runs on and the container's log says what was lost."""

from __future__ import annotations

import json
import os
import signal
import time

from harness.netns import snapshot
from harness.waiting import wait_for

PYTHON3 = "python3"
ROUNDS = 5
BOOT_BOUND = 300
# Serves its own hostname over HTTP on port 8000.
SERVE = "mkdir -p /srv && cd /srv && hostname > name && exec python3 -m http.server 8000"
# The hostname that http://NAME:8000/ serves, NAME resolved by the container's resolver.
FETCH = ("import sys, urllib.request\n"
         "print(urllib.request.urlopen(f'http://{sys.argv[1]}:8000/name', timeout=30).read().decode().strip())")
# What the VM has of its network: its interfaces, its addresses, and how many PCI devices it has.
VM_VIEW = "ls /sys/class/net | tr '\\n' ' '; echo; hostname -I; ls /sys/bus/pci/devices | wc -l"


def test_network_connect_and_disconnect_reach_the_running_vm(docker_cli, runcvm, test_images):
    booted_on, added = docker_cli.owner + "-boot", docker_cli.owner + "-added"
    docker_cli.cli("network", "create", booted_on)
    docker_cli.cli("network", "create", "--ipv6", "--subnet", "fd00:feed::/64", added)
    peer, vm = docker_cli.owner + "-peer", docker_cli.owner + "-vm"
    docker_cli.cli("run", "-d", "--runtime=runc", "--network", added, "--name", peer, test_images[PYTHON3], "sh", "-c", SERVE)
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--network", booted_on, "--name", vm, test_images[PYTHON3],
                   "sh", "-c", SERVE)

    def view() -> tuple[str, set[str], str] | None:
        completed = docker_cli.cli("exec", vm, "sh", "-c", VM_VIEW, check=False)
        if completed.returncode:
            return None
        links, addresses, devices = completed.stdout.decode().splitlines()
        return links.strip(), set(addresses.split()), devices

    def fetch(client: str, server: str) -> str | None:
        completed = docker_cli.cli("exec", client, "python3", "-c", FETCH, server, check=False, timeout=120)
        return completed.stdout.decode().strip() if completed.returncode == 0 else None

    def addresses_on(network: str) -> set[str]:
        settings = json.loads(docker_cli.cli("inspect", vm).stdout)[0]["NetworkSettings"]["Networks"][network]
        return {address for address in (settings["IPAddress"], settings["GlobalIPv6Address"]) if address}

    booted = wait_for(view, BOOT_BOUND, 2, "the VM to take execs")
    assert booted[:2] == ("eth0 lo", addresses_on(booted_on))
    pid = json.loads(docker_cli.cli("inspect", vm).stdout)[0]["State"]["Pid"]
    namespace = f"/proc/{pid}/ns/net"
    handed_over = snapshot(namespace)
    hostnames = {name: wait_for(lambda name=name: fetch(name, "localhost"), 120, 1, f"the server in {name}")
                 for name in (vm, peer)}
    seconds: dict[str, list[float]] = {"connect": [], "disconnect": []}
    for _round in range(ROUNDS):
        started = time.monotonic()
        docker_cli.cli("network", "connect", added, vm)
        wanted = addresses_on(booted_on) | addresses_on(added)
        assert len(wanted) == 3  # IPv4 on each network, IPv6 on the added one
        # Named as Docker named it in the container (eth1, then eth2... as under runc).
        (docker_name,) = {link[0] for link in snapshot(namespace)["links"] if link[1] == "veth"} - {"eth0"}
        # Links and addresses are read one after the other: wait until both are as wanted.
        wait_for(lambda: (now := view()) and now[:2] == (f"eth0 {docker_name} lo", wanted), 120, 0.2,
                 f"the VM to have {docker_name} and the addresses {wanted}")
        seconds["connect"].append(round(time.monotonic() - started, 1))
        assert fetch(vm, peer) == hostnames[peer]  # by name on the added network, both ways
        assert fetch(peer, vm) == hostnames[vm]

        started = time.monotonic()
        docker_cli.cli("network", "disconnect", added, vm)
        assert wait_for(lambda: (now := view()) and now == booted and now, 120, 0.2,
                        "the VM to be as it booted") == booted
        seconds["disconnect"].append(round(time.monotonic() - started, 1))
        assert wait_for(lambda: snapshot(namespace) == handed_over, 60, 0.2,
                        "the container's namespace to be as at boot")
    print(f"from docker network connect/disconnect to the VM's addresses, seconds: {seconds}")
    # Without its follower the VM runs on, as it is, and the launcher says what was lost.
    os.kill(docker_cli.processes(vm)["runcvm-network"], signal.SIGKILL)
    said = "the network follower was killed by SIGKILL; docker network connect and disconnect no longer reach the VM"
    wait_for(lambda: said in docker_cli.cli("logs", vm).stderr.decode(), 60, 0.5, "the launcher to say so")
    assert view() == booted
