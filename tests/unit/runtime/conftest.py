"""Fixtures of the runtime's unit tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def kernels(tmp_path):
    """A payload directory with one installed kernel, debian/6.12.1-cloud, its latest."""
    payload = tmp_path / "opt-runcvm"
    version = payload / "kernels" / "debian" / "6.12.1-cloud"
    version.mkdir(parents=True)
    (version / "vmlinuz").write_bytes(b"")
    (version.parent / "latest").symlink_to("6.12.1-cloud")
    return payload
