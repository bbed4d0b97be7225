"""The framed protocol between the launcher (in the container) and the guest's agent (in the VM),
over one virtio-serial port.

A frame is a 9-byte header, kind (1 byte), session (4 bytes) and payload length (4 bytes), then
the payload. A session is one process in the VM: session 0 is the container's workload, later
sessions are `docker exec`s. Control payloads are JSON; stream payloads are raw bytes, and an
empty one means end of stream.
"""

from __future__ import annotations

import os
import struct
import typing as t

HEADER = struct.Struct("!BII")
# Stream data travels in frames of at most this much, so that sessions take turns on the channel.
MAX_PAYLOAD = 64 * 1024
# A control frame is never split: a START carries a whole argv and environment (Linux allows
# 2 MiB and more of them).
MAX_CONTROL = 16 * 1024 * 1024

# guest -> launcher
READY = 1       # the guest is set up and takes sessions (JSON: {})
STDOUT = 2      # bytes
STDERR = 3      # bytes
EXIT = 4        # JSON: {"status": exit status as the shell reports it, 128+n for signal n}
ERROR = 5       # JSON: {"message": why a session could not start, "status": 126 or 127}
# launcher -> guest
START = 16      # JSON: the process to run, a plan.Process as plan.dumps writes it
STDIN = 17      # bytes
SIGNAL = 18     # JSON: {"signal": number}
RESIZE = 19     # JSON: {"rows", "cols"}
EXIT_SEEN = 20  # JSON: {}: the launcher has every byte of the session; the guest may power off
NETWORK = 21    # JSON: a plan.Network of one interface whose NIC was just hot-plugged, and its routes
# JSON: {"online": n}: keep n of the VM's vCPUs online (0: all); an exec-socket client (the
# runtime's `update`) may send it too.
CPUS = 22
# JSON: {}: the host has changed a file in the container's root (RUNCVM_VIRTIOFSD_CACHE=programs):
# the guest drops what it cached before it reads the next frame.
HOST_CHANGED = 23
# both ways
CREDIT = 24     # JSON: {"bytes": n}: n more bytes of the session's stream were passed on
STREAMS = (STDOUT, STDERR, STDIN)
# Flow control per session: a sender keeps at most this many bytes of a session's stream that its
# receiver has not yet credited, so one session that is not read never holds up the others.
WINDOW = 1024 * 1024


def encode(kind: int, session: int, payload: bytes = b"") -> bytes:
    limit = MAX_PAYLOAD if kind in STREAMS else MAX_CONTROL
    if len(payload) > limit:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds {limit}")
    return HEADER.pack(kind, session, len(payload)) + payload


def encode_stream(kind: int, session: int, data: bytes) -> t.Iterator[bytes]:
    """`data` as frames of at most MAX_PAYLOAD bytes (no frame at all for empty data)."""
    for offset in range(0, len(data), MAX_PAYLOAD):
        yield encode(kind, session, data[offset:offset + MAX_PAYLOAD])


class Decoder:
    """Accumulates bytes as they arrive and yields whole frames: (kind, session, payload)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> t.Iterator[tuple[int, int, bytes]]:
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            kind, session, length = HEADER.unpack_from(self._buffer)
            if length > MAX_CONTROL:
                raise ValueError(f"frame payload of {length} bytes exceeds {MAX_CONTROL}")
            end = HEADER.size + length
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[HEADER.size:end])
            del self._buffer[:end]
            yield kind, session, payload


def exit_status(wait_status: int) -> int:
    """A waitpid() status as a shell and `docker run` report it: the exit code, or 128+n when
    signal n ended the process."""
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code
