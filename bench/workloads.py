"""Work inside a running container, under runc and under RunCVM, in one run: reading a file on
the root filesystem (virtiofs in the VM) and on /dev/shm (tmpfs, in the VM's own memory),
metadata (create, stat, unlink of 2,000 files) on both, a CPU-bound Python loop, and starting
20 processes one after another (each one's program and libraries read from the root).

    .venv/bin/python bench/workloads.py [--runs N] [--image IMAGE]

Each figure is timed by Python in the container, so the exec that starts it is left out. The
image needs python3 (the factory's runcvm-test/python3). Absolute times on shared machines are
noisy; compare the ratios, and, in the VM, the root against tmpfs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from exec_latency import idle_containers
from report import RUNTIMES

IMAGE = "runcvm-test/python3"
FIGURES = ("read_root", "read_tmpfs", "metadata_root", "metadata_tmpfs", "cpu", "spawn")
# Runs in the container; prints one JSON object of seconds.
SCRIPT = """
import json, os, shutil, time
SIZE_MIB, FILES, CHUNK, PROCESSES = 32, 2000, 1 << 20, 20

def read_seconds(directory):
    path = os.path.join(directory, "runcvm-bench.bin")
    with open(path, "wb") as out:
        block = os.urandom(CHUNK)
        for _ in range(SIZE_MIB):
            out.write(block)
    started = time.monotonic()
    with open(path, "rb") as source:  # opened anew, as a reader would
        while source.read(CHUNK):
            pass
    elapsed = time.monotonic() - started
    os.unlink(path)
    return elapsed

def metadata(directory):
    work = os.path.join(directory, "runcvm-bench.d")
    os.mkdir(work)
    started = time.monotonic()
    names = [os.path.join(work, str(number)) for number in range(FILES)]
    for name in names:
        open(name, "w").close()
    for name in names:
        os.stat(name)
    for name in names:
        os.unlink(name)
    elapsed = time.monotonic() - started
    shutil.rmtree(work)
    return elapsed

def cpu():
    started = time.monotonic()
    sum(number * number for number in range(1_000_000))
    return time.monotonic() - started

def spawn():
    started = time.monotonic()
    for _ in range(PROCESSES):
        os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0)
    return time.monotonic() - started

print(json.dumps({"read_root": read_seconds("/root"), "read_tmpfs": read_seconds("/dev/shm"),
                  "metadata_root": metadata("/root"), "metadata_tmpfs": metadata("/dev/shm"), "cpu": cpu(),
                  "spawn": spawn()}))
"""


def measure(runs: int, names: dict[str, str]) -> dict[str, dict[str, list[float]]]:
    """runtime -> figure -> one value per run."""
    figures: dict[str, dict[str, list[float]]] = {runtime: {name: [] for name in FIGURES} for runtime in names}
    for _run in range(runs):
        for runtime, name in names.items():  # interleaved, so both see the same machine load
            printed = subprocess.run(["docker", "exec", name, "python3", "-c", SCRIPT], capture_output=True,
                                     text=True, check=True, timeout=600).stdout
            for figure, value in json.loads(printed).items():
                figures[runtime][figure].append(value)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default=IMAGE)
    args = parser.parse_args()
    with idle_containers(args.image) as names:
        figures = measure(args.runs, names)
    print(f"in a running {args.image} container, median of {args.runs} runs each")
    for figure in FIGURES:
        runc, runcvm = (statistics.median(figures[runtime][figure]) for runtime in RUNTIMES)
        print(f"  {figure:15} runc {runc:9.3f}  runcvm {runcvm:9.3f}  ({runcvm / runc:.2f} x runc)")


if __name__ == "__main__":
    main()
