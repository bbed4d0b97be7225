# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection; no Ansible imports here.
"""The RunCVM containers a dockerd runs, read through the docker client, and what each one's
helpers take beside its VM, read from /proc."""

from __future__ import annotations

import json
import os
import typing as t

# run(argv) -> (returncode, stdout, stderr), as AnsibleModule.run_command gives.
Runner = t.Callable[[t.List[str]], t.Tuple[int, str, str]]
# What smaps_rollup (KiB) tells apart: the guest's RAM is shared memory (a memfd QEMU and virtiofsd
# both map), the payload's binaries and the kernel image are mapped files (page cache, which every
# VM on the host maps too).
MEMORY_FIELDS = ("Rss", "Pss", "Pss_Shmem", "Pss_File")


def process_tree(pid: int, proc: str = "/proc") -> list[int]:
    """`pid` and its descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in os.listdir(f"{proc}/{current}/task"):
            with open(f"{proc}/{current}/task/{task}/children", encoding="ascii") as handle:
                pending.extend(int(child) for child in handle.read().split())
    return found


def process_memory(pid: int, proc: str = "/proc") -> dict[str, dict[str, int]]:
    """KiB by process of `pid`'s tree, named `comm (pid)`: MEMORY_FIELDS, and the PSS without
    shared memory (for a container's VM: without the guest's RAM)."""
    processes: dict[str, dict[str, int]] = {}
    for member in process_tree(pid, proc):
        with open(f"{proc}/{member}/comm", encoding="utf-8") as handle:
            name = handle.read().strip()
        with open(f"{proc}/{member}/smaps_rollup", encoding="ascii") as handle:
            fields = {line.split(":")[0]: int(line.split()[1]) for line in handle if line.split(":")[0] in MEMORY_FIELDS}
        fields["Pss_without_guest_ram"] = fields["Pss"] - fields.get("Pss_Shmem", 0)
        processes[f"{name} ({member})"] = fields
    return processes


def vm_overhead(pid: int, proc: str = "/proc") -> dict[str, t.Any] | None:
    """What RunCVM's helpers (the launcher, its network follower, QEMU, virtiofsd) of the container
    whose first process is `pid` take beside the guest's RAM, in MiB (PSS): all together, the part
    that maps files, and by helper; None where /proc cannot tell (not root, the container gone)."""
    try:
        return overhead_of(process_memory(pid, proc))
    except (OSError, ValueError, KeyError):
        return None


def overhead_of(processes: dict[str, dict[str, int]]) -> dict[str, t.Any]:
    """vm_overhead of the container's processes as process_memory gives them."""
    by_helper: dict[str, float] = {}
    for name, fields in processes.items():
        helper = name.rsplit(" (", 1)[0]
        by_helper[helper] = by_helper.get(helper, 0) + fields["Pss_without_guest_ram"] / 1024
    return {"pss_mib": round(sum(by_helper.values()), 1),
            "mapped_files_mib": round(sum(fields.get("Pss_File", 0) for fields in processes.values()) / 1024, 1),
            "by_helper": {helper: round(mib, 1) for helper, mib in sorted(by_helper.items())}}


def summarise(inspected: t.Iterable[dict[str, t.Any]], runtime: str,
              overhead: t.Callable[[int], dict[str, t.Any] | None] = vm_overhead) -> list[dict[str, t.Any]]:
    """What a user wants to know of each container `docker inspect` gave that runs under `runtime`,
    with `overhead` of its first process."""
    summaries = []
    for container in inspected:
        host_config = container.get("HostConfig") or {}
        if host_config.get("Runtime") != runtime:
            continue
        config = container.get("Config") or {}
        options = dict(entry.partition("=")[::2] for entry in config.get("Env") or [] if entry.startswith("RUNCVM_"))
        state = container.get("State") or {}
        summaries.append({
            "id": container.get("Id"),
            "name": (container.get("Name") or "").lstrip("/"),
            "image": config.get("Image"),
            "status": state.get("Status"),
            "started_at": state.get("StartedAt"),
            "memory": host_config.get("Memory") or None,
            "nano_cpus": host_config.get("NanoCpus") or None,
            "runcvm_options": options,
            "vm_overhead": overhead(state["Pid"]) if state.get("Pid") else None,
        })
    return sorted(summaries, key=lambda summary: summary["name"])


def running_containers(run: Runner, runtime: str) -> tuple[list[dict[str, t.Any]], str | None]:
    """(the running containers under `runtime`, or [] with the reason dockerd could not be asked)."""
    returncode, stdout, stderr = run(["docker", "ps", "--no-trunc", "--quiet"])
    if returncode != 0:
        return [], f"docker ps failed: {stderr.strip() or stdout.strip()}"
    ids = stdout.split()
    if not ids:
        return [], None
    returncode, stdout, stderr = run(["docker", "inspect", *ids])
    # A container that ended between the two calls makes inspect fail for it alone; the rest print.
    try:
        inspected = json.loads(stdout or "[]")
    except ValueError:
        return [], f"docker inspect printed no JSON: {stderr.strip()}"
    return summarise(inspected, runtime), None
