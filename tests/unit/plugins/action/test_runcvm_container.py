"""runcvm_container's plan: RunCVM options checked and rendered before docker_container runs."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.runcvm.runcvm.plugins.action.runcvm_container import (
    docker_container_arguments, guest_answered, split_arguments, vm_sizing,
)


def plan(**args):
    return docker_container_arguments(*split_arguments(args))


def test_runcvm_options_become_variables_and_the_rest_passes_through():
    arguments, rendered = plan(name="web", image="nginx", memory="1g", env={"A": "1"}, kernel="debian",
                               disks=[{"src": "/disks/d.img", "dst": "/data", "size": "5G"}], wait=True,
                               published_ports=["8080:80"])
    assert rendered == {"RUNCVM_KERNEL": "debian", "RUNCVM_DISKS": "/disks/d.img,/data,ext4,5G"}
    assert arguments == {"name": "web", "image": "nginx", "memory": "1g", "published_ports": ["8080:80"],
                         "runtime": "runcvm", "env": {"A": "1", **rendered}, "comparisons": {"env": "strict"}}


def test_without_options_the_environment_is_still_compared_so_a_removed_option_recreates():
    arguments, rendered = plan(name="web", image="nginx")
    assert rendered == {} and arguments["env"] == {} and arguments["comparisons"] == {"env": "strict"}


@pytest.mark.parametrize("network_mode", ["none", "default", "bridge", "backend"])
def test_network_modes_with_a_namespace_of_the_containers_own_pass(network_mode):
    assert plan(name="web", network_mode=network_mode)[0]["network_mode"] == network_mode


def test_the_tasks_own_comparisons_win():
    arguments, rendered = plan(name="web", comparisons={"env": "allow_more_present", "image": "ignore"})
    assert arguments["comparisons"] == {"env": "allow_more_present", "image": "ignore"} and rendered == {}


@pytest.mark.parametrize("args, message", [
    ({"runtime": "runc"}, "runs containers with runtime runcvm, not runc"),
    ({"env": {"RUNCVM_KERNEL": "debian"}}, "env sets RUNCVM_KERNEL: use the runcvm_container option kernel"),
    ({"disks": [{"src": "/disks/d.img", "dst": "/data", "size": "lots"}]},
     "size 'lots' is not a size.*no container was touched"),
    ({"disks": [{"src": "/disks/d.img"}]}, "missing required arguments: dst"),
    ({"disks": [{"src": "/disks/d.img", "dst": "/data", "fs": "btrfs"}]}, "fs must be one of"),
    ({"accel": "hvf"}, "accel must be one of"),
    ({"kernel": "../x"}, "RUNCVM_KERNEL=../x is invalid"),
    ({"network_mode": "host"}, "network_mode host is not supported.*no container was touched"),
    ({"network_mode": "container:db"}, "network_mode container:db is not supported"),
    ({"memory": "32m"}, "memory 32m is too small for a VM: it needs at least 64 MiB; no container was touched"),
    ({"memory": "lots"}, "memory lots is not valid"),
])
def test_bad_input_fails_before_any_module_runs(args, message):
    with pytest.raises(AnsibleActionFail, match=message):
        plan(name="web", image="nginx", **args)


@pytest.mark.parametrize("host_config, arguments, differs, reason", [
    ({"Memory": 268435456, "NanoCpus": 0}, {"memory": "256m"}, False, None),
    ({"Memory": 268435456}, {"memory": "200m"}, True, None),  # the VM gives the rest back
    ({"Memory": 268435456}, {"memory": "320m"}, True,
     "memory 268435456 -> 335544320 bytes: only less memory is given in place"),
    ({"Memory": 0}, {"memory": "1g"}, True, "memory unset -> 1073741824 bytes: only less memory is given in place"),
    ({"NanoCpus": 1500000000}, {"cpus": 1.5}, False, None),
    ({"NanoCpus": 1500000000}, {"cpus": 1.2}, True, None),  # the quota changes, the VM keeps its 2 vCPUs
    ({"NanoCpus": 1500000000}, {"cpus": 3}, True, "cpus 1.5 -> 3: the VM's vCPU count changes"),
    ({"NanoCpus": 0}, {"cpus": 1}, True, "cpus 0 -> 1: the VM's vCPU count changes"),
    ({"Memory": 268435456}, {}, False, None),
])
def test_what_the_runtime_cannot_follow_in_place_recreates(host_config, arguments, differs, reason):
    assert vm_sizing({"HostConfig": host_config}, arguments) == (differs, reason)


def test_a_container_that_does_not_exist_yet_needs_no_recreation():
    assert vm_sizing(None, {"memory": "1g"}) == (False, None)


@pytest.mark.parametrize("result, answered", [
    ({"rc": 0, "stderr": ""}, True),
    ({"rc": 127, "stderr": 'exec: "true": executable file not found in $PATH'}, True),
    ({"rc": 126, "stderr": 'exec: "true": permission denied'}, True),
    ({"rc": 126, "stderr": "runcvm: the VM is not up after 60 s; try docker exec again"}, False),
    ({"rc": 1, "msg": "Error: No such container: web"}, False),
])
def test_wait_counts_only_answers_from_the_guest(result, answered):
    assert guest_answered(result) is answered
