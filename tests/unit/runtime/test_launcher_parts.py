"""The launcher's pure parts: the protocol, the QEMU command line, disks, DNS and MACs."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._vm_options import Disk
from runcvm import protocol
from runcvm.launcher import disks, dns, qemu
from runcvm.launcher.network import vm_mac


def test_frames_round_trip_across_arbitrary_splits():
    frames = [protocol.encode(protocol.STDOUT, 0, b"hello"),
              protocol.encode_json(protocol.EXIT, 3, {"status": 7}), protocol.encode(protocol.STDIN, 0, b"")]
    stream = b"".join(frames)
    for split in range(1, len(stream)):
        decoder = protocol.Decoder()
        decoded = list(decoder.feed(stream[:split])) + list(decoder.feed(stream[split:]))
        assert decoded == [(protocol.STDOUT, 0, b"hello"), (protocol.EXIT, 3, b'{"status": 7}'),
                           (protocol.STDIN, 0, b"")]


def test_large_streams_are_cut_into_frames():
    data = os.urandom(protocol.MAX_PAYLOAD * 2 + 5)
    frames = list(protocol.encode_stream(protocol.STDERR, 1, data))
    assert len(frames) == 3
    decoded = list(protocol.Decoder().feed(b"".join(frames)))
    assert b"".join(frame[2] for frame in decoded) == data
    assert list(protocol.encode_stream(protocol.STDERR, 1, b"")) == []


def test_oversized_frames_are_refused():
    with pytest.raises(ValueError):
        protocol.encode(protocol.STDOUT, 0, b"x" * (protocol.MAX_PAYLOAD + 1))


@pytest.mark.parametrize("wait_status, expected", [(0, 0), (3 << 8, 3), (signal.SIGKILL, 137), (signal.SIGTERM, 143)])
def test_exit_status(wait_status, expected):
    assert protocol.exit_status(wait_status) == expected


def vm(**overrides):
    values = dict(accelerator="tcg", memory_mib=512, cpus=2, kernel="/k", initrd="/i",
                  root_arguments="rootfstype=virtiofs root=runcvmfs", taps=(("tap-eth0", "52:54:00:11:00:02"),),
                  virtiofs_socket="/run/v.sock", agent_socket="/run/a.sock", console="/run/console.log")
    return qemu.Vm(**{**values, **overrides})


def test_qemu_command_line():
    args = qemu.command(vm())
    joined = " ".join(args)
    assert args[0] == "/.runcvm/guest/bin/qemu-system-x86_64"
    assert "-accel tcg,tb-size=64 -cpu max" in joined and "-m 512M -smp 2" in joined
    assert "memory-backend-memfd,id=mem,size=512M,share=on" in joined
    assert "vhost-user-fs-pci,chardev=rootfs,tag=runcvmfs" in joined
    assert "tap,id=net0,ifname=tap-eth0,script=no,downscript=no" in joined
    assert "virtio-net-pci,netdev=net0,mac=52:54:00:11:00:02" in joined
    assert f"name={protocol.PORT_NAME}" in joined
    assert "-accel kvm -cpu host" in " ".join(qemu.command(vm(accelerator="kvm")))


def test_qemu_attaches_each_disk_with_its_serial():
    joined = " ".join(qemu.command(vm(disks=(("/disks/a.img", "runcvm-disk0"), ("/vm/b.img", "runcvm-disk1")))))
    assert "-drive file=/disks/a.img,format=raw,if=none,id=disk0" in joined
    assert "virtio-blk-pci,drive=disk1,serial=runcvm-disk1" in joined
    assert "virtio-blk" not in " ".join(qemu.command(vm()))


def test_disks_refuse_a_missing_file_without_a_size_and_a_file_that_is_not_one(tmp_path):
    vm_root = tmp_path / "vm"
    (vm_root / "data").mkdir(parents=True)
    (vm_root / "dir.img").mkdir()
    with pytest.raises(disks.DiskError, match="/new.img does not exist; give a size"):
        disks.prepare((Disk("/new.img", "/data"),), str(vm_root))
    with pytest.raises(disks.DiskError, match="/dir.img exists and is not a regular file"):
        disks.prepare((Disk("/dir.img", "/data"),), str(vm_root))
    (vm_root / "etc").mkdir()
    (vm_root / "etc" / "hostname").write_text("x")
    with pytest.raises(disks.DiskError, match="mount point /etc/hostname exists in the image and is not a directory"):
        disks.prepare((Disk("/new.img", "/etc/hostname", size="1M"),), str(vm_root))
    assert not (vm_root / "new.img").exists()


def test_disks_use_an_existing_file_as_it_is_and_number_serials(tmp_path):
    vm_root = tmp_path / "vm"
    vm_root.mkdir()
    (vm_root / "a.img").write_bytes(b"\0" * 1024)
    (vm_root / "b.img").write_bytes(b"\0" * 1024)
    attached = disks.prepare((Disk("/a.img", "/a"), Disk("/b.img", "/b", "ext2")), str(vm_root))
    assert [(d.path, d.serial, d.dst, d.fs) for d in attached] == [
        (f"{vm_root}/a.img", "runcvm-disk0", "/a", "ext4"), (f"{vm_root}/b.img", "runcvm-disk1", "/b", "ext2")]
    assert attached[0].to_json() == {"serial": "runcvm-disk0", "dst": "/a", "fs": "ext4"}


def test_kernel_command_line():
    line = qemu.kernel_command_line(vm(kernel_append="foo=1"))
    assert line.startswith("console=ttyS0 rootfstype=virtiofs root=runcvmfs rw init=/.runcvm/guest/runtime/runcvm-init")
    assert "quiet" in line and line.endswith("foo=1")
    assert "quiet" not in qemu.kernel_command_line(vm(kernel_debug=True))


DOCKER_RESOLV = "search example\nnameserver 127.0.0.11\noptions ndots:0\n"


def test_dns_proxy_only_for_loopback_resolvers():
    assert dns.needs_proxy(DOCKER_RESOLV)
    assert not dns.needs_proxy("nameserver 192.0.2.53\n")
    assert dns.for_vm(DOCKER_RESOLV, "169.254.169.254") == \
        "search example\nnameserver 169.254.169.254\noptions ndots:0\n"


def test_vm_mac_keeps_the_containers_last_three_octets():
    assert vm_mac("02:42:ac:11:00:02") == "52:54:00:11:00:02"
