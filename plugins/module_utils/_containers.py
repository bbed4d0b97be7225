# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection; no Ansible imports here.
"""The RunCVM containers a dockerd runs, read through the docker client."""

from __future__ import annotations

import json
import typing as t

# run(argv) -> (returncode, stdout, stderr), as AnsibleModule.run_command gives.
Runner = t.Callable[[t.List[str]], t.Tuple[int, str, str]]


def summarise(inspected: t.Iterable[dict[str, t.Any]], runtime: str) -> list[dict[str, t.Any]]:
    """What a user wants to know of each container `docker inspect` gave that runs under `runtime`."""
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
