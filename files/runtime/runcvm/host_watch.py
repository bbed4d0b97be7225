"""RUNCVM_VIRTIOFSD_CACHE=programs, at create: a watch on what the host writes in the container's
root, handed to the launcher, which has the guest drop what it cached when the host changes a file
(launcher/host_changes.py).

The guest keeps what it read of the program directories (virtiofsd's `always`), so a file that
`docker cp` replaces there would stay old in the VM. `docker cp` writes into the root through
dockerd's own mount of it, in a mount namespace the container does not see: only a fanotify mark
on the whole filesystem (the container's overlay) sees those writes, and making one takes
CAP_SYS_ADMIN, which the runtime has and the launcher has not. runc passes the group on to the
container's first process, the launcher, with --preserve-fds.
"""

from __future__ import annotations

import ctypes
import os
import typing as t

from runcvm.runc_cli import global_options, subcommand_option, with_subcommand_option

FAN_CLASS_NOTIF, FAN_CLOEXEC, FAN_NONBLOCK = 0x0, 0x1, 0x2
FAN_MARK_ADD, FAN_MARK_FILESYSTEM = 0x1, 0x100
FAN_CLOSE_WRITE = 0x8
AT_FDCWD = -100
# runc's first preserved descriptor: the ones after standard input, output and error.
FIRST_PRESERVED = 3


def watch(root: str) -> int:
    """A fanotify group told of every file closed after writing on `root`'s filesystem; OSError
    where it cannot be made (no CAP_SYS_ADMIN, as rootless; a filesystem that takes no mark)."""
    libc = ctypes.CDLL(None, use_errno=True)
    group = libc.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, os.O_RDONLY)
    if group < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"fanotify_init: {os.strerror(error)}")
    if libc.fanotify_mark(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, ctypes.c_uint64(FAN_CLOSE_WRITE), AT_FDCWD,
                          root.encode()) != 0:
        error = ctypes.get_errno()
        os.close(group)
        raise OSError(error, f"fanotify_mark on {root}: {os.strerror(error)}")
    return group


def preserved(argv: list[str], group: int, environ: t.Mapping[str, str] | None = None) -> list[str]:
    """runc's `create` argv with `group` passed on to the container: moved to the descriptor after
    those runc preserves already (socket activation's LISTEN_FDS, then --preserve-fds), and one more
    preserved."""
    environ = os.environ if environ is None else environ
    listening = int(environ.get("LISTEN_FDS") or 0) if environ.get("LISTEN_PID") == str(os.getpid()) else 0
    names = ("--preserve-fds",)
    already = subcommand_option(argv, names)
    count = int(already or 0)
    passed = FIRST_PRESERVED + listening + count
    if group != passed:
        os.dup2(group, passed)
        os.close(group)
    os.set_inheritable(passed, True)
    if already is not None:
        return with_subcommand_option(argv, names, str(count + 1))
    index = global_options(argv)[1] + 1
    return [*argv[:index], f"--preserve-fds={count + 1}", *argv[index:]]
