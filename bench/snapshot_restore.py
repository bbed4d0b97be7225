"""A warm start's restore alone: a VM restored from a snapshot onto another root filesystem,
against a cold boot of the same VM and against runc, in one run, with the payload's own QEMU and
virtiofsd, as root on the host, outside Docker (RUNCVM_WARM_START's mechanism, without Docker,
the runtime and the launcher around it).

    .venv/bin/python bench/snapshot_restore.py [--runs N] [--image IMAGE]

A template VM boots with the payload alone as its root filesystem, until a small init has started
the payload's Python and imported RunCVM's guest init (what a template holds before anything of an
image is touched). QEMU saves it to a file: `migrate` to `file:`, virtiofsd's state included.
Each run restores that file into a new QEMU whose virtiofsd serves IMAGE's filesystem instead
(exported by docker): the guest finds the image's root where the payload's was, runs the image's
/bin/true and powers off. The same init also boots cold on IMAGE's root. The VMs have RunCVM's
devices and kernel command line, but no NIC.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from qemu.qmp.legacy import QEMUMonitorProtocol

PAYLOAD = pathlib.Path("/opt/runcvm")
LOADER = PAYLOAD / "lib" / "ld-linux-x86-64.so.2"
KERNEL = PAYLOAD / "kernels" / "debian" / "latest"
GUEST_PAYLOAD = ".runcvm/guest"  # where the guest finds the payload, as in a RunCVM container
INIT = "runcvm-bench-init"
GO = "runcvm-bench-go"           # only in the image's root: the template waits until it is there
READY, DONE = "runcvm-bench: ready", "runcvm-bench: true exited 0"
BOUND = 120                      # seconds any VM may take, generous under TCG
GUEST_INIT = f"""#!/{GUEST_PAYLOAD}/bin/python3 -IS
import os, sys, time
sys.path[:0] = ["/{GUEST_PAYLOAD}/runtime", "/{GUEST_PAYLOAD}/lib/python3/dist-packages"]
import runcvm.guest.init
print("{READY}", flush=True)
while not os.path.exists("/{GO}"):
    time.sleep(0.01)
