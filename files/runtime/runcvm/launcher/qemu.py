"""The command lines of a container's VM: QEMU, and the virtiofsd processes serving it the root
filesystem (and, with RUNCVM_VIRTIOFSD_CACHE=programs, its program directories)."""

from __future__ import annotations

import dataclasses
import json
import os

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan

# TCG's translation cache; QEMU's default (up to 1 GiB) would not fit the container's overhead.
TCG_CACHE_MIB = 64
# TCG's CPU: every feature QEMU emulates but fast `rep movsb`/`rep stosb` (ERMS, FSRM). With them
# the guest's kernel and libc copy and clear memory a byte an iteration, and TCG runs each
# iteration as a loop of its own; without them they copy 8 bytes at a time: reading a file
# 2 to 4 times as fast, starting a process twice as fast (bench/workloads.py).
TCG_CPU = "max,erms=off,fsrm=off"
# QEMU's own seccomp filter: no obsolete system calls, no setuid or new privileges, no new
# processes, no scheduler or memory-policy changes. A guest that escaped into QEMU can do none.
SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
# Each NIC sits on a PCIe root port of its own, so that it can be unplugged (`docker network
# disconnect`; q35's root bus takes no hot-plug), and this many more ports wait empty for the
# networks `docker network connect` adds while the VM runs.
SPARE_NIC_PORTS = 4
# QEMU's -vnc takes a display number: the port less this.
VNC_BASE_PORT = 5900


# A template VM's NICs (RUNCVM_WARM_START) have a backend that needs nothing of the host, and
# MACs of their own (plan.template_mac), which the guest replaces with the container's once restored.
TEMPLATE_NETDEV = "hubport"
# How a template is saved and restored: the guest's RAM at fixed offsets of the file, zero pages
# left out (a sparse file), which QEMU loads with large reads rather than page by page.
SAVED_VM_FORMAT = ["-global", "migration.mapped-ram=on"]
# A template is saved stopped, but without its run state: the QEMU that restores it runs the VM as
# soon as it is loaded, with no monitor command, while the launcher still moves the network; the
# guest waits for its config (guest/init.py).
TEMPLATE_SAVING = [*SAVED_VM_FORMAT, "-global", "migration.store-global-state=off"]
# What a template's key covers besides the VM's command line; a new format makes new templates.
TEMPLATE_FORMAT = 2


def nic_port(index: int) -> str:
    return f"nicport{index}"


def nic_ids(interface: str) -> tuple[str, str]:
    """QEMU's ids of the netdev and the NIC that give the VM the container's `interface`."""
    return f"net-{interface}", f"nic-{interface}"


def tap_netdev(interface: str, tap: str) -> dict[str, str]:
    """The tap backend of a NIC, as QMP's netdev_add takes it (and -netdev, joined)."""
    return {"type": "tap", "id": nic_ids(interface)[0], "ifname": tap, "script": "no", "downscript": "no"}


def nic_device(interface: str, mac: str, port: str) -> dict[str, str]:
    """A NIC on root port `port`, as QMP's device_add takes it (and -device, joined)."""
    netdev, nic = nic_ids(interface)
    return {"driver": "virtio-net-pci", "id": nic, "netdev": netdev, "mac": mac, "bus": port}


def _joined(properties: dict[str, str], first: str) -> str:
    return ",".join([properties[first], *(f"{key}={value}" for key, value in properties.items() if key != first)])


@dataclasses.dataclass(frozen=True)
class Vm:
    accelerator: str                 # kvm or tcg
    memory_mib: int
    cpus: int
    kernel: str
    initrd: str
    root_arguments: str
    nics: tuple[tuple[str, str, str], ...]  # (container interface, tap device, VM MAC)
    console: str                     # where the serial console goes: a file, or /proc/self/fd/1 or 2
    kernel_append: str = ""
    kernel_debug: bool = False
    disks: tuple[tuple[str, str], ...] = ()  # (backing file, serial)
    init_system: str | None = None
    hugetlb: bool = False
    bios_debug: bool = False
    vnc_address: str | None = None  # where QEMU serves the VM's screen over VNC, if it has one
    program_share: bool = False     # a second virtiofs device: the root's program directories, cached


# What an init system is told on the kernel's command line. systemd: no login prompt on the
# console, which is the container's log (docker exec is the way in); images without udev would
# also wait 90 s for the console's device unit, then call the system degraded.
INIT_SYSTEM_ARGUMENTS = {"systemd": "systemd.getty_auto=0"}


