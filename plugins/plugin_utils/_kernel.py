# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""Builds a guest kernel: a pinned Debian kernel package, laid out as
kernels/debian/<version>/{vmlinuz,vmlinux,initrd,config,modules/<version>} with RunCVM's own
initramfs. vmlinux, the kernel uncompressed, is there when the kernel has a PVH entry point and
this machine can decompress it: QEMU then enters the kernel in 64-bit mode at once, with no
firmware setup code and no decompression in the guest (under TCG, 1.8 s of each boot)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import lzma
import pathlib
import shutil
import struct
import subprocess
import tempfile
import typing as t

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._apt import AptArchive, extract
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._files import reproducible_tarball, require_free_space
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._initramfs import initramfs
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._kmod import ModuleError, ModuleIndex, module_name
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.kernels import COMPRESSED, UNCOMPRESSED
from ansible_collections.runcvm.runcvm.plugins.module_utils._manifest import read_manifest, write_manifest
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._pins import COLLECTION_ROOT, Pins

BUILDER_VERSION = 3
DISTRIBUTION = "debian"
INIT_SCRIPT = COLLECTION_ROOT / "files" / "initramfs" / "init"
# What the initramfs loads: enough to mount a virtiofs root read-write, plus the devices RunCVM
# gives every VM (network, disks, console) and the filesystem of its disks.
INITRAMFS_MODULES = ("virtio_pci", "virtiofs", "virtio_net", "virtio_blk", "virtio_console", "virtio_balloon", "ext4")
SPACE_NEEDED = 1024 * 2**20


class KernelError(BuildError):
    pass


@dataclasses.dataclass(frozen=True)
class KernelBuild:
    key: str
    distribution: str
    version: str
    tree: pathlib.Path      # what goes to kernels/<distribution>/<version>/
    tarball: pathlib.Path   # the same tree, packed
    manifest: dict[str, t.Any]
    built: bool


def cache_key(pins: Pins, key: str) -> str:
    kernel = pins.kernel(key)
    material = "\0".join([str(BUILDER_VERSION), kernel.package.sha256, pins.payload_package("busybox-static").sha256,
                          hashlib.sha256(INIT_SCRIPT.read_bytes()).hexdigest(), *INITRAMFS_MODULES])
    return f"{kernel.package.name}-{hashlib.sha256(material.encode()).hexdigest()[:16]}"


def build_kernel(pins: Pins, key: str, cache_dir: pathlib.Path, log: t.Callable[[str], None] = print,
                 force: bool = False) -> KernelBuild:
    output = cache_dir / "kernels" / cache_key(pins, key)
    tree, tarball, manifest_file = output / "tree", output / "kernel.tar.gz", output / "manifest.json"
    if manifest_file.exists() and tarball.exists() and not force:
        manifest = read_manifest(manifest_file)
        log(f"kernel: cached build of {manifest['version']}")
        return KernelBuild(key, DISTRIBUTION, manifest["version"], tree, tarball, manifest, built=False)
    require_free_space(cache_dir, SPACE_NEEDED, "building a kernel")
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    partial = output / "tree.partial"
    try:
        with tempfile.TemporaryDirectory(prefix="stage-", dir=output) as scratch:
            version = _build(pins, key, cache_dir, pathlib.Path(scratch), partial, log)
        kernel = pins.kernel(key)
        manifest = write_manifest(partial, manifest_file, {
            "builder_version": BUILDER_VERSION, "distribution": DISTRIBUTION, "version": version,
            "release": kernel.release, "packages": {kernel.package.name: kernel.package.version,
                                                    "busybox-static": pins.payload_package("busybox-static").version},
        })
        partial.rename(tree)
        reproducible_tarball(tree, tarball)
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)
        raise
    log(f"kernel: built {DISTRIBUTION}/{version}")
    return KernelBuild(key, DISTRIBUTION, version, tree, tarball, manifest, built=True)


def _build(pins: Pins, key: str, cache_dir: pathlib.Path, scratch: pathlib.Path, partial: pathlib.Path,
           log: t.Callable[[str], None]) -> str:
    kernel = pins.kernel(key)
    archives = {release: AptArchive(release, pins.mirror, cache_dir / "apt", log)
                for release in (kernel.release, pins.payload_release)}
    deb = archives[kernel.release].fetch([kernel.package])
    busybox_deb = archives[pins.payload_release].fetch([pins.payload_package("busybox-static")])
    staged = scratch / "root"
    log(f"kernel: unpacking {kernel.package.spec}")
    extract([*deb.values(), *busybox_deb.values()], staged)
    modules_root = _modules_root(staged)
    versions = [path.name for path in modules_root.iterdir()]
    if len(versions) != 1:
        raise KernelError(f"{kernel.package.spec} holds modules for {versions}, expected exactly one kernel")
    version = versions[0]
    _depmod(staged, version)
    index = _module_index(modules_root / version)
    try:
        order = index.load_order(list(INITRAMFS_MODULES))
    except ModuleError as error:
        raise KernelError(f"{kernel.package.spec}: {error}") from error
    log(f"kernel: initramfs loads {', '.join(module_name(path) for path in order) or 'no modules'}")

    partial.mkdir(parents=True)
    boot = staged / "boot"
    shutil.copyfile(boot / f"vmlinuz-{version}", partial / COMPRESSED)
    shutil.copyfile(boot / f"config-{version}", partial / "config")
    _write_uncompressed(partial, log)
    shutil.copytree(modules_root / version, partial / "modules" / version, symlinks=True)
    # The kernel's build and source links point into headers packages that are not installed.
    for link in ("build", "source"):
        (partial / "modules" / version / link).unlink(missing_ok=True)
    modules = [(f"{module_name(path)}.ko", _decompress(modules_root / version / path)) for path in order]
    busybox = _find(staged, ("usr/bin/busybox", "bin/busybox")).read_bytes()
    (partial / "initrd").write_bytes(initramfs(busybox, INIT_SCRIPT.read_bytes(), modules))
    return version


