"""Rewrites a container's OCI config.json at create so that its first process is RunCVM's launcher,
and decides, once, everything about the VM: the plan the launcher reads.

Each modifier handles one concern: it edits the spec and records what it decided in the plan's
fields. `rewrite` runs them in order and returns the VmPlan; the wrapper writes it to the bundle,
and the spec bind-mounts it read-only at layout.PLAN_FILE, where only the launcher sees it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan, refusals
from ansible_collections.runcvm.runcvm.plugins.module_utils._core import options as runcvm_options
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.accel import (
    AcceleratorError, KvmStatus, choose_accelerator, host_kvm_status,
)
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.kernels import (
    KernelSelectionError, installed_kernels, select_kernel,
)
from runcvm import image_root, namespaces
from runcvm.exec_spec import oci_process
from runcvm.namespaces import namespace_id

# Podman's --init: its catatonit is bind-mounted at /dev/init, which the VM's own /dev hides.
HIDDEN_INITS = ("/dev/init",)
# The plan's file in the bundle, bind-mounted at layout.PLAN_FILE.
PLAN_NAME = "runcvm-plan.json"
# The bundle's directory behind the container's /.runcvm: containerd removes it with the bundle.
STATE_NAME = "runcvm-state"

# The VM gets --memory, or this much without it; the container's cgroup gets the VM plus an
# overhead for QEMU, virtiofsd and the launcher. Measured (bench/suite.py), a container whose VM's
# memory is all taken peaks 120 to 140 MiB beyond it booted cold under TCG (64 of them TCG's
# translation buffer) and 75 to 85 restored from a template; the rest is room for the page cache of
# the kernel and the template (about 50 and 90 MiB, charged to the first container that reads or
# writes them), `programs`' second virtiofsd, hot-plugged NICs and disks.
DEFAULT_MEMORY_MIB = 512
MEMORY_OVERHEAD_MIB = 256
# --pids-limit counts the VM's processes, inside it; the container's own limit leaves room for
# QEMU's, virtiofsd's and the launcher's threads besides.
PIDS_OVERHEAD = 256

# What the launcher needs beyond Docker's default capabilities: network plumbing and device nodes.
CAPABILITIES = ("CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SYS_CHROOT")
DEVICES = ((layout.KVM_DEVICE, 10, 232), (layout.TUN_DEVICE, 10, 200))


class SpecError(Exception):
    """The container cannot be made a VM; the message names the option and the fix."""


def host_huge_pages_free_mib(meminfo: str = "/proc/meminfo") -> int:
    """How much memory the host's free huge pages hold, in MiB."""
    values = {}
    with open(meminfo, encoding="ascii") as handle:
        for line in handle:
            name, value = line.split(":", 1)
            values[name] = int(value.split()[0])
    return values.get("HugePages_Free", 0) * values.get("Hugepagesize", 0) // 1024


@dataclasses.dataclass(frozen=True)
class Context:
    """What the modifiers need besides the spec itself."""

    bundle: str
    payload_dir: str = layout.PAYLOAD_DIR
    kvm_status: t.Callable[[], KvmStatus] = host_kvm_status
    huge_pages_free_mib: t.Callable[[], int] = host_huge_pages_free_mib
    # The runtime runs in the network namespace dockerd gives --network=host: the host's.
    host_network_namespace: t.Callable[[], str | None] = namespace_id
    network_namespace_in_use: t.Callable[[str], bool] = namespaces.in_use

    templates_dir: str = layout.HOST_TEMPLATES_DIR
    defaults_file: str = layout.HOST_DEFAULTS_FILE

    @property
    def kernels_dir(self) -> str:
        return os.path.join(self.payload_dir, layout.KERNELS_SUBDIR)

    @property
    def plan_path(self) -> str:
        return os.path.join(self.bundle, PLAN_NAME)

    @property
    def state_dir(self) -> str:
        return os.path.join(self.bundle, STATE_NAME)

    def root(self, spec: dict) -> str:
        return os.path.join(self.bundle, spec["root"]["path"])


# A modifier edits the spec and sets the plan fields it decides; later ones may read earlier ones'.
Modifier = t.Callable[[dict, Context, dict], None]


