"""The far end of a RunCVM channel, played by a test: frames read and sent over a plain socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import typing as t

from runcvm import protocol


class Peer:
    """One end of a channel, blocking, for a test to script what the other side sees."""

    def __init__(self, connection: socket.socket):
        self.connection = connection
        self.decoder = protocol.Decoder()
        self.pending: list[tuple[int, int, bytes]] = []
        self._sending = threading.Lock()  # a test may send from two threads

    def send(self, kind: int, session: int, payload: bytes = b"") -> None:
        frames = protocol.encode_stream(kind, session, payload) if kind in protocol.STREAMS and payload else \
            [protocol.encode(kind, session, payload)]
        for frame in frames:
            with self._sending:
                self.connection.sendall(frame)

    def send_json(self, kind: int, session: int, value: t.Any) -> None:
        self.send(kind, session, json.dumps(value).encode())

    def receive(self) -> tuple[int, int, bytes]:
        """The next frame; EOFError when the other side has closed."""
        while not self.pending:
            data = self.connection.recv(1 << 16)
            if not data:
                raise EOFError
            self.pending += self.decoder.feed(data)
        return self.pending.pop(0)

    def stream(self, kind: int, session: int) -> bytes:
        """Everything of one stream up to its empty frame, crediting it as it comes, as RunCVM's
        own receivers do, and skipping frames of other kinds."""
        data = bytearray()
        while True:
            got_kind, got_session, payload = self.receive()
            if (got_kind, got_session) == (kind, session):
                if not payload:
                    return bytes(data)
                data += payload
                self.send_json(protocol.CREDIT, session, {"bytes": len(payload)})


def python_with_channel(script: str, *args: str, python: t.Sequence[str] = (sys.executable,),
                        path: t.Sequence[str] = tuple(sys.path), **popen: t.Any) -> tuple[subprocess.Popen, Peer]:
    """Run `script` in `python` (this test's, or the payload's) with `path` to import from and
    one end of a fresh channel as its fd argv[1]."""
    ours, theirs = socket.socketpair()
    process = subprocess.Popen([*python, "-c", script, str(theirs.fileno()), *args], pass_fds=[theirs.fileno()],
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(path)}, **popen)
    theirs.close()
    return process, Peer(ours)
