"""The running VM's memory, resized for `docker update --memory` through QEMU's virtio balloon.

Inflated, the balloon takes memory from the guest (whose MemTotal shrinks by as much) and QEMU
gives those pages back to the host; deflated, it gives them back to the guest. The VM can never
have more than it booted with. The guest gives memory back only while it has some free: a resize
it cannot follow stops moving, and is then undone.
"""

from __future__ import annotations

from qemu.qmp import QMPError
from qemu.qmp.legacy import QEMUMonitorProtocol

MIB = 2**20
# How long the guest may give or take no memory at all before a resize counts as stuck; it moves
# a few MiB at a time and QEMU tells of its progress about once a second.
STALL_SECONDS = 10
# What the guest reports is rounded to its pages.
TOLERANCE = MIB


class BalloonError(Exception):
    pass


class MonitorUnreachable(BalloonError):
    pass


class Balloon:
    def __init__(self, monitor_socket: str):
        """`monitor_socket`: a QEMU monitor of the VM (the runtime's, layout.UPDATE_QMP_SOCKET)."""
        self.monitor = QEMUMonitorProtocol(monitor_socket)
        try:
            self.monitor.connect()
        except QMPError as error:
            raise MonitorUnreachable(f"cannot reach the VM's monitor at {monitor_socket} ({error}): a VM started "
                                     "by an older RunCVM cannot be resized; recreate the container") from error

    def __enter__(self) -> Balloon:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.monitor.close()

    def size_mib(self) -> int:
        """The memory the guest has now."""
        return self._command("query-balloon")["actual"] // MIB

    def _command(self, name: str, **arguments: object) -> dict:
        try:
            return self.monitor.cmd(name, **arguments)
        except QMPError as error:
            raise BalloonError(f"QEMU cannot resize the VM ({error}): its kernel may lack virtio_balloon") from error

    def resize(self, target_mib: int) -> None:
        """Give the guest `target_mib` of memory; BalloonError, with the guest back where it was,
        when it cannot follow."""
        before = self.size_mib()
        if self._moved_to(target_mib):
            return
        reached = self.size_mib()
        self._moved_to(before)
        raise BalloonError(f"the VM could give back only {before - reached} of the {before - target_mib} MiB asked: "
                           f"its workload uses the rest (or its kernel has no virtio_balloon); it keeps {before} MiB")

    def _moved_to(self, target_mib: int) -> bool:
        """Ask for `target_mib` and wait while the guest gets closer; whether it got there."""
        self.monitor.clear_events()
        self._command("balloon", value=target_mib * MIB)
        actual = self.size_mib() * MIB
        while abs(actual - target_mib * MIB) > TOLERANCE:
            try:
                event = self.monitor.pull_event(wait=float(STALL_SECONDS))
            except TimeoutError:
                return False
            if event and event.get("event") == "BALLOON_CHANGE":
                actual = event["data"]["actual"]
        return True
