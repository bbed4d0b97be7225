# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection; no Ansible imports here.
"""What a Docker host has of RunCVM: the payload, the runtime registration, the accelerator."""

from __future__ import annotations

import json
import os
import pathlib
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.accel import (
    assess_kvm, choose_accelerator, probe_device, read_cpu_flags,
)
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.kernels import (
    LATEST, installed_kernels, version_sort_key,
)
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import (
    HOST_DEFAULTS_FILE, KVM_DEVICE, PAYLOAD_DIR, RUNTIME_NAME, TUN_DEVICE,
)
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.options import OptionError, read_defaults
from ansible_collections.runcvm.runcvm.plugins.module_utils._daemon_json import DAEMON_JSON
from ansible_collections.runcvm.runcvm.plugins.module_utils._tree_install import installed_digest

# The KVM module that serves each hardware virtualisation flag.
KVM_MODULES = {"vmx": "kvm_intel", "svm": "kvm_amd"}
# Bump when a key of host_facts() changes meaning or goes away.
FORMAT_VERSION = "1.0"


def registered_runtime(daemon_json: str = DAEMON_JSON, name: str = RUNTIME_NAME) -> tuple[str | None, str | None]:
    """(path of the runtime `name` in daemon.json or None, a problem reading the file or None)."""
    try:
        with open(daemon_json, encoding="utf-8") as handle:
            config = json.load(handle)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as error:
        return None, f"{daemon_json} cannot be read as JSON: {error}"
    runtime = (config.get("runtimes") or {}).get(name) if isinstance(config, dict) else None
    return (runtime.get("path") if isinstance(runtime, dict) else None), None


def kernel_facts(kernels_dir: str) -> dict[str, dict[str, t.Any]]:
    """distribution -> its installed kernel versions, oldest first, the one `latest` names, and
    each version's manifest digest."""
    facts = {}
    for distribution, entries in installed_kernels(kernels_dir).items():
        versions = sorted({v for name, v in entries.items() if name != LATEST}, key=version_sort_key)
        facts[distribution] = {
            "versions": versions,
            "latest": entries.get(LATEST),
            "digests": {v: installed_digest(pathlib.Path(kernels_dir, distribution, v)) for v in versions},
        }
    return facts


def kernel_module_facts(cpu_flags: t.AbstractSet[str]) -> dict[str, t.Any]:
    """The kernel modules VMs need, each with the device it provides and whether that device is
    there; the KVM module is null on a CPU without hardware virtualisation (TCG needs none)."""
    kvm_module = next((module for flag, module in sorted(KVM_MODULES.items()) if flag in cpu_flags), None)
    return {
        "tun": {"module": "tun", "device": TUN_DEVICE, "present": os.path.exists(TUN_DEVICE)},
        "kvm": {"module": kvm_module, "device": KVM_DEVICE, "present": os.path.exists(KVM_DEVICE)},
    }


def vm_defaults_facts(path: str = HOST_DEFAULTS_FILE) -> dict[str, t.Any]:
    """The host's defaults file, the RUNCVM_* variables it gives every container, and why it
    cannot be read (or None)."""
    try:
        return {"path": path, "variables": read_defaults(path), "problem": None}
    except (OSError, UnicodeDecodeError, OptionError) as error:
        return {"path": path, "variables": {}, "problem": str(error)}


def host_facts(payload_dir: str = PAYLOAD_DIR, daemon_json: str = DAEMON_JSON,
               runtime: str = RUNTIME_NAME) -> dict[str, t.Any]:
    cpu_flags = read_cpu_flags()
    accelerator = choose_accelerator("auto", assess_kvm(cpu_flags, probe_device()))
    runtime_path, daemon_json_problem = registered_runtime(daemon_json, runtime)
    digest = installed_digest(pathlib.Path(payload_dir))
    return {
        "format_version": FORMAT_VERSION,
        "accelerator": accelerator.name,
        "accelerator_reason": accelerator.reason,
        "payload": {"path": payload_dir, "installed": digest is not None, "digest": digest},
        "kernels": kernel_facts(os.path.join(payload_dir, "kernels")),
        "kernel_modules": kernel_module_facts(cpu_flags),
        "vm_defaults": vm_defaults_facts(),
        "runtime": {
            "name": runtime,
            "registered": runtime_path is not None,
            "path": runtime_path,
            "daemon_json": daemon_json,
            "daemon_json_problem": daemon_json_problem,
        },
    }
