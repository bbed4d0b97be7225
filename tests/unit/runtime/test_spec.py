"""config.json rewriting, on config.json files captured from dockerd (tests/unit/runtime/configs)."""

from __future__ import annotations

import copy
import json
import pathlib

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._accel import KvmStatus
from runcvm import spec

CONFIGS = pathlib.Path(__file__).parent / "configs"
CASES = sorted(path.stem for path in CONFIGS.glob("*.json"))


@pytest.fixture
def kernels(tmp_path):
    """A payload directory with one installed kernel, and an image root with os-release."""
    payload = tmp_path / "opt-runcvm"
    version = payload / "kernels" / "debian" / "6.12.1-cloud"
    version.mkdir(parents=True)
    (version / "vmlinuz").write_bytes(b"")
    (version.parent / "latest").symlink_to("6.12.1-cloud")
    return payload


def load(case, tmp_path):
    config = json.loads((CONFIGS / f"{case}.json").read_text())
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    config["root"]["path"] = str(root)
    return config


def rewritten(case, tmp_path, kernels):
    config = load(case, tmp_path)
    return spec.rewrite(config, spec.Context(bundle=str(tmp_path), payload_dir=str(kernels)))


@pytest.mark.parametrize("case", CASES)
def test_rewriting_twice_changes_nothing_more(case, tmp_path, kernels):
    once = rewritten(case, tmp_path, kernels)
    twice = spec.rewrite(copy.deepcopy(once), spec.Context(bundle=str(tmp_path), payload_dir=str(kernels)))
    assert twice == once


@pytest.mark.parametrize("case", CASES)
def test_the_launcher_runs_first_and_learns_the_original_process(case, tmp_path, kernels):
    new, old = rewritten(case, tmp_path, kernels), load(case, tmp_path)
    handoff = spec.handoff(new)
    assert new["process"]["args"] == [spec.LAUNCHER]
    assert handoff["args"] == [a for a in old["process"]["args"] if a not in ("/sbin/docker-init", "--")]
    assert handoff["cwd"] == old["process"]["cwd"]
    assert handoff["env"] == [e for e in old["process"]["env"] if not e.startswith("RUNCVM_")]
    assert handoff["user"]["uid"] == old["process"]["user"]["uid"]
    assert new["process"]["user"] == {"uid": 0, "gid": 0}
    assert handoff["kernel"]["kernel"] == "/.runcvm/guest/kernels/debian/6.12.1-cloud/vmlinuz"


@pytest.mark.parametrize("case", CASES)
def test_mount_order(case, tmp_path, kernels):
    new, old = rewritten(case, tmp_path, kernels), load(case, tmp_path)
    destinations = [m["destination"] for m in new["mounts"]]
    assert destinations[:3] == ["/.runcvm", "/.runcvm/guest", "/vm"]
    assert destinations[-2:] == ["/run", "/vm/lib/modules/6.12.1-cloud"]
    assert new["mounts"][1]["source"] == str(kernels) and "ro" in new["mounts"][1]["options"]
    assert new["mounts"][2]["source"] == str(tmp_path / "rootfs")
    for mount in old["mounts"]:
        if mount["type"] == "bind" and mount["destination"] != "/sbin/docker-init":
            assert "/vm" + mount["destination"] in destinations
        elif mount["type"] == "tmpfs" and not mount["destination"].startswith("/dev"):
            assert mount["destination"] not in destinations


def test_user_and_groups(tmp_path, kernels):
    new = rewritten("user-workdir", tmp_path, kernels)
    assert spec.handoff(new)["user"] == {"uid": 1000, "gid": 1000, "groups": [1000, 27], "umask": None}
    assert spec.handoff(new)["cwd"] == "/tmp"


def test_docker_init_is_dropped_with_its_mount(tmp_path, kernels):
    new = rewritten("init", tmp_path, kernels)
    assert spec.handoff(new)["args"] == ["true"]
    assert "/sbin/docker-init" not in [m["destination"] for m in new["mounts"]]


def test_tmpfs_goes_to_the_vm(tmp_path, kernels):
    new = rewritten("tmpfs", tmp_path, kernels)
    assert spec.handoff(new)["tmpfs"] == [
        {"destination": "/scratch", "options": ["noexec", "nosuid", "nodev", "size=64m", "mode=1777"]}]


@pytest.mark.parametrize("case, vm_mib, limit_mib, swap_mib, cpus", [
    ("plain", 512, 768, None, None),
    ("memory-cpus", 300, 556, 856, 2),
])
def test_memory_and_cpus(case, vm_mib, limit_mib, swap_mib, cpus, tmp_path, kernels):
    new = rewritten(case, tmp_path, kernels)
    memory = new["linux"]["resources"]["memory"]
    assert spec.handoff(new)["memory_mib"] == vm_mib
    assert memory["limit"] == limit_mib * 2**20
    assert memory.get("swap") == (swap_mib * 2**20 if swap_mib else None)
    assert spec.handoff(new)["cpus"] == cpus


