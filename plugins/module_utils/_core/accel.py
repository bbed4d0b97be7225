# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection. It is part of the core shared by
# the modules and the runtime payload: standard library imports only.
"""Which accelerator QEMU uses: KVM where it can boot a stock kernel, otherwise TCG."""

from __future__ import annotations

import dataclasses
import os
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import KVM_DEVICE

CPUINFO = "/proc/cpuinfo"
ACCELERATORS = ("auto", "kvm", "tcg")
# Hardware virtualisation flags. A /dev/kvm without them (a paravirtual one such as kvm_pvm)
# exists and opens, but stock kernels hang under it.
VIRTUALISATION_FLAGS = frozenset({"vmx", "svm"})


class AcceleratorError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class KvmStatus:
    usable: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class Accelerator:
    name: str
    reason: str


def read_cpu_flags(cpuinfo: str = CPUINFO) -> frozenset[str]:
    """The CPU flags of the first processor listed in /proc/cpuinfo."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, separator, value = line.partition(":")
                if separator and key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def probe_device(path: str = KVM_DEVICE) -> str | None:
    """None if `path` opens read-write, otherwise why it does not."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as error:
        return f"{path}: {error.strerror}"
    os.close(fd)
    return None


def assess_kvm(cpu_flags: t.AbstractSet[str], device_error: str | None) -> KvmStatus:
    if device_error is not None:
        return KvmStatus(False, f"KVM is not usable ({device_error})")
    if not VIRTUALISATION_FLAGS & cpu_flags:
        return KvmStatus(False, "KVM is not usable: the CPU has neither vmx nor svm, so /dev/kvm "
                                "is paravirtual and cannot boot stock kernels")
    flag = sorted(VIRTUALISATION_FLAGS & cpu_flags)[0]
    return KvmStatus(True, f"KVM is usable: {KVM_DEVICE} opens and the CPU has {flag}")


def choose_accelerator(requested: str, kvm: KvmStatus) -> Accelerator:
    """Apply RUNCVM_ACCEL (auto, kvm or tcg) to what the host offers."""
    if requested not in ACCELERATORS:
        raise AcceleratorError(f"RUNCVM_ACCEL={requested} is not one of {', '.join(ACCELERATORS)}")
    if requested == "tcg":
        return Accelerator("tcg", "TCG (software emulation) requested with RUNCVM_ACCEL=tcg")
    if kvm.usable:
        return Accelerator("kvm", kvm.reason)
    if requested == "kvm":
        raise AcceleratorError(f"RUNCVM_ACCEL=kvm was requested but {kvm.reason}; "
                               "use RUNCVM_ACCEL=tcg or auto")
    return Accelerator("tcg", f"TCG (software emulation, slow): {kvm.reason}")


def host_kvm_status() -> KvmStatus:
    return assess_kvm(read_cpu_flags(), probe_device())
