"""The built collection installs; every plugin and role documents itself through ansible-doc;
the docs pass antsibull-docs' lint, as Galaxy's and the Ansible docs site's tools read them; the
changelog fragments lint, and CHANGELOG.md is what antsibull-changelog makes of changelogs/."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

PROJECT_DIR = pathlib.Path(__file__).parents[2]
MODULES = sorted(path.stem for path in (PROJECT_DIR / "plugins" / "modules").glob("*.py"))
FILTERS = sorted(path.stem for path in (PROJECT_DIR / "plugins" / "filter").glob("*.py"))
ROLES = sorted(path.name for path in (PROJECT_DIR / "roles").iterdir())


BIN_DIR = pathlib.Path(sys.executable).parent


def tool(collections_path: pathlib.Path, name: str, *args: str, cwd: pathlib.Path | None = None):
    """Run one of the virtual environment's tools (which call each other by name) on `collections_path`."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path),
           "PATH": f"{BIN_DIR}:{os.environ.get('PATH', '')}"}
    return subprocess.run([BIN_DIR / name, *args], capture_output=True, text=True, check=False, env=env, cwd=cwd)


def ansible_doc(collections_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    return tool(collections_path, "ansible-doc", *args)


def test_ansible_doc_lists_every_module(installed_collection):
    listed = ansible_doc(installed_collection, "-l", "runcvm.runcvm").stdout
    assert sorted(line.split()[0].rsplit(".", 1)[-1] for line in listed.splitlines() if line.strip()) == MODULES


@pytest.mark.parametrize("kind, name", [("module", m) for m in MODULES] + [("filter", f) for f in FILTERS]
                         + [("role", r) for r in ROLES])
def test_documentation_renders(installed_collection, kind, name):
    completed = ansible_doc(installed_collection, "-t", kind, f"runcvm.runcvm.{name}")
    assert completed.returncode == 0 and "ERROR" not in completed.stderr, completed.stderr
    assert f"runcvm.runcvm.{name}" in completed.stdout


def test_antsibull_docs_lint_finds_nothing(installed_collection):
    """References to this collection and to ansible.builtin are checked against their docs.
    Checking the others' too (`all`) loads the docs of every collection the ansible package
    brings: three minutes."""
    collection = installed_collection / "ansible_collections" / "runcvm" / "runcvm"
    linted = tool(installed_collection, "antsibull-docs", "lint-collection-docs", "--plugin-docs",
                  "--validate-collection-refs=dependent", str(collection))
    assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout + linted.stderr


def test_changelog_fragments_lint_and_changelog_md_is_generated_from_them(tmp_path):
    assert tool(tmp_path, "antsibull-changelog", "lint", cwd=PROJECT_DIR).returncode == 0
    linted = tool(tmp_path, "antsibull-changelog", "lint-changelog-yaml", "changelogs/changelog.yaml", cwd=PROJECT_DIR)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    copy = tmp_path / "collection"
    shutil.copytree(PROJECT_DIR / "changelogs", copy / "changelogs")
    shutil.copy(PROJECT_DIR / "galaxy.yml", copy)
    generated = tool(tmp_path, "antsibull-changelog", "generate", cwd=copy)
    assert generated.returncode == 0, generated.stderr
    assert (copy / "CHANGELOG.md").read_text() == (PROJECT_DIR / "CHANGELOG.md").read_text(), \
        "CHANGELOG.md is not what antsibull-changelog generate makes: run it"
