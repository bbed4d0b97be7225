"""runcvm-exec: what `docker exec` runs in the container. It asks the launcher to have the VM
run the requested process, then relays its streams, signals and terminal size, and exits with
its status.

The request (plan.dumps of a plan.Process, which exec_spec made) goes on to the launcher as the
JSON it is, with the terminal's size added: the launcher reads it with plan.loads. The client
imports none of the plan's types (dataclasses and what it brings: 40 ms of every `docker exec`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import termios
import time
import tty

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout
from runcvm import protocol
from runcvm.events import signal_pipe
from runcvm.relay import FrameChannel, LocalStreams, Loop
from runcvm.terminal import terminal_size

# How long an exec waits for a VM that is still booting.
WAIT_FOR_VM = 60
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
NOT_STARTED = 126
# The status of a process whose VM went away under it, as of one killed by SIGKILL.
VM_GONE = 137


def connect(deadline: float) -> socket.socket | None:
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.connect(layout.EXEC_SOCKET)
            return client
        except (FileNotFoundError, ConnectionRefusedError):
            client.close()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)


def request_on(text: str, stdin: int) -> tuple[dict, bool]:
    """The request exec_spec made (`text`), and whether its process gets a terminal: one that asks
    for it, with `stdin` a terminal, carries that terminal's size (plan.Process.size)."""
    request = json.loads(text)
    terminal = bool(request.get("terminal")) and os.isatty(stdin)
    if terminal:
        request["size"] = terminal_size(stdin)
    return request, terminal


def main() -> int:
    # exec_spec cut the request into arguments.
    request, terminal = request_on("".join(sys.argv[1:]), 0)
    channel = connect(time.monotonic() + WAIT_FOR_VM)
    if channel is None:
        print(f"runcvm: {layout.VM_NOT_UP} after {WAIT_FOR_VM} s; try docker exec again", file=sys.stderr)
        return NOT_STARTED
    saved = None
    if terminal:
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        return relay(channel, request, terminal)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def relay(connection: socket.socket, request: dict, terminal: bool) -> int:
    """Send `request` (a plan.Process as JSON) and relay the process it starts until it ends: its status."""
    loop = Loop()
    gone = []
    channel = FrameChannel(loop, connection.fileno(), lambda kind, _session, payload: streams.deliver(kind, payload),
                           lambda: gone.append(True))
    streams = LocalStreams(loop, channel)
    wakeup = signal_pipe((*FORWARDED, signal.SIGWINCH))

    def on_signals() -> None:
        for number in os.read(wakeup, 256):
            if number != signal.SIGWINCH:
                channel.send_json(protocol.SIGNAL, 0, {"signal": number})
            elif terminal:
                channel.send_json(protocol.RESIZE, 0, terminal_size(0))

    loop.set_reader(wakeup, on_signals)
    channel.send(protocol.START, 0, json.dumps(request).encode())
    channel.start()
    streams.start()
    while streams.status is None and not gone:
        loop.run_once()
    streams.finish()
    return VM_GONE if streams.status is None else streams.status