pid = os.posix_spawn("/bin/true", ["/bin/true"], {{}})
print("runcvm-bench: true exited", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
os.execv("/{GUEST_PAYLOAD}/bin/busybox", ["busybox", "poweroff", "-f"])
"""


class Vm:
    """virtiofsd serving `root`, and QEMU booting from it (or waiting for a saved state)."""

    def __init__(self, work: pathlib.Path, name: str, root: pathlib.Path, incoming: bool = False):
        self.console = work / f"{name}.console"
        self.qmp = work / f"{name}.qmp"
        virtiofs = work / f"{name}.virtiofs"
        for path in (self.console, self.qmp, virtiofs):
            path.unlink(missing_ok=True)
        self.started = time.monotonic()
        self.virtiofsd = subprocess.Popen([LOADER, PAYLOAD / "bin" / "virtiofsd", f"--socket-path={virtiofs}",
                                           f"--shared-dir={root}", "--sandbox=chroot", "--announce-submounts",
                                           "--cache=auto", "--log-level=error"])
        _wait_for(virtiofs.exists, "virtiofsd's socket")
        self.qemu = subprocess.Popen([
            LOADER, PAYLOAD / "bin" / "qemu-system-x86_64", "-L", PAYLOAD / "share" / "qemu",
            "-M", "q35", "-accel", "tcg,tb-size=64", "-cpu", "max", "-m", "512M", "-smp", "2",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-numa", "node,memdev=mem",
            "-chardev", f"socket,id=rootfs,path={virtiofs}", "-device", "vhost-user-fs-pci,chardev=rootfs,tag=runcvmfs",
            "-device", "virtio-serial-pci,id=ports", "-chardev", f"socket,id=agent,path={work / name}.agent,server=on,wait=off",
            "-device", "virtserialport,bus=ports.0,chardev=agent,name=org.runcvm.agent",
            "-device", "virtio-rng-pci", "-device", "virtio-balloon-pci,id=balloon",
            *[argument for index in range(5)
              for argument in ("-device", f"pcie-root-port,id=nicport{index},chassis={index + 1},io-reserve=0")],
            "-serial", f"file:{self.console}", "-qmp", f"unix:{self.qmp},server=on,wait=off",
            "-kernel", KERNEL / "vmlinux", "-initrd", KERNEL / "initrd",
            "-append", f"console=ttyS0 rootfstype=virtiofs root=runcvmfs noresume net.ifnames=1 rw init=/{INIT} "
                       "panic=-1 apparmor=0 quiet loglevel=0",
            *(["-incoming", "defer"] if incoming else [])])

    def said(self, words: str) -> bool:
        return self.console.exists() and words in self.console.read_text(errors="replace")

    def monitor(self) -> QEMUMonitorProtocol:
        _wait_for(self.qmp.exists, "QEMU's monitor")
        monitor = QEMUMonitorProtocol(str(self.qmp))
        monitor.connect()
        return monitor

    def wait(self) -> float:
        """Seconds from start until QEMU has exited (the guest powered off)."""
        self.qemu.wait(BOUND)
        elapsed = time.monotonic() - self.started
        self.virtiofsd.wait(BOUND)
        if not self.said(DONE):
            raise SystemExit(f"the VM did not run /bin/true; its console:\n{self.console.read_text(errors='replace')}")
        return elapsed

    def kill(self) -> None:
        for process in (self.qemu, self.virtiofsd):
            if process.poll() is None:
                process.kill()
                process.wait()


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {what} after {BOUND} s")
        time.sleep(0.005)


def _migration(monitor: QEMUMonitorProtocol) -> None:
    def ended() -> bool:
        status = monitor.cmd("query-migrate")
        if status.get("status") in ("failed", "cancelled"):
            raise SystemExit(f"migration {status['status']}: {status.get('error-desc')}")
        return status.get("status") == "completed"
    _wait_for(ended, "completed migration")


def make_roots(work: pathlib.Path, image: str) -> tuple[pathlib.Path, pathlib.Path]:
    """The template's root (the payload, and what the initramfs moves in) and IMAGE's root."""
    template, image_root = work / "template", work / "image"
    for directory in ("dev", "proc", "sys"):
        (template / directory).mkdir(parents=True)
    image_root.mkdir()
    container = subprocess.run(["docker", "create", image], capture_output=True, text=True, check=True).stdout.strip()
    try:
        with subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE) as export:
            subprocess.run(["tar", "-C", image_root, "-xf", "-"], stdin=export.stdout, check=True)
    finally:
        subprocess.run(["docker", "rm", container], capture_output=True, check=True)
    for root in (template, image_root):
        (root / GUEST_PAYLOAD).mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", "-o", "ro", PAYLOAD, root / GUEST_PAYLOAD], check=True)
        (root / INIT).write_text(GUEST_INIT, encoding="utf-8")
        (root / INIT).chmod(0o755)
    (image_root / GO).touch()
    return template, image_root


def save_template(work: pathlib.Path, template: pathlib.Path) -> tuple[pathlib.Path, float]:
    """The template's saved state, and the seconds saving it took."""
    state = work / "template.state"
    vm = Vm(work, "template", template)
    try:
        _wait_for(lambda: vm.said(READY), "template VM ready")
        monitor = vm.monitor()
        started = time.monotonic()
        monitor.cmd("stop")
        monitor.cmd("migrate", uri=f"file:{state}")
        _migration(monitor)
        saved = time.monotonic() - started
        monitor.close()
    finally:
        vm.kill()
    return state, saved


def restored(work: pathlib.Path, image_root: pathlib.Path, state: pathlib.Path) -> tuple[float, float]:
    """Seconds until the state is loaded, and until the guest has run /bin/true and powered off."""
    vm = Vm(work, "restored", image_root, incoming=True)
    try:
        monitor = vm.monitor()
        monitor.cmd("migrate-incoming", uri=f"file:{state}")
        _migration(monitor)
        loaded = time.monotonic() - vm.started
        monitor.cmd("cont")
        monitor.close()
        return loaded, vm.wait()
    finally:
        vm.kill()


def cold(work: pathlib.Path, image_root: pathlib.Path) -> float:
    vm = Vm(work, "cold", image_root)
    try:
        return vm.wait()
    finally:
        vm.kill()


def runc(image: str) -> float:
    started = time.monotonic()
    subprocess.run(["docker", "run", "--rm", "--runtime=runc", image, "true"], check=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="runcvm-test/debian:bookworm")
    args = parser.parse_args()
    if os.environ.get("RUNCVM_BENCH_NAMESPACE") != "1":
        # A mount namespace of its own: the payload's bind mounts go with the script.
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable, *sys.argv],
                   {**os.environ, "RUNCVM_BENCH_NAMESPACE": "1"})
    work = pathlib.Path(tempfile.mkdtemp(prefix="runcvm-bench-"))
    try:
        template, image_root = make_roots(work, args.image)
        state, saved = save_template(work, template)
        figures: dict[str, list[float]] = {"runc": [], "cold": [], "loaded": [], "restored": []}
        for _run in range(args.runs):  # interleaved, so all see the same machine load
            figures["runc"].append(runc(args.image))
            figures["cold"].append(cold(work, image_root))
            loaded, total = restored(work, image_root, state)
            figures["loaded"].append(loaded)
            figures["restored"].append(total)
        median = {name: statistics.median(values) for name, values in figures.items()}
        print(f"snapshot restore onto {args.image}'s root, median of {args.runs} runs each")
        print(f"  template saved in {saved:.2f} s: {state.stat().st_size / 2**20:.0f} MiB, which each restore copies")
        print(f"  runc                      {median['runc']:6.2f} s")
        print(f"  cold boot to /bin/true    {median['cold']:6.2f} s   ({median['cold'] / median['runc']:.1f} x runc)")
        print(f"  restored, to /bin/true    {median['restored']:6.2f} s   ({median['restored'] / median['runc']:.1f} x runc),"
              f" of which loading the state {median['loaded']:.2f} s")
    finally:
        for root in ("template", "image"):
            subprocess.run(["umount", work / root / GUEST_PAYLOAD], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
