"""Makes sure a dockerd answers; stops it afterwards only if this test session started it."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time

import docker
import docker.errors
import requests.exceptions

START_TIMEOUT = 60
STOP_TIMEOUT = 30


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

    def _start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not answering():
            if self.process.poll() is not None or time.monotonic() > deadline:
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
