# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""RunCVM's initramfs: a static busybox, the modules to mount a virtiofs root, and an init script,
packed as a reproducible gzip-compressed cpio (newc) archive."""

from __future__ import annotations

import dataclasses
import gzip
import io
import stat

INIT_SCRIPT_NAME = "init"
MODULES_DIR = "lib/modules"
LOAD_ORDER_FILE = "lib/modules/load-order"


@dataclasses.dataclass(frozen=True)
class Entry:
    path: str               # without a leading slash
    mode: int               # st_mode: type and permissions
    data: bytes = b""       # file content, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def regular(path: str, data: bytes, permissions: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | permissions, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def newc(entries: list[Entry]) -> bytes:
    """A cpio archive in the 'newc' format the kernel unpacks; owners root, timestamps zero."""
    out = io.BytesIO()
    trailer = Entry("TRAILER!!!", 0)
    for inode, entry in enumerate([*entries, trailer], start=1):
        name = entry.path.encode() + b"\0"
        fields = [inode if entry is not trailer else 0, entry.mode, 0, 0,
                  2 if stat.S_ISDIR(entry.mode) else 1, 0, len(entry.data), 0, 0,
                  entry.rdev[0], entry.rdev[1], len(name), 0]
        header = b"070701" + b"".join(b"%08X" % field for field in fields)
        out.write(header + name + _pad(len(header) + len(name)))
        out.write(entry.data + _pad(len(entry.data)))
    return out.getvalue()


def initramfs(busybox: bytes, init_script: bytes, modules: list[tuple[str, bytes]]) -> bytes:
    """The compressed initramfs. `modules` are (file name, uncompressed .ko) in load order."""
    entries = [directory(path) for path in ("bin", "dev", "proc", "sys", "newroot", "lib", MODULES_DIR)]
    # The kernel opens /dev/console for init before anything is mounted.
    entries.append(char_device("dev/console", 5, 1))
    entries.append(regular("bin/busybox", busybox, 0o755))
    entries.append(symlink("bin/sh", "busybox"))
    entries.append(regular(INIT_SCRIPT_NAME, init_script, 0o755))
    entries.extend(regular(f"{MODULES_DIR}/{name}", data) for name, data in modules)
    entries.append(regular(LOAD_ORDER_FILE, "".join(f"{module[0]}\n" for module in modules).encode()))
    return gzip.compress(newc(entries), compresslevel=9, mtime=0)
