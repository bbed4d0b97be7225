"""The typed hand-off between stages: versioned JSON, checked field by field at the reading end."""

from __future__ import annotations

import json

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.options import Disk, Options

GUEST = plan.GuestConfig(
    network=plan.Network(interfaces=(plan.Interface("eth0", "52:54:00:11:00:02", 1500, ("172.17.0.2/16",), "tap-eth0",
                                                    "br-eth0"),),
                         routes=(plan.Route(plan.DEFAULT_ROUTE, "172.17.0.1", "eth0"),),
                         launcher_address="169.254.0.53", launcher_interface="eth0"),
    hostname="vm", tmpfs=(plan.Tmpfs("/scratch", ("size=64m",)),), resolv_conf=None,
    disks=(plan.GuestDisk("runcvm-disk0", "/data", "ext4"),), pids_limit=64)
WORKLOAD = plan.Process(args=("sh", "-c", "exit 3"), env=("PATH=/bin",), cwd="/", user=plan.User(1000, 1000, (27,)))


def vm_plan(**overrides):
    values = dict(workload=WORKLOAD, options=Options(kernel_debug=True, disks=(Disk("/disks/a", "/a", "ext4", "1G"),)),
                  accelerator="tcg", accelerator_warning=None, memory_mib=512, cpus=None, pids_limit=None,
                  kernel=plan.Kernel("/k", "/i", "root=runcvmfs", "installed", "6.12"), tmpfs=(),
                  host_network_namespace="4:1")
    return plan.VmPlan(**{**values, **overrides})


@pytest.mark.parametrize("value", [GUEST, WORKLOAD, vm_plan(), vm_plan(cpus=2, rewrite_seconds=0.25)])
def test_values_survive_their_json_form(value):
    assert plan.loads(type(value), plan.dumps(value), "value") == value


def test_options_travel_as_the_variables_that_give_them():
    options = json.loads(plan.dumps(vm_plan()))["options"]
    assert options == {"RUNCVM_DISKS": "/disks/a,/a,ext4,1G", "RUNCVM_KERNEL_DEBUG": "1"}


def edited(value, edit):
    raw = json.loads(plan.dumps(value))
    edit(raw)
    return json.dumps(raw)


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw.update(version=plan.VERSION + 1),
     f"has version {plan.VERSION + 1}, this RunCVM reads version {plan.VERSION}: .*reinstall"),
    (lambda raw: raw.pop("version"), "has version None"),
    (lambda raw: raw.update(surprise=1), "plan: unknown field surprise"),
    (lambda raw: raw.pop("memory_mib"), "plan: missing field memory_mib"),
    (lambda raw: raw.update(memory_mib="512"), r"plan\.memory_mib: expected int, found str"),
    (lambda raw: raw.update(memory_mib=True), r"plan\.memory_mib: expected int, found bool"),
    (lambda raw: raw["workload"].update(args="ls"), r"plan\.workload\.args: expected a list"),
    (lambda raw: raw["workload"]["args"].append(7), r"plan\.workload\.args\[3\]: expected str, found int"),
    (lambda raw: raw["workload"]["user"].update(groups=[None]), r"plan\.workload\.user\.groups\[0\]: expected int"),
    (lambda raw: raw.update(kernel=[]), r"plan\.kernel: expected an object"),
    (lambda raw: raw["options"].update(RUNCVM_ACCEL="warp"), r"plan\.options: RUNCVM_ACCEL=warp is not one of"),
])
def test_the_reading_end_names_what_is_wrong(edit, message):
    with pytest.raises(plan.PlanError, match=message):
        plan.loads(plan.VmPlan, edited(vm_plan(), edit), "plan")


def test_optional_fields_take_none_and_defaults():
    assert plan.loads(plan.VmPlan, edited(vm_plan(), lambda raw: raw.pop("rewrite_seconds")), "plan").rewrite_seconds == 0
    assert plan.loads(plan.VmPlan, edited(vm_plan(cpus=4), lambda raw: raw.update(cpus=None)), "plan").cpus is None


def test_text_that_is_not_json_is_named():
    with pytest.raises(plan.PlanError, match="plan is not JSON"):
        plan.loads(plan.VmPlan, "{", "plan")


def test_what_a_template_resolves_is_all_the_guest_reads():
    """A warm start's template resolves the field types of what the guest reads before it is saved
    (guest/init.py), so that reading them after a restore evaluates no annotation."""
    plan._field_types.cache_clear()  # pylint: disable=protected-access
    plan.resolve_field_types(plan.GuestConfig, plan.Process, plan.Network)
    resolved = plan._field_types.cache_info().misses  # pylint: disable=protected-access
    assert resolved > 3  # the classes they hold too
    for value in (GUEST, WORKLOAD, GUEST.network):
        plan.loads(type(value), plan.dumps(value), "value")
    assert plan._field_types.cache_info().misses == resolved  # pylint: disable=protected-access
