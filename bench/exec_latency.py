"""`docker exec CONTAINER true` latency under runc and under RunCVM, in one run.

    .venv/bin/python bench/exec_latency.py [--runs N] [--image IMAGE]

Starts one container per runtime, then times execs into each, interleaved. Absolute times on
shared machines are noisy; compare the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import time
import typing as t
import uuid

from report import RUNTIMES, print_medians


@contextlib.contextmanager
def idle_containers(image: str, runcvm_options: tuple[str, ...] = ()) -> t.Iterator[dict[str, str]]:
    """One idle container per runtime, the VM up (started with `runcvm_options`): runtime ->
    container name; removed afterwards."""
    names = {runtime: f"bench-{runtime}-{uuid.uuid4().hex[:6]}" for runtime in RUNTIMES}
    try:
        for runtime, name in names.items():
            options = runcvm_options if runtime == "runcvm" else ()
            subprocess.run(["docker", "run", "-d", f"--runtime={runtime}", "--name", name, *options, image,
                            "sleep", "100000"], check=True, capture_output=True)
        deadline = time.monotonic() + 120
        while subprocess.run(["docker", "exec", names["runcvm"], "true"], capture_output=True,
                             check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the RunCVM container never took an exec")
            time.sleep(1)
        yield names
    finally:
        subprocess.run(["docker", "rm", "-f", *names.values()], capture_output=True, check=False)


def measure(runs: int, names: dict[str, str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {runtime: [] for runtime in names}
    for _run in range(runs):
        for runtime, name in names.items():  # interleaved, so both see the same machine load
            started = time.monotonic()
            subprocess.run(["docker", "exec", name, "true"], check=True, capture_output=True)
            times[runtime].append(time.monotonic() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--image", default="runcvm-test/debian:bookworm")
    args = parser.parse_args()
    with idle_containers(args.image) as names:
        times = measure(args.runs, names)
    print_medians("docker exec CONTAINER true", args.runs, times)


if __name__ == "__main__":
    main()
