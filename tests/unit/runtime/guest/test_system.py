"""The guest's system calls that the power-off path and docker stop make."""

from __future__ import annotations

from runcvm.guest import system


def test_syncing_disks_passes_over_a_mount_point_the_workload_removed(tmp_path):
    # The stop and power-off paths must not fail for it: an exception there would end PID 1.
    system.sync_filesystems((str(tmp_path / "removed"), str(tmp_path)))
