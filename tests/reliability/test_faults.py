"""Faults: a helper of the VM killed or stuck, or the container killed while it boots. The container ends
with a status that says what happened, its log says it in words (no Python traceback), and
nothing of RunCVM stays on the host."""

from __future__ import annotations

import os
import signal
import time

import pytest

from harness.dockerd import daemon_option
from harness.waiting import wait_for

DEBIAN = "debian"
# How long a VM may take under TCG to take its first docker exec.
BOOT_BOUND = 180


def started_vm(docker_cli, runcvm, test_images, *command: str, name: str = "vm") -> str:
    name = f"{docker_cli.owner}-{name}"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name, test_images[DEBIAN],
                   *(command or ("sleep", "600")))
    wait_for(lambda: docker_cli.cli("exec", name, "true", check=False).returncode == 0, BOOT_BOUND, 1,
             "the VM to take execs")
    return name


def ended(docker_cli, name: str, timeout: float = 60) -> tuple[int, str]:
    """(exit status, log) once the container has stopped."""
    wait_for(lambda: docker_cli.cli("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == b"false", timeout,
             0.5, f"{name} to stop")
    status = int(docker_cli.cli("inspect", "-f", "{{.State.ExitCode}}", name).stdout)
    logs = docker_cli.cli("logs", name)
    return status, (logs.stdout + logs.stderr).decode(errors="replace")


@pytest.mark.parametrize("victim, process, status, words", [
    ("qemu", "qemu-system-x86", 255, "qemu exited unexpectedly (killed by SIGKILL)"),
    ("virtiofsd", "virtiofsd", 255, "virtiofsd exited unexpectedly (killed by SIGKILL)"),
    ("launcher", "runcvm-launcher", 137, ""),
])
def test_a_helper_killed_ends_the_container_in_words(docker_cli, runcvm, test_images, nothing_left_behind,
                                                     victim, process, status, words):
    name = started_vm(docker_cli, runcvm, test_images)
    os.kill(docker_cli.processes(name)[process], signal.SIGKILL)
    exit_status, log = ended(docker_cli, name)
    assert exit_status == status, log
    assert words in log and "Traceback" not in log and "Exception ignored" not in log, log
    docker_cli.cli("rm", name)


def test_a_qemu_that_aborts_while_the_vm_boots_is_booted_again(docker_cli, runcvm, test_images, nothing_left_behind):
    """What QEMU's own assertion failures under TCG look like (SIGABRT, while the guest's kernel
    maps its devices): the launcher boots the VM once more, and the workload runs once."""
    name = f"{docker_cli.owner}-abort"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name, test_images[DEBIAN], "sh", "-c", "echo ran; exit 7")
    qemu_pid = wait_for(lambda: docker_cli.processes(name).get("qemu-system-x86"), 60, 0.1, "QEMU to start")
    os.kill(qemu_pid, signal.SIGABRT)
    exit_status, log = ended(docker_cli, name, 2 * BOOT_BOUND)
    assert exit_status == 7, log
    assert "qemu aborted while the VM booted; booting it again" in log and log.count("ran") == 1, log
    assert "Traceback" not in log, log
    docker_cli.cli("rm", name)


def test_a_guest_that_stops_making_progress_while_it_boots_is_booted_again(
        docker_cli, runcvm, test_images, nothing_left_behind):
    """What a guest that lost an interrupt under TCG looks like from the host (QEMU idle, the guest
    never up), made here by stopping QEMU once its devices are set up: the launcher boots the VM
    once more, and the workload runs once."""
    name = f"{docker_cli.owner}-stuck"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name, test_images[DEBIAN], "sh", "-c", "echo ran; exit 7")
    qemu_pid = wait_for(lambda: docker_cli.processes(name).get("qemu-system-x86"), 60, 0.1, "QEMU to start")
    wait_for(lambda: os.path.exists(f"/proc/{qemu_pid}/root/run/runcvm/agent.sock"), 60, 0.1, "QEMU's agent socket")
    os.kill(qemu_pid, signal.SIGSTOP)
    exit_status, log = ended(docker_cli, name, 2 * BOOT_BOUND)
    assert exit_status == 7, log
    assert "the VM stopped making progress before it came up" in log and "booting it again" in log, log
    assert log.count("ran") == 1 and "Traceback" not in log, log
    docker_cli.cli("rm", name)


@pytest.mark.parametrize("delay", [0, 1, 3])
def test_docker_kill_while_the_vm_boots(docker_cli, runcvm, test_images, nothing_left_behind, delay):
    name = f"{docker_cli.owner}-boot"
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name, test_images[DEBIAN], "sleep", "600")
    time.sleep(delay)
    docker_cli.cli("kill", name)
    exit_status, log = ended(docker_cli, name)
    assert exit_status == 137, log
    assert "Traceback" not in log and "Exception ignored" not in log, log
    docker_cli.cli("rm", name)


# Ends with 7 on SIGTERM: what a stop by dockerd looks like, told apart from a kill (137).
STOPPABLE = ("sh", "-c", "trap 'exit 7' TERM; while :; do sleep 1; done")


@pytest.mark.parametrize("live_restore", [True, False], ids=["live-restore", "no-live-restore"])
def test_a_dockerd_restart_is_lived_through_as_under_runc(dockerd, docker_cli, runcvm, test_images,
                                                          nothing_left_behind, live_restore):
    """With live-restore the VM runs on through the restart and takes execs and a stop after it;
    without, dockerd stops it with its stop signal on the way down. A runc container beside it
    fares the same."""
    with daemon_option("live-restore", live_restore):
        wait_for(lambda: docker_cli.cli("info", "-f", "{{.LiveRestoreEnabled}}").stdout.strip() ==
                 str(live_restore).lower().encode(), 30, 0.5, "dockerd to take live-restore")
        names = [started_vm(docker_cli, runtime, test_images, *STOPPABLE, name=runtime) for runtime in ("runc", runcvm)]
        dockerd.restart()
        for name in names:
            if live_restore:
                assert docker_cli.cli("exec", name, "echo", "alive").stdout == b"alive\n"
                docker_cli.cli("stop", name)
            exit_status, log = ended(docker_cli, name)
            assert exit_status == 7, (name, log)
            assert "Traceback" not in log, log
            docker_cli.cli("rm", name)
