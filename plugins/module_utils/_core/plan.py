# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection. It is part of the core shared by
# the modules and the runtime payload: standard library imports only.
"""What one stage of RunCVM hands the next, as typed values with a versioned JSON form.

    runtime wrapper (host, at create) --VmPlan--> launcher (container) --GuestConfig--> guest init (VM)
    launcher / exec client --Process--> guest agent (one per workload or docker exec)

The wrapper decides everything it can once, when the container is created; the launcher and the
guest init only read. The reading end checks the version and every field's type and names the
first that is wrong, so a payload and a runtime of different versions fail with words.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import types
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout

# Imported only where a VmPlan's options are read: the guest init and the exec client never
# handle them, and under TCG the import costs the VM's boot a quarter of a second.
OPTIONS_MODULE = "ansible_collections.runcvm.runcvm.plugins.module_utils._core.options"

# Raise with any change of the fields below: a reader refuses a value of another version.
VERSION = 3


class PlanError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    umask: int | None = None


@dataclasses.dataclass(frozen=True)
class TerminalSize:
    rows: int
    cols: int


@dataclasses.dataclass(frozen=True)
class Process:
    """A process for the VM to run: the container's workload or a docker exec."""

    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: User
    terminal: bool = False
    size: TerminalSize | None = None


@dataclasses.dataclass(frozen=True)
class Kernel:
    kernel: str                # path QEMU opens, as the container sees it
    initrd: str
    root_arguments: str        # what makes the initramfs mount the virtiofs root
    source: str                # installed, or image
    version: str | None
    note: str | None = None    # why this kernel, when it is not the obvious one


@dataclasses.dataclass(frozen=True)
class Tmpfs:
    destination: str
    options: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class VmPlan:
    """What the runtime decided when the container was created."""

    workload: Process
    options: t.Any             # options.Options, carried as the RUNCVM_* variables that give it
    accelerator: str           # kvm or tcg
    accelerator_warning: str | None  # said on stderr when the VM falls back to TCG unasked
    memory_mib: int
    cpus: int | None           # None: every CPU the container may use
    pids_limit: int | None     # --pids-limit, for the VM's processes; None: no limit
    kernel: Kernel
    tmpfs: tuple[Tmpfs, ...]
    host_network_namespace: str  # the one network namespace the launcher must never touch
    init_system: str | None = None  # options.INIT_SYSTEMS: the workload is the VM's own PID 1
    cgroupfs: str = "hybrid"        # a value of options.CGROUPFS_MODES
    rewrite_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Interface:
    name: str
    mac: str                   # the VM NIC's
    mtu: int
    addresses: tuple[str, ...]
    tap: str
    bridge: str


DEFAULT_ROUTE = "0.0.0.0/0"
DEFAULT_ROUTE_6 = "::/0"


@dataclasses.dataclass(frozen=True)
class Route:
    destination: str           # CIDR; DEFAULT_ROUTE is the default route
    gateway: str | None
    interface: str


@dataclasses.dataclass(frozen=True)
class Network:
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...]
    # The launcher's own address on a bridge, which the VM reaches: its DNS proxy and QEMU's VNC
    # display listen there, when the container needs either.
    launcher_address: str | None = None
    launcher_interface: str | None = None  # the interface that reaches it


@dataclasses.dataclass(frozen=True)
class GuestDisk:
    serial: str
    dst: str
    fs: str


@dataclasses.dataclass(frozen=True)
class GuestConfig:
    """What the guest init sets up before it serves the launcher."""

    network: Network
    hostname: str
    tmpfs: tuple[Tmpfs, ...]
    resolv_conf: str | None    # a file to bind over /etc/resolv.conf
    disks: tuple[GuestDisk, ...]
    pids_limit: int | None = None  # how many processes the workload and its execs may have
    init_system: str | None = None  # the workload becomes PID 1 of the VM (options.INIT_SYSTEMS)
    cgroupfs: str = "hybrid"        # how the guest mounts cgroups: a value of options.CGROUPFS_MODES
    display: str = "none"           # options.QEMU_DISPLAYS: vnc, the guest relays layout.VNC_PORT to QEMU
    random_seed: str = ""           # hex: mixed into the guest's random number generator, which a VM restored from a template shares
    program_dirs: tuple[str, ...] = ()  # bound from layout.PROGRAMS_VIRTIOFS_TAG (RUNCVM_VIRTIOFSD_CACHE=programs)


