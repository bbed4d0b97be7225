# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection. It is part of the core shared by
# the modules and the runtime payload: standard library imports only.
"""Which kernel a container's VM boots.

RUNCVM_KERNEL=<dist>[/<version>] picks an installed RunCVM kernel. Otherwise an image whose
/etc/os-release names a distribution with a known in-image kernel layout, and which carries both
files, boots its own kernel; every other image boots an installed kernel of its distribution, or
else the default distribution's, with a note saying so.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import (
    GUEST_KERNELS_DIR, KERNELS_DIR, VIRTIOFS_TAG,
)

DEFAULT_DISTRIBUTION = "debian"
LATEST = "latest"
REQUEST_PATTERN = re.compile(r"^[a-z]+(/[^/]+)?$")
# An installed kernel's files: the kernel as its package has it, and uncompressed where the
# builder could make it so (plugins/plugin_utils/_kernel.py).
COMPRESSED, UNCOMPRESSED = "vmlinuz", "vmlinux"

_DEBIAN_ROOT = f"rootfstype=virtiofs root={VIRTIOFS_TAG} noresume net.ifnames=1"
# Kernel command-line arguments that make each distribution's initramfs mount the virtiofs root.
ROOT_ARGUMENTS = {
    "debian": _DEBIAN_ROOT,
    "ubuntu": _DEBIAN_ROOT,
    "ol": f"root=virtiofs:{VIRTIOFS_TAG} noresume net.ifnames=1",
    "alpine": f"rootfstype=virtiofs root={VIRTIOFS_TAG} resume=",
    "openwrt": f"rootfstype=virtiofs root={VIRTIOFS_TAG} resume=",
}
# Where each distribution's images keep their own kernel and initramfs.
IN_IMAGE_KERNELS = {
    "debian": ("/vmlinuz", "/initrd.img"),
    "ubuntu": ("/boot/vmlinuz", "/boot/initrd.img"),
    "ol": ("/boot/vmlinuz", "/boot/initramfs"),
    "alpine": ("/boot/vmlinuz-virt", "/boot/initramfs-virt"),
    "openwrt": ("/boot/vmlinuz-virt", "/boot/initramfs-virt"),
}


class KernelSelectionError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class KernelChoice:
    source: t.Literal["installed", "image"]
    distribution: str
    version: str | None       # the installed kernel's release; None for an image's own kernel
    kernel: str               # path QEMU opens, as the container sees it
    initrd: str
    root_arguments: str
    note: str | None = None   # why this kernel, when it is not the obvious one

    def booted_by_firmware(self) -> KernelChoice:
        """The compressed kernel in place of the uncompressed one: QEMU boots it through the
        firmware, which sets up the VGA text mode a screen needs; entered through PVH, the kernel
        finds none, and the screen keeps showing the firmware's."""
        directory, name = self.kernel.rsplit("/", 1)
        if self.source == "installed" and name == UNCOMPRESSED:
            return dataclasses.replace(self, kernel=f"{directory}/{COMPRESSED}")
        return self

    @property
    def modules(self) -> str | None:
        """The installed kernel's modules, relative to the kernels directory."""
        if self.version is None:
            return None
        return f"{self.distribution}/{self.version}/modules/{self.version}"


def os_release_id(text: str | None) -> str | None:
    """The ID= of an os-release file, unquoted the way the original runtime does (double quotes only)."""
    for line in (text or "").splitlines():
        key, separator, value = line.partition("=")
        if separator and key.strip() == "ID":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None


