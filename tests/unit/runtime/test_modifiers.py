"""config.json rewriting at create, on config.json files captured from dockerd (tests/unit/runtime/configs),
and the plan it decides. Nothing here reads the host's /dev/kvm or network namespace."""

from __future__ import annotations

import copy
import dataclasses
import pathlib

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.accel import KvmStatus
from oci_cases import CASES, HOST_NAMESPACE, NO_KVM, context, load
from runcvm import modifiers, namespaces


def rewritten(case, tmp_path, kernels, config=None):
    config = load(case, tmp_path) if config is None else config
    return config, modifiers.rewrite(config, context(tmp_path, kernels))


@pytest.mark.parametrize("case", CASES)
def test_the_plan_survives_its_json_form(case, tmp_path, kernels):
    _config, vm_plan = rewritten(case, tmp_path, kernels)
    assert plan.loads(plan.VmPlan, plan.dumps(vm_plan), "plan") == vm_plan


@pytest.mark.parametrize("case", CASES)
def test_a_rewritten_spec_is_not_rewritten_again(case, tmp_path, kernels):
    config, _plan = rewritten(case, tmp_path, kernels)
    with pytest.raises(modifiers.SpecError, match="already runs RunCVM's launcher"):
        modifiers.rewrite(copy.deepcopy(config), context(tmp_path, kernels))


@pytest.mark.parametrize("case", CASES)
def test_the_launcher_runs_first_and_the_plan_holds_the_original_process(case, tmp_path, kernels):
    old = load(case, tmp_path)
    new, vm_plan = rewritten(case, tmp_path, kernels, copy.deepcopy(old))
    workload = vm_plan.workload
    assert new["process"]["args"] == [layout.LAUNCHER]
    assert list(workload.args) == old["process"]["args"]
    assert workload.cwd == old["process"]["cwd"]
    assert list(workload.env) == [e for e in old["process"]["env"] if not e.startswith("RUNCVM_")]
    assert workload.user.uid == old["process"]["user"]["uid"]
    assert new["process"]["user"] == {"uid": 0, "gid": 0}
    assert vm_plan.kernel.kernel == "/.runcvm/guest/kernels/debian/6.12.1-cloud/vmlinuz"
    assert not any(entry.startswith("RUNCVM_PLAN") for entry in new["process"]["env"])


@pytest.mark.parametrize("case", CASES)
def test_mount_order(case, tmp_path, kernels):
    old = load(case, tmp_path)
    new, _plan = rewritten(case, tmp_path, kernels, copy.deepcopy(old))
    destinations = [m["destination"] for m in new["mounts"]]
    assert destinations[:6] == ["/.runcvm", "/.runcvm/guest", "/vm", "/vm/.runcvm", "/vm/.runcvm/guest",
                                "/vm/.runcvm/dns"]
    assert destinations[-3:] == ["/run", layout.PLAN_FILE, "/vm/lib/modules/6.12.1-cloud"]
    state, payload, root, vm_state, vm_payload, _dns = new["mounts"][:6]
    assert state["source"] == vm_state["source"] == str(tmp_path / modifiers.STATE_NAME)
    assert "ro" not in state["options"] and "ro" in vm_state["options"]  # the launcher writes, the VM reads
    assert payload["source"] == vm_payload["source"] == str(kernels) and "ro" in vm_payload["options"]
    assert root["source"] == str(tmp_path / "rootfs")
    plan_mount = new["mounts"][-2]
    assert plan_mount["source"] == str(tmp_path / modifiers.PLAN_NAME) and "ro" in plan_mount["options"]
    for mount in old["mounts"]:
        if mount["type"] == "bind" and mount["destination"] != "/sbin/docker-init":
            assert "/vm" + mount["destination"] in destinations
        elif mount["type"] == "tmpfs" and not mount["destination"].startswith("/dev"):
            assert mount["destination"] not in destinations


def test_user_and_groups(tmp_path, kernels):
    _config, vm_plan = rewritten("user-workdir", tmp_path, kernels)
    assert vm_plan.workload.user == plan.User(uid=1000, gid=1000, groups=(1000, 27), umask=None)
    assert vm_plan.workload.cwd == "/tmp"


