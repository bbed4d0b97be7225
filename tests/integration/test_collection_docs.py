"""The built collection installs, and every plugin and role documents itself through ansible-doc."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

PROJECT_DIR = pathlib.Path(__file__).parents[2]
MODULES = sorted(path.stem for path in (PROJECT_DIR / "plugins" / "modules").glob("*.py"))
FILTERS = sorted(path.stem for path in (PROJECT_DIR / "plugins" / "filter").glob("*.py"))
ROLES = sorted(path.name for path in (PROJECT_DIR / "roles").iterdir())


def ansible_doc(collections_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([pathlib.Path(sys.executable).parent / "ansible-doc", *args], capture_output=True,
                          text=True, check=False, env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path)})


def test_ansible_doc_lists_every_module(installed_collection):
    listed = ansible_doc(installed_collection, "-l", "runcvm.runcvm").stdout
    assert sorted(line.split()[0].rsplit(".", 1)[-1] for line in listed.splitlines() if line.strip()) == MODULES


@pytest.mark.parametrize("kind, name", [("module", m) for m in MODULES] + [("filter", f) for f in FILTERS]
                         + [("role", r) for r in ROLES])
def test_documentation_renders(installed_collection, kind, name):
    completed = ansible_doc(installed_collection, "-t", kind, f"runcvm.runcvm.{name}")
    assert completed.returncode == 0 and "ERROR" not in completed.stderr, completed.stderr
    assert f"runcvm.runcvm.{name}" in completed.stdout
