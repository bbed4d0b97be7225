# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""Builds the payload: the self-contained /opt/runcvm tree, its tarball and its manifest.

Every binary comes from a pinned Debian package and is patched to load only from the payload:
its interpreter is the payload's loader at the path where containers see it
(/.runcvm/guest/lib), and its DT_RPATH is relative ($ORIGIN/...), so the same tree works at
/opt/runcvm on the host (binaries started through the loader) and at /.runcvm/guest inside
containers and VMs (binaries started directly).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import typing as t
import zipfile

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError
from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _elf
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._apt import AptArchive, extract
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._files import (
    DiskSpaceError, reproducible_tarball, require_free_space,
)
from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout
from ansible_collections.runcvm.runcvm.plugins.module_utils._manifest import read_manifest, write_manifest
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._pins import COLLECTION_ROOT, Pins, download_wheels

# Bump when the builder changes what it puts in the payload, to invalidate cached builds.
BUILDER_VERSION = 5
RUNTIME_DIR = COLLECTION_ROOT / "files" / "runtime"
# The core the runtime shares with the modules: the only module_utils the payload holds.
CORE_PACKAGE = "ansible_collections/runcvm/runcvm/plugins/module_utils/_core"
CORE_DIR = COLLECTION_ROOT / CORE_PACKAGE.split("/", 3)[3]
GUEST_DIR = layout.GUEST_DIR
# -S (joined to -I: a #! line passes one argument): without site, Python starts 0.8 s sooner in
# a VM under TCG; the one directory site would add that the runtime needs is put on the path here.
ENTRY_SCRIPT = """#!{python} -IS
\"\"\"{name}: RunCVM's {module}.main, with the payload's Python.\"\"\"
import sys

sys.path[:0] = ["{runtime}", "{packages}"]
from {module} import main  # noqa: E402  pylint: disable=wrong-import-position

sys.exit(main())
"""
PYTHON = "python3.13"
# A cold build unpacks about 450 MiB of packages next to the tree it makes.
SPACE_NEEDED = 1536 * 2**20

# Payload path -> path in the unpacked packages.
EXECUTABLES = {
    "bin/qemu-system-x86_64": "usr/bin/qemu-system-x86_64",
    "bin/virtiofsd": "usr/libexec/virtiofsd",
    "bin/busybox": "usr/bin/busybox",
    "bin/mke2fs": "usr/sbin/mke2fs",
    "bin/blkid": "usr/sbin/blkid",
    "bin/python3": f"usr/bin/{PYTHON}",
}
# QEMU's firmware for a q35 machine booted with -kernel, the virtio-net option ROM, and for
# RUNCVM_QEMU_DISPLAY=vnc the standard VGA card's BIOS and the VNC server's keymap.
QEMU_FIRMWARE = {
    "bios-256k.bin": "usr/share/seabios/bios-256k.bin",
    "vgabios-stdvga.bin": "usr/share/seabios/vgabios-stdvga.bin",
    "linuxboot_dma.bin": "usr/share/qemu/linuxboot_dma.bin",
    "kvmvapic.bin": "usr/share/qemu/kvmvapic.bin",
    "pvh.bin": "usr/share/qemu/pvh.bin",
    "multiboot_dma.bin": "usr/share/qemu/multiboot_dma.bin",
    "efi-virtio.rom": "usr/share/qemu/efi-virtio.rom",
    "keymaps/en-us": "usr/share/qemu/keymaps/en-us",
}
DATA_FILES = {"etc/mke2fs.conf": "etc/mke2fs.conf"}
# Parts of the standard library RunCVM never uses: tests, GUI, packaging and REPL tooling.
STDLIB_EXCLUDED = {
    "test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip", "venv", "pydoc_data", "__phello__",
    "_pyrepl", "lib2to3", "sitecustomize.py", "EXTERNALLY-MANAGED", "antigravity.py", "this.py",
}
DYNLOAD_EXCLUDED_PREFIXES = ("_test", "_ctypes_test", "_xxtestfuzz", "xxlimited", "xxsubtype", "_tkinter")
# Where pure-Python dependencies go (a directory Debian's site.py would put on sys.path).
DIST_PACKAGES = "lib/python3/dist-packages"


class PayloadError(BuildError):
    pass


@dataclasses.dataclass(frozen=True)
class PayloadBuild:
    tree: pathlib.Path
    tarball: pathlib.Path
    manifest: dict[str, t.Any]
    built: bool


