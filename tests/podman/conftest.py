"""Fixtures of the Podman suite: RunCVM installed as for the other suites, registered with Podman
by the install role, and the factory's images copied from Docker into Podman's store."""

from __future__ import annotations

import pathlib
import resource
import subprocess
import uuid

import pytest

from harness.playbooks import run_playbook
from harness.resources import TEST_LABEL, with_label

# The images the Podman tests run, copied from Docker's store (no registry is needed).
IMAGES = ("debian", "python3")
# Podman asks for 1048576 open files and processes by default, which needs CAP_SYS_RESOURCE where
# the host's hard limits are lower; the tests ask for what any host grants, under runc as under RunCVM.
LIMIT = 16384

INSTALL_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: runcvm.runcvm.install
      vars:
        install_engines: [podman]
        install_payload_tarball: {tarball}
"""


class Podman:
    """The podman CLI as a test uses it: what it runs or creates is labelled, and removed when the
    test ends; containers get limits any host grants."""

    def __init__(self, owner: str):
        self.owner = owner

    def cli(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        args = with_label(args, self.owner)  # podman takes docker's --label where docker does
        if args[0] in ("run", "create"):
            hard = min([LIMIT, *(limit for kind in (resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC)
                                 if (limit := resource.getrlimit(kind)[1]) != resource.RLIM_INFINITY)])
            args[1:1] = ["--ulimit", f"nofile={hard}:{hard}", "--ulimit", f"nproc={hard}:{hard}"]
        completed = subprocess.run(["podman", *args], capture_output=True, timeout=timeout, check=False)
        if check and completed.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited with {completed.returncode}:\n"
                                 f"{completed.stderr.decode(errors='replace')}")
        return completed

    def remove_all(self) -> None:
        label = f"label={TEST_LABEL}={self.owner}"
        ids = self.cli("ps", "--all", "--quiet", "--filter", label).stdout.decode().split()
        if ids:
            self.cli("rm", "--force", "--time", "0", *ids, check=False)
        networks = self.cli("network", "ls", "--quiet", "--filter", label).stdout.decode().split()
        if networks:
            self.cli("network", "rm", "--force", *networks, check=False)


@pytest.fixture(scope="session")
def podman_role_runs(runcvm, payload, installed_collection, tmp_path_factory) -> list[list[dict]]:
    """The install role run twice with install_engines [podman]: each run's task results."""
    playbook = pathlib.Path(tmp_path_factory.mktemp("podman")) / "install.yml"
    playbook.write_text(INSTALL_PLAYBOOK.format(tarball=payload.tarball))
    return [run_playbook(installed_collection, playbook) for _run in range(2)]


@pytest.fixture(scope="session")
def podman_images(test_images) -> dict[str, str]:
    """The factory images the Podman tests run, in Podman's store as they are in Docker's."""
    for name in IMAGES:
        reference = test_images[name]
        wanted = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", reference],
                                capture_output=True, text=True, check=True).stdout.strip()
        held = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", reference],
                              capture_output=True, text=True, check=False).stdout.strip()
        if f"sha256:{held}" != wanted and held != wanted:
            saved = subprocess.run(["docker", "save", reference], capture_output=True, check=True).stdout
            subprocess.run(["podman", "load"], input=saved, capture_output=True, check=True)
    return {name: test_images[name] for name in IMAGES}


@pytest.fixture
def podman(podman_role_runs, podman_images) -> Podman:
    """The podman CLI, with RunCVM registered as the runtime runcvm."""
    cli = Podman(owner=uuid.uuid4().hex[:12])
    yield cli
    cli.remove_all()
