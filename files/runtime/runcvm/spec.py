"""Rewrites a container's OCI config.json so that its first process is RunCVM's launcher.

Each modifier is a small idempotent function of the spec: applying the list twice gives the
same spec as applying it once. The launcher learns what the container was meant to run from
one environment variable, RUNCVM_HANDOFF (JSON), and removes it before the workload sees its
environment.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils import _vm_options as runcvm_options
from ansible_collections.runcvm.runcvm.plugins.module_utils._accel import (
    AcceleratorError, KvmStatus, choose_accelerator, host_kvm_status,
)
from ansible_collections.runcvm.runcvm.plugins.module_utils._kernel_select import (
    KernelChoice, KernelSelectionError, installed_kernels, select_kernel,
)
from runcvm.namespaces import namespace_id

PAYLOAD_DIR = "/opt/runcvm"
GUEST_DIR = "/.runcvm/guest"
STATE_DIR = "/.runcvm"
VM_ROOT = "/vm"
DISKS_DIR = runcvm_options.CONTAINER_ONLY_DIR
LAUNCHER = f"{GUEST_DIR}/runtime/runcvm-launcher"
EXEC_CLIENT = f"{GUEST_DIR}/runtime/runcvm-exec"
HANDOFF = "RUNCVM_HANDOFF"
EXEC_REQUEST = "RUNCVM_EXEC"
# `docker exec CONTAINER --- COMMAND` runs COMMAND in the container itself, not in the VM.
ESCAPE = "---"
DOCKER_INITS = ("/sbin/docker-init", "/dev/init")

# The VM gets --memory, or this much without it; the container's cgroup gets the VM plus an
# overhead for QEMU, virtiofsd and the launcher.
DEFAULT_MEMORY_MIB = 512
MEMORY_OVERHEAD_MIB = 256
MINIMUM_MEMORY_MIB = 64

# What the launcher needs beyond Docker's default capabilities: network plumbing and device nodes.
CAPABILITIES = ("CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SYS_CHROOT")
DEVICES = (("/dev/kvm", 10, 232), ("/dev/net/tun", 10, 200))


class SpecError(Exception):
    """The container cannot be made a VM; the message names the option and the fix."""


@dataclasses.dataclass(frozen=True)
class Context:
    """What the modifiers need besides the spec itself."""

    bundle: str
    payload_dir: str = PAYLOAD_DIR
    kvm_status: t.Callable[[], KvmStatus] = host_kvm_status
    # The runtime runs in the network namespace dockerd gives --network=host: the host's.
    host_network_namespace: t.Callable[[], str | None] = namespace_id

    @property
    def kernels_dir(self) -> str:
        return os.path.join(self.payload_dir, "kernels")


Modifier = t.Callable[[dict, Context], None]


def env_value(spec: dict, name: str) -> str | None:
    for entry in spec["process"].get("env") or []:
        key, separator, value = entry.partition("=")
        if separator and key == name:
            return value
    return None


def handoff(spec: dict) -> dict:
    value = env_value(spec, HANDOFF)
    return json.loads(value) if value else {}


def set_handoff(spec: dict, **values: t.Any) -> None:
    merged = {**handoff(spec), **values}
    env = [entry for entry in spec["process"].get("env") or [] if not entry.startswith(f"{HANDOFF}=")]
    spec["process"]["env"] = [*env, f"{HANDOFF}={json.dumps(merged, sort_keys=True)}"]


def root_path(spec: dict, context: Context) -> str:
    return os.path.join(context.bundle, spec["root"]["path"])


def check_options(spec: dict, context: Context) -> None:
    """Refuse bad RUNCVM_* options now, so `docker run` names them; that includes asking for KVM
    on a host where it cannot boot a stock kernel (the container sees the host's /dev/kvm)."""
    try:
        options = runcvm_options.parse(runcvm_options.env_dict(spec["process"].get("env") or []))
        choose_accelerator(options.accel, context.kvm_status())
    except (runcvm_options.OptionError, AcceleratorError) as error:
        raise SpecError(str(error)) from error


NETWORK_CHOICES = "use the default bridge network, a user-defined network (--network NAME) or --network=none"


def network_namespace(spec: dict, context: Context) -> None:
    """Refuse a container without a network namespace of its own: the launcher moves its addresses
    and interfaces to the VM, which would take them from the host (--network=host) or from another
    container or pod (--network=container:...). The host's namespace is recorded for the launcher,
    which checks it again before it touches anything."""
    host = context.host_network_namespace()
    network = next((ns for ns in spec.get("linux", {}).get("namespaces") or [] if ns.get("type") == "network"), None)
    joined = network.get("path") if network else None
    if network is None or (joined and namespace_id(joined) == host):
        raise SpecError("--network=host is not supported by RunCVM: the VM takes over the addresses and "
                        f"interfaces of the container's network namespace, and this one is the host's; {NETWORK_CHOICES}")
    if joined:
        raise SpecError(f"the container joins another network namespace ({joined}: --network=container:... or a "
                        "pod's), which RunCVM does not support: the VM takes over the addresses and interfaces of "
                        f"the container's network namespace, so it needs one of its own; {NETWORK_CHOICES}")
    if host:
        set_handoff(spec, host_network_namespace=host)


def entrypoint(spec: dict, context: Context) -> None:
    """Run the launcher first; it runs the original command in the VM. Docker's --init is
    dropped: RunCVM's guest init reaps and forwards signals itself."""
    process = spec["process"]
    args = process["args"]
    if args[0] == LAUNCHER:
        return
    if args[0] in DOCKER_INITS:
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != args[0]]
        args = args[2:] if args[1:2] == ["--"] else args[1:]
        set_handoff(spec, docker_init=True)
    set_handoff(spec, args=args, cwd=process.get("cwd", "/"), terminal=bool(process.get("terminal")),
                env=runcvm_options.workload_env(process.get("env") or []))
    process["args"] = [LAUNCHER]