def template_mac(index: int) -> str:
    """The MAC of a warm start's template VM's NIC `index`, which the restored guest replaces with
    that of the container's interface `index`."""
    return f"{layout.TEMPLATE_MAC_PREFIX}:{index:02x}"


T = t.TypeVar("T")


def to_json(value: t.Any) -> t.Any:
    """`value` (a dataclass of this module, or what its fields hold) as JSON-ready data."""
    options = sys.modules.get(OPTIONS_MODULE)  # not imported: no value can be its Options
    if options is not None and isinstance(value, options.Options):
        return options.render(value)
    if dataclasses.is_dataclass(value):
        return {field.name: to_json(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [to_json(item) for item in value]
    return value


def dumps(value: t.Any) -> str:
    return json.dumps({"version": VERSION, **to_json(value)}, sort_keys=True)


def loads(cls: type[T], text: str | bytes, what: str) -> T:
    """The `cls` that `text` holds; PlanError naming `what` and the first thing wrong."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise PlanError(f"{what} is not JSON: {error}") from error
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        found = raw.get("version") if isinstance(raw, dict) else None
        raise PlanError(f"{what} has version {found}, this RunCVM reads version {VERSION}: the runtime and "
                        "the payload differ; reinstall RunCVM with the runcvm.runcvm.install role")
    return from_json(cls, {key: value for key, value in raw.items() if key != "version"}, what)


def from_json(cls: type[T], raw: t.Any, where: str) -> T:
    """Rebuild `cls` from to_json's output, checking every field's type."""
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: expected an object, found {type(raw).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise PlanError(f"{where}: unknown field {unknown[0]}")
    hints = _field_types(cls)
    values = {}
    for name, field in fields.items():
        if name in raw:
            values[name] = _decode(hints[name], raw[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING:
            raise PlanError(f"{where}: missing field {name}")
    return cls(**values)


@functools.cache
def _field_types(cls: type) -> dict[str, t.Any]:
    """The types of `cls`'s fields, which this module's annotations hold as strings: each one
    compiled and evaluated, once."""
    return t.get_type_hints(cls)


def resolve_field_types(*classes: type) -> None:
    """Resolve the field types of `classes` and of the dataclasses they hold, for `loads`. A warm
    start's template does it before it is saved: a VM restored from it would otherwise compile
    them, and under TCG every path of the interpreter and the kernel that runs for the first time
    after a restore is translated anew."""
    for cls in classes:
        for hint in _field_types(cls).values():
            resolve_field_types(*_dataclasses_in(hint))


def _dataclasses_in(hint: t.Any) -> t.Iterator[type]:
    if dataclasses.is_dataclass(hint):
        yield hint
    for inner in t.get_args(hint):
        yield from _dataclasses_in(inner)


def _decode(hint: t.Any, raw: t.Any, where: str) -> t.Any:
    origin, args = t.get_origin(hint), t.get_args(hint)
    if hint is t.Any:  # the only Any field is the options, carried as their variables
        if not isinstance(raw, dict):
            raise PlanError(f"{where}: expected the RUNCVM_* variables")
        from ansible_collections.runcvm.runcvm.plugins.module_utils._core import options  # pylint: disable=import-outside-toplevel
        try:
            return options.parse(raw)
        except options.OptionError as error:
            raise PlanError(f"{where}: {error}") from error
    if origin in (t.Union, types.UnionType):
        if raw is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _decode(inner, raw, where)
    if origin is tuple:
        if not isinstance(raw, list):
            raise PlanError(f"{where}: expected a list, found {type(raw).__name__}")
        return tuple(_decode(args[0], item, f"{where}[{index}]") for index, item in enumerate(raw))
    if dataclasses.is_dataclass(hint):
        return from_json(hint, raw, where)
    if hint is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, hint) or (hint is int and isinstance(raw, bool)):
        raise PlanError(f"{where}: expected {hint.__name__}, found {type(raw).__name__}")
    return raw
