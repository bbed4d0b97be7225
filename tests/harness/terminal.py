"""Reading what a program under a pseudo-terminal prints, as a person at that terminal would."""

from __future__ import annotations

import os
import select
import time


def read_until(fd: int, marker: bytes | None, timeout: float) -> bytes:
    """What `fd` gives until `marker` appears, it closes, or `timeout` passes."""
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and (marker is None or marker not in data):
        if select.select([fd], [], [], 1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data
