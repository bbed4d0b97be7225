"""runcvm_container in a playbook, as a fleet runs it: the module_defaults community.docker's
modules take reach it, what RunCVM cannot run is refused before any host is touched, and a
failed wait shows the end of the container's log."""

from __future__ import annotations

import json
import uuid

from harness.playbooks import run_playbook

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

    - name: A VM that cannot start (a disk too small to format), waited for
      runcvm.runcvm.runcvm_container:
        name: {name}-ended
        image: {image}
        disks:
          - {{src: /disks/tiny.img, dst: /data, fs: ext4, size: 1K}}
        wait: true
      ignore_errors: true
"""


def test_module_defaults_refusals_and_a_failed_wait(installed_collection, tmp_path, docker_cli, test_images, runcvm):
    name = f"runcvm-module-{uuid.uuid4().hex[:8]}"
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(PLAYBOOK.format(name=name, image=test_images["debian"]))
    try:
        elsewhere, refused_in_check_mode, refused, ended = run_playbook(installed_collection, playbook)
        made = docker_cli.cli("ps", "--all", "--quiet", "--filter", f"name=^{name}$").stdout
    finally:  # a container the playbook should never have made, and the one it should
        docker_cli.cli("rm", "--force", name, f"{name}-ended", check=False)
    # Sent to the daemon that group/community.docker.docker names, not to the local one.
    assert elsewhere["failed"] and "host='127.0.0.1', port=9" in elsewhere["msg"], elsewhere
    for result in (refused_in_check_mode, refused):
        assert result["failed"] and not result.get("changed"), result
        assert "memory 32m is too small for a VM: it needs at least 64 MiB; no container was touched" in result["msg"]
    assert made == b""
    # The one container the playbook makes: its wait fails with the end of its log.
    assert ended["failed"] and ended["changed"], ended
    assert f"{name}-ended stopped before its VM answered; the end of docker logs {name}-ended:" in ended["msg"], ended
    assert "formatting /disks/tiny.img as ext4 failed" in ended["msg"]


def test_the_rollout_playbook_runs_the_vm_and_then_leaves_it(
        installed_collection, tmp_path, docker_cli, test_images, runcvm):
    """runcvm.runcvm.rollout as the README runs it, on an inventory whose one Docker host is this one."""
    name = f"runcvm-rollout-{uuid.uuid4().hex[:8]}"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("docker_hosts:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    options = ("-i", str(inventory), "-e", f"rollout_image={test_images['nginx']}", "-e", f"rollout_name={name}")
    try:
        (first,) = run_playbook(installed_collection, "runcvm.runcvm.rollout", *options)
        (again,) = run_playbook(installed_collection, "runcvm.runcvm.rollout", *options)
        inspected = json.loads(docker_cli.cli("inspect", name).stdout)[0]
    finally:
        docker_cli.cli("rm", "--force", name, check=False)
    assert first["changed"] and not first.get("failed") and "guest_up_seconds" in first, first
    assert not again["changed"] and not again.get("failed"), again
    assert (inspected["HostConfig"]["Runtime"], inspected["State"]["Running"]) == (runcvm, True)
    assert inspected["HostConfig"]["Memory"] == 512 * 2**20
