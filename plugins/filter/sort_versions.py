# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: sort_versions
short_description: Sort kernel releases as versions
version_added: 0.1.0
description:
  - Sorts strings such as kernel releases so that runs of digits compare as numbers, the way
    C(sort -V) does; C(6.12.9) comes before C(6.12.117).
author:
  - RunCVM for Ansible developers (@runcvm)
positional: _input
options:
  _input:
    description: The versions to sort.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Pick the newest kernel.
  ansible.builtin.debug:
    msg: "{{ ['6.12.117+deb13-cloud-amd64', '6.1.0-50-cloud-amd64'] | runcvm.runcvm.sort_versions | last }}"
"""

RETURN = r"""
_value:
  description: The versions, oldest first.
  type: list
  elements: str
"""

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.kernels import version_sort_key


def sort_versions(versions):
    return sorted(versions, key=version_sort_key)


class FilterModule:
    def filters(self):
        return {"sort_versions": sort_versions}
