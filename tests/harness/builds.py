"""Where the tests keep the builders' output."""

from __future__ import annotations

import os
import pathlib

# The builders' cache, shared with scripts/runcvm-build and scripts/quickstart so warm runs reuse it.
BUILD_CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "runcvm"


def quiet(line: str) -> None:
    del line