def test_docker_init_stays_the_workloads_parent_as_under_runc(tmp_path, kernels):
    new, vm_plan = rewritten("init", tmp_path, kernels)
    assert vm_plan.workload.args == ("/sbin/docker-init", "--", "true")
    assert "/vm/sbin/docker-init" in [m["destination"] for m in new["mounts"]]


def test_an_init_the_vm_cannot_see_is_dropped_with_its_mount(tmp_path, kernels):
    config = load("init", tmp_path)
    config["process"]["args"][0] = "/dev/init"
    for mount in config["mounts"]:
        if mount["destination"] == "/sbin/docker-init":
            mount["destination"] = "/dev/init"
    new, vm_plan = rewritten("init", tmp_path, kernels, config)
    assert vm_plan.workload.args == ("true",)
    assert not any(m["destination"].endswith("/dev/init") for m in new["mounts"])


def test_tmpfs_goes_to_the_vm(tmp_path, kernels):
    _config, vm_plan = rewritten("tmpfs", tmp_path, kernels)
    assert vm_plan.tmpfs == (plan.Tmpfs("/scratch", ("noexec", "nosuid", "nodev", "size=64m", "mode=1777")),)


@pytest.mark.parametrize("case, vm_mib, limit_mib, swap_mib, cpus", [
    ("plain", 512, 768, None, None),
    ("memory-cpus", 300, 556, 856, 2),
])
def test_memory_and_cpus(case, vm_mib, limit_mib, swap_mib, cpus, tmp_path, kernels):
    new, vm_plan = rewritten(case, tmp_path, kernels)
    memory = new["linux"]["resources"]["memory"]
    assert vm_plan.memory_mib == vm_mib
    assert memory["limit"] == limit_mib * 2**20
    assert memory.get("swap") == (swap_mib * 2**20 if swap_mib else None)
    assert vm_plan.cpus == cpus


def test_too_little_memory_names_the_option(tmp_path, kernels):
    config = load("memory-cpus", tmp_path)
    config["linux"]["resources"]["memory"]["limit"] = 32 * 2**20
    with pytest.raises(modifiers.SpecError, match="--memory 32m is too small for a VM: it needs at least 64 MiB"):
        rewritten("memory-cpus", tmp_path, kernels, config)


