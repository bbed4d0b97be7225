"""The relay: non-blocking writers with bounded buffers, frame channels, and back-pressure."""

from __future__ import annotations

import os
import socket

from runcvm import protocol
from runcvm.relay import HIGH_WATER, FrameChannel, Loop, Source, Writer


def run_until(loop: Loop, done, rounds: int = 10_000) -> None:
    for _round in range(rounds):
        if done():
            return
        loop.run_once(timeout=5)
    raise AssertionError("the loop never got there")


def test_a_writer_buffers_what_a_slow_reader_cannot_take_and_drains_in_the_loop():
    loop = Loop()
    read_end, write_end = os.pipe()
    writer = Writer(loop, write_end, limit=HIGH_WATER)
    data = os.urandom(3 * HIGH_WATER)
    writer.write(data)  # a pipe holds 64 KiB: the rest waits, and write() returned at once
    assert writer.full and writer.pending > 0
    drained = []
    writer.when_drained(lambda: drained.append(True))
    received = bytearray()
    os.set_blocking(read_end, False)

    def read_some():
        try:
            received.extend(os.read(read_end, 1 << 16))
        except BlockingIOError:
            pass

    loop.set_reader(read_end, read_some)
    run_until(loop, lambda: drained)
    loop.set_reader(read_end, None)
    os.set_blocking(read_end, True)
    while len(received) < len(data):  # what the pipe still holds
        received.extend(os.read(read_end, 1 << 16))
    assert bytes(received) == data and writer.pending == 0


def test_a_writer_whose_reader_is_gone_drops_data_without_error():
    loop = Loop()
    read_end, write_end = os.pipe()
    os.close(read_end)
    writer = Writer(loop, write_end)
    writer.write(b"nobody listens")
    assert writer.broken and writer.pending == 0
    writer.write(b"more")
    writer.finish()


class Counting(Source):
    def __init__(self, loop, fd):
        super().__init__(loop, fd)
        self.reads = 0

    def _readable(self):
        self.reads += 1
        os.read(self.fd, 1)


def test_a_source_pauses_while_the_writer_it_feeds_is_full_and_resumes_when_it_drains():
    loop = Loop()
    source_read, source_write = os.pipe()
    os.write(source_write, b"xxxx")
    sink_read, sink_write = os.pipe()
    writer = Writer(loop, sink_write, limit=1024)
    source = Counting(loop, source_read)
    source.start()
    writer.write(b"y" * (1 << 17))  # more than the pipe takes: the writer stays full
    source.feed(writer)
    loop.run_once(timeout=0.1)
    assert source.reads == 0
    os.set_blocking(sink_read, False)
    while writer.pending:
        try:
            os.read(sink_read, 1 << 16)
        except BlockingIOError:
            pass
        loop.run_once(timeout=0.1)
    run_until(loop, lambda: source.reads)
    assert source.reads >= 1


def test_frames_cross_a_channel_both_ways_and_its_closing_is_reported():
    loop = Loop()
    ours, theirs = socket.socketpair()
    received, closed = [], []
    channel = FrameChannel(loop, ours.fileno(), lambda *frame: received.append(frame), lambda: closed.append(True))
    channel.start()
    big = os.urandom(protocol.MAX_PAYLOAD * 2 + 1)
    channel.send(protocol.STDOUT, 3, big)
    channel.send(protocol.START, 0, b"{" + b" " * (protocol.MAX_PAYLOAD * 2) + b"}")
    channel.send_json(protocol.EXIT, 3, {"status": 0})
    theirs.sendall(protocol.encode(protocol.STDIN, 5, b"hello") + protocol.encode(protocol.STDIN, 5))
    run_until(loop, lambda: len(received) == 2)
    assert received == [(protocol.STDIN, 5, b"hello"), (protocol.STDIN, 5, b"")]
    decoder, frames = protocol.Decoder(), []
    theirs.setblocking(False)
    while len(frames) < 5:
        loop.run_once(timeout=0.1)
        try:
            frames += decoder.feed(theirs.recv(1 << 20))
        except BlockingIOError:
            pass
    assert [kind for kind, _session, _payload in frames] == [protocol.STDOUT] * 3 + [protocol.START, protocol.EXIT]
    assert b"".join(payload for kind, _s, payload in frames if kind == protocol.STDOUT) == big
    theirs.close()
    run_until(loop, lambda: closed)
