"""Boot of N VMs at once: N `docker run --rm IMAGE true` started together, under runc and under
RunCVM, in one run; the time until the last one ends.

    .venv/bin/python bench/concurrent_start.py [--runs N] [--at-once N] [--image IMAGE]

Absolute times on shared machines are noisy; compare the ratio, and with the cold start of one.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import subprocess
import time

from cold_start import RUNTIMES


def all_at_once(runtime: str, image: str, count: int) -> float:
    def one(_number: int) -> None:
        subprocess.run(["docker", "run", "--rm", f"--runtime={runtime}", image, "true"], capture_output=True,
                       check=True, timeout=900)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        list(pool.map(one, range(count)))
    return time.monotonic() - started


def measure(runs: int, image: str, count: int) -> dict[str, list[float]]:
    walls: dict[str, list[float]] = {runtime: [] for runtime in RUNTIMES}
    for _run in range(runs):
        for runtime in RUNTIMES:  # interleaved, so both see the same machine load
            walls[runtime].append(all_at_once(runtime, image, count))
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--at-once", type=int, default=4)
    parser.add_argument("--image", default="runcvm-test/debian:bookworm")
    args = parser.parse_args()
    walls = measure(args.runs, args.image, args.at_once)
    runc, runcvm = (statistics.median(walls[runtime]) for runtime in RUNTIMES)
    print(f"{args.at_once} x docker run --rm {args.image} true at once, median of {args.runs} runs each")
    print(f"  runc    {runc:7.3f} s")
    print(f"  runcvm  {runcvm:7.3f} s   ({runcvm / runc:.1f} x runc)")


if __name__ == "__main__":
    main()
