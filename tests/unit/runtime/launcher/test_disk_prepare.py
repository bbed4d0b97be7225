"""RUNCVM_DISKS as the launcher prepares them, before the VM starts."""

from __future__ import annotations

import os

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.options import Disk
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.plan import GuestDisk
from runcvm.launcher import disks


def test_disks_refuse_a_missing_file_without_a_size_and_a_file_that_is_not_one(tmp_path):
    vm_root = tmp_path / "vm"
    (vm_root / "data").mkdir(parents=True)
    (vm_root / "dir.img").mkdir()
    with pytest.raises(disks.DiskError, match="/new.img does not exist; give a size"):
        disks.prepare((Disk("/new.img", "/data"),), str(vm_root))
    with pytest.raises(disks.DiskError, match="/dir.img exists and is not a regular file"):
        disks.prepare((Disk("/dir.img", "/data"),), str(vm_root))
    (vm_root / "etc").mkdir()
    (vm_root / "etc" / "hostname").write_text("x")
    with pytest.raises(disks.DiskError, match="mount point /etc/hostname exists in the image and is not a directory"):
        disks.prepare((Disk("/new.img", "/etc/hostname", size="1M"),), str(vm_root))
    assert not (vm_root / "new.img").exists()


def test_disks_use_an_existing_file_as_it_is_and_number_serials(tmp_path):
    vm_root = tmp_path / "vm"
    vm_root.mkdir()
    (vm_root / "a.img").write_bytes(b"\0" * 1024)
    (vm_root / "b.img").write_bytes(b"\0" * 1024)
    attached = disks.prepare((Disk("/a.img", "/a"), Disk("/b.img", "/b", "ext2")), str(vm_root))
    assert attached == [disks.AttachedDisk(f"{vm_root}/a.img", GuestDisk("runcvm-disk0", "/a", "ext4")),
                        disks.AttachedDisk(f"{vm_root}/b.img", GuestDisk("runcvm-disk1", "/b", "ext2"))]


def test_a_disk_that_fails_to_format_leaves_no_file(tmp_path, monkeypatch):
    vm_root = tmp_path / "vm"
    (vm_root / "data").mkdir(parents=True)
    monkeypatch.setattr(disks, "MKE2FS", "/bin/false")
    with pytest.raises(disks.DiskError, match="formatting /new.img as ext4 failed"):
        disks.prepare((Disk("/new.img", "/data", size="1M"),), str(vm_root))
    assert sorted(path.name for path in vm_root.iterdir()) == ["data"]


def test_a_formatted_disk_appears_whole_under_its_name(tmp_path, monkeypatch):
    vm_root = tmp_path / "vm"
    (vm_root / "data").mkdir(parents=True)
    monkeypatch.setattr(disks, "MKE2FS", "/bin/true")
    (attached,) = disks.prepare((Disk("/new.img", "/data", size="1M"),), str(vm_root))
    assert attached.path == f"{vm_root}/new.img" and os.path.getsize(attached.path) == 1 << 20
    assert sorted(path.name for path in vm_root.iterdir()) == ["data", "new.img"]
