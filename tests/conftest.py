"""Fixtures shared by every test: markers by directory, dockerd, images, the builds of the payload
and the kernels, RunCVM installed, and cleanup."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import uuid

import collection_root
import docker
import pytest

from harness.builds import BUILD_CACHE, RUNTIME, install_runcvm, quiet
from harness.dockerd import Dockerd
from harness.resources import TEST_LABEL, DockerResources, remove_labelled
from image_factory.builder import Factory
from image_factory.recipes import RECIPES

TESTS_DIR = pathlib.Path(__file__).parent
PROJECT_DIR = TESTS_DIR.parent
MARKER_BY_DIRECTORY = {"unit": "unit", "integration": "integration", "reliability": "reliability",
                       "swarm": "swarm", "podman": "podman", "molecule": "molecule"}


collection_root.expose()
# Importable only now.
from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _pins  # noqa: E402 pylint: disable=wrong-import-position
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._kernel import (  # noqa: E402 pylint: disable=wrong-import-position
    KernelBuild, build_kernel,
)
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._payload import (  # noqa: E402 pylint: disable=wrong-import-position
    PayloadBuild, build_payload,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        directory = pathlib.Path(item.path).relative_to(TESTS_DIR).parts[0]
        if directory in MARKER_BY_DIRECTORY:
            item.add_marker(MARKER_BY_DIRECTORY[directory])


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Dockerd:
    """A running dockerd; one this session started is stopped when the session ends."""
    with Dockerd(tmp_path_factory.mktemp("dockerd") / "dockerd.log") as daemon:
        yield daemon


@pytest.fixture(scope="session")
def docker_daemon(dockerd: Dockerd) -> docker.DockerClient:
    """The Engine API of the running dockerd."""
    del dockerd
    client = docker.from_env(timeout=600)
    # Leftovers of an earlier session that was killed before its cleanup ran.
    remove_labelled(client, TEST_LABEL)
    yield client
    remove_labelled(client, TEST_LABEL)


@pytest.fixture(scope="session")
def test_images(docker_daemon: docker.DockerClient) -> dict[str, str]:
    """Every factory image, built where missing or out of date: image name -> reference."""
    factory = Factory(docker_daemon)
    for name in RECIPES:
        factory.ensure(name)
    return {name: factory.ref(name) for name in RECIPES}


@pytest.fixture
def docker_cli(docker_daemon: docker.DockerClient) -> DockerResources:
    """The docker CLI; whatever the test creates through it is removed when the test ends."""
    resources = DockerResources(docker_daemon, owner=uuid.uuid4().hex[:12])
    yield resources
    resources.remove_all()


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The collection built from this tree and installed, as a user would get it: the
    collections path to put in ANSIBLE_COLLECTIONS_PATH."""
    work = tmp_path_factory.mktemp("collection")
    bin_dir = pathlib.Path(sys.executable).parent
    subprocess.run([bin_dir / "ansible-galaxy", "collection", "build", "--output-path", work, PROJECT_DIR],
                   check=True, capture_output=True)
    tarball = next(work.glob("runcvm-runcvm-*.tar.gz"))
    collections_path = work / "collections"
    # --no-deps: community.docker comes with the pinned ansible package, and no galaxy server is reachable.
    subprocess.run([bin_dir / "ansible-galaxy", "collection", "install", "--force", "--no-deps", "-p", collections_path,
                    tarball], check=True, capture_output=True)
    return collections_path


# The default kernel, and bookworm's for an older kernel with another module layout.
TESTED_KERNELS = ("trixie/linux-image-cloud-amd64", "bookworm/linux-image-cloud-amd64")


@pytest.fixture(scope="session")
def pins() -> _pins.Pins:
    return _pins.load()


@pytest.fixture(scope="session")
def payload(pins) -> PayloadBuild:
    return build_payload(pins, BUILD_CACHE, quiet)


@pytest.fixture(scope="session", params=TESTED_KERNELS)
def kernel(request, pins) -> KernelBuild:
    return build_kernel(pins, request.param, BUILD_CACHE, quiet)


@pytest.fixture(scope="session")
def runcvm(docker_daemon, pins, payload) -> str:
    """This tree's RunCVM installed at /opt/runcvm with the default kernel, and registered with
    the running dockerd: the runtime name to pass to --runtime."""
    default = build_kernel(pins, "trixie/linux-image-cloud-amd64", BUILD_CACHE, quiet)
    install_runcvm(payload, default)
    return RUNTIME