def test_devices_capabilities_and_seccomp(tmp_path, kernels):
    new, _plan = rewritten("plain", tmp_path, kernels)
    assert {d["path"] for d in new["linux"]["devices"]} >= {"/dev/kvm", "/dev/net/tun"}
    assert {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"} in \
        new["linux"]["resources"]["devices"]
    for name in ("bounding", "effective", "permitted"):
        assert "CAP_NET_ADMIN" in new["process"]["capabilities"][name]
    assert "seccomp" not in new["linux"]


def test_options_are_parsed_once_into_the_plan(tmp_path, kernels):
    config = load("plain", tmp_path)
    config["process"]["env"] += ["RUNCVM_KERNEL_APPEND=quiet", "RUNCVM_TIMING=1", "RUNCVM_DISKS=/disks/a,/a,ext4,1G"]
    _config, vm_plan = rewritten("plain", tmp_path, kernels, config)
    assert vm_plan.options.kernel_append == "quiet" and vm_plan.options.timing
    assert [disk.dst for disk in vm_plan.options.disks] == ["/a"]


def test_the_hosts_defaults_apply_under_the_containers_own_options(tmp_path, kernels):
    (tmp_path / "defaults.env").write_text("# set by the install role\nRUNCVM_WARM_START=1\n\nRUNCVM_KERNEL_APPEND=quiet\n")
    config = load("plain", tmp_path)
    config["process"]["env"].append("RUNCVM_KERNEL_APPEND=debug")
    config, vm_plan = rewritten("plain", tmp_path, kernels, config)
    assert vm_plan.options.warm_start and vm_plan.options.kernel_append == "debug"
    assert not any(entry.startswith("RUNCVM_WARM_START") for entry in config["process"]["env"])


@pytest.mark.parametrize("defaults, message", [
    ("RUNCVM_ACCEL=fast\n", "defaults.env: RUNCVM_ACCEL=fast is not one of auto, kvm, tcg"),
    ("\nWARM_START=1\n", "defaults.env, line 2: 'WARM_START=1' is not a RUNCVM_\\*=value line"),
])
def test_a_bad_defaults_file_fails_the_create_naming_it(tmp_path, kernels, defaults, message):
    (tmp_path / "defaults.env").write_text(defaults)
    with pytest.raises(modifiers.SpecError, match=message):
        rewritten("plain", tmp_path, kernels)


@pytest.mark.parametrize("env, message", [
    ("RUNCVM_KERNEL=../x", "RUNCVM_KERNEL=../x is invalid"),
    ("RUNCVM_ACCEL=fast", "RUNCVM_ACCEL=fast is not one of auto, kvm, tcg"),
    ("RUNCVM_DISKS=/disks/a,/a,ext4,1Gb", "RUNCVM_DISKS entry ./disks/a,/a,ext4,1Gb.: size .1Gb. is not a size"),
    ("RUNCVM_QEMU_DISPLAY=curses", "RUNCVM_QEMU_DISPLAY=curses is not one of none, vnc"),
    ("RUNCVM_HANDOFF={}", "RUNCVM_HANDOFF is not a RunCVM option"),
])
def test_bad_options_fail_the_create(env, message, tmp_path, kernels):
    config = load("plain", tmp_path)
    config["process"]["env"].append(env)
    with pytest.raises(modifiers.SpecError, match=message):
        rewritten("plain", tmp_path, kernels, config)


@pytest.mark.parametrize("usable, accel, accelerator, warned", [
    (True, "auto", "kvm", False), (False, "auto", "tcg", True), (True, "tcg", "tcg", False),
    (False, "tcg", "tcg", False), (True, "kvm", "kvm", False),
])
def test_the_accelerator_is_decided_at_create(tmp_path, kernels, usable, accel, accelerator, warned):
    config = load("plain", tmp_path)
    config["process"]["env"].append(f"RUNCVM_ACCEL={accel}")
    status = KvmStatus(usable, "KVM is usable" if usable else NO_KVM.reason)
    vm_plan = modifiers.rewrite(config, context(tmp_path, kernels, kvm=status))
    assert vm_plan.accelerator == accelerator
    assert vm_plan.accelerator_warning == (f"warning: TCG (software emulation, slow): {NO_KVM.reason}" if warned else None)


def test_forcing_kvm_where_it_cannot_run_fails_the_create(tmp_path, kernels):
    config = load("plain", tmp_path)
    config["process"]["env"].append("RUNCVM_ACCEL=kvm")
    with pytest.raises(modifiers.SpecError, match="RUNCVM_ACCEL=kvm was requested but KVM is not usable"):
        rewritten("plain", tmp_path, kernels, config)


def test_an_image_kernel_is_found_through_symlinks(tmp_path, kernels):
    config = load("plain", tmp_path)
    root = pathlib.Path(config["root"]["path"])
    (root / "boot").mkdir()
    (root / "boot" / "vmlinuz-6.1").write_bytes(b"k")
    (root / "boot" / "initrd.img-6.1").write_bytes(b"i")
    (root / "vmlinuz").symlink_to("boot/vmlinuz-6.1")
    (root / "initrd.img").symlink_to("/boot/initrd.img-6.1")
    config, vm_plan = rewritten("plain", tmp_path, kernels, config)
    kernel = vm_plan.kernel
    assert (kernel.source, kernel.kernel, kernel.initrd) == ("image", "/vmlinuz", "/initrd.img")
    assert not any(m["destination"].startswith("/vm/lib/modules") for m in config["mounts"])


def with_network_namespace(config, path=None, present=True):
    namespaces = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
    if present:
        namespaces.append({"type": "network", **({"path": path} if path else {})})
    config["linux"]["namespaces"] = namespaces
    return config


def test_a_namespace_of_the_containers_own_is_taken_and_the_hosts_recorded(tmp_path, kernels):
    _config, vm_plan = rewritten("plain", tmp_path, kernels, with_network_namespace(load("plain", tmp_path)))
    assert vm_plan.host_network_namespace == HOST_NAMESPACE


@pytest.mark.parametrize("path, present, message", [
    (None, False, "--network=host is not supported by RunCVM"),  # runc's way: no namespace entry
    ("/proc/self/ns/net", True, "--network=host is not supported by RunCVM"),  # dockerd's: the host's, by path
    ("/proc/4242/ns/net", True, "--network=container:.*joins another network namespace, /proc/4242/ns/net.*not supported by RunCVM"),
])
def test_a_network_namespace_not_the_containers_own_is_refused(tmp_path, kernels, path, present, message):
    config = with_network_namespace(load("plain", tmp_path), path, present)
    before = copy.deepcopy(config)
    host = modifiers.namespace_id("/proc/self/ns/net")
    with pytest.raises(modifiers.SpecError, match=message) as refused:
        modifiers.rewrite(config, context(tmp_path, kernels, host_namespace=host))
    assert "use the default bridge network, a user-defined network" in str(refused.value)
    assert config == before


def test_a_namespace_made_beforehand_that_no_process_is_in_is_the_containers_own(tmp_path, kernels):
    """Podman's way: it makes the namespace, has netavark configure it, then names it in the spec."""
    config = with_network_namespace(load("plain", tmp_path), "/run/netns/netns-of-a-new-container")
    asked = []
    fresh = dataclasses.replace(context(tmp_path, kernels), network_namespace_in_use=asked.append)
    modifiers.rewrite(config, fresh)
    assert asked == ["/run/netns/netns-of-a-new-container"]


def test_a_namespace_is_in_use_while_a_process_is_in_it_or_when_it_cannot_be_told(tmp_path):
    assert namespaces.in_use("/proc/self/ns/net")
    assert namespaces.in_use(str(tmp_path / "no-namespace-here"))


def test_the_pids_limit_goes_into_the_vm_and_the_container_keeps_room_for_its_helpers(tmp_path, kernels):
    config = load("plain", tmp_path)
    config["linux"]["resources"]["pids"] = {"limit": 64}
    new, vm_plan = rewritten("plain", tmp_path, kernels, config)
    assert vm_plan.pids_limit == 64
    assert new["linux"]["resources"]["pids"]["limit"] == 64 + modifiers.PIDS_OVERHEAD
    assert rewritten("plain", tmp_path, kernels)[1].pids_limit is None


def image_with(root: pathlib.Path, links: dict[str, str], files: tuple[str, ...]) -> None:
    """A merged-/usr image: its files, and symlinks as the image has them."""
    for path in files:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("")
    for path, target in links.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).symlink_to(target)


