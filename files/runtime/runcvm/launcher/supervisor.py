"""The launcher's helpers, virtiofsd and QEMU: started, watched, and stopped with the VM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import typing as t

STARTUP_TIMEOUT = 30
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ChildFailed(Exception):
    pass


class Children:
    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], ready: str, stderr: t.IO | None = None) -> None:
        """Start `argv` as `name`, its stderr the launcher's unless given, and wait until it has
        made the socket `ready`."""
        self.processes[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not os.path.exists(ready):
            self.check()
            if time.monotonic() > deadline:
                raise ChildFailed(f"{name} did not start within {STARTUP_TIMEOUT} s")
            time.sleep(0.02)

    def connect(self, path: str) -> socket.socket:
        """A connection to the listening socket at `path`: its file exists a moment before its
        owner listens on it (bind, then listen), so a refusal is retried while the helpers live."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(path)
                return connection
            except ConnectionRefusedError:
                connection.close()
                self.check()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def check(self) -> None:
        """ChildFailed if a helper has exited, naming it and how."""
        for name, child in self.processes.items():
            if child.poll() is not None:
                raise ChildFailed(f"{name} exited unexpectedly ({describe(child.returncode)})")

    def wait_for_exit(self, name: str, timeout: float) -> None:
        try:
            self.processes[name].wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, timeout: float, wait_for_guest: bool = True) -> None:
        """QEMU ends when the guest powers off, or at once where the guest has nothing left to
        hand the host (not `wait_for_guest`); virtiofsd when QEMU lets go of it. What has not
        ended by `timeout` is killed."""
        deadline = time.monotonic() + timeout
        for name in sorted(self.processes, key=lambda name: name != "qemu"):  # QEMU first, then its virtiofsd
            child = self.processes[name]
            if name == "qemu" and not wait_for_guest and child.poll() is None:
                child.kill()
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def kill(self) -> None:
        """Kill what still runs, last started first (QEMU before the virtiofsd it uses), reap it,
        and forget every helper: none is watched any more."""
        for child in reversed(self.processes.values()):
            if child.poll() is None:
                child.kill()
                child.wait()
        self.processes.clear()


def remove(*paths: str) -> None:
    """Remove what of `paths` exists: sockets and files a helper left behind."""
    for path in paths:
        if os.path.lexists(path):
            os.unlink(path)


def cpu_seconds(pid: int) -> float:
    """The CPU time process `pid` has used, its threads' together (user and system)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rpartition(")")[2].split()  # after the command's name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime and stime, the 14th and 15th fields


class IdleWatch:
    """Whether a process has used less than some CPU time over the last `window` seconds, from
    samples taken whenever the caller asks. A gap of more than `longest_gap` seconds between two
    samples (the watcher itself was stopped: `docker pause`, a suspended host) starts the window
    over, so a pause is never taken for idleness."""

    def __init__(self, cpu: t.Callable[[], float], window: float, longest_gap: float,
                 clock: t.Callable[[], float] = time.monotonic):
        self.cpu, self.window, self.longest_gap, self.clock = cpu, window, longest_gap, clock
        self.samples: list[tuple[float, float]] = []  # (when, CPU seconds), oldest first

    def used_less_than(self, cpu_seconds_in_window: float) -> bool:
        now, used = self.clock(), self.cpu()
        if self.samples and now - self.samples[-1][0] > self.longest_gap:
            self.samples.clear()
        self.samples.append((now, used))
        # Keep one sample at least a window old, and nothing older than it.
        while len(self.samples) > 1 and now - self.samples[1][0] >= self.window:
            self.samples.pop(0)
        since, used_then = self.samples[0]
        return now - since >= self.window and used - used_then < cpu_seconds_in_window


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"
