"""Accelerator choice: KVM only where it can boot a stock kernel, TCG otherwise."""

from __future__ import annotations

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.accel import (
    AcceleratorError, KvmStatus, assess_kvm, choose_accelerator, probe_device, read_cpu_flags,
)

USABLE = KvmStatus(True, "KVM is usable: /dev/kvm opens and the CPU has vmx")
UNUSABLE = KvmStatus(False, "KVM is not usable (/dev/kvm: No such file or directory)")


@pytest.mark.parametrize("flags, device_error, usable, reason_has", [
    ({"fpu", "vmx", "sse"}, None, True, "vmx"),
    ({"fpu", "svm"}, None, True, "svm"),
    ({"fpu", "sse"}, None, False, "neither vmx nor svm"),
    ({"vmx"}, "/dev/kvm: No such file or directory", False, "No such file"),
    ({"vmx"}, "/dev/kvm: Permission denied", False, "Permission denied"),
    (set(), None, False, "paravirtual"),
])
def test_assess_kvm(flags, device_error, usable, reason_has):
    status = assess_kvm(frozenset(flags), device_error)
    assert status.usable is usable
    assert reason_has in status.reason


@pytest.mark.parametrize("requested, kvm, expected", [
    ("auto", USABLE, "kvm"),
    ("auto", UNUSABLE, "tcg"),
    ("kvm", USABLE, "kvm"),
    ("tcg", USABLE, "tcg"),
    ("tcg", UNUSABLE, "tcg"),
])
def test_choose_accelerator(requested, kvm, expected):
    assert choose_accelerator(requested, kvm).name == expected


def test_fallback_to_tcg_says_why():
    assert UNUSABLE.reason in choose_accelerator("auto", UNUSABLE).reason


def test_forcing_unusable_kvm_names_the_option_and_the_fix():
    with pytest.raises(AcceleratorError, match=r"RUNCVM_ACCEL=kvm .*No such file.*RUNCVM_ACCEL=tcg"):
        choose_accelerator("kvm", UNUSABLE)


def test_an_unknown_accelerator_is_refused():
    with pytest.raises(AcceleratorError, match="RUNCVM_ACCEL=hvf is not one of auto, kvm, tcg"):
        choose_accelerator("hvf", USABLE)


def test_read_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu vme vmx\nbugs\t\t: spectre\n\n"
                       "processor\t: 1\nflags\t\t: fpu\n")
    assert read_cpu_flags(str(cpuinfo)) == {"fpu", "vme", "vmx"}
    assert read_cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_probe_device(tmp_path):
    present = tmp_path / "device"
    present.write_bytes(b"")
    assert probe_device(str(present)) is None
    assert probe_device(str(tmp_path / "absent")) == f"{tmp_path / 'absent'}: No such file or directory"
