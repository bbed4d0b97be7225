"""Docker commands for tests, with every container, network and volume they create labelled
so that it can be removed when the test ends, whether it passed or not."""

from __future__ import annotations

import subprocess
import typing as t

import docker
import docker.errors

TEST_LABEL = "org.runcvm.test"

# Subcommands that create something, and where the label goes: right after them.
_CREATING = (("run",), ("create",), ("container", "run"), ("container", "create"),
             ("network", "create"), ("volume", "create"))


def with_label(args: t.Sequence[str], owner: str) -> list[str]:
    """`args` of a docker CLI call, labelled with `owner` if the call creates something."""
    args = list(args)
    for prefix in _CREATING:
        if tuple(args[:len(prefix)]) == prefix:
            return [*prefix, "--label", f"{TEST_LABEL}={owner}", *args[len(prefix):]]
    return args


class DockerResources:
    """The docker CLI as a test uses it; `remove_all` removes what the test made."""

    def __init__(self, client: docker.DockerClient, owner: str):
        self.client = client
        self.owner = owner

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 180,
            check: bool = True) -> subprocess.CompletedProcess:
        command = ["docker", *with_label(args, self.owner)]
        completed = subprocess.run(command, input=input, capture_output=True, timeout=timeout, check=False)
        if check and completed.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited with {completed.returncode}:\n"
                                 f"{completed.stderr.decode(errors='replace')}")
        return completed

    def published_port(self, name: str, port: str) -> int:
        """The host port that container `name`'s `port` (such as 80/tcp) is published on."""
        return int(self.cli("port", name, port).stdout.decode().split(":")[-1])

    def processes(self, name: str) -> dict[str, int]:
        """The host PIDs of container `name`'s processes, by process name (comm: the launcher's
        network follower is a fork of the launcher, with the same command line)."""
        rows = [line.split() for line in self.cli("top", name, "-eo", "pid,comm").stdout.decode().splitlines()[1:]]
        return {row[1]: int(row[0]) for row in rows}

    def remove_all(self) -> None:
        remove_labelled(self.client, f"{TEST_LABEL}={self.owner}")


def remove_labelled(client: docker.DockerClient, label: str) -> None:
    """Remove containers, then networks, then volumes carrying `label` (a key or key=value)."""
    filters = {"label": label}
    for container in client.containers.list(all=True, filters=filters):
        _ignore_gone(container.remove, force=True, v=True)
    for network in client.networks.list(filters=filters):
        _ignore_gone(network.remove)
    for volume in client.volumes.list(filters=filters):
        _ignore_gone(volume.remove, force=True)


def _ignore_gone(remove: t.Callable[..., None], **kwargs: t.Any) -> None:
    try:
        remove(**kwargs)
    except docker.errors.NotFound:
        pass
