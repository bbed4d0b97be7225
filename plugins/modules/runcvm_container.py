#!/usr/bin/python
# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: runcvm_container
short_description: Manage a Docker container that runs as a RunCVM virtual machine
version_added: 0.1.0
description:
  - M(community.docker.docker_container) with C(runtime=runcvm) and typed RunCVM options. Every
    option of M(community.docker.docker_container) is accepted and passed on to it unchanged; it
    compares the container with the task, creates, recreates, starts or removes it, and supports
    check mode and diff mode. This module adds no container logic of its own.
  - The RunCVM options (O(kernel), O(kernel_append), O(kernel_debug), O(accel), O(disks),
    O(virtiofsd_cache), O(timing)) are checked on the controller and rendered into C(RUNCVM_*)
    variables in the container's environment, by the same code the runtime reads them back with.
    A bad value fails the task before any module runs on the host, so no container is touched.
  - The container's environment is compared strictly (C(comparisons.env=strict)) unless the task
    sets C(comparisons.env), so removing a RunCVM option from the task recreates the container
    just as adding one does.
  - O(memory) and O(cpus) size the VM when it boots. Less memory than the container has is given
    in place (C(docker update); the VM gives the rest back), and so is a O(cpus) that keeps the
    VM's vCPU count (its CPU quota changes, as under runc). More memory, or another vCPU count,
    recreates the container; RV(recreate_reason) says why.
  - With O(wait), the task returns only once the VM's guest answers (a C(docker exec) reaches it).
  - What RunCVM cannot run is refused on the controller, in check mode too, with the runtime's own
    table and words (O(network_mode=host), O(network_mode) V(container:<name>), and O(memory)
    below 64 MiB), and no container is touched.
  - The task takes the C(module_defaults) of M(community.docker.docker_container) and of
    C(group/community.docker.docker) (C(docker_host) and the other connection options), as
    M(community.docker.docker_container) would; C(group/runcvm.runcvm.runcvm) sets defaults for
    every module of this collection.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcvm.runcvm.module
  - runcvm.runcvm.vm_options
attributes:
  action:
    support: full
    description: Runs on the controller, then runs M(community.docker.docker_container) on the host.
  check_mode:
    support: full
  diff_mode:
    support: full
requirements:
  - On the host, what M(community.docker.docker_container) needs (the Python C(requests) library;
    Debian's C(python3-requests)), and RunCVM installed by the R(runcvm.runcvm.install,ansible_collections.runcvm.runcvm.install_role) role.
options:
  name:
    description: The container's name, as for M(community.docker.docker_container).
    type: str
    required: true
  image:
    description: The image to boot, as for M(community.docker.docker_container).
    type: str
  state:
    description: As for M(community.docker.docker_container).
    type: str
    choices: [absent, present, stopped, started]
    default: started
  command:
    description: As for M(community.docker.docker_container).
    type: raw
  entrypoint:
    description: As for M(community.docker.docker_container).
    type: list
    elements: str
  env:
    description:
      - The workload's environment, as for M(community.docker.docker_container).
      - C(RUNCVM_*) names are refused here; use the typed options.
    type: dict
  user:
    description: As for M(community.docker.docker_container).
    type: str
  working_dir:
    description: As for M(community.docker.docker_container).
    type: str
  published_ports:
    description: As for M(community.docker.docker_container); the VM's ports are published like a container's.
    type: list
    elements: str
    aliases: [ports]
  networks:
    description: As for M(community.docker.docker_container); each network becomes a NIC in the VM.
    type: list
    elements: dict
  network_mode:
    description:
      - As for M(community.docker.docker_container), but V(host) and V(container:<name>) are
        refused on the controller, because the VM takes over the addresses and interfaces of the
        container's network namespace and so needs one of its own. V(none), V(default), V(bridge)
        and network names work.
    type: str
  volumes:
    description: As for M(community.docker.docker_container); the VM sees them through virtiofs.
    type: list
    elements: str
  mounts:
    description: As for M(community.docker.docker_container).
    type: list
    elements: dict
  memory:
    description:
      - As for M(community.docker.docker_container). It is also the VM's memory (512M when unset);
        the container's limit is that plus RunCVM's overhead. Below 64M it is refused on the controller.
    type: str
  cpus:
    description: As for M(community.docker.docker_container); the VM gets this many CPUs, rounded up.
    type: float
  restart_policy:
    description: As for M(community.docker.docker_container).
    type: str
    choices: ['no', 'on-failure', 'always', 'unless-stopped']
  labels:
    description: As for M(community.docker.docker_container).
    type: dict
  runtime:
    description: Always C(runcvm); any other value is refused. Use M(community.docker.docker_container) for other runtimes.
    type: str
    default: runcvm
  wait:
    description:
      - With O(state=started), return only once the VM's guest answers a C(docker exec); not in check mode.
    type: bool
    default: false
  wait_timeout:
    description: Seconds O(wait) waits before it fails the task.
    type: int
    default: 180
seealso:
  - module: community.docker.docker_container
  - module: runcvm.runcvm.runcvm_info
"""

EXAMPLES = r"""
- name: Boot nginx as a VM with 1 GiB of memory, published on port 8080.
  runcvm.runcvm.runcvm_container:
    name: web
    image: nginx
    memory: 1g
    published_ports:
      - "8080:80"
    wait: true

- name: A database whose data lives on an ext4 disk kept in a volume.
  runcvm.runcvm.runcvm_container:
    name: db
    image: mariadb
    env:
      MARIADB_RANDOM_ROOT_PASSWORD: "1"
    volumes:
      - db-disks:/disks
    disks:
      - src: /disks/data.img
        dst: /var/lib/mysql
        size: 5G
    kernel: debian

- name: Remove it.
  runcvm.runcvm.runcvm_container:
    name: db
    state: absent
"""

RETURN = r"""
container:
  description: The container's inspect data, as M(community.docker.docker_container) returns it.
  returned: success; empty when removed
  type: dict
  sample: {"Id": "c2469a61...", "HostConfig": {"Runtime": "runcvm", "Memory": 1073741824}}
runcvm_env:
  description: The C(RUNCVM_*) variables the RunCVM options became.
  returned: always
  type: dict
  sample: {"RUNCVM_DISKS": "/disks/data.img,/var/lib/mysql,ext4,5G", "RUNCVM_KERNEL": "debian"}
recreate_reason:
  description: Why the container was (or, in check mode, would be) recreated for its memory or cpus.
  returned: when the existing container must be recreated for its memory or cpus
  type: str
  sample: "memory 268435456 -> 335544320 bytes: only less memory is given in place"
guest_up_seconds:
  description: With O(wait), the seconds waited after the container started until its guest answered.
  returned: when O(wait) and the container was started
  type: float
  sample: 7.9
"""
