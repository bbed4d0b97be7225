"""Terminal and descriptor helpers shared by the launcher and the exec client."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import termios

from runcvm import protocol


def terminal_size(fd: int) -> dict[str, int]:
    rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return {"rows": rows, "cols": cols}


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BrokenPipeError:
            return


def deliver(kind: int, payload: bytes) -> int | None:
    """Act on a frame from the VM for the local process: stream output to its stdout or stderr;
    return the exit status an EXIT or ERROR frame carries (after writing the error's words)."""
    if kind == protocol.STDOUT:
        write_all(1, payload)
    elif kind == protocol.STDERR:
        write_all(2, payload)
    elif kind == protocol.EXIT:
        return json.loads(payload)["status"]
    elif kind == protocol.ERROR:
        failure = json.loads(payload)
        write_all(2, failure["message"].encode())
        return failure["status"]
    return None
