"""Docker's embedded DNS answers on the container's loopback (127.0.0.11), which the VM cannot
reach. The launcher answers DNS on an address of the bridge instead and forwards every query,
over UDP and TCP, to the resolvers of the container's resolv.conf. A query that fails is
dropped, as a lost UDP packet would be; the proxy itself goes on for the VM's lifetime."""

from __future__ import annotations

import selectors
import socket
import threading
import time

PORT = 53
UDP_TIMEOUT = 5.0
MAX_UDP = 65535


def nameservers(resolv_conf: str) -> list[str]:
    servers = []
    for line in resolv_conf.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
    return servers


def needs_proxy(resolv_conf: str) -> bool:
    return loopback_nameserver(resolv_conf) is not None


def loopback_nameserver(resolv_conf: str) -> str | None:
    """The first resolver on the container's loopback, which the VM cannot reach."""
    return next((server for server in nameservers(resolv_conf) if server.startswith("127.")), None)


def for_vm(resolv_conf: str, proxy: str) -> str:
    """The resolv.conf the VM gets: loopback resolvers replaced by the proxy, the rest as is."""
    lines, proxied = [], False
    for line in resolv_conf.splitlines(keepends=True):
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and fields[1].startswith("127."):
            if not proxied:
                lines.append(f"nameserver {proxy}\n")
                proxied = True
            continue
        lines.append(line)
    return "".join(lines)


class DnsProxy:
    def __init__(self, listen: str, upstream: str, port: int = PORT):
        self.listen = listen
        self.upstream = upstream
        self.port = port

    def start(self) -> None:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((self.listen, self.port))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((self.listen, self.port))
        tcp.listen(16)
        threading.Thread(target=self._serve_udp, args=(udp,), daemon=True, name="dns-udp").start()
        threading.Thread(target=self._serve_tcp, args=(tcp,), daemon=True, name="dns-tcp").start()

    def _serve_udp(self, listener: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, None)
        pending: dict[socket.socket, tuple[tuple[str, int], float]] = {}
        while True:
            for key, _events in selector.select(timeout=1.0):
                if key.data is None:
                    self._forward_udp(listener, selector, pending)
                    continue
                upstream = key.fileobj
                try:
                    listener.sendto(upstream.recv(MAX_UDP), key.data)
                except OSError:
                    pass  # a lost answer: the resolver asks again, as on a lossy network
                self._forget(selector, pending, upstream)
            now = time.monotonic()
            for upstream in [s for s, waiting in pending.items() if waiting[1] < now]:
                self._forget(selector, pending, upstream)

    def _forward_udp(self, listener: socket.socket, selector: selectors.BaseSelector, pending: dict) -> None:
        upstream = None
        try:
            query, client = listener.recvfrom(MAX_UDP)
            upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            upstream.sendto(query, (self.upstream, self.port))
        except OSError:  # a lost query: the resolver asks again
            if upstream is not None:
                upstream.close()
            return
        selector.register(upstream, selectors.EVENT_READ, client)
        pending[upstream] = (client, time.monotonic() + UDP_TIMEOUT)

    @staticmethod
    def _forget(selector: selectors.BaseSelector, pending: dict, upstream: socket.socket) -> None:
        selector.unregister(upstream)
        pending.pop(upstream, None)
        upstream.close()

    def _serve_tcp(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:  # the client gave up before it was accepted
                continue
            threading.Thread(target=self._relay_tcp, args=(client,), daemon=True).start()

    def _relay_tcp(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((self.upstream, self.port), timeout=UDP_TIMEOUT)
        except OSError:
            client.close()
            return
        with client, upstream:
            selector = selectors.DefaultSelector()
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            try:
                while True:
                    events = selector.select(timeout=30)
                    if not events:
                        return
                    for key, _events in events:
                        data = key.fileobj.recv(MAX_UDP)
                        if not data:
                            return
                        key.data.sendall(data)
            except OSError:
                pass  # either side ended it: both are closed
