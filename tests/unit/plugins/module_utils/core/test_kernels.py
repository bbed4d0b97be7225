"""Kernel selection: RUNCVM_KERNEL, the image's own kernel, installed kernels and the fallback."""

from __future__ import annotations

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.kernels import (
    KernelSelectionError, installed_kernels, os_release_id, select_kernel, version_sort_key,
)

INSTALLED = {
    "debian": {"6.12.1-cloud": "6.12.1-cloud", "6.1.9-cloud": "6.1.9-cloud", "latest": "6.12.1-cloud"},
    "alpine": {"6.6.5-virt": "6.6.5-virt", "latest": "6.6.5-virt"},
}
DEBIAN_OS = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'


def no_files(path):
    return False


def has(*paths):
    return lambda path: path in paths


@pytest.mark.parametrize("requested, os_release, image_has, expected", [
    # RUNCVM_KERNEL wins, even over an image's own kernel.
    ("debian", DEBIAN_OS, has("/vmlinuz", "/initrd.img"), ("installed", "debian", "6.12.1-cloud")),
    ("debian/latest", None, no_files, ("installed", "debian", "6.12.1-cloud")),
    ("debian/6.1.9-cloud", None, no_files, ("installed", "debian", "6.1.9-cloud")),
    ("alpine", DEBIAN_OS, no_files, ("installed", "alpine", "6.6.5-virt")),
    # The image's own kernel, when it has both files.
    (None, DEBIAN_OS, has("/vmlinuz", "/initrd.img"), ("image", "debian", None)),
    (None, "ID=ubuntu\n", has("/boot/vmlinuz", "/boot/initrd.img"), ("image", "ubuntu", None)),
    (None, 'ID="ol"\n', has("/boot/vmlinuz", "/boot/initramfs"), ("image", "ol", None)),
    # Only one of the two files: the installed kernel of that distribution.
    (None, DEBIAN_OS, has("/vmlinuz"), ("installed", "debian", "6.12.1-cloud")),
    (None, "ID=alpine\n", no_files, ("installed", "alpine", "6.6.5-virt")),
    # No os-release, or no ID in it: the default distribution.
    (None, None, no_files, ("installed", "debian", "6.12.1-cloud")),
    (None, "NAME=x\n", no_files, ("installed", "debian", "6.12.1-cloud")),
    # A distribution with no installed kernel falls back to the default one.
    (None, "ID=fedora\n", no_files, ("installed", "debian", "6.12.1-cloud")),
    (None, "ID=ubuntu\n", no_files, ("installed", "debian", "6.12.1-cloud")),
])
def test_select_kernel(requested, os_release, image_has, expected):
    choice = select_kernel(requested, os_release, image_has, INSTALLED)
    assert (choice.source, choice.distribution, choice.version) == expected


def test_installed_kernel_paths_are_those_the_container_sees():
    choice = select_kernel("debian/6.1.9-cloud", None, no_files, INSTALLED)
    assert choice.kernel == "/.runcvm/guest/kernels/debian/6.1.9-cloud/vmlinuz"
    assert choice.initrd == "/.runcvm/guest/kernels/debian/6.1.9-cloud/initrd"
    assert choice.modules == "debian/6.1.9-cloud/modules/6.1.9-cloud"
    assert choice.root_arguments == "rootfstype=virtiofs root=runcvmfs noresume net.ifnames=1"


def test_image_kernel_paths_and_root_arguments():
    choice = select_kernel(None, 'ID="ol"\n', has("/boot/vmlinuz", "/boot/initramfs"), INSTALLED)
    assert (choice.kernel, choice.initrd, choice.modules) == ("/boot/vmlinuz", "/boot/initramfs", None)
    assert choice.root_arguments == "root=virtiofs:runcvmfs noresume net.ifnames=1"


def test_fallback_says_why():
    choice = select_kernel(None, "ID=fedora\n", no_files, INSTALLED)
    assert "fedora" in choice.note and "debian/6.12.1-cloud" in choice.note and "RUNCVM_KERNEL" in choice.note
    assert select_kernel(None, DEBIAN_OS, no_files, INSTALLED).note is None


