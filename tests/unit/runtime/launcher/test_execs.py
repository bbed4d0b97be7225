"""The launcher's exec server: sessions numbered on the channel to the VM, frames passed both ways,
and a client that goes away or misbehaves ends its process in the VM."""

from __future__ import annotations

import json
import signal
import socket

import pytest

from harness.frames import Peer
from runcvm import protocol
from runcvm.launcher.execs import ExecServer
from runcvm.relay import FrameChannel, Loop


@pytest.fixture
def server(tmp_path):
    """(the exec server, its loop, the guest's end of the VM channel)"""
    loop = Loop()
    launcher_end, guest_end = socket.socketpair()
    vm = FrameChannel(loop, launcher_end.fileno(), lambda *frame: None, lambda: None)
    vm.start()
    execs = ExecServer(loop, vm, str(tmp_path / "exec.sock"))
    execs.listen()
    guest_end.settimeout(10)
    yield execs, loop, Peer(guest_end)
    launcher_end.close()


def pump(loop):
    """Let the server handle what is ready: a few short rounds of its loop."""
    for _round in range(5):
        loop.run_once(timeout=0.05)


def client(execs, loop):
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(execs.path)
    connection.settimeout(10)
    pump(loop)
    return Peer(connection)


def test_sessions_are_numbered_and_frames_pass_both_ways(server):
    execs, loop, guest = server
    first, second = client(execs, loop), client(execs, loop)
    first.send(protocol.START, 0, b'{"first": 1}')
    second.send(protocol.START, 0, b'{"second": 2}')
    pump(loop)
    starts = sorted([guest.receive(), guest.receive()])
    assert starts == [(protocol.START, 1, b'{"first": 1}'), (protocol.START, 2, b'{"second": 2}')]
    execs.to_client(protocol.STDOUT, 2, b"two")
    execs.to_client(protocol.EXIT, 2, b'{"status": 0}')
    pump(loop)
    assert [second.receive(), second.receive()] == [(protocol.STDOUT, 0, b"two"), (protocol.EXIT, 0, b'{"status": 0}')]
    with pytest.raises(EOFError):
        second.receive()
    assert sorted(execs.clients) == [1]


def test_a_client_that_goes_away_ends_its_process(server):
    execs, loop, guest = server
    gone = client(execs, loop)
    gone.connection.close()
    pump(loop)
    assert guest.receive() == (protocol.SIGNAL, 1, json.dumps({"signal": int(signal.SIGKILL)}).encode())
    assert execs.clients == {}


def test_a_client_may_not_send_what_only_the_vm_sends(server):
    execs, loop, guest = server
    rogue = client(execs, loop)
    rogue.send_json(protocol.EXIT, 0, {"status": 0})
    pump(loop)
    assert guest.receive()[:2] == (protocol.SIGNAL, 1)
    with pytest.raises(EOFError):
        rogue.receive()
