# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection; no Ansible imports here.
"""The runtime's entry in dockerd's daemon.json, merged into whatever else the file holds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import typing as t

DAEMON_JSON = "/etc/docker/daemon.json"
DOCKERD_PIDFILE = "/var/run/docker.pid"
# Names dockerd itself owns.
RESERVED = ("runc", "io.containerd.runc.v2", "io.containerd.runtime.v1.linux")


class DaemonJsonError(Exception):
    pass


def load(text: str | None, path: str = DAEMON_JSON) -> dict[str, t.Any]:
    if text is None or not text.strip():
        return {}
    try:
        config = json.loads(text)
    except ValueError as error:
        raise DaemonJsonError(f"{path} is not valid JSON ({error}); fix it by hand, it was left untouched") from error
    if not isinstance(config, dict):
        raise DaemonJsonError(f"{path} holds a JSON {type(config).__name__}, not an object; it was left untouched")
    return config


def with_runtime(config: dict[str, t.Any], name: str, path: str | None, source: str = DAEMON_JSON,
                 args: list[str] | None = None) -> dict[str, t.Any]:
    """`config` (read from `source`) with runtime `name` registered at `path`, or removed when
    `path` is None; every other key and runtime kept as it was. `args` become the runtime's
    `runtimeArgs` (none: the key goes); None keeps what the entry has."""
    if name in RESERVED:
        raise DaemonJsonError(f"the runtime name {name} belongs to dockerd; choose another name")
    updated = json.loads(json.dumps(config))
    runtimes = updated.get("runtimes") or {}
    entry = runtimes.get(name) if isinstance(runtimes, dict) else None
    if not isinstance(runtimes, dict) or not isinstance(entry or {}, dict):
        where = "runtimes" if not isinstance(runtimes, dict) else f"runtimes.{name}"
        raise DaemonJsonError(f"{source}: {where} is not a JSON object, as dockerd requires; fix it by hand, it was "
                              "left untouched")
    runtimes = dict(runtimes)
    if path is None:
        runtimes.pop(name, None)
    else:
        runtimes[name] = {**(runtimes.get(name) or {}), "path": path}
        if args is not None:
            runtimes[name].pop("runtimeArgs", None)
            runtimes[name].update({"runtimeArgs": list(args)} if args else {})
    if runtimes:
        updated["runtimes"] = runtimes
    else:
        updated.pop("runtimes", None)
    return updated


def render(config: dict[str, t.Any]) -> str:
    return json.dumps(config, indent=2) + "\n"


def reload_dockerd(pidfile: str = DOCKERD_PIDFILE, proc: str = "/proc") -> bool:
    """Ask a running dockerd to reread daemon.json (SIGHUP: running containers are untouched).
    False when no dockerd is running (it reads the file when it starts), and when the pid file
    names a process that is not dockerd (a stale file): that one is left alone."""
    try:
        with open(pidfile, encoding="ascii") as handle:
            pid = int(handle.read().strip())
        with open(f"{proc}/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            if handle.read().strip() != "dockerd":
                return False
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return False
    return True


def wait_for_runtime(name: str, present: bool, timeout: float = 15) -> bool:
    """Whether `docker info` lists runtime `name` (or no longer does) within `timeout`; true when
    there is no docker client to ask."""
    if shutil.which("docker") is None:
        return True
    deadline = time.monotonic() + timeout
    while True:
        completed = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True,
                                   text=True, check=False)
        if completed.returncode == 0 and (name in json.loads(completed.stdout or "{}")) == present:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
