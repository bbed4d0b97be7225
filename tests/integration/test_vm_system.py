"""What system workloads need of the VM: cgroups as the original RunCVM mounts them
(RUNCVM_CGROUPFS), the kernel's modules for modprobe, and dockerd without systemd running a
container on them. (With systemd: test_init_system.py.)"""

from __future__ import annotations

from harness.waiting import wait_for

DEBIAN = "debian"
BOOT_BOUND = 300
LIST_CGROUP_MOUNTS = "awk '$2 ~ \"^/sys/fs/cgroup\" {print $2, $3}' /proc/mounts"
# (Not every v1 controller: Debian's 6.12 kernels have no v1 memory controller, and it is skipped.)
HYBRID = {("/sys/fs/cgroup", "tmpfs"), ("/sys/fs/cgroup/pids", "cgroup"), ("/sys/fs/cgroup/cpu", "cgroup"),
          ("/sys/fs/cgroup/unified", "cgroup2")}
MODULES = ("overlay", "vxlan", "wireguard", "br_netfilter")


def cgroup_mounts(completed) -> set[tuple[str, ...]]:
    return {tuple(line.split()) for line in completed.stdout.decode().splitlines()}


def test_cgroup2_alone_when_asked_with_the_pids_limit_in_it(docker_cli, runcvm, test_images):
    listed = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", "-e", "RUNCVM_CGROUPFS=2", "--pids-limit", "50",
                            test_images[DEBIAN], "sh", "-c", f"{LIST_CGROUP_MOUNTS}; cat /proc/self/cgroup",
                            timeout=BOOT_BOUND)
    lines = listed.stdout.decode().splitlines()
    assert [line for line in lines if line.startswith("/")] == ["/sys/fs/cgroup cgroup2"]
    assert lines[-1] == "0::/workload"  # --pids-limit's cgroup


def test_dockerd_without_systemd_runs_a_container_in_the_vm(docker_cli, runcvm, test_images):
    """dockerd as the workload, on the default hybrid cgroups (v1, as the original gives it), its
    data on a disk of the VM's own, the kernel's modules over all of /lib/modules."""
    name = docker_cli.owner + "-dockerd"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "-m", "1g", "--pids-limit", "2000", "--name", name,
                   "-v", "/disks", "-e", "RUNCVM_DISKS=/disks/docker,/var/lib/docker,ext4,2G",
                   "-e", "RUNCVM_KERNEL_MOUNT_LIB_MODULES=1", test_images["dockerhost"], "dockerd")
    wait_for(lambda: docker_cli.cli("exec", name, "docker", "info", check=False, timeout=BOOT_BOUND).returncode == 0,
             BOOT_BOUND, 2, "dockerd in the VM to answer")
    assert HYBRID <= cgroup_mounts(docker_cli.cli("exec", name, "sh", "-c", LIST_CGROUP_MOUNTS))
    assert docker_cli.cli("exec", name, "cat", "/sys/fs/cgroup/pids/workload/pids.max").stdout == b"2000\n"
    loaded = docker_cli.cli("exec", name, "sh", "-c", f"modprobe -a {' '.join(MODULES)} && cut -d' ' -f1 /proc/modules")
    assert set(MODULES) <= set(loaded.stdout.decode().split())
    docker_cli.cli("exec", "-i", name, "docker", "load", input=docker_cli.cli("save", test_images["busybox"]).stdout,
                   timeout=BOOT_BOUND)
    inner = docker_cli.cli("exec", name, "docker", "run", "--rm", test_images["busybox"], "busybox", "echo", "hello",
                           timeout=BOOT_BOUND)
    assert inner.stdout == b"hello\n", inner.stderr
    assert docker_cli.cli("exec", name, "docker", "info", "-f", "{{.CgroupVersion}}").stdout == b"1\n"
