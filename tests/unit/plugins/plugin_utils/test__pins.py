"""Pins: a lossless round trip, and keys that change with what they pin."""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _kernel, _payload, _pins


@pytest.fixture
def pins():
    return _pins.load()


def test_the_shipped_pins_are_complete(pins):
    assert pins.payload_release == "trixie"
    assert {"qemu-system-x86", "virtiofsd", "busybox-static", "libc6"} <= {p.name for p in pins.payload_packages}
    assert all(len(p.sha256) == 64 for p in pins.payload_packages)
    assert all(len(w.sha256) == 64 for w in pins.wheels)
    assert "trixie/linux-image-cloud-amd64" in pins.kernels
    assert all(len(k.package.sha256) == 64 for k in pins.kernels.values())


def test_round_trip(pins, tmp_path):
    copy = tmp_path / "pins.json"
    _pins.save(pins, copy)
    assert _pins.load(copy) == pins
    assert copy.read_text() == _pins.PINS_FILE.read_text()


def test_a_changed_pin_changes_the_payload_key(pins):
    changed = dataclasses.replace(pins, payload_packages=[
        dataclasses.replace(p, version=p.version + "+1") if p.name == "virtiofsd" else p
        for p in pins.payload_packages])
    assert _payload.cache_key(changed) != _payload.cache_key(pins)
    assert _payload.cache_key(dataclasses.replace(pins)) == _payload.cache_key(pins)


def test_a_changed_kernel_pin_changes_only_that_kernels_key(pins):
    key = "trixie/linux-image-cloud-amd64"
    kernel = pins.kernels[key]
    changed = dataclasses.replace(pins, kernels={
        **pins.kernels, key: dataclasses.replace(kernel, package=dataclasses.replace(kernel.package, sha256="0" * 64))})
    assert _kernel.cache_key(changed, key) != _kernel.cache_key(pins, key)
    other = "bookworm/linux-image-cloud-amd64"
    assert _kernel.cache_key(changed, other) == _kernel.cache_key(pins, other)


def test_an_unpinned_kernel_is_named(pins):
    with pytest.raises(_pins.PinError, match="kernel 'sid/linux-image-rt-amd64' is not pinned"):
        pins.kernel("sid/linux-image-rt-amd64")


def test_unreadable_pins_are_an_error(tmp_path):
    broken = tmp_path / "pins.json"
    broken.write_text("{}")
    with pytest.raises(_pins.PinError, match="cannot read the pins"):
        _pins.load(broken)


def test_wheel_requirements_demand_the_hash():
    assert _pins.wheel_requirements([_pins.Wheel("pyroute2", "0.9.7", "ab" * 32)]) == \
        f"pyroute2==0.9.7 --hash=sha256:{'ab' * 32}\n"
