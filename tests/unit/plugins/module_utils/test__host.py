"""Host facts: the runtime registration read from daemon.json without tripping on bad files."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._host import (
    host_facts, kernel_facts, kernel_module_facts, registered_runtime, vm_defaults_facts,
)


@pytest.mark.parametrize("content, expected_path", [
    ({"runtimes": {"runcvm": {"path": "/opt/runcvm/bin/runcvm-runtime"}}}, "/opt/runcvm/bin/runcvm-runtime"),
    ({"runtimes": {"other": {"path": "/x"}}}, None),
    ({"log-driver": "json-file"}, None),
    ({"runtimes": None}, None),
    ([], None),
])
def test_registered_runtime(tmp_path, content, expected_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps(content))
    assert registered_runtime(str(daemon_json)) == (expected_path, None)


def test_a_missing_daemon_json_is_no_registration_and_no_problem(tmp_path):
    assert registered_runtime(str(tmp_path / "daemon.json")) == (None, None)


def test_invalid_json_is_reported_not_raised(tmp_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text("{not json")
    path, problem = registered_runtime(str(daemon_json))
    assert path is None
    assert problem.startswith(f"{daemon_json} cannot be read as JSON")


def test_host_facts_shape(tmp_path):
    facts = host_facts(str(tmp_path / "opt-runcvm"), str(tmp_path / "daemon.json"))
    assert facts["format_version"] == "1.0"
    assert facts["accelerator"] in ("kvm", "tcg")
    assert facts["payload"] == {"path": str(tmp_path / "opt-runcvm"), "installed": False, "digest": None}
    assert facts["kernels"] == {}
    assert facts["runtime"]["registered"] is False


def test_host_facts_report_the_runtime_asked_for(tmp_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"runtimes": {"runcvm": {"path": "/opt/runcvm/bin/runcvm-runtime"}}}')
    assert host_facts(str(tmp_path), str(daemon_json))["runtime"]["registered"] is True
    other = host_facts(str(tmp_path), str(daemon_json), "kata")["runtime"]
    assert (other["name"], other["registered"], other["path"]) == ("kata", False, None)


def test_the_hosts_vm_defaults_are_read_and_a_bad_file_is_reported_not_raised(tmp_path):
    path = tmp_path / "defaults.env"
    assert vm_defaults_facts(str(path)) == {"path": str(path), "variables": {}, "problem": None}
    path.write_text("# the install role's\nRUNCVM_WARM_START=1\n")
    assert vm_defaults_facts(str(path))["variables"] == {"RUNCVM_WARM_START": "1"}
    path.write_text("RUNCVM_ACCEL=warp\n")
    assert "RUNCVM_ACCEL=warp is not one of auto, kvm, tcg" in vm_defaults_facts(str(path))["problem"]


def test_kernel_facts_sort_versions_and_name_latest(tmp_path):
    for version in ("6.12.9-cloud", "6.1.0-cloud", "6.12.117-cloud"):
        (tmp_path / "debian" / version).mkdir(parents=True)
        (tmp_path / "debian" / version / "vmlinuz").write_bytes(b"")
    (tmp_path / "debian" / "latest").symlink_to("6.12.117-cloud")
    versions = ["6.1.0-cloud", "6.12.9-cloud", "6.12.117-cloud"]
    assert kernel_facts(str(tmp_path)) == {
        "debian": {"versions": versions, "latest": "6.12.117-cloud", "digests": dict.fromkeys(versions)}}


@pytest.mark.parametrize("flags, module", [({"vmx", "sse"}, "kvm_intel"), ({"svm"}, "kvm_amd"), ({"sse"}, None)])
def test_the_kvm_module_follows_the_cpu(flags, module):
    facts = kernel_module_facts(flags)
    assert facts["kvm"]["module"] == module and facts["kvm"]["device"] == "/dev/kvm"
    assert facts["tun"] == {"module": "tun", "device": "/dev/net/tun", "present": os.path.exists("/dev/net/tun")}
