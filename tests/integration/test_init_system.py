"""An init system owns the VM: the factory's systemd-docker image (/sbin/init, a link to systemd,
with a service enabled and Docker) runs as PID 1 of the VM itself, takes `docker exec`, answers on
a published port, runs a container in its own dockerd, shows its screen over VNC, and powers the
VM off on `docker stop`, ending as the systemd image does under runc. One VM serves every check."""

from __future__ import annotations

import socket
import struct
import uuid

import pytest

from harness.console import vm_console
from harness.resources import DockerResources
from harness.systemd import system_state
from harness.waiting import wait_for

# Under TCG systemd takes about half a minute to reach its default target.
BOOT_BOUND = 300
# Long enough that a stop which had to wait for Docker's SIGKILL would show as 137.
STOP_TIMEOUT = 120
RUNC_OPTIONS = ("--tmpfs", "/run", "--tmpfs", "/run/lock", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro")


def what_the_vm_said(docker, name) -> str:
    """For a failure: the container's state, its log and the end of the VM's console."""
    state = docker.cli("inspect", "-f", "{{json .State}}", name, check=False).stdout.decode()
    logs = docker.cli("logs", "--tail", "20", name, check=False)
    return (f"state: {state}\nlog:\n{(logs.stdout + logs.stderr).decode(errors='replace')}"
            f"console:\n{vm_console(docker, name, 30)}")


@pytest.fixture(scope="module")
def booted(docker_daemon, runcvm, test_images):
    """(docker CLI, {runtime: container}): systemd with Docker under RunCVM, and the systemd image
    (the same without Docker, which a runc container could not run) under runc, both up."""
    docker = DockerResources(docker_daemon, owner=f"init-{uuid.uuid4().hex[:8]}")
    names = {}
    vm_options = ("-m", "2g", "-p", "127.0.0.1::8080", "-e", "RUNCVM_QEMU_DISPLAY=vnc", "-p", "127.0.0.1::5900")
    for runtime, options, image in ((runcvm, vm_options, "systemd-docker"),
                                    ("runc", RUNC_OPTIONS, "systemd")):
        names[runtime] = f"{docker.owner}-{runtime}"
        docker.cli("run", "-d", f"--runtime={runtime}", "--name", names[runtime], *options, test_images[image])
    for name in names.values():
        wait_for(lambda name=name: system_state(docker, name, BOOT_BOUND), BOOT_BOUND, 2,
                 f"systemd in {name} to answer")
    yield docker, names
    docker.remove_all()


def test_systemd_is_the_vms_own_init_and_knows_it_is_in_a_vm(booted, runcvm):
    docker, names = booted
    vm = names[runcvm]
    state = system_state(docker, vm, BOOT_BOUND)
    assert state == b"running", docker.cli("exec", vm, "systemctl", "--failed", "--no-pager", check=False).stdout
    comms = docker.cli("exec", vm, "cat", "/proc/1/comm", "/proc/2/comm").stdout
    assert comms == b"systemd\nkthreadd\n"  # PID 1 of the VM, not of a namespace: the kernel's threads are there
    assert docker.cli("exec", vm, "systemd-detect-virt").stdout.strip() in (b"qemu", b"kvm")
    assert docker.cli("exec", vm, "systemd-detect-virt", "-c", check=False).stdout.strip() == b"none"
    assert docker.cli("exec", names["runc"], "systemd-detect-virt", "-c", check=False).stdout.strip() == b"docker"


def test_systemds_tools_work_from_docker_exec(booted, runcvm):
    docker, names = booted
    vm = names[runcvm]
    assert docker.cli("exec", vm, "systemctl", "is-active", "hello.socket").stdout == b"active\n"
    assert docker.cli("exec", vm, "journalctl", "-b", "--no-pager", "-q", "-n", "5").stdout.count(b"\n") == 5
    assert docker.cli("exec", vm, "loginctl", "list-sessions", "--no-legend").returncode == 0


def test_a_service_enabled_in_the_image_answers_on_a_published_port(booted, runcvm):
    docker, names = booted
    port = docker.published_port(names[runcvm], "8080/tcp")

    def hello():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
                return connection.makefile("rb").read()
        except OSError:
            return None

    assert wait_for(hello, 60, 1, "the socket-activated service to answer") == b"hello\n"


def read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        assert chunk, f"the VNC server closed the connection after {len(data)} of {size} bytes"
        data += chunk
    return data


def vnc_screen(port: int) -> tuple[int, int, bytes]:
    """(width, height, pixels) of the screen a VNC server on 127.0.0.1:`port` shows, read as a VNC
    client does (RFB 3.8, no authentication, one full update in raw encoding)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        assert read_exactly(connection, 12) == b"RFB 003.008\n"
        connection.sendall(b"RFB 003.008\n")
        (count,) = read_exactly(connection, 1)
        assert 1 in read_exactly(connection, count)  # security type None: no password
        connection.sendall(b"\x01")
        assert read_exactly(connection, 4) == b"\0\0\0\0"
        connection.sendall(b"\x01")  # ClientInit: shared
        # ServerInit: the size, a 16-byte pixel format (bits per pixel first), the name.
        width, height, bits_per_pixel = struct.unpack(">HHB", read_exactly(connection, 5))
        (name_length,) = struct.unpack(">I", read_exactly(connection, 19)[-4:])
        read_exactly(connection, name_length)
        connection.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # FramebufferUpdateRequest
        pixels = b""
        while len(pixels) < width * height * bits_per_pixel // 8:
            kind, (rectangles,) = read_exactly(connection, 2)[0], struct.unpack(">H", read_exactly(connection, 2))
            assert kind == 0, f"message type {kind} instead of a framebuffer update"
            for _rectangle in range(rectangles):
                _x, _y, rect_width, rect_height, encoding = struct.unpack(">HHHHi", read_exactly(connection, 12))
                assert encoding == 0, f"encoding {encoding} instead of raw"
                pixels += read_exactly(connection, rect_width * rect_height * bits_per_pixel // 8)
        return width, height, pixels


def test_the_vms_screen_shows_over_vnc_on_a_published_port(booted, runcvm):
    """RUNCVM_QEMU_DISPLAY=vnc: a VNC client on the host sees the VM's text console, where the
    workload writes."""
    docker, names = booted
    vm = names[runcvm]
    port = docker.published_port(vm, "5900/tcp")
    # Cleared, with no cursor: nothing on the screen.
    docker.cli("exec", vm, "sh", "-c", "printf '\\033[?25l\\033[2J' > /dev/tty1")
    width, height, pixels = vnc_screen(port)
    assert (width, height) == (720, 400), "the VGA text mode's 80x25 characters of 9x16 pixels"
    assert len(set(pixels)) == 1
    docker.cli("exec", vm, "sh", "-c", "printf 'RunCVM %s\\n' $(seq 20) > /dev/tty1")
    assert len(set(vnc_screen(port)[2])) > 1, "the text written to tty1 is not on the screen"


def test_systemd_starts_docker_which_runs_a_container_in_the_vm(booted, runcvm, test_images):
    """The original RunCVM's demo: systemd starts dockerd (its data on a RUNCVM_DISKS disk), and
    dockerd in the VM runs a container; no registry: the image travels in."""
    docker, names = booted
    vm = names[runcvm]
    image = docker.cli("save", test_images["busybox"]).stdout
    docker.cli("exec", "-i", vm, "docker", "load", input=image, timeout=BOOT_BOUND)
    inner = docker.cli("exec", vm, "docker", "run", "--rm", test_images["busybox"], "busybox", "sh", "-c",
                       "echo hello from $(busybox hostname) in a VM; busybox ip -o -4 addr show eth0",
                       timeout=BOOT_BOUND)
    assert inner.stdout.startswith(b"hello from ") and b"scope global eth0" in inner.stdout, inner.stderr
    # modprobe finds the kernel's modules at /lib/modules/<version>, where RunCVM puts them.
    loaded = docker.cli("exec", vm, "sh", "-c", "modprobe -a vxlan wireguard && cut -d' ' -f1 /proc/modules")
    assert {b"vxlan", b"wireguard", b"overlay", b"br_netfilter"} <= set(loaded.stdout.split())


def test_the_agent_outlives_systemd_reexecuting_and_isolating(booted, runcvm):
    """RunCVM's agent is no unit: systemd re-executing itself or isolating a target leaves it be."""
    docker, names = booted
    vm = names[runcvm]
    docker.cli("exec", vm, "systemctl", "daemon-reexec")
    docker.cli("exec", vm, "systemctl", "isolate", "multi-user.target", timeout=BOOT_BOUND)
    assert docker.cli("exec", vm, "cat", "/proc/1/comm").stdout == b"systemd\n"
    assert system_state(docker, vm, BOOT_BOUND) == b"running"


def test_docker_stop_powers_the_vm_off_and_ends_as_under_runc(booted, runcvm):
    """The image's STOPSIGNAL (SIGRTMIN+3, systemd's halt) becomes a power-off of the VM."""
    docker, names = booted
    statuses = {}
    for runtime, name in names.items():
        docker.cli("stop", "-t", str(STOP_TIMEOUT), name, timeout=STOP_TIMEOUT + 60)
        statuses[runtime] = int(docker.cli("inspect", "-f", "{{.State.ExitCode}}", name).stdout)
    assert statuses == {runcvm: 0, "runc": 0}, docker.cli("logs", names[runcvm], check=False).stderr


def test_busybox_init_owns_the_vm_when_asked_and_powers_it_off_on_stop(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-busybox-init"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name, "-e", "RUNCVM_INIT_SYSTEM=busybox",
                   test_images["busybox"], "busybox", "init")
    try:
        processes = wait_for(lambda: docker_cli.cli("exec", name, "busybox", "ps", "-o", "pid,comm", check=False,
                                                    timeout=BOOT_BOUND).stdout, BOOT_BOUND, 2, "the VM to take execs")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{what_the_vm_said(docker_cli, name)}") from error
    assert b"    1 busybox\n    2 kthreadd\n" in processes
    docker_cli.cli("stop", "-t", str(STOP_TIMEOUT), name, timeout=STOP_TIMEOUT + 60)
    assert docker_cli.cli("inspect", "-f", "{{.State.ExitCode}}", name).stdout == b"0\n"
