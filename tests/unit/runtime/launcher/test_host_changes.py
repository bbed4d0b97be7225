"""RUNCVM_VIRTIOFSD_CACHE=programs: the launcher reads the runtime's fanotify events."""

from __future__ import annotations

import os

from runcvm.launcher import host_changes


def event(pid: int, fd: int = -1) -> bytes:
    return host_changes.EVENT.pack(host_changes.EVENT.size, 3, 0, host_changes.EVENT.size, 0x8, fd, pid)


def queue(*events: bytes) -> int:
    """A non-blocking descriptor to read `events` from, as from a fanotify group."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.write(write_end, b"".join(events))
    os.close(write_end)
    return read_end


def test_only_a_writer_outside_the_container_is_the_hosts_change():
    assert not host_changes.host_changed(queue(event(pid=17), event(pid=23)))  # virtiofsd: the VM's own writes
    assert host_changes.host_changed(queue(event(pid=17), event(pid=0), event(pid=23)))


def test_every_event_is_read_and_the_file_each_holds_closed(tmp_path):
    held = [os.open(tmp_path, os.O_RDONLY) for _event in range(2)]
    group = queue(event(0, held[0]), event(9, held[1]))
    assert host_changes.host_changed(group)
    assert not host_changes.host_changed(group)  # nothing left: read at once, non-blocking
    for fd in held:
        assert not os.path.exists(f"/proc/self/fd/{fd}")
