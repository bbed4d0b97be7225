"""The guest agent, run by the payload's own Python (the guest init's) on a channel the test plays
the launcher on: the workload as PID 1 of its own namespace, a docker exec joining it, and a
refused session that must not end the agent. Sessions make PID and mount namespaces: root only."""

from __future__ import annotations

import json
import os
import threading

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _elf
from harness.frames import python_with_channel
from runcvm import protocol

AGENT = """
import socket, sys
from runcvm.guest.agent import Agent
Agent(socket.socket(fileno=int(sys.argv[1])).detach(), {"kernel_seconds": 0.5}).serve()
"""


def process(*args: str) -> bytes:
    return plan.dumps(plan.Process(args=args, env=("PATH=/usr/sbin:/usr/bin:/sbin:/bin",), cwd="/",
                                   user=plan.User())).encode()


def frames_until_exit(launcher, session):
    """(stdout, stderr, exit status) of `session`, read until its EXIT or ERROR, crediting its
    output as the launcher does."""
    out = {protocol.STDOUT: b"", protocol.STDERR: b""}
    while True:
        kind, number, payload = launcher.receive()
        if kind == protocol.CREDIT:
            continue
        assert number == session, (kind, number, payload)
        if kind in out:
            out[kind] += payload
            launcher.send_json(protocol.CREDIT, session, {"bytes": len(payload)})
        elif kind in (protocol.EXIT, protocol.ERROR):
            status = json.loads(payload)
            out[protocol.STDERR] += status.get("message", "").encode()
            return out[protocol.STDOUT], out[protocol.STDERR], status["status"]


def payload_python(payload):
    return {"python": (str(payload.tree / "lib" / _elf.LOADER), str(payload.tree / "bin" / "python3")),
            "path": (str(payload.tree / "runtime"),)}


def test_workload_exec_and_a_refused_session_on_one_agent(payload):
    agent, launcher = python_with_channel(AGENT, **payload_python(payload))
    try:
        kind, _session, payload = launcher.receive()
        assert kind == protocol.READY and json.loads(payload) == {"kernel_seconds": 0.5}
        launcher.send(protocol.START, 0, process("sh", "-c", 'read line; echo "got $line $$"; echo err >&2; exit 3'))
        launcher.send(protocol.START, 1, process("sh", "-c", "echo exec; ps -o pid= -p 1 >/dev/null; exit 4"))
        assert frames_until_exit(launcher, 1) == (b"exec\n", b"", 4)
        # A request the agent cannot read is refused; the client's next frames go nowhere.
        launcher.send(protocol.START, 2, b'{"version": 1, "args": "not a list"}')
        stdout, stderr, status = frames_until_exit(launcher, 2)
        assert status == 126 and b"the request to start a process" in stderr
        launcher.send(protocol.STDIN, 2)
        launcher.send_json(protocol.SIGNAL, 2, {"signal": 15})
        launcher.send(protocol.STDIN, 0, b"hello\n")
        launcher.send(protocol.STDIN, 0)
        assert frames_until_exit(launcher, 0) == (b"got hello 1\n", b"err\n", 3)
        launcher.send_json(protocol.EXIT_SEEN, 0, {})
        assert agent.wait(timeout=30) == 0
    finally:
        agent.kill()


def test_a_workload_that_writes_much_before_it_reads_its_stdin_does_not_freeze_the_agent(payload):
    agent, launcher = python_with_channel(AGENT, **payload_python(payload))
    try:
        launcher.receive()
        launcher.send(protocol.START, 0, process("sh", "-c", "head -c 4000000 /dev/zero; wc -c"))
        # All the input at once, from another thread, as a launcher with a slow reader might.
        feeder = threading.Thread(target=lambda: (launcher.send(protocol.STDIN, 0, b"i" * 2_000_000),
                                                  launcher.send(protocol.STDIN, 0)), daemon=True)
        feeder.start()
        stdout, stderr, status = frames_until_exit(launcher, 0)
        assert (len(stdout), stdout.count(b"\0"), stdout[4_000_000:], stderr, status) == \
            (4_000_008, 4_000_000, b"2000000\n", b"", 0)
        launcher.send_json(protocol.EXIT_SEEN, 0, {})
        assert agent.wait(timeout=30) == 0
    finally:
        agent.kill()


def test_sessions_that_end_before_their_input_leave_no_descriptor_open(payload):
    """Execs that exit without reading their stdin (pipes and terminals alike): once each is
    reported, the agent holds no descriptor of it."""
    agent, launcher = python_with_channel(AGENT, **payload_python(payload))
    try:
        launcher.receive()
        launcher.send(protocol.START, 0, process("sleep", "60"))
        launcher.send(protocol.START, 1, process("true"))  # answered once the workload runs
        launcher.send(protocol.STDIN, 1)
        assert frames_until_exit(launcher, 1)[2] == 0
        before = sorted(os.listdir(f"/proc/{agent.pid}/fd"))
        for number in range(2, 8):
            request = plan.Process(args=("sh", "-c", "exit 5"), env=("PATH=/usr/bin:/bin",), cwd="/",
                                   user=plan.User(), terminal=number % 2 == 0)
            launcher.send(protocol.START, number, plan.dumps(request).encode())
            launcher.send(protocol.STDIN, number, b"never read\n")
            assert frames_until_exit(launcher, number)[2] == 5
        assert sorted(os.listdir(f"/proc/{agent.pid}/fd")) == before
        launcher.send_json(protocol.SIGNAL, 0, {"signal": 9})
        assert frames_until_exit(launcher, 0)[2] == 137
        launcher.send_json(protocol.EXIT_SEEN, 0, {})
        assert agent.wait(timeout=30) == 0
    finally:
        agent.kill()
