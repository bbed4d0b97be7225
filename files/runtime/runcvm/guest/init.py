"""RunCVM's init: PID 1 of the VM.

It mounts what a Linux system needs, gives the VM the container's network, hostname, DNS and
tmpfs mounts, then serves the launcher over the agent port: it runs the workload as PID 1 of a
PID namespace of its own (as runc does, so `echo $$` prints 1 and unhandled signals are
ignored), relays its streams and signals, reports its exit status and powers the VM off.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback

from runcvm import protocol
from runcvm.events import signal_pipe
from runcvm.guest import network, system
from runcvm.guest.session import Session

STATE_DIR = "/.runcvm"
VIRTIO_PORTS = "/sys/class/virtio-ports"


def log(message: str) -> None:
    with open("/dev/console", "w", encoding="utf-8", errors="replace") as console:
        console.write(f"runcvm-init: {message}\n")


def mount_system() -> None:
    for directory in ("/dev/pts", "/dev/shm"):
        os.makedirs(directory, exist_ok=True)
    system.mount("devpts", "/dev/pts", "devpts", system.MS_NOSUID | system.MS_NOEXEC,
                 "mode=0620,ptmxmode=0666,gid=5")
    system.mount("shm", "/dev/shm", "tmpfs", system.MS_NOSUID | system.MS_NODEV, "mode=1777")
    for link, target in (("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
                         ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2")):
        if not os.path.lexists(link):
            os.symlink(target, link)
    if os.path.isdir("/sys/fs/cgroup"):
        system.mount("cgroup2", "/sys/fs/cgroup", "cgroup2", system.MS_NOSUID | system.MS_NODEV | system.MS_NOEXEC)


def disable_ipv6() -> None:
    """As Docker does for containers on networks without IPv6: IPv6 sockets still open, but no
    interface gets an IPv6 address."""
    for scope in ("all", "default", "lo"):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", "w", encoding="ascii") as handle:
                handle.write("1")
        except OSError:
            pass


def apply_config(config: dict) -> None:
    disable_ipv6()
    network.configure(config["network"])
    socket.sethostname(config["hostname"])
    if config.get("resolv_conf"):
        system.mount(config["resolv_conf"], "/etc/resolv.conf", None, system.MS_BIND)
    for tmpfs in config.get("tmpfs", []):
        os.makedirs(tmpfs["destination"], exist_ok=True)
        flags, data = system.mount_options(tmpfs["options"])
        system.mount("tmpfs", tmpfs["destination"], "tmpfs", flags, data)
    mount_disks(config.get("disks", []))


def mount_disks(disks: list[dict]) -> None:
    """Mount each RUNCVM_DISKS disk, found by the serial the launcher gave it."""
    devices = {}
    for name in os.listdir("/sys/block"):
        try:
            with open(f"/sys/block/{name}/serial", encoding="ascii") as serial:
                devices[serial.read().strip()] = f"/dev/{name}"
        except OSError:
            continue
    for disk in disks:
        if disk["serial"] not in devices:
            raise RuntimeError(f"the disk for {disk['dst']} did not appear (no virtio_blk in the kernel?)")
        os.makedirs(disk["dst"], exist_ok=True)
        system.mount(devices[disk["serial"]], disk["dst"], disk["fs"])


def agent_port() -> str:
    for port in os.listdir(VIRTIO_PORTS):
        with open(f"{VIRTIO_PORTS}/{port}/name", encoding="ascii") as handle:
            if handle.read().strip() == protocol.PORT_NAME:
                return f"/dev/{port}"
    raise OSError(f"no virtio port named {protocol.PORT_NAME}")


class Agent:
    """Serves the launcher: one event loop over the port, the sessions' streams and SIGCHLD."""

    def __init__(self, port: int, timing: dict):
        self.port = port
        self.timing = timing
        self.selector = selectors.DefaultSelector()
        self.sessions: dict[int, Session] = {}
        self.decoder = protocol.Decoder()
        self.finished = False

    def send(self, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            view = view[os.write(self.port, view):]

    def serve(self) -> None:
        wakeup_read = signal_pipe((signal.SIGCHLD,))
        self.selector.register(wakeup_read, selectors.EVENT_READ, ("signals", None))
        self.selector.register(self.port, selectors.EVENT_READ, ("port", None))
        self.send(protocol.encode_json(protocol.READY, 0, self.timing))
        while not self.finished:
            for key, _events in self.selector.select():
                what, session = key.data
                if what == "signals":
                    os.read(wakeup_read, 256)
                    self.reap()
                elif what == "port":
                    data = os.read(self.port, 1 << 16)
                    for kind, number, payload in self.decoder.feed(data):
                        self.on_frame(kind, number, payload)
                else:
                    self.on_output(key.fileobj, what, session)

    def on_frame(self, kind: int, number: int, payload: bytes) -> None:
        if kind == protocol.START:
            main = self.sessions.get(0)
            if number and (main is None or main.workload_pid is None or main.status is not None):
                self.send(protocol.encode_json(protocol.ERROR, number, {
                    "status": 126, "message": "runcvm: the container's workload is not running\n"}))
                return
            session = Session(number, json.loads(payload), join=main.workload_pid if number else None)
            self.sessions[number] = session
            failure = session.start()
            if failure:
                self.send(protocol.encode_json(protocol.ERROR, number, failure))
                return
            for stream, fd in session.outputs().items():
                self.selector.register(fd, selectors.EVENT_READ, (stream, session))
        elif kind == protocol.STDIN:
            self.sessions[number].write_stdin(payload)
        elif kind == protocol.SIGNAL:
            self.sessions[number].signal(json.loads(payload)["signal"])
        elif kind == protocol.RESIZE:
            self.sessions[number].resize(json.loads(payload))
        elif kind == protocol.EXIT_SEEN and number == 0:
            self.finished = True

    def on_output(self, fd: int, stream: str, session: Session) -> None:
        data = session.read(fd)
        kind = protocol.STDOUT if stream == "stdout" else protocol.STDERR
        if data:
            for frame in protocol.encode_stream(kind, session.number, data):
                self.send(frame)
            return
        self.selector.unregister(fd)
        session.close_output(fd)
        self.report_if_done(session)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for session in self.sessions.values():
                if session.pid == pid:
                    session.exited(protocol.exit_status(status))
                    self.report_if_done(session)

    def report_if_done(self, session: Session) -> None:
        if session.done() and not session.reported:
            session.reported = True
            self.send(protocol.encode_json(protocol.EXIT, session.number, {"status": session.status}))


def main() -> int:
    started = time.monotonic()
    with open("/proc/uptime", encoding="ascii") as uptime:
        # How long the kernel and the initramfs took, from the kernel's start.
        timing = {"kernel_seconds": float(uptime.read().split()[0])}
    try:
        mount_system()
        with open(f"{STATE_DIR}/vm.json", encoding="utf-8") as handle:
            apply_config(json.load(handle))
        port = os.open(agent_port(), os.O_RDWR | os.O_CLOEXEC)
        timing["setup_seconds"] = round(time.monotonic() - started, 3)
        Agent(port, timing).serve()
    except Exception:  # pylint: disable=broad-exception-caught
        # PID 1 must not die with a traceback nobody sees: say it on the console, then power off.
        log("failed:\n" + traceback.format_exc())
    sys.stdout.flush()
    system.power_off()
    return 0
