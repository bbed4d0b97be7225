"""Hostile or careless workloads: whatever root in the VM does to what RunCVM put in its view,
and however much one exec writes without being read, the VM keeps taking execs."""

from __future__ import annotations

import concurrent.futures
import pathlib
import subprocess
import uuid

import pytest

from harness.netns import snapshot
from harness.resources import DockerResources
from harness.waiting import wait_for

DEBIAN = "debian"
BOOT_BOUND = 180
FLOOD_BYTES = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def shared(docker_daemon, runcvm, test_images):
    """(docker CLI, a running VM) shared by the tests that only exec into it."""
    resources = DockerResources(docker_daemon, owner=f"hostile-{uuid.uuid4().hex[:8]}")
    name = f"{resources.owner}-vm"
    resources.cli("run", "-d", f"--runtime={runcvm}", "--name", name, test_images[DEBIAN], "sleep", "3600")
    wait_for(lambda: resources.cli("exec", name, "true", check=False).returncode == 0, BOOT_BOUND, 1,
             "the VM to take execs")
    yield resources, name
    resources.remove_all()


@pytest.fixture
def vm(shared):
    return shared[1]


CAP_NET_ADMIN = 1 << 12


def statuses(docker, name) -> dict[str, dict[str, str]]:
    """/proc/PID/status of each process of the container, by its name (comm)."""
    return {process: dict(line.split(":\t", 1) for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines()
                          if ":\t" in line)
            for process, pid in docker.processes(name).items()}


def test_the_vms_helpers_are_confined(shared):
    """QEMU under its seccomp filter; no process of the container but the network follower can
    wire networks any more."""
    docker, name = shared
    processes = statuses(docker, name)
    assert set(processes) == {"runcvm-launcher", "runcvm-network", "qemu-system-x86", "virtiofsd"}
    qemu = processes["qemu-system-x86"]
    assert (qemu["Seccomp"], qemu["NoNewPrivs"]) == ("2", "1")  # filter mode
    wiring = {process for process, status in processes.items()
              if any(int(status[capabilities], 16) & CAP_NET_ADMIN for capabilities in ("CapBnd", "CapEff", "CapPrm"))}
    assert wiring == {"runcvm-network"}


def test_root_in_the_vm_cannot_break_docker_exec(docker_cli, vm):
    """What the VM sees of RunCVM is read-only to it; the exec socket and the plan it cannot see."""
    told = docker_cli.cli("exec", vm, "cat", "/.runcvm/vm.json").stdout
    wrecked = docker_cli.cli("exec", vm, "sh", "-c",
                             "rm -rf /.runcvm/vm.json; echo junk > /.runcvm/vm.json; echo junk > /.runcvm/exec.sock; "
                             "touch /.runcvm/guest/planted; ls -a /.runcvm; ls /run/runcvm 2>&1", check=False)
    assert wrecked.stderr.count(b"Read-only file system") == 4, wrecked.stderr
    assert b"plan.json" not in wrecked.stdout and b"agent.sock" not in wrecked.stdout
    assert docker_cli.cli("exec", vm, "cat", "/.runcvm/vm.json").stdout == told
    for _round in range(3):
        assert docker_cli.cli("exec", vm, "echo", "still here").stdout == b"still here\n"


def test_joining_a_vms_network_namespace_is_refused_and_the_vm_keeps_its_network(docker_cli, runcvm, test_images,
                                                                                 vm):
    pid = docker_cli.cli("inspect", "-f", "{{.State.Pid}}", vm).stdout.decode().strip()
    before = snapshot(f"/proc/{pid}/ns/net")
    refused = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", f"--network=container:{vm}", test_images[DEBIAN],
                             "true", check=False)
    assert refused.returncode != 0 and b"--network=container:" in refused.stderr, refused.stderr
    assert snapshot(f"/proc/{pid}/ns/net") == before
    assert docker_cli.cli("exec", vm, "echo", "still here").stdout == b"still here\n"


