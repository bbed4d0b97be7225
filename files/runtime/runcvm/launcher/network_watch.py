"""The network follower's idle state: what an idle VM's follower runs for the VM's whole life.

Once the boot network is handed over, the follower starts afresh here (launcher/follower.py,
`hand_over_and_follow`). It waits, on the standard library and runcvm.netlink alone, for the one
thing that gives it work: Docker putting an interface into the container (`docker network
connect`) or taking a boot one away (`disconnect`). Then it runs the follower proper, which acts
and keeps following. Keep this module's imports to those: they are the idle follower's memory.
"""

from __future__ import annotations

import errno
import json
import os
import select
import typing as t

from runcvm import netlink
from runcvm.launcher import say

NAME = "runcvm-network"  # the follower's name, as ps and docker top show it
GAVE_UP = "the network follower failed; docker network connect and disconnect no longer reach the VM"


def name_this_process() -> None:
    with open("/proc/self/comm", "w", encoding="ascii") as comm:
        comm.write(NAME)


def is_unclaimed_interface(link: netlink.LinkInfo) -> bool:
    """Docker's end of a veth, up, in no bridge: an interface not handed over to the VM yet (the
    follower's own bridges and taps are no veths; an interface handed over is in a bridge)."""
    return link.kind == "veth" and link.master is None and link.up


def has_work(links: list[netlink.LinkInfo], boot_interfaces: set[str]) -> bool:
    """Whether the follower proper has something to do: an interface to take, or a boot one gone."""
    return any(is_unclaimed_interface(link) for link in links) or not boot_interfaces <= {link.name for link in links}


def wait_for_work(boot_interfaces: set[str]) -> None:
    """Return once this network namespace has work for the follower proper; look again at each
    change the kernel tells of its links (they are few while nobody connects or disconnects)."""
    with netlink.Netlink() as requests, netlink.events(netlink.RTMGRP_LINK) as events:
        while not has_work(requests.links(), boot_interfaces):
            select.select([events], [], [])
            try:
                netlink.changes(events)
            except OSError as error:
                if error.errno != errno.ENOBUFS:  # news lost: the next look is afresh anyway
                    raise


def follow(reports: int, boot: str) -> t.NoReturn:
    """The follower's new start: wait, then follow the container's network with the follower
    proper. `boot`: the network handed over (plan.dumps); `reports`: where added networks go."""
    try:
        name_this_process()
        wait_for_work({interface["name"] for interface in json.loads(boot)["interfaces"]})
        from runcvm.launcher import follower  # pylint: disable=import-outside-toplevel  # the module's docstring
        follower.follow(reports, boot)
    except Exception as error:  # pylint: disable=broad-exception-caught
        say(f"{GAVE_UP}: {error!r}")
    finally:
        os._exit(1)
