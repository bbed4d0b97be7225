# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection; no Ansible imports here.
"""Installs a built tree (the payload, a kernel) from its tarball, replacing the old one whole.

The new tree is unpacked beside the old one and checked against its manifest; only then does it
take the old one's place, so a failed or interrupted install leaves the old tree working.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tarfile
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._manifest import MANIFEST_NAME, read_manifest, verify_tree


class TreeInstallError(Exception):
    pass


def installed_digest(dest: pathlib.Path) -> str | None:
    """The digest of the tree installed at `dest`, or None if there is none (or it is unreadable)."""
    try:
        return read_manifest(dest / MANIFEST_NAME).get("digest")
    except (OSError, ValueError, AttributeError):
        return None


def _safe_members(archive: tarfile.TarFile, tarball: pathlib.Path) -> t.Iterator[tarfile.TarInfo]:
    for member in archive.getmembers():
        parts = pathlib.PurePosixPath(member.name).parts
        link_escapes = member.issym() and (member.linkname.startswith("/") or ".." in
                                           pathlib.PurePosixPath(member.linkname).parts)
        if member.name.startswith("/") or ".." in parts or member.islnk() or link_escapes or member.isdev():
            raise TreeInstallError(f"{tarball} holds an unsafe entry {member.name!r}; refusing to unpack it")
        yield member


def install_tree(tarball: pathlib.Path, dest: pathlib.Path, digest: str, keep: t.Iterable[str] = ()) -> None:
    """Replace `dest` with the tree in `tarball`, which must carry the manifest `digest`.

    `keep` names entries of the old tree to carry over into the new one (the payload keeps the
    kernels installed in it).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.new")
    previous = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(previous, ignore_errors=True)
    try:
        _unpack_checked(tarball, staging, digest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    carried = [name for name in keep if (dest / name).exists() and not (staging / name).exists()]
    for name in carried:
        os.rename(dest / name, staging / name)
    if dest.exists():
        os.rename(dest, previous)
    try:
        os.rename(staging, dest)
    except BaseException:
        # Put the old tree back as it was.
        if previous.exists():
            os.rename(previous, dest)
        for name in carried:
            os.rename(staging / name, dest / name)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _unpack_checked(tarball: pathlib.Path, staging: pathlib.Path, digest: str) -> None:
    with tarfile.open(tarball) as archive:
        archive.extractall(staging, members=_safe_members(archive, tarball))
    if installed_digest(staging) != digest:
        raise TreeInstallError(f"{tarball} holds a tree with digest {installed_digest(staging)}, not {digest}")
    problems = verify_tree(staging)
    if problems:
        raise TreeInstallError(f"{tarball} does not match its own manifest: {'; '.join(problems[:5])}")
    staging.chmod(0o755)


def remove_tree(dest: pathlib.Path) -> None:
    shutil.rmtree(dest)