def options(spec: dict, context: Context, fields: dict) -> None:
    """Parse the RUNCVM_* options (the container's own over the host's defaults) and choose the
    accelerator, refusing bad values now so that `docker run` names them; that includes asking for
    KVM where it cannot boot a stock kernel."""
    try:
        env = runcvm_options.env_dict(spec["process"].get("env") or [])
        fields["options"] = runcvm_options.parse({**runcvm_options.read_defaults(context.defaults_file), **env})
        accelerator = choose_accelerator(fields["options"].accel, context.kvm_status())
    except (runcvm_options.OptionError, AcceleratorError) as error:
        raise SpecError(str(error)) from error
    fields["accelerator"] = accelerator.name
    unasked_tcg = accelerator.name == "tcg" and fields["options"].accel != "tcg"
    fields["accelerator_warning"] = f"warning: {accelerator.reason}" if unasked_tcg else None


def network_namespace(spec: dict, context: Context, fields: dict) -> None:
    """Refuse a container without a network namespace of its own: the launcher moves its addresses
    and interfaces to the VM, which would take them from the host (--network=host) or from another
    container or pod (--network=container:...). A namespace made beforehand that no process is in
    yet is the container's own: Podman's way. The host's namespace goes in the plan, and the
    launcher checks it again before it touches anything."""
    host = context.host_network_namespace()
    network = next((ns for ns in spec.get("linux", {}).get("namespaces") or [] if ns.get("type") == "network"), None)
    joined = network.get("path") if network else None
    if network is None or (joined and namespace_id(joined) == host):
        raise SpecError(refusals.for_docker_run("network_mode", "host", "--network=host"))
    if joined and context.network_namespace_in_use(joined):
        raise SpecError(refusals.for_docker_run("network_mode", "container:", "--network=container:... (the container "
                                                f"joins another network namespace, {joined}, as a pod's would)"))
    fields["host_network_namespace"] = host or ""


def workload(spec: dict, context: Context, fields: dict) -> None:
    """The launcher runs first, as root; the original process, with its user, goes to the VM.
    Docker's --init (/sbin/docker-init, a static tini) runs in the VM as under runc: the
    workload's PID 1 and parent. An init the VM cannot see is dropped: RunCVM's guest init reaps
    and forwards signals itself."""
    process = spec["process"]
    args = process["args"]
    if args[0] in HIDDEN_INITS:
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != args[0]]
        args = args[2:] if args[1:2] == ["--"] else args[1:]
    fields["workload"] = oci_process(process, args)
    process["args"] = [layout.LAUNCHER]
    process["user"] = {"uid": 0, "gid": 0}


def init_system(spec: dict, context: Context, fields: dict) -> None:
    """Whether the workload is an init system that owns the VM as its PID 1: as the option says,
    or, by default, as what its command resolves to in the image; and so how the VM's cgroup
    filesystems are mounted."""
    chosen = fields["options"].init_system
    if chosen == "auto":
        workload = fields["workload"]
        chosen = image_root.init_system(context.root(spec), workload.args, workload.env)
    fields["init_system"] = None if chosen == "none" else chosen
    cgroupfs = fields["options"].cgroupfs
    fields["cgroupfs"] = runcvm_options.CGROUPFS_MODES[cgroupfs] if cgroupfs != "auto" else \
        "none" if fields["init_system"] else "hybrid"


