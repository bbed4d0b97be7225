"""What the install and kernels roles leave on a fresh Docker host, checked as a user would."""

from __future__ import annotations

import json

PAYLOAD = "/opt/runcvm"
TEST_IMAGE = "runcvm-test/busybox:latest"


def test_payload_is_installed_with_its_manifest(host):
    manifest = json.loads(host.file(f"{PAYLOAD}/manifest.json").content_string)
    assert len(manifest["digest"]) == 64
    runtime = host.file(f"{PAYLOAD}/bin/runcvm-runtime")
    assert runtime.is_file and runtime.mode & 0o111


def test_payload_python_and_qemu_run_through_their_own_loader(host):
    loader = f"{PAYLOAD}/lib/ld-linux-x86-64.so.2"
    qemu = host.run(f"{loader} {PAYLOAD}/bin/qemu-system-x86_64 --version")
    assert qemu.rc == 0 and qemu.stdout.startswith("QEMU emulator version 10.")
    python = host.run(f"{loader} {PAYLOAD}/bin/python3 -c 'import pyroute2; print(\"ok\")'")
    assert python.stdout.strip() == "ok"


def test_daemon_json_gains_the_runtime_and_keeps_the_hosts_own_setting(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["log-level"] == "warn"
    assert config["runtimes"] == {"runcvm": {"path": f"{PAYLOAD}/bin/runcvm-runtime"}}
    assert "runc" not in config["runtimes"]


def test_dockerd_lists_the_runtime(host):
    runtimes = json.loads(host.check_output("docker info --format '{{json .Runtimes}}'"))
    assert "runcvm" in runtimes and "runc" in runtimes


def test_rp_filter_is_loose_now_and_after_a_reboot(host):
    assert host.file("/proc/sys/net/ipv4/conf/all/rp_filter").content_string.strip() == "2"
    assert "net.ipv4.conf.all.rp_filter=2" in host.file("/etc/sysctl.d/90-runcvm.conf").content_string


def test_tun_is_loaded_at_boot(host):
    # The prepare step gave the host the modules-load.d directory systemd hosts have.
    assert "tun" in host.file("/etc/modules-load.d/runcvm.conf").content_string.split()


def test_the_default_kernel_is_installed_as_latest(host):
    latest = host.file(f"{PAYLOAD}/kernels/debian/latest")
    assert latest.is_symlink
    assert host.file(f"{PAYLOAD}/kernels/debian/{latest.linked_to.rsplit('/', 1)[-1]}/vmlinuz").is_file


def test_docker_run_boots_a_vm_inside_the_host(host):
    latest_kernel = host.file(f"{PAYLOAD}/kernels/debian/latest").linked_to.rsplit("/", 1)[-1]
    vm = host.run(f"docker run --rm --runtime=runcvm {TEST_IMAGE} uname -r")
    assert vm.rc == 0, vm.stderr
    # The guest runs the installed kernel, not the host's.
    assert vm.stdout.strip() == latest_kernel
    assert latest_kernel != host.check_output("uname -r")
    # Same answer as runc for what runc defines: the exit status.
    assert host.run(f"docker run --rm --runtime=runcvm {TEST_IMAGE} sh -c 'exit 3'").rc == 3
    assert host.run(f"docker run --rm --runtime=runc {TEST_IMAGE} sh -c 'exit 3'").rc == 3


def test_the_hosts_defaults_start_vms_warm(host):
    """install_vm_defaults: {warm_start: true}: the runs above made the template, this one is restored from it."""
    assert host.file("/etc/runcvm/defaults.env").content_string.splitlines()[1:] == ["RUNCVM_WARM_START=1"]
    vm = host.run(f"docker run --rm --runtime=runcvm -e RUNCVM_TIMING=1 {TEST_IMAGE} true")
    assert vm.rc == 0 and " restore=" in vm.stderr, vm.stderr
