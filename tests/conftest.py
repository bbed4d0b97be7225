"""Fixtures shared by every test: markers by directory, dockerd, images and cleanup."""

from __future__ import annotations

import pathlib
import uuid

import docker
import pytest

from harness.dockerd import Dockerd
from harness.resources import TEST_LABEL, DockerResources, remove_labelled
from image_factory.builder import Factory
from image_factory.recipes import RECIPES

TESTS_DIR = pathlib.Path(__file__).parent
MARKER_BY_DIRECTORY = {"unit": "unit", "integration": "integration", "molecule": "molecule"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        directory = pathlib.Path(item.path).relative_to(TESTS_DIR).parts[0]
        if directory in MARKER_BY_DIRECTORY:
            item.add_marker(MARKER_BY_DIRECTORY[directory])


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory: pytest.TempPathFactory) -> docker.DockerClient:
    """A running dockerd; one this session started is stopped when the session ends."""
    with Dockerd(tmp_path_factory.mktemp("dockerd") / "dockerd.log"):
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
