"""Terminal and descriptor helpers shared by the launcher and the exec client."""

from __future__ import annotations

import fcntl
import os
import struct
import termios


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