def identity(spec: dict, context: Context) -> None:
    """The launcher runs as root; the workload's uid, gid and groups go to the VM."""
    if "user" in handoff(spec):
        return
    user = spec["process"].get("user") or {}
    set_handoff(spec, user={"uid": user.get("uid", 0), "gid": user.get("gid", 0),
                            "groups": user.get("additionalGids") or [], "umask": user.get("umask")})
    spec["process"]["user"] = {"uid": 0, "gid": 0}


def mounts(spec: dict, context: Context) -> None:
    """The VM's root is the container's root seen at /vm, with every bind mount but /disks under
    it; tmpfs mounts are made by the VM itself. The order matters: runc mounts in array order,
    and the /vm rbind carries /.runcvm and /.runcvm/guest into the VM's view."""
    if any(m["destination"] == STATE_DIR for m in spec["mounts"]):
        return
    tmpfs, kept = [], []
    for mount in spec["mounts"]:
        destination = mount["destination"]
        if mount.get("type") == "tmpfs" and not _under(destination, "/dev"):
            tmpfs.append({"destination": destination, "options": [o for o in mount.get("options", [])
                                                                  if o not in ("rprivate", "private")]})
            continue
        if mount.get("type") == "bind" and not _under(destination, DISKS_DIR):
            mount = {**mount, "destination": VM_ROOT + destination}
        kept.append(mount)
    set_handoff(spec, tmpfs=tmpfs)
    spec["mounts"] = [
        {"destination": STATE_DIR, "type": "tmpfs", "source": "runcvm",
         "options": ["nosuid", "nodev", "size=16m", "mode=700"]},
        {"destination": GUEST_DIR, "type": "bind", "source": context.payload_dir,
         "options": ["rbind", "rprivate", "ro"]},
        {"destination": VM_ROOT, "type": "bind", "source": root_path(spec, context),
         "options": ["rbind", "rprivate", "rw"]},
        *kept,
        {"destination": "/run", "type": "tmpfs", "source": "run",
         "options": ["nosuid", "nodev", "size=16m", "mode=755"]},
    ]


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def devices(spec: dict, context: Context) -> None:
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


def capabilities(spec: dict, context: Context) -> None:
    sets = spec["process"].setdefault("capabilities", {})
    for name in ("bounding", "effective", "permitted"):
        current = sets.setdefault(name, [])
        current.extend(cap for cap in CAPABILITIES if cap not in current)


def seccomp(spec: dict, context: Context) -> None:
    """QEMU and virtiofsd need system calls Docker's default profile refuses."""
    spec.get("linux", {}).pop("seccomp", None)


