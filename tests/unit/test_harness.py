"""The test harness labels what a docker CLI call creates, and nothing else."""

import pytest

from harness.resources import TEST_LABEL, with_label


@pytest.mark.parametrize("args, expected", [
    (["run", "--rm", "img", "true"], ["run", "--label", f"{TEST_LABEL}=t1", "--rm", "img", "true"]),
    (["create", "img"], ["create", "--label", f"{TEST_LABEL}=t1", "img"]),
    (["container", "run", "img"], ["container", "run", "--label", f"{TEST_LABEL}=t1", "img"]),
    (["network", "create", "n"], ["network", "create", "--label", f"{TEST_LABEL}=t1", "n"]),
    (["volume", "create", "v"], ["volume", "create", "--label", f"{TEST_LABEL}=t1", "v"]),
    (["exec", "c", "run"], ["exec", "c", "run"]),
    (["logs", "c"], ["logs", "c"]),
    (["network", "connect", "n", "c"], ["network", "connect", "n", "c"]),
])
def test_with_label(args, expected):
    assert with_label(args, "t1") == expected