def _find(staged: pathlib.Path, candidates: t.Iterable[str]) -> pathlib.Path:
    for candidate in candidates:
        if (staged / candidate).exists():
            return staged / candidate
    raise KernelError(f"none of {', '.join(candidates)} is in the unpacked packages")


def _modules_root(staged: pathlib.Path) -> pathlib.Path:
    return _find(staged, ("usr/lib/modules", "lib/modules"))


def _depmod(staged: pathlib.Path, version: str) -> None:
    """Write the module metadata Debian's postinst would (modules.dep and its indexes), with the
    build machine's depmod run on the unpacked tree."""
    depmod = shutil.which("depmod") or next((p for p in ("/usr/sbin/depmod", "/sbin/depmod")
                                             if pathlib.Path(p).exists()), None)
    if depmod is None:
        raise KernelError("depmod is not installed: apt-get install kmod")
    # depmod -b looks under <base>/lib/modules; merged-/usr packages ship usr/lib/modules.
    if not (staged / "lib").exists():
        (staged / "lib").symlink_to("usr/lib")
    completed = subprocess.run([depmod, "-b", str(staged), version], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise KernelError(f"depmod failed for {version}: {completed.stderr.strip()}")


def _module_index(modules: pathlib.Path) -> ModuleIndex:
    def text(name: str) -> str:
        path = modules / name
        return path.read_text() if path.exists() else ""

    return ModuleIndex.parse(text("modules.dep"), text("modules.softdep"), text("modules.builtin"))


# The compressed kernel's first bytes, and how to decompress it: Python's own modules, or a
# command of this machine's (Debian's zstd and lz4 packages).
KERNEL_COMPRESSIONS: tuple[tuple[bytes, str, t.Callable[[bytes], bytes] | tuple[str, ...]], ...] = (
    (b"\x1f\x8b", "gzip", gzip.decompress),
    (b"\xfd7zXZ\x00", "xz", lzma.decompress),
    (b"\x28\xb5\x2f\xfd", "zstd", ("zstd", "-d", "-c", "-q")),
    (b"\x02\x21\x4c\x18", "lz4", ("lz4", "-d", "-c", "-q")),
)
ELF_MAGIC = b"\x7fELF"


def _write_uncompressed(tree: pathlib.Path, log: t.Callable[[str], None]) -> None:
    """tree/vmlinux from tree/vmlinuz, when the kernel can boot through PVH and this machine can
    decompress it; otherwise the VM boots vmlinuz, and the log says why."""
    if "CONFIG_PVH=y" not in (tree / "config").read_text().splitlines():
        log("kernel: no PVH entry point (CONFIG_PVH): VMs boot the compressed kernel")
        return
    bzimage = (tree / COMPRESSED).read_bytes()
    # The boot protocol's setup header: the compressed kernel follows the setup sectors, and
    # ends with its uncompressed size.
    setup_sectors = bzimage[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sectors + 1) * 512 + payload_offset
    payload = bzimage[start:start + payload_length]
    compressed, size = payload[:-4], struct.unpack("<I", payload[-4:])[0]
    for magic, name, decompressor in KERNEL_COMPRESSIONS:
        if compressed.startswith(magic):
            break
    else:
        log(f"kernel: compressed in a way this builder does not know ({compressed[:4].hex()}): VMs boot vmlinuz")
        return
    if callable(decompressor):
        kernel = decompressor(compressed)
    elif shutil.which(decompressor[0]):
        completed = subprocess.run(decompressor, input=compressed, capture_output=True, check=False)
        if completed.returncode != 0:
            raise KernelError(f"{' '.join(decompressor)} failed on the kernel: {completed.stderr.decode().strip()}")
        kernel = completed.stdout
    else:
        log(f"kernel: {decompressor[0]} is not installed (apt-get install {decompressor[0]}): VMs boot the "
            f"{name}-compressed vmlinuz, 1-2 s slower under TCG")
        return
    if not kernel.startswith(ELF_MAGIC) or len(kernel) != size:
        raise KernelError(f"the kernel decompressed to {len(kernel)} bytes that are not the {size}-byte ELF expected")
    (tree / UNCOMPRESSED).write_bytes(kernel)


def _decompress(path: pathlib.Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        raise KernelError(f"{path.name} is zstd-compressed, which this builder cannot unpack")
    return data
