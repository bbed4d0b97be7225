"""`docker exec` sessions: the launcher accepts exec clients on a socket only root in the
container can reach, gives each a session number on the channel to the VM, and passes frames
between them without blocking. The client and the guest credit each other's streams, so a client
that does not read its output holds back its own session only. A client may also be the runtime's
`update`, whose one frame (CPUS) is for the VM itself."""

from __future__ import annotations

import os
import signal
import socket
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout
from runcvm import protocol
from runcvm.relay import FrameChannel, Loop

# Frames an exec client may send; anything else ends its session.
FROM_CLIENT = (protocol.START, protocol.STDIN, protocol.SIGNAL, protocol.RESIZE, protocol.CREDIT)
FINAL = (protocol.EXIT, protocol.ERROR)


class ExecServer:
    def __init__(self, loop: Loop, vm: FrameChannel, path: str = layout.EXEC_SOCKET,
                 before_start: t.Callable[[], None] = lambda: None):
        self.loop = loop
        self.vm = vm
        self.path = path
        self.before_start = before_start  # called before a session's START goes to the VM
        self.clients: dict[int, FrameChannel] = {}
        self.next_session = 1

    def listen(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o077)
        try:
            listener.bind(self.path)
        finally:
            os.umask(previous)
        listener.listen(64)
        listener.setblocking(False)
        self.loop.set_reader(listener.fileno(), lambda: self._accept(listener))

    def _accept(self, listener: socket.socket) -> None:
        try:
            connection, _address = listener.accept()
        except BlockingIOError:
            return
        session = self.next_session
        self.next_session += 1
        # The channel owns the descriptor from now on.
        client = FrameChannel(self.loop, connection.detach(), lambda kind, _number, payload: self._from_client(
            session, kind, payload), lambda: self._client_gone(session))
        self.clients[session] = client
        client.start()

    def _from_client(self, session: int, kind: int, payload: bytes) -> None:
        if session not in self.clients:
            return
        if kind == protocol.CPUS:  # the runtime's `update`: for the VM, not a session
            self.vm.send(kind, 0, payload)
            self._close(session)
            return
        if kind not in FROM_CLIENT:
            self._client_gone(session)
            return
        if kind == protocol.START:
            self.before_start()
        self.vm.send(kind, session, payload)
        self.clients[session].feed(self.vm.writer)

    def _client_gone(self, session: int) -> None:
        """The exec client is gone (killed, or docker exec interrupted): end its process."""
        if self._close(session):
            self.vm.send_json(protocol.SIGNAL, session, {"signal": int(signal.SIGKILL)})

    def to_client(self, kind: int, session: int, payload: bytes) -> None:
        client = self.clients.get(session)
        if client is None:
            return
        client.send(kind, 0, payload)
        if kind in FINAL:
            # Closed once the client has every byte, so that nothing of its output is lost.
            client.stop()
            client.writer.when_drained(lambda: self._close(session))

    def _close(self, session: int) -> bool:
        client = self.clients.pop(session, None)
        if client is None:
            return False
        client.stop()
        client.writer.close()
        os.close(client.fd)
        return True
