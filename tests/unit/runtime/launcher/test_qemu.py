"""The command lines of QEMU and virtiofsd."""

from __future__ import annotations

import dataclasses

import pytest

from runcvm.launcher import qemu


def vm(**overrides):
    values = dict(accelerator="tcg", memory_mib=512, cpus=2, kernel="/k", initrd="/i",
                  root_arguments="rootfstype=virtiofs root=runcvmfs", nics=(("eth0", "tap-eth0", "52:54:00:11:00:02"),),
                  console="/run/console.log")
    return qemu.Vm(**{**values, **overrides})


def test_qemu_command_line():
    args = qemu.command(vm())
    joined = " ".join(args)
    assert args[0] == "/.runcvm/guest/bin/qemu-system-x86_64"
    assert "-accel tcg,tb-size=64 -cpu max,erms=off,fsrm=off" in joined and "-m 512M -smp 2" in joined
    assert "-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny" in joined
    assert "memory-backend-memfd,id=mem,size=512M,share=on" in joined
    assert "vhost-user-fs-pci,chardev=rootfs,tag=runcvmfs" in joined
    assert "-netdev tap,id=net-eth0,ifname=tap-eth0,script=no,downscript=no" in joined
    assert "-device virtio-net-pci,id=nic-eth0,netdev=net-eth0,mac=52:54:00:11:00:02,bus=nicport0" in joined
    assert "-qmp unix:/run/runcvm/qmp.sock,server=on,wait=off" in joined
    assert "-chardev socket,id=agent,path=/run/runcvm/agent.sock,server=on,wait=off" in joined
    assert "virtserialport,bus=ports.0,chardev=agent,name=org.runcvm.agent" in joined
    assert "-accel kvm -cpu host" in " ".join(qemu.command(vm(accelerator="kvm")))


def test_each_nic_has_a_root_port_of_its_own_and_spares_wait_for_more():
    args = qemu.command(vm())
    ports = [args[i + 1] for i, arg in enumerate(args) if arg == "-device" and args[i + 1].startswith("pcie-root-port,")]
    assert ports == [f"pcie-root-port,id=nicport{i},chassis={i + 1},io-reserve=0" for i in range(1 + qemu.SPARE_NIC_PORTS)]
    # What the follower hot-plugs is what the command line cold-plugs.
    assert qemu.tap_netdev("eth1", "tap-eth1") == {"type": "tap", "id": "net-eth1", "ifname": "tap-eth1",
                                                   "script": "no", "downscript": "no"}
    assert qemu.nic_device("eth1", "52:54:00:11:00:03", "nicport1") == {
        "driver": "virtio-net-pci", "id": "nic-eth1", "netdev": "net-eth1", "mac": "52:54:00:11:00:03", "bus": "nicport1"}


def test_qemu_attaches_each_disk_with_its_serial():
    joined = " ".join(qemu.command(vm(disks=(("/disks/a.img", "runcvm-disk0"), ("/vm/b.img", "runcvm-disk1")))))
    assert "-drive file=/disks/a.img,format=raw,if=none,id=disk0" in joined
    assert "virtio-blk-pci,drive=disk1,serial=runcvm-disk1" in joined
    assert "virtio-blk" not in " ".join(qemu.command(vm()))


def test_kernel_command_line():
    line = qemu.kernel_command_line(vm(kernel_append="foo=1"))
    assert line.startswith("console=ttyS0 rootfstype=virtiofs root=runcvmfs rw init=/.runcvm/guest/runtime/runcvm-init")
    assert "quiet" in line and line.endswith("foo=1")
    assert "quiet" not in qemu.kernel_command_line(vm(kernel_debug=True))
    assert "systemd." not in line
    assert qemu.kernel_command_line(vm(init_system="systemd", kernel_append="foo=1")).endswith(
        " systemd.getty_auto=0 foo=1")


def test_virtiofsd_serves_the_vm_root_with_the_cache_asked_for():
    assert qemu.shares("always") == (qemu.Share("virtiofsd", "/run/runcvm/virtiofs.sock", (
        "/.runcvm/guest/bin/virtiofsd", "--socket-path=/run/runcvm/virtiofs.sock", "--shared-dir=/vm",
        "--sandbox=chroot", "--announce-submounts", "--cache=always", "--log-level=error")),)
    assert "--cache=never" in qemu.shares("none")[0].command  # the original RunCVM's word
    assert "programs" not in " ".join(qemu.command(vm()))


