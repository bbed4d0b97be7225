"""Fixtures of the reliability suite: RunCVM installed (as for the integration tests), and a check
that a test left nothing of RunCVM behind on the host."""

from __future__ import annotations

import pytest

from harness import leftovers
from harness.waiting import wait_for

# How long the host may take to tidy up after a container ends (shims exit, mounts go).
SETTLE_SECONDS = 30


@pytest.fixture
def nothing_left_behind(runcvm, docker_cli):
    """Yields; then removes what the test made, even if it failed halfway, and fails, naming what
    stayed, unless the host is back to how it was."""
    before = leftovers.take()
    yield
    docker_cli.remove_all()
    stayed = {}

    def clean():
        stayed.clear()
        stayed.update(leftovers.take().leftovers(before))
        return not stayed

    try:
        wait_for(clean, SETTLE_SECONDS, 0.5, "RunCVM's leftovers to go")
    except AssertionError as error:
        raise AssertionError(f"left behind: {stayed}") from error
