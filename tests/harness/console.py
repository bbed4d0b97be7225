"""What a failing test shows of a VM: the end of its console, read in its container."""

from __future__ import annotations

from harness.resources import DockerResources

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout


def vm_console(resources: DockerResources, container: str, lines: int, timeout: float = 180) -> str:
    """The last `lines` of the VM's console, read in the container (`docker exec ---`)."""
    tail = resources.cli("exec", container, "---", layout.BUSYBOX, "tail", "-n", str(lines), layout.CONSOLE_LOG,
                         check=False, timeout=timeout)
    return (tail.stdout + tail.stderr).decode(errors="replace")
