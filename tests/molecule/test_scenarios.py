"""Every molecule scenario of the collection passes its whole test sequence."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

PROJECT_DIR = pathlib.Path(__file__).parents[2]
SCENARIOS = sorted(path.parent.name for path in (PROJECT_DIR / "molecule").glob("*/molecule.yml"))
OUTPUT_TAIL_LINES = 60


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario, installed_collection, test_images):
    env = {
        **os.environ,
        "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ANSIBLE_COLLECTIONS_PATH": str(installed_collection),
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
    }
    completed = subprocess.run(["molecule", "test", "-s", scenario], cwd=PROJECT_DIR, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    tail = "\n".join(completed.stdout.splitlines()[-OUTPUT_TAIL_LINES:])
    assert completed.returncode == 0, f"molecule test -s {scenario} failed:\n{tail}"
