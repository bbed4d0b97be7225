"""The exec client against a launcher played by the test: bytes, stderr, status, and no deadlock
when the process writes much before it reads its stdin."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import termios
import threading

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from harness.frames import python_with_channel
from runcvm import exec_client, protocol

CLIENT = """
import json, socket, sys
from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from runcvm import exec_client
request = json.loads(plan.dumps(plan.Process(args=("cat",), env=(), cwd="/", user=plan.User())))
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


def test_a_request_for_a_terminal_carries_its_size_as_the_plan_reads_it():
    request = plan.Process(args=("sh",), env=(), cwd="/", user=plan.User(), terminal=True)
    primary, secondary = os.openpty()
    read_end, write_end = os.pipe()
    try:
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 132, 0, 0))
        sent, terminal = exec_client.request_on(plan.dumps(request), secondary)
        assert terminal and plan.loads(plan.Process, json.dumps(sent), "the request").size == plan.TerminalSize(41, 132)
        # No terminal: none is asked of the VM, whatever the request says.
        assert exec_client.request_on(plan.dumps(request), read_end) == (json.loads(plan.dumps(request)), False)
    finally:
        for descriptor in (primary, secondary, read_end, write_end):
            os.close(descriptor)
