"""What each benchmark script prints: the median of each runtime's runs and their ratio."""

from __future__ import annotations

import statistics

RUNTIMES = ("runc", "runcvm")


def print_medians(title: str, runs: int, seconds: dict[str, list[float]]) -> None:
    runc, runcvm = (statistics.median(seconds[runtime]) for runtime in RUNTIMES)
    print(f"{title}, median of {runs} runs each")
    print(f"  runc    {runc:7.3f} s")
    print(f"  runcvm  {runcvm:7.3f} s   ({runcvm / runc:.1f} x runc)")
