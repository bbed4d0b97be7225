"""RUNCVM_DISKS: a file in the container becomes a block device the VM mounts."""

from __future__ import annotations

DEBIAN = "debian"


def test_a_new_disk_is_formatted_filled_from_the_image_and_mounted(docker_cli, runcvm, test_images):
    # /etc/apt exists in the image: the new filesystem starts with its files.
    vm = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", "-e", "RUNCVM_DISKS=/disks/apt.img,/etc/apt,ext4,64M",
                        test_images[DEBIAN], "sh", "-c",
                        "grep ' /etc/apt ' /proc/mounts | cut -d' ' -f3; ls /etc/apt/sources.list; "
                        "df -k /etc/apt | tail -1 | tr -s ' ' | cut -d' ' -f2", timeout=240)
    filesystem, listed, size_kib = vm.stdout.decode().split()
    assert filesystem == "ext4" and listed == "/etc/apt/sources.list"
    assert 50_000 < int(size_kib) <= 65_536


def test_a_disk_on_a_volume_keeps_its_data_for_the_next_container(docker_cli, runcvm, test_images):
    volume = docker_cli.owner + "-disks"
    docker_cli.cli("volume", "create", volume)
    options = ("--runtime", runcvm, "-v", f"{volume}:/disks")
    docker_cli.cli("run", "--rm", *options, "-e", "RUNCVM_DISKS=/disks/data.img,/data,ext4,32M",
                   test_images[DEBIAN], "sh", "-c", "echo kept > /data/file", timeout=240)
    # The next container finds the formatted file and mounts it as it is: no size needed.
    reread = docker_cli.cli("run", "--rm", *options, "-e", "RUNCVM_DISKS=/disks/data.img,/data,ext4",
                            test_images[DEBIAN], "cat", "/data/file", timeout=240)
    assert reread.stdout == b"kept\n"


def test_a_bad_disk_spec_fails_docker_run_naming_the_option(docker_cli, runcvm, test_images):
    vm = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", "-e", "RUNCVM_DISKS=/disks/a.img,/data,ext4,lots",
                        test_images[DEBIAN], "true", timeout=120, check=False)
    assert vm.returncode == 125
    assert b"RUNCVM_DISKS" in vm.stderr and b"size 'lots' is not a size" in vm.stderr


def test_a_missing_disk_file_without_a_size_fails_with_the_fix(docker_cli, runcvm, test_images):
    vm = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", "-e", "RUNCVM_DISKS=/disks/none.img,/data,ext4",
                        test_images[DEBIAN], "true", timeout=120, check=False)
    assert vm.returncode != 0
    assert b"/disks/none.img does not exist; give a size" in vm.stderr
