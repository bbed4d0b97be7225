"""RUNCVM_WARM_START: a container's VM restored from a template, a VM saved once booted.

The first container that wants a template of its kind (qemu.template_key: memory, vCPUs, NICs,
devices, kernel and its command line, payload) boots one before its own VM. virtiofsd serves that
VM a root of the payload, RunCVM's state and empty mount points (layout.TEMPLATE_ROOT), at the
paths the container's VM has them, and nothing of the image: RunCVM's guest init, told it is a
template on the kernel's command line (layout.TEMPLATE_ARGUMENT), prepares what VMs restored from
it would do first, says so on the console and waits for a config (guest/init.py). QEMU saves the
VM to a file (`migrate` to `file:`, virtiofsd's state with it) in the host's template directory,
which every container with the option mounts.

A container then starts QEMU from that file (`-incoming`) with virtiofsd serving its image;
QEMU runs the VM once loaded (qemu.TEMPLATE_SAVING), and exits if it cannot load it. The guest
finds the config it waited for, reseeds its random number generator, sets its clock and MACs,
and goes on as after a cold boot. The kernel, the guest init's Python and its imports are
skipped: seconds under TCG.

Only making a template talks to QEMU's monitor: its client (qemu.qmp: asyncio, logging) takes
65 ms to import and 3 to 4 MiB that the launcher would hold for the VM's whole life, so the
launcher imports it (and tempfile) only then.
"""

from __future__ import annotations

import os
import time
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout
from runcvm.launcher import qemu
from runcvm.launcher.supervisor import ChildFailed, Children, remove

if t.TYPE_CHECKING:
    from qemu.qmp.legacy import QEMUMonitorProtocol

# How long the template VM may take to boot, and QEMU to save it, under TCG on a busy host.
BOOT_BOUND = 300
SAVE_BOUND = 120
# The host's templates together; the least recently used go first.
CAP_BYTES = 1024 * 2**20
SUFFIX, PARTIAL = ".vm", ".partial"
# A template still being written after this long belongs to a launcher that died.
ABANDONED_SECONDS = 3600


class TemplateError(Exception):
    pass


def unfit(vm: qemu.Vm) -> str | None:
    """Why no template can serve `vm`, if none can."""
    if vm.disks:
        return "RUNCVM_DISKS: the guest's kernel reads its disks while it boots"
    if not os.path.exists(os.path.join(os.path.dirname(vm.kernel), "manifest.json")):
        return "the kernel is the image's own, which RunCVM has no manifest of"
    return None


def path_for(key: str) -> str:
    return os.path.join(layout.TEMPLATES_DIR, key + SUFFIX)


def make(vm: qemu.Vm, shares: tuple[qemu.Share, ...], path: str) -> None:
    """Boot `vm` as a template, on the root its virtiofsd `shares` serve, and save it at `path`; the
    sockets are the container's own, which its VM makes anew once this one is gone. What QEMU
    and virtiofsd say goes to a file, not to the container's stderr, which is the workload's:
    its last lines are part of the error if making the template fails."""
    # pylint: disable=import-outside-toplevel,redefined-outer-name  # the module's docstring
    import tempfile

    from qemu.qmp import QMPError
    from qemu.qmp.legacy import QEMUMonitorProtocol
    children = Children()
    partial = f"{path}.{os.urandom(4).hex()}{PARTIAL}"  # every launcher is PID 1 of its own container
    for mount_point in ("dev", "proc", "sys"):  # where the initramfs moves the guest's own
        os.makedirs(os.path.join(layout.TEMPLATE_ROOT, mount_point), exist_ok=True)
    with tempfile.TemporaryFile(dir=layout.RUN_DIR) as helpers_said:
        try:
            for share in shares:
                children.start(share.name, list(share.command), share.socket, stderr=helpers_said)
            children.start("qemu", qemu.command(vm, template=True), layout.QMP_SOCKET, stderr=helpers_said)
            _wait(lambda: _ready(vm.console) or children.check(), BOOT_BOUND, "the template VM to boot")
            monitor = QEMUMonitorProtocol(layout.QMP_SOCKET)
            monitor.connect()
            try:
                monitor.cmd("stop")
                monitor.cmd("migrate", uri=f"file:{partial}")
                _wait(lambda: _saved(monitor), SAVE_BOUND, "QEMU to save the template VM")
            finally:
                _close(monitor)
            os.rename(partial, path)
        except ChildFailed as error:
            raise TemplateError(f"{error}, saying: {_last_lines(helpers_said)}") from error
        except (QMPError, EOFError) as error:
            raise TemplateError(f"QEMU's monitor: {error!r}") from error
        finally:
            children.kill()
            remove(partial, *(share.socket for share in shares), layout.AGENT_SOCKET, layout.QMP_SOCKET,
                   layout.UPDATE_QMP_SOCKET)
    trim()


class Template:
    """A saved template, for the container's QEMU to restore (qemu.command's `incoming`)."""

    def __init__(self, path: str):
        self.path = path
        os.utime(path)  # just used, for trim

    def discard(self) -> None:
        """After a failed restore: the next container makes it anew."""
        discard(self.path)


def discard(path: str) -> None:
    """Remove a template that could not be restored; the next container makes it anew."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def trim(cap: int = CAP_BYTES) -> None:
    """Remove the least recently used templates until the rest take at most `cap` bytes, and
    the abandoned halves of others."""
    entries = []
    for name in os.listdir(layout.TEMPLATES_DIR):
        status = os.stat(os.path.join(layout.TEMPLATES_DIR, name))
        if name.endswith(SUFFIX):
            entries.append((status.st_mtime, status.st_blocks * 512, name))  # sparse: what it takes on disk
        elif name.endswith(PARTIAL) and time.time() - status.st_mtime > ABANDONED_SECONDS:
            discard(os.path.join(layout.TEMPLATES_DIR, name))
    total = sum(size for _used, size, _name in entries)
    for _used, size, name in sorted(entries):
        if total <= cap:
            break
        discard(os.path.join(layout.TEMPLATES_DIR, name))
        total -= size


def _close(monitor: QEMUMonitorProtocol) -> None:
    """Let go of QEMU's monitor; a QEMU that has exited leaves nothing to close."""
    from qemu.qmp import QMPError  # pylint: disable=import-outside-toplevel,redefined-outer-name
    try:
        monitor.close()
    except (QMPError, EOFError, OSError):
        pass


def _last_lines(said: t.BinaryIO, count: int = 5) -> str:
    said.seek(0)
    return " / ".join(said.read().decode(errors="replace").strip().splitlines()[-count:]) or "nothing"


def _ready(console: str) -> bool:
    try:
        with open(console, encoding="utf-8", errors="replace") as handle:
            return layout.TEMPLATE_READY in handle.read()
    except FileNotFoundError:
        return False


def _saved(monitor: QEMUMonitorProtocol) -> bool:
    status = monitor.cmd("query-migrate")
    if status.get("status") in ("failed", "cancelled"):
        raise TemplateError(f"QEMU could not save the template VM: {status.get('error-desc', status['status'])}")
    return status.get("status") == "completed"


def _wait(done: t.Callable[[], bool | None], bound: float, what: str) -> None:
    deadline = time.monotonic() + bound
    while not done():
        if time.monotonic() > deadline:
            raise TemplateError(f"timed out after {bound} s waiting for {what}")
        time.sleep(0.05)
