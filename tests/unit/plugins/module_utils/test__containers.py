"""runcvm_info's list of RunCVM containers, from what `docker ps` and `docker inspect` print, and
what each one's helpers take beside its VM, from /proc."""

from __future__ import annotations

import json

from ansible_collections.runcvm.runcvm.plugins.module_utils._containers import running_containers, summarise, vm_overhead


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
                            "runcvm_options": {"RUNCVM_KERNEL": "debian", "RUNCVM_DISKS": "/d,/x,ext4"}, "vm_overhead": None}


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


def fake_proc(root, processes):
    """A /proc holding `processes`: pid -> (comm, parent pid or None, Pss, Pss_Shmem, Pss_File)."""
    for pid, (comm, parent, pss, shmem, files) in processes.items():
        task = root / str(pid) / "task" / str(pid)
        task.mkdir(parents=True)
        children = [str(child) for child, details in processes.items() if details[1] == pid]
        (task / "children").write_text(" ".join(children) + " " if children else "")
        (root / str(pid) / "comm").write_text(comm + "\n")
        (root / str(pid) / "smaps_rollup").write_text(
            f"55d0-7ffe ---p 00000000 00:00 0  [rollup]\nRss:  {pss * 2} kB\nPss:  {pss} kB\nPss_Dirty: 1 kB\n"
            f"Pss_Anon: 1 kB\nPss_File:  {files} kB\nPss_Shmem:  {shmem} kB\n")


def test_a_vms_overhead_is_its_helpers_memory_without_the_guests_ram(tmp_path):
    fake_proc(tmp_path, {10: ("runcvm-launcher", None, 24 * 1024, 0, 9 * 1024),
                         11: ("runcvm-network", 10, 18 * 1024, 0, 3 * 1024),
                         12: ("virtiofsd", 10, 12 * 1024, 8 * 1024, 3 * 1024),
                         13: ("qemu-system-x86", 10, 612 * 1024, 512 * 1024, 74 * 1024)})
    assert vm_overhead(10, str(tmp_path)) == {
        "pss_mib": 146.0, "mapped_files_mib": 89.0,
        "by_helper": {"qemu-system-x86": 100.0, "runcvm-launcher": 24.0, "runcvm-network": 18.0, "virtiofsd": 4.0}}
    assert vm_overhead(99, str(tmp_path)) is None


def test_summarise_gives_each_container_the_overhead_of_its_first_process():
    container = inspected("web", "runcvm")
    container["State"]["Pid"] = 10
    (summary,) = summarise([container], "runcvm", overhead=lambda pid: {"pss_mib": float(pid)})
    assert summary["vm_overhead"] == {"pss_mib": 10.0}
