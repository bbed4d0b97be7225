#!/usr/bin/python
# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: runcvm_tree
short_description: Install a RunCVM payload or guest kernel tree from its tarball
version_added: 0.1.0
description:
  - Unpacks a tarball made by M(runcvm.runcvm.runcvm_build) beside O(dest), checks every file
    against the manifest it carries, and only then puts it in the place of the tree at O(dest)
    with one atomic exchange. A failed or interrupted install leaves the old tree in place and working.
  - The old tree is kept beside O(dest), renamed C(.<name>.retired-<time>), while a container
    still has it mounted (a running VM keeps the payload it started with); this install, a later
    one or a removal deletes it once no container uses it.
  - Idempotent on the manifest digest; nothing is unpacked when O(dest) already holds the tree
    with O(digest).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcvm.runcvm.module
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the digest of the tree before and after.
options:
  dest:
    description: Where the tree lives, for example C(/opt/runcvm) or C(/opt/runcvm/kernels/debian/<version>).
    type: path
    required: true
  state:
    description: Whether the tree should be installed or removed.
    type: str
    choices: [present, absent]
    default: present
  src:
    description:
      - The tarball, on the managed host.
      - Required with O(state=present) unless O(dest) already holds the tree, or in check mode.
    type: path
  digest:
    description: The manifest digest of the tree in O(src), as M(runcvm.runcvm.runcvm_build) returns it.
    type: str
  keep:
    description: Entries of the old tree to carry over into the new one, such as C(kernels).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Install the payload, keeping the kernels installed in it.
  runcvm.runcvm.runcvm_tree:
    src: /var/tmp/runcvm-payload.tar.gz
    dest: /opt/runcvm
    digest: "{{ payload.digest }}"
    keep: [kernels]

- name: Remove a kernel.
  runcvm.runcvm.runcvm_tree:
    dest: /opt/runcvm/kernels/debian/6.1.0-50-cloud-amd64
    state: absent
"""

RETURN = r"""
digest_before:
  description: The digest of the tree at O(dest) before the task, or null when there was none.
  returned: always
  type: str
  sample: 5b2d0c4e9a1f...
digest_after:
  description: The digest of the tree at O(dest) after the task (in check mode, what it would be).
  returned: always
  type: str
  sample: 9e41a7c3d2b0...
"""

import pathlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runcvm.runcvm.plugins.module_utils._tree_install import (
    TreeInstallError, install_tree, installed_digest, remove_tree,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "src": {"type": "path"},
            "digest": {"type": "str"},
            "keep": {"type": "list", "elements": "str", "default": []},
        },
        required_if=[("state", "present", ["digest"])],
        supports_check_mode=True,
    )
    dest = pathlib.Path(module.params["dest"])
    before = installed_digest(dest)
    present = module.params["state"] == "present"
    after = module.params["digest"] if present else None
    changed = before != after if present else dest.exists()
    if changed and not module.check_mode:
        try:
            if present:
                if not module.params["src"]:
                    module.fail_json(msg=f"{dest} does not hold the tree {after}: src must name its tarball")
                install_tree(pathlib.Path(module.params["src"]), dest, after, module.params["keep"])
            else:
                remove_tree(dest)
        except (TreeInstallError, OSError) as error:
            action = "installing" if present else "removing"
            module.fail_json(msg=f"{action} {dest} failed: {error}")
    result = {"changed": changed, "digest_before": before, "digest_after": after}
    if module._diff:
        result["diff"] = {"before": {"digest": before}, "after": {"digest": after}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
