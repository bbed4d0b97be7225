# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection. It is part of the core shared by
# the modules and the runtime payload: standard library imports only.
"""The RUNCVM_* options of a container, declared once in OPTIONS.

A user sets them with `docker run -e RUNCVM_...`, or with runcvm_container's typed options, which
`render` turns into the same variables. Everything else is derived from the table: the Options
type, `parse` (and its unknown-name check), `render`, runcvm_container's argument spec, and the
checks that the module's documentation and the README agree with it. The runtime parses them once,
when the container is created, and puts the result in the VM plan; none reaches the workload.

Adding an option is one entry in OPTIONS (with a kind that parses its value) plus its effect.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.accel import ACCELERATORS
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.kernels import KernelSelectionError, check_request

PREFIX = "RUNCVM_"
FIRST_VERSION = "0.1.0"
# "none" is the original RunCVM's word for "never"; "programs" is the root as "auto" but its
# program directories (/usr, /bin, /lib...) as "always", through a second virtiofsd.
VIRTIOFSD_CACHES = ("auto", "always", "never", "none", "programs")
# Where RUNCVM_BREAK opens a shell in the container: before the network is handed to the VM,
# after, and before QEMU starts (its command line shown).
BREAK_STAGES = ("prenet", "postnet", "preqemu")
# RUNCVM_QEMU_DISPLAY: none (no screen), or a VGA screen served over VNC on the container's
# port layout.VNC_PORT. (The original's curses would draw over the console, the container's terminal.)
QEMU_DISPLAYS = ("none", "vnc")
# Init systems RunCVM hands PID 1 of the VM to; "auto" finds them by what the workload resolves to.
INIT_SYSTEMS = ("systemd", "busybox")
# How the VM's cgroup filesystems are mounted, by each of the original RunCVM's words: none (an
# init system mounts its own), cgroup1 (a tmpfs with each v1 controller), hybrid (cgroup1 plus
# cgroup2 at unified) or cgroup2. "auto": none under an init system, else hybrid.
CGROUPFS_MODES = {"none": "none", "systemd": "none", "hybrid": "hybrid", "mixed": "hybrid",
                  "1": "cgroup1", "cgroup1": "cgroup1", "2": "cgroup2", "cgroup2": "cgroup2"}
DISK_FILESYSTEMS = ("ext4", "ext3", "ext2")
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
# A disk size: bytes, or a whole number of KiB, MiB, GiB or TiB.
SIZE_PATTERN = re.compile(r"^([1-9][0-9]*)([KMGT]?)$")
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
DISKS_FORMAT = "<src>,<dst>,<fs>[,<size>] entries separated by ;"


class OptionError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Disk:
    """A block device for the VM, backed by the file `src` in the container, formatted with `fs`
    (filled with what the image holds at `dst`) when `src` does not exist yet, then mounted at `dst`."""

    src: str
    dst: str
    fs: str = "ext4"
    size: str | None = None

    @property
    def size_bytes(self) -> int | None:
        if self.size is None:
            return None
        number, unit = SIZE_PATTERN.match(self.size).groups()
        return int(number) * SIZE_UNITS[unit]

    @property
    def container_only(self) -> bool:
        """Whether the backing file is on a /disks volume, which the VM does not see."""
        return self.src.startswith(layout.DISKS_DIR + "/")

    def render(self) -> str:
        return ",".join([self.src, self.dst, self.fs] + ([self.size] if self.size else []))


# Kinds of option: how a value is read from its variable, written back, and taken from a task.


class Text:
    argument_type = "str"

    def parse(self, variable: str, text: str) -> t.Any:
        return text

    def render(self, value: t.Any) -> str:
        return value

    def from_task(self, value: t.Any) -> t.Any:
        return value

    def argument_spec(self, default: t.Any) -> dict[str, t.Any]:
        return {"type": self.argument_type, **({"default": default} if default is not None else {})}


class Flag(Text):
    argument_type = "bool"

    def parse(self, variable: str, text: str) -> bool:
        if text.lower() in TRUE:
            return True
        if text.lower() in FALSE:
            return False
        raise OptionError(f"{variable}={text} is not a boolean: use 1 or 0")

    def render(self, value: bool) -> str:
        return "1"


@dataclasses.dataclass(frozen=True)
class Choice(Text):
    choices: tuple[str, ...]

    def parse(self, variable: str, text: str) -> str:
        if text not in self.choices:
            raise OptionError(f"{variable}={text} is not one of {', '.join(self.choices)}")
        return text

    def argument_spec(self, default: t.Any) -> dict[str, t.Any]:
        return {**super().argument_spec(default), "choices": list(self.choices)}


@dataclasses.dataclass(frozen=True)
class Words(Text):
    """A comma-separated list of words from `choices`."""

    choices: tuple[str, ...]
    argument_type = "list"

    def parse(self, variable: str, text: str) -> tuple[str, ...]:
        words = tuple(word.strip() for word in text.split(",") if word.strip())
        unknown = [word for word in words if word not in self.choices]
        if unknown:
            raise OptionError(f"{variable}={text}: {', '.join(unknown)} is not one of {', '.join(self.choices)}")
        return words

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)

    def from_task(self, value: t.Any) -> tuple[str, ...]:
        return tuple(value)

    def argument_spec(self, default: t.Any) -> dict[str, t.Any]:
        return {"type": "list", "elements": "str", "choices": list(self.choices), "default": []}


class KernelRequest(Text):
    def parse(self, variable: str, text: str) -> str:
        try:
            check_request(text)
        except KernelSelectionError as error:
            raise OptionError(str(error)) from error
        return text

    def from_task(self, value: t.Any) -> t.Any:
        return value or None


class DiskList(Text):
    argument_type = "list"

    def parse(self, variable: str, text: str) -> tuple[Disk, ...]:
        return parse_disks(text)

    def render(self, value: tuple[Disk, ...]) -> str:
        return ";".join(disk.render() for disk in value)

    def from_task(self, value: t.Any) -> tuple[Disk, ...]:
        return check_disk_set(tuple(check_disk(Disk(d["src"], d["dst"], d["fs"], d["size"])) for d in value))

    def argument_spec(self, default: t.Any) -> dict[str, t.Any]:
        return {"type": "list", "elements": "dict", "default": [], "options": {
            "src": {"type": "str", "required": True},
            "dst": {"type": "str", "required": True},
            "fs": {"type": "str", "choices": list(DISK_FILESYSTEMS), "default": "ext4"},
            "size": {"type": "str"},
        }}


@dataclasses.dataclass(frozen=True)
class Option:
    name: str          # runcvm_container's option; the variable is RUNCVM_<NAME>
    kind: Text
    default: t.Any
    doc: str           # what it does, in words the README's table of options uses too
    since: str = FIRST_VERSION
    variable_name: str = ""  # where RUNCVM_<NAME> cannot be the variable (the name is a Python keyword)

    @property
    def variable(self) -> str:
        return PREFIX + (self.variable_name or self.name.upper())

    def parse(self, text: str | None) -> t.Any:
        """The value of the variable's `text`; unset or empty means the default."""
        return self.kind.parse(self.variable, text) if text else self.default


