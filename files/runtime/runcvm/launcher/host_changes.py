"""RUNCVM_VIRTIOFSD_CACHE=programs: what the host writes in the container's root, read from the
fanotify group the runtime passed on (runcvm/host_watch.py), so that the guest drops what it
cached of the root once the host has changed a file in it.

An event's pid is the writer's in the launcher's PID namespace: virtiofsd's for what the VM
writes, which the guest has already, and 0 for a writer outside the container, such as what
`docker cp` runs.
"""

from __future__ import annotations

import os
import struct

# struct fanotify_event_metadata: event_len, vers, reserved, metadata_len, mask, fd, pid.
EVENT = struct.Struct("=IBBHQii")
FANOTIFY_LINK = "anon_inode:[fanotify]"


def find_group() -> int | None:
    """The fanotify group the launcher was started with, if any: close-on-exec, as none of the
    launcher's children is to hold it, and non-blocking again (runc, passing it on, made it
    blocking)."""
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == FANOTIFY_LINK:
                os.set_inheritable(int(name), False)
                os.set_blocking(int(name), False)
                return int(name)
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return None


def host_changed(group: int) -> bool:
    """Whether, of the events waiting on `group` (read, all of them), one is a write from outside
    the container."""
    changed = False
    while True:
        try:
            data = os.read(group, 64 * 1024)
        except BlockingIOError:
            return changed
        if not data:  # end of file: nothing more
            return changed
        offset = 0
        while offset + EVENT.size <= len(data):
            length, _version, _reserved, _metadata_length, _mask, fd, pid = EVENT.unpack_from(data, offset)
            if fd >= 0:  # each event holds the written file open
                os.close(fd)
            # pid 0 is also the queue's overflow: events were lost, and any may have been the host's.
            changed = changed or pid == 0
            offset += max(length, EVENT.size)
