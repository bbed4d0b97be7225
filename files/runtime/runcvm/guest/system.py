"""System calls Python's standard library lacks, through the payload's libc."""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import time

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
MNT_DETACH = 0x2
RB_POWER_OFF = 0x4321FEDC
FLAG_OPTIONS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
IGNORED_OPTIONS = {"rw", "suid", "dev", "exec", "rprivate", "private", "rbind", "bind"}

# ioctls (linux/random.h, linux/rtc.h): add entropy to the pool, credited, and reseed the
# generator from it at once; read the real-time clock (struct rtc_time: nine ints).
RNDADDENTROPY, RNDRESEEDCRNG, RTC_RD_TIME = 0x40085203, 0x5207, 0x80247009
RTC_TIME = struct.Struct("=9i")

_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    result = _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                         data.encode() if data else None)
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def unmount_tree(target: str) -> None:
    """Unmount `target` and every mount beneath it (umount2 with MNT_DETACH)."""
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"umount {target}: {os.strerror(error)}")


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


def drop_caches() -> None:
    """Drop the guest's clean page cache, dentries and inodes: what it reads next through a
    cached virtiofs device it asks virtiofsd for anew. (Those in use stay, with their pages
    mapped.)"""
    with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as knob:
        knob.write("3")


def set_online_cpus(wanted: int) -> None:
    """Keep the first `wanted` of the VM's vCPUs online (0: all of them) and the others offline;
    the boot vCPU cannot go offline."""
    directory = "/sys/devices/system/cpu"
    numbers = sorted(int(name[3:]) for name in os.listdir(directory) if name.startswith("cpu") and name[3:].isdigit())
    for number in numbers[1:]:
        with open(f"{directory}/cpu{number}/online", "w", encoding="ascii") as online:
            online.write("1" if not wanted or number < wanted else "0")


def reseed_random(seed: bytes) -> None:
    """Mix `seed` into the kernel's random number generator, crediting it, and reseed at once."""
    with open("/dev/urandom", "wb") as device:
        fcntl.ioctl(device, RNDADDENTROPY, struct.pack("=ii", 8 * len(seed), len(seed)) + seed)
        fcntl.ioctl(device, RNDRESEEDCRNG)


def set_clock_from_rtc(rtc: str = "/dev/rtc0") -> None:
    """Set the system clock from the real-time clock, to the second, as the kernel does at boot:
    QEMU's follows the host's."""
    with open(rtc, "rb") as device:
        fields = RTC_TIME.unpack(fcntl.ioctl(device, RTC_RD_TIME, bytes(RTC_TIME.size)))
    seconds, minutes, hours, day, month, year = fields[:6]
    time.clock_settime(time.CLOCK_REALTIME, epoch_seconds(year + 1900, month + 1, day, hours, minutes, seconds))


def epoch_seconds(year: int, month: int, day: int, hours: int, minutes: int, seconds: int) -> int:
    """Seconds since the epoch of a UTC date and time (calendar.timegm, whose imports cost the
    guest a tenth of a second under TCG): days counted in 400-year eras of March-based years."""
    year -= month <= 2
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def power_off(disks: tuple[str, ...]) -> None:
    """Power the VM off once the block devices mounted at `disks` have their data: the root and
    volumes are virtiofs, whose writes are in the host's page cache already, as under runc."""
    sync_filesystems(disks)
    _libc.reboot(ctypes.c_int(RB_POWER_OFF))
