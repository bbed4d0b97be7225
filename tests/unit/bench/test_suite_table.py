"""The README's performance table is the one bench/suite.py makes from bench/results.json."""

from __future__ import annotations

import importlib.util
import json
import pathlib

PROJECT = pathlib.Path(__file__).parents[3]


def load_suite():
    spec = importlib.util.spec_from_file_location("bench_suite", PROJECT / "bench" / "suite.py")
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    return suite


def test_the_readme_table_is_made_from_the_measured_figures():
    suite = load_suite()
    results = json.loads((PROJECT / "bench" / "results.json").read_text(encoding="utf-8"))
    start, end = suite.MARKERS
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert f"{start}\n{suite.table(results)}\n{end}" in readme


def test_the_table_gives_ratios_against_runc(tmp_path):
    suite = load_suite()
    figures = {"median": 1.0, "min": 0.9, "max": 1.2, "runs": 5}
    workloads = {figure: {"runc": figures, "runcvm": {**figures, "median": 2.0}} for figure in suite.workloads.FIGURES}
    workloads["read_root"]["runcvm"] = {**figures, "median": 8.0}
    results = {"image": "img", "workload_image": "py", "machine": {"cpus": 2, "memory_gib": 4, "kernel": "6.1"},
               "cold_start": {"runc": figures, "runcvm": {**figures, "median": 20.0}},
               "cold_start_phases": {"kernel": 7.5},
               "warm_start": {"runc": figures, "runcvm": {**figures, "median": 4.0}}, "warm_start_phases": {"restore": 0.5},
               "at_once": 4, "cold_start_at_once": {"runc": figures, "runcvm": {**figures, "median": 40.0}},
               "never_up_at_once": {"runc": 0, "runcvm": 1},
               "exec": {"runc": figures, "runcvm": {**figures, "median": 3.0}},
               "vm_overhead": {"pss_mib": 100.0, "mapped_files_mib": 50.0, "by_helper": {"qemu-system-x86": 100.0}},
               "vm_overhead_warm": {"pss_mib": 60.0, "mapped_files_mib": 10.0, "by_helper": {"qemu-system-x86": 60.0}},
               "vm_memory_mib": 512, "memory_beyond_vm": {"peak_mib": 120.4, "allowed_mib": 256.0},
               "memory_beyond_vm_warm": {"peak_mib": 80.0, "allowed_mib": 256.0},
               "workloads": workloads,
               "workloads_cache_always": {**workloads, "spawn": {"runc": figures, "runcvm": {**figures, "median": 1.5}}},
               "exec_cache_programs": {"runc": figures, "runcvm": {**figures, "median": 2.5}},
               "workloads_cache_programs": {**workloads, "spawn": {"runc": figures, "runcvm": {**figures, "median": 1.25}}}}
    text = suite.table(results)
    assert "| `docker run --rm img true` | 1.00 s (0.90-1.20) | 20.00 s (0.90-1.20) | 20.0x |" in text
    assert "| The same with `RUNCVM_WARM_START=1`, the VM restored from a template | 1.00 s (0.90-1.20) | 4.00 s" in text
    assert "cold start, by phase (s): kernel 7.50; its warm start: restore 0.50." in text
    assert "| 4 of them at once, until the last ends |" in text and "| 40.0x |" in text
    assert "| `docker exec CONTAINER true` |" in text and "| 3.0x |" in text
    assert "| Reading a 32 MiB file on the root filesystem, in a running `py` container |" in text and "| 8.0x |" in text
    assert "the root filesystem (virtiofs) reads at 0.25x the rate of tmpfs" in text
    assert "| Starting 20 processes (`/bin/true`) one after another, in a running `py` container |" in text
    assert "| The same with `RUNCVM_VIRTIOFSD_CACHE=always` | 1.00 s (0.90-1.20) | 1.50 s (0.90-1.20) | 1.5x |" in text
    assert "| The same with `RUNCVM_VIRTIOFSD_CACHE=programs` | 1.00 s (0.90-1.20) | 1.25 s (0.90-1.20) | 1.2x |" in text
    assert ("| The same into a `py` container with `RUNCVM_VIRTIOFSD_CACHE=programs` | 1.00 s (0.90-1.20) | 2.50 s "
            "(0.90-1.20) | 2.5x |") in text
    assert "Of the 20 VMs started 4 at once, 1 never came up and was removed after 300 s" in text
    assert "| 100 (qemu-system-x86 100), of which mapped files, which every VM on the host shares, 50 |" in text
    assert ("| The same, the VM restored from a template | | 60 (qemu-system-x86 60), of which mapped files, which "
            "every VM on the host shares, 10 | |") in text
    assert ("| The container's memory at its peak beyond its VM's 512 MiB, once a process in the VM has taken all it "
            "could (MiB; RunCVM's limit allows 256) | | 120, restored from a template 80 | |") in text
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{suite.MARKERS[0]}\nold\n{suite.MARKERS[1]}\nafter\n")
    suite.write_readme_table(readme, text)
    assert readme.read_text() == f"before\n{suite.MARKERS[0]}\n{text}\n{suite.MARKERS[1]}\nafter\n"
