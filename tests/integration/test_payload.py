"""The payload runs in any image and loads nothing from outside itself."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess

import pytest

from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _elf
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._apt import AptArchive, AptError
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._payload import GUEST_DIR, build_payload

from harness.builds import BUILD_CACHE, quiet

GUEST_LOADER = f"{GUEST_DIR}/lib/{_elf.LOADER}"
# The loader and libc come unpatched: the loader is the interpreter, libc is found by soname.
UNPATCHED = {_elf.LOADER, "libc.so.6"}


def in_busybox_image(docker_cli, test_images, payload, *command, extra=()):
    return docker_cli.cli("run", "--rm", "--runtime=runc", *extra, "-v", f"{payload.tree}:{GUEST_DIR}:ro",
                          test_images["busybox"], *command)


@pytest.mark.parametrize("binary, args, expected", [
    ("qemu-system-x86_64", ["--version"], b"QEMU emulator version 10."),
    ("virtiofsd", ["--version"], b"virtiofsd 1."),
    ("mke2fs", ["-V"], b"mke2fs 1."),
    ("blkid", ["-V"], b"blkid from util-linux"),
    ("busybox", ["true"], b""),
])
def test_binaries_run_in_an_image_without_libc(docker_cli, test_images, payload, binary, args, expected):
    completed = in_busybox_image(docker_cli, test_images, payload, f"{GUEST_DIR}/bin/{binary}", *args)
    assert (completed.stdout + completed.stderr).startswith(expected)


def test_python_creates_a_bridge_and_a_tap_with_pyroute2(docker_cli, test_images, payload):
    script = """
from pyroute2 import IPRoute
with IPRoute() as ipr:
    ipr.link("add", ifname="br-test", kind="bridge")
    ipr.link("add", ifname="tap-test", kind="tuntap", mode="tap")
    (bridge,), (tap,) = ipr.link_lookup(ifname="br-test"), ipr.link_lookup(ifname="tap-test")
    ipr.link("set", index=tap, master=bridge, state="up")
    link = ipr.get_links(tap)[0]
    print(link.get_attr("IFLA_IFNAME"), link.get_attr("IFLA_MASTER") == bridge)
"""
    completed = in_busybox_image(docker_cli, test_images, payload, f"{GUEST_DIR}/bin/python3", "-c", script,
                                 extra=("--cap-add", "NET_ADMIN", "--device", "/dev/net/tun"))
    assert completed.stdout == b"tap-test True\n"


def test_python_imports_from_precompiled_bytecode(docker_cli, test_images, payload):
    # The payload is read-only in containers: had a module no .pyc, Python would compile it at
    # every start. Importing with bytecode writing off and a source path that cannot be read
    # proves the .pyc is what is used.
    script = "import sys, pyroute2, json, asyncio; print(sys.prefix, pyroute2.__file__.startswith(sys.prefix))"
    completed = in_busybox_image(docker_cli, test_images, payload, f"{GUEST_DIR}/bin/python3", "-B", "-c", script)
    assert completed.stdout == f"{GUEST_DIR} True\n".encode()
    missing = [str(py) for py in (payload.tree / "lib").rglob("*.py")
               if not list(py.parent.glob(f"__pycache__/{py.stem}.cpython-313.pyc"))]
    assert missing == []


def elf_files(tree: pathlib.Path) -> list[pathlib.Path]:
    return sorted(path for path in tree.rglob("*") if _elf.is_elf(path) and _elf.needed(path) is not None)


def test_every_elf_loads_only_from_the_payload(payload):
    tree = payload.tree
    problems = []
    for path in elf_files(tree):
        name = path.relative_to(tree).as_posix()
        if path.name in UNPATCHED:
            continue
        interpreter = _elf.interpreter(path)
        if interpreter is not None and interpreter != GUEST_LOADER:
            problems.append(f"{name}: interpreter {interpreter}")
        if not _elf.rpath(path).startswith("$ORIGIN"):
            problems.append(f"{name}: rpath {_elf.rpath(path)!r}")
        listing = _elf_listing(tree, path)
        for line in listing.splitlines():
            if "not found" in line:
                problems.append(f"{name}: {line.strip()}")
            elif "=>" in line:
                resolved = pathlib.Path(line.split("=>")[1].split("(")[0].strip()).resolve()
                if not resolved.is_relative_to(tree.resolve()):
                    problems.append(f"{name}: loads {resolved}")
    assert problems == []
    assert len(elf_files(tree)) > 50


def _elf_listing(tree: pathlib.Path, path: pathlib.Path) -> str:
    completed = subprocess.run([str(tree / "lib" / _elf.LOADER), "--list", str(path)], capture_output=True,
                               text=True, check=False)
    assert completed.returncode == 0, f"{path}: {completed.stderr}"
    return completed.stdout


def test_no_symlink_is_broken(payload):
    broken = [str(path) for path in payload.tree.rglob("*") if path.is_symlink() and not path.exists()]
    assert broken == []


def test_manifest_lists_every_file_with_its_hash(payload):
    manifest = payload.manifest
    on_disk = {path.relative_to(payload.tree).as_posix() for path in payload.tree.rglob("*")
               if path.is_file() and path.name != "manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert manifest["total_size"] == sum(entry["size"] for entry in manifest["files"].values())
    assert manifest["packages"]["qemu-system-x86"].startswith("1:10.")
    assert manifest["python_packages"] == {"pyroute2": "0.9.7", "qemu.qmp": "0.0.6"}


def test_the_same_pins_build_the_same_payload(pins, payload):
    again = build_payload(pins, BUILD_CACHE, quiet, force=True)
    assert again.built
    assert again.manifest["digest"] == payload.manifest["digest"]
    assert again.tarball.read_bytes() == payload.tarball.read_bytes()


def test_a_checksum_mismatch_is_refused(pins, tmp_path):
    archive = AptArchive(pins.payload_release, pins.mirror, BUILD_CACHE / "apt", quiet)
    package = dataclasses.replace(pins.payload_package("libmd0"), sha256="0" * 64)
    with pytest.raises(AptError, match=r"checksum mismatch for libmd0=.*pinned sha256 0{64}"):
        archive.fetch([package])


def test_a_version_the_mirror_lacks_names_the_package_and_the_fix(pins):
    archive = AptArchive(pins.payload_release, pins.mirror, BUILD_CACHE / "apt", quiet)
    package = dataclasses.replace(pins.payload_package("libmd0"), version="0.0.0-no-such-version")
    with pytest.raises(AptError, match=r"(?s)libmd0=0.0.0-no-such-version.*runcvm-build lock"):
        archive.fetch([package])
