"""Asking systemd in a container (runc's or a VM) how far it has come."""

from __future__ import annotations

from harness.resources import DockerResources


def system_state(docker: DockerResources, name: str, bound: float) -> bytes | None:
    """`systemctl is-system-running --wait` once systemd can say, or None while it cannot: until
    systemd runs, systemctl says "offline"; until it has made its bus socket, nothing."""
    state = docker.cli("exec", name, "systemctl", "is-system-running", "--wait", check=False,
                       timeout=bound).stdout.strip()
    return state if state not in (b"", b"offline") else None