def runtime_sources() -> list[tuple[pathlib.Path, str]]:
    """(file in this collection, its path in the payload) for RunCVM's own code: the runtime,
    and the pure core it shares with the modules, under the import path the modules use."""
    sources = [(path, f"{layout.RUNTIME_SUBDIR}/{path.relative_to(RUNTIME_DIR).as_posix()}")
               for path in sorted(RUNTIME_DIR.rglob("*")) if path.is_file() and "__pycache__" not in path.parts
               and path.name != "runcvm-runtime"]
    sources.append((RUNTIME_DIR / "runcvm-runtime", "bin/runcvm-runtime"))
    sources += [(path, f"{layout.RUNTIME_SUBDIR}/{CORE_PACKAGE}/{path.name}") for path in sorted(CORE_DIR.glob("*.py"))]
    return sources


def entry_scripts() -> dict[str, str]:
    """Payload path -> text of the scripts that start the launcher, the guest init and the exec client."""
    return {f"{layout.RUNTIME_SUBDIR}/{name}": ENTRY_SCRIPT.format(python=layout.GUEST_PYTHON, name=name, module=module,
                                                                   runtime=layout.GUEST_RUNTIME_DIR,
                                                                   packages=f"{GUEST_DIR}/{DIST_PACKAGES}")
            for name, module in layout.ENTRY_POINTS.items()}


def runtime_digest() -> str:
    digest = hashlib.sha256()
    for path, target in runtime_sources():
        digest.update(f"{target}\0{path.stat().st_mode & 0o111 != 0}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for target, text in entry_scripts().items():
        digest.update(f"{target}\0{text}\0".encode())
    return digest.hexdigest()


def cache_key(pins: Pins) -> str:
    return f"v{BUILDER_VERSION}-{pins.payload_digest()[:16]}-{runtime_digest()[:12]}"


def build_payload(pins: Pins, cache_dir: pathlib.Path, log: t.Callable[[str], None] = print,
                  force: bool = False) -> PayloadBuild:
    """The payload for `pins` and this collection's runtime, built unless the cache holds it.

    The packaged part (binaries, libraries, Python) is built once per set of pins and cached on
    its own; RunCVM's runtime is laid over a copy of it, so a change of runtime code rebuilds in
    seconds."""
    output = cache_dir / "payload" / cache_key(pins)
    tree, tarball, manifest_file = output / "tree", output / "runcvm-payload.tar.gz", output / "manifest.json"
    if manifest_file.exists() and tarball.exists() and not force:
        log(f"payload: cached build {output.name}")
        return PayloadBuild(tree, tarball, read_manifest(manifest_file), built=False)
    require_free_space(cache_dir, SPACE_NEEDED, "building the payload")
    try:
        base = _packaged_base(pins, cache_dir, log, force)
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        partial = output / "tree.partial"
        shutil.copytree(base, partial, symlinks=True)
        _add_runtime(partial, log)
        manifest = write_manifest(partial, manifest_file, {
            "release": pins.payload_release,
            "builder_version": BUILDER_VERSION,
            "packages": {p.name: p.version for p in pins.payload_packages},
            "python_packages": {w.name: w.version for w in pins.wheels},
        })
        partial.rename(tree)
        log("payload: writing the tarball")
        reproducible_tarball(tree, tarball)
    except OSError as error:
        shutil.rmtree(output, ignore_errors=True)
        if error.errno == errno.ENOSPC:
            raise DiskSpaceError(f"ran out of disk space building the payload in {cache_dir}") from error
        raise
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)
        raise
    log(f"payload: built {output.name}: {manifest['total_size'] // 2**20} MiB in {len(manifest['files'])} files")
    return PayloadBuild(tree, tarball, manifest, built=True)


def _packaged_base(pins: Pins, cache_dir: pathlib.Path, log: t.Callable[[str], None], force: bool) -> pathlib.Path:
    """The tree of everything the payload takes from packages, cached per pins."""
    output = cache_dir / "payload" / f"base-v{BUILDER_VERSION}-{pins.payload_digest()[:16]}"
    if (output / "complete").exists() and not force:
        return output / "tree"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    try:
        with tempfile.TemporaryDirectory(prefix="stage-", dir=output) as scratch:
            staged = pathlib.Path(scratch) / "root"
            _stage_packages(pins, cache_dir, staged, log)
            _assemble(staged, output / "tree", log)
            _install_wheels(pins, output / "tree", pathlib.Path(scratch) / "wheels", log)
            _compile_bytecode(output / "tree", [f"lib/{PYTHON}", DIST_PACKAGES], log)
        (output / "complete").touch()
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)
        raise
    return output / "tree"


def _add_runtime(tree: pathlib.Path, log: t.Callable[[str], None]) -> None:
    log("payload: adding RunCVM's runtime")
    for source, target in runtime_sources():
        _copy_file(source, tree / target)
    for target, text in entry_scripts().items():
        (tree / target).write_text(text, encoding="utf-8")
        (tree / target).chmod(0o555)
    _compile_bytecode(tree, [layout.RUNTIME_SUBDIR], log)


