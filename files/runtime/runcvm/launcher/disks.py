"""RUNCVM_DISKS: block devices for the VM, each backed by a file in the container's filesystem.

Backing files belong on a volume mounted at /disks, which the VM does not see (a file elsewhere
is visible in the VM too). A missing backing file is created sparse at the requested size and formatted, filled with what
the image holds at the mount point; an existing one is used as it is, so a file on a volume keeps
its data across containers. The guest finds each disk by its serial and mounts it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.options import Disk
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.plan import GuestDisk
from runcvm import atomic

MKE2FS = f"{layout.GUEST_DIR}/bin/mke2fs"
MKE2FS_CONFIG = f"{layout.GUEST_DIR}/etc/mke2fs.conf"


class DiskError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class AttachedDisk:
    path: str          # the backing file, as the launcher sees it
    guest: GuestDisk   # what the guest mounts where, found by its serial


def prepare(disks: tuple[Disk, ...], vm_root: str) -> list[AttachedDisk]:
    """Create and format the backing files that do not exist yet; the disks to attach."""
    attached = []
    for index, disk in enumerate(disks):
        # Volumes at /disks are mounted in the container only; everything else, in the VM's view.
        path, content = (disk.src if disk.container_only else vm_root + disk.src), vm_root + disk.dst
        if os.path.lexists(content) and not os.path.isdir(content):
            raise DiskError(f"RUNCVM_DISKS: the mount point {disk.dst} exists in the image and is not a directory")
        if not os.path.lexists(path):
            _create(disk, path, content)
        elif not os.path.isfile(path) or os.path.islink(path):
            raise DiskError(f"RUNCVM_DISKS: {disk.src} exists and is not a regular file")
        attached.append(AttachedDisk(path, GuestDisk(f"{layout.DISK_SERIAL_PREFIX}{index}", disk.dst, disk.fs)))
    return attached


def _create(disk: Disk, path: str, content: str) -> None:
    if disk.size_bytes is None:
        raise DiskError(f"RUNCVM_DISKS: {disk.src} does not exist; give a size to create it "
                        f"({disk.src},{disk.dst},{disk.fs},<size>)")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    command = [MKE2FS, "-q", "-F", "-t", disk.fs]
    if os.path.isdir(content):
        command += ["-d", content]
    # Made under a temporary name and renamed once formatted: a half-made file must never be taken
    # for a formatted disk by the next container.
    partial = None
    try:
        handle, partial = atomic.create_beside(path)
        with os.fdopen(handle, "wb") as backing:
            backing.truncate(disk.size_bytes)
        completed = subprocess.run([*command, partial], capture_output=True, text=True, check=False,
                                   env={"MKE2FS_CONFIG": MKE2FS_CONFIG, "PATH": "/usr/bin:/bin"})
        if completed.returncode != 0:
            raise DiskError(f"RUNCVM_DISKS: formatting {disk.src} as {disk.fs} failed: "
                            f"{completed.stderr.strip() or completed.stdout.strip()}")
        os.chmod(partial, 0o644)
        os.rename(partial, path)
    except OSError as error:
        raise DiskError(f"RUNCVM_DISKS: cannot create {disk.src}: {error.strerror}") from error
    finally:
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)