def kernel_command_line(vm: Vm, template: bool = False) -> str:
    """The guest kernel's command line; `template`: a warm start's template VM's, which tells its
    guest init so."""
    verbosity = "loglevel=7" if vm.kernel_debug else "quiet loglevel=0"
    # With a screen, the kernel's console shows there too; the last console= stays the serial
    # line, the one /dev/console is.
    screen = "console=tty0" if vm.vnc_address else None
    # apparmor=0: Debian's kernels enable AppArmor, and then dockerd in the VM refuses to run
    # containers unless the image has apparmor_parser; an image's own profiles are not the VM's
    # boundary. RUNCVM_KERNEL_APPEND=apparmor=1 turns it back on (the last one counts).
    parts = [screen, "console=ttyS0", vm.root_arguments, "rw", f"init={layout.GUEST_INIT}", "panic=-1", "apparmor=0", verbosity,
             INIT_SYSTEM_ARGUMENTS.get(vm.init_system or ""), layout.TEMPLATE_ARGUMENT if template else None,
             vm.kernel_append]
    return " ".join(part for part in parts if part)


def command(vm: Vm, template: bool = False, incoming: str | None = None) -> list[str]:
    """QEMU's command line for `vm`; `template`: the VM a warm start's template is saved from
    (NICs without the container's taps and MACs); `incoming`: a saved template to restore."""
    accelerator = "kvm" if vm.accelerator == "kvm" else f"tcg,tb-size={TCG_CACHE_MIB}"
    args = [
        f"{layout.GUEST_DIR}/bin/qemu-system-x86_64", "-L", f"{layout.GUEST_DIR}/share/qemu",
        "-M", "q35", "-accel", accelerator, "-cpu", "host" if vm.accelerator == "kvm" else TCG_CPU,
        "-m", f"{vm.memory_mib}M", "-smp", str(vm.cpus),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-sandbox", SANDBOX,
        # vhost-user needs the guest's memory shared with virtiofsd.
        "-object", f"memory-backend-memfd,id=mem,size={vm.memory_mib}M,share=on{',hugetlb=on' if vm.hugetlb else ''}",
        "-numa", "node,memdev=mem",
        "-chardev", f"socket,id=rootfs,path={layout.VIRTIOFS_SOCKET}",
        "-device", f"vhost-user-fs-pci,chardev=rootfs,tag={layout.VIRTIOFS_TAG}",
        *(["-chardev", f"socket,id=programs,path={layout.PROGRAMS_VIRTIOFS_SOCKET}",
           "-device", f"vhost-user-fs-pci,chardev=programs,tag={layout.PROGRAMS_VIRTIOFS_TAG}"] if vm.program_share else []),
        "-device", "virtio-serial-pci,id=ports",
        "-chardev", f"socket,id=agent,path={layout.AGENT_SOCKET},server=on,wait=off",
        "-device", f"virtserialport,bus=ports.0,chardev=agent,name={layout.AGENT_PORT_NAME}",
        "-device", "virtio-rng-pci",
        "-serial", f"file:{vm.console}",
        # Resizes the VM's memory for `docker update`: inflated, it takes memory from the guest,
        # whose MemTotal shrinks (no deflate-on-oom), and QEMU gives those pages back to the host.
        "-device", "virtio-balloon-pci,id=balloon",
        # The launcher's network follower hot-plugs NICs through one monitor; the runtime's
        # `update` resizes the balloon through the other.
        "-qmp", f"unix:{layout.QMP_SOCKET},server=on,wait=off",
        "-qmp", f"unix:{layout.UPDATE_QMP_SOCKET},server=on,wait=off",
    ]
    for index in range(len(vm.nics) + SPARE_NIC_PORTS):
        # No I/O window: the ports hold modern virtio NICs only, and q35 has few I/O ports to give.
        args += ["-device", f"pcie-root-port,id={nic_port(index)},chassis={index + 1},io-reserve=0"]
    for index, (interface, tap, mac) in enumerate(vm.nics):
        netdev = {"type": TEMPLATE_NETDEV, "id": nic_ids(interface)[0], "hubid": str(index)} if template else tap_netdev(interface, tap)
        args += ["-netdev", _joined(netdev, "type"),
                 "-device", _joined(nic_device(interface, plan.template_mac(index) if template else mac, nic_port(index)), "driver")]
    for index, (path, serial) in enumerate(vm.disks):
        args += ["-drive", f"file={path},format=raw,if=none,id=disk{index},discard=unmap",
                 "-device", f"virtio-blk-pci,drive=disk{index},serial={serial}"]
    if vm.vnc_address:
        # A standard VGA card (the guest's text console needs no driver) and QEMU's PS/2 keyboard,
        # served on the launcher's address on the bridge; the guest relays its port there.
        display = layout.VNC_PORT - VNC_BASE_PORT
        args += ["-device", "VGA", "-vnc", f"{vm.vnc_address}:{display},password=off"]
    if vm.bios_debug:  # SeaBIOS writes its debug output to QEMU's debug console port
        args += ["-chardev", "file,id=firmware,path=/proc/self/fd/2", "-device", "isa-debugcon,iobase=0x402,chardev=firmware"]
    if template or incoming:
        # A new generation ID at each QEMU start: a restored guest's kernel reseeds its random
        # number generator, which every VM restored from the template would otherwise share.
        args += ["-device", "vmgenid"]
    args += ["-kernel", vm.kernel, "-initrd", vm.initrd, "-append", kernel_command_line(vm, template)]
    if template:
        args += TEMPLATE_SAVING
    if incoming:  # QEMU exits if it cannot load it
        args += [*SAVED_VM_FORMAT, "-incoming", f"file:{incoming}"]
    return args


