# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection; no Ansible imports here.
"""What a container asks for that RunCVM cannot give a VM, and the words for it: the runtime refuses
it at `docker create` (naming docker run's flag), runcvm_container before any host is touched
(naming docker_container's option): one table, so both refuse the same and say the same."""

from __future__ import annotations

import dataclasses
import typing as t

MINIMUM_MEMORY_MIB = 64
# How each side says what to do instead of a refused network mode.
NETWORK_CHOICES_RUN = "use the default bridge network, a user-defined network (--network NAME) or --network=none"
NETWORK_CHOICES_TASK = "use the default bridge, networks: or network_mode: none"
OWN_NAMESPACE = ("is not supported by RunCVM: the VM takes over the addresses and interfaces of the container's "
                 "network namespace, so it needs one of its own")


@dataclasses.dataclass(frozen=True)
class Refusal:
    option: str                          # docker_container's
    refuses: t.Callable[[t.Any], bool]   # given the option's value (memory in bytes)
    reason: str
    instead: tuple[str, str] = ("", "")  # what to do, said to docker run's user and to a task's


REFUSALS = (
    Refusal("network_mode", lambda mode: mode == "host", OWN_NAMESPACE,
            (NETWORK_CHOICES_RUN, NETWORK_CHOICES_TASK)),
    Refusal("network_mode", lambda mode: str(mode).startswith("container:"),
            OWN_NAMESPACE, (NETWORK_CHOICES_RUN, NETWORK_CHOICES_TASK)),
    Refusal("memory", lambda limit: 0 < int(limit) < MINIMUM_MEMORY_MIB * 2**20,
            f"is too small for a VM: it needs at least {MINIMUM_MEMORY_MIB} MiB"),
)


def refusal(option: str, value: t.Any) -> Refusal | None:
    """The entry of REFUSALS that refuses `value` for docker_container's `option`, if any."""
    return next((entry for entry in REFUSALS if entry.option == option and entry.refuses(value)), None)


def _words(entry: Refusal, named: str, instead: str) -> str:
    return f"{named} {entry.reason}" + (f"; {instead}" if instead else "")


def for_docker_run(option: str, value: t.Any, named: str) -> str | None:
    """The runtime's words, `named` as docker run's user knows the flag and value; None if allowed."""
    entry = refusal(option, value)
    return None if entry is None else _words(entry, named, entry.instead[0])


def for_task(option: str, value: t.Any, shown: str) -> str | None:
    """runcvm_container's words, naming docker_container's option with the value as `shown`; None
    if allowed."""
    entry = refusal(option, value)
    return None if entry is None else _words(entry, f"{option} {shown}", entry.instead[1])
