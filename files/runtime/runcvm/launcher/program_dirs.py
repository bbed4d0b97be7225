"""RUNCVM_VIRTIOFSD_CACHE=programs: which of the root's program directories the guest binds from
the cached device (layout.PROGRAMS_VIRTIOFS_TAG).

Under TCG a process start costs about 0.3 s with virtiofsd's `auto`, which has the guest drop its
copy of a file at each open (the program and its libraries, translated anew), and 25 ms with
`always`, under which the VM does not see a file the host replaces. The image's programs are what
each start reads and what the host rarely changes under a running container; a volume or bind
mount, which the host or other containers change, must stay `auto`: a program directory with one
under it is left on the root's device. The kernel's modules, which RunCVM mounts from its own
payload, do not count: nothing changes them.
"""

from __future__ import annotations

import os
import re

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout

MOUNTINFO = "/proc/self/mountinfo"


def mount_points(mountinfo: str = MOUNTINFO) -> list[str]:
    """Where the launcher's mount namespace has mounts (mountinfo's fifth field, unescaped)."""
    with open(mountinfo, encoding="utf-8", errors="surrogateescape") as handle:
        # mountinfo writes space, tab, newline and backslash as octal escapes.
        return [re.sub(r"\\([0-7]{3})", lambda escape: chr(int(escape[1], 8)), line.split()[4]) for line in handle]


def cached(root: str, mounted: list[str], kernel_version: str | None) -> tuple[str, ...]:
    """The guest paths of the program directories of `root` (the container's root as the launcher
    sees it) that are directories, not links, and hold none of the `mounted` mount points but the
    kernel's modules (`kernel_version`'s, or the whole of lib/modules)."""
    modules = {"lib/modules", f"lib/modules/{kernel_version}"}
    shared = [relative for relative in (os.path.relpath(point, root) for point in mounted)
              if not relative.startswith("..") and relative != "."
              and relative.removeprefix("usr/") not in modules]
    return tuple(f"/{name}" for name in layout.PROGRAM_DIRS
                 if os.path.isdir(os.path.join(root, name)) and not os.path.islink(os.path.join(root, name))
                 and not any(relative == name or relative.startswith(name + "/") for relative in shared))
