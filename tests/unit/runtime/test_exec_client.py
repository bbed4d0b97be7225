"""The exec client against a launcher played by the test: bytes, stderr, status, and no deadlock
when the process writes much before it reads its stdin."""

from __future__ import annotations

import os
import subprocess
import threading

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from harness.frames import python_with_channel
from runcvm import protocol

CLIENT = """
import socket, sys
from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from runcvm import exec_client
request = plan.Process(args=("cat",), env=(), cwd="/", user=plan.User())
sys.exit(exec_client.relay(socket.socket(fileno=int(sys.argv[1])), request, terminal=False))
"""
OUTPUT = os.urandom(4_000_000)
INPUT = os.urandom(2_000_000)


def test_much_output_before_the_input_is_read_neither_deadlocks_nor_loses_a_byte():
    client, launcher = python_with_channel(CLIENT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = {}

    def play_the_launcher():
        kind, _session, payload = launcher.receive()
        seen["start"] = (kind, plan.loads(plan.Process, payload, "start").args)
        launcher.send(protocol.STDOUT, 0, OUTPUT)   # all of it before reading any stdin
        seen["stdin"] = launcher.stream(protocol.STDIN, 0)
        launcher.send(protocol.STDERR, 0, b"done\n")
        launcher.send_json(protocol.EXIT, 0, {"status": 7})

    thread = threading.Thread(target=play_the_launcher, daemon=True)
    thread.start()
    stdout, stderr = client.communicate(INPUT, timeout=120)
    thread.join(10)
    assert seen["start"] == (protocol.START, ("cat",))
    assert client.returncode == 7, stderr
    assert stdout == OUTPUT and stderr == b"done\n" and seen["stdin"] == INPUT


def test_an_error_is_written_to_stderr_with_its_status_and_a_vanished_vm_is_137():
    client, launcher = python_with_channel(CLIENT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE)
    launcher.receive()
    launcher.send_json(protocol.ERROR, 0, {"status": 126, "message": "runcvm: no such thing\n"})
    assert client.communicate(timeout=60)[1] == b"runcvm: no such thing\n" and client.returncode == 126
    client, launcher = python_with_channel(CLIENT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE)
    launcher.receive()
    launcher.connection.close()
    client.communicate(timeout=60)
    assert client.returncode == 137