OPTIONS = (
    Option("accel", Choice(ACCELERATORS), "auto", "uses KVM where it can boot a stock kernel, else TCG"),
    Option("disks", DiskList(), (), "block devices for the VM"),
    Option("kernel", KernelRequest(), None, "boot that installed kernel"),
    Option("kernel_append", Text(), "", "appended to the guest kernel's command line"),
    Option("kernel_debug", Flag(), False, "show the kernel's messages"),
    Option("timing", Flag(), False, "print where the run's time went on stderr when it ends"),
    Option("virtiofsd_cache", Choice(VIRTIOFSD_CACHES), "auto", "virtiofsd's cache mode for the root filesystem"),
    Option("init_system", Choice(("auto", *INIT_SYSTEMS, "none")), "auto",
           "whether the workload is an init system that owns the VM as its PID 1"),
    Option("cgroupfs", Choice(("auto", *CGROUPFS_MODES)), "auto", "how the VM's cgroup filesystems are mounted"),
    Option("kernel_mount_lib_modules", Flag(), False,
           "mount the kernel's modules over all of /lib/modules in the VM, not only /lib/modules/<version>"),
    Option("hugetlb", Flag(), False, "back the VM's memory with the host's huge pages"),
    Option("sys_admin", Flag(), False,
           "give the container CAP_SYS_ADMIN and the VM's root CAP_SYS_ADMIN on its root filesystem (trusted.* xattrs)"),
    Option("qemu_display", Choice(QEMU_DISPLAYS), "none",
           "give the VM a screen: `vnc` serves it over VNC, without a password, on the container's port 5900"),
    Option("bios_debug", Flag(), False, "show the firmware's (SeaBIOS) debug output on stderr"),
    Option("break_at", Words(BREAK_STAGES), (), "open a shell in the container at these stages of the launch",
           variable_name="BREAK"),
    Option("runtime_debug", Flag(), False,
           "write what the runtime decided at create to /tmp/runcvm-<container id>.json on the host"),
    Option("warm_start", Flag(), False,
           "restore the VM from a template: a VM saved once booted, made by the first such container of its "
           "memory, vCPUs, NICs, kernel and payload, and shared by the host's containers",
           since="0.2.0"),
)
BY_VARIABLE = {option.variable: option for option in OPTIONS}

# The options a container has, one field per entry of OPTIONS, with its default.
Options = dataclasses.make_dataclass(
    "Options", [(option.name, t.Any, dataclasses.field(default=option.default))  # pylint: disable=invalid-field-call
                for option in OPTIONS], frozen=True)


def parse(env: t.Mapping[str, str]) -> t.Any:
    """The Options that `env` (a container's environment) sets; OptionError naming the first
    unknown or bad variable."""
    unknown = sorted(name for name in env if name.startswith(PREFIX) and name not in BY_VARIABLE)
    if unknown:
        raise OptionError(f"{unknown[0]} is not a RunCVM option; the options are {', '.join(BY_VARIABLE)}")
    return Options(**{option.name: option.parse(env.get(option.variable)) for option in OPTIONS})


