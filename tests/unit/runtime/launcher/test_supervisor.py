"""The launcher's helpers: a socket whose file exists before its owner listens is waited for; a
process that has stopped using the CPU is told from one that works or was paused; QEMU is waited
for only while its guest has something to hand the host."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

from runcvm.launcher.supervisor import Children, IdleWatch, cpu_seconds


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


class Process:
    """A process's CPU time and the clock, as the test moves them."""

    def __init__(self):
        self.now, self.cpu = 0.0, 0.0

    def run(self, seconds: float, cpu_share: float) -> None:
        self.now += seconds
        self.cpu += seconds * cpu_share


def watch_over(process: Process, steps: list[tuple[float, float]]) -> list[bool]:
    """What IdleWatch (a 30 s window, gaps past 10 s start it over) says after each (seconds, CPU share) step."""
    watch = IdleWatch(lambda: process.cpu, 30, 10, clock=lambda: process.now)
    said = [watch.used_less_than(1.5)]
    for seconds, share in steps:
        process.run(seconds, share)
        said.append(watch.used_less_than(1.5))
    return said


def test_a_busy_process_is_never_idle():
    assert not any(watch_over(Process(), [(5, 1.0)] * 20))


def test_a_process_idle_for_a_whole_window_is_idle_and_not_before():
    said = watch_over(Process(), [(5, 1.0)] * 4 + [(5, 0.01)] * 7)
    assert said[:10] == [False] * 10  # the window still holds busy seconds
    assert said[10:] == [True, True]


def test_a_process_that_is_busy_again_is_no_longer_idle():
    said = watch_over(Process(), [(5, 0.01)] * 7 + [(5, 1.0)])
    assert said[-2:] == [True, False]


def test_a_gap_in_the_samples_starts_the_window_over():
    """The watcher was stopped with the process (docker pause): that is no idleness."""
    said = watch_over(Process(), [(5, 1.0), (120, 0.0), (5, 0.01), (5, 0.01)])
    assert not any(said)


def test_cpu_seconds_of_this_process_grow_with_its_work():
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.1


def started(children: Children, name: str, argv: list[str]) -> None:
    children.processes[name] = subprocess.Popen(argv)


def test_a_guest_with_nothing_left_to_hand_the_host_is_not_waited_for():
    children = Children()
    started(children, "qemu", ["sleep", "5"])  # a guest that would power off by itself, in its time
    started(children, "virtiofsd", ["true"])
    children.stop(60, wait_for_guest=False)
    assert children.processes["qemu"].returncode == -signal.SIGKILL
    assert children.processes["virtiofsd"].returncode == 0


def test_a_guest_that_powers_off_is_waited_for():
    children = Children()
    started(children, "qemu", ["sleep", "0.3"])
    started(children, "virtiofsd", ["true"])
    children.stop(10)
    assert children.processes["qemu"].returncode == 0