def _stage_packages(pins: Pins, cache_dir: pathlib.Path, staged: pathlib.Path, log: t.Callable[[str], None]) -> None:
    archive = AptArchive(pins.payload_release, pins.mirror, cache_dir / "apt", log)
    debs = archive.fetch(pins.payload_packages)
    log(f"payload: unpacking {len(debs)} packages")
    extract(debs.values(), staged)


def _copy_file(source: pathlib.Path, destination: pathlib.Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Dereference: the payload holds no links into the staging area.
    shutil.copyfile(source, destination)
    shutil.copymode(source, destination)
    destination.chmod(destination.stat().st_mode & 0o755 | 0o444)


def _relative_rpath(payload_file: pathlib.Path, tree: pathlib.Path) -> str:
    up = os.path.relpath(tree / "lib", payload_file.parent)
    return "$ORIGIN" if up == "." else f"$ORIGIN/{up}"


def _assemble(staged: pathlib.Path, tree: pathlib.Path, log: t.Callable[[str], None]) -> None:
    def take(mapping: dict[str, str], prefix: str = "") -> None:
        for target, source in mapping.items():
            path = staged / source
            if not path.exists():
                raise PayloadError(f"{source} is missing from the pinned packages (wanted for {prefix}{target})")
            _copy_file(path, tree / prefix / target)

    log("payload: collecting binaries, firmware and the Python standard library")
    take(EXECUTABLES)
    take(QEMU_FIRMWARE, "share/qemu/")
    take(DATA_FILES)
    _copy_stdlib(staged / "usr" / "lib" / PYTHON, tree / "lib" / PYTHON)
    (tree / DIST_PACKAGES).mkdir(parents=True)

    elves = sorted(path for path in tree.rglob("*") if _elf.is_elf(path))
    libraries = _elf.library_closure(elves, staged)
    log(f"payload: bundling {len(libraries)} shared libraries and patching {len(elves) + len(libraries)} ELF files")
    for name, path in sorted(libraries.items()):
        _copy_file(path, tree / "lib" / name)
    _patch_all(tree)


def _copy_stdlib(source: pathlib.Path, destination: pathlib.Path) -> None:
    def ignored(directory: str, names: list[str]) -> set[str]:
        skip = {name for name in names if name == "__pycache__"}
        if pathlib.Path(directory) == source:
            skip |= STDLIB_EXCLUDED & set(names)
        if pathlib.Path(directory).name == "lib-dynload":
            skip |= {name for name in names if name.startswith(DYNLOAD_EXCLUDED_PREFIXES)}
        return skip

    shutil.copytree(source, destination, ignore=ignored, symlinks=False)


def _patch_all(tree: pathlib.Path) -> None:
    loader = f"{GUEST_DIR}/lib/{_elf.LOADER}"
    for path in sorted(tree.rglob("*")):
        if not _elf.is_elf(path) or path.name in (_elf.LOADER, "libc.so.6"):
            continue
        if _elf.needed(path) is None:
            continue  # static: nothing to patch
        has_interpreter = _elf.interpreter(path) is not None
        _elf.patch(path, _relative_rpath(path, tree), loader if has_interpreter else None)


def _install_wheels(pins: Pins, tree: pathlib.Path, scratch: pathlib.Path, log: t.Callable[[str], None]) -> None:
    log(f"payload: fetching {', '.join(f'{w.name} {w.version}' for w in pins.wheels)} (hash-checked)")
    for wheel in download_wheels(pins.wheels, scratch):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tree / DIST_PACKAGES)


def run_payload_python(tree: pathlib.Path, *args: str, env: dict[str, str] | None = None,
                       ) -> subprocess.CompletedProcess:
    """Run the payload's Python on this machine, through the payload's own loader."""
    return subprocess.run([str(tree / "lib" / _elf.LOADER), str(tree / "bin" / "python3"), *args],
                          capture_output=True, text=True, check=False, env=env)


def _compile_bytecode(tree: pathlib.Path, directories: list[str], log: t.Callable[[str], None]) -> None:
    """Compile every module ahead of time: the payload is read-only where it runs, and importing
    from source costs seconds under TCG. Hash-based .pyc files do not depend on timestamps, and a
    fixed hash seed keeps their bytes reproducible."""
    log(f"payload: compiling Python bytecode in {', '.join(directories)}")
    directories = [str(tree / directory) for directory in directories]
    completed = run_payload_python(
        tree, "-I", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
        "-s", str(tree), "-p", GUEST_DIR, *directories,
        env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    if completed.returncode != 0:
        raise PayloadError(f"compiling the payload's Python failed:\n{completed.stdout}{completed.stderr}")
