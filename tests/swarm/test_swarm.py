"""A Docker Swarm of three RunCVM VMs, as the original RunCVM's own swarm test: each VM runs
dockerd without systemd, on another kind of cgroup tree (hybrid, v1 alone, v2 alone), on a
Docker network with 9000-byte frames; together they serve a global service through the routing
mesh on every node, so each dockerd runs a container. One node also has the kernel's modules over
all of /lib/modules, and loads some. One swarm serves every check. (dockerd under systemd, which
mounts its own cgroups: tests/integration/test_init_system.py.)"""

from __future__ import annotations

import functools
import urllib.request
import uuid

import pytest

from harness.resources import DockerResources
from harness.waiting import wait_for

# dockerd in a VM under TCG, three at once on two cores.
DOCKERD_BOUND = 600
# dockerd gives the containerd it starts itself 15 s to come up, which under TCG is not always
# enough; one started first, which dockerd then dials, has no such limit.
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
DOCKERD = (f"containerd & until [ -S {CONTAINERD_SOCKET} ]; do sleep 1; done; "
           f"exec dockerd --containerd={CONTAINERD_SOCKET}")
PIDS_LIMIT = 2000
MTU = 9000
V1_PIDS_MAX, V2_PIDS_MAX = "/sys/fs/cgroup/pids/workload/pids.max", "/sys/fs/cgroup/workload/pids.max"
# Each node's RunCVM options (node1: RUNCVM_CGROUPFS's default, hybrid), the kinds of cgroup
# filesystem it mounts, where --pids-limit holds, and the cgroup version its dockerd reports.
NODES = {"node1": (("-e", "RUNCVM_KERNEL_MOUNT_LIB_MODULES=1"), {"tmpfs", "cgroup", "cgroup2"}, V1_PIDS_MAX, "1"),
         "node2": (("-e", "RUNCVM_CGROUPFS=cgroup1"), {"tmpfs", "cgroup"}, V1_PIDS_MAX, "1"),
         "node3": (("-e", "RUNCVM_CGROUPFS=cgroup2"), {"cgroup2"}, V2_PIDS_MAX, "2")}
MODULES = ("overlay", "vxlan", "wireguard", "br_netfilter")
LIST_CGROUP_KINDS = "awk '$2 ~ \"^/sys/fs/cgroup\" {print $3}' /proc/mounts | sort -u"
SERVICE_PORT = 8080
# Each task answers with the name of the node it runs on.
SERVICE_COMMAND = ("busybox mkdir -p /www && busybox hostname > /www/index.html && "
                   f"exec busybox httpd -f -p {SERVICE_PORT} -h /www")
# Three VMs under TCG share two cores: one vCPU each, and a manager that expects a heartbeat
# from each node every 30 s rather than 5 s.
HEARTBEAT = "30s"
# Swarm's gossip takes a while to give every node's load balancer all the tasks. Each look is a
# docker CLI in a VM, which costs the VMs CPU time: not too often.
CONVERGE_BOUND = 900
POLL_SECONDS = 15
FILE_PORT = 8000
FILE_BYTES = 4 << 20


def start_dockerd(docker: DockerResources, runtime: str, image: str, name: str, *options: str) -> None:
    """Start dockerd in a VM named `name`, its data on a disk of the VM's own (overlayfs cannot
    use the VM's virtiofs root); wait_for_dockerd says when it answers."""
    docker.cli("run", "-d", f"--runtime={runtime}", "-m", "1g", "--pids-limit", str(PIDS_LIMIT), "--name", name,
               "-v", "/disks", "-e", "RUNCVM_DISKS=/disks/docker,/var/lib/docker,ext4,2G", *options,
               image, "sh", "-c", DOCKERD)


def wait_for_dockerd(docker: DockerResources, name: str) -> None:
    """Until dockerd in VM `name` answers; a VM that ends first fails at once, with its log."""
    def answers() -> bool:
        if docker.cli("exec", name, "docker", "info", check=False, timeout=DOCKERD_BOUND).returncode == 0:
            return True
        state = docker.cli("inspect", "-f", "{{.State.Status}}", name).stdout.decode().strip()
        if state != "running":
            log = docker.cli("logs", "--tail", "20", name, check=False)
            raise AssertionError(f"{name} is {state} before its dockerd answered:\n"
                                 f"{(log.stdout + log.stderr).decode(errors='replace')}")
        return False

    wait_for(answers, DOCKERD_BOUND, 2, f"dockerd in {name} to answer")


def load_image(docker: DockerResources, name: str, image: str) -> None:
    """`image` into the dockerd of VM `name`: no registry, the image travels in."""
    docker.cli("exec", "-i", name, "docker", "load", input=docker.cli("save", image).stdout, timeout=DOCKERD_BOUND)


