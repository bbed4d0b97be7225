"""runcvm-exec: what `docker exec` runs in the container. It asks the launcher to have the VM
run the requested process, then relays its streams, signals and terminal size, and exits with
its status."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import termios
import time
import tty

from runcvm import protocol
from runcvm.events import signal_pipe
from runcvm.terminal import deliver, terminal_size

EXEC_SOCKET = "/.runcvm/exec.sock"
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
            client.connect(EXEC_SOCKET)
            return client
        except (FileNotFoundError, ConnectionRefusedError):
            client.close()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)


def main() -> int:
    request = json.loads(os.environ.pop("RUNCVM_EXEC"))
    channel = connect(time.monotonic() + WAIT_FOR_VM)
    if channel is None:
        print(f"runcvm: the VM is not up after {WAIT_FOR_VM} s; try docker exec again", file=sys.stderr)
        return NOT_STARTED
    saved = None
    terminal = request["terminal"] and os.isatty(0)
    if terminal:
        request["size"] = terminal_size(0)
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        return relay(channel, request, terminal)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def relay(channel: socket.socket, request: dict, terminal: bool) -> int:
    selector = selectors.DefaultSelector()
    wakeup_read = signal_pipe((*FORWARDED, signal.SIGWINCH))
    selector.register(wakeup_read, selectors.EVENT_READ, "signals")
    selector.register(channel, selectors.EVENT_READ, "channel")
    channel.sendall(protocol.encode_json(protocol.START, 0, request))
    try:
        selector.register(0, selectors.EVENT_READ, "stdin")
    except (ValueError, OSError):
        channel.sendall(protocol.encode(protocol.STDIN, 0, b""))
    decoder = protocol.Decoder()
    while True:
        for key, _events in selector.select():
            if key.data == "signals":
                for number in os.read(wakeup_read, 256):
                    if number == signal.SIGWINCH:
                        if terminal:
                            channel.sendall(protocol.encode_json(protocol.RESIZE, 0, terminal_size(0)))
                    else:
                        channel.sendall(protocol.encode_json(protocol.SIGNAL, 0, {"signal": number}))
            elif key.data == "stdin":
                data = os.read(0, protocol.MAX_PAYLOAD)
                channel.sendall(protocol.encode(protocol.STDIN, 0, data))
                if not data:
                    selector.unregister(0)
            else:
                data = channel.recv(1 << 16)
                if not data:
                    return VM_GONE
                for kind, _session, payload in decoder.feed(data):
                    status = deliver(kind, payload)
                    if status is not None:
                        return status
