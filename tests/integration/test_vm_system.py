"""What system workloads need of the VM: cgroups as the original RunCVM mounts them
(RUNCVM_CGROUPFS), the kernel's modules for modprobe, and dockerd without systemd running a
container on them."""

from __future__ import annotations

import pytest

from harness.waiting import wait_for

DEBIAN = "debian"
BOOT_BOUND = 300
LIST_CGROUP_MOUNTS = "awk '$2 ~ \"^/sys/fs/cgroup\" {print $2, $3}' /proc/mounts"


@pytest.mark.parametrize("mode, expected", [
    ("", {("/sys/fs/cgroup", "tmpfs"), ("/sys/fs/cgroup/pids", "cgroup"), ("/sys/fs/cgroup/unified", "cgroup2")}),
    ("cgroup1", {("/sys/fs/cgroup", "tmpfs"), ("/sys/fs/cgroup/pids", "cgroup")}),
    ("2", {("/sys/fs/cgroup", "cgroup2")}),
], ids=["default-hybrid", "cgroup1", "cgroup2"])
def test_the_cgroup_filesystems_are_those_asked_for(docker_cli, runcvm, test_images, mode, expected):
    listed = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", "-e", f"RUNCVM_CGROUPFS={mode}", "--pids-limit", "50",
                            test_images[DEBIAN], "sh", "-c", f"{LIST_CGROUP_MOUNTS}; cat /proc/self/cgroup",
                            timeout=BOOT_BOUND)
    lines = listed.stdout.decode().splitlines()
    mounts = {tuple(line.split()) for line in lines if line.startswith("/")}
    assert expected <= mounts and (("/sys/fs/cgroup/unified", "cgroup2") in mounts) == ("unified" in str(expected))
    assert any("workload" in line for line in lines if not line.startswith("/"))  # --pids-limit's cgroup


def test_dockerd_without_systemd_runs_a_container_in_the_vm(docker_cli, runcvm, test_images):
    """dockerd as the workload, on the default hybrid cgroups (v1, as the original gives it); its
    data on a disk of the VM's own."""
    name = docker_cli.owner + "-dockerd"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "-m", "1g", "--name", name, "-v", "/disks",
                   "-e", "RUNCVM_DISKS=/disks/docker,/var/lib/docker,ext4,2G", test_images["dockerhost"], "dockerd")
    wait_for(lambda: docker_cli.cli("exec", name, "docker", "info", check=False, timeout=BOOT_BOUND).returncode == 0,
             BOOT_BOUND, 2, "dockerd in the VM to answer")
    docker_cli.cli("exec", "-i", name, "docker", "load", input=docker_cli.cli("save", test_images["busybox"]).stdout,
                   timeout=BOOT_BOUND)
    inner = docker_cli.cli("exec", name, "docker", "run", "--rm", test_images["busybox"], "busybox", "echo", "hello",
                           timeout=BOOT_BOUND)
    assert inner.stdout == b"hello\n", inner.stderr
    assert docker_cli.cli("exec", name, "docker", "info", "-f", "{{.CgroupVersion}}").stdout == b"1\n"


@pytest.mark.parametrize("whole_tree", [False, True], ids=["version-dir", "whole-lib-modules"])
def test_modprobe_loads_the_kernels_modules(docker_cli, runcvm, test_images, whole_tree):
    options = ("-e", "RUNCVM_KERNEL_MOUNT_LIB_MODULES=1") if whole_tree else ()
    loaded = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", *options, test_images["dockerhost"], "sh", "-c",
                            "for m in overlay vxlan wireguard br_netfilter; do modprobe $m || exit; done; "
                            "cut -d' ' -f1 /proc/modules", timeout=BOOT_BOUND)
    assert {b"overlay", b"vxlan", b"wireguard", b"br_netfilter"} <= set(loaded.stdout.split()), loaded.stderr
