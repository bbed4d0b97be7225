"""tools/cgroups.py: a process's cgroup file on a hybrid (v1) host and on a v2 host."""

from __future__ import annotations

import pathlib

from cgroups import cgroup_file


def proc_with(tmp_path: pathlib.Path, text: str) -> str:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cgroup").write_text(text, encoding="ascii")
    return str(tmp_path)


def test_the_controllers_own_hierarchy_where_it_has_one(tmp_path):
    proc = proc_with(tmp_path, "12:memory:/docker/abc\n11:pids:/docker/abc\n0::/docker/abc\n")
    assert cgroup_file(7, "memory", "memory.max_usage_in_bytes", "memory.peak", proc) == \
        pathlib.Path("/sys/fs/cgroup/memory/docker/abc/memory.max_usage_in_bytes")


def test_the_v2_cgroup_where_the_controller_has_none(tmp_path):
    proc = proc_with(tmp_path, "0::/system.slice/docker-abc.scope\n")
    assert cgroup_file(7, "memory", "memory.max_usage_in_bytes", "memory.peak", proc) == \
        pathlib.Path("/sys/fs/cgroup/system.slice/docker-abc.scope/memory.peak")
