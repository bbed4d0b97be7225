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
  - Where dockerd has C(--validate) (Docker 23 and later), the new file is checked with it
    first; a file dockerd rejects is reported and not written.
  - Makes a running dockerd reread the file with SIGHUP, which leaves running containers alone,
    and waits until C(docker info) lists the change.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcvm.runcvm.module
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
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
  validate:
    description: Check the new file with C(dockerd --validate) before writing it, where dockerd has that option.
    type: bool
    default: true
  reload:
    description: After a change, signal a running dockerd to reload and wait for C(docker info) to show it.
    type: bool
    default: true
  runtime_args:
    description:
      - Arguments dockerd gives the runtime before runc's own (C(runtimeArgs)), such as V(--debug).
        An empty list removes them; unset, the entry keeps the ones it has.
    type: list
    elements: str
  backup:
    description: Before a change is written, keep a copy of the file beside it, named with a timestamp.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Register RunCVM with dockerd.
  runcvm.runcvm.runcvm_runtime:

- name: Register it with runc's debug output, keeping a copy of daemon.json as it was.
  runcvm.runcvm.runcvm_runtime:
    runtime_args: [--debug]
    backup: true

- name: Unregister it.
  runcvm.runcvm.runcvm_runtime:
    state: absent
"""

RETURN = r"""
validated:
  description: Whether C(dockerd --validate) checked the new file.
  returned: always
  type: bool
reloaded:
  description: Whether a running dockerd was asked to reload its configuration.
  returned: always
  type: bool
backup_file:
  description: The copy O(backup) kept of the file as it was.
  returned: when O(backup) is set and the file existed and was changed
  type: str
  sample: /etc/docker/daemon.json.12345.2026-11-30@18:20:01~
"""

import os
import pathlib
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import RUNTIME_BINARY, RUNTIME_NAME
from ansible_collections.runcvm.runcvm.plugins.module_utils._daemon_json import (
    DAEMON_JSON, DaemonJsonError, load, reload_dockerd, render, wait_for_runtime, with_runtime,
)
from ansible_collections.runcvm.runcvm.plugins.module_utils._fileutil import atomic_write


def validate_with_dockerd(module: AnsibleModule, text: str, directory: pathlib.Path) -> tuple[bool, str | None]:
    """(whether dockerd could check `text`, what it says against it or None)."""
    dockerd = module.get_bin_path("dockerd")
    if dockerd is None or "--validate" not in module.run_command([dockerd, "--help"])[1]:
        return False, None
    handle, candidate = tempfile.mkstemp(prefix=".daemon.json.", dir=directory if directory.is_dir() else None)
    try:
        os.write(handle, text.encode())
        os.close(handle)
        rc, stdout, stderr = module.run_command([dockerd, "--validate", "--config-file", candidate])
    finally:
        os.unlink(candidate)
    return True, None if rc == 0 else (stderr or stdout).strip()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "default": RUNTIME_NAME},
            "path": {"type": "path", "default": RUNTIME_BINARY},
            "daemon_json": {"type": "path", "default": DAEMON_JSON},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "validate": {"type": "bool", "default": True},
            "reload": {"type": "bool", "default": True},
            "runtime_args": {"type": "list", "elements": "str"},
            "backup": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    target = pathlib.Path(params["daemon_json"])
    present = params["state"] == "present"
    try:
        before_text = target.read_text(encoding="utf-8") if target.exists() else None
        before = load(before_text, str(target))
        after = with_runtime(before, params["name"], params["path"] if present else None, str(target),
                             params["runtime_args"])
    except UnicodeDecodeError as error:
        module.fail_json(msg=f"{target} is not UTF-8 text ({error}); fix it by hand, it was left untouched")
    except (DaemonJsonError, OSError) as error:
        module.fail_json(msg=str(error))
    changed = after != before
    result = {"changed": changed, "validated": False, "reloaded": False}
    if module._diff:
        result["diff"] = {"before": before_text or "", "after": render(after) if changed else before_text or "",
                          "before_header": str(target), "after_header": str(target)}
    if changed and params["validate"]:
        result["validated"], problem = validate_with_dockerd(module, render(after), target.parent)
        if problem:
            module.fail_json(msg=f"dockerd --validate rejects the new {target} ({problem}); "
                                 "the file was left untouched", **result)
    if changed and not module.check_mode:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        if params["backup"] and target.exists():
            result["backup_file"] = module.backup_local(str(target))
        # dockerd's reload keeps its runtimes when the file has no "runtimes" key: have it reload
        # an empty map first, then write the file without the key.
        emptied = "runtimes" in before and "runtimes" not in after
        atomic_write(target, render({**after, "runtimes": {}} if emptied else after).encode(), mode)
        if params["reload"] and reload_dockerd():
            result["reloaded"] = True
            if not wait_for_runtime(params["name"], present):
                module.fail_json(msg=f"dockerd reloaded {target} but docker info does not show the change; "
                                     "see dockerd's log", **result)
        if emptied:
            atomic_write(target, render(after).encode(), mode)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
