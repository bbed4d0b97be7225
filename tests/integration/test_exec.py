"""`docker exec` into a RunCVM container runs in the VM and behaves as it does under runc.

One RunCVM container and its runc twin serve most tests: booting a VM per test would cost more
than every test together."""

from __future__ import annotations

import concurrent.futures
import fcntl
import os
import pty
import struct
import subprocess
import termios
import time
import uuid

import pytest

from harness.resources import DockerResources
from harness.terminal import read_until
from harness.waiting import wait_for

WORKLOAD = 'trap "exit 0" TERM; while true; do sleep 0.2; done'


@pytest.fixture(scope="module")
def pair(docker_daemon, runcvm, test_images):
    """(docker CLI, RunCVM container, runc container), both started with the same options."""
    resources = DockerResources(docker_daemon, owner=f"exec-{uuid.uuid4().hex[:8]}")
    names = {}
    for runtime in (runcvm, "runc"):
        names[runtime] = f"{resources.owner}-{runtime}"
        resources.cli("run", "-d", f"--runtime={runtime}", "--name", names[runtime], "-e", "FOO=run-value",
                      "-w", "/srv", "--hostname", "twin", test_images["debian"], "sh", "-c", WORKLOAD)
    wait_for(lambda: resources.cli("exec", names[runcvm], "true", check=False).returncode == 0, 120, 1,
             "the VM to take execs")
    yield resources, names[runcvm], names["runc"]
    resources.remove_all()


def exec_both(pair, *args, input=None):
    docker, vm, runc = pair
    return (docker.cli("exec", *args[:-1], vm, *args[-1], input=input, check=False),
            docker.cli("exec", *args[:-1], runc, *args[-1], input=input, check=False))


@pytest.mark.parametrize("options, command", [
    ((), ["sh", "-c", "echo out; echo err >&2; exit 3"]),
    ((), ["sh", "-c", "id; pwd; echo $FOO"]),
    (("-u", "1000:1000", "-w", "/tmp", "-e", "FOO=exec-value"), ["sh", "-c", "id; pwd; echo $FOO"]),
    (("-u", "nobody"), ["sh", "-c", 'id; echo "$HOME"']),
    ((), ["sh", "-c", "env | sort"]),
    ((), ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]),
    # The longest argument and variable Linux passes: 128 KiB less the final NUL.
    (("-e", "BIG=" + "v" * (128 * 1024 - 5)), ["sh", "-c", 'echo ${#1} ${#BIG}', "x", "a" * (128 * 1024 - 1)]),
])
def test_exec_is_runcs(pair, options, command):
    vm, runc = exec_both(pair, *options, command)
    assert (vm.returncode, vm.stdout, vm.stderr) == (runc.returncode, runc.stdout, runc.stderr)


def test_env_file_overrides_run_time_variables(pair, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("FOO=from-file\nBAR=2\n")
    vm, runc = exec_both(pair, "--env-file", str(env_file), ["sh", "-c", "echo $FOO $BAR"])
    assert vm.stdout == runc.stdout == b"from-file 2\n"


def test_stdin_and_its_end(pair):
    vm, runc = exec_both(pair, "-i", ["sh", "-c", "cat; echo end"], input=b"line one\nline two")
    assert vm.stdout == runc.stdout == b"line one\nline two" + b"end\n"


def test_detached_exec(pair):
    docker, vm, _runc = pair
    docker.cli("exec", "-d", vm, "sh", "-c", "echo detached > /tmp/detached")
    assert wait_for(lambda: docker.cli("exec", vm, "cat", "/tmp/detached", check=False).stdout, 30, 0.5,
                    "the detached exec") == b"detached\n"


@pytest.mark.parametrize("options, command", [((), ["no-such-command"]), (("-w", "/no/such/dir"), ["true"])])
def test_a_process_that_cannot_start_fails_as_under_runc(pair, options, command):
    vm, runc = exec_both(pair, *options, command)
    assert vm.returncode == runc.returncode == 126
    # runc's words reach the user as a daemon error, which the docker client ends with CRLF.
    assert vm.stdout + vm.stderr == (runc.stdout + runc.stderr).replace(b"\r\n", b"\n")


def test_exec_runs_in_the_vm_and_the_escape_in_the_container(pair):
    docker, vm, _runc = pair
    assert docker.cli("exec", vm, "cat", "/proc/1/cmdline").stdout.startswith(b"sh\0-c\0")
    guest_kernel = docker.cli("exec", vm, "uname", "-r").stdout.decode().strip()
    assert guest_kernel != os.uname().release
    container = docker.cli("exec", vm, "---", "/.runcvm/guest/bin/busybox", "uname", "-r").stdout
    assert container.decode().strip() == os.uname().release


def test_twenty_concurrent_execs(pair):
    docker, vm, _runc = pair

    def one(number):
        return docker.cli("exec", vm, "sh", "-c", f"sleep 0.5; echo {number}").stdout

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        outputs = list(pool.map(one, range(20)))
    assert outputs == [f"{number}\n".encode() for number in range(20)]


def test_no_socket_listens_in_the_vm(pair):
    docker, vm, _runc = pair
    tables = docker.cli("exec", vm, "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 /proc/net/udp").stdout.decode()
    # Column 4 is the state; 0A is LISTEN. UDP sockets are listed only if bound.
    listening = [line for line in tables.splitlines()[1:] if line.split()[3:4] == ["0A"]]
    assert listening == []


def test_an_interactive_exec_with_a_terminal(pair):
    _docker, vm, _runc = pair
    pid, master = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        os.execvp("docker", ["docker", "exec", "-it", vm, "sh"])
    output = read_until(master, b"# ", 60)
    os.write(master, b"tty; stty size; echo $((6*7)); sleep 30\r")
    output += read_until(master, b"42\r\n", 30)
    os.write(master, b"\x03")  # Ctrl-C reaches the sleep in the VM
    output += read_until(master, b"# ", 30)
    os.write(master, b"exit 4\r")
    output += read_until(master, None, 30)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 4
    assert b"/dev/pts/" in output and b"33 101\r\n" in output and b"42\r\n" in output


def test_exec_in_an_image_without_libc(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-busybox"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name, test_images["busybox"], "sleep", "600")
    answer = docker_cli.cli("exec", name, "busybox", "echo", "hi", check=False)
    logs = docker_cli.cli("logs", name)
    assert answer.stdout == b"hi\n", (answer.stderr, logs.stdout, logs.stderr)


def test_stop_with_a_long_exec_running(docker_cli, runcvm, test_images):
    name = docker_cli.owner + "-stop"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name, test_images["debian"], "sh", "-c", WORKLOAD)
    wait_for(lambda: docker_cli.cli("exec", name, "true", check=False).returncode == 0, 120, 1, "execs")
    long_exec = subprocess.Popen(["docker", "exec", name, "sleep", "600"])
    time.sleep(1)
    docker_cli.cli("stop", name)
    # The workload's trap answered the stop (a timeout would have ended it with 137), as under runc.
    status = docker_cli.cli("inspect", "-f", "{{.State.ExitCode}}", name).stdout
    assert status == b"0\n", docker_cli.cli("logs", name).stderr
    assert long_exec.wait(timeout=30) != 0