def render(options: t.Any) -> dict[str, str]:
    """The RUNCVM_* variables that give `options`; options left at their defaults are not set, so
    the container's environment holds only what was asked for."""
    env = {option.variable: option.kind.render(getattr(options, option.name)) for option in OPTIONS
           if getattr(options, option.name) != option.default}
    # What the runtime will read back must be what was meant: check it by its own rules.
    parse(env)
    return env


def from_task(arguments: t.Mapping[str, t.Any]) -> t.Any:
    """The Options of runcvm_container's validated arguments; OptionError for a bad value."""
    return Options(**{option.name: option.kind.from_task(arguments[option.name]) for option in OPTIONS})


def argument_spec() -> dict[str, dict[str, t.Any]]:
    """runcvm_container's argument spec for the RunCVM options."""
    return {option.name: option.kind.argument_spec(option.default) for option in OPTIONS}


def _disk_path(entry: str, role: str, path: str) -> str:
    if not path.startswith("/"):
        raise OptionError(f"RUNCVM_DISKS entry {entry!r}: {role} {path!r} must be an absolute path")
    normal = posixpath.normpath(path)
    if normal == "/" or any(normal == tree or normal.startswith(tree + "/") for tree in layout.RESERVED_TREES):
        raise OptionError(f"RUNCVM_DISKS entry {entry!r}: {role} {path} is a path RunCVM or the kernel owns")
    return normal


def check_disk(disk: Disk) -> Disk:
    """`disk` with normalised paths, or an OptionError naming what is wrong and how to write it."""
    entry = disk.render()
    for role, value in (("src", disk.src), ("dst", disk.dst)):
        if not value or any(separator in value for separator in ",;"):
            raise OptionError(f"RUNCVM_DISKS entry {entry!r}: {role} must be a path without ',' or ';' "
                              f"(the format is {DISKS_FORMAT})")
    src, dst = _disk_path(entry, "src", disk.src), _disk_path(entry, "dst", disk.dst)
    if src == dst or src.startswith(dst + "/"):
        raise OptionError(f"RUNCVM_DISKS entry {entry!r}: the backing file src must lie outside dst")
    if disk.fs not in DISK_FILESYSTEMS:
        raise OptionError(f"RUNCVM_DISKS entry {entry!r}: fs {disk.fs!r} is not one of {', '.join(DISK_FILESYSTEMS)}")
    if disk.size is not None and not SIZE_PATTERN.match(disk.size):
        raise OptionError(f"RUNCVM_DISKS entry {entry!r}: size {disk.size!r} is not a size; write a whole "
                          "number of bytes, or of K, M, G or T (such as 512M or 5G)")
    return Disk(src, dst, disk.fs, disk.size)


def check_disk_set(disks: tuple[Disk, ...]) -> tuple[Disk, ...]:
    """`disks`, or an OptionError when two share a mount point or a backing file."""
    destinations = [disk.dst for disk in disks]
    duplicate = next((dst for dst in destinations if destinations.count(dst) > 1), None)
    if duplicate:
        raise OptionError(f"RUNCVM_DISKS mounts two disks at {duplicate}")
    sources = [disk.src for disk in disks]
    if len(set(sources)) != len(sources):
        raise OptionError("RUNCVM_DISKS names the same backing file twice")
    return disks


def parse_disks(text: str) -> tuple[Disk, ...]:
    disks = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        fields = entry.split(",")
        if not 3 <= len(fields) <= 4:
            raise OptionError(f"RUNCVM_DISKS entry {entry!r} has {len(fields)} fields; the format is {DISKS_FORMAT}")
        disks.append(check_disk(Disk(*fields)))
    return check_disk_set(tuple(disks))


def workload_env(env: t.Iterable[str]) -> list[str]:
    """The container's environment without RunCVM's variables, in its original order."""
    return [entry for entry in env if not entry.startswith(PREFIX)]


def env_dict(env: t.Iterable[str]) -> dict[str, str]:
    return dict(entry.partition("=")[::2] for entry in env)


def parse_defaults(text: str, where: str) -> dict[str, str]:
    """The RUNCVM_* variables of a host's defaults file (`VARIABLE=value` lines, as `docker run
    --env-file` reads them; blank lines and `#` comments skipped), checked by parse; OptionError
    naming `where` and the first bad line or value."""
    env = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.startswith(PREFIX):
            raise OptionError(f"{where}, line {number}: {line!r} is not a RUNCVM_*=value line")
        env[name] = value
    try:
        parse(env)
    except OptionError as error:
        raise OptionError(f"{where}: {error}") from error
    return env


def read_defaults(path: str) -> dict[str, str]:
    """The RUNCVM_* variables the host's defaults file at `path` gives every container (none
    without the file), checked as parse_defaults checks them."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    return parse_defaults(text, path)


def defaults_text(env: t.Mapping[str, str]) -> str:
    """The defaults file that holds `env` (render's variables)."""
    lines = [f"{name}={value}" for name, value in sorted(env.items())]
    return "".join(f"{line}\n" for line in ["# RunCVM's options for every container on this host, under its own.", *lines])
