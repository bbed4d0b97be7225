"""Module load order from depmod's metadata."""

from __future__ import annotations

import pytest

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._kmod import ModuleError, ModuleIndex, module_name

MODULES_DEP = """\
kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz \
kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz kernel/drivers/virtio/virtio.ko.xz \
kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz:
kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/virtio/virtio_ring.ko.xz:
kernel/fs/fuse/virtiofs.ko.xz: kernel/fs/fuse/fuse.ko.xz kernel/drivers/virtio/virtio.ko.xz \
kernel/drivers/virtio/virtio_ring.ko.xz
kernel/fs/fuse/fuse.ko.xz:
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/net/core/failover.ko.xz:
kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/crypto/crc32c-intel.ko:
kernel/loops/a.ko: kernel/loops/b.ko
kernel/loops/b.ko: kernel/loops/a.ko
""".replace("\\\n", "")
SOFTDEP = "# comment\nsoftdep ext4 pre: crc32c-intel absent_module post: nothing\n"
BUILTIN = "kernel/drivers/char/virtio_console.ko\n"


@pytest.fixture
def index():
    return ModuleIndex.parse(MODULES_DEP, SOFTDEP, BUILTIN)


def names(paths):
    return [module_name(path) for path in paths]


def assert_dependencies_first(order, index):
    position = {name: i for i, name in enumerate(names(order))}
    for name in position:
        for dependency in index.depends[name]:
            assert position[dependency] < position[name], f"{dependency} must load before {name}"


@pytest.mark.parametrize("wanted, expected_set", [
    (["virtiofs"], {"virtio_ring", "virtio", "fuse", "virtiofs"}),
    (["virtio_pci"], {"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci"}),
    (["virtio_net"], {"failover", "net_failover", "virtio_net"}),
    (["virtio_console"], set()),  # built in
    (["ext4"], {"crc32c_intel", "jbd2", "mbcache", "ext4"}),  # soft dependency first; a missing one skipped
    (["virtio_pci", "virtiofs"], {"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                                  "virtio_pci", "fuse", "virtiofs"}),
])
def test_load_order(index, wanted, expected_set):
    order = index.load_order(wanted)
    assert set(names(order)) == expected_set
    assert len(order) == len(set(order)), "each module once"
    assert_dependencies_first(order, index)


def test_soft_dependencies_load_first(index):
    order = names(index.load_order(["ext4"]))
    assert order.index("crc32c_intel") < order.index("ext4")


def test_order_keeps_paths_relative_to_the_modules_dir(index):
    assert index.load_order(["fuse"]) == ["kernel/fs/fuse/fuse.ko.xz"]


def test_a_missing_module_is_named(index):
    with pytest.raises(ModuleError, match="kernel module nine_p is neither in modules.dep nor built in"):
        index.load_order(["nine_p"])


def test_a_dependency_cycle_is_an_error(index):
    with pytest.raises(ModuleError, match="depends on itself"):
        index.load_order(["a"])


@pytest.mark.parametrize("path, name", [
    ("kernel/fs/fuse/virtiofs.ko.xz", "virtiofs"),
    ("kernel/crypto/crc32c-intel.ko", "crc32c_intel"),
    ("x.ko.zst", "x"),
    ("y.ko.gz", "y"),
])
def test_module_name(path, name):
    assert module_name(path) == name