def mounts(spec: dict, context: Context, fields: dict) -> None:
    """The VM's root is the container's root seen at /vm, with every bind mount but /disks under
    it; tmpfs mounts are made by the VM itself. The order matters: runc mounts in array order.
    The launcher writes /.runcvm; the VM sees it (and the payload in it) through read-only mounts
    of its own, over what the /vm rbind carried, and never sees /run. RUNCVM_WARM_START adds the
    host's templates and the root a template VM boots on (launcher/templates.py)."""
    tmpfs, kept = [], []
    for mount in spec["mounts"]:
        destination = mount["destination"]
        if mount.get("type") == "tmpfs" and not _under(destination, "/dev"):
            options = tuple(o for o in mount.get("options", []) if o not in ("rprivate", "private"))
            tmpfs.append(plan.Tmpfs(destination, options))
            continue
        if mount.get("type") == "bind" and not _under(destination, layout.DISKS_DIR):
            mount = {**mount, "destination": layout.VM_ROOT + destination}
        kept.append(mount)
    fields["tmpfs"] = tuple(tmpfs)
    payload = {"type": "bind", "source": context.payload_dir, "options": ["rbind", "rprivate", "ro"]}
    spec["mounts"] = [
        {"destination": layout.STATE_DIR, "type": "bind", "source": context.state_dir,
         "options": ["bind", "rprivate", "nosuid", "nodev"]},
        {"destination": layout.GUEST_DIR, **payload},
        {"destination": layout.VM_ROOT, "type": "bind", "source": context.root(spec),
         "options": ["rbind", "rprivate", "rw"]},
        {"destination": layout.VM_ROOT + layout.STATE_DIR, "type": "bind", "source": context.state_dir,
         "options": ["bind", "rprivate", "nosuid", "nodev", "ro"]},
        {"destination": layout.VM_ROOT + layout.GUEST_DIR, **payload},
        {"destination": layout.VM_ROOT + layout.GUEST_DNS_DIR, "type": "tmpfs", "source": "runcvm-dns",
         "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=755"]},
        *kept,
        {"destination": "/run", "type": "tmpfs", "source": "run",
         "options": ["nosuid", "nodev", "size=16m", "mode=755"]},
        {"destination": layout.PLAN_FILE, "type": "bind", "source": context.plan_path,
         "options": ["bind", "rprivate", "ro"]},
    ]
    if fields["options"].warm_start:
        os.makedirs(context.templates_dir, mode=0o700, exist_ok=True)
        spec["mounts"] += [
            {"destination": layout.TEMPLATES_DIR, "type": "bind", "source": context.templates_dir,
             "options": ["bind", "rprivate", "nosuid", "nodev", "noexec"]},
            {"destination": layout.TEMPLATE_ROOT + layout.STATE_DIR, "type": "bind", "source": context.state_dir,
             "options": ["bind", "rprivate", "nosuid", "nodev", "ro"]},
            {"destination": layout.TEMPLATE_ROOT + layout.GUEST_DIR, **payload},
        ]


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def devices(spec: dict, context: Context, fields: dict) -> None:
    linux = spec.setdefault("linux", {})
    nodes = linux.setdefault("devices", [])
    rules = linux.setdefault("resources", {}).setdefault("devices", [])
    for path, major, minor in DEVICES:
        if not any(node.get("path") == path for node in nodes):
            nodes.append({"path": path, "type": "c", "major": major, "minor": minor, "fileMode": 0o20666,
                          "uid": 0, "gid": 0})
        rule = {"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
        if rule not in rules:
            rules.append(rule)


def capabilities(spec: dict, context: Context, fields: dict) -> None:
    sets = spec["process"].setdefault("capabilities", {})
    wanted = (*CAPABILITIES, "CAP_SYS_ADMIN") if fields["options"].sys_admin else CAPABILITIES
    for name in ("bounding", "effective", "permitted"):
        current = sets.setdefault(name, [])
        current.extend(cap for cap in wanted if cap not in current)


def seccomp(spec: dict, context: Context, fields: dict) -> None:
    """QEMU and virtiofsd need system calls Docker's default profile refuses."""
    spec.get("linux", {}).pop("seccomp", None)


def container_memory(limits: dict) -> int:
    """Turn Docker's memory limits (--memory, --memory-swap) into the container's, which hold the
    VM and the overhead around it; the VM's memory in MiB."""
    limit = limits.get("limit")
    vm_mib = DEFAULT_MEMORY_MIB if not limit or limit < 0 else limit // 2**20
    too_small = refusals.for_docker_run("memory", limit or 0, f"--memory {(limit or 0) // 2**20}m")
    if too_small:
        raise SpecError(too_small)
    new_limit = (vm_mib + MEMORY_OVERHEAD_MIB) * 2**20
    swap = limits.get("swap")
    if swap is not None and swap >= 0:
        # Docker sets swap as memory plus swap; keep the swap part, so runc accepts the new limit.
        limits["swap"] = new_limit + max(0, swap - (limit or 0)) if limit and limit > 0 else new_limit
    limits["limit"] = new_limit
    return vm_mib


def memory(spec: dict, context: Context, fields: dict) -> None:
    vm_mib = container_memory(spec.setdefault("linux", {}).setdefault("resources", {}).setdefault("memory", {}))
    fields["memory_mib"] = vm_mib
    if fields["options"].hugetlb and context.huge_pages_free_mib() < vm_mib:
        raise SpecError(f"RUNCVM_HUGETLB=1 needs {vm_mib} MiB of free huge pages for the VM's memory, and this "
                        f"host has {context.huge_pages_free_mib()} MiB: raise vm.nr_hugepages (sysctl) or drop "
                        "RUNCVM_HUGETLB")


def vcpus(cpu: dict) -> int | None:
    """The vCPUs that Docker's CPU resources (--cpus as a quota) give a VM: that many CPUs, rounded
    up; None without a quota."""
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    return math.ceil(quota / period) if quota > 0 and period > 0 else None


def cpus(spec: dict, context: Context, fields: dict) -> None:
    """--cpus becomes that many vCPUs; without it the VM gets every CPU the container may use.
    The CPU quota stays, so the cgroup still caps QEMU."""
    fields["cpus"] = vcpus(spec.get("linux", {}).get("resources", {}).get("cpu") or {})


def container_pids(limits: dict) -> int | None:
    """Turn Docker's --pids-limit, for the VM's processes, into the container's, which leaves room
    for the helpers' threads besides; the VM's limit, or None."""
    limit = limits.get("limit") or 0
    if limit > 0:
        limits["limit"] = limit + PIDS_OVERHEAD
    return limit if limit > 0 else None


def pids(spec: dict, context: Context, fields: dict) -> None:
    fields["pids_limit"] = container_pids(spec.get("linux", {}).get("resources", {}).get("pids") or {})


def update_resources(resources: dict, vm_plan: plan.VmPlan) -> int | None:
    """`docker update`'s resources (runc update's), turned into the container's as at create; the
    VM memory asked (MiB), if any, which the runtime then gives the VM. The CPU quota caps QEMU as
    it capped the container. The VM can have at most the memory it booted with, and its own
    process limit is set when it boots: more memory, or another process limit, is refused."""
    memory_limits = resources.get("memory") or {}
    asked_mib = None
    if (memory_limits.get("limit") or 0) > 0:
        asked_mib = container_memory(memory_limits)
        if asked_mib > vm_plan.memory_mib:
            raise SpecError(f"--memory {asked_mib}m: the VM booted with {vm_plan.memory_mib} MiB, the most it can have "
                            "while it runs; recreate the container with the new --memory; nothing was changed")
    pids_limits = resources.get("pids") or {}
    if "limit" in pids_limits:
        asked_pids = pids_limits["limit"]
        if container_pids(pids_limits) != vm_plan.pids_limit:
            booted = f"--pids-limit {vm_plan.pids_limit}" if vm_plan.pids_limit else "no --pids-limit"
            raise SpecError(f"--pids-limit {asked_pids}: the VM booted with {booted} and keeps it while it runs; "
                            "recreate the container with the new --pids-limit; nothing was changed")
    return asked_mib


def kernel(spec: dict, context: Context, fields: dict) -> None:
    root = context.root(spec)
    try:
        choice = select_kernel(fields["options"].kernel, image_root.read_os_release(root),
                               lambda path: image_root.has_file(root, path), installed_kernels(context.kernels_dir),
                               context.kernels_dir)
    except KernelSelectionError as error:
        raise SpecError(str(error)) from error
    if fields["options"].qemu_display != "none":
        choice = choice.booted_by_firmware()
    fields["kernel"] = plan.Kernel(kernel=choice.kernel, initrd=choice.initrd, root_arguments=choice.root_arguments,
                                   source=choice.source, version=choice.version, note=choice.note)
    if choice.modules:
        modules = os.path.join(context.kernels_dir, choice.modules)
        whole_tree = fields["options"].kernel_mount_lib_modules
        spec["mounts"].append({"destination": f"{layout.VM_ROOT}/lib/modules" + ("" if whole_tree else f"/{choice.version}"),
                               "type": "bind", "source": os.path.dirname(modules) if whole_tree else modules,
                               "options": ["rbind", "rprivate", "ro"]})


MODIFIERS: tuple[Modifier, ...] = (options, network_namespace, workload, init_system, mounts, devices, capabilities,
                                   seccomp, memory, cpus, pids, kernel)


def rewritten(spec: dict) -> bool:
    return spec["process"]["args"][:1] == [layout.LAUNCHER]


def rewrite(spec: dict, context: Context, modifiers: t.Iterable[Modifier] = MODIFIERS) -> plan.VmPlan:
    """Apply the modifiers to `spec` and return the plan they decided."""
    if rewritten(spec):
        raise SpecError("config.json already runs RunCVM's launcher")
    fields: dict[str, t.Any] = {}
    for modify in modifiers:
        modify(spec, context, fields)
    return plan.VmPlan(**fields)