@pytest.fixture(scope="module")
def swarm(docker_daemon, runcvm, test_images):
    """(docker CLI, {node: container}, {node: IP}): three VMs in one swarm, node1 its manager,
    the busybox image loaded in each."""
    docker = DockerResources(docker_daemon, owner=f"swarm-{uuid.uuid4().hex[:8]}")
    network = f"{docker.owner}-net"
    docker.cli("network", "create", "--opt", f"com.docker.network.driver.mtu={MTU}", network)
    names = {node: f"{docker.owner}-{node}" for node in NODES}
    for node, (options, *_expected) in NODES.items():
        start_dockerd(docker, runcvm, test_images["dockerhost"], names[node], "--network", network,
                      "--hostname", node, "--cpus", "1", *options)
    for name in names.values():
        wait_for_dockerd(docker, name)
        load_image(docker, name, test_images["busybox"])
    addresses = {node: docker.cli("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                                  name).stdout.decode().strip() for node, name in names.items()}
    manager = names["node1"]
    docker.cli("exec", manager, "docker", "swarm", "init", "--advertise-addr", addresses["node1"],
               "--dispatcher-heartbeat", HEARTBEAT)
    token = docker.cli("exec", manager, "docker", "swarm", "join-token", "-q", "worker").stdout.decode().strip()
    for node in ("node2", "node3"):
        docker.cli("exec", names[node], "docker", "swarm", "join", "--token", token, f"{addresses['node1']}:2377",
                   timeout=DOCKERD_BOUND)
    yield docker, names, addresses
    docker.remove_all()


def test_three_vms_form_a_swarm_on_a_network_of_9000_byte_frames(swarm):
    docker, names, _addresses = swarm
    listed = docker.cli("exec", names["node1"], "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
    assert sorted(listed.stdout.decode().splitlines()) == [f"{node} Ready" for node in NODES]
    for name in names.values():
        assert docker.cli("exec", name, "cat", "/sys/class/net/eth0/mtu").stdout == f"{MTU}\n".encode()


def test_each_node_runs_dockerd_on_its_own_kind_of_cgroup_tree(swarm):
    docker, names, _addresses = swarm
    for node, (_options, kinds, pids_max, version) in NODES.items():
        listed = docker.cli("exec", names[node], "sh", "-c", LIST_CGROUP_KINDS).stdout.decode().split()
        assert set(listed) == kinds, node
        assert docker.cli("exec", names[node], "cat", pids_max).stdout == f"{PIDS_LIMIT}\n".encode()
        # --pids-limit's cgroup holds the workload and its execs.
        assert ":/workload\n" in docker.cli("exec", names[node], "cat", "/proc/self/cgroup").stdout.decode(), node
        reported = docker.cli("exec", names[node], "docker", "info", "-f", "{{.CgroupVersion}}").stdout.decode()
        assert reported.strip() == version, node


def test_modprobe_finds_the_kernels_modules_over_all_of_lib_modules(swarm):
    docker, names, _addresses = swarm
    loaded = docker.cli("exec", names["node1"], "sh", "-c",
                        f"modprobe -a {' '.join(MODULES)} && cut -d' ' -f1 /proc/modules")
    assert set(MODULES) <= set(loaded.stdout.decode().split())


def test_9000_byte_frames_pass_between_two_vms(swarm):
    """A file from node2 to node1 over TCP, whose segments fill 9000-byte frames: a frame too
    large for any link on the way (NIC, tap, bridge, veth) would be dropped, and the copy stall."""
    docker, names, addresses = swarm
    docker.cli("exec", names["node2"], "sh", "-c", f"mkdir -p /srv/files && head -c {FILE_BYTES} /dev/urandom "
               "> /srv/files/blob")
    sent = docker.cli("exec", names["node2"], "sha256sum", "/srv/files/blob").stdout.split()[0].decode()
    docker.cli("exec", "-d", names["node2"], "python3", "-m", "http.server", str(FILE_PORT), "-d", "/srv/files")
    fetch = (f"import hashlib, urllib.request, time\n"
             f"for attempt in range(60):\n"
             f"    try:\n"
             f"        body = urllib.request.urlopen('http://{addresses['node2']}:{FILE_PORT}/blob', timeout=120).read()\n"
             f"        break\n"
             f"    except OSError:  # not listening yet\n"
             f"        time.sleep(2)\n"
             f"print(hashlib.sha256(body).hexdigest())\n")
    received = docker.cli("exec", names["node1"], "python3", "-c", fetch, timeout=300).stdout.decode().strip()
    assert received == sent


def answered_by(address: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{address}:{SERVICE_PORT}/", timeout=30) as answer:
            return answer.read().decode().strip()
    except OSError:
        return None


def every_task_answers(address: str, answers: set[str | None]) -> bool:
    """Whether the answers to requests to `address`, this one added, have come from every node."""
    answers.add(answered_by(address))
    return set(NODES) <= answers


def test_a_global_service_answers_through_the_routing_mesh_on_every_node(swarm, test_images):
    """A task on each node; a request to any node's published port may be served by any task."""
    docker, names, addresses = swarm
    manager = names["node1"]
    docker.cli("exec", manager, "docker", "service", "create", "--detach", "--name", "web", "--mode", "global",
               "--publish", f"published={SERVICE_PORT},target={SERVICE_PORT}", "--hostname", "{{.Node.Hostname}}",
               "--no-resolve-image", test_images["busybox"], "busybox", "sh", "-c", SERVICE_COMMAND)

    def running_tasks():
        tasks = docker.cli("exec", manager, "docker", "service", "ps", "web", "--filter", "desired-state=running",
                           "--format", "{{.Node}} {{.CurrentState}}").stdout.decode().splitlines()
        return sorted(task.split()[0] for task in tasks if task.split()[1] == "Running")

    wait_for(lambda: running_tasks() == sorted(NODES), CONVERGE_BOUND, POLL_SECONDS, "a running task on every node")
    for node, address in addresses.items():
        answers: set[str | None] = set()
        try:
            wait_for(functools.partial(every_task_answers, address, answers), CONVERGE_BOUND, 1,
                     f"every node's task to answer through {node}")
        except AssertionError as error:
            raise AssertionError(f"{error}; answers: {answers}") from error
