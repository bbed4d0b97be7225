"""What a failing test shows of a VM: the end of its console, read in its container, and what
each of its container's processes is doing."""

from __future__ import annotations

import os

from harness.resources import DockerResources

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout


def vm_console(resources: DockerResources, container: str, lines: int, timeout: float = 180) -> str:
    """The last `lines` of the VM's console, read in the container (`docker exec ---`)."""
    tail = resources.cli("exec", container, "---", layout.BUSYBOX, "tail", "-n", str(lines), layout.CONSOLE_LOG,
                         check=False, timeout=timeout)
    return (tail.stdout + tail.stderr).decode(errors="replace")


def process_states(resources: DockerResources, container: str) -> str:
    """One line per thread of each of the container's processes: its state, where in the kernel
    it waits, and the CPU seconds it has used (a VM whose QEMU used none never ran its guest)."""
    lines = []
    ticks = os.sysconf("SC_CLK_TCK")
    for comm, pid in resources.processes(container).items():
        for thread in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
            try:
                with open(f"/proc/{pid}/task/{thread}/stat", encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/task/{thread}/wchan", encoding="ascii") as wchan:
                    waiting_in = wchan.read() or "-"
            except OSError:
                continue
            cpu_seconds = (int(fields[11]) + int(fields[12])) / ticks
            lines.append(f"{comm}[{thread}] {fields[0]} {waiting_in} {cpu_seconds:.1f}s")
    return "\n".join(lines)
