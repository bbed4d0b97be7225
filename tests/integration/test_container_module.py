"""runcvm_container in a playbook, as a fleet runs it: the module_defaults community.docker's
modules take reach it, and what RunCVM cannot run is refused before any host is touched."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import uuid

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/community.docker.docker:
      docker_host: tcp://127.0.0.1:9
  tasks:
    - name: A container on the daemon module_defaults name
      runcvm.runcvm.runcvm_container:
        name: {name}
        image: {image}
      ignore_errors: true

- hosts: localhost
  gather_facts: false
  tasks:
    - name: Too little memory for a VM, in check mode
      runcvm.runcvm.runcvm_container:
        name: {name}
        image: {image}
        memory: 32m
      check_mode: true
      ignore_errors: true

    - name: Too little memory for a VM
      runcvm.runcvm.runcvm_container:
        name: {name}
        image: {image}
        memory: 32m
      ignore_errors: true
"""


def run_playbook(collections_path: pathlib.Path, playbook: pathlib.Path) -> list[dict]:
    """Each task's result on localhost, in order."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    completed = subprocess.run([pathlib.Path(sys.executable).parent / "ansible-playbook", str(playbook),
                                "-e", f"ansible_python_interpreter={sys.executable}"],
                               capture_output=True, text=True, check=False, env=env)
    assert completed.stdout.startswith("{"), completed.stderr
    return [task["hosts"]["localhost"] for play in json.loads(completed.stdout)["plays"] for task in play["tasks"]]


def test_module_defaults_reach_it_and_refusals_come_before_any_host_is_touched(
        installed_collection, tmp_path, docker_cli, test_images):
    name = f"runcvm-module-{uuid.uuid4().hex[:8]}"
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(PLAYBOOK.format(name=name, image=test_images["debian"]))
    try:
        elsewhere, refused_in_check_mode, refused = run_playbook(installed_collection, playbook)
        made = docker_cli.cli("ps", "--all", "--quiet", "--filter", f"name=^{name}$").stdout
    finally:  # a container the playbook should never have made
        docker_cli.cli("rm", "--force", name, check=False)
    # Sent to the daemon that group/community.docker.docker names, not to the local one.
    assert elsewhere["failed"] and "host='127.0.0.1', port=9" in elsewhere["msg"], elsewhere
    for result in (refused_in_check_mode, refused):
        assert result["failed"] and not result.get("changed"), result
        assert "memory 32m is too small for a VM: it needs at least 64 MiB; no container was touched" in result["msg"]
    assert made == b""
