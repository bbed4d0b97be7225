"""Reading an image's root filesystem from the host, where its symlinks must be followed as the
image sees them (an absolute link points into the image, not into the host)."""

from __future__ import annotations

import os

MAX_LINKS = 40


def read_os_release(root: str) -> str | None:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        path = resolve(root, candidate)
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
    return None


def resolve(root: str, path: str, depth: int = 0) -> str | None:
    """`path` inside the image rooted at `root`, following symlinks as the image sees them."""
    if depth > MAX_LINKS:
        return None
    current = root
    parts = [part for part in path.strip("/").split("/") if part]
    for index, part in enumerate(parts):
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            target = os.readlink(candidate)
            rest = "/".join(parts[index + 1:])
            base = target if target.startswith("/") else os.path.join(current[len(root):] or "/", target)
            return resolve(root, os.path.normpath(os.path.join(base, rest)), depth + 1)
        current = candidate
    return current


def init_system(root: str, args: tuple[str, ...], env: tuple[str, ...]) -> str | None:
    """Which init system the command `args` starts in the image, if any: systemd (often as
    /sbin/init, a link to it), or busybox when called as `init`."""
    name = args[0]
    if "/" in name:
        candidates = [name]
    else:
        path = next((entry[5:] for entry in env if entry.startswith("PATH=")), os.defpath)
        candidates = [f"{directory}/{name}" for directory in path.split(":") if directory.startswith("/")]
    for candidate in candidates:
        resolved = resolve(root, candidate)
        if resolved and os.path.isfile(resolved):
            program = os.path.basename(resolved)
            if program == "systemd":
                return "systemd"
            if program == "busybox" and os.path.basename(name) == "init":
                return "busybox"
            return None
    return None


def has_file(root: str, path: str) -> bool:
    resolved = resolve(root, path)
    return bool(resolved) and os.path.isfile(resolved)
