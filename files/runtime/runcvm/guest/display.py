"""RUNCVM_QEMU_DISPLAY=vnc: the VM's screen is served by QEMU's VNC server, which listens in the
container on the launcher's address on the bridge. A VNC client reaches the container's IP, which
is the VM's, so the VM relays its VNC port to QEMU's: a process beside the agent, outside the
workload's PID namespace, that joins each connection it takes to one of its own to QEMU."""

from __future__ import annotations

import os
import socket

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout
from runcvm.guest import log

CHUNK = 64 * 1024


def start_relay(qemu_address: str) -> None:
    """Fork the relay from the VM's port layout.VNC_PORT to QEMU's VNC server at `qemu_address`;
    it runs as long as the VM does."""
    if os.fork():
        return
    try:
        _serve(qemu_address)
    except OSError as error:
        log(f"the VNC relay stopped: {error}")
    finally:
        os._exit(0)


def _serve(qemu_address: str) -> None:
    import threading  # pylint: disable=import-outside-toplevel  # in the relay alone: imports are slow under TCG

    family = socket.AF_INET6 if socket.has_dualstack_ipv6() else socket.AF_INET
    with socket.create_server(("", layout.VNC_PORT), family=family, dualstack_ipv6=family == socket.AF_INET6,
                              backlog=8) as listener:
        while True:
            client, _address = listener.accept()
            try:
                qemu = socket.create_connection((qemu_address, layout.VNC_PORT))
            except OSError as error:
                log(f"the VNC relay cannot reach QEMU's display: {error}")
                client.close()
                continue
            for source, sink in ((client, qemu), (qemu, client)):
                threading.Thread(target=_copy, args=(source, sink), daemon=True).start()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    """One direction of a connection, until either side ends it; then both are shut."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    for end in (source, sink):
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