@pytest.mark.parametrize("args, env, option, expected", [
    (["/sbin/init"], [], None, "systemd"),                     # /sbin -> usr/sbin, init -> ../lib/systemd/systemd
    (["/lib/systemd/systemd", "--log-level=info"], [], None, "systemd"),
    (["init"], ["PATH=/usr/local/bin:/usr/sbin:/usr/bin"], None, "systemd"),
    (["/bin/init"], [], None, "busybox"),                      # busybox's applet link
    (["/bin/sh", "-c", "exec /sbin/init"], [], None, None),    # not the first argument: not found
    (["/bin/busybox", "sh"], [], None, None),
    (["/sbin/init"], [], "none", None),
    (["/bin/sh"], [], "systemd", "systemd"),                   # the user says so
], ids=str)
def test_an_init_system_is_found_by_what_the_workload_resolves_to(tmp_path, kernels, args, env, option, expected):
    config = load("plain", tmp_path)
    root = pathlib.Path(config["root"]["path"])
    image_with(root, {"sbin": "usr/sbin", "lib": "usr/lib", "usr/sbin/init": "../lib/systemd/systemd",
                      "bin/init": "busybox", "bin/sh": "busybox"},
               ("usr/lib/systemd/systemd", "bin/busybox"))
    config["process"]["args"] = args
    config["process"]["env"] = [*env, *([f"RUNCVM_INIT_SYSTEM={option}"] if option else [])]
    vm_plan = modifiers.rewrite(config, context(tmp_path, kernels))
    assert vm_plan.init_system == expected


