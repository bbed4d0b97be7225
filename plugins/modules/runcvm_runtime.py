#!/usr/bin/python
# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: runcvm_runtime
short_description: Register the RunCVM runtime with dockerd
version_added: 0.1.0
description:
  - Merges C(runtimes.<name>) into dockerd's C(daemon.json), keeping every other key and runtime,
    and writes the file atomically; removes the entry with O(state=absent).
  - A file that is not valid JSON is reported and left untouched.
  - Makes a running dockerd reread the file with SIGHUP, which leaves running containers alone,
    and waits until C(docker info) lists the change.
author:
  - RunCVM for Ansible developers (@runcvm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  name:
    description: The runtime's name, as in C(docker run --runtime=<name>). The names dockerd owns, such as C(runc), are refused.
    type: str
    default: runcvm
  path:
    description: The runtime executable.
    type: path
    default: /opt/runcvm/bin/runcvm-runtime
  daemon_json:
    description: dockerd's configuration file.
    type: path
    default: /etc/docker/daemon.json
  state:
    description: Whether the runtime should be registered.
    type: str
    choices: [present, absent]
    default: present
  reload:
    description: After a change, signal a running dockerd to reload and wait for C(docker info) to show it.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Register RunCVM with dockerd.
  runcvm.runcvm.runcvm_runtime:

- name: Unregister it.
  runcvm.runcvm.runcvm_runtime:
    state: absent
"""

RETURN = r"""
reloaded:
  description: Whether a running dockerd was asked to reload its configuration.
  returned: always
  type: bool
"""

import pathlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runcvm.runcvm.plugins.module_utils._daemon_json import (
    DaemonJsonError, load, reload_dockerd, render, wait_for_runtime, with_runtime,
)
from ansible_collections.runcvm.runcvm.plugins.module_utils._fileutil import atomic_write


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "default": "runcvm"},
            "path": {"type": "path", "default": "/opt/runcvm/bin/runcvm-runtime"},
            "daemon_json": {"type": "path", "default": "/etc/docker/daemon.json"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "reload": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    target = pathlib.Path(params["daemon_json"])
    before_text = target.read_text(encoding="utf-8") if target.exists() else None
    present = params["state"] == "present"
    try:
        before = load(before_text, str(target))
        after = with_runtime(before, params["name"], params["path"] if present else None)
    except DaemonJsonError as error:
        module.fail_json(msg=str(error))
    changed = after != before
    result = {"changed": changed, "reloaded": False}
    if module._diff:
        result["diff"] = {"before": before_text or "", "after": render(after) if changed else before_text or "",
                          "before_header": str(target), "after_header": str(target)}
    if changed and not module.check_mode:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        atomic_write(target, render(after).encode(), mode)
        if params["reload"] and reload_dockerd():
            result["reloaded"] = True
            if not wait_for_runtime(params["name"], present):
                module.fail_json(msg=f"dockerd reloaded {target} but docker info does not show the change; "
                                     "see dockerd's log", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
