"""Boot of N VMs at once: N `docker run --rm IMAGE true` started together, under runc and under
RunCVM, in one run; the time until the last one ends.

    .venv/bin/python bench/concurrent_start.py [--runs N] [--at-once N] [--image IMAGE]

Absolute times on shared machines are noisy; compare the ratio, and with the cold start of one.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import subprocess
import time
import uuid

from report import RUNTIMES, print_medians

# A container still running after this is taken for a VM that never came up.
RUN_BOUND = 300


def all_at_once(runtime: str, image: str, count: int) -> tuple[float, int]:
    """Seconds until the last of `count` containers started together ended, and how many had not
    ended after RUN_BOUND: those are removed, and counted as never up."""
    def ended(number: int) -> bool:
        name = f"bench-{runtime}-{uuid.uuid4().hex[:6]}-{number}"
        try:
            subprocess.run(["docker", "run", "--rm", f"--runtime={runtime}", "--name", name, image, "true"],
                           capture_output=True, check=True, timeout=RUN_BOUND)
        except subprocess.TimeoutExpired:
            subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)
            return False
        return True

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        never_up = list(pool.map(ended, range(count))).count(False)
    return time.monotonic() - started, never_up


def measure(runs: int, image: str, count: int) -> dict:
    """{"runc": [seconds...], "runcvm": [seconds...], "never_up": {runtime: containers}}: a round
    with a container that never came up gives no time."""
    walls: dict[str, list[float]] = {runtime: [] for runtime in RUNTIMES}
    never_up = dict.fromkeys(RUNTIMES, 0)
    for _run in range(runs):
        for runtime in RUNTIMES:  # interleaved, so both see the same machine load
            seconds, stuck = all_at_once(runtime, image, count)
            never_up[runtime] += stuck
            if not stuck:
                walls[runtime].append(seconds)
    return {**walls, "never_up": never_up}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--at-once", type=int, default=4)
    parser.add_argument("--image", default="runcvm-test/debian:bookworm")
    args = parser.parse_args()
    walls = measure(args.runs, args.image, args.at_once)
    print_medians(f"{args.at_once} x docker run --rm {args.image} true at once", args.runs, walls)
    print(f"  never up after {RUN_BOUND} s: {walls['never_up']}")


if __name__ == "__main__":
    main()
