#!/usr/bin/python
# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: runcvm_defaults
short_description: Set the RunCVM options every container on a host gets
version_added: 0.2.0
description:
  - Writes the host's defaults file, which the runtime reads when it creates each RunCVM
    container. A container's own C(RUNCVM_*) variables win over it, option by option.
  - The options are named and typed as M(runcvm.runcvm.runcvm_container)'s, and checked by the
    runtime's own rules before anything is written; a bad one fails the task and leaves the file
    as it was.
  - The file is written whole and atomically. Containers created before a change keep the
    options they were created with.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcvm.runcvm.module
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  options:
    description:
      - RunCVM's options for every container, such as C(warm_start) set to V(true). The names, types
        and values are those of M(runcvm.runcvm.runcvm_container) (C(kernel), C(warm_start), C(cpus)...).
      - Options left at their defaults are not written. An empty dict leaves the host without defaults.
    type: dict
    default: {}
  path:
    description: The defaults file, as the runtime reads it.
    type: path
    default: /etc/runcvm/defaults.env
  state:
    description: Whether the host has defaults; V(absent) removes the file.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Start every RunCVM container of the host from a warm start's template.
  runcvm.runcvm.runcvm_defaults:
    options:
      warm_start: true

- name: Remove the host's defaults.
  runcvm.runcvm.runcvm_defaults:
    state: absent
"""

RETURN = r"""
variables:
  description: The C(RUNCVM_*) variables the file gives every container.
  returned: always
  type: dict
  sample: {"RUNCVM_WARM_START": "1"}
"""

import pathlib

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import options as runcvm_options
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import HOST_DEFAULTS_FILE
from ansible_collections.runcvm.runcvm.plugins.module_utils._fileutil import atomic_write


def wanted_variables(options: dict) -> dict[str, str]:
    """The RUNCVM_* variables `options` give, checked as runcvm_container checks its own; OptionError
    naming what is wrong."""
    validated = ArgumentSpecValidator(runcvm_options.argument_spec()).validate(options)
    if validated.error_messages:
        # The validator words an unknown name as "NAME. Supported parameters include: ...".
        unknown = "unknown option " if any(isinstance(error, UnsupportedError) for error in validated.errors) else ""
        raise runcvm_options.OptionError(unknown + "; ".join(validated.error_messages))
    return runcvm_options.render(runcvm_options.from_task(validated.validated_parameters))


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "options": {"type": "dict", "default": {}},
            "path": {"type": "path", "default": HOST_DEFAULTS_FILE},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    target = pathlib.Path(module.params["path"])
    try:
        variables = wanted_variables(module.params["options"]) if module.params["state"] == "present" else {}
    except runcvm_options.OptionError as error:
        module.fail_json(msg=f"options: {error}")
    try:
        before = target.read_text(encoding="utf-8") if target.exists() else None
    except (OSError, UnicodeDecodeError) as error:
        module.fail_json(msg=f"cannot read {target}: {error}")
    after = runcvm_options.defaults_text(variables) if variables else None
    result = {"changed": before != after, "variables": variables}
    if module._diff:
        result["diff"] = {"before": before or "", "after": after or "", "before_header": str(target),
                          "after_header": str(target)}
    if result["changed"] and not module.check_mode:
        try:
            if after is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, after.encode(), 0o644)
        except OSError as error:
            module.fail_json(msg=f"cannot write {target}: {error}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
