"""runcvm_defaults, run by ansible as a playbook would: the host's defaults file written, checked,
left alone when the options are bad, removed; and a container given nothing runs with them."""

from __future__ import annotations

import pathlib

import yaml

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import HOST_DEFAULTS_FILE
from harness.playbooks import run_playbook

BOOT_BOUND = 300


def run_defaults(collections_path, tmp_path, *tasks_args: dict, check: bool = False) -> list[dict]:
    """Each result of runcvm_defaults run with each of `tasks_args`, in one play that goes on past failures."""
    tasks = [{"name": f"task {index}", "runcvm.runcvm.runcvm_defaults": args, "ignore_errors": True}
             for index, args in enumerate(tasks_args)]
    playbook = tmp_path / "defaults.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    return run_playbook(collections_path, playbook, *(["--check", "--diff"] if check else []))


def test_defaults_are_written_checked_and_removed(installed_collection, tmp_path):
    path = tmp_path / "etc" / "defaults.env"
    warm = {"path": str(path), "options": {"warm_start": True, "kernel_append": "quiet"}}
    (checked,) = run_defaults(installed_collection, tmp_path, warm, check=True)
    assert checked["changed"] and "RUNCVM_WARM_START=1" in checked["diff"]["after"] and not path.exists()
    first, again, bad, kept = run_defaults(installed_collection, tmp_path, warm, warm,
                                           {"path": str(path), "options": {"accel": "warp"}},
                                           {"path": str(path), "options": {"warm_star": True}})
    assert first["changed"] and first["variables"] == {"RUNCVM_KERNEL_APPEND": "quiet", "RUNCVM_WARM_START": "1"}
    assert path.read_text().splitlines()[1:] == ["RUNCVM_KERNEL_APPEND=quiet", "RUNCVM_WARM_START=1"]
    assert not again["changed"]
    assert bad["failed"] and "accel" in bad["msg"] and "warp" in bad["msg"]
    assert kept["failed"] and "options: unknown option warm_star" in kept["msg"]
    assert path.read_text().splitlines()[1:] == ["RUNCVM_KERNEL_APPEND=quiet", "RUNCVM_WARM_START=1"]
    removed, gone = run_defaults(installed_collection, tmp_path, {"path": str(path), "state": "absent"},
                                 {"path": str(path), "options": {}})
    assert removed["changed"] and not path.exists() and not gone["changed"]


def test_a_container_given_no_option_runs_with_the_hosts_defaults(installed_collection, tmp_path, docker_cli, runcvm,
                                                                  test_images):
    """The runtime reads the file the module writes: a container that sets no RUNCVM_* variable
    prints its timing line, and one that turns timing off keeps quiet."""
    path = pathlib.Path(HOST_DEFAULTS_FILE)
    assert not path.exists(), f"{path} is this host's: the test would overwrite it"
    try:
        (written,) = run_defaults(installed_collection, tmp_path, {"options": {"timing": True}})
        assert written["changed"], written
        given = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", test_images["debian"], "sh", "-c", "echo $RUNCVM_TIMING",
                               timeout=BOOT_BOUND)
        own = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", "-e", "RUNCVM_TIMING=0", test_images["debian"], "true",
                             timeout=BOOT_BOUND)
    finally:
        path.unlink(missing_ok=True)
    assert b"runcvm: timing: " in given.stderr, given.stderr
    assert given.stdout == b"\n"  # the option reaches the runtime, not the workload's environment
    assert b"runcvm: timing: " not in own.stderr, own.stderr
