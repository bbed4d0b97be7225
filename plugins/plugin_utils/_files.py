# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""File helpers of the builders: reproducible tarballs and disk space."""

from __future__ import annotations

import gzip
import pathlib
import shutil
import tarfile

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError


class DiskSpaceError(BuildError):
    pass


def require_free_space(directory: pathlib.Path, needed_bytes: int, purpose: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < needed_bytes:
        raise DiskSpaceError(f"{purpose} needs {needed_bytes // 2**20} MiB free in {directory}, "
                             f"which has {free // 2**20} MiB; free some space or choose another cache "
                             "directory")


def reproducible_tarball(tree: pathlib.Path, tarball: pathlib.Path) -> None:
    """A .tar.gz of `tree` that depends only on its content: sorted entries, owner root,
    timestamps zero."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        return info

    partial = tarball.with_name(tarball.name + ".partial")
    with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for path in [tree, *sorted(tree.rglob("*"))]:
                relative = path.relative_to(tree).as_posix()
                archive.add(path, arcname="." if relative == "." else f"./{relative}",
                            recursive=False, filter=normalise)
    partial.rename(tarball)
