"""RUNCVM_* options: read by the runtime and written by runcvm_container with the same rules."""

from __future__ import annotations

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._vm_options import (
    Disk, OptionError, Options, parse, render, workload_env,
)


def test_defaults_and_values():
    assert parse({}) == Options()
    parsed = parse({"RUNCVM_ACCEL": "tcg", "RUNCVM_KERNEL_DEBUG": "1", "RUNCVM_KERNEL_APPEND": "a=b",
                    "RUNCVM_KERNEL": "debian/6.1.0-50-cloud-amd64", "PATH": "/bin"})
    assert (parsed.accel, parsed.kernel_debug, parsed.kernel_append) == ("tcg", True, "a=b")
    assert parsed.kernel == "debian/6.1.0-50-cloud-amd64"


@pytest.mark.parametrize("env, message", [
    ({"RUNCVM_KERNEL_DEBUG": "maybe"}, "RUNCVM_KERNEL_DEBUG=maybe is not a boolean"),
    ({"RUNCVM_VIRTIOFSD_CACHE": "none"}, "RUNCVM_VIRTIOFSD_CACHE=none is not one of auto, always, never"),
    ({"RUNCVM_SYS_ADMIN": "1"}, "RUNCVM_SYS_ADMIN is not a RunCVM option"),
    ({"RUNCVM_KERNEL": "debian/../../etc"}, "RUNCVM_KERNEL=debian/../../etc is invalid"),
    ({"RUNCVM_KERNEL": "Debian 12"}, "use <dist> or <dist>/<version>"),
])
def test_bad_options(env, message):
    with pytest.raises(OptionError, match=message):
        parse(env)


def test_disks_parse_with_and_without_size():
    parsed = parse({"RUNCVM_DISKS": "/disks/a.img,/data,ext4,5G; /disks/b.img,/srv/,ext2"})
    assert parsed.disks == (Disk("/disks/a.img", "/data", "ext4", "5G"), Disk("/disks/b.img", "/srv", "ext2"))
    assert parsed.disks[0].size_bytes == 5 << 30 and parsed.disks[1].size_bytes is None


@pytest.mark.parametrize("value, message", [
    ("/disks/a.img,/data", "has 2 fields; the format is <src>,<dst>,<fs>"),
    ("/disks/a.img,/data,ext4,5G,x", "has 5 fields"),
    ("disks/a.img,/data,ext4,1M", "src 'disks/a.img' must be an absolute path"),
    ("/disks/a.img,data,ext4,1M", "dst 'data' must be an absolute path"),
    ("/disks/a.img,/,ext4,1M", "dst / is a path RunCVM or the kernel owns"),
    ("/disks/a.img,/proc/x,ext4,1M", "dst /proc/x is a path RunCVM or the kernel owns"),
    ("/.runcvm/a.img,/data,ext4,1M", "src /.runcvm/a.img is a path RunCVM or the kernel owns"),
    ("/data/a.img,/data,ext4,1M", "the backing file src must lie outside dst"),
    ("/disks/a.img,/data,xfs,1M", "fs 'xfs' is not one of ext4, ext3, ext2"),
    ("/disks/a.img,/data,ext4,lots", "size 'lots' is not a size"),
    ("/disks/a.img,/data,ext4,0", "size '0' is not a size"),
    ("/disks/a.img,/data,ext4,5GB", "size '5GB' is not a size"),
    ("/disks/a.img,/data,ext4,1M;/disks/b.img,/data/,ext4,1M", "mounts two disks at /data"),
    ("/disks/a.img,/a,ext4,1M;/disks/a.img,/b,ext4,1M", "names the same backing file twice"),
])
def test_bad_disks_are_refused_with_the_reason(value, message):
    with pytest.raises(OptionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse({"RUNCVM_DISKS": value})


def test_render_sets_only_what_was_asked_and_reads_back_the_same():
    assert render(Options()) == {}
    options = Options(accel="tcg", disks=(Disk("/disks/a.img", "/data", "ext4", "512M"), Disk("/disks/b", "/b")),
                      kernel="debian", kernel_append="quiet", kernel_debug=True, virtiofsd_cache="never")
    env = render(options)
    assert env == {"RUNCVM_ACCEL": "tcg", "RUNCVM_DISKS": "/disks/a.img,/data,ext4,512M;/disks/b,/b,ext4",
                   "RUNCVM_KERNEL": "debian", "RUNCVM_KERNEL_APPEND": "quiet", "RUNCVM_KERNEL_DEBUG": "1",
                   "RUNCVM_VIRTIOFSD_CACHE": "never"}
    assert parse(env) == options


def test_render_refuses_what_the_runtime_would():
    with pytest.raises(OptionError, match="size '1 G' is not a size"):
        render(Options(disks=(Disk("/disks/a.img", "/data", "ext4", "1 G"),)))


def test_workload_env_drops_runcvm_variables_and_keeps_order():
    assert workload_env(["B=1", "RUNCVM_ACCEL=tcg", "A=2", "RUNCVM_HANDOFF={}"]) == ["B=1", "A=2"]
