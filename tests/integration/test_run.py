"""`docker run --runtime=runcvm` behaves as `docker run` with runc, in a real VM (TCG here).

Most tests run the same command under runc and under RunCVM and expect the same result."""

from __future__ import annotations

import ipaddress
import json
import os
import pty
import re
import socket

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.accel import host_kvm_status
from cgroups import cgroup_file
from harness.http import fetched
from harness.terminal import read_until
from harness.waiting import wait_for

DEBIAN = "debian"


def run(docker_cli, runtime, image, *command, options=(), input=None, check=False, timeout=240):
    return docker_cli.cli("run", "--rm", f"--runtime={runtime}", *options, image, *command, input=input,
                          check=check, timeout=timeout)


def both(docker_cli, runcvm, image, *command, options=(), input=None):
    """The same docker run under runc and under RunCVM."""
    return (run(docker_cli, "runc", image, *command, options=options, input=input),
            run(docker_cli, runcvm, image, *command, options=options, input=input))


@pytest.mark.parametrize("script", ["exit 0", "exit 3", "exit 255", "kill -9 $$", "false"])
def test_exit_status_is_runcs(docker_cli, runcvm, test_images, script):
    runc, vm = both(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c", script)
    assert vm.returncode == runc.returncode, vm.stderr


def test_stdout_bytes_are_runcs_and_stderr_stays_apart(docker_cli, runcvm, test_images):
    script = r"printf 'a\r\nb\000c\n'; seq 1 30000; printf 'no newline'; echo oops >&2"
    runc, vm = both(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c", script)
    assert vm.stdout == runc.stdout
    assert b"oops\n" in vm.stderr and b"oops" not in vm.stdout


def test_environment_and_the_longest_arguments_are_runcs(docker_cli, runcvm, test_images):
    # The longest argument and variable Linux passes: 128 KiB less the final NUL.
    longest = 128 * 1024 - 1
    options = ("--hostname", "vmhost", "-e", "FOO=bar baz", "-e", "RUNCVM_KERNEL_APPEND=quiet",
               "-e", "BIG=" + "v" * (longest - 4))
    runc, vm = both(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c", 'env | sort; echo "${#1}"', "x",
                    "a" * longest, options=options)
    assert vm.stdout == runc.stdout.replace(b"RUNCVM_KERNEL_APPEND=quiet\n", b"")
    assert b"HOSTNAME=vmhost\n" in vm.stdout and b"RUNCVM" not in vm.stdout
    assert vm.stdout.endswith(f"\n{longest}\n".encode())


@pytest.mark.parametrize("options", [(), ("-u", "1000:1000", "-w", "/tmp"), ("-u", "nobody", "--group-add", "27"),
                                     ("-w", "/var/log")])
def test_identity_and_directory_are_runcs(docker_cli, runcvm, test_images, options):
    script = 'id; pwd; echo "$HOME"; echo $$; umask'
    runc, vm = both(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c", script, options=options)
    assert vm.stdout == runc.stdout


# The boot protocol version in the kernel's boot parameters: the kernel's own (2.15) when QEMU
# boots the compressed kernel through the firmware; 2.12 when the kernel, entered through PVH,
# wrote its boot parameters itself.
BOOT_PROTOCOL_VERSION = "od -An -tx2 -j 518 -N 2 /sys/kernel/boot_params/data"
PVH_BOOT_PROTOCOL = "020c"


# The CPU flags of fast `rep movsb`, which TCG runs a byte an iteration: the guest must not see
# them there, so that its kernel and libc copy memory 8 bytes an iteration.
BYTEWISE_COPY_FLAGS = {"erms", "fsrm"}


def test_the_vm_runs_the_installed_kernel_uncompressed_through_pvh(docker_cli, runcvm, test_images):
    release, protocol, *flags = run(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c",
                                    f"uname -r; {BOOT_PROTOCOL_VERSION}; grep -m1 ^flags /proc/cpuinfo"
                                    ).stdout.decode().split()
    latest = os.readlink("/opt/runcvm/kernels/debian/latest")
    assert release == latest != os.uname().release
    assert os.path.isfile(f"/opt/runcvm/kernels/debian/{latest}/vmlinux")
    assert protocol == PVH_BOOT_PROTOCOL
    if not host_kvm_status().usable:  # TCG: QEMU's fullest CPU, less those two
        assert "avx2" in flags and not BYTEWISE_COPY_FLAGS & set(flags)


def test_an_image_with_its_own_kernel_boots_it(docker_cli, runcvm, test_images):
    image_kernel = run(docker_cli, "runc", test_images["kernel"], "readlink", "/vmlinuz").stdout.decode()
    release = run(docker_cli, runcvm, test_images["kernel"], "uname", "-r").stdout.decode().strip()
    assert image_kernel.strip() == f"boot/vmlinuz-{release}"


def cgroup_value(pid: int, controller: str, v1_file: str, v2_file: str) -> str:
    """A limit of the cgroup process `pid` is in, on a cgroup v1 (hybrid) or v2 host."""
    return cgroup_file(pid, controller, v1_file, v2_file).read_text(encoding="ascii").strip()


def test_memory_cpus_and_docker_update(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-sized"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name, "--memory", "300m", "--cpus", "1.5",
                   "--pids-limit", "100", test_images[DEBIAN], "sleep", "600")
    wait_for(lambda: docker_cli.cli("exec", name, "true", check=False).returncode == 0, 120, 1, "execs")

    def total_mib() -> int:
        return int(docker_cli.cli("exec", name, "grep", "MemTotal", "/proc/meminfo").stdout.split()[1]) // 1024

    assert docker_cli.cli("exec", name, "nproc").stdout == b"2\n"
    booted_total = total_mib()
    # The kernel keeps some of the VM's memory for itself: MemTotal is 80-100% of --memory.
    assert 240 <= booted_total <= 300
    pid = json.loads(docker_cli.cli("inspect", name).stdout)[0]["State"]["Pid"]

    def limits():
        return (cgroup_value(pid, "memory", "memory.limit_in_bytes", "memory.max"),
                cgroup_value(pid, "pids", "pids.max", "pids.max"))

    def docker_sees():
        host_config = json.loads(docker_cli.cli("inspect", name).stdout)[0]["HostConfig"]
        return host_config["Memory"], host_config["PidsLimit"]

    booted = limits()
    assert booted == (str((300 + 256) * 2**20), str(100 + 256))  # the VM, and room for QEMU and the rest
    # The CPU quota changes, as under runc, and the VM keeps as many of its vCPUs online; the
    # limits that hold the VM stay.

    def online_vcpus() -> bytes:
        return docker_cli.cli("exec", name, "nproc").stdout.strip()

    docker_cli.cli("update", "--cpus", "1", name)
    assert cgroup_value(pid, "cpu", "cpu.cfs_quota_us", "cpu.max").split()[0] == "100000"
    assert limits() == booted
    assert wait_for(lambda: online_vcpus() == b"1", 30, 0.5, "one vCPU online")
    docker_cli.cli("update", "--cpus", "1.5", name)
    assert wait_for(lambda: online_vcpus() == b"2", 30, 0.5, "both vCPUs online again")
    # The VM's memory follows --memory down and back up, the cgroup holding the VM and RunCVM's
    # overhead; what the guest gives back, QEMU gives back to the host. (The guest first uses
    # most of its memory, then frees it, so that what it gives back has been used.)
    docker_cli.cli("exec", name, "sh", "-c", "mkdir -p /filled && mount -t tmpfs -o size=220m tmpfs /filled && "
                                             "head -c 200m /dev/zero > /filled/data && rm /filled/data")

    def used() -> int:
        return int(cgroup_value(pid, "memory", "memory.usage_in_bytes", "memory.current"))

    used_before = used()
    docker_cli.cli("update", "--memory", "200m", name)
    assert used_before - used() >= 64 * 2**20
    assert booted_total - total_mib() == 100
    assert limits() == (str((200 + 256) * 2**20), booted[1]) and docker_sees() == (200 * 2**20, 100)
    docker_cli.cli("update", "--memory", "300m", name)
    assert (total_mib(), limits(), docker_sees()) == (booted_total, booted, (300 * 2**20, 100))
    # A change the running VM cannot follow is refused, and nothing changes: more memory than it
    # booted with, less than its workload uses, another process limit.
    docker_cli.cli("exec", name, "sh", "-c", "head -c 180m /dev/zero > /filled/data")
    for change, words in ((("--memory", "700m", "--memory-swap", "1g"), b"the VM booted with 300 MiB, the most it can have"),
                          (("--memory", "100m"), b"--memory 100m: the VM could give back only "),
                          (("--pids-limit", "50"), b"the VM booted with --pids-limit 100")):
        refused = docker_cli.cli("update", *change, name, check=False)
        assert refused.returncode != 0 and words in refused.stderr, refused.stderr
        assert (total_mib(), limits(), docker_sees()) == (booted_total, booted, (300 * 2**20, 100))
    assert docker_cli.cli("exec", name, "true").returncode == 0


def test_a_small_memory_limit_works(docker_cli, runcvm, test_images):
    vm = run(docker_cli, runcvm, test_images[DEBIAN], "echo", "small", options=("--memory", "128m"))
    assert (vm.returncode, vm.stdout) == (0, b"small\n"), vm.stderr


def test_stdin_reaches_the_workload_with_its_end(docker_cli, runcvm, test_images):
    runc, vm = both(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c", "cat; echo done",
                    options=("-i",), input=b"hi\nthere")
    assert vm.stdout == runc.stdout == b"hi\nthere" + b"done\n"


def test_busybox_only_image(docker_cli, runcvm, test_images):
    runc, vm = both(docker_cli, runcvm, test_images["busybox"], "busybox", "echo", "hi")
    assert vm.stdout == runc.stdout == b"hi\n"


def test_volumes_binds_and_tmpfs(docker_cli, runcvm, test_images, tmp_path):
    (tmp_path / "host.txt").write_text("from the host\n")
    volume = docker_cli.owner + "-vol"
    docker_cli.cli("volume", "create", volume)
    script = ("cat /host/host.txt; echo written > /data/file; touch /ro/x 2>/dev/null || echo read-only; "
              "grep -c ' /scratch tmpfs ' /proc/mounts; echo tmp > /scratch/f && cat /scratch/f")
    vm = run(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c", script,
             options=("-v", f"{tmp_path}:/host", "-v", f"{volume}:/data", "-v", f"{tmp_path}:/ro:ro",
                      "--tmpfs", "/scratch"))
    assert vm.stdout == b"from the host\nread-only\n1\ntmp\n", vm.stderr
    after = run(docker_cli, "runc", test_images[DEBIAN], "cat", "/data/file", options=("-v", f"{volume}:/data"))
    assert after.stdout == b"written\n"


# Writes a file without closing it, changes another through a shared mapping, and exits at once:
# the VM is ended as soon as the workload is, so both must be on the host by then, as under runc.
WRITE_THEN_EXIT = """
import mmap, os
os.write(os.open("/host/written", os.O_WRONLY | os.O_CREAT, 0o644), b"written")
with open("/host/mapped", "r+b") as handle:
    mapping = mmap.mmap(handle.fileno(), 0)
    mapping[:6] = b"mapped"
os._exit(0)
"""


def test_what_the_workload_wrote_is_on_the_host_when_docker_run_returns(docker_cli, runcvm, test_images, tmp_path):
    found = {}
    for runtime in ("runc", runcvm):
        shared = tmp_path / runtime
        shared.mkdir()
        (shared / "mapped").write_bytes(b"......")
        run(docker_cli, runtime, test_images["python3"], "python3", "-c", WRITE_THEN_EXIT,
            options=("-v", f"{shared}:/host"), check=True)
        found[runtime] = {path.name: path.read_bytes() for path in shared.iterdir()}
    assert found[runcvm] == found["runc"] == {"written": b"written", "mapped": b"mapped"}


def test_network_none(docker_cli, runcvm, test_images):
    runc, vm = both(docker_cli, runcvm, test_images[DEBIAN], "ls", "/sys/class/net", options=("--network", "none"))
    assert vm.stdout == runc.stdout == b"lo\n"


def test_custom_mtu_and_two_networks(docker_cli, runcvm, test_images):
    first, second = docker_cli.owner + "-a", docker_cli.owner + "-b"
    docker_cli.cli("network", "create", "-o", "com.docker.network.driver.mtu=1400", first)
    docker_cli.cli("network", "create", second)
    name = docker_cli.owner + "-multi"
    script = "for i in /sys/class/net/eth*; do echo ${i##*/} $(cat $i/mtu); done; hostname -I"
    docker_cli.cli("create", "--runtime", runcvm, "--name", name, "--network", first, test_images[DEBIAN],
                   "sh", "-c", script)
    docker_cli.cli("network", "connect", second, name)
    output = docker_cli.cli("start", "-a", name, timeout=240).stdout.decode().split("\n")
    assert output[:2] == ["eth0 1400", "eth1 1500"]
    subnets = [ipaddress.ip_network(json.loads(docker_cli.cli("network", "inspect", network).stdout)[0]
                                    ["IPAM"]["Config"][0]["Subnet"]) for network in (first, second)]
    addresses = [ipaddress.ip_address(address) for address in output[2].split()]
    # hostname -I lists addresses in no set order: one address in each network.
    assert len(addresses) == 2
    assert all(sum(address in subnet for address in addresses) == 1 for subnet in subnets)


def test_published_tcp_port_serves_nginx(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-nginx"
    docker_cli.cli("run", "-d", "--runtime", runcvm, "--name", name, "-p", "127.0.0.1::80", test_images["nginx"])
    port = docker_cli.published_port(name, "80/tcp")
    assert b"Welcome to nginx" in wait_for(lambda: fetched(f"http://127.0.0.1:{port}/", 3), 120, 1, "nginx in the VM")


# Answers every datagram, and says which it got: a test that sees no answer shows whether the
# datagrams reached the VM.
UDP_ECHO = """import socket
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("", 5353))
print("ready", flush=True)
while True:
    data, peer = server.recvfrom(100)
    print("got", data, "from", peer, flush=True)
    server.sendto(data.upper(), peer)
"""


def test_published_udp_port(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-udp"
    docker_cli.cli("run", "-d", "--runtime", runcvm, "--name", name, "-p", "127.0.0.1::5353/udp",
                   test_images["python3"], "python3", "-c", UDP_ECHO)
    port = docker_cli.published_port(name, "5353/udp")
    wait_for(lambda: b"ready" in docker_cli.cli("logs", name).stdout, 120, 1, "the UDP server in the VM")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(2)
        try:
            answer = wait_for(lambda: _udp_exchange(client, port), 60, 0.5, "a UDP answer")
        except AssertionError as error:
            logs = docker_cli.cli("logs", name)
            raise AssertionError(f"{error}; the VM's output:\n{(logs.stdout + logs.stderr).decode(errors='replace')}") from error
    assert answer == b"PING"


def _udp_exchange(client, port):
    client.sendto(b"ping", ("127.0.0.1", port))
    try:
        return client.recv(100)
    except OSError:
        return None


def test_dns_both_ways_on_a_user_network(docker_cli, runcvm, test_images):
    network, server = docker_cli.owner + "-net", docker_cli.owner + "-db"
    docker_cli.cli("network", "create", network)
    docker_cli.cli("run", "-d", "--runtime", runcvm, "--name", server, "--network", network, test_images["mariadb"])

    def query():
        completed = docker_cli.cli("run", "--rm", "--runtime=runc", "--network", network, test_images["mariadb"],
                                   "mariadb", "-h", server, "-u", "root", "-N", "-e", "SELECT 6*7", check=False)
        return completed.stdout if completed.returncode == 0 else None

    assert wait_for(query, 180, 2, "mariadb in the VM to answer by name").strip() == b"42"
    peer = docker_cli.owner + "-peer"
    docker_cli.cli("run", "-d", "--runtime=runc", "--name", peer, "--network", network, test_images[DEBIAN],
                   "sleep", "600")
    # The VM's /etc/resolv.conf is its own to change, as under runc.
    resolved = run(docker_cli, runcvm, test_images[DEBIAN], "sh", "-c",
                   f"getent hosts {peer} && echo '# mine' >> /etc/resolv.conf && tail -n1 /etc/resolv.conf",
                   options=("--network", network))
    peer_ip = json.loads(docker_cli.cli("inspect", peer).stdout)[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
    assert resolved.stdout.split()[0].decode() == peer_ip
    assert resolved.stdout.endswith(b"\n# mine\n")


def test_docker_logs_of_a_detached_run(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-logs"
    docker_cli.cli("run", "-d", "--runtime", runcvm, "--name", name, test_images[DEBIAN], "sh", "-c", "echo hello")
    docker_cli.cli("wait", name, timeout=240)
    assert docker_cli.cli("logs", name).stdout == b"hello\n"


def test_docker_stop_ends_a_workload_that_exits_on_term(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-stop"
    script = 'trap "echo stopping; exit 7" TERM; echo up; while true; do sleep 0.2; done'
    docker_cli.cli("run", "-d", "--runtime", runcvm, "--name", name, test_images[DEBIAN], "sh", "-c", script)
    wait_for(lambda: b"up" in docker_cli.cli("logs", name).stdout, 120, 0.5, "the workload to start")
    docker_cli.cli("stop", name)  # a stop that timed out would end in 137, not the trap's 7
    state = json.loads(docker_cli.cli("inspect", name).stdout)[0]["State"]
    assert state["ExitCode"] == 7
    assert docker_cli.cli("logs", name).stdout == b"up\nstopping\n"


def test_docker_kill(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-kill"
    docker_cli.cli("run", "-d", "--runtime", runcvm, "--name", name, test_images[DEBIAN], "sleep", "600")
    docker_cli.cli("kill", name)
    docker_cli.cli("wait", name)
    assert json.loads(docker_cli.cli("inspect", name).stdout)[0]["State"]["ExitCode"] == 137


def test_restart_on_failure(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-restart"
    docker_cli.cli("run", "-d", "--runtime", runcvm, "--name", name, "--restart", "on-failure:2",
                   test_images[DEBIAN], "sh", "-c", "echo run; exit 1")

    def finished():
        state = json.loads(docker_cli.cli("inspect", name).stdout)[0]
        return state if not state["State"]["Running"] and state["RestartCount"] == 2 else None

    state = wait_for(finished, 240, 2, "two restarts")
    assert state["State"]["ExitCode"] == 1
    assert docker_cli.cli("logs", name).stdout == b"run\n" * 3


def test_an_interactive_terminal_session(docker_cli, runcvm, test_images):
    command = ["docker", "run", "--rm", "-it", "--runtime", runcvm, test_images[DEBIAN], "sh"]
    pid, master = pty.fork()
    if pid == 0:
        os.execvp("docker", command)
    output = read_until(master, b"# ", 120)
    os.write(master, b"tty; echo $((6*7)); exit 5\r")
    output += read_until(master, None, 60)
    status = os.waitpid(pid, 0)[1]
    assert os.waitstatus_to_exitcode(status) == 5
    assert re.search(rb"/dev/pts/\d+\r\n", output) and b"42\r\n" in output


def test_a_missing_kernel_fails_docker_run_clearly(docker_cli, runcvm, test_images):
    vm = run(docker_cli, runcvm, test_images[DEBIAN], "true", options=("-e", "RUNCVM_KERNEL=nosuch"))
    assert vm.returncode == 125
    assert b"RUNCVM_KERNEL=nosuch: no nosuch kernel is installed" in vm.stderr


def test_forcing_kvm_where_it_cannot_boot_a_kernel_fails_docker_run(docker_cli, runcvm, test_images):
    if host_kvm_status().usable:
        pytest.skip("KVM is usable on this machine: RUNCVM_ACCEL=kvm is allowed here")
    vm = run(docker_cli, runcvm, test_images[DEBIAN], "true", options=("-e", "RUNCVM_ACCEL=kvm"))
    assert vm.returncode == 125
    assert b"RUNCVM_ACCEL=kvm was requested but KVM is not usable" in vm.stderr


def test_docker_init_is_the_workloads_pid_1_and_parent_as_under_runc(docker_cli, runcvm, test_images):
    runc, vm = both(docker_cli, runcvm, test_images["busybox"], "busybox", "sh", "-c",
                    "busybox ps -o pid,ppid,comm; exit 3", options=("--init",))

    def tree(completed):  # (pid, ppid, command) of PID 1, then the commands of its children
        rows = [line.split() for line in completed.stdout.decode().splitlines()[1:]]
        return rows[0], sorted(row[2] for row in rows if row[1] == "1")

    assert (runc.returncode, vm.returncode) == (3, 3), vm.stderr
    assert tree(vm) == tree(runc) == (["1", "0", "docker-init"], ["busybox"])


def test_runcvm_break_opens_a_shell_in_the_container_then_the_launch_goes_on(docker_cli, runcvm, test_images):
    completed = run(docker_cli, runcvm, test_images[DEBIAN], "echo", "the workload ran",
                    options=("-i", "-e", "RUNCVM_BREAK=preqemu"), input=b"echo in the break: $(ls -d /vm)\nexit\n")
    assert completed.stdout == b"in the break: /vm\nthe workload ran\n", completed.stderr
    assert b"RUNCVM_BREAK: preqemu" in completed.stderr and b"qemu-system-x86_64 " in completed.stderr


# Fetches http://[NAME's IPv6 address]:8000/ (AAAA from Docker's DNS) and prints what came back
# and the address the fetch went out from.
FETCH_OVER_IPV6 = """
import socket, sys, urllib.request
address = socket.getaddrinfo(sys.argv[1], 8000, socket.AF_INET6, socket.SOCK_STREAM)[0][4][0]
with socket.create_connection((address, 8000), timeout=60) as probe:
    print(probe.getsockname()[0])
print(urllib.request.urlopen(f"http://[{address}]:8000/hello", timeout=60).read().decode(), end="")
"""
SERVE_OVER_IPV6 = "mkdir -p /srv && cd /srv && echo hello over IPv6 > hello && exec python3 -m http.server --bind :: 8000"


def test_ipv6_both_ways_on_an_ipv6_network(docker_cli, runcvm, test_images):
    """The VM takes the container's IPv6 address and default route; names resolve to it (AAAA)."""
    network = docker_cli.owner + "-v6"
    docker_cli.cli("network", "create", "--ipv6", "--subnet", "fd00:cafe::/64", network)
    names = {}
    for runtime in ("runc", runcvm):
        names[runtime] = f"{docker_cli.owner}-{runtime}-v6"
        docker_cli.cli("run", "-d", f"--runtime={runtime}", "--network", network, "--name", names[runtime],
                       test_images["python3"], "sh", "-c", SERVE_OVER_IPV6)

    def address_of(name):
        return json.loads(docker_cli.cli("inspect", name).stdout)[0]["NetworkSettings"]["Networks"][network][
            "GlobalIPv6Address"]

    def fetch(client, server):
        completed = docker_cli.cli("exec", client, "python3", "-c", FETCH_OVER_IPV6, server, check=False, timeout=120)
        return completed.stdout.decode().splitlines() if completed.returncode == 0 else None

    # From the VM to the runc container, and back; the VM may still be booting at first.
    assert wait_for(lambda: fetch(names[runcvm], names["runc"]), 180, 2, "the VM to reach its peer over IPv6") == \
        [address_of(names[runcvm]), "hello over IPv6"]
    assert wait_for(lambda: fetch(names["runc"], names[runcvm]), 60, 2, "the peer to reach the VM over IPv6") == \
        [address_of(names["runc"]), "hello over IPv6"]
