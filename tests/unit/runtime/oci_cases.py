"""config.json files captured from dockerd (configs/), as the spec tests load them, and the
Context they rewrite them in: fakes for the host's KVM and network namespace, never the real ones."""

from __future__ import annotations

import json
import pathlib

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.accel import KvmStatus
from runcvm import modifiers

CONFIGS = pathlib.Path(__file__).parent / "configs"
CASES = sorted(path.stem for path in CONFIGS.glob("*.json"))
NO_KVM = KvmStatus(False, "KVM is not usable (/dev/kvm: No such file or directory)")
HOST_NAMESPACE = "4:4026531840"


def load(case, tmp_path):
    config = json.loads((CONFIGS / f"{case}.json").read_text())
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    config["root"]["path"] = str(root)
    return config


def context(tmp_path, kernels, kvm=NO_KVM, host_namespace=HOST_NAMESPACE):
    """The host the tests' containers are created on: its defaults file is defaults.env beside the
    bundle, which only the tests that want host defaults write."""
    return modifiers.Context(bundle=str(tmp_path), payload_dir=str(kernels), kvm_status=lambda: kvm,
                             host_network_namespace=lambda: host_namespace, defaults_file=str(tmp_path / "defaults.env"))
