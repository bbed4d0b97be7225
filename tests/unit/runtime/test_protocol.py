"""The framed protocol between the launcher and the guest agent."""

from __future__ import annotations

import os
import signal

import pytest

from runcvm import protocol


def test_frames_round_trip_across_arbitrary_splits():
    frames = [protocol.encode(protocol.STDOUT, 0, b"hello"),
              protocol.encode(protocol.EXIT, 3, b'{"status": 7}'), protocol.encode(protocol.STDIN, 0, b"")]
    stream = b"".join(frames)
    for split in range(1, len(stream)):
        decoder = protocol.Decoder()
        decoded = list(decoder.feed(stream[:split])) + list(decoder.feed(stream[split:]))
        assert decoded == [(protocol.STDOUT, 0, b"hello"), (protocol.EXIT, 3, b'{"status": 7}'),
                           (protocol.STDIN, 0, b"")]


def test_large_streams_are_cut_into_frames():
    data = os.urandom(protocol.MAX_PAYLOAD * 2 + 5)
    frames = list(protocol.encode_stream(protocol.STDERR, 1, data))
    assert len(frames) == 3
    decoded = list(protocol.Decoder().feed(b"".join(frames)))
    assert b"".join(frame[2] for frame in decoded) == data
    assert list(protocol.encode_stream(protocol.STDERR, 1, b"")) == []


def test_oversized_frames_are_refused():
    with pytest.raises(ValueError):
        protocol.encode(protocol.STDOUT, 0, b"x" * (protocol.MAX_PAYLOAD + 1))
    with pytest.raises(ValueError):
        list(protocol.Decoder().feed(protocol.HEADER.pack(protocol.START, 0, protocol.MAX_CONTROL + 1)))


def test_a_start_larger_than_a_stream_frame_travels_whole():
    request = b'{"args": ["sh", "%s"]}' % (b"x" * 300_000)
    ((kind, session, payload),) = protocol.Decoder().feed(protocol.encode(protocol.START, 4, request))
    assert (kind, session, payload) == (protocol.START, 4, request)


@pytest.mark.parametrize("wait_status, expected", [(0, 0), (3 << 8, 3), (signal.SIGKILL, 137), (signal.SIGTERM, 143)])
def test_exit_status(wait_status, expected):
    assert protocol.exit_status(wait_status) == expected
