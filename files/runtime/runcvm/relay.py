"""Non-blocking, buffered relaying of frames and streams: the launcher's relay of the workload and of
the exec sessions, and the exec client's of its one process.

Nothing here blocks. Writes go through a Writer, whose buffer is bounded: a source that feeds a
full writer is paused until the writer drains (back-pressure), so a reader that does not keep up
slows the sender down instead of freezing the loop or growing memory.
"""

from __future__ import annotations

import json
import os
import selectors
import typing as t

from runcvm import protocol

READ_SIZE = 1 << 16
# A writer holding this much pauses what feeds it.
HIGH_WATER = 1 << 20

Callback = t.Callable[[], None]


class Loop:
    """A selector loop of callbacks on descriptors, one for readable and one for writable."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._handlers: dict[int, tuple[Callback | None, Callback | None]] = {}

    def set_reader(self, fd: int, callback: Callback | None) -> None:
        """Call `callback` whenever `fd` is readable (None: stop). ValueError or OSError when `fd`
        cannot be watched (a regular file, /dev/null)."""
        self._set(fd, callback, self._handlers.get(fd, (None, None))[1])

    def set_writer(self, fd: int, callback: Callback | None) -> None:
        self._set(fd, self._handlers.get(fd, (None, None))[0], callback)

    def _set(self, fd: int, reader: Callback | None, writer: Callback | None) -> None:
        events = (selectors.EVENT_READ if reader else 0) | (selectors.EVENT_WRITE if writer else 0)
        registered = fd in self._handlers
        if events and registered:
            self._selector.modify(fd, events)
        elif events:
            self._selector.register(fd, events)
        elif registered:
            self._selector.unregister(fd)
        if events:
            self._handlers[fd] = (reader, writer)
        else:
            self._handlers.pop(fd, None)

    def run_once(self, timeout: float | None = None) -> None:
        for key, events in self._selector.select(timeout):
            # An earlier callback of this round may have changed or removed the handlers.
            if events & selectors.EVENT_READ and self._handlers.get(key.fd, (None, None))[0]:
                self._handlers[key.fd][0]()
            if events & selectors.EVENT_WRITE and self._handlers.get(key.fd, (None, None))[1]:
                self._handlers[key.fd][1]()


class Writer:
    """Writes to one descriptor without blocking, buffering what it cannot take yet. A broken
    reader (EPIPE, a reset) is no error: what it would have got is dropped, as `cat` would."""

    def __init__(self, loop: Loop, fd: int, limit: int = HIGH_WATER):
        self.loop = loop
        self.fd = fd
        self.limit = limit
        self.broken = False
        self._buffer = bytearray()
        self._on_drained: list[Callback] = []
        os.set_blocking(fd, False)

    @property
    def full(self) -> bool:
        return len(self._buffer) >= self.limit

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def write(self, data: bytes) -> None:
        if self.broken or not data:
            return
        self._buffer += data
        if len(self._buffer) == len(data):
            self._flush()

    def when_drained(self, callback: Callback) -> None:
        """Call `callback` once the buffer is empty (at once if it is)."""
        if self._buffer:
            self._on_drained.append(callback)
        else:
            callback()

    def _flush(self) -> None:
        while self._buffer:
            try:
                written = os.write(self.fd, self._buffer[:READ_SIZE * 4])
            except BlockingIOError:
                self.loop.set_writer(self.fd, self._flush)
                return
            except OSError:
                self.broken = True
                self._buffer.clear()
                break
            del self._buffer[:written]
        self.loop.set_writer(self.fd, None)
        waiting, self._on_drained = self._on_drained, []
        for callback in waiting:
            callback()

    def finish(self) -> None:
        """Write what is left, waiting as long as the reader needs; the descriptor is left blocking."""
        self.loop.set_writer(self.fd, None)
        os.set_blocking(self.fd, True)
        view = memoryview(bytes(self._buffer))
        self._buffer.clear()
        while view and not self.broken:
            try:
                view = view[os.write(self.fd, view):]
            except OSError:
                self.broken = True
        self.close()

    def close(self) -> None:
        """Forget what is buffered; whatever waited for the drain goes on."""
        self.loop.set_writer(self.fd, None)
        self._buffer.clear()
        waiting, self._on_drained = self._on_drained, []
        for callback in waiting:
            callback()


class Source:
    """Something read by the loop that can be paused by any number of writers it feeds."""

    def __init__(self, loop: Loop, fd: int):
        self.loop = loop
        self.fd = fd
        self.closed = False
        self._pauses = 0

    def start(self) -> None:
        self.loop.set_reader(self.fd, self._readable)

    def feed(self, writer: Writer) -> None:
        """Pause until `writer` drains if it is full."""
        if writer.full:
            self.pause()
            writer.when_drained(self.resume)

    def pause(self) -> None:
        """Stop reading until every pause has had its resume."""
        self._pauses += 1
        self.loop.set_reader(self.fd, None)

    def resume(self) -> None:
        self._pauses -= 1
        if not self._pauses and not self.closed:
            self.loop.set_reader(self.fd, self._readable)

    def stop(self) -> None:
        self.closed = True
        self.loop.set_reader(self.fd, None)

    def _readable(self) -> None:
        raise NotImplementedError


class FrameChannel(Source):
    """Frames both ways over one connected socket: whole frames go to `on_frame(kind, session,
    payload)` as they arrive, `on_closed()` when the peer is gone; `send` queues a frame."""

    def __init__(self, loop: Loop, fd: int, on_frame: t.Callable[[int, int, bytes], None], on_closed: Callback):
        super().__init__(loop, fd)
        self.writer = Writer(loop, fd)
        self.on_frame = on_frame
        self.on_closed = on_closed
        self._decoder = protocol.Decoder()

    def send(self, kind: int, session: int, payload: bytes = b"") -> None:
        """Queue `payload` as one frame, or stream data as frames of at most MAX_PAYLOAD."""
        chunked = kind in protocol.STREAMS and payload
        for frame in protocol.encode_stream(kind, session, payload) if chunked else [protocol.encode(kind, session, payload)]:
            self.writer.write(frame)

    def send_json(self, kind: int, session: int, value: t.Any) -> None:
        self.send(kind, session, json.dumps(value).encode())

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.stop()
            self.on_closed()
            return
        for kind, session, payload in self._decoder.feed(data):
            if self.closed:
                return
            self.on_frame(kind, session, payload)


class Credit:
    """The sending side of a session's flow control: how much is in flight, and a pause of the
    sources that feed it while the window is full."""

    def __init__(self, sources: t.Sequence[Source]):
        self.sources = list(sources)
        self.in_flight = 0
        self.paused = False

    def sent(self, count: int) -> None:
        self.in_flight += count
        if self.in_flight >= protocol.WINDOW and not self.paused:
            self.paused = True
            for source in self.sources:
                source.pause()

    def credited(self, payload: bytes) -> None:
        self.in_flight -= json.loads(payload)["bytes"]
        if self.paused and self.in_flight < protocol.WINDOW:
            self.paused = False
            for source in self.sources:
                source.resume()


def credit_when_written(channel: FrameChannel, session: int, writer: Writer, count: int) -> None:
    """Credit `count` bytes of the session's stream to the sender once `writer` has passed them on."""
    writer.when_drained(lambda: channel.send_json(protocol.CREDIT, session, {"bytes": count}))


