# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection; no Ansible imports here.
"""Installs a built tree (the payload, a kernel) from its tarball, replacing the old one whole.

The new tree is unpacked beside the old one and checked against its manifest; only then does it
take the old one's place, in one atomic exchange, so there is no moment without a tree at `dest`
and a failed or interrupted install leaves the old tree working. The old tree is kept, renamed,
while any container still has it mounted (a running VM's `docker exec` is served from the payload
it started with), and removed by a later install or removal once none has.
"""

from __future__ import annotations

import ctypes
import errno
import os
import pathlib
import shutil
import tarfile
import time
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._manifest import MANIFEST_NAME, read_manifest, verify_tree

AT_FDCWD = -100
RENAME_EXCHANGE = 2


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
    kernels installed in it); they are hard-linked, so the old tree stays whole too.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _unpack_checked(tarball, staging, digest)
        for name in keep:
            if (dest / name).exists() and not (staging / name).exists():
                shutil.copytree(dest / name, staging / name, symlinks=True, copy_function=os.link)
        if not dest.exists():
            os.rename(staging, dest)
            return
        _exchange(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.rename(staging, dest.with_name(f"{_retired_prefix(dest)}{time.time_ns()}"))
    remove_unused_retired(dest)


def _exchange(first: pathlib.Path, second: pathlib.Path) -> None:
    """Swap two paths at once (renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"cannot exchange {first} and {second}: {os.strerror(error)}")


def _retired_prefix(dest: pathlib.Path) -> str:
    return f".{dest.name}.retired-"


def retired_trees(dest: pathlib.Path) -> list[pathlib.Path]:
    """Earlier trees of `dest` kept for the containers that still use them."""
    if not dest.parent.is_dir():
        return []
    return sorted(path for path in dest.parent.iterdir() if path.name.startswith(_retired_prefix(dest)))


def remove_unused_retired(dest: pathlib.Path) -> None:
    in_use = _mounted_trees()
    for tree in retired_trees(dest):
        if not any(tree.name in pathlib.PurePosixPath(root).parts for root in in_use):
            shutil.rmtree(tree, ignore_errors=True)


def _mounted_trees() -> set[str]:
    """The roots of every bind mount in every mount namespace on the host: a directory a container
    has mounted shows here, under its current name, as long as the container lives."""
    roots, seen = set(), set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            namespace = os.stat(f"/proc/{pid}/ns/mnt").st_ino
            if namespace in seen:
                continue
            with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as mountinfo:
                roots.update(_unescape(line.split()[3]) for line in mountinfo if line.strip())
            seen.add(namespace)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ESRCH, errno.EACCES):
                raise
    return roots


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


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
    """Remove the tree at `dest`, and its retired trees that no container uses any more."""
    shutil.rmtree(dest)
    remove_unused_retired(dest)
