"""Network namespaces as a test sees them: a scratch namespace made for one test, and a snapshot
of a namespace's links, addresses and routes to compare before and after."""

from __future__ import annotations

import contextlib
import socket
import typing as t
import uuid

from pyroute2 import IPRoute, netns

IFF_UP = 0x1
# Documentation addresses (TEST-NET-1): they stay inside the scratch namespace, which has no way out.
SCRATCH_ADDRESS, SCRATCH_PREFIX, SCRATCH_GATEWAY = "192.0.2.10", 24, "192.0.2.1"


def snapshot(namespace: str | None = None) -> dict[str, list]:
    """The links (name, kind, master, MTU, up), addresses and routes of `namespace` (a name under
    /var/run/netns or a path such as /proc/PID/ns/net; None for this process's own)."""
    with IPRoute(**({"netns": namespace} if namespace else {})) as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        links = sorted((names[link["index"]], _kind(link), names.get(link.get_attr("IFLA_MASTER")),
                        link.get_attr("IFLA_MTU"), bool(link["flags"] & IFF_UP)) for link in ipr.get_links())
        addresses = sorted((names.get(a["index"]), f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
                           for family in (socket.AF_INET, socket.AF_INET6) for a in ipr.get_addr(family=family))
        routes = sorted((r.get_attr("RTA_TABLE"), f"{r.get_attr('RTA_DST')}/{r['dst_len']}", r.get_attr("RTA_GATEWAY"),
                         names.get(r.get_attr("RTA_OIF")))
                        for family in (socket.AF_INET, socket.AF_INET6) for r in ipr.get_routes(family=family))
    return {"links": links, "addresses": addresses, "routes": routes}


def _kind(link: t.Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info else None


@contextlib.contextmanager
def scratch_namespace() -> t.Iterator[str]:
    """A network namespace for one test, shaped like a host's: an interface with an address and a
    default route. Yields its name; removed afterwards with all it holds."""
    name = f"runcvm-test-{uuid.uuid4().hex[:8]}"
    netns.create(name)
    try:
        with IPRoute(netns=name) as ipr:
            # A veth pair, as Docker gives a container: the kernel may lack the dummy link kind.
            ipr.link("add", ifname="eth0", kind="veth", peer="peer0")
            for end in ("peer0", "eth0"):
                (index,) = ipr.link_lookup(ifname=end)
                ipr.link("set", index=index, state="up")
            ipr.addr("add", index=index, address=SCRATCH_ADDRESS, prefixlen=SCRATCH_PREFIX)
            ipr.route("add", dst="0.0.0.0/0", gateway=SCRATCH_GATEWAY)
        yield name
    finally:
        netns.remove(name)
