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
    # A burst of signals can fill the pipe; the loop reads what is there, so a full pipe loses
    # nothing it needs, and Python must not print a traceback about it.
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    for number in numbers:
        signal.signal(number, lambda *_: None)
    return read


def stop_signal_pipe() -> None:
    """Signals no longer go to the pipe: for a forked child about to close every descriptor, and
    for a process about to exit while its children still end."""
    signal.set_wakeup_fd(-1)
