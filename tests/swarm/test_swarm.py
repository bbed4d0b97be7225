"""A Docker Swarm of three RunCVM VMs, as the original RunCVM's own swarm test: each VM runs
dockerd without systemd, on another kind of cgroup tree (hybrid, v1 alone, v2 alone), on a
Docker network with 9000-byte frames; together they serve a global service through the routing
mesh on every node, so each dockerd runs a container. One node also has the kernel's modules over
all of /lib/modules, and loads some. One swarm serves every check. (dockerd under systemd, which
mounts its own cgroups: tests/integration/test_init_system.py.)"""

from __future__ import annotations

import functools
import hashlib
import uuid

import pytest

from harness.http import fetched
from harness.resources import DockerResources
from harness.waiting import wait_for

# dockerd in a VM under TCG, three at once on two cores.
DOCKERD_BOUND = 600
# dockerd gives the containerd it starts itself 15 s to come up, which under TCG is not always
# enough; one started first, which dockerd then dials, has no such limit.
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
DOCKERD = (f"containerd & until [ -S {CONTAINERD_SOCKET} ]; do sleep 1; done; "
           f"exec dockerd --containerd={CONTAINERD_SOCKET}")
DOCKERD_LISTENING = b"API listen on /var/run/docker.sock"
JOIN_GOES_ON = b"will continue in the background"
# dockerd sets up its networks with hundreds of short-lived processes (iptables above all), each
# exec'd from the image's root; nothing outside the VM changes that root while it runs, so the
# guest may keep what it read of it (RUNCVM_VIRTIOFSD_CACHE, in the README).
ROOT_CACHE = "RUNCVM_VIRTIOFSD_CACHE=always"
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
SERVICE = "web"
SERVICE_PORT = 8080
# Each task answers with the name of the node it runs on.
SERVICE_COMMAND = ("busybox mkdir -p /www && busybox hostname > /www/index.html && "
                   f"exec busybox httpd -f -p {SERVICE_PORT} -h /www")
# Three VMs under TCG share two cores: one vCPU each, and a manager that expects a heartbeat
# from each node every 30 s rather than 5 s.
HEARTBEAT = "30s"
# Swarm takes a while to list every node Ready and to give every node's load balancer all the
# tasks. A look at the node list is a docker CLI in a VM, which costs the VMs CPU time: not too often.
CONVERGE_BOUND = 900
POLL_SECONDS = 15
FILE_PORT = 8000
# A request to a VM under TCG, busy with dockerd.
REQUEST_TIMEOUT = 120
FILE_BYTES = 4 << 20


def start_dockerd(docker: DockerResources, runtime: str, image: str, name: str, *options: str) -> None:
    """Start dockerd in a VM named `name`, its data on a disk of the VM's own (overlayfs cannot
    use the VM's virtiofs root); wait_for_dockerd says when it answers."""
    docker.cli("run", "-d", f"--runtime={runtime}", "-m", "1g", "--pids-limit", str(PIDS_LIMIT), "--name", name,
               "-v", "/disks", "-e", "RUNCVM_DISKS=/disks/docker,/var/lib/docker,ext4,2G", "-e", ROOT_CACHE, *options,
               image, "sh", "-c", DOCKERD)


def wait_for_dockerd(docker: DockerResources, name: str) -> None:
    """Until dockerd in VM `name` says it listens, read from `docker logs` on the host: a docker
    CLI in the VM asking instead would take CPU from the VMs that are still starting. A VM
    that ends first fails at once, with its log."""
    def listening() -> bool:
        log = docker.cli("logs", name, check=False)
        if DOCKERD_LISTENING in log.stdout + log.stderr:
            return True
        state = docker.cli("inspect", "-f", "{{.State.Status}}", name).stdout.decode().strip()
        if state != "running":
            tail = (log.stdout + log.stderr).decode(errors="replace").splitlines()[-20:]
            raise AssertionError(f"{name} is {state} before its dockerd answered:\n" + "\n".join(tail))
        return False

    wait_for(listening, DOCKERD_BOUND, 2, f"dockerd in {name} to listen")


def load_image(docker: DockerResources, name: str, image: str) -> None:
    """`image` into the dockerd of VM `name`: no registry, the image travels in."""
    docker.cli("exec", "-i", name, "docker", "load", input=docker.cli("save", image).stdout, timeout=DOCKERD_BOUND)


def join(docker: DockerResources, name: str, token: str, manager_address: str) -> None:
    """VM `name` into the swarm. A join that takes longer than dockerd waits for goes on in the
    background (dockerd says so and fails the command): the nodes' test waits for it."""
    joined = docker.cli("exec", name, "docker", "swarm", "join", "--token", token, f"{manager_address}:2377",
                        check=False, timeout=DOCKERD_BOUND)
    if joined.returncode != 0 and JOIN_GOES_ON not in joined.stderr:
        raise AssertionError(f"{name} did not join the swarm:\n{joined.stderr.decode(errors='replace')}")