class LocalStreams(Source):
    """The local end of one session of `channel`: this process's stdin goes out as STDIN frames,
    and the session's STDOUT, STDERR, EXIT and ERROR frames come back to its stdout, stderr and
    `status`. Both directions are flow-controlled with CREDIT frames."""

    def __init__(self, loop: Loop, channel: FrameChannel, session: int = 0):
        super().__init__(loop, 0)
        self.channel = channel
        self.session = session
        # Stdout and stderr may share one open file (a terminal, 2>&1) with other processes: their
        # blocking modes go back as they were found.
        self._blocking = {fd: os.get_blocking(fd) for fd in (1, 2)}
        self.stdout = Writer(loop, 1)
        self.stderr = Writer(loop, 2)
        self.stdin_credit = Credit([self])
        self.status: int | None = None

    def start(self) -> None:
        try:
            super().start()
        except (ValueError, OSError):  # stdin that cannot be watched (/dev/null): it is empty
            self.channel.send(protocol.STDIN, self.session)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, protocol.MAX_PAYLOAD)
        except BlockingIOError:
            return
        except OSError:  # a terminal whose other side has gone
            data = b""
        self.channel.send(protocol.STDIN, self.session, data)
        if not data:
            self.stop()
            return
        self.stdin_credit.sent(len(data))
        self.feed(self.channel.writer)

    def deliver(self, kind: int, payload: bytes) -> None:
        if kind in (protocol.STDOUT, protocol.STDERR):
            writer = self.stdout if kind == protocol.STDOUT else self.stderr
            writer.write(payload)
            credit_when_written(self.channel, self.session, writer, len(payload))
        elif kind == protocol.CREDIT:
            self.stdin_credit.credited(payload)
        elif kind == protocol.EXIT:
            self.status = json.loads(payload)["status"]
        elif kind == protocol.ERROR:
            failure = json.loads(payload)
            self.stderr.write(failure["message"].encode())
            self.status = failure["status"]

    def finish(self) -> None:
        self.stop()
        self.stdout.finish()
        self.stderr.finish()
        for fd, blocking in self._blocking.items():
            os.set_blocking(fd, blocking)
