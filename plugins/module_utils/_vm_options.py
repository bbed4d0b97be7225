# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection. It is shared by the modules and
# the runtime payload; no Ansible imports here.
"""The RUNCVM_* options of a container, read, checked and written in one place.

A user sets them with `docker run -e`, or with runcvm_container's typed options, which `render`
turns into the same variables. The runtime's wrapper checks them when the container is created, so
a bad value fails `docker run` with a message naming the option; runcvm_container checks them with
the same code before it touches any container; the launcher reads them again to act on them. None
of them reaches the workload's environment.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._kernel_select import (
    KernelSelectionError, check_request,
)

PREFIX = "RUNCVM_"
ACCELERATORS = ("auto", "kvm", "tcg")
VIRTIOFSD_CACHES = ("auto", "always", "never")
DISK_FILESYSTEMS = ("ext4", "ext3", "ext2")
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
# Set by RunCVM itself between the wrapper and the launcher.
INTERNAL = ("RUNCVM_HANDOFF",)
KNOWN = ("RUNCVM_ACCEL", "RUNCVM_DISKS", "RUNCVM_KERNEL", "RUNCVM_KERNEL_APPEND", "RUNCVM_KERNEL_DEBUG",
         "RUNCVM_TIMING", "RUNCVM_VIRTIOFSD_CACHE")
# A disk size: bytes, or a whole number of KiB, MiB, GiB or TiB.
SIZE_PATTERN = re.compile(r"^([1-9][0-9]*)([KMGT]?)$")
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
# Trees a disk's file or mount point may not be in: RunCVM's own and the kernel's.
RESERVED_TREES = ("/.runcvm", "/vm", "/proc", "/sys", "/dev")
# Volumes mounted here stay in the container, out of the VM's view: the place for backing files.
CONTAINER_ONLY_DIR = "/disks"
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

    def render(self) -> str:
        return ",".join([self.src, self.dst, self.fs] + ([self.size] if self.size else []))


@dataclasses.dataclass(frozen=True)
class Options:
    accel: str = "auto"
    disks: tuple[Disk, ...] = ()
    kernel: str | None = None
    kernel_append: str = ""
    kernel_debug: bool = False
    timing: bool = False
    virtiofsd_cache: str = "auto"


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionError(f"{name}={value} is not one of {', '.join(choices)}")
    return value


def _flag(name: str, value: str) -> bool:
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise OptionError(f"{name}={value} is not a boolean: use 1 or 0")


def _disk_path(entry: str, role: str, path: str) -> str:
    if not path.startswith("/"):
        raise OptionError(f"RUNCVM_DISKS entry {entry!r}: {role} {path!r} must be an absolute path")
    normal = posixpath.normpath(path)
    if normal == "/" or any(normal == tree or normal.startswith(tree + "/") for tree in RESERVED_TREES):
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


def parse_disks(text: str) -> tuple[Disk, ...]:
    disks = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        fields = entry.split(",")
        if not 3 <= len(fields) <= 4:
            raise OptionError(f"RUNCVM_DISKS entry {entry!r} has {len(fields)} fields; the format is {DISKS_FORMAT}")
        disks.append(check_disk(Disk(*fields)))
    destinations = [disk.dst for disk in disks]
    duplicate = next((dst for dst in destinations if destinations.count(dst) > 1), None)
    if duplicate:
        raise OptionError(f"RUNCVM_DISKS mounts two disks at {duplicate}")
    sources = [disk.src for disk in disks]
    if len(set(sources)) != len(sources):
        raise OptionError("RUNCVM_DISKS names the same backing file twice")
    return tuple(disks)


def _kernel(value: str | None) -> str | None:
    if value:
        try:
            check_request(value)
        except KernelSelectionError as error:
            raise OptionError(str(error)) from error
    return value or None


def parse(env: t.Mapping[str, str]) -> Options:
    unknown = sorted(name for name in env if name.startswith(PREFIX) and name not in KNOWN + INTERNAL)
    if unknown:
        raise OptionError(f"{unknown[0]} is not a RunCVM option; the options are {', '.join(KNOWN)}")
    return Options(
        accel=_choice("RUNCVM_ACCEL", env.get("RUNCVM_ACCEL", "auto") or "auto", ACCELERATORS),
        disks=parse_disks(env.get("RUNCVM_DISKS", "")),
        kernel=_kernel(env.get("RUNCVM_KERNEL")),
        kernel_append=env.get("RUNCVM_KERNEL_APPEND", ""),
        kernel_debug=_flag("RUNCVM_KERNEL_DEBUG", env.get("RUNCVM_KERNEL_DEBUG", "")),
        timing=_flag("RUNCVM_TIMING", env.get("RUNCVM_TIMING", "")),
        virtiofsd_cache=_choice("RUNCVM_VIRTIOFSD_CACHE", env.get("RUNCVM_VIRTIOFSD_CACHE", "auto") or "auto",
                                VIRTIOFSD_CACHES),
    )


def render(options: Options) -> dict[str, str]:
    """The RUNCVM_* variables that give `options`; options left at their defaults are not set, so
    the container's environment holds only what was asked for."""
    env = {}
    if options.accel != "auto":
        env["RUNCVM_ACCEL"] = options.accel
    if options.disks:
        env["RUNCVM_DISKS"] = ";".join(disk.render() for disk in options.disks)
    if options.kernel:
        env["RUNCVM_KERNEL"] = options.kernel
    if options.kernel_append:
        env["RUNCVM_KERNEL_APPEND"] = options.kernel_append
    if options.kernel_debug:
        env["RUNCVM_KERNEL_DEBUG"] = "1"
    if options.timing:
        env["RUNCVM_TIMING"] = "1"
    if options.virtiofsd_cache != "auto":
        env["RUNCVM_VIRTIOFSD_CACHE"] = options.virtiofsd_cache
    # What the runtime will read back must be what was meant: check it by its own rules.
    parse(env)
    return env


def workload_env(env: t.Iterable[str]) -> list[str]:
    """The container's environment without RunCVM's variables, in its original order."""
    return [entry for entry in env if not entry.startswith(PREFIX)]


def env_dict(env: t.Iterable[str]) -> dict[str, str]:
    return dict(entry.partition("=")[::2] for entry in env)
