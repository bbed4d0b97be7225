# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
"""The documentation of RunCVM's own options, the C(RUNCVM_*) variables, as modules take them.

It must agree with the option table in plugins/module_utils/_core/options.py; a unit test checks."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  kernel:
    description:
      - The guest kernel, C(<dist>) or C(<dist>/<version>), from those the
        R(runcvm.runcvm.kernels,ansible_collections.runcvm.runcvm.kernels_role) role installed
        (C(RUNCVM_KERNEL)). Unset, an image with its own kernel boots it, and others boot the
        default distribution's latest kernel.
    type: str
  kernel_append:
    description: Extra kernel command-line arguments (C(RUNCVM_KERNEL_APPEND)).
    type: str
    default: ""
  kernel_debug:
    description: Show the VM's console (kernel and init messages) in the container's log (C(RUNCVM_KERNEL_DEBUG)).
    type: bool
    default: false
  accel:
    description:
      - The accelerator (C(RUNCVM_ACCEL)). V(auto) uses KVM where it can boot a stock kernel and TCG
        (software emulation) otherwise; V(kvm) fails the container's start where KVM is not usable.
    type: str
    choices: [auto, kvm, tcg]
    default: auto
  disks:
    description:
      - Block devices for the VM (C(RUNCVM_DISKS)), each backed by a file in the container.
      - A backing file that does not exist yet is created sparse at O(disks[].size) and formatted
        with O(disks[].fs), filled with what the image holds at O(disks[].dst); an existing one is
        mounted as it is. Put backing files on a volume mounted at C(/disks), which stays in the
        container, out of the VM's view, and keeps the data when the container is recreated.
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description: The backing file's absolute path in the container, such as C(/disks/data.img).
        type: str
        required: true
      dst:
        description: Where the VM mounts the disk, an absolute path.
        type: str
        required: true
      fs:
        description: The filesystem to create.
        type: str
        choices: [ext4, ext3, ext2]
        default: ext4
      size:
        description:
          - The size of a backing file to create, in bytes or with a K, M, G or T suffix (such as
            V(5G)). Needed when the file does not exist yet.
        type: str
  timing:
    description: Print where the run's time went on stderr when it ends (C(RUNCVM_TIMING)), in the container's log.
    type: bool
    default: false
  virtiofsd_cache:
    description:
      - virtiofsd's cache mode for the root filesystem (C(RUNCVM_VIRTIOFSD_CACHE)).
      - V(programs) serves the root as V(auto) but the image's program directories (C(/usr), and
        C(/bin), C(/sbin), C(/lib*) where they are directories) as V(always), through a second
        virtiofsd; a program directory with a volume or bind mount under it stays V(auto).
    type: str
    choices: [auto, always, never, none, programs]
    default: auto
  init_system:
    description:
      - Whether the workload is an init system that owns the VM as its PID 1 (C(RUNCVM_INIT_SYSTEM)).
      - V(auto) decides by what the workload's first argument resolves to in the image, such as
        C(/sbin/init) as a link to systemd; it finds systemd and busybox's C(init).
      - V(systemd) or V(busybox) say which init it is; V(none) runs the workload as any other, as
        PID 1 of a PID namespace of its own.
    type: str
    choices: [auto, systemd, busybox, none]
    default: auto
  cgroupfs:
    description:
      - How the VM's cgroup filesystems are mounted (C(RUNCVM_CGROUPFS)), in the original RunCVM's words.
      - V(none) or V(systemd) mount none (an init system mounts its own); V(1) or V(cgroup1) a tmpfs
        with each cgroup v1 controller the kernel has; V(hybrid) or V(mixed) those plus cgroup2 at
        C(/sys/fs/cgroup/unified); V(2) or V(cgroup2) cgroup2 alone.
      - V(auto) is V(none) when the workload is an init system, else V(hybrid).
    type: str
    choices: [auto, none, systemd, hybrid, mixed, '1', cgroup1, '2', cgroup2]
    default: auto
  kernel_mount_lib_modules:
    description:
      - Mount the kernel's modules over all of C(/lib/modules) in the VM, not only
        C(/lib/modules/<version>) (C(RUNCVM_KERNEL_MOUNT_LIB_MODULES)); OpenWrt images need this.
    type: bool
    default: false
  hugetlb:
    description:
      - Back the VM's memory with the host's huge pages (C(RUNCVM_HUGETLB)). The host must have as
        many free as the VM's memory (C(vm.nr_hugepages)); the container is refused when it has not.
    type: bool
    default: false
  sys_admin:
    description:
      - Give the container C(CAP_SYS_ADMIN) and the VM's root C(CAP_SYS_ADMIN) on its root
        filesystem, so it can set C(trusted.*) extended attributes (C(RUNCVM_SYS_ADMIN)).
    type: bool
    default: false
  qemu_display:
    description:
      - Give the VM a screen (C(RUNCVM_QEMU_DISPLAY)). V(vnc) serves a VGA screen and keyboard
        over VNC, without a password, on the container's port 5900; publish it on the host's
        loopback, for example as C(127.0.0.1:5900:5900) in C(published_ports).
      - The kernel's console shows there too, and an init system's login prompt on C(tty1).
    type: str
    choices: [none, vnc]
    default: none
  bios_debug:
    description: Show the firmware's (SeaBIOS) debug output on stderr (C(RUNCVM_BIOS_DEBUG)).
    type: bool
    default: false
  break_at:
    description:
      - Open a shell in the container at these stages of the launch (C(RUNCVM_BREAK)), for
        debugging RunCVM; the launch goes on when the shell exits. Needs an interactive container.
      - V(prenet) before the container's network is handed to the VM, V(postnet) after it,
        V(preqemu) before QEMU starts, with its command line shown.
    type: list
    elements: str
    choices: [prenet, postnet, preqemu]
    default: []
  runtime_debug:
    description:
      - Write what the runtime decided at create (the container's original and rewritten
        C(config.json) and the VM plan) to C(/tmp/runcvm-<container id>.json) on the host (C(RUNCVM_RUNTIME_DEBUG)).
    type: bool
    default: false
  warm_start:
    description:
      - Restore the VM from a template, a VM saved once booted, instead of booting it (C(RUNCVM_WARM_START)).
      - The first such container of its memory, vCPUs, NICs, kernel and payload makes the template, which
        the host's containers then share, in C(/var/lib/runcvm/templates).
      - A VM with O(disks), or with a kernel from its image, boots cold, and says why.
    type: bool
    default: false
    version_added: 0.2.0
"""
