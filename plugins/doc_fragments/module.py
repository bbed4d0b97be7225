# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
"""What every module of the collection documents alike: its authors, the action group it belongs
to (meta/runtime.yml), and the hosts it runs on."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
author:
  - RunCVM for Ansible developers (@runcvm)
attributes:
  action_group:
    description: Use C(group/runcvm.runcvm.runcvm) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - runcvm.runcvm.runcvm
  platform:
    platforms: posix
"""