@pytest.fixture(scope="module")
def swarm(docker_daemon, runcvm, test_images):
    """(docker CLI, {node: container}, {node: IP}): three VMs in one swarm, node1 its manager,
    the busybox image loaded in each, and the global service created (it converges while the
    other checks run)."""
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
        join(docker, names[node], token, addresses["node1"])
    docker.cli("exec", manager, "docker", "service", "create", "--detach", "--name", SERVICE, "--mode", "global",
               "--publish", f"published={SERVICE_PORT},target={SERVICE_PORT}", "--hostname", "{{.Node.Hostname}}",
               "--no-resolve-image", test_images["busybox"], "busybox", "sh", "-c", SERVICE_COMMAND)
    yield docker, names, addresses
    docker.remove_all()


def ready_nodes(docker: DockerResources, manager: str) -> list[str]:
    """The hostnames of the nodes the manager lists Ready. A join that went on in the background
    may leave behind a node with no name that never gets Ready."""
    listed = docker.cli("exec", manager, "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
    return sorted(line.split()[0] for line in listed.stdout.decode().splitlines() if line.endswith(" Ready"))


def test_three_vms_form_a_swarm(swarm):
    docker, names, _addresses = swarm
    wait_for(lambda: ready_nodes(docker, names["node1"]) == sorted(NODES), CONVERGE_BOUND, POLL_SECONDS,
             "every node to be Ready")


def node_report(pids_max: str) -> str:
    """A shell command printing, a line each, `key value...` for what the nodes' test checks:
    one docker exec per node, which under TCG costs seconds."""
    return ("echo mtu $(cat /sys/class/net/eth0/mtu); "
            f"echo cgroup-kinds $({LIST_CGROUP_KINDS}); "
            f"echo pids.max $(cat {pids_max}); "
            "echo exec-cgroups $(cut -d: -f3 /proc/self/cgroup | sort -u); "
            "echo cgroup-version $(docker info -f '{{.CgroupVersion}}')")


def test_each_node_runs_dockerd_on_its_own_kind_of_cgroup_tree_with_9000_byte_frames(swarm):
    docker, names, _addresses = swarm
    for node, (_options, kinds, pids_max, version) in NODES.items():
        lines = docker.cli("exec", names[node], "sh", "-c", node_report(pids_max)).stdout.decode().splitlines()
        report = {key: value.split() for key, _space, value in (line.partition(" ") for line in lines)}
        assert report["mtu"] == [str(MTU)], node
        assert set(report["cgroup-kinds"]) == kinds, node
        assert report["pids.max"] == [str(PIDS_LIMIT)], node
        # --pids-limit's cgroup holds the workload and its execs.
        assert "/workload" in report["exec-cgroups"], node
        assert report["cgroup-version"] == [version], node


def test_modprobe_finds_the_kernels_modules_over_all_of_lib_modules(swarm):
    docker, names, _addresses = swarm
    loaded = docker.cli("exec", names["node1"], "sh", "-c",
                        f"modprobe -a {' '.join(MODULES)} && cut -d' ' -f1 /proc/modules")
    assert set(MODULES) <= set(loaded.stdout.decode().split())


def test_9000_byte_frames_pass_between_two_vms(swarm):
    """A file from node2 to node1 over TCP, whose segments fill 9000-byte frames: a frame too
    large for any link on the way (NIC, tap, bridge, veth) would be dropped, and the copy stall.
    The host fetches it too, to know what was sent."""
    docker, names, addresses = swarm
    docker.cli("exec", "-d", names["node2"], "sh", "-c",
               f"mkdir -p /srv/files && head -c {FILE_BYTES} /dev/urandom > /srv/files/blob.tmp && "
               f"mv /srv/files/blob.tmp /srv/files/blob && exec python3 -m http.server {FILE_PORT} -d /srv/files")
    url = f"http://{addresses['node2']}:{FILE_PORT}/blob"
    sent = hashlib.sha256(wait_for(functools.partial(fetched, url, REQUEST_TIMEOUT), DOCKERD_BOUND, 2, f"{url} to answer")).hexdigest()
    fetch = (f"import hashlib, urllib.request\n"
             f"print(hashlib.sha256(urllib.request.urlopen('{url}', timeout={REQUEST_TIMEOUT}).read()).hexdigest())\n")
    received = docker.cli("exec", names["node1"], "python3", "-c", fetch, timeout=300).stdout.decode().strip()
    assert received == sent


def every_task_answers(address: str, answers: set[str | None]) -> bool:
    """Whether the answers to requests to `address`, this one added, have come from every node."""
    answer = fetched(f"http://{address}:{SERVICE_PORT}/", REQUEST_TIMEOUT)
    answers.add(answer.decode().strip() if answer is not None else None)
    return set(NODES) <= answers


def test_a_global_service_answers_through_the_routing_mesh_on_every_node(swarm):
    """A task on each node; a request to any node's published port may be served by any task.
    Asked from the host alone, which costs the VMs no docker CLI while they converge."""
    docker, names, addresses = swarm
    for node, address in addresses.items():
        answers: set[str | None] = set()
        try:
            wait_for(functools.partial(every_task_answers, address, answers), CONVERGE_BOUND, 1,
                     f"every node's task to answer through {node}")
        except AssertionError as error:
            tasks = docker.cli("exec", names["node1"], "docker", "service", "ps", SERVICE, check=False)
            raise AssertionError(f"{error}; answers: {answers}; tasks:\n{tasks.stdout.decode()}") from error
