"""The RUNCVM_* options a user sets with `docker run -e`, read and checked in one place.

The wrapper checks them when the container is created, so a bad value fails `docker run` with
a message naming the option; the launcher reads them again to act on them. None of them reaches
the workload's environment.
"""

from __future__ import annotations

import dataclasses
import typing as t

PREFIX = "RUNCVM_"
ACCELERATORS = ("auto", "kvm", "tcg")
VIRTIOFSD_CACHES = ("auto", "always", "never")
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
# Set by RunCVM itself between the wrapper and the launcher.
INTERNAL = ("RUNCVM_HANDOFF",)
KNOWN = ("RUNCVM_ACCEL", "RUNCVM_KERNEL", "RUNCVM_KERNEL_APPEND", "RUNCVM_KERNEL_DEBUG", "RUNCVM_TIMING",
         "RUNCVM_VIRTIOFSD_CACHE")


class OptionError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Options:
    accel: str = "auto"
    kernel: str | None = None
    kernel_append: str = ""
    kernel_debug: bool = False
    timing: bool = False
    virtiofsd_cache: str = "auto"


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionError(f"{name}={value} is not one of {', '.join(choices)}")
    return value


def _flag(name: str, value: str) -> bool:
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise OptionError(f"{name}={value} is not a boolean: use 1 or 0")


def parse(env: t.Mapping[str, str]) -> Options:
    unknown = sorted(name for name in env if name.startswith(PREFIX) and name not in KNOWN + INTERNAL)
    if unknown:
        raise OptionError(f"{unknown[0]} is not a RunCVM option; the options are {', '.join(KNOWN)}")
    return Options(
        accel=_choice("RUNCVM_ACCEL", env.get("RUNCVM_ACCEL", "auto") or "auto", ACCELERATORS),
        kernel=env.get("RUNCVM_KERNEL") or None,
        kernel_append=env.get("RUNCVM_KERNEL_APPEND", ""),
        kernel_debug=_flag("RUNCVM_KERNEL_DEBUG", env.get("RUNCVM_KERNEL_DEBUG", "")),
        timing=_flag("RUNCVM_TIMING", env.get("RUNCVM_TIMING", "")),
        virtiofsd_cache=_choice("RUNCVM_VIRTIOFSD_CACHE", env.get("RUNCVM_VIRTIOFSD_CACHE", "auto") or "auto",
                                VIRTIOFSD_CACHES),
    )


def workload_env(env: t.Iterable[str]) -> list[str]:
    """The container's environment without RunCVM's variables, in its original order."""
    return [entry for entry in env if not entry.startswith(PREFIX)]


def env_dict(env: t.Iterable[str]) -> dict[str, str]:
    return dict(entry.partition("=")[::2] for entry in env)
