"""`docker exec CONTAINER true` latency under runc and under RunCVM, in one run.

    .venv/bin/python bench/exec_latency.py [--runs N] [--image IMAGE]

Starts one container per runtime, then times execs into each, interleaved. Absolute times on
shared machines are noisy; compare the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import uuid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--image", default="runcvm-test/debian:bookworm")
    args = parser.parse_args()
    names = {runtime: f"bench-exec-{runtime}-{uuid.uuid4().hex[:6]}" for runtime in ("runc", "runcvm")}
    try:
        for runtime, name in names.items():
            subprocess.run(["docker", "run", "-d", f"--runtime={runtime}", "--name", name, args.image,
                            "sleep", "100000"], check=True, capture_output=True)
        deadline = time.monotonic() + 120
        while subprocess.run(["docker", "exec", names["runcvm"], "true"], capture_output=True,
                             check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the RunCVM container never took an exec")
            time.sleep(1)
        times: dict[str, list[float]] = {runtime: [] for runtime in names}
        for _run in range(args.runs):
            for runtime, name in names.items():
                started = time.monotonic()
                subprocess.run(["docker", "exec", name, "true"], check=True, capture_output=True)
                times[runtime].append(time.monotonic() - started)
    finally:
        subprocess.run(["docker", "rm", "-f", *names.values()], capture_output=True, check=False)
    runc, runcvm = (statistics.median(times[runtime]) for runtime in ("runc", "runcvm"))
    print(f"docker exec CONTAINER true, median of {args.runs} runs each")
    print(f"  runc    {runc:7.3f} s")
    print(f"  runcvm  {runcvm:7.3f} s   ({runcvm / runc:.1f} x runc)")


if __name__ == "__main__":
    main()
