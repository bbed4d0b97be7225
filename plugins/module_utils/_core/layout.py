# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection. It is part of the core shared by
# the modules and the runtime payload: standard library imports only.
"""Every fixed path and name that more than one part of RunCVM knows: the runtime wrapper on the
host, the launcher in the container, the guest init in the VM, the builders and the modules.

Three views of one tree: the payload is installed on the host at PAYLOAD_DIR, bind-mounted
read-only into each container at GUEST_DIR, and the container's root filesystem, which becomes the
VM's, is seen by the launcher at VM_ROOT.
"""

from __future__ import annotations

# The host.
PAYLOAD_DIR = "/opt/runcvm"
KVM_DEVICE = "/dev/kvm"
TUN_DEVICE = "/dev/net/tun"
KERNELS_SUBDIR = "kernels"
KERNELS_DIR = f"{PAYLOAD_DIR}/{KERNELS_SUBDIR}"
HOST_TEMPLATES_DIR = "/var/lib/runcvm/templates"  # RUNCVM_WARM_START's saved VMs (TEMPLATES_DIR in containers)
# RUNCVM_* variables every container on the host gets under its own (the install role's install_vm_defaults).
HOST_DEFAULTS_FILE = "/etc/runcvm/defaults.env"
RUNTIME_NAME = "runcvm"
RUNTIME_BINARY = f"{PAYLOAD_DIR}/bin/runcvm-runtime"

# Inside the payload: RunCVM's own Python code, and the launcher, guest init and exec client that
# the payload builder writes as small scripts starting ENTRY_POINTS[name].main.
RUNTIME_SUBDIR = "runtime"
ENTRY_POINTS = {
    "runcvm-launcher": "runcvm.launcher.main",
    "runcvm-init": "runcvm.guest.init",
    "runcvm-exec": "runcvm.exec_client",
}

# The container, around the VM.
STATE_DIR = "/.runcvm"                  # what the guest needs: written by the launcher, read-only to the VM
GUEST_DIR = f"{STATE_DIR}/guest"        # the payload
GUEST_RUNTIME_DIR = f"{GUEST_DIR}/{RUNTIME_SUBDIR}"
GUEST_KERNELS_DIR = f"{GUEST_DIR}/{KERNELS_SUBDIR}"
GUEST_PYTHON = f"{GUEST_DIR}/bin/python3"
BUSYBOX = f"{GUEST_DIR}/bin/busybox"
LAUNCHER = f"{GUEST_RUNTIME_DIR}/runcvm-launcher"
GUEST_INIT = f"{GUEST_RUNTIME_DIR}/runcvm-init"
EXEC_CLIENT = f"{GUEST_RUNTIME_DIR}/runcvm-exec"
VM_ROOT = "/vm"                         # the container's root filesystem, served to the VM
DISKS_DIR = "/disks"                    # volumes here stay in the container, out of the VM's view
RUN_DIR = "/run/runcvm"                 # the launcher's private state: the VM does not see /run
PLAN_FILE = f"{RUN_DIR}/plan.json"      # what the runtime decided (plan.VmPlan)
GUEST_CONFIG_FILE = f"{STATE_DIR}/vm.json"  # what the guest init is told (plan.GuestConfig)
GUEST_DNS_DIR = f"{STATE_DIR}/dns"      # a small tmpfs of the VM's own: its /etc/resolv.conf
GUEST_RESOLV_CONF = f"{GUEST_DNS_DIR}/resolv.conf"
VIRTIOFS_SOCKET = f"{RUN_DIR}/virtiofs.sock"
PROGRAMS_VIRTIOFS_SOCKET = f"{RUN_DIR}/virtiofs-programs.sock"  # RUNCVM_VIRTIOFSD_CACHE=programs
AGENT_SOCKET = f"{RUN_DIR}/agent.sock"
EXEC_SOCKET = f"{RUN_DIR}/exec.sock"
QMP_SOCKET = f"{RUN_DIR}/qmp.sock"                # QEMU's monitor, for the launcher's network follower
UPDATE_QMP_SOCKET = f"{RUN_DIR}/qmp-update.sock"  # and for the runtime's `update`, which resizes the VM
CONSOLE_LOG = f"{RUN_DIR}/console.log"
# RUNCVM_WARM_START: VMs saved once booted, shared by the host's containers (bind-mounted from
# HOST_TEMPLATES_DIR), and the console of the one a launcher makes.
TEMPLATES_DIR = f"{RUN_DIR}/templates"
TEMPLATE_CONSOLE = f"{RUN_DIR}/template-console.log"
# The root a template VM boots on: the payload and RunCVM's state where the VM has them, and empty
# mount points; nothing of the image, whose files (such as /etc/ld.so.preload) would otherwise
# reach every VM restored from the template.
TEMPLATE_ROOT = f"{RUN_DIR}/template-root"

# Between the container and the VM.
VIRTIOFS_TAG = "runcvmfs"
# RUNCVM_VIRTIOFSD_CACHE=programs: the device that serves the root's program directories, cached,
# where the guest init mounts it a moment to bind them from it, and which of the root's top-level
# directories are program directories (where they are directories, not links).
PROGRAMS_VIRTIOFS_TAG = "runcvmprograms"
GUEST_PROGRAMS_MOUNT = "/dev/.runcvm-programs"
PROGRAM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
AGENT_PORT_NAME = "org.runcvm.agent"
DISK_SERIAL_PREFIX = "runcvm-disk"
VM_MAC_PREFIX = "52:54:00"
TEMPLATE_MAC_PREFIX = "52:54:00:ff:ff"  # a warm start's template VM's NICs, numbered (plan.template_mac)
# What a warm start's template VM says on its console once it waits for a container's config.
TEMPLATE_READY = "template ready: waiting for a container's config"
# On a template VM's kernel command line: the guest init is to wait as a template.
TEMPLATE_ARGUMENT = "runcvm.template"
VNC_PORT = 5900                         # RUNCVM_QEMU_DISPLAY=vnc: the VM's screen, on the container's IP

# Trees a RUNCVM_DISKS file or mount point may not be in: RunCVM's own and the kernel's.
RESERVED_TREES = (STATE_DIR, VM_ROOT, "/proc", "/sys", "/dev")

# What the exec client says when no VM answers it (its status, 126, is also a VM's own answer for
# a command it cannot run): runcvm_container's wait tells the two apart by these words.
VM_NOT_UP = "the VM is not up"
