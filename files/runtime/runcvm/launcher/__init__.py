"""The launcher: the container's first process, which runs the container as a VM."""

import sys


def say(message: str) -> None:
    """Tell the user, on the container's stderr: what the launcher and its network follower say."""
    print(f"runcvm: {message}", file=sys.stderr, flush=True)