@pytest.mark.parametrize("requested, message", [
    ("../etc", "contains '..'"),
    ("debian/../../etc", "contains '..'"),
    ("Debian", "use <dist> or <dist>/<version>"),
    ("debian/6.1/extra", "use <dist> or <dist>/<version>"),
    ("/debian", "use <dist> or <dist>/<version>"),
    ("ubuntu", "no ubuntu kernel is installed under /opt/runcvm/kernels (installed: alpine, debian)"),
    ("debian/5.10", "debian has no kernel 5.10 under /opt/runcvm/kernels (installed: 6.1.9-cloud, 6.12.1-cloud, "
                    "latest)"),
])
def test_bad_requests_name_the_option(requested, message):
    with pytest.raises(KernelSelectionError, match=f"RUNCVM_KERNEL={requested}") as raised:
        select_kernel(requested, None, no_files, INSTALLED)
    assert message in str(raised.value)


def test_no_kernel_installed_says_how_to_install_one():
    with pytest.raises(KernelSelectionError, match="runcvm.runcvm.kernels role"):
        select_kernel(None, "ID=fedora\n", no_files, {})


@pytest.mark.parametrize("text, expected", [
    ("ID=debian\n", "debian"),
    ('ID="ol"\nVERSION_ID="9"\n', "ol"),
    ("ID='alpine'\n", "'alpine'"),  # single quotes are not stripped, as in the original
    ("NAME=x\nID=\n", None),
    ("", None),
    (None, None),
])
def test_os_release_id(text, expected):
    assert os_release_id(text) == expected


def test_installed_kernels_reads_the_directory(tmp_path):
    for version in ("6.1.9-cloud", "6.12.1-cloud"):
        (tmp_path / "debian" / version).mkdir(parents=True)
        (tmp_path / "debian" / version / "vmlinuz").write_bytes(b"k")
    (tmp_path / "debian" / "latest").symlink_to("6.12.1-cloud")
    (tmp_path / "debian" / "empty").mkdir()
    (tmp_path / "debian" / "escape").symlink_to("/")
    (tmp_path / "stray-file").write_text("")
    assert installed_kernels(str(tmp_path)) == {
        "debian": {"6.1.9-cloud": "6.1.9-cloud", "6.12.1-cloud": "6.12.1-cloud", "latest": "6.12.1-cloud"}}
    assert installed_kernels(str(tmp_path / "missing")) == {}


def test_version_sort_orders_numbers_as_numbers():
    versions = ["6.12.9+deb13-cloud-amd64", "6.1.0-50-cloud-amd64", "6.12.117+deb13-cloud-amd64"]
    assert sorted(versions, key=version_sort_key) == [
        "6.1.0-50-cloud-amd64", "6.12.9+deb13-cloud-amd64", "6.12.117+deb13-cloud-amd64"]


def test_an_installed_kernel_built_uncompressed_boots_so(tmp_path):
    """vmlinux, which QEMU enters through PVH, where the builder made one; vmlinuz elsewhere,
    and for a VM with a screen."""
    for version in ("6.12.1-cloud", "6.1.9-cloud"):
        (tmp_path / "debian" / version).mkdir(parents=True)
        (tmp_path / "debian" / version / "vmlinuz").write_bytes(b"bzImage")
    (tmp_path / "debian" / "6.12.1-cloud" / "vmlinux").write_bytes(b"\x7fELF")
    installed = {"debian": INSTALLED["debian"]}
    uncompressed = select_kernel("debian", None, no_files, installed, str(tmp_path))
    assert uncompressed.kernel == "/.runcvm/guest/kernels/debian/6.12.1-cloud/vmlinux"
    assert uncompressed.booted_by_firmware().kernel == "/.runcvm/guest/kernels/debian/6.12.1-cloud/vmlinuz"
    compressed = select_kernel("debian/6.1.9-cloud", None, no_files, installed, str(tmp_path))
    assert compressed.kernel == "/.runcvm/guest/kernels/debian/6.1.9-cloud/vmlinuz"
    assert compressed.booted_by_firmware() == compressed
