"""Makes this tree importable as ansible_collections.runcvm.runcvm, the name its plugins use, for
the tests and the benchmarks, which run from the tree rather than from an installed collection."""

from __future__ import annotations

import pathlib
import sys

PROJECT_DIR = pathlib.Path(__file__).resolve().parents[1]


def expose() -> None:
    root = PROJECT_DIR / ".cache" / "collection-root"
    link = root / "ansible_collections" / "runcvm" / "runcvm"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(PROJECT_DIR)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
