#!/usr/bin/python
# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: runcvm_info
short_description: Report what a Docker host offers RunCVM
version_added: 0.1.0
description:
  - Tells whether virtual machines on this host will run with KVM or with TCG (software
    emulation), and why.
  - Tells whether the RunCVM payload is installed (and which, by its manifest digest), which
    guest kernels are installed, and whether the C(runcvm) runtime is registered in the Docker
    daemon configuration.
  - Reports the RunCVM options the host gives every container (RV(host.vm_defaults)).
  - Lists the running containers that use the runtime, through the C(docker) client, with the
    memory RunCVM's helpers take beside each VM; when dockerd cannot be asked, the list is empty
    and RV(containers_problem) says why.
  - Changes nothing on the host.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcvm.runcvm.module
attributes:
  check_mode:
    support: full
  diff_mode:
    support: N/A
options:
  payload_dir:
    description: Where the RunCVM payload is installed.
    type: path
    default: /opt/runcvm
  daemon_json:
    description: The Docker daemon configuration file to look for the runtime registration in.
    type: path
    default: /etc/docker/daemon.json
  runtime:
    description: The runtime name whose registration is reported and whose containers are listed.
    type: str
    default: runcvm
notes:
  - KVM counts as usable only when C(/dev/kvm) opens read-write and the CPU advertises C(vmx) or
    C(svm). A paravirtual C(/dev/kvm) without them cannot boot stock kernels, so TCG is reported.
"""

EXAMPLES = r"""
- name: Find out how VMs will run on each host.
  runcvm.runcvm.runcvm_info:
  register: runcvm

- name: Warn about hosts that fall back to software emulation.
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} runs VMs with TCG: {{ runcvm.host.accelerator_reason }}"
  when: runcvm.host.accelerator == 'tcg'
"""

RETURN = r"""
host:
  description: Facts about the host's RunCVM set-up.
  returned: always
  type: dict
  contains:
    format_version:
      description: Version of this structure; bumped when a key changes meaning or goes away.
      type: str
      sample: "1.0"
    accelerator:
      description: The accelerator VMs get when none is forced, C(kvm) or C(tcg).
      type: str
      sample: tcg
    accelerator_reason:
      description: Why that accelerator, in a sentence.
      type: str
      sample: "TCG (software emulation, slow): KVM is not usable (/dev/kvm: No such file or directory)"
    payload:
      description: >-
        The payload directory, whether a payload is installed there, and the digest of its
        manifest (null when none is installed).
      type: dict
      sample: {"path": "/opt/runcvm", "installed": true, "digest": "bb91ba3b3cddc6e1..."}
    kernels:
      description: >-
        The guest kernels installed under the payload's C(kernels) directory, by distribution:
        their C(versions), oldest first, the version C(latest) points to, and each version's
        manifest digest (null for a kernel installed without one).
      type: dict
      sample: {"debian": {"versions": ["6.1.0-50-cloud-amd64", "6.12.117+deb13-cloud-amd64"],
                          "latest": "6.12.117+deb13-cloud-amd64",
                          "digests": {"6.1.0-50-cloud-amd64": "3e24e3a1...",
                                      "6.12.117+deb13-cloud-amd64": "d5b4877b..."}}}
    runtime:
      description: >-
        The registration of the runtime O(runtime) names: its C(name), C(registered), its C(path),
        the C(daemon_json) file read and C(daemon_json_problem), the reason that file could not be
        read, or null.
      type: dict
      sample: {"name": "runcvm", "registered": false, "path": null,
               "daemon_json": "/etc/docker/daemon.json", "daemon_json_problem": null}
    vm_defaults:
      description: >-
        The host's defaults for RunCVM containers (see M(runcvm.runcvm.runcvm_defaults)): the
        file's C(path), the C(RUNCVM_*) C(variables) it gives every container, and C(problem), why
        it cannot be read (a container's create then fails naming it), or null.
      type: dict
      sample: {"path": "/etc/runcvm/defaults.env", "variables": {"RUNCVM_WARM_START": "1"}, "problem": null}
    kernel_modules:
      description: >-
        The kernel modules VMs rely on (C(tun) for their network, the KVM module matching the CPU,
        null without hardware virtualisation), the device each provides and whether it is present.
      type: dict
      sample: {"tun": {"module": "tun", "device": "/dev/net/tun", "present": true},
               "kvm": {"module": null, "device": "/dev/kvm", "present": false}}
containers:
  description: >-
    The running containers under the runtime, by name: id, name, image, status, start time,
    C(memory) and C(nano_cpus) as given to Docker (null when unset), the C(RUNCVM_*) options
    in their environment (the host's defaults, RV(host.vm_defaults), apply under them), and
    C(vm_overhead), what RunCVM's helpers (the launcher, its network follower, QEMU, virtiofsd)
    take beside the VM's own memory in MiB of proportional set size (C(pss_mib)), of which
    C(mapped_files_mib) maps files that every VM on the host shares (the payload's binaries),
    C(by_helper) by process name; null where /proc cannot tell (the module is not run as root).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "c2469a61...", "name": "web", "image": "nginx", "status": "running",
            "started_at": "2026-11-29T06:00:20.59Z", "memory": 536870912, "nano_cpus": null,
            "runcvm_options": {"RUNCVM_KERNEL": "debian"},
            "vm_overhead": {"pss_mib": 212.3, "mapped_files_mib": 87.2,
                            "by_helper": {"qemu-system-x86": 166.4, "runcvm-launcher": 24.2,
                                          "runcvm-network": 18.3, "virtiofsd": 3.4}}}]
containers_problem:
  description: Why the containers could not be listed (no docker client, dockerd not answering), or null.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.runcvm.runcvm.plugins.module_utils._containers import running_containers
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import PAYLOAD_DIR, RUNTIME_NAME
from ansible_collections.runcvm.runcvm.plugins.module_utils._host import host_facts


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "payload_dir": {"type": "path", "default": PAYLOAD_DIR},
            "daemon_json": {"type": "path", "default": "/etc/docker/daemon.json"},
            "runtime": {"type": "str", "default": RUNTIME_NAME},
        },
        supports_check_mode=True,
    )
    params = module.params
    if module.get_bin_path("docker") is None:
        containers, problem = [], "no docker client on the host"
    else:
        containers, problem = running_containers(module.run_command, params["runtime"])
    module.exit_json(changed=False, host=host_facts(params["payload_dir"], params["daemon_json"], params["runtime"]),
                     containers=containers, containers_problem=problem)


if __name__ == "__main__":
    main()
