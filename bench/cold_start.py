"""Cold start: `docker run --rm IMAGE true` under runc and under RunCVM, in one run; and RunCVM's
warm start (RUNCVM_WARM_START=1), the VM restored from a template.

    .venv/bin/python bench/cold_start.py [--runs N] [--image IMAGE]

Prints the median wall time of each runtime, their ratio, and where RunCVM's time goes (from
RUNCVM_TIMING=1): the runtime's config.json rewrite, the launcher until QEMU starts, firmware,
kernel and initramfs, guest init until the workload starts, the workload, and power-off; for a
warm start, the restore instead of the firmware and the kernel. Absolute times on shared
machines are noisy; compare the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from report import RUNTIMES, print_medians

PHASES = ("runtime", "launcher", "firmware", "kernel", "init", "workload", "poweroff")
WARM_PHASES = ("runtime", "launcher", "restore", "init", "workload", "poweroff")
WARM_START = ("-e", "RUNCVM_WARM_START=1")


def timed_run(runtime: str, image: str, options: tuple[str, ...] = ()) -> tuple[float, dict[str, float]]:
    started = time.monotonic()
    completed = subprocess.run(["docker", "run", "--rm", f"--runtime={runtime}", "-e", "RUNCVM_TIMING=1", *options,
                                image, "true"], capture_output=True, text=True, check=True)
    elapsed = time.monotonic() - started
    phases = {}
    for line in completed.stderr.splitlines():
        if line.startswith("runcvm: timing: "):
            phases = {name: float(value) for name, value in
                      (field.split("=") for field in line.removeprefix("runcvm: timing: ").split())}
    return elapsed, phases


def measure(runs: int, image: str, warm: bool = False) -> dict:
    """{"runc": [seconds...], "runcvm": [seconds...], "phases": {phase: [seconds...]}}; `warm`:
    RunCVM's VMs restored from a template, which the first, unmeasured run makes."""
    options = WARM_START if warm else ()
    walls: dict[str, list[float]] = {runtime: [] for runtime in RUNTIMES}
    phases: dict[str, list[float]] = {name: [] for name in (WARM_PHASES if warm else PHASES)}
    timed_run("runcvm", image, options)  # warm the page cache, as a second container would find it
    for _run in range(runs):
        for runtime in RUNTIMES:  # interleaved, so both see the same machine load
            elapsed, timing = timed_run(runtime, image, options if runtime == "runcvm" else ())
            walls[runtime].append(elapsed)
            for name, seconds in timing.items():
                phases[name].append(seconds)
    return {**walls, "phases": {name: values for name, values in phases.items() if values}}


def print_phases(measured: dict) -> None:
    print("  runcvm phases (median s):")
    for name, values in measured["phases"].items():
        print(f"    {name:9} {statistics.median(values):7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default="runcvm-test/debian:bookworm")
    args = parser.parse_args()
    measured = measure(args.runs, args.image)
    print_medians(f"cold start of {args.image}", args.runs, measured)
    print_phases(measured)
    warm = measure(args.runs, args.image, warm=True)
    print_medians(f"warm start of {args.image} (RUNCVM_WARM_START=1)", args.runs, warm)
    print_phases(warm)


if __name__ == "__main__":
    main()
