"""Polling for what a test waits on, with a deadline and a message saying what never came."""

from __future__ import annotations

import time
import typing as t

T = t.TypeVar("T")


def wait_for(predicate: t.Callable[[], T], timeout: float, interval: float = 1.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
