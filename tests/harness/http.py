"""Asking a server from the host, for tests that wait until it answers."""

from __future__ import annotations

import urllib.request


def fetched(url: str, timeout: float) -> bytes | None:
    """The body of a GET of `url`, or None while nothing answers it well."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.read()
    except OSError:  # not listening yet, or an error status
        return None
