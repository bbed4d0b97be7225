"""Builds of the payload and the guest kernels, shared by the tests that use them."""

from __future__ import annotations

import pytest

from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _pins
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._kernel import KernelBuild, build_kernel
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._payload import PayloadBuild, build_payload

from harness.builds import BUILD_CACHE, RUNTIME, install_runcvm, quiet
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
