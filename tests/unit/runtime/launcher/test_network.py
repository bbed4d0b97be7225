"""The launcher's hand-over of the container's network (the netlink side is proven in
tests/integration/test_network_safety.py, in network namespaces made there)."""

from __future__ import annotations

from runcvm.launcher.handover import vm_mac


def test_vm_mac_keeps_the_containers_last_three_octets():
    assert vm_mac("02:42:ac:11:00:02") == "52:54:00:11:00:02"
