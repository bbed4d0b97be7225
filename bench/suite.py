"""The benchmark suite: RunCVM against runc on this machine, in one run.

    .venv/bin/python bench/suite.py [--runs N] [--image IMAGE] [--workload-image IMAGE] [--json FILE]
                                    [--readme README.md]
    .venv/bin/python bench/suite.py --from-json bench/results.json --readme README.md

Measures the cold start (`docker run --rm IMAGE true`, with RunCVM's phases), the warm start
(the same with RUNCVM_WARM_START=1: the VM restored from a template), the cold start of
several containers at once, `docker exec CONTAINER true` into an idle container, the memory of
RunCVM's helpers (launcher, QEMU, virtiofsd) beside one idle VM booted cold and one restored
from a template (proportional set size without the guest's RAM, which QEMU and virtiofsd share as
a memfd) and the peak of each one's container memory cgroup beyond its VM once a process in the VM
has taken all the memory it could, and work inside a running container
(bench/workloads.py: file reads and metadata on the root and on tmpfs, a CPU-bound loop, starting
processes), and the same work in a VM whose root is served with RUNCVM_VIRTIOFSD_CACHE=always, and
with `programs` (with the exec latency into it). Runs of runc and RunCVM are interleaved, so both
see the same load.
Prints a table, writes every figure to FILE (bench/results.json) and, with --readme, puts the
table in that file between its bench markers. --from-json makes the table from figures measured
before, measuring nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys

sys.path[:0] = [str(pathlib.Path(__file__).parent), str(pathlib.Path(__file__).parents[1] / "tools")]

import collection_root  # noqa: E402  pylint: disable=wrong-import-position
from cgroups import cgroup_file  # noqa: E402  pylint: disable=wrong-import-position

collection_root.expose()

import cold_start  # noqa: E402  pylint: disable=wrong-import-position
import concurrent_start  # noqa: E402  pylint: disable=wrong-import-position
import exec_latency  # noqa: E402  pylint: disable=wrong-import-position
import report  # noqa: E402  pylint: disable=wrong-import-position
import workloads  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.runcvm.runcvm.plugins.module_utils._containers import (  # noqa: E402  pylint: disable=wrong-import-position
    overhead_of, process_memory,
)

MARKERS = ("<!-- bench-table: made by bench/suite.py -->", "<!-- /bench-table -->")
AT_ONCE = 4
WORKLOAD_ROWS = (("read_root", "Reading a 32 MiB file on the root filesystem"),
                 ("read_tmpfs", "Reading it on /dev/shm (tmpfs)"),
                 ("metadata_root", "Creating, stating and unlinking 2,000 files on the root filesystem"),
                 ("metadata_tmpfs", "The same on /dev/shm (tmpfs)"),
                 ("cpu", "A CPU-bound Python loop"),
                 ("spawn", "Starting 20 processes (`/bin/true`) one after another"))
# The root's virtiofs cache mode that lets the guest keep what it read; not the default, as the
# VM would not see what the host changes in the root (README: RUNCVM_VIRTIOFSD_CACHE).
CACHE_ALWAYS = ("-e", "RUNCVM_VIRTIOFSD_CACHE=always")
# The root as the default serves it, but its program directories as `always`.
CACHE_PROGRAMS = ("-e", "RUNCVM_VIRTIOFSD_CACHE=programs")
# The idle VMs' memory (RunCVM's default, said), which the container's memory cgroup holds with
# what the helpers take beside it.
VM_MEMORY_MIB = 512
VM_MEMORY = ("--memory", f"{VM_MEMORY_MIB}m")


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def helper_memory(container: str) -> tuple[dict[str, dict[str, int]], dict]:
    """(KiB by process of the container's tree, from smaps_rollup; its VM's overhead, as
    runcvm_info reports it)."""
    processes = process_memory(container_pid(container))
    return processes, overhead_of(processes)


def container_pid(container: str) -> int:
    return int(subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True,
                              text=True, check=True).stdout)


def memory_beyond_vm(container: str) -> dict:
    """Have a process in the container's VM (of VM_MEMORY_MIB) take memory until the guest's kernel
    kills it; then the container cgroup's peak beyond the VM's memory, and what its limit allows
    beyond it, in MiB."""
    grown = subprocess.run(["docker", "exec", container, "tail", "/dev/zero"], capture_output=True, check=False)
    if grown.returncode != 137:
        raise SystemExit(f"a process taking all of {container}'s memory ended with {grown.returncode}, not killed")
    pid = container_pid(container)
    files = {"peak_mib": ("memory.max_usage_in_bytes", "memory.peak"), "allowed_mib": ("memory.limit_in_bytes", "memory.max")}
    return {name: int(cgroup_file(pid, "memory", v1_file, v2_file).read_text(encoding="ascii")) / 2**20 - VM_MEMORY_MIB
            for name, (v1_file, v2_file) in files.items()}


def machine() -> dict:
    kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "kvm_device": kvm,
            "memory_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30)}


def measure(runs: int, image: str, workload_image: str) -> dict:
    started = cold_start.measure(runs, image)
    warm = cold_start.measure(runs, image, warm=True)
    together = concurrent_start.measure(runs, image, AT_ONCE)
    with exec_latency.idle_containers(image, VM_MEMORY) as names:
        execs = exec_latency.measure(runs * 4, names)
        memory, overhead = helper_memory(names["runcvm"])
        beyond = memory_beyond_vm(names["runcvm"])
    with exec_latency.idle_containers(image, (*cold_start.WARM_START, *VM_MEMORY)) as names:
        _memory, overhead_warm = helper_memory(names["runcvm"])
        beyond_warm = memory_beyond_vm(names["runcvm"])
    with exec_latency.idle_containers(workload_image) as names:
        work = workloads.measure(runs, names)
    with exec_latency.idle_containers(workload_image, CACHE_ALWAYS) as names:
        cached = workloads.measure(runs, names)
    with exec_latency.idle_containers(workload_image, CACHE_PROGRAMS) as names:
        execs_programs = exec_latency.measure(runs * 4, names)
        programs = workloads.measure(runs, names)
    return {
        "image": image, "workload_image": workload_image, "machine": machine(),
        "cold_start": {runtime: summary(started[runtime]) for runtime in report.RUNTIMES},
        "cold_start_phases": {name: statistics.median(values) for name, values in started["phases"].items()},
        "warm_start": {runtime: summary(warm[runtime]) for runtime in report.RUNTIMES},
        "warm_start_phases": {name: statistics.median(values) for name, values in warm["phases"].items()},
        "at_once": AT_ONCE,
        "cold_start_at_once": {runtime: summary(together[runtime]) for runtime in report.RUNTIMES},
        "never_up_at_once": together["never_up"],
        "exec": {runtime: summary(execs[runtime]) for runtime in report.RUNTIMES},
        "helper_memory_kib": memory,
        "vm_overhead": overhead,
        "vm_overhead_warm": overhead_warm,
        "vm_memory_mib": VM_MEMORY_MIB,
        "memory_beyond_vm": beyond,
        "memory_beyond_vm_warm": beyond_warm,
        "workloads": {figure: {runtime: summary(work[runtime][figure]) for runtime in report.RUNTIMES}
                      for figure in workloads.FIGURES},
        "workloads_cache_always": {figure: {runtime: summary(cached[runtime][figure]) for runtime in report.RUNTIMES}
                                   for figure in workloads.FIGURES},
        "exec_cache_programs": {runtime: summary(execs_programs[runtime]) for runtime in report.RUNTIMES},
        "workloads_cache_programs": {figure: {runtime: summary(programs[runtime][figure]) for runtime in report.RUNTIMES}
                                     for figure in workloads.FIGURES},
    }


def _seconds(figures: dict) -> str:
    return f"{figures['median']:.2f} s ({figures['min']:.2f}-{figures['max']:.2f})"


def _row(label: str, figures: dict) -> str:
    runc, runcvm = figures["runc"], figures["runcvm"]
    return f"| {label} | {_seconds(runc)} | {_seconds(runcvm)} | {runcvm['median'] / runc['median']:.1f}x |"


def _memory_row(label: str, overhead: dict) -> str:
    parts = ", ".join(f"{helper} {mib:.0f}" for helper, mib in overhead["by_helper"].items())
    # Mapped files are page cache, which the kernel can reclaim, and which every other VM on the
    # host maps too: one VM alone is charged all of it.
    return (f"| {label} | | {overhead['pss_mib']:.0f} ({parts}), of which mapped files, which every VM on the host "
            f"shares, {overhead['mapped_files_mib']:.0f} | |")


def _beyond_vm_row(results: dict) -> str:
    cold, warm = results["memory_beyond_vm"], results["memory_beyond_vm_warm"]
    return (f"| The container's memory at its peak beyond its VM's {results['vm_memory_mib']} MiB, once a process "
            f"in the VM has taken all it could (MiB; RunCVM's limit allows {cold['allowed_mib']:.0f}) | | "
            f"{cold['peak_mib']:.0f}, restored from a template {warm['peak_mib']:.0f} | |")


def table(results: dict) -> str:
    machine_kind = results["machine"]
    rows = ["| | runc | RunCVM | RunCVM / runc |", "|---|---|---|---|",
            _row(f"`docker run --rm {results['image']} true`", results["cold_start"]),
            _row("The same with `RUNCVM_WARM_START=1`, the VM restored from a template", results["warm_start"]),
            _row(f"{results['at_once']} of them at once, until the last ends", results["cold_start_at_once"]),
            _row("`docker exec CONTAINER true`", results["exec"]),
            _row(f"The same into a `{results['workload_image']}` container with `RUNCVM_VIRTIOFSD_CACHE=programs`",
                 results["exec_cache_programs"])]
    rows += [_memory_row("RunCVM's helpers beside one idle VM (PSS without guest RAM, MiB)", results["vm_overhead"]),
             _memory_row("The same, the VM restored from a template", results["vm_overhead_warm"]),
             _beyond_vm_row(results)]
    work = results["workloads"]
    rows += [_row(f"{label}, in a running `{results['workload_image']}` container", work[figure])
             for figure, label in WORKLOAD_ROWS]
    rows += [_row(f"The same with `RUNCVM_VIRTIOFSD_CACHE={mode}`", results[f"workloads_cache_{mode}"]["spawn"])
             for mode in ("always", "programs")]
    phases, warm_phases = (", ".join(f"{name} {seconds:.2f}" for name, seconds in results[key].items())
                           for key in ("cold_start_phases", "warm_start_phases"))
    runs = results["cold_start"]["runc"]["runs"]
    root_of_tmpfs = work["read_tmpfs"]["runcvm"]["median"] / work["read_root"]["runcvm"]["median"]
    never_up = results["never_up_at_once"]["runcvm"]
    stuck = (f" Of the {results['at_once'] * runs} VMs started {results['at_once']} at once, {never_up} never came "
             f"up and {'was' if never_up == 1 else 'were'} removed after {concurrent_start.RUN_BOUND} s; their "
             "rounds are left out." if never_up else "")
    return "\n".join([
        f"Medians (min-max) of {runs} runs of each measure ({results['exec']['runc']['runs']} of the exec) per "
        f"runtime, interleaved, on {machine_kind['cpus']} CPUs and {machine_kind['memory_gib']} GiB, host kernel "
        f"{machine_kind['kernel']}. RunCVM's cold start, by phase (s): {phases}; its warm start: {warm_phases}. "
        f"In the VM, the root filesystem "
        f"(virtiofs) reads at {root_of_tmpfs:.2f}x the rate of tmpfs.{stuck}", "", *rows])


def write_readme_table(readme: pathlib.Path, text: str) -> None:
    start, end = MARKERS
    content = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(content):
        raise SystemExit(f"{readme} has no {start} ... {end} markers")
    readme.write_text(pattern.sub(lambda _match: f"{start}\n{text}\n{end}", content), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="runcvm-test/debian:bookworm")
    parser.add_argument("--workload-image", default=workloads.IMAGE)
    parser.add_argument("--json", type=pathlib.Path, default=pathlib.Path(__file__).parent / "results.json")
    parser.add_argument("--readme", type=pathlib.Path)
    parser.add_argument("--from-json", type=pathlib.Path)
    args = parser.parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        results = measure(args.runs, args.image, args.workload_image)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    text = table(results)
    print(text)
    if args.readme:
        write_readme_table(args.readme, text)


if __name__ == "__main__":
    main()
