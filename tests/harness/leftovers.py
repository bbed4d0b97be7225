"""What RunCVM could leave behind on the host, taken before and after a test: its processes,
network links, mounts, containerd's and dockerd's run files, and dockerd's memory."""

from __future__ import annotations

import dataclasses
import os
import pathlib

from harness.netns import snapshot as network_snapshot

# Processes that belong to a RunCVM container: the launcher (the payload's Python), QEMU, virtiofsd.
RUNCVM_PROCESSES = ("/.runcvm/guest/", "qemu-system-x86_64", "virtiofsd")
# Not /run/docker/netns: dockerd unmounts a container's namespace there when the container goes
# (the mount table shows a leak), but deletes the empty file only in a collection about once a
# minute, under runc as well.
RUN_DIRECTORIES = ("/run/containerd/io.containerd.runtime.v2.task/moby", "/run/docker/containerd")


@dataclasses.dataclass(frozen=True)
class HostState:
    processes: tuple[str, ...]
    network: dict
    mounts: tuple[str, ...]
    run_files: tuple[str, ...]
    dockerd_rss_kib: int

    def leftovers(self, before: HostState) -> dict[str, object]:
        """What is here now and was not `before` (dockerd's memory is judged by the caller)."""
        found = {
            "processes": sorted(set(self.processes) - set(before.processes)),
            "mounts": sorted(set(self.mounts) - set(before.mounts)),
            "run files": sorted(set(self.run_files) - set(before.run_files)),
        }
        for key in ("links", "addresses", "routes"):
            found[f"host {key}"] = sorted(set(self.network[key]) - set(before.network[key]))
        return {what: items for what, items in found.items() if items}


def _command_lines() -> dict[int, str]:
    lines = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return lines


def runcvm_processes() -> tuple[str, ...]:
    return tuple(sorted(f"{pid} {line[:120]}" for pid, line in _command_lines().items()
                        if any(marker in line for marker in RUNCVM_PROCESSES)))


def dockerd_rss_kib() -> int:
    for pid, line in _command_lines().items():
        if line.split(" ", 1)[0].endswith("dockerd"):
            for field in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
                if field.startswith("VmRSS:"):
                    return int(field.split()[1])
    return 0


def take() -> HostState:
    mounts = tuple(line.split()[4] for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines())
    run_files = tuple(sorted(str(path) for directory in RUN_DIRECTORIES if os.path.isdir(directory)
                             for path in pathlib.Path(directory).iterdir()))
    return HostState(runcvm_processes(), network_snapshot(), mounts, run_files, dockerd_rss_kib())
