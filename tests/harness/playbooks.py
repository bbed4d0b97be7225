"""Running a playbook on localhost with the collection as a user installed it, and reading each
task's result."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys


def run_playbook(collections_path: pathlib.Path, playbook: pathlib.Path | str, *options: str) -> list[dict]:
    """Each task's result on localhost, in order."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    completed = subprocess.run([pathlib.Path(sys.executable).parent / "ansible-playbook", str(playbook), *options,
                                "-e", f"ansible_python_interpreter={sys.executable}"],
                               capture_output=True, text=True, check=False, env=env)
    # The json callback's document starts at a line of its own; runcvm_build's progress lines come before it.
    lines = completed.stdout.splitlines(keepends=True)
    assert "{\n" in lines, completed.stderr + completed.stdout[:2000]
    report = json.loads("".join(lines[lines.index("{\n"):]))
    return [task["hosts"]["localhost"] for play in report["plays"] for task in play["tasks"]]
