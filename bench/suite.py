"""The benchmark suite: RunCVM against runc on this machine, in one run.

    .venv/bin/python bench/suite.py [--runs N] [--image IMAGE] [--json FILE] [--readme README.md]
    .venv/bin/python bench/suite.py --from-json bench/results.json --readme README.md

Measures the cold start (`docker run --rm IMAGE true`, with RunCVM's phases), `docker exec
CONTAINER true` into an idle container, and the memory of RunCVM's helpers (launcher, QEMU,
virtiofsd) beside one idle VM: proportional set size without the guest's RAM, which QEMU and
virtiofsd share as a memfd. Runs of runc and RunCVM are interleaved, so both see the same load.
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

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import cold_start  # noqa: E402  pylint: disable=wrong-import-position
import exec_latency  # noqa: E402  pylint: disable=wrong-import-position

MARKERS = ("<!-- bench-table: made by bench/suite.py -->", "<!-- /bench-table -->")
MEMORY_FIELDS = ("Rss", "Pss", "Pss_Shmem", "Pss_File")


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in os.listdir(f"/proc/{current}/task"):
            with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as handle:
                pending.extend(int(child) for child in handle.read().split())
    return found


def helper_memory(container: str) -> dict[str, dict[str, int]]:
    """KiB by helper: RSS, PSS, PSS without the guest's RAM (shared memory), and the part of it
    that maps files (the payload's binaries, the kernel image), from smaps_rollup."""
    pid = int(subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True,
                             text=True, check=True).stdout)
    helpers: dict[str, dict[str, int]] = {}
    for member in process_tree(pid):
        with open(f"/proc/{member}/comm", encoding="utf-8") as handle:
            name = handle.read().strip()
        with open(f"/proc/{member}/smaps_rollup", encoding="ascii") as handle:
            fields = {line.split(":")[0]: int(line.split()[1]) for line in handle if line.split(":")[0] in MEMORY_FIELDS}
        fields["Pss_without_guest_ram"] = fields["Pss"] - fields.get("Pss_Shmem", 0)
        helpers[f"{name} ({member})"] = fields
    return helpers


def machine() -> dict:
    kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "kvm_device": kvm,
            "memory_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30)}


def measure(runs: int, image: str) -> dict:
    started = cold_start.measure(runs, image)
    with exec_latency.idle_containers(image) as names:
        execs = exec_latency.measure(runs * 4, names)
        memory = helper_memory(names["runcvm"])
    return {
        "image": image, "machine": machine(),
        "cold_start": {runtime: summary(started[runtime]) for runtime in cold_start.RUNTIMES},
        "cold_start_phases": {name: statistics.median(values) for name, values in started["phases"].items()},
        "exec": {runtime: summary(execs[runtime]) for runtime in exec_latency.RUNTIMES},
        "helper_memory_kib": memory,
    }


def _seconds(figures: dict) -> str:
    return f"{figures['median']:.2f} s ({figures['min']:.2f}-{figures['max']:.2f})"


def table(results: dict) -> str:
    machine_kind = results["machine"]
    rows = ["| | runc | RunCVM | RunCVM / runc |", "|---|---|---|---|"]
    for label, key in ((f"`docker run --rm {results['image']} true`", "cold_start"),
                       ("`docker exec CONTAINER true`", "exec")):
        runc, runcvm = results[key]["runc"], results[key]["runcvm"]
        rows.append(f"| {label} | {_seconds(runc)} | {_seconds(runcvm)} | {runcvm['median'] / runc['median']:.1f}x |")
    helpers = results["helper_memory_kib"]
    total = sum(fields["Pss_without_guest_ram"] for fields in helpers.values()) / 1024
    parts = ", ".join(f"{name.split(' ')[0]} {fields['Pss_without_guest_ram'] / 1024:.0f}"
                      for name, fields in helpers.items())
    # Mapped files are page cache, which the kernel can reclaim, and which every other VM on the
    # host maps too: one VM alone is charged all of it.
    files = sum(fields.get("Pss_File", 0) for fields in helpers.values()) / 1024
    rows.append(f"| RunCVM's helpers beside one idle VM (PSS without guest RAM, MiB) | | {total:.0f} ({parts}), "
                f"of which mapped files, which every VM on the host shares, {files:.0f} | |")
    phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in results["cold_start_phases"].items())
    runs = results["cold_start"]["runc"]["runs"]
    return "\n".join([
        f"Medians (min-max) of {runs} cold starts and {results['exec']['runc']['runs']} execs per runtime, "
        f"interleaved, on {machine_kind['cpus']} CPUs and {machine_kind['memory_gib']} GiB, host kernel "
        f"{machine_kind['kernel']}. RunCVM's cold start, by phase (s): {phases}.", "", *rows])


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
    parser.add_argument("--json", type=pathlib.Path, default=pathlib.Path(__file__).parent / "results.json")
    parser.add_argument("--readme", type=pathlib.Path)
    parser.add_argument("--from-json", type=pathlib.Path)
    args = parser.parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        results = measure(args.runs, args.image)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    text = table(results)
    print(text)
    if args.readme:
        write_readme_table(args.readme, text)


if __name__ == "__main__":
    main()
