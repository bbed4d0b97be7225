"""Load: VMs started together all come up and stop cleanly, and rounds of run and remove leave
the host as they found it, dockerd's memory included."""

from __future__ import annotations

import concurrent.futures

from harness import leftovers
from harness.waiting import wait_for

DEBIAN = "debian"
CONCURRENT_VMS = 8
ROUNDS, PER_ROUND = 5, 4
BOOT_BOUND = 600
# dockerd's resident memory moves with its caches; growth past this over the rounds is a leak.
DOCKERD_GROWTH_KIB = 32 * 1024
# Ends on SIGTERM, and waits without polling: eight VMs under TCG share two cores.
STOPPABLE = 'trap "exit 0" TERM; sleep 3600 & wait'


def test_vms_started_together_all_come_up_and_stop(docker_cli, runcvm, test_images, nothing_left_behind):
    names = [f"{docker_cli.owner}-{index}" for index in range(CONCURRENT_VMS)]
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_VMS) as pool:
        list(pool.map(lambda name: docker_cli.cli("run", "-d", f"--runtime={runcvm}", "--name", name,
                                                  test_images[DEBIAN], "sh", "-c", STOPPABLE), names))
    for name in names:
        wait_for(lambda name=name: docker_cli.cli("exec", name, "true", check=False).returncode == 0, BOOT_BOUND, 2,
                 f"{name} to take execs")
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_VMS) as pool:
        stopped = list(pool.map(lambda name: docker_cli.cli("stop", "-t", "30", name, timeout=120), names))
    assert all(result.returncode == 0 for result in stopped)
    statuses = [docker_cli.cli("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() for name in names]
    assert statuses == [b"0"] * CONCURRENT_VMS
    docker_cli.cli("rm", *names)


def test_rounds_of_run_and_remove_leave_nothing_and_no_growth(docker_cli, runcvm, test_images, nothing_left_behind):
    def round_of_runs() -> list[tuple[int, str]]:
        """(exit status, stderr) of each run; a failed one's words show in the assertion."""
        with concurrent.futures.ThreadPoolExecutor(PER_ROUND) as pool:
            runs = pool.map(lambda _n: docker_cli.cli("run", "--rm", f"--runtime={runcvm}", test_images[DEBIAN],
                                                      "true", check=False), range(PER_ROUND))
            return [(run.returncode, run.stderr.decode(errors="replace") if run.returncode else "") for run in runs]

    assert round_of_runs() == [(0, "")] * PER_ROUND  # the first round warms dockerd's caches
    first = leftovers.take()
    for _round in range(ROUNDS - 1):
        assert round_of_runs() == [(0, "")] * PER_ROUND
    last = leftovers.take()
    assert last.leftovers(first) == {}
    assert last.dockerd_rss_kib - first.dockerd_rss_kib < DOCKERD_GROWTH_KIB