def version_sort_key(version: str) -> list[tuple[int, int | str]]:
    """Sort kernel releases the way `sort -V` does: runs of digits compare as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", version) if part]


def installed_kernels(kernels_dir: str = KERNELS_DIR) -> dict[str, dict[str, str]]:
    """distribution -> {version or 'latest': version}, for version directories that hold a kernel
    and resolve inside `kernels_dir`."""
    root = os.path.realpath(kernels_dir)
    found: dict[str, dict[str, str]] = {}
    try:
        distributions = sorted(os.listdir(root))
    except OSError:
        return found
    for distribution in distributions:
        versions: dict[str, str] = {}
        try:
            names = sorted(os.listdir(os.path.join(root, distribution)))
        except OSError:
            continue
        for name in names:
            real = os.path.realpath(os.path.join(root, distribution, name))
            inside = os.path.commonpath([root, real]) == root
            if inside and os.path.isfile(os.path.join(real, COMPRESSED)):
                versions[name] = os.path.basename(real)
        if versions:
            found[distribution] = versions
    return found


def select_kernel(requested: str | None, os_release: str | None, image_has: t.Callable[[str], bool],
                  installed: dict[str, dict[str, str]], kernels_dir: str = KERNELS_DIR) -> KernelChoice:
    """Apply RUNCVM_KERNEL (`requested`), the image's os-release text and files, and the
    installed kernels (as installed_kernels() returns them)."""
    if requested:
        distribution, version = _parse_request(requested, installed, kernels_dir)
        return _installed(distribution, version, kernels_dir)

    image_id = os_release_id(os_release) or DEFAULT_DISTRIBUTION
    in_image = IN_IMAGE_KERNELS.get(image_id)
    if in_image and all(image_has(path) for path in in_image):
        return KernelChoice("image", image_id, None, in_image[0], in_image[1], ROOT_ARGUMENTS[image_id])
    if image_id in installed:
        return _installed(image_id, _latest(image_id, installed, kernels_dir), kernels_dir)
    if DEFAULT_DISTRIBUTION not in installed:
        raise KernelSelectionError(f"no RunCVM kernel is installed under {kernels_dir}: install one with the "
                                   "runcvm.runcvm.kernels role, or set RUNCVM_KERNEL to an installed kernel")
    version = _latest(DEFAULT_DISTRIBUTION, installed, kernels_dir)
    note = (f"the image's OS ({image_id}) has no RunCVM kernel installed; booting "
            f"{DEFAULT_DISTRIBUTION}/{version} (set RUNCVM_KERNEL=<dist>[/<version>] to choose)")
    return dataclasses.replace(_installed(DEFAULT_DISTRIBUTION, version, kernels_dir), note=note)


def check_request(requested: str) -> None:
    """The syntax of RUNCVM_KERNEL; whether that kernel is installed is the host's to say."""
    if ".." in requested:
        raise KernelSelectionError(f"RUNCVM_KERNEL={requested} is invalid: it contains '..'")
    if not REQUEST_PATTERN.match(requested):
        raise KernelSelectionError(f"RUNCVM_KERNEL={requested} is invalid: use <dist> or <dist>/<version>, "
                                   "for example debian or debian/latest")


def _parse_request(requested: str, installed: dict[str, dict[str, str]], kernels_dir: str) -> tuple[str, str]:
    check_request(requested)
    distribution, version = (requested.split("/", 1) + [""])[:2]
    if distribution not in installed:
        available = ", ".join(sorted(installed)) or "none"
        raise KernelSelectionError(f"RUNCVM_KERNEL={requested}: no {distribution} kernel is installed under "
                                   f"{kernels_dir} (installed: {available})")
    if not version:
        return distribution, _latest(distribution, installed, kernels_dir)
    if version not in installed[distribution]:
        available = ", ".join(sorted(installed[distribution]))
        raise KernelSelectionError(f"RUNCVM_KERNEL={requested}: {distribution} has no kernel {version} under "
                                   f"{kernels_dir} (installed: {available})")
    return distribution, installed[distribution][version]


def _latest(distribution: str, installed: dict[str, dict[str, str]], kernels_dir: str) -> str:
    versions = installed[distribution]
    if LATEST in versions:
        return versions[LATEST]
    raise KernelSelectionError(f"{kernels_dir}/{distribution}/{LATEST} is missing: reinstall the kernels with "
                               "the runcvm.runcvm.kernels role, or set RUNCVM_KERNEL=<dist>/<version>")


def _installed(distribution: str, version: str, kernels_dir: str) -> KernelChoice:
    """An installed kernel; uncompressed (vmlinux, booted through PVH) where it has been built so."""
    directory = f"{GUEST_KERNELS_DIR}/{distribution}/{version}"
    image = UNCOMPRESSED if os.path.isfile(os.path.join(kernels_dir, distribution, version, UNCOMPRESSED)) else COMPRESSED
    return KernelChoice("installed", distribution, version, f"{directory}/{image}", f"{directory}/initrd",
                        ROOT_ARGUMENTS.get(distribution, _DEBIAN_ROOT))
