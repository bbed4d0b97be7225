"""RUNCVM_WARM_START: a VM restored from a template runs as a cold-booted one does, and as runc:
output bytes, exit status, hostname, network and names, clock, docker exec; each restored VM has
randomness of its own. A template that cannot be restored gives way to a cold boot."""

from __future__ import annotations

import json
import os
import time

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import HOST_TEMPLATES_DIR
from harness.waiting import wait_for

DEBIAN, PYTHON3 = "debian", "python3"
WARM = ("-e", "RUNCVM_WARM_START=1", "-e", "RUNCVM_TIMING=1")
# A memory size no other test asks for: the templates made here are this module's, removed after each test.
MEMORY = ("--memory", "640m")
BOOT_BOUND = 300
SCRIPT = "printf 'out\\0%s\\n' \"$(id -u)\"; echo err >&2; exit 3"
# Serves its own hostname over HTTP on port 8000.
SERVE = "mkdir -p /srv && cd /srv && hostname > name && exec python3 -m http.server 8000"
FETCH = ("import sys, urllib.request\n"
         "print(urllib.request.urlopen(f'http://{sys.argv[1]}:8000/name', timeout=30).read().decode().strip())")
# What differs between two VMs restored from one template, if anything of the template's state leaks.
OWN_STATE = "date +%s; cat /proc/sys/kernel/random/boot_id; head -c 16 /dev/urandom | od -An -tx1; cat /sys/class/net/eth0/address"


def templates() -> set[str]:
    return set(os.listdir(HOST_TEMPLATES_DIR)) if os.path.isdir(HOST_TEMPLATES_DIR) else set()


@pytest.fixture
def own_templates():
    """The templates the test makes, removed when it ends."""
    before = templates()
    yield lambda: templates() - before
    for name in templates() - before:
        os.unlink(os.path.join(HOST_TEMPLATES_DIR, name))


def workloads(stderr: bytes) -> bytes:
    """A RunCVM container's stderr without what RunCVM says (its timing, the TCG warning)."""
    return b"".join(line for line in stderr.splitlines(keepends=True) if not line.startswith(b"runcvm: "))


def run(docker_cli, runtime, image, *command, options=()):
    return docker_cli.cli("run", "--rm", f"--runtime={runtime}", *options, image, *command, check=False, timeout=BOOT_BOUND)


def test_restored_vms_run_as_runc_does(docker_cli, runcvm, test_images, own_templates):
    runc = run(docker_cli, "runc", test_images[DEBIAN], "sh", "-c", SCRIPT)
    made = run(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c", SCRIPT, options=(*WARM, *MEMORY))
    restored = run(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c", SCRIPT, options=(*WARM, *MEMORY))
    for vm in (made, restored):
        assert (vm.returncode, vm.stdout, workloads(vm.stderr)) == (runc.returncode, runc.stdout, runc.stderr), vm.stderr
        assert b"boots cold" not in vm.stderr, vm.stderr
    # The first made the template, then was restored from it; the second was restored at once.
    assert b" template=" in made.stderr and b" restore=" in made.stderr, made.stderr
    assert b" template=" not in restored.stderr and b" restore=" in restored.stderr, restored.stderr
    assert len(own_templates()) == 1


def test_restored_vms_have_their_own_names_addresses_clock_and_randomness(docker_cli, runcvm, test_images, own_templates):
    network = docker_cli.owner + "-net"
    docker_cli.cli("network", "create", network)
    names = [f"{docker_cli.owner}-{index}" for index in range(2)]
    for name in names:
        docker_cli.cli("run", "-d", f"--runtime={runcvm}", *WARM, *MEMORY, "--network", network, "--name", name,
                       test_images[PYTHON3], "sh", "-c", SERVE)

    def fetch(client: str, server: str) -> str | None:
        completed = docker_cli.cli("exec", client, "python3", "-c", FETCH, server, check=False, timeout=120)
        return completed.stdout.decode().strip() if completed.returncode == 0 else None

    def inspected(name: str) -> dict:
        return json.loads(docker_cli.cli("inspect", name).stdout)[0]

    for name in names:
        wait_for(lambda name=name: fetch(name, "localhost"), BOOT_BOUND, 1, f"the server in {name}")
    logs = [docker_cli.cli("logs", name).stderr.decode() for name in names]
    assert all("boots cold" not in log for log in logs), logs
    assert fetch(names[0], names[1]) == inspected(names[1])["Config"]["Hostname"]
    assert fetch(names[1], names[0]) == inspected(names[0])["Config"]["Hostname"]

    def own_state(name: str) -> tuple[float, list[str], float]:
        """The host's clock before the exec, what the VM said, the host's clock after it."""
        before = time.time()
        said = docker_cli.cli("exec", name, "sh", "-c", OWN_STATE).stdout.decode().splitlines()
        return before, said, time.time()

    states = [own_state(name) for name in names]
    views = [said for _before, said, _after in states]
    for name, (before, (clock, _boot_id, _random, mac), after) in zip(names, states):
        # The VM read its clock at some moment of the exec: within 5 s of the host's then.
        assert before - 5 <= int(clock) <= after + 5, (before, after, views)
        # The VM's NIC has the MAC RunCVM gives it: the container's last three octets (launcher/network.py).
        container_mac = inspected(name)["NetworkSettings"]["Networks"][network]["MacAddress"]
        assert mac == "52:54:00:" + container_mac[9:], views
    assert views[0][1] != views[1][1] and views[0][2] != views[1][2], views
    assert len(own_templates()) == 1


def test_a_template_that_does_not_restore_gives_way_to_a_cold_boot(docker_cli, runcvm, test_images, own_templates):
    made = run(docker_cli, runcvm, test_images[DEBIAN], "true", options=(*WARM, *MEMORY))
    assert made.returncode == 0, made.stderr
    (name,) = own_templates()
    path = os.path.join(HOST_TEMPLATES_DIR, name)
    os.truncate(path, os.path.getsize(path) // 2)
    broken = run(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c", "echo ran; exit 5", options=(*WARM, *MEMORY))
    assert (broken.returncode, broken.stdout) == (5, b"ran\n"), broken.stderr
    assert b"did not come up from its warm start's template" in broken.stderr, broken.stderr
    assert b"Traceback" not in broken.stderr and not os.path.exists(path)


def test_restored_vms_mount_the_cgroup_filesystems_asked_for(docker_cli, runcvm, test_images, own_templates):
    """A template mounts the cgroup filesystems most VMs ask for before it is saved; a restored VM
    keeps them, or mounts those RUNCVM_CGROUPFS asks for instead, as a cold-booted one does."""
    show = ("sh", "-c", "awk '$2 ~ \"^/sys/fs/cgroup\" {print $2, $3, $4}' /proc/mounts")

    def mounts(*options: str) -> list[str]:
        completed = run(docker_cli, runcvm, test_images[DEBIAN], *show, options=(*MEMORY, *options))
        assert completed.returncode == 0 and b"boots cold" not in completed.stderr, completed.stderr
        return completed.stdout.decode().splitlines()

    cold = mounts("-e", "RUNCVM_WARM_START=0")
    assert "/sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime" in cold, cold
    assert mounts(*WARM) == cold
    assert mounts(*WARM, "-e", "RUNCVM_CGROUPFS=cgroup2") == ["/sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime"]
    assert mounts(*WARM, "-e", "RUNCVM_CGROUPFS=none") == []
    assert len(own_templates()) == 1
