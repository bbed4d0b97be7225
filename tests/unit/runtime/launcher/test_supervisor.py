"""The launcher's helpers: a socket whose file exists before its owner listens is waited for."""

from __future__ import annotations

import socket
import threading

from runcvm.launcher.supervisor import Children


def test_a_socket_bound_but_not_yet_listening_is_connected_to_once_it_listens(tmp_path):
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)  # the file is there; a connection now is refused
    timer = threading.Timer(0.2, server.listen)
    timer.start()
    try:
        with Children().connect(path) as connection:
            accepted, _address = server.accept()
            connection.sendall(b"ping")
            assert accepted.recv(4) == b"ping"
            accepted.close()
    finally:
        timer.join()
        server.close()
