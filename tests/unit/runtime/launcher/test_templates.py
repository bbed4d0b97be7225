"""RUNCVM_WARM_START's templates on the host: which VMs a template cannot serve, the size cap
(least recently used first), a template that cannot be made, and what the timing line says of a
restored VM."""

from __future__ import annotations

import os
import time

import pytest

from runcvm.launcher import qemu, templates
from runcvm.launcher.timing import Timing


def vm(**overrides):
    values = dict(accelerator="tcg", memory_mib=512, cpus=2, kernel="/k/vmlinux", initrd="/k/initrd",
                  root_arguments="", nics=(), console="/c")
    return qemu.Vm(**{**values, **overrides})


def test_a_vm_with_disks_or_a_kernel_of_its_images_boots_cold(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    ours = str(tmp_path / "vmlinux")
    assert templates.unfit(vm(kernel=ours)) is None
    assert "RUNCVM_DISKS" in templates.unfit(vm(kernel=ours, disks=(("/disks/a", "runcvm-disk0"),)))
    assert "the kernel is the image's own" in templates.unfit(vm(kernel="/vm/boot/vmlinuz"))


def test_the_least_recently_used_templates_go_first_and_abandoned_halves_go(tmp_path, monkeypatch):
    monkeypatch.setattr(templates.layout, "TEMPLATES_DIR", str(tmp_path))
    now = time.time()
    for name, age in (("old.vm", 300), ("recent.vm", 100), ("newest.vm", 0), ("a.vm.1.partial", 2 * 3600),
                      ("b.vm.2.partial", 60)):
        (tmp_path / name).write_bytes(b"x" * 4096)
        os.utime(tmp_path / name, (now - age, now - age))
    templates.Template(str(tmp_path / "old.vm"))  # restored from just now
    on_disk = (tmp_path / "old.vm").stat().st_blocks * 512  # what counts: templates are sparse files
    templates.trim(cap=2 * on_disk + on_disk // 2)
    assert sorted(os.listdir(tmp_path)) == ["b.vm.2.partial", "newest.vm", "old.vm"]


def test_a_restored_vms_timing_has_a_restore_phase_and_its_templates_making():
    timing = Timing(0.001)
    for mark in ("template", "template_made", "qemu", "ready", "exit"):
        timing.mark(mark)
    timing.guest = {"kernel_seconds": 0.0, "setup_seconds": 0.0}
    timing.boot = "restored"
    names = [field.split("=")[0] for field in timing.line().split()]
    assert names == ["runtime", "launcher", "template", "restore", "init", "workload", "poweroff"]
    timing.boot = "cold"
    del timing.marks["template_made"]
    names = [field.split("=")[0] for field in timing.line().split()]
    assert names == ["runtime", "launcher", "firmware", "kernel", "init", "workload", "poweroff"]


def test_a_failing_template_qemu_is_an_error_with_its_words_and_none_on_the_containers_stderr(tmp_path, monkeypatch, capfd):
    for name, path in (("RUN_DIR", ""), ("TEMPLATE_ROOT", "root"), ("VIRTIOFS_SOCKET", "virtiofs.sock"),
                       ("QMP_SOCKET", "qmp.sock"), ("AGENT_SOCKET", "agent.sock"), ("UPDATE_QMP_SOCKET", "update.sock")):
        monkeypatch.setattr(templates.layout, name, str(tmp_path / path))
    virtiofsd = (qemu.Share("virtiofsd", str(tmp_path / "virtiofs.sock"),
                            ("sh", "-c", f"echo 'virtiofsd: serving' >&2; touch {tmp_path}/virtiofs.sock; exec sleep 60")),)
    monkeypatch.setattr(templates.qemu, "command", lambda vm, template: ["sh", "-c", "echo 'qemu: no such device' >&2; exit 1"])
    with pytest.raises(templates.TemplateError, match="qemu exited unexpectedly .*, saying: virtiofsd: serving / qemu: no such device"):
        templates.make(vm(), virtiofsd, str(tmp_path / "key.vm"))
    assert capfd.readouterr().err == ""
    assert sorted(os.listdir(tmp_path)) == ["root"]
