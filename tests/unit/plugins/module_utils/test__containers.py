"""runcvm_info's list of RunCVM containers, from what `docker ps` and `docker inspect` print."""

from __future__ import annotations

import json

from ansible_collections.runcvm.runcvm.plugins.module_utils._containers import running_containers, summarise


def inspected(name, runtime, env=(), memory=0):
    return {"Id": f"id-{name}", "Name": f"/{name}", "Config": {"Image": "busybox", "Env": list(env)},
            "State": {"Status": "running", "StartedAt": "2026-11-29T06:00:00Z"},
            "HostConfig": {"Runtime": runtime, "Memory": memory, "NanoCpus": 0}}


def test_summarise_keeps_the_runtimes_containers_by_name_with_their_options():
    containers = [inspected("web", "runcvm", ["PATH=/bin", "RUNCVM_KERNEL=debian", "RUNCVM_DISKS=/d,/x,ext4"],
                            memory=1 << 30),
                  inspected("plain", "runc"), inspected("api", "runcvm")]
    summaries = summarise(containers, "runcvm")
    assert [s["name"] for s in summaries] == ["api", "web"]
    assert summaries[1] == {"id": "id-web", "name": "web", "image": "busybox", "status": "running",
                            "started_at": "2026-11-29T06:00:00Z", "memory": 1 << 30, "nano_cpus": None,
                            "runcvm_options": {"RUNCVM_KERNEL": "debian", "RUNCVM_DISKS": "/d,/x,ext4"}}


def test_running_containers_asks_ps_then_inspect():
    calls = []

    def run(argv):
        calls.append(argv)
        if argv[1] == "ps":
            return 0, "id-web\nid-plain\n", ""
        return 0, json.dumps([inspected("web", "runcvm"), inspected("plain", "runc")]), ""

    containers, problem = running_containers(run, "runcvm")
    assert problem is None and [c["name"] for c in containers] == ["web"]
    assert calls[1] == ["docker", "inspect", "id-web", "id-plain"]


def test_running_containers_says_why_dockerd_could_not_be_asked():
    containers, problem = running_containers(lambda argv: (1, "", "Cannot connect to the Docker daemon\n"), "runcvm")
    assert containers == [] and problem == "docker ps failed: Cannot connect to the Docker daemon"


def test_no_running_container_needs_no_inspect():
    assert running_containers(lambda argv: (0, "\n", ""), "runcvm") == ([], None)
