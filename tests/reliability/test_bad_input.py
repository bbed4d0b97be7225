"""Bad input fails `docker run` with words naming the option and the fix, and leaves nothing of
RunCVM behind on the host: no process, link, mount, run file or container."""

from __future__ import annotations

import pytest

from runcvm.modifiers import host_huge_pages_free_mib

DEBIAN = "debian"
# More than the host's free huge pages hold, whatever it has.
BEYOND_HUGE_PAGES_MIB = host_huge_pages_free_mib() + 64


@pytest.mark.parametrize("options, message", [
    (("-e", "RUNCVM_ACCEL=warp"), "RUNCVM_ACCEL=warp is not one of auto, kvm, tcg"),
    (("-e", "RUNCVM_SWAP=1"), "RUNCVM_SWAP is not a RunCVM option; the options are RUNCVM_ACCEL"),
    (("-e", "RUNCVM_KERNEL=debian/0.0"), "RUNCVM_KERNEL=debian/0.0: debian has no kernel 0.0"),
    (("--memory", "32m"), "--memory 32m is too small for a VM: it needs at least 64 MiB"),
    (("--network=host",), "--network=host is not supported by RunCVM"),
    (("-e", "RUNCVM_HUGETLB=1", "--memory", f"{BEYOND_HUGE_PAGES_MIB}m"),
     f"RUNCVM_HUGETLB=1 needs {BEYOND_HUGE_PAGES_MIB} MiB of free huge pages"),
    # Refused by the launcher once the container runs, before QEMU starts.
    (("-e", "RUNCVM_DISKS=/disks/new.img,/data,ext4"), "/disks/new.img does not exist; give a size to create it"),
    (("--network=none", "-e", "RUNCVM_QEMU_DISPLAY=vnc"), "RUNCVM_QEMU_DISPLAY=vnc needs a network"),
])
def test_bad_input_is_named_and_leaves_nothing_behind(docker_cli, runcvm, test_images, nothing_left_behind,
                                                      options, message):
    refused = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", *options, test_images[DEBIAN], "true", check=False)
    assert refused.returncode != 0
    assert message.encode() in refused.stderr, refused.stderr
    assert b"Traceback" not in refused.stderr
    assert docker_cli.cli("ps", "-aq", "--filter", f"label=org.runcvm.test={docker_cli.owner}").stdout == b""
