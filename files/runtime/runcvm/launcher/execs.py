"""`docker exec` sessions: the launcher accepts exec clients on a socket only root in the
container can reach, gives each a session number on the channel to the VM, and passes frames
between them."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import typing as t

from runcvm import protocol

EXEC_SOCKET = "/.runcvm/exec.sock"
# Frames an exec client may send; anything else ends its session.
FROM_CLIENT = (protocol.START, protocol.STDIN, protocol.SIGNAL, protocol.RESIZE)
FINAL = (protocol.EXIT, protocol.ERROR)


class ExecServer:
    def __init__(self, selector: selectors.BaseSelector, send: t.Callable[[bytes], None]):
        self.selector = selector
        self.send = send
        self.clients: dict[int, socket.socket] = {}
        self.decoders: dict[int, protocol.Decoder] = {}
        self.next_session = 1

    def listen(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o077)
        try:
            listener.bind(EXEC_SOCKET)
        finally:
            os.umask(previous)
        listener.listen(64)
        self.selector.register(listener, selectors.EVENT_READ, ("exec-listen", None))

    def accept(self, listener: socket.socket) -> None:
        client, _address = listener.accept()
        session = self.next_session
        self.next_session += 1
        self.clients[session] = client
        self.decoders[session] = protocol.Decoder()
        self.selector.register(client, selectors.EVENT_READ, ("exec", session))

    def from_client(self, session: int) -> None:
        client = self.clients[session]
        try:
            data = client.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            # The exec client is gone (killed, or docker exec interrupted): end its process.
            self.send(protocol.encode_json(protocol.SIGNAL, session, {"signal": int(signal.SIGKILL)}))
            self._close(session)
            return
        for kind, _number, payload in self.decoders[session].feed(data):
            if kind in FROM_CLIENT:
                self.send(protocol.encode(kind, session, payload))

    def to_client(self, kind: int, session: int, payload: bytes) -> None:
        client = self.clients.get(session)
        if client is None:
            return
        try:
            client.sendall(protocol.encode(kind, 0, payload))
        except OSError:
            self._close(session)
            return
        if kind in FINAL:
            self._close(session)

    def _close(self, session: int) -> None:
        client = self.clients.pop(session, None)
        self.decoders.pop(session, None)
        if client is not None:
            self.selector.unregister(client)
            client.close()
