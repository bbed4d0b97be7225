# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""Reading and patching ELF files with patchelf, and finding a set of binaries' library closure."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import typing as t

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError

ELF_MAGIC = b"\x7fELF"
LOADER = "ld-linux-x86-64.so.2"
# Where Debian puts shared libraries, relative to a root filesystem.
LIBRARY_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib", "lib")


class ElfError(BuildError):
    pass


def is_elf(path: pathlib.Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(4) == ELF_MAGIC


def _patchelf(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("patchelf") is None:
        raise ElfError("patchelf is not installed: apt-get install patchelf")
    return subprocess.run(["patchelf", *args], capture_output=True, text=True, check=False)


def needed(path: pathlib.Path) -> list[str] | None:
    """The DT_NEEDED libraries of a dynamic ELF file, or None for a static one."""
    completed = _patchelf("--print-needed", str(path))
    if completed.returncode != 0:
        return None
    return completed.stdout.split()


def interpreter(path: pathlib.Path) -> str | None:
    completed = _patchelf("--print-interpreter", str(path))
    return completed.stdout.strip() if completed.returncode == 0 else None


def rpath(path: pathlib.Path) -> str:
    completed = _patchelf("--print-rpath", str(path))
    return completed.stdout.strip() if completed.returncode == 0 else ""


def patch(path: pathlib.Path, new_rpath: str, new_interpreter: str | None) -> None:
    """Give `path` a DT_RPATH (searched before LD_LIBRARY_PATH, unlike RUNPATH, and used for the
    libraries it loads too) and, for an executable, a new interpreter."""
    args = ["--force-rpath", "--set-rpath", new_rpath]
    if new_interpreter is not None:
        args += ["--set-interpreter", new_interpreter]
    completed = _patchelf(*args, str(path))
    if completed.returncode != 0:
        raise ElfError(f"patchelf could not patch {path}: {completed.stderr.strip()}")


def find_library(name: str, root: pathlib.Path, extra_dirs: t.Iterable[str] = ()) -> pathlib.Path | None:
    for directory in (*extra_dirs, *LIBRARY_DIRS):
        candidate = root / directory / name
        if candidate.exists():
            return candidate
    return None


def library_closure(binaries: t.Iterable[pathlib.Path], root: pathlib.Path) -> dict[str, pathlib.Path]:
    """Every shared library the binaries need, directly or not: soname -> its file under `root`.

    Raises ElfError naming the library and who needs it when `root` does not hold it.
    """
    libraries: dict[str, pathlib.Path] = {}
    pending = list(binaries)
    while pending:
        current = pending.pop()
        for name in needed(current) or ():
            if name in libraries:
                continue
            found = find_library(name, root)
            if found is None:
                raise ElfError(f"{name}, needed by {current.name}, is in none of the pinned "
                               "packages; add the package that ships it to the requested packages")
            libraries[name] = found
            pending.append(found)
    return libraries
