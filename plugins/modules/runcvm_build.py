#!/usr/bin/python
# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: runcvm_build
short_description: Build the RunCVM payload or a guest kernel on the controller
version_added: 0.1.0
description:
  - Runs on the Ansible controller, whatever host the task targets; builds once per distinct
    set of pins and keeps the result in a cache, so later runs and other hosts reuse it.
  - The payload is the self-contained tree installed at C(/opt/runcvm) on Docker hosts. It holds
    QEMU, virtiofsd, busybox, mke2fs, blkid and Python 3 with pyroute2 and qemu.qmp, from pinned Debian trixie
    packages, every binary patched to load only from the payload.
  - A guest kernel is a pinned Debian kernel package with RunCVM's own initramfs, laid out for
    C(/opt/runcvm/kernels/debian/<version>).
  - The controller needs C(apt-get) and C(dpkg-deb) (a Debian or Ubuntu machine), C(patchelf),
    C(depmod) (package C(kmod)) for kernels, and access to a Debian mirror and to PyPI.
  - Install the result on hosts with M(runcvm.runcvm.runcvm_tree); the roles
    R(runcvm.runcvm.install,ansible_collections.runcvm.runcvm.install_role) and
    R(runcvm.runcvm.kernels,ansible_collections.runcvm.runcvm.kernels_role) do both.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcvm.runcvm.module
attributes:
  action:
    support: full
    description: The module is an action plugin that runs on the controller.
  check_mode:
    support: full
    details: The build runs in check mode too. It changes nothing on managed hosts, only the
      controller's cache, and the tasks that install its result need it to report their changes.
  diff_mode:
    support: none
options:
  artifact:
    description: What to build.
    type: str
    choices: [payload, kernel]
    required: true
  kernel:
    description: With O(artifact=kernel), the pinned kernel to build, as C(<release>/<package>).
    type: str
    default: trixie/linux-image-cloud-amd64
  cache_dir:
    description: The controller directory for downloads and builds.
    type: path
    default: ~/.cache/runcvm
  pins:
    description: The pins file; the collection's own C(files/build/pins.json) by default.
    type: path
  force:
    description: Rebuild even when the cache holds a build for these pins.
    type: bool
    default: false
  tarball:
    description:
      - With O(artifact=payload), a payload tarball made earlier (by this module or
        C(scripts/runcvm-build payload)) to use instead of building; its manifest gives the digest.
      - M(runcvm.runcvm.runcvm_tree) checks every unpacked file against that manifest.
    type: path
notes:
  - "Each step of a build is shown as it starts (C(runcvm_build: payload: unpacking ...)), also at
    default verbosity, and returned in RV(log)."
"""

EXAMPLES = r"""
- name: Build the payload once for all hosts.
  runcvm.runcvm.runcvm_build:
    artifact: payload
  run_once: true
  register: payload

- name: Build bookworm's cloud kernel.
  runcvm.runcvm.runcvm_build:
    artifact: kernel
    kernel: bookworm/linux-image-cloud-amd64
  run_once: true
  register: kernel
"""

RETURN = r"""
tarball:
  description: The built tarball, on the controller.
  returned: always
  type: str
  sample: /root/.cache/runcvm/payload/v1-9a8eecb8f932c6c5/runcvm-payload.tar.gz
digest:
  description: The digest of the tree's manifest; M(runcvm.runcvm.runcvm_tree) checks it.
  returned: always
  type: str
  sample: bb91ba3b3cddc6e1096128e322f670e7c9784b2c4f556a0bb7c2c2937aa83a9d
total_size:
  description: Bytes in the tree's files.
  returned: always
  type: int
  sample: 114000000
built:
  description: Whether this task built it (true) or found it in the cache or took O(tarball) (false).
  returned: always
  type: bool
distribution:
  description: With O(artifact=kernel), the directory under the kernels directory, C(debian).
  returned: when O(artifact=kernel)
  type: str
  sample: debian
version:
  description: With O(artifact=kernel), the kernel release, the name of its directory.
  returned: when O(artifact=kernel)
  type: str
  sample: 6.12.117+deb13-cloud-amd64
log:
  description: The build's steps, as they were shown while it ran.
  returned: always
  type: list
  elements: str
  sample: ["payload: cached build v1-9a8eecb8f932c6c5"]
"""
