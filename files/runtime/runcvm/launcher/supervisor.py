"""The launcher's helpers, virtiofsd and QEMU: started, watched, and stopped with the VM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

STARTUP_TIMEOUT = 30


class ChildFailed(Exception):
    pass


class Children:
    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], ready: str) -> None:
        """Start `argv` as `name` and wait until it has made the socket `ready`."""
        self.processes[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
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

    def stop(self, timeout: float) -> None:
        """QEMU ends when the guest powers off; virtiofsd when QEMU lets go of it. What has not
        ended by `timeout` is killed."""
        deadline = time.monotonic() + timeout
        for name in ("qemu", "virtiofsd"):
            child = self.processes.get(name)
            if child is None:
                continue
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def kill(self) -> None:
        """Kill what still runs, reap it, and forget every helper: none is watched any more."""
        for child in self.processes.values():
            if child.poll() is None:
                child.kill()
                child.wait()
        self.processes.clear()


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"
