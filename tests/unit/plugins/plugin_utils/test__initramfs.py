"""The initramfs archive: the newc layout the kernel unpacks, reproducible to the byte."""

from __future__ import annotations

import gzip
import stat

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._initramfs import initramfs, newc, regular


def read_newc(archive: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """path -> (mode, data, rdev), checking magic and 4-byte alignment as the kernel does."""
    entries, offset = {}, 0
    while True:
        assert offset % 4 == 0
        header = archive[offset:offset + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, name_size = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name_start = offset + 110
        name = archive[name_start:name_start + name_size - 1].decode()
        assert archive[name_start + name_size - 1] == 0
        data_start = name_start + name_size + (-(110 + name_size) % 4)
        data = archive[data_start:data_start + size]
        offset = data_start + size + (-size % 4)
        if name == "TRAILER!!!":
            assert offset == len(archive)
            return entries
        entries[name] = (mode, data, rdev)


def test_initramfs_layout():
    image = initramfs(b"BUSYBOX", b"#!/bin/sh\n", [("virtio.ko", b"A"), ("virtiofs.ko", b"BB")])
    entries = read_newc(gzip.decompress(image))
    mode, data = entries["bin/busybox"][:2]
    assert stat.S_ISREG(mode) and mode & 0o111 and data == b"BUSYBOX"
    assert stat.S_ISLNK(entries["bin/sh"][0]) and entries["bin/sh"][1] == b"busybox"
    assert entries["init"][1] == b"#!/bin/sh\n" and entries["init"][0] & 0o111
    mode, rdev = entries["dev/console"][0], entries["dev/console"][2]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    assert entries["lib/modules/virtiofs.ko"][1] == b"BB"
    assert entries["lib/modules/load-order"][1] == b"virtio.ko\nvirtiofs.ko\n"
    for directory in ("proc", "sys", "dev", "newroot"):
        assert stat.S_ISDIR(entries[directory][0])


def test_initramfs_is_reproducible():
    arguments = (b"BUSYBOX", b"#!/bin/sh\n", [("m.ko", b"x" * 1001)])
    assert initramfs(*arguments) == initramfs(*arguments)


def test_odd_sizes_stay_aligned():
    archive = newc([regular(f"file{n}", b"x" * n) for n in range(9)])
    assert set(read_newc(archive)) == {f"file{n}" for n in range(9)}
