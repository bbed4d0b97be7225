"""Capabilities the launcher gives up once it no longer needs them: after the network is handed
to the VM nothing in the container needs CAP_NET_ADMIN, and QEMU, virtiofsd and anything a
guest that escaped QEMU could start can never have it back."""

from __future__ import annotations

import ctypes
import os

CAP_NET_ADMIN = 12
PR_CAPBSET_DROP = 24
CAPABILITY_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop(capabilities: tuple[int, ...]) -> None:
    """Take `capabilities` out of this process's bounding, effective, permitted and inheritable
    sets, for good."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in capabilities:
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"dropping capability {capability}: {os.strerror(ctypes.get_errno())}")
    header, data = _Header(CAPABILITY_VERSION_3, 0), (_Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), f"reading capabilities: {os.strerror(ctypes.get_errno())}")
    for capability in capabilities:
        word, bit = divmod(capability, 32)
        for field in ("effective", "permitted", "inheritable"):
            setattr(data[word], field, getattr(data[word], field) & ~(1 << bit))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), f"setting capabilities: {os.strerror(ctypes.get_errno())}")
