"""Where a process's cgroup files are on the host, whether its cgroups are v1 (Docker's
cgroupfs driver on a hybrid host) or v2: the tests and the benchmarks read a container's limits
and peaks there."""

from __future__ import annotations

import pathlib


def cgroup_file(pid: int, controller: str, v1_file: str, v2_file: str, proc: str = "/proc") -> pathlib.Path:
    """`v1_file` of the cgroup process `pid` is in, in `controller`'s own hierarchy where the
    controller has one (cgroup v1), else `v2_file` of its cgroup v2 cgroup."""
    lines = pathlib.Path(f"{proc}/{pid}/cgroup").read_text(encoding="ascii").splitlines()
    entries = [line.split(":", 2) for line in lines]
    for _id, controllers, path in entries:
        if controller in controllers.split(","):
            return pathlib.Path(f"/sys/fs/cgroup/{controller}{path}/{v1_file}")
    path = next(path for _id, controllers, path in entries if controllers == "")
    return pathlib.Path(f"/sys/fs/cgroup{path}/{v2_file}")
