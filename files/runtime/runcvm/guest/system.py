"""System calls Python's standard library lacks, through the payload's libc."""

from __future__ import annotations

import ctypes
import os

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
RB_POWER_OFF = 0x4321FEDC
FLAG_OPTIONS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
IGNORED_OPTIONS = {"rw", "suid", "dev", "exec", "rprivate", "private", "rbind", "bind"}

_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    result = _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                         data.encode() if data else None)
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def mount_options(options: list[str]) -> tuple[int, str]:
    """fstab-style options as mount(2) flags and the data string."""
    flags, data = 0, []
    for option in options:
        if option in FLAG_OPTIONS:
            flags |= FLAG_OPTIONS[option]
        elif option not in IGNORED_OPTIONS:
            data.append(option)
    return flags, ",".join(data)


def sync_filesystems(mount_points: tuple[str, ...]) -> None:
    """Write out the dirty data of the filesystems mounted at `mount_points` only: a global sync
    would also reach virtiofs, whose syncfs makes virtiofsd sync the host's whole filesystem. A
    mount point the workload has removed is passed over: its disk was unmounted with its data."""
    for mount_point in mount_points:
        try:
            fd = os.open(mount_point, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            _libc.syncfs(fd)
        finally:
            os.close(fd)


def set_online_cpus(wanted: int) -> None:
    """Keep the first `wanted` of the VM's vCPUs online (0: all of them) and the others offline;
    the boot vCPU cannot go offline."""
    directory = "/sys/devices/system/cpu"
    numbers = sorted(int(name[3:]) for name in os.listdir(directory) if name.startswith("cpu") and name[3:].isdigit())
    for number in numbers[1:]:
        with open(f"{directory}/cpu{number}/online", "w", encoding="ascii") as online:
            online.write("1" if not wanted or number < wanted else "0")


def power_off(disks: tuple[str, ...]) -> None:
    """Power the VM off once the block devices mounted at `disks` have their data: the root and
    volumes are virtiofs, whose writes are in the host's page cache already, as under runc."""
    sync_filesystems(disks)
    _libc.reboot(ctypes.c_int(RB_POWER_OFF))