def test_one_exec_flooding_an_unread_stdout_holds_back_no_other(docker_cli, vm):
    """Its reader is stalled: the flood waits, the others finish, then every byte arrives."""
    flood = subprocess.Popen(["docker", "exec", vm, "head", "-c", str(FLOOD_BYTES), "/dev/zero"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            others = list(pool.map(lambda n: docker_cli.cli("exec", vm, "echo", str(n), timeout=120, check=False),
                                   range(10)))
        assert [(o.returncode, o.stdout) for o in others] == [(0, f"{n}\n".encode()) for n in range(10)]
        assert flood.poll() is None  # still held back by its own reader
        stdout, _stderr = flood.communicate(timeout=300)
    finally:
        flood.kill()
    assert flood.returncode == 0 and len(stdout) == FLOOD_BYTES


def test_forks_past_the_pids_limit_fail_as_under_runc(docker_cli, runcvm, test_images):
    """The limit holds the VM's processes: the shell's 200 background sleeps stop at 64."""
    bomb = "for i in $(seq 200); do sleep 60 & done; echo unreachable"
    runs = [docker_cli.cli("run", "--rm", "--runtime", runtime, "--pids-limit", "64", test_images[DEBIAN],
                           "sh", "-c", bomb, timeout=300, check=False) for runtime in ("runc", runcvm)]
    for ran in runs:
        assert b"Cannot fork" in ran.stderr and b"unreachable" not in ran.stdout, ran.stderr
    assert runs[1].returncode == runs[0].returncode != 0


def test_a_process_that_takes_all_the_memory_is_killed_as_under_runc_and_the_container_lives_on(docker_cli, runcvm, test_images):
    """`--memory` bounds the VM: a process that grows without end is killed (137) by the guest's
    kernel, as runc's cgroup kills it, and the container takes execs after it. QEMU and the other
    helpers fit in what RunCVM adds to the container's limit: were they killed, the container would be."""
    names = {runtime: f"{docker_cli.owner}-{runtime}" for runtime in ("runc", runcvm)}
    for runtime, name in names.items():
        docker_cli.cli("run", "-d", "--runtime", runtime, "--memory", "128m", "--name", name, test_images[DEBIAN],
                       "sleep", "3600")
    wait_for(lambda: docker_cli.cli("exec", names[runcvm], "true", check=False).returncode == 0, BOOT_BOUND, 1,
             "the VM to take execs")
    for name in names.values():
        grown = docker_cli.cli("exec", name, "tail", "/dev/zero", timeout=300, check=False)
        assert grown.returncode == 137, (name, grown.stderr)
        assert docker_cli.cli("exec", name, "echo", "after").stdout == b"after\n"
        assert docker_cli.cli("inspect", "-f", "{{.State.Running}}", name).stdout == b"true\n"


DUPLEX = "head -c 4000000 /dev/zero; wc -c"
DUPLEX_INPUT = b"i" * 2_000_000


def test_a_run_that_writes_much_before_it_reads_its_stdin_is_runcs(docker_cli, runcvm, test_images):
    """The workload writes 4 MB before it reads 2 MB waiting on its stdin: nothing freezes."""
    runs = [docker_cli.cli("run", "--rm", "-i", "--runtime", runtime, test_images[DEBIAN], "sh", "-c", DUPLEX,
                           input=DUPLEX_INPUT, timeout=300, check=False) for runtime in ("runc", runcvm)]
    assert [(ran.returncode, len(ran.stdout), ran.stdout[-8:]) for ran in runs] == [(0, 4_000_008, b"2000000\n")] * 2


def test_an_exec_that_writes_much_before_it_reads_its_stdin_is_runcs(shared):
    docker, name = shared
    ran = docker.cli("exec", "-i", name, "sh", "-c", DUPLEX, input=DUPLEX_INPUT, timeout=300, check=False)
    assert (ran.returncode, len(ran.stdout), ran.stdout[-8:]) == (0, 4_000_008, b"2000000\n")
    assert docker.cli("exec", name, "echo", "after").stdout == b"after\n"


def test_what_was_written_before_a_stop_that_kills_is_kept_on_every_storage(docker_cli, runcvm, test_images):
    """A workload that ignores SIGTERM, stopped with docker stop -t 3 (so killed): the file it wrote
    to its RUNCVM_DISKS disk survives, as do its copies on a volume and in the root filesystem."""
    disks, volume, name = (f"{docker_cli.owner}-{what}" for what in ("disks", "volume", "vm"))
    for volume_name in (disks, volume):
        docker_cli.cli("volume", "create", volume_name)
    storage = ("-v", f"{disks}:/disks", "-v", f"{volume}:/volume", "-e", "RUNCVM_DISKS=/disks/d.img,/data,ext4,64M")
    write = ('trap "" TERM; head -c 3000000 /dev/urandom > /data/f; cp /data/f /volume/f; cp /data/f /root/f; '
             'sha256sum < /data/f > /volume/sum; echo written; while :; do sleep 1; done')
    docker_cli.cli("run", "-d", "--runtime", runcvm, "--name", name, *storage, test_images[DEBIAN], "sh", "-c", write)
    wait_for(lambda: b"written" in docker_cli.cli("logs", name).stdout, BOOT_BOUND, 1, "the files to be written")
    docker_cli.cli("stop", "-t", "3", name, timeout=120)
    assert docker_cli.cli("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == b"137"
    check = "sha256sum < /data/f; sha256sum < /volume/f; cat /volume/sum"
    sums = docker_cli.cli("run", "--rm", "--runtime", runcvm, *storage, test_images[DEBIAN], "sh", "-c", check,
                          timeout=300).stdout.decode().splitlines()
    assert len(sums) == 3 and len(set(sums)) == 1, sums
    copied = docker_cli.cli("cp", f"{name}:/root/f", "-").stdout  # a tar of the file
    assert len(copied) > 3_000_000
