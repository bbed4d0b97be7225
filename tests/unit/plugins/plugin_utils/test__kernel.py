"""The uncompressed kernel the builder writes beside vmlinuz, for QEMU to enter through PVH."""

from __future__ import annotations

import gzip
import struct

import pytest

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._kernel import KernelError, _write_uncompressed

ELF = b"\x7fELF" + bytes(range(256)) * 64
SETUP_SECTORS = 3


def bzimage(payload: bytes) -> bytes:
    """A compressed kernel as the boot protocol lays it out: the boot sector and setup sectors,
    whose header says where the payload starts (past them) and how long it is."""
    header = bytearray((SETUP_SECTORS + 1) * 512)
    header[0x1F1] = SETUP_SECTORS
    struct.pack_into("<II", header, 0x248, 16, len(payload))
    return bytes(header) + bytes(16) + payload


def kernel_tree(tmp_path, payload: bytes, config: str = "CONFIG_PVH=y\n"):
    (tmp_path / "vmlinuz").write_bytes(bzimage(payload))
    (tmp_path / "config").write_text(config)
    return tmp_path


def test_a_gzip_kernel_with_pvh_is_written_uncompressed(tmp_path):
    tree = kernel_tree(tmp_path, gzip.compress(ELF) + struct.pack("<I", len(ELF)))
    _write_uncompressed(tree, print)
    assert (tree / "vmlinux").read_bytes() == ELF


@pytest.mark.parametrize("payload, config, said", [
    (gzip.compress(ELF) + struct.pack("<I", len(ELF)), "# CONFIG_PVH is not set\n", "no PVH entry point"),
    (b"\x42\x5a\x68" + bytes(64) + struct.pack("<I", len(ELF)), "CONFIG_PVH=y\n", "does not know (425a6800)"),
])
def test_a_kernel_that_cannot_be_booted_uncompressed_is_left_compressed_with_a_word(tmp_path, payload, config, said):
    messages = []
    _write_uncompressed(kernel_tree(tmp_path, payload, config), messages.append)
    assert not (tmp_path / "vmlinux").exists()
    assert any(said in message for message in messages), messages


def test_a_size_that_does_not_match_is_refused(tmp_path):
    tree = kernel_tree(tmp_path, gzip.compress(ELF) + struct.pack("<I", len(ELF) + 1))
    with pytest.raises(KernelError, match="not the"):
        _write_uncompressed(tree, print)
    assert not (tree / "vmlinux").exists()
