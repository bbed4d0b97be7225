"""Load: VMs started together all come up and stop cleanly, and rounds of run and remove leave
the host as they found it, dockerd's memory included."""

from __future__ import annotations

import concurrent.futures
import subprocess

from harness import leftovers
from harness.console import process_states, vm_console
from harness.resources import TEST_LABEL
from harness.waiting import wait_for

DEBIAN = "debian"
CONCURRENT_VMS = 8
ROUNDS, PER_ROUND = 5, 4
BOOT_BOUND = 600
# One `docker run --rm IMAGE true` among PER_ROUND at once on two cores.
RUN_BOUND = 300
# On the console (not stderr): a run that does not end shows how far its VM's boot got.
KERNEL_MESSAGES = "loglevel=7"
# dockerd's resident memory moves with its caches; growth past this over the rounds is a leak.
DOCKERD_GROWTH_KIB = 32 * 1024
# Ends on SIGTERM, and waits without polling: eight VMs under TCG share two cores.
STOPPABLE = 'trap "exit 0" TERM; sleep 3600 & wait'


def test_vms_started_together_all_come_up_and_stop(docker_cli, runcvm, test_images, nothing_left_behind):
    names = [f"{docker_cli.owner}-{index}" for index in range(CONCURRENT_VMS)]
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_VMS) as pool:
        list(pool.map(lambda name: docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name,
                                                  "-e", f"RUNCVM_KERNEL_APPEND={KERNEL_MESSAGES}",
                                                  test_images[DEBIAN], "sh", "-c", STOPPABLE), names))
    for name in names:
        try:
            wait_for(lambda name=name: takes_execs(docker_cli, name), BOOT_BOUND, 2, f"{name} to take execs")
        except AssertionError as error:
            raise AssertionError(what_the_running_vms_show(docker_cli)) from error
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_VMS) as pool:
        stopped = list(pool.map(lambda name: docker_cli.cli("stop", "-t", "30", name, timeout=120), names))
    assert all(result.returncode == 0 for result in stopped)
    statuses = [docker_cli.cli("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() for name in names]
    assert statuses == [b"0"] * CONCURRENT_VMS
    docker_cli.cli("rm", *names)


def takes_execs(docker_cli, name: str) -> bool:
    """Whether `docker exec` reaches container `name`'s VM; fails at once, with its last output,
    if the container ended (no exec can reach it any more)."""
    if docker_cli.cli("exec", name, "true", check=False).returncode == 0:
        return True
    state = docker_cli.cli("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", name).stdout
    if not state.startswith(b"running"):
        logs = docker_cli.cli("logs", "--tail", "80", name, check=False)
        raise AssertionError(f"{name} ended ({state.decode().strip()}); its output:\n"
                             f"{(logs.stdout + logs.stderr).decode(errors='replace')}")
    return False


def what_the_running_vms_show(docker_cli) -> str:
    """For a failure: of each of the test's containers still running, the end of its VM's
    console (the kernel's messages included) and what its processes' threads are doing."""
    ids = docker_cli.cli("ps", "--quiet", "--filter", f"label={TEST_LABEL}={docker_cli.owner}", check=False).stdout
    return "\n".join(f"{container}:\n{vm_console(docker_cli, container, 60, timeout=60)}\n"
                     f"{process_states(docker_cli, container)}" for container in ids.decode().split())


def test_rounds_of_run_and_remove_leave_nothing_and_no_growth(docker_cli, runcvm, test_images, nothing_left_behind):
    def one_run(_number: int) -> tuple[int, str]:
        try:
            run = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", "-e", f"RUNCVM_KERNEL_APPEND={KERNEL_MESSAGES}",
                                 test_images[DEBIAN], "true", check=False, timeout=RUN_BOUND)
        except subprocess.TimeoutExpired as timeout:
            return -1, f"no end after {RUN_BOUND} s; stderr: {timeout.stderr!r}"
        return run.returncode, run.stderr.decode(errors="replace") if run.returncode else ""

    def round_of_runs() -> list[tuple[int, str]]:
        """(exit status, stderr) of each run; a failed one's words, and the consoles of the VMs
        still running, show in the assertion."""
        with concurrent.futures.ThreadPoolExecutor(PER_ROUND) as pool:
            runs = list(pool.map(one_run, range(PER_ROUND)))
        if any(status == -1 for status, _words in runs):
            runs.append((-1, what_the_running_vms_show(docker_cli)))
        return runs

    assert round_of_runs() == [(0, "")] * PER_ROUND  # the first round warms dockerd's caches
    first = leftovers.take()
    for _round in range(ROUNDS - 1):
        assert round_of_runs() == [(0, "")] * PER_ROUND
    last = leftovers.take()
    assert last.leftovers(first) == {}
    assert last.dockerd_rss_kib - first.dockerd_rss_kib < DOCKERD_GROWTH_KIB
