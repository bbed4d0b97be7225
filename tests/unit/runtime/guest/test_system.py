"""The guest's system calls that the power-off path and docker stop make, and the clock a VM
restored from a template sets."""

from __future__ import annotations

import calendar

import pytest

from runcvm.guest import system


def test_syncing_disks_passes_over_a_mount_point_the_workload_removed(tmp_path):
    # The stop and power-off paths must not fail for it: an exception there would end PID 1.
    system.sync_filesystems((str(tmp_path / "removed"), str(tmp_path)))


@pytest.mark.parametrize("when", [(1970, 1, 1, 0, 0, 0), (2000, 2, 29, 23, 59, 59), (2026, 12, 1, 9, 5, 7),
                                  (2100, 3, 1, 0, 0, 1), (2399, 12, 31, 12, 0, 0)])
def test_a_real_time_clocks_date_is_the_seconds_calendar_gives(when):
    assert system.epoch_seconds(*when) == calendar.timegm(when)
