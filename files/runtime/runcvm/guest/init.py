"""RunCVM's init: PID 1 of the VM.

It mounts what a Linux system needs, gives the VM the container's network, hostname, DNS, tmpfs
mounts and disks, then serves the launcher over the agent port (guest/agent.py): it runs the
workload as PID 1 of a PID namespace of its own (as runc does, so `echo $$` prints 1 and unhandled
signals are ignored), relays its streams and signals, reports its exit status and powers the VM off.

An init system (systemd, busybox init) gets the VM itself instead: this process becomes it, PID 1
of the VM, and the agent runs on beside it in a child forked first, serving `docker exec` and
passing the stop signal on as the init's own request to power off, which ends the VM.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan
from runcvm.guest import display, log, network, session, system
from runcvm.guest.agent import Agent

VIRTIO_PORTS = "/sys/class/virtio-ports"
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_FLAGS = system.MS_NOSUID | system.MS_NODEV | system.MS_NOEXEC
# The cgroup the workload and its execs run in when --pids-limit sets how many processes they may have.
WORKLOAD_CGROUP = "workload"
# How often the VM looks for its config until the launcher has written it: a lookup on virtiofs each.
CONFIG_POLL_SECONDS = 0.01
# The cgroup filesystems a template mounts before it is saved: those of a workload that is no init
# system (modifiers.py), which a VM restored from it then has at no cost (0.1-0.15 s under TCG).
TEMPLATE_CGROUPFS = "hybrid"


def mount_system() -> None:
    for directory in ("/dev/pts", "/dev/shm"):
        os.makedirs(directory, exist_ok=True)
    system.mount("devpts", "/dev/pts", "devpts", system.MS_NOSUID | system.MS_NOEXEC,
                 "mode=0620,ptmxmode=0666,gid=5")
    system.mount("shm", "/dev/shm", "tmpfs", system.MS_NOSUID | system.MS_NODEV, "mode=1777")
    for link, target in (("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
                         ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2")):
        if not os.path.lexists(link):
            os.symlink(target, link)


def mount_cgroups(mode: str, mounted: str = "none") -> None:
    """cgroup filesystems as RUNCVM_CGROUPFS says (options.CGROUPFS_MODES), as the original
    RunCVM mounts them: v1 controllers the kernel lacks are skipped. `mounted`: the mode already
    mounted (a template's), kept if it is the one asked for, else unmounted first."""
    if mode == mounted:
        return
    if mounted != "none":
        system.unmount_tree(CGROUP_ROOT)
    if mode == "none" or not os.path.isdir(CGROUP_ROOT):
        return
    if mode == "cgroup2":
        system.mount("cgroup2", CGROUP_ROOT, "cgroup2", CGROUP_FLAGS)
        return
    system.mount("cgroup", CGROUP_ROOT, "tmpfs", CGROUP_FLAGS, "mode=755")
    for controller in v1_controllers():
        directory = f"{CGROUP_ROOT}/{controller}"
        os.makedirs(directory, exist_ok=True)
        try:
            system.mount("cgroup", directory, "cgroup", CGROUP_FLAGS, controller)
        except OSError:
            os.rmdir(directory)
    if mode == "hybrid":
        os.makedirs(f"{CGROUP_ROOT}/unified", exist_ok=True)
        system.mount("cgroup2", f"{CGROUP_ROOT}/unified", "cgroup2", CGROUP_FLAGS)


def v1_controllers() -> list[str]:
    """The controllers /proc/cgroups lists as enabled."""
    try:
        with open("/proc/cgroups", encoding="ascii") as table:
            rows = [line.split() for line in table if not line.startswith("#")]
    except OSError:
        return []
    return [row[0] for row in rows if len(row) == 4 and row[3] == "1"]


def apply_config(config: plan.GuestConfig, mounted_cgroupfs: str) -> str | None:
    """Set the VM up as the launcher says, with the cgroup filesystems of `mounted_cgroupfs`
    mounted already; the cgroup the sessions are to run in, if any."""
    bind_program_dirs(config.program_dirs)
    mount_cgroups(config.cgroupfs, mounted_cgroupfs)
    network.configure(config.network)
    socket.sethostname(config.hostname)
    if config.resolv_conf:
        system.mount(config.resolv_conf, "/etc/resolv.conf", None, system.MS_BIND)
    for tmpfs in config.tmpfs:
        os.makedirs(tmpfs.destination, exist_ok=True)
        flags, data = system.mount_options(list(tmpfs.options))
        system.mount("tmpfs", tmpfs.destination, "tmpfs", flags, data)
    mount_disks(config.disks)
    # An init system manages the VM's cgroups itself.
    return limited_cgroup(config.pids_limit, config.cgroupfs) if config.pids_limit and not config.init_system else None


def bind_program_dirs(program_dirs: tuple[str, ...]) -> None:
    """RUNCVM_VIRTIOFSD_CACHE=programs: bind `program_dirs` from the device that serves them
    cached, mounted a moment aside; the rest of the root stays on its own device."""
    if not program_dirs:
        return
    os.makedirs(layout.GUEST_PROGRAMS_MOUNT, exist_ok=True)
    system.mount(layout.PROGRAMS_VIRTIOFS_TAG, layout.GUEST_PROGRAMS_MOUNT, "virtiofs")
    for directory in program_dirs:
        system.mount(layout.GUEST_PROGRAMS_MOUNT + directory, directory, None, system.MS_BIND)
    system.unmount_tree(layout.GUEST_PROGRAMS_MOUNT)
    os.rmdir(layout.GUEST_PROGRAMS_MOUNT)


def limited_cgroup(pids_limit: int, cgroupfs: str) -> str | None:
    """A cgroup whose processes may number at most `pids_limit`, as runc's --pids-limit: in the
    v1 pids hierarchy, or in cgroup2 alone; None where the VM has no pids controller."""
    if cgroupfs == "cgroup2":
        with open(f"{CGROUP_ROOT}/cgroup.subtree_control", "w", encoding="ascii") as control:
            control.write("+pids")
        parent = CGROUP_ROOT
    elif os.path.isdir(f"{CGROUP_ROOT}/pids"):
        parent = f"{CGROUP_ROOT}/pids"
    else:
        return None
    cgroup = f"{parent}/{WORKLOAD_CGROUP}"
    os.makedirs(cgroup, exist_ok=True)
    with open(f"{cgroup}/pids.max", "w", encoding="ascii") as limit:
        limit.write(str(pids_limit))
    return cgroup


def mount_disks(disks: tuple[plan.GuestDisk, ...]) -> None:
    """Mount each RUNCVM_DISKS disk, found by the serial the launcher gave it."""
    devices = {}
    for name in os.listdir("/sys/block"):
        try:
            with open(f"/sys/block/{name}/serial", encoding="ascii") as serial:
                devices[serial.read().strip()] = f"/dev/{name}"
        except OSError:
            continue
    for disk in disks:
        if disk.serial not in devices:
            raise RuntimeError(f"the disk for {disk.dst} did not appear (no virtio_blk in the kernel?)")
        os.makedirs(disk.dst, exist_ok=True)
        system.mount(devices[disk.serial], disk.dst, disk.fs)


def agent_port() -> str:
    for port in os.listdir(VIRTIO_PORTS):
        with open(f"{VIRTIO_PORTS}/{port}/name", encoding="ascii") as handle:
            if handle.read().strip() == layout.AGENT_PORT_NAME:
                return f"/dev/{port}"
    raise OSError(f"no virtio port named {layout.AGENT_PORT_NAME}")


def become_init_system(port: int, timing: dict, disks: tuple[str, ...], init_system: str) -> None:
    """Fork the agent, wait for the workload it is asked to start, and become it. Returns only if
    the workload could not be started (the agent has told the launcher why)."""
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(read_end)
        try:
            Agent(port, timing, disks=disks, init_system=(init_system, write_end)).serve()
        finally:
            os._exit(0)
    os.close(write_end)
    os.close(port)
    with os.fdopen(read_end, "rb") as handoff:
        request = handoff.read()
    if not request:
        return
    if os.path.lexists("/.dockerenv"):
        # As the original RunCVM: systemd-detect-virt would call the VM a Docker container.
        os.rename("/.dockerenv", "/.dockerenv.runcvm")
    session.exec_as_init(plan.loads(plan.Process, request, "the init system to start"))


def wait_for_config() -> bool:
    """Wait for the VM's config, which the launcher writes once the container's network is the
    VM's, while the VM boots; whether this VM is a warm start's template, restored now as a
    container's VM. A template (TEMPLATE_ARGUMENT on its kernel command line; its root is the
    launcher's, not the image's) first does what VMs restored from it would do first (under TCG,
    each kernel and interpreter path run after a restore is translated anew): mounts the cgroup
    filesystems most ask for and resolves the plan's field types; then says so on the console, and
    the launcher saves it as it waits."""
    with open("/proc/cmdline", encoding="utf-8") as cmdline:
        template = layout.TEMPLATE_ARGUMENT in cmdline.read().split()
    if template:
        mount_cgroups(TEMPLATE_CGROUPFS)
        plan.resolve_field_types(plan.GuestConfig, plan.Process, plan.Network)
        log(layout.TEMPLATE_READY)
    while not os.path.exists(layout.GUEST_CONFIG_FILE):
        time.sleep(CONFIG_POLL_SECONDS)
    return template


def resume_from_template(config: plan.GuestConfig) -> None:
    """What a VM restored from a template must not keep of it: the state of the random number
    generator, which every VM restored from it shares; the clock of when it was saved; its MACs."""
    system.reseed_random(bytes.fromhex(config.random_seed))
    system.set_clock_from_rtc()
    network.take_container_macs(config.network)


def main() -> int:
    started = time.monotonic()
    disks: tuple[str, ...] = ()
    with open("/proc/uptime", encoding="ascii") as uptime:
        # How long the kernel and the initramfs took, from the kernel's start.
        timing = {"kernel_seconds": float(uptime.read().split()[0])}
    try:
        mount_system()
        restored = wait_for_config()
        if restored:
            started, timing = time.monotonic(), {"kernel_seconds": 0.0}
        with open(layout.GUEST_CONFIG_FILE, encoding="utf-8") as handle:
            config = plan.loads(plan.GuestConfig, handle.read(), layout.GUEST_CONFIG_FILE)
        if restored:
            resume_from_template(config)
        cgroup = apply_config(config, TEMPLATE_CGROUPFS if restored else "none")
        if config.display == "vnc":
            display.start_relay(config.network.launcher_address)
        port = os.open(agent_port(), os.O_RDWR | os.O_CLOEXEC)
        timing["setup_seconds"] = round(time.monotonic() - started, 3)
        disks = tuple(disk.dst for disk in config.disks)
        if config.init_system:
            become_init_system(port, timing, disks, config.init_system)
        Agent(port, timing, cgroup, disks).serve()
    except Exception:  # pylint: disable=broad-exception-caught
        # PID 1 must not die with a traceback nobody sees: say it on the console, then power off.
        import traceback  # pylint: disable=import-outside-toplevel  # here only: 1.4 s to import under TCG
        log("failed:\n" + traceback.format_exc())
    sys.stdout.flush()
    system.power_off(disks)
    return 0
