"""RunCVM under Podman (Debian's podman, conmon, netavark and aardvark-dns): the install role
registers it, and `podman run --runtime runcvm` behaves as `--runtime runc` does, with the
networks, names, published ports, exec and stop that Podman users rely on."""

from __future__ import annotations

import os
import subprocess

from harness.http import fetched
from harness.waiting import wait_for

# Ends on SIGTERM; waits without polling.
STOPPABLE = 'trap "exit 0" TERM; sleep 3600 & wait'
BOOT_BOUND = 300
# What a user compares between runtimes: PID 1 (Podman's --init), user, directory, environment,
# bytes as they are (a NUL), and the exit status; the kernel's release last, which differs.
SAME_COMMAND = ('tr "\\0" " " </proc/1/cmdline; echo; id; pwd; echo "$GREETING"; printf "a\\0b\\n"; '
                'uname -r; exit 3')


def test_the_install_role_registers_runcvm_with_podman_and_converges(podman_role_runs, runcvm):
    first, second = podman_role_runs
    for run in (first, second):
        assert not [task for task in run if task.get("failed")], run
    assert not [task for task in second if task.get("changed")], second
    found = subprocess.run(["podman", "--runtime", runcvm, "info", "--format", "{{.Host.OCIRuntime.Path}}"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == "/opt/runcvm/bin/runcvm-runtime"


def test_podman_run_gives_what_runc_gives_from_a_vm(podman, podman_images, runcvm):
    runs = {runtime: podman.cli("run", "--rm", "--runtime", runtime, "--init", "-e", "GREETING=hello from podman",
                                "-u", "1000:1000", "-w", "/tmp", podman_images["debian"], "sh", "-c", SAME_COMMAND,
                                check=False)
            for runtime in ("runc", runcvm)}
    under_runc, under_runcvm = runs["runc"], runs[runcvm]
    assert (under_runcvm.returncode, under_runc.returncode) == (3, 3), under_runcvm.stderr
    *same_runc, runc_kernel = under_runc.stdout.splitlines()
    *same_runcvm, vm_kernel = under_runcvm.stdout.splitlines()
    assert same_runcvm == same_runc
    assert same_runc[0].startswith(b"/run/podman-init -- sh -c")
    assert runc_kernel.decode() == os.uname().release != vm_kernel.decode()


def test_networks_names_ports_exec_and_stop(podman, podman_images, runcvm):
    network = f"runcvm-podman-{podman.owner}"
    server, client = f"{network}-server", f"{network}-client"
    podman.cli("network", "create", network)
    podman.cli("run", "-d", "--runtime", runcvm, "--name", server, "--network", network, "-p", "127.0.0.1::8080",
               podman_images["python3"], "python3", "-m", "http.server", "8080")
    podman.cli("run", "-d", "--runtime", runcvm, "--name", client, "--network", network,
               podman_images["debian"], "sh", "-c", STOPPABLE)
    for name in (server, client):
        try:
            wait_for(lambda name=name: podman.cli("exec", name, "true", check=False).returncode == 0, BOOT_BOUND, 2,
                     f"{name} to take podman exec")
        except AssertionError as error:
            raise AssertionError(podman.cli("logs", name, check=False).stderr.decode(errors="replace")) from error

    # Each VM finds the other by name through aardvark-dns, Podman's DNS server on the network.
    for name, other in ((client, server), (server, client)):
        found = podman.cli("exec", name, "getent", "hosts", other).stdout.split()
        inspected = podman.cli("inspect", "--format", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}",
                               other).stdout.decode().strip()
        assert found[0].decode() == inspected, found
    # An exec runs in the VM: its kernel is not the host's.
    assert podman.cli("exec", server, "uname", "-r").stdout.decode().strip() != os.uname().release
    port = podman.cli("port", server, "8080/tcp").stdout.decode().split(":")[-1].strip()
    listing = wait_for(lambda: fetched(f"http://127.0.0.1:{port}/", 3), 120, 1, "the published port to answer")
    assert b"Directory listing" in listing

    podman.cli("stop", "--time", "30", client, timeout=120)
    assert podman.cli("inspect", "--format", "{{.State.ExitCode}}", client).stdout.strip() == b"0"