def template_key(vm: Vm, shares: tuple[Share, ...]) -> str:
    """What a template for `vm`, served by `shares`, depends on: its template command line
    (memory, vCPUs, NICs, devices, kernel and its command line), virtiofsd's, and the manifests of
    the kernel's build and of the payload, which hold the digest of every file. OSError where a
    manifest is missing. Hashed in a child: hashlib loads OpenSSL, whose pages (3 MiB) a restored
    VM's launcher would otherwise hold for the VM's whole life."""
    inputs = [json.dumps({"format": TEMPLATE_FORMAT, "command": command(vm, template=True),
                          "virtiofsd": [share.command for share in shares]}).encode()]
    for manifest in (os.path.join(os.path.dirname(vm.kernel), "manifest.json"), f"{layout.GUEST_DIR}/manifest.json"):
        with open(manifest, "rb") as handle:
            inputs.append(handle.read())
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # never back into the launcher's code
        try:
            import hashlib  # pylint: disable=import-outside-toplevel  # the docstring
            digest = hashlib.sha256()
            for part in inputs:
                digest.update(part)
            os.write(write_end, digest.hexdigest()[:32].encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with open(read_end, "rb") as answer:
        key = answer.read().decode()
    os.waitpid(child, 0)
    if len(key) != 32:
        raise OSError(f"hashing the template's inputs failed in a child (pid {child})")
    return key


@dataclasses.dataclass(frozen=True)
class Share:
    """A virtiofsd serving the VM: `name` is the launcher's for it, `socket` where QEMU reaches it."""
    name: str
    socket: str
    command: tuple[str, ...]


def shares(cache: str, sys_admin: bool = False, shared_dir: str = layout.VM_ROOT) -> tuple[Share, ...]:
    """The virtiofsd processes serving the container's root, as the launcher sees it (or
    `shared_dir`), with `cache` (RUNCVM_VIRTIOFSD_CACHE): one, or with `programs` two, the root's
    served as `auto` and the same tree as `always` for the guest's program directories.
    `sys_admin` lets the guest's root use CAP_SYS_ADMIN on it (RUNCVM_SYS_ADMIN)."""
    if cache == "programs":
        return (_share("virtiofsd", layout.VIRTIOFS_SOCKET, "auto", sys_admin, shared_dir),
                _share("virtiofsd-programs", layout.PROGRAMS_VIRTIOFS_SOCKET, "always", sys_admin, shared_dir))
    return (_share("virtiofsd", layout.VIRTIOFS_SOCKET, "never" if cache == "none" else cache, sys_admin, shared_dir),)


def _share(name: str, socket: str, cache: str, sys_admin: bool, shared_dir: str) -> Share:
    return Share(name, socket, (f"{layout.GUEST_DIR}/bin/virtiofsd", f"--socket-path={socket}", f"--shared-dir={shared_dir}",
                                "--sandbox=chroot", "--announce-submounts", f"--cache={cache}", "--log-level=error",
                                *(["--modcaps=+sys_admin"] if sys_admin else [])))
