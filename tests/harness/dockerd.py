"""Makes sure a dockerd answers; stops it afterwards only if this test session started it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import time
import typing as t

import docker
import docker.errors
import requests.exceptions

START_TIMEOUT = 60
STOP_TIMEOUT = 30
PIDFILE = pathlib.Path("/var/run/docker.pid")


def _ended(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # a dockerd this session started is its child: reap it
    except ChildProcessError:
        pass
    return not pathlib.Path(f"/proc/{pid}").exists()


def answering() -> bool:
    try:
        return docker.from_env(timeout=5).ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return False


class Dockerd:
    def __init__(self, log_path: pathlib.Path):
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Dockerd:
        if not answering():
            self._start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:
            self._stop()

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def restart(self) -> None:
        """Stop the answering dockerd (SIGTERM, as a service manager would) and start it again.
        One this session did not start is started anew but left running at the end, as it was."""
        owned = self.process is not None
        pid = int(PIDFILE.read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while not _ended(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd (pid {pid}) did not stop within {STOP_TIMEOUT} s")
            time.sleep(0.2)
        self._start()
        if not owned:
            self.process = None

    def _start(self) -> None:
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self.process = process
        deadline = time.monotonic() + START_TIMEOUT
        while not answering():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
                self._stop()
                raise RuntimeError("dockerd did not start:\n" + "\n".join(tail))
            time.sleep(0.5)

    def _stop(self) -> None:
        process, self.process = self.process, None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def daemon_option(name: str, value: t.Any) -> t.Iterator[None]:
    """daemon.json with `name` set to `value`, reloaded into the running dockerd; the file as it
    was, reloaded, afterwards."""
    from ansible_collections.runcvm.runcvm.plugins.module_utils import _daemon_json
    from ansible_collections.runcvm.runcvm.plugins.module_utils._fileutil import atomic_write

    path = pathlib.Path(_daemon_json.DAEMON_JSON)
    before = path.read_bytes()
    atomic_write(path, _daemon_json.render({**_daemon_json.load(before.decode()), name: value}).encode())
    _daemon_json.reload_dockerd()
    try:
        yield
    finally:
        atomic_write(path, before)
        _daemon_json.reload_dockerd()
