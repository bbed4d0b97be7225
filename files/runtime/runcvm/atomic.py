"""Files made whole or not at all: those the wrapper replaces for runc (a bundle's config.json and
the VM plan beside it, an exec's process.json) and the disks the launcher formats. With the
standard library's os alone: tempfile's imports (random, shutil) would cost every `docker exec`
about 10 ms, and every idle launcher their memory."""

from __future__ import annotations

import os


def create_beside(path: str) -> tuple[int, str]:
    """A new, empty file (mode 0600) in the directory of `path`, hidden under a name of its own,
    for content that is renamed to `path` once whole: its descriptor and its path."""
    beside = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.urandom(6).hex()}")
    return os.open(beside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), beside


def replace_file(path: str, text: str, mode: int = 0o600) -> None:
    """Replace `path` whole, never leaving it half-written: a file beside it, then a rename. The
    file keeps the mode it had, or gets `mode`."""
    descriptor, beside = create_beside(path)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            os.fchmod(stream.fileno(), os.stat(path).st_mode & 0o777 if os.path.exists(path) else mode)
        os.rename(beside, path)
    except BaseException:
        os.unlink(beside)
        raise
