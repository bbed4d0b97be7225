"""RUNCVM_VIRTIOFSD_CACHE=programs: which program directories the guest binds from the cached device."""

from __future__ import annotations

from runcvm.launcher import program_dirs

KERNEL = "6.12.1-cloud-amd64"


def image_root(tmp_path):
    """A root like Debian's: /usr a directory, /bin, /lib and /lib64 links into it; /etc."""
    root = tmp_path / "vm"
    for directory in ("usr/bin", "usr/lib", "etc", "sbin"):
        (root / directory).mkdir(parents=True)
    for link in ("bin", "lib", "lib64"):
        (root / link).symlink_to(f"usr/{link}")
    return root


def test_directories_not_links_are_cached(tmp_path):
    root = image_root(tmp_path)
    assert program_dirs.cached(str(root), [str(root), "/proc", f"{root}/etc/hosts"], KERNEL) == ("/usr", "/sbin")


def test_a_directory_with_a_volume_or_bind_mount_under_it_stays_on_the_roots_device(tmp_path):
    root = image_root(tmp_path)
    assert program_dirs.cached(str(root), [f"{root}/usr/local/share/data"], KERNEL) == ("/sbin",)
    assert program_dirs.cached(str(root), [f"{root}/sbin"], KERNEL) == ("/usr",)
    # A sibling whose name starts alike is no mount under it.
    assert program_dirs.cached(str(root), [f"{root}/usrdata"], KERNEL) == ("/usr", "/sbin")


def test_the_kernels_modules_do_not_count(tmp_path):
    root = image_root(tmp_path)
    for modules in (f"usr/lib/modules/{KERNEL}", "usr/lib/modules", f"lib/modules/{KERNEL}"):
        assert program_dirs.cached(str(root), [f"{root}/{modules}"], KERNEL) == ("/usr", "/sbin"), modules
    assert program_dirs.cached(str(root), [f"{root}/usr/lib/modules/other"], KERNEL) == ("/sbin",)


def test_mount_points_are_read_unescaped(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("36 35 98:0 / /vm rw - overlay overlay rw\n"
                         "37 36 98:0 /data /vm/usr/my\\040data rw - ext4 /dev/vda rw\n")
    assert program_dirs.mount_points(str(mountinfo)) == ["/vm", "/vm/usr/my data"]
