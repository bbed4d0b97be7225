"""Boots a guest kernel with the payload's QEMU and virtiofsd on this machine, no Docker:
the check that a payload and a kernel can reach an init in a virtiofs root."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import time

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import VIRTIOFS_TAG

LOADER = "lib/ld-linux-x86-64.so.2"
SOCKET_TIMEOUT = 10


@dataclasses.dataclass
class BootResult:
    returncode: int
    console: str
    seconds: float


def payload_command(payload: pathlib.Path, binary: str, *args: str) -> list[str]:
    """A payload binary started on the host, through the payload's own loader."""
    return [str(payload / LOADER), str(payload / "bin" / binary), *args]


def boot(payload: pathlib.Path, kernel_dir: pathlib.Path, root: pathlib.Path | None, init: str,
         workdir: pathlib.Path, timeout: float = 120) -> BootResult:
    """Boot `kernel_dir`'s vmlinuz and initrd under TCG with `root` served with RunCVM's virtiofs
    tag (or no root device at all when `root` is None) and `init` on the command line."""
    socket = workdir / "virtiofsd.sock"
    virtiofsd = None
    qemu = payload_command(
        payload, "qemu-system-x86_64", "-L", str(payload / "share" / "qemu"),
        "-M", "q35", "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
        "-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-numa", "node,memdev=mem",
        "-kernel", str(kernel_dir / "vmlinuz"), "-initrd", str(kernel_dir / "initrd"),
        "-append", f"console=ttyS0 root={VIRTIOFS_TAG} init={init} panic=-1 quiet")
    if root is not None:
        virtiofsd = subprocess.Popen(
            payload_command(payload, "virtiofsd", f"--socket-path={socket}", f"--shared-dir={root}",
                            "--sandbox=none", "--cache=never"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while not socket.exists():
            if time.monotonic() > deadline or virtiofsd.poll() is not None:
                virtiofsd.kill()
                raise RuntimeError("virtiofsd did not create its socket")
            time.sleep(0.05)
        qemu += ["-chardev", f"socket,id=vfs,path={socket}",
                 "-device", f"vhost-user-fs-pci,chardev=vfs,tag={VIRTIOFS_TAG}"]
    started = time.monotonic()
    try:
        completed = subprocess.run(qemu, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                                   check=False)
    finally:
        if virtiofsd is not None:
            virtiofsd.kill()
            virtiofsd.wait()
    return BootResult(completed.returncode, completed.stdout.decode(errors="replace"), time.monotonic() - started)
