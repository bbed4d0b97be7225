"""Where a run's time went: RUNCVM_TIMING=1 prints it when the run ends, and bench/ reads it."""

from __future__ import annotations

import time

PHASES = ("runtime", "launcher", "firmware", "kernel", "init", "workload", "poweroff")


class Timing:
    def __init__(self, rewrite_seconds: float) -> None:
        self.rewrite_seconds = rewrite_seconds
        self.marks = {"launcher": time.monotonic()}
        self.guest: dict[str, float] = {}

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def line(self) -> str:
        marks, guest = self.marks, self.guest
        boot = marks["ready"] - marks["qemu"]
        phases = {
            "runtime": self.rewrite_seconds,
            "launcher": marks["qemu"] - marks["launcher"],
            "firmware": boot - guest.get("kernel_seconds", 0.0) - guest.get("setup_seconds", 0.0),
            "kernel": guest.get("kernel_seconds", 0.0),
            "init": guest.get("setup_seconds", 0.0),
            "workload": marks["exit"] - marks["ready"],
            "poweroff": time.monotonic() - marks["exit"],
        }
        return " ".join(f"{name}={phases[name]:.3f}" for name in PHASES)