def test_programs_are_the_same_tree_from_a_second_cached_virtiofsd_and_device():
    root, programs = qemu.shares("programs", sys_admin=True, shared_dir="/run/runcvm/template-root")
    assert (root.name, root.socket, programs.name, programs.socket) == (
        "virtiofsd", "/run/runcvm/virtiofs.sock", "virtiofsd-programs", "/run/runcvm/virtiofs-programs.sock")
    assert [(one, other) for one, other in zip(root.command, programs.command, strict=True) if one != other] == [
        ("--socket-path=/run/runcvm/virtiofs.sock", "--socket-path=/run/runcvm/virtiofs-programs.sock"),
        ("--cache=auto", "--cache=always")]
    assert "--shared-dir=/run/runcvm/template-root" in programs.command and "--modcaps=+sys_admin" in programs.command
    joined = " ".join(qemu.command(vm(program_share=True)))
    assert ("-chardev socket,id=programs,path=/run/runcvm/virtiofs-programs.sock "
            "-device vhost-user-fs-pci,chardev=programs,tag=runcvmprograms") in joined


def test_the_originals_debugging_and_memory_options_reach_qemu_and_virtiofsd():
    assert "share=on,hugetlb=on" in " ".join(qemu.command(vm(hugetlb=True)))
    assert "hugetlb" not in " ".join(qemu.command(vm()))
    assert "isa-debugcon,iobase=0x402,chardev=firmware" in " ".join(qemu.command(vm(bios_debug=True)))
    assert "isa-debugcon" not in " ".join(qemu.command(vm()))


def test_a_screen_served_over_vnc_on_the_launchers_address_with_the_console_on_it_too():
    with_screen = qemu.command(vm(vnc_address="169.254.0.53"))
    assert with_screen[with_screen.index("-vnc") + 1] == "169.254.0.53:0,password=off"
    assert with_screen[with_screen.index("VGA") - 1] == "-device"
    # /dev/console stays the serial line: the last console= counts.
    assert with_screen[-1].startswith("console=tty0 console=ttyS0 ")
    assert "-vnc" not in qemu.command(vm()) and "VGA" not in qemu.command(vm())
    assert "tty0" not in qemu.command(vm())[-1]
    assert qemu.shares("auto", sys_admin=True)[0].command[-1] == "--modcaps=+sys_admin"
    assert "--modcaps=+sys_admin" not in qemu.shares("auto")[0].command


def test_a_template_vm_has_nics_of_its_own_and_a_restored_one_loads_it_at_start():
    template = " ".join(qemu.command(vm(), template=True))
    assert "-netdev hubport,id=net-eth0,hubid=0" in template and "tap-eth0" not in template
    assert "-device virtio-net-pci,id=nic-eth0,netdev=net-eth0,mac=52:54:00:ff:ff:00,bus=nicport0" in template
    # Saved without its run state, so that the QEMU restoring it runs it once loaded; in the
    # format the restoring QEMU reads.
    assert template.endswith(" -global migration.mapped-ram=on -global migration.store-global-state=off")
    restored = qemu.command(vm(), incoming="/run/runcvm/templates/t.vm")
    assert restored[-4:] == ["-global", "migration.mapped-ram=on", "-incoming", "file:/run/runcvm/templates/t.vm"]
    assert "-netdev tap,id=net-eth0,ifname=tap-eth0" in " ".join(restored)
    assert "store-global-state" not in " ".join(restored) and "-incoming" not in template
    # A new generation ID at each start makes a restored guest reseed; a cold boot needs none.
    assert "vmgenid" in template and "vmgenid" in restored and "vmgenid" not in qemu.command(vm())
    # Its guest is told it is a template on its kernel's command line; no other VM's is.
    assert qemu.kernel_command_line(vm(), template=True).split()[-1] == "runcvm.template"
    assert "runcvm.template" not in " ".join(restored) and "runcvm.template" not in " ".join(qemu.command(vm()))


def test_a_templates_key_follows_the_vm_virtiofsd_kernel_and_payload(tmp_path, monkeypatch):
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "manifest.json").write_text('{"digest": "k1"}')
    (tmp_path / "manifest.json").write_text('{"digest": "p1"}')
    monkeypatch.setattr(qemu.layout, "GUEST_DIR", str(tmp_path))
    base = vm(kernel=str(tmp_path / "kernel" / "vmlinux"))
    virtiofsd = qemu.shares("auto")
    key = qemu.template_key(base, virtiofsd)
    assert key == qemu.template_key(base, virtiofsd)
    others = {qemu.template_key(dataclasses.replace(base, memory_mib=1024), virtiofsd),
              qemu.template_key(dataclasses.replace(base, nics=()), virtiofsd),
              qemu.template_key(base, qemu.shares("always")),
              qemu.template_key(dataclasses.replace(base, program_share=True), qemu.shares("programs"))}
    (tmp_path / "manifest.json").write_text('{"digest": "p2"}')
    others.add(qemu.template_key(base, virtiofsd))
    assert key not in others and len(others) == 5
    (tmp_path / "kernel" / "manifest.json").unlink()
    with pytest.raises(OSError):
        qemu.template_key(base, virtiofsd)
