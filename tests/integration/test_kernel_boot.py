"""Each guest kernel, with RunCVM's initramfs, boots into an init in a virtiofs root, or powers off
saying why it cannot."""

from __future__ import annotations

import shutil

from harness.bootvm import boot

MARKER = "RUNCVM-BOOT-MARKER"


def test_kernel_layout(kernel):
    directory = kernel.tree
    assert kernel.distribution == "debian"
    assert (directory / "manifest.json").exists()
    for name in ("vmlinuz", "initrd", "config"):
        assert (directory / name).stat().st_size > 0
    modules = directory / "modules" / kernel.version
    assert (modules / "modules.dep").exists() and (modules / "modules.dep.bin").exists()
    assert "CONFIG_VIRTIO_FS" in (directory / "config").read_text()


def test_kernel_boots_to_an_init_in_the_virtiofs_root(kernel, payload, tmp_path):
    root = tmp_path / "root"
    for directory in ("bin", "proc", "sys", "dev"):
        (root / directory).mkdir(parents=True)
    shutil.copy(payload.tree / "bin" / "busybox", root / "bin" / "busybox")
    init = root / "init-test"
    init.write_text(f'#!/bin/busybox sh\n/bin/busybox echo "{MARKER} $(/bin/busybox uname -r) '
                    f'$(/bin/busybox grep -o "^runcvmfs / virtiofs rw" /proc/mounts)"\n'
                    '/bin/busybox poweroff -f\n')
    init.chmod(0o755)
    result = boot(payload.tree, kernel.tree, root, "/init-test", tmp_path)
    print(f"boot of {kernel.version}: {result.seconds:.1f} s")
    assert f"{MARKER} {kernel.version} runcvmfs / virtiofs rw" in result.console, result.console
    assert result.returncode == 0


def test_a_root_that_cannot_be_mounted_powers_off_with_a_message(kernel, payload, tmp_path):
    result = boot(payload.tree, kernel.tree, None, "/sbin/init", tmp_path)
    assert "runcvm-initramfs: cannot mount the root filesystem: virtiofs tag 'runcvmfs'" in result.console
    assert "runcvm-initramfs: powering off" in result.console
    assert result.returncode == 0
