"""Where a run's time went: RUNCVM_TIMING=1 prints it when the run ends, and bench/ reads it."""

from __future__ import annotations

import time


class Timing:
    def __init__(self, rewrite_seconds: float) -> None:
        self.rewrite_seconds = rewrite_seconds
        self.marks = {"launcher": time.monotonic()}
        self.guest: dict[str, float] = {}
        self.boot = "cold"  # or "restored" from a warm start's template (RUNCVM_WARM_START)

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def line(self) -> str:
        """The phases' seconds: a VM restored from a template has a restore phase instead of the
        firmware's and the kernel's; one that made its template first, a template phase."""
        marks, guest = self.marks, self.guest
        boot = marks["ready"] - marks["qemu"]
        made = marks["template_made"] - marks["template"] if "template_made" in marks else None
        phases = {
            "runtime": self.rewrite_seconds,
            "launcher": marks["qemu"] - marks["launcher"] - (made or 0.0),
            "template": made,
            "restore" if self.boot == "restored" else "firmware":
                boot - guest.get("kernel_seconds", 0.0) - guest.get("setup_seconds", 0.0),
            "kernel": guest.get("kernel_seconds", 0.0) if self.boot == "cold" else None,
            "init": guest.get("setup_seconds", 0.0),
            "workload": marks["exit"] - marks["ready"],
            "poweroff": time.monotonic() - marks["exit"],
        }
        return " ".join(f"{name}={seconds:.3f}" for name, seconds in phases.items() if seconds is not None)