def memory(spec: dict, context: Context) -> None:
    if "memory_mib" in handoff(spec):
        return
    limits = spec.setdefault("linux", {}).setdefault("resources", {}).setdefault("memory", {})
    limit = limits.get("limit")
    vm_mib = DEFAULT_MEMORY_MIB if not limit or limit < 0 else limit // 2**20
    if vm_mib < MINIMUM_MEMORY_MIB:
        raise SpecError(f"--memory {limit // 2**20}m is too small for a VM: give it at least "
                        f"--memory {MINIMUM_MEMORY_MIB}m")
    new_limit = (vm_mib + MEMORY_OVERHEAD_MIB) * 2**20
    swap = limits.get("swap")
    if swap is not None and swap >= 0:
        # Docker sets swap as memory plus swap; keep the swap part, so runc accepts the new limit.
        limits["swap"] = new_limit + max(0, swap - (limit or 0)) if limit and limit > 0 else new_limit
    limits["limit"] = new_limit
    set_handoff(spec, memory_mib=vm_mib)


def cpus(spec: dict, context: Context) -> None:
    """--cpus becomes that many vCPUs, rounded up; without it the VM gets every CPU the
    container may use. The CPU quota stays, so the cgroup still caps QEMU."""
    cpu = spec.get("linux", {}).get("resources", {}).get("cpu") or {}
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    set_handoff(spec, cpus=math.ceil(quota / period) if quota > 0 and period > 0 else None)


def kernel(spec: dict, context: Context) -> None:
    if "kernel" in handoff(spec):
        return
    root = root_path(spec, context)
    os_release = _read_os_release(root)
    try:
        choice = select_kernel(env_value(spec, "RUNCVM_KERNEL"), os_release,
                               lambda path: _exists_in(root, path), installed_kernels(context.kernels_dir),
                               context.kernels_dir)
    except KernelSelectionError as error:
        raise SpecError(str(error)) from error
    set_handoff(spec, kernel={"kernel": choice.kernel, "initrd": choice.initrd, "root": choice.root_arguments,
                              "source": choice.source, "version": choice.version, "note": choice.note})
    if choice.modules:
        spec["mounts"].append(_modules_mount(choice, context))


def _modules_mount(choice: KernelChoice, context: Context) -> dict:
    return {"destination": f"{VM_ROOT}/lib/modules/{choice.version}", "type": "bind",
            "source": os.path.join(context.kernels_dir, choice.modules), "options": ["rbind", "rprivate", "ro"]}


def _read_os_release(root: str) -> str | None:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        path = _resolve_in(root, candidate)
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
    return None


def _resolve_in(root: str, path: str, depth: int = 0) -> str | None:
    """`path` inside the image rooted at `root`, following symlinks as the image sees them."""
    if depth > 40:
        return None
    current = root
    parts = [part for part in path.strip("/").split("/") if part]
    for index, part in enumerate(parts):
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            target = os.readlink(candidate)
            rest = "/".join(parts[index + 1:])
            base = target if target.startswith("/") else os.path.join(current[len(root):] or "/", target)
            return _resolve_in(root, os.path.normpath(os.path.join(base, rest)), depth + 1)
        current = candidate
    return current


def _exists_in(root: str, path: str) -> bool:
    resolved = _resolve_in(root, path)
    return bool(resolved) and os.path.isfile(resolved)


MODIFIERS: tuple[Modifier, ...] = (check_options, network_namespace, entrypoint, identity, mounts, devices, capabilities, seccomp, memory, cpus, kernel)


def rewrite(spec: dict, context: Context, modifiers: t.Iterable[Modifier] = MODIFIERS) -> dict:
    for modify in modifiers:
        modify(spec, context)
    return spec


def rewrite_exec(process: dict) -> dict:
    """A `docker exec` process.json: run RunCVM's exec client in the container, which asks the
    VM to run the requested process with its argv, environment, user, directory and terminal."""
    args = process["args"]
    if args[:1] == [ESCAPE]:
        process["args"] = args[1:]
        return process
    if args[:1] == [EXEC_CLIENT]:
        return process
    user = process.get("user") or {}
    request = {"args": args, "env": runcvm_options.workload_env(process.get("env") or []),
               "cwd": process.get("cwd") or "/", "terminal": bool(process.get("terminal")),
               "user": {"uid": user.get("uid", 0), "gid": user.get("gid", 0),
                        "groups": user.get("additionalGids") or [], "umask": user.get("umask")}}
    process["args"] = [EXEC_CLIENT]
    process["env"] = [f"{EXEC_REQUEST}={json.dumps(request)}"]
    process["user"] = {"uid": 0, "gid": 0}
    # The directory is the VM's to enter; it may exist only there (a tmpfs, a path the workload made).
    process["cwd"] = "/"
    return process