@pytest.mark.parametrize("args, option, expected", [
    (["true"], None, "hybrid"),          # the original's default without an init system
    (["/sbin/init"], None, "none"),      # systemd mounts its own
    (["true"], "2", "cgroup2"),
    (["true"], "mixed", "hybrid"),
    (["/sbin/init"], "cgroup1", "cgroup1"),
], ids=str)
def test_the_vms_cgroup_filesystems_follow_the_init_system_or_the_option(tmp_path, kernels, args, option, expected):
    config = load("plain", tmp_path)
    image_with(pathlib.Path(config["root"]["path"]), {"sbin/init": "/lib/systemd/systemd"}, ("lib/systemd/systemd",))
    config["process"]["args"] = args
    config["process"]["env"] = [f"RUNCVM_CGROUPFS={option}"] if option else []
    assert modifiers.rewrite(config, context(tmp_path, kernels)).cgroupfs == expected


def with_env(tmp_path, *variables):
    config = load("plain", tmp_path)
    config["process"]["env"] = list(variables)
    return config


def test_huge_pages_are_refused_with_the_numbers_where_the_host_has_too_few(tmp_path, kernels):
    config = with_env(tmp_path, "RUNCVM_HUGETLB=1")
    few = dataclasses.replace(context(tmp_path, kernels), huge_pages_free_mib=lambda: 256)
    with pytest.raises(modifiers.SpecError, match="RUNCVM_HUGETLB=1 needs 512 MiB of free huge pages.* has 256 MiB"):
        modifiers.rewrite(copy.deepcopy(config), few)
    enough = dataclasses.replace(context(tmp_path, kernels), huge_pages_free_mib=lambda: 1024)
    assert modifiers.rewrite(config, enough).options.hugetlb


def test_the_hosts_free_huge_pages_are_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684564 kB\nHugePages_Total:     600\nHugePages_Free:      512\n"
                       "Hugepagesize:       2048 kB\n")
    assert modifiers.host_huge_pages_free_mib(str(meminfo)) == 1024


def test_sys_admin_gives_the_container_cap_sys_admin(tmp_path, kernels):
    plain, _plan = rewritten("plain", tmp_path, kernels)
    config = with_env(tmp_path, "RUNCVM_SYS_ADMIN=1")
    modifiers.rewrite(config, context(tmp_path, kernels))
    assert "CAP_SYS_ADMIN" not in plain["process"]["capabilities"]["bounding"]
    assert all("CAP_SYS_ADMIN" in config["process"]["capabilities"][name] for name in ("bounding", "effective", "permitted"))


def test_the_kernels_modules_cover_all_of_lib_modules_when_asked(tmp_path, kernels):
    config = with_env(tmp_path, "RUNCVM_KERNEL_MOUNT_LIB_MODULES=1")
    modifiers.rewrite(config, context(tmp_path, kernels))
    (modules,) = [m for m in config["mounts"] if m["destination"].startswith("/vm/lib/modules")]
    assert modules["destination"] == "/vm/lib/modules" and modules["source"].endswith("/modules")
    assert "ro" in modules["options"]


def test_a_warm_start_mounts_the_hosts_templates_and_the_root_a_template_boots_on(tmp_path, kernels):
    config = load("plain", tmp_path)
    config["process"]["env"].append("RUNCVM_WARM_START=1")
    templates = tmp_path / "templates"
    modifiers.rewrite(config, dataclasses.replace(context(tmp_path, kernels), templates_dir=str(templates)))
    added = {m["destination"]: m for m in config["mounts"]
             if m["destination"].startswith((layout.TEMPLATES_DIR, layout.TEMPLATE_ROOT))}
    assert len(added) == 3
    assert added[layout.TEMPLATES_DIR]["source"] == str(templates) and templates.is_dir()
    assert added[layout.TEMPLATE_ROOT + layout.STATE_DIR]["source"] == str(tmp_path / modifiers.STATE_NAME)
    assert added[layout.TEMPLATE_ROOT + layout.GUEST_DIR]["source"] == str(kernels)
    assert all("ro" in mount["options"] for name, mount in added.items() if name != layout.TEMPLATES_DIR)
    # Without the option, none of them.
    plain, _plan = rewritten("plain", tmp_path, kernels)
    assert not [m for m in plain["mounts"] if m["destination"].startswith((layout.TEMPLATES_DIR, layout.TEMPLATE_ROOT))]
