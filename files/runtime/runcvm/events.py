"""Signals as events of a selector loop, shared by the launcher, the exec client and the guest init."""

from __future__ import annotations

import os
import signal
import typing as t


def signal_pipe(numbers: t.Iterable[int]) -> int:
    """Catch `numbers` and return a descriptor that yields one byte, the signal's number, per
    signal received, for a selector to watch beside the streams."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write)
    for number in numbers:
        signal.signal(number, lambda *_: None)
    return read
