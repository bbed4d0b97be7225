"""Which network namespace is which: RunCVM hands a container's network namespace over to its VM,
so it must be sure that namespace is the container's own and not the host's or another's."""

from __future__ import annotations

import os

OWN_NETWORK_NAMESPACE = "/proc/self/ns/net"


def namespace_id(path: str = OWN_NETWORK_NAMESPACE) -> str | None:
    """The identity of the namespace at `path` (a /proc/<pid>/ns/* link or a bind mount of one),
    as the kernel tells them apart; None when there is none there."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return f"{status.st_dev}:{status.st_ino}"


def in_use(path: str) -> bool:
    """Whether any process is in the namespace at `path` (a bind mount Podman made for a new
    container: nobody yet; another container's or a pod's: its processes). True when `path` names
    no namespace, so that what cannot be checked is not taken."""
    wanted = namespace_id(path)
    if wanted is None:
        return True
    for pid in os.listdir("/proc"):
        if pid.isdigit() and namespace_id(f"/proc/{pid}/ns/net") == wanted:
            return True
    return False