def test_too_little_memory_names_the_option(tmp_path, kernels):
    config = load("memory-cpus", tmp_path)
    config["linux"]["resources"]["memory"]["limit"] = 32 * 2**20
    with pytest.raises(spec.SpecError, match="--memory 32m is too small for a VM: give it at least --memory 64m"):
        spec.rewrite(config, spec.Context(bundle=str(tmp_path), payload_dir=str(kernels)))


def test_devices_capabilities_and_seccomp(tmp_path, kernels):
    new = rewritten("plain", tmp_path, kernels)
    assert {d["path"] for d in new["linux"]["devices"]} >= {"/dev/kvm", "/dev/net/tun"}
    assert {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"} in \
        new["linux"]["resources"]["devices"]
    for name in ("bounding", "effective", "permitted"):
        assert "CAP_NET_ADMIN" in new["process"]["capabilities"][name]
    assert "seccomp" not in new["linux"]


@pytest.mark.parametrize("env, message", [
    ("RUNCVM_KERNEL=../x", "RUNCVM_KERNEL=../x is invalid"),
    ("RUNCVM_ACCEL=fast", "RUNCVM_ACCEL=fast is not one of auto, kvm, tcg"),
    ("RUNCVM_DISKS=/disks/a,/a,ext4,1Gb", "RUNCVM_DISKS entry ./disks/a,/a,ext4,1Gb.: size .1Gb. is not a size"),
    ("RUNCVM_QEMU_DISPLAY=vnc", "RUNCVM_QEMU_DISPLAY is not a RunCVM option"),
])
def test_bad_options_fail_the_create(env, message, tmp_path, kernels):
    config = load("plain", tmp_path)
    config["process"]["env"].append(env)
    with pytest.raises(spec.SpecError, match=message):
        spec.rewrite(config, spec.Context(bundle=str(tmp_path), payload_dir=str(kernels)))


@pytest.mark.parametrize("usable", [True, False])
def test_forcing_kvm_where_it_cannot_run_fails_the_create(tmp_path, kernels, usable):
    config = load("plain", tmp_path)
    config["process"]["env"].append("RUNCVM_ACCEL=kvm")
    status = KvmStatus(usable, "KVM is usable" if usable else "KVM is not usable (/dev/kvm: No such file)")
    context = spec.Context(bundle=str(tmp_path), payload_dir=str(kernels), kvm_status=lambda: status)
    if usable:
        spec.rewrite(config, context)
    else:
        with pytest.raises(spec.SpecError, match="RUNCVM_ACCEL=kvm was requested but KVM is not usable"):
            spec.rewrite(config, context)


def test_an_image_kernel_is_found_through_symlinks(tmp_path, kernels):
    config = load("plain", tmp_path)
    root = pathlib.Path(config["root"]["path"])
    (root / "boot").mkdir()
    (root / "boot" / "vmlinuz-6.1").write_bytes(b"k")
    (root / "boot" / "initrd.img-6.1").write_bytes(b"i")
    (root / "vmlinuz").symlink_to("boot/vmlinuz-6.1")
    (root / "initrd.img").symlink_to("/boot/initrd.img-6.1")
    spec.rewrite(config, spec.Context(bundle=str(tmp_path), payload_dir=str(kernels)))
    kernel = spec.handoff(config)["kernel"]
    assert (kernel["source"], kernel["kernel"], kernel["initrd"]) == ("image", "/vmlinuz", "/initrd.img")
    assert not any(m["destination"].startswith("/vm/lib/modules") for m in config["mounts"])


HOST_NAMESPACE = "4:4026531840"


def with_network_namespace(config, path=None, present=True):
    namespaces = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
    if present:
        namespaces.append({"type": "network", **({"path": path} if path else {})})
    config["linux"]["namespaces"] = namespaces
    return config


def test_a_namespace_of_the_containers_own_is_taken_and_the_hosts_recorded(tmp_path, kernels):
    config = with_network_namespace(load("plain", tmp_path))
    spec.rewrite(config, spec.Context(bundle=str(tmp_path), payload_dir=str(kernels),
                                      host_network_namespace=lambda: HOST_NAMESPACE))
    assert spec.handoff(config)["host_network_namespace"] == HOST_NAMESPACE


@pytest.mark.parametrize("path, present, message", [
    (None, False, "--network=host is not supported by RunCVM"),  # runc's way: no namespace entry
    ("/proc/self/ns/net", True, "--network=host is not supported by RunCVM"),  # dockerd's: the host's, by path
    ("/proc/4242/ns/net", True, "joins another network namespace .*/proc/4242/ns/net.*--network=container"),
])
def test_a_network_namespace_not_the_containers_own_is_refused(tmp_path, kernels, path, present, message):
    config = with_network_namespace(load("plain", tmp_path), path, present)
    before = copy.deepcopy(config)
    context = spec.Context(bundle=str(tmp_path), payload_dir=str(kernels),
                           host_network_namespace=lambda: spec.namespace_id("/proc/self/ns/net"))
    with pytest.raises(spec.SpecError, match=message) as refused:
        spec.rewrite(config, context)
    assert "use the default bridge network, a user-defined network" in str(refused.value)
    assert config == before
