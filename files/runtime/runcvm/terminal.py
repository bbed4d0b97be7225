"""The size of a terminal, as the launcher and the exec client pass it to the VM."""

from __future__ import annotations

import fcntl
import struct
import termios


def terminal_size(fd: int) -> dict[str, int]:
    rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return {"rows": rows, "cols": cols}
