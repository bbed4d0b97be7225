"""The launcher: the container's PID 1. It reads the plan the runtime made at create, hands the
container's network to the VM, prepares its disks, serves the container's root filesystem with
virtiofsd, starts QEMU, then relays the workload's streams, signals and terminal size and the
`docker exec` sessions to the guest, and exits with the workload's exit status."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import termios
import tty
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan
from runcvm import protocol
from runcvm.events import signal_pipe, stop_signal_pipe
from runcvm.launcher import disks, dns, handover, host_changes, privileges, program_dirs, qemu, say
from runcvm.launcher.execs import ExecServer
from runcvm.launcher.supervisor import ChildFailed, Children, IdleWatch, cpu_seconds, describe, remove
from runcvm.launcher.timing import Timing
from runcvm.relay import FrameChannel, LocalStreams, Loop
from runcvm.terminal import terminal_size

if t.TYPE_CHECKING:
    from runcvm.launcher import templates

POWEROFF_TIMEOUT = 10
# How long a dying QEMU may take to say why, once it has closed the channel.
QEMU_EXIT_WAIT = 2
# Lines of the VM's console shown when the VM fails (RUNCVM_KERNEL_DEBUG=1 shows it all).
CONSOLE_TAIL_LINES = 15
# Signals the launcher passes on to the workload (the real-time ones for init systems' STOPSIGNAL);
# SIGKILL and SIGSTOP cannot be caught, and end the container as they would under runc.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGALRM, signal.SIGCONT, signal.SIGTSTP, signal.SIGPWR,
             *range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
# Boots of the VM before its guest is up (see Launcher._boot_and_relay).
BOOT_ATTEMPTS = 2
# A boot keeps QEMU busy until the guest is up, about a CPU second a second under TCG; a guest
# that waits for ever leaves it nearly idle (a few hundredths a second). Less CPU than this in
# this many seconds, before the guest is up, is a guest that has stopped making progress.
STUCK_WINDOW_SECONDS = 30
STUCK_CPU_SECONDS = 1.5
# How often QEMU's CPU time is looked at while the guest boots.
WATCH_INTERVAL = 5
# What the guest mixes into its random number generator: all a VM restored from a template has
# of its own before the workload starts.
RANDOM_SEED_BYTES = 32
# The exit status when RunCVM itself fails, as runc's 255 for a container that could not run.
FAILED = 255


class LaunchError(Exception):
    pass


class GuestStuck(LaunchError):
    pass


class Launcher:
    def __init__(self, vm_plan: plan.VmPlan):
        self.plan = vm_plan
        self.options = vm_plan.options
        self.children = Children()
        self.timing = Timing(vm_plan.rewrite_seconds)
        self.saved_tty: list | None = None
        self.started = False
        self.resolv_conf = ""  # the container's, as Docker wrote it
        self.proxied_dns = False  # whether the VM's DNS queries go through the launcher's proxy
        # The container's network on its way to the VM (the follower moves it), and whether the
        # guest's config is written, once it is there.
        self.handover: handover.HandOver | None = None
        self.config_written = False
        # Set once QEMU is up: the channel to the guest, the workload's streams, the exec sessions.
        self.vm: FrameChannel | None = None
        self.streams: LocalStreams | None = None
        self.execs: ExecServer | None = None
        # The network follower (launcher/follower.py): its pid, and the networks it has added that
        # the guest is yet to be told of.
        self.follower: int | None = None
        self.added_networks: list[bytes] = []
        self._partial_report = b""
        # RUNCVM_VIRTIOFSD_CACHE=programs: the runtime's watch on what the host writes in the root,
        # and whether the host has changed it since the guest last dropped its caches.
        self.host_changes: int | None = None
        self.host_changed = False

    def run(self) -> int:
        if self.plan.accelerator_warning:
            say(self.plan.accelerator_warning)
        if self.plan.kernel.note:
            say(self.plan.kernel.note)
        if self.options.virtiofsd_cache == "programs":
            self.host_changes = host_changes.find_group()
            if self.host_changes is None:
                say("RUNCVM_VIRTIOFSD_CACHE=programs: the runtime could not watch the container's root here, so "
                    "the VM does not see a file the host replaces in its program directories while it runs")
        self._break_at("prenet")
        links = self._start_hand_over()
        privileges.drop((privileges.CAP_NET_ADMIN,))
        try:
            attached = disks.prepare(self.options.disks, layout.VM_ROOT)
        except disks.DiskError as error:
            raise LaunchError(str(error)) from error
        vm = self._vm(links, attached)
        # A restarted container's config is still there: no VM, a template least of all, may read it.
        remove(layout.GUEST_CONFIG_FILE)
        template = self._template(vm) if self.options.warm_start else None
        status = self._boot_and_relay(vm, template, attached)
        # Once the workload has ended, what it wrote to the root and volumes is on the host
        # (virtiofs writes through, and a process's shared mappings are written back as it
        # exits): QEMU is ended at once rather than after the guest kernel's power-off (0.07 s
        # under TCG). A disk's data is in the guest until the guest syncs it as it powers off,
        # and an init system powers the VM off itself.
        self.children.stop(POWEROFF_TIMEOUT, wait_for_guest=bool(attached or self.plan.init_system))
        if self.options.timing:
            say(f"timing: {self.timing.line()}")
        return status

    def _boot_and_relay(self, vm: qemu.Vm, template: templates.Template | None,
                        attached: list[disks.AttachedDisk]) -> int:
        """Start virtiofsd and QEMU, booting `vm` or restoring it from `template`, and relay until
        the workload ends. A VM that fails before its guest is up, in a way a new boot mends,
        boots once more, cold (see _why_boot_again); nothing of the workload has run yet.

        QEMU boots the VM, or loads its template, while the follower moves the network (0.2-0.3 s
        under TCG), and the guest waits for its config, written once the network is in; unless
        QEMU's display needs the launcher's address on the bridge or RUNCVM_BREAK asks for the
        stages in their order."""
        attempt = 1
        while True:
            try:
                if self._display() or self.options.break_at:
                    self._ready_guest_config(attached)
                for share in self._shares():
                    self.children.start(share.name, list(share.command), share.socket)
                self._start_qemu(vm, template)
                self._ready_guest_config(attached)
                return self._relay()
            except (ChildFailed, GuestStuck) as failure:
                reason = self._why_boot_again(failure, template)
                if reason is None or attempt == BOOT_ATTEMPTS:
                    raise
            say(f"{reason}; booting it again")
            if template:
                template.discard()
                template = None
                self.timing.boot = "cold"
            self.children.kill()
            remove(*(share.socket for share in self._shares()), layout.AGENT_SOCKET)
            attempt += 1

    def _why_boot_again(self, failure: Exception, template: templates.Template | None) -> str | None:
        """Why the VM may boot again after `failure`, or None. Only before the guest is up, and for
        what a new boot mends: a template that did not restore (it is discarded, and the VM boots
        cold); this QEMU's multi-threaded TCG can trip an assertion of its own (iotlb_to_section)
        while the guest's kernel maps its devices, or lose an interrupt, after which the guest
        waits for ever."""
        if self.started:
            return None
        if template:
            return f"the VM did not come up from its warm start's template ({failure})"
        if isinstance(failure, GuestStuck):
            return str(failure)
        qemu_process = self.children.processes.get("qemu")
        if qemu_process is not None and qemu_process.poll() == -signal.SIGABRT:
            return "qemu aborted while the VM booted"
        return None

    def _start_hand_over(self) -> list[handover.Link]:
        """Make the taps of the container's interfaces, and fork the network follower, which moves
        the rest of the network to the VM's side: the interfaces the VM gets NICs for."""
        self.resolv_conf = _read(f"{layout.VM_ROOT}/etc/resolv.conf")
        self.proxied_dns = dns.needs_proxy(self.resolv_conf)
        try:
            links = handover.container_links()
            if self._display() and not links:
                raise LaunchError(f"RUNCVM_QEMU_DISPLAY={self.options.qemu_display} needs a network: the VM's screen "
                                  "is reached on the container's IP; drop --network=none")
            # Forked now: before CAP_NET_ADMIN is dropped (the follower keeps it), and before any thread starts.
            self.handover = handover.HandOver(links, with_launcher_address=self.proxied_dns or self._display(),
                                              host_namespace=self.plan.host_network_namespace)
        except (handover.NetworkError, OSError) as error:
            raise LaunchError(f"cannot hand the container's network to the VM: {error}") from error
        self.follower = self.handover.follower
        return links

    def _ready_guest_config(self, attached: list[disks.AttachedDisk]) -> None:
        """Once the follower has moved the network: the DNS proxy, and the guest's config."""
        if self.config_written:
            return
        try:
            net = self.handover.wait()
        except (handover.NetworkError, plan.PlanError, OSError) as error:
            raise LaunchError(f"cannot hand the container's network to the VM: {error}") from error
        self._take_reports(self.handover.rest)
        self._break_at("postnet")
        if self.proxied_dns:
            dns.DnsProxy(net.launcher_address, dns.loopback_nameserver(self.resolv_conf)).start()
            # Into the VM's own tmpfs: its /etc/resolv.conf, writable by the workload as under runc.
            with open(layout.VM_ROOT + layout.GUEST_RESOLV_CONF, "w", encoding="utf-8") as handle:
                handle.write(dns.for_vm(self.resolv_conf, net.launcher_address))
        self._write_guest_config(net, attached)
        self.config_written = True

    def _display(self) -> bool:
        return self.options.qemu_display != "none"

    def _write_guest_config(self, net: plan.Network, attached: list[disks.AttachedDisk]) -> None:
        config = plan.GuestConfig(network=net, hostname=socket.gethostname(), tmpfs=self.plan.tmpfs,
                                  resolv_conf=layout.GUEST_RESOLV_CONF if self.proxied_dns else None,
                                  disks=tuple(disk.guest for disk in attached), pids_limit=self.plan.pids_limit,
                                  init_system=self.plan.init_system, cgroupfs=self.plan.cgroupfs,
                                  display=self.options.qemu_display, random_seed=os.urandom(RANDOM_SEED_BYTES).hex(),
                                  program_dirs=self._program_dirs())
        # Whole or not at all: the guest may be looking for it.
        with open(f"{layout.GUEST_CONFIG_FILE}.partial", "w", encoding="utf-8") as handle:
            handle.write(plan.dumps(config))
        os.replace(f"{layout.GUEST_CONFIG_FILE}.partial", layout.GUEST_CONFIG_FILE)

    def _shares(self, shared_dir: str = layout.VM_ROOT) -> tuple[qemu.Share, ...]:
        return qemu.shares(self.options.virtiofsd_cache, self.options.sys_admin, shared_dir)

    def _program_dirs(self) -> tuple[str, ...]:
        if self.options.virtiofsd_cache != "programs":
            return ()
        return program_dirs.cached(layout.VM_ROOT, program_dirs.mount_points(), self.plan.kernel.version)

    def _vm(self, links: list[handover.Link], attached: list[disks.AttachedDisk]) -> qemu.Vm:
        kernel = self.plan.kernel
        for path in (kernel.kernel, kernel.initrd):
            if not os.path.isfile(path):
                raise LaunchError(f"the kernel file {path} is missing: reinstall the kernels with the "
                                  "runcvm.runcvm.kernels role")
        return qemu.Vm(
            accelerator=self.plan.accelerator, memory_mib=self.plan.memory_mib,
            cpus=self.plan.cpus or len(os.sched_getaffinity(0)), kernel=kernel.kernel, initrd=kernel.initrd,
            root_arguments=kernel.root_arguments, nics=tuple((link.name, link.tap, link.vm_mac) for link in links),
            console=self._console(),
            kernel_append=self.options.kernel_append, kernel_debug=self.options.kernel_debug,
            disks=tuple((disk.path, disk.guest.serial) for disk in attached), init_system=self.plan.init_system,
            hugetlb=self.options.hugetlb, bios_debug=self.options.bios_debug,
            vnc_address=handover.LAUNCHER_ADDRESS if self._display() else None,
            program_share=self.options.virtiofsd_cache == "programs")

    def _template(self, vm: qemu.Vm) -> templates.Template | None:
        """RUNCVM_WARM_START: the saved template to restore `vm` from, made now if there is none
        yet; None, said with the reason, where the VM boots cold instead."""
        # Imported here: a VM that boots cold needs none of it. QEMU's monitor client is imported
        # only to make a template; a restore needs none.
        from runcvm.launcher import templates  # pylint: disable=import-outside-toplevel,redefined-outer-name
        reason = templates.unfit(vm)
        if reason is None:
            template_vm = dataclasses.replace(vm, console=layout.TEMPLATE_CONSOLE)
            shares = self._shares(layout.TEMPLATE_ROOT)
            try:
                path = templates.path_for(qemu.template_key(template_vm, shares))
                if not os.path.exists(path):
                    self.timing.mark("template")
                    templates.make(template_vm, shares, path)
                    self.timing.mark("template_made")
                self.timing.boot = "restored"
                return templates.Template(path)
            except (templates.TemplateError, OSError) as error:
                reason = f"its template could not be made: {error}"
        say(f"RUNCVM_WARM_START: the VM boots cold: {reason}")
        return None

    def _start_qemu(self, vm: qemu.Vm, template: templates.Template | None) -> None:
        """Start QEMU; restoring from `template`, which it loads while the launcher goes on."""
        command = qemu.command(vm, incoming=template.path if template else None)
        self._break_at("preqemu", " ".join(command))
        self.timing.mark("qemu")
        self.children.start("qemu", command, layout.AGENT_SOCKET)

    def _break_at(self, stage: str, shown: str = "") -> None:
        """RUNCVM_BREAK: a shell in the container at `stage`, on the container's own streams; the
        launch goes on when it exits."""
        if stage not in self.options.break_at:
            return
        say(f"RUNCVM_BREAK: {stage}: a shell in the container; exit it to go on")
        if shown:
            say(shown)
        subprocess.run([layout.BUSYBOX, "sh"], check=False)

    def _console(self) -> str:
        """Where the VM's console goes: the container's log for the kernel's messages when asked;
        the container's terminal for an init system given one (as under runc, where an init
        system's console is the terminal, and is not there without one); else a file, whose tail
        is shown if the VM fails."""
        if self.options.kernel_debug:
            return "/proc/self/fd/2"
        return "/proc/self/fd/1" if self.plan.init_system and self.plan.workload.terminal else layout.CONSOLE_LOG

    def _powered_off(self) -> bool:
        """Whether an init system has ended the VM: it powers off, and QEMU exits cleanly."""
        qemu = self.children.processes.get("qemu")
        return bool(self.plan.init_system) and qemu is not None and qemu.poll() == 0

    def _relay(self) -> int:
        """Serve the guest's channel until the workload's exit status is in: its streams, its
        signals, and the exec sessions once the guest is ready."""
        connection = self.children.connect(layout.AGENT_SOCKET)
        loop = Loop()
        vm = FrameChannel(loop, connection.fileno(), self._on_frame, self._on_vm_closed)
        self.vm, self.streams = vm, LocalStreams(loop, vm)
        self.execs = ExecServer(loop, vm, before_start=self._pass_host_changes)
        wakeup = signal_pipe((*FORWARDED, signal.SIGCHLD, signal.SIGWINCH))
        loop.set_reader(wakeup, lambda: self._on_signals(os.read(wakeup, 256)))
        loop.set_reader(self.handover.reports, lambda: self._on_follower_reports(loop))
        if self.host_changes is not None:
            loop.set_reader(self.host_changes, self._pass_host_changes)
        vm.start()
        qemu_pid = self.children.processes["qemu"].pid
        booting = IdleWatch(lambda: cpu_seconds(qemu_pid), STUCK_WINDOW_SECONDS, longest_gap=2 * WATCH_INTERVAL)
        while self.streams.status is None:
            loop.run_once(None if self.started else WATCH_INTERVAL)
            if not self.started and booting.used_less_than(STUCK_CPU_SECONDS):
                raise GuestStuck(f"the VM stopped making progress before it came up (QEMU used less than "
                                 f"{STUCK_CPU_SECONDS} s of CPU in {STUCK_WINDOW_SECONDS} s)")
        self.timing.mark("exit")
        vm.send_json(protocol.EXIT_SEEN, 0, {})
        vm.writer.finish()
        self.streams.finish()
        return self.streams.status

    def _on_frame(self, kind: int, session: int, payload: bytes) -> None:
        if kind == protocol.READY and not self.started:
            self.started = True
            self.timing.mark("ready")
            self.timing.guest = json.loads(payload)
            self._pass_host_changes()
            self._start_workload()
            self.execs.listen()
            self._send_added_networks()
        elif session:
            self.execs.to_client(kind, session, payload)
        else:
            self.streams.deliver(kind, payload)

    def _on_vm_closed(self) -> None:
        # QEMU closes the channel as it dies: say so if that is why.
        self.children.wait_for_exit("qemu", QEMU_EXIT_WAIT)
        if self._powered_off():
            self.streams.status = 0
            return
        self.children.check()
        raise LaunchError("the VM closed its channel before the workload finished")

    def _start_workload(self) -> None:
        workload = self.plan.workload
        if workload.terminal and os.isatty(0):
            workload = dataclasses.replace(workload, size=plan.TerminalSize(**terminal_size(0)))
            self.saved_tty = termios.tcgetattr(0)
            tty.setraw(0)
        self.vm.send(protocol.START, 0, plan.dumps(workload).encode())
        self.streams.start()

    def _pass_host_changes(self) -> None:
        """Have the guest drop what it cached of the root if the host has changed a file in it
        since the guest last did: as the host's changes come, and before each exec starts, which
        then finds them whichever the launcher's loop saw first."""
        if self.host_changes is not None and host_changes.host_changed(self.host_changes):
            self.host_changed = True
        if self.host_changed and self.started:
            self.vm.send_json(protocol.HOST_CHANGED, 0, {})
            self.host_changed = False

    def _on_follower_reports(self, loop: Loop) -> None:
        data = os.read(self.handover.reports, 65536)
        if not data:  # the follower has ended, and said why
            loop.set_reader(self.handover.reports, None)
            return
        self._take_reports(data)

    def _take_reports(self, data: bytes) -> None:
        """The networks the follower added, a line each, as they come."""
        *lines, self._partial_report = (self._partial_report + data).split(b"\n")
        self.added_networks += lines
        self._send_added_networks()

    def _send_added_networks(self) -> None:
        """Tell the guest of the networks the follower added, once it takes requests."""
        if self.started:
            for added in self.added_networks:
                self.vm.send(protocol.NETWORK, 0, added)
            self.added_networks.clear()

    def _on_signals(self, numbers: bytes) -> None:
        for number in numbers:
            if number == signal.SIGCHLD:
                self._reap_follower()
                if self._powered_off():
                    self.streams.status = 0
                    return
                self.children.check()
            elif number == signal.SIGWINCH:
                if self.started and self.plan.workload.terminal and os.isatty(0):
                    self.vm.send_json(protocol.RESIZE, 0, terminal_size(0))
            elif self.started:
                self.vm.send_json(protocol.SIGNAL, 0, {"signal": number})
            elif number in (signal.SIGTERM, signal.SIGINT):
                raise LaunchError("stopped before the VM was up")

    def _reap_follower(self) -> None:
        """The VM runs on without the follower, which says why it ended when it can."""
        if not self.follower:
            return
        pid, status = os.waitpid(self.follower, os.WNOHANG)
        if pid:
            self.follower = None
            if os.WIFSIGNALED(status):
                say(f"the network follower was {describe(-os.WTERMSIG(status))}; docker network connect and "
                    "disconnect no longer reach the VM")

    def stop_follower(self) -> None:
        if self.follower:
            os.kill(self.follower, signal.SIGKILL)
            os.waitpid(self.follower, 0)
            self.follower = None

    def restore_terminal(self) -> None:
        if self.saved_tty is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved_tty)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def read_plan() -> plan.VmPlan:
    try:
        with open(layout.PLAN_FILE, encoding="utf-8") as handle:
            return plan.loads(plan.VmPlan, handle.read(), layout.PLAN_FILE)
    except OSError as error:
        raise LaunchError(f"the launcher was started without RunCVM's runtime ({layout.PLAN_FILE}: "
                          f"{error.strerror})") from error


def main() -> int:
    launcher = None
    try:
        launcher = Launcher(read_plan())
        return launcher.run()
    except (LaunchError, ChildFailed, plan.PlanError, OSError) as error:
        # The container could not run as a VM: say why, with the end of the VM's console, and
        # exit as runc does for a container that could not run.
        say(str(error))
        for line in _read(layout.CONSOLE_LOG).splitlines()[-CONSOLE_TAIL_LINES:]:
            say(f"console: {line}")
    finally:
        stop_signal_pipe()
        if launcher is not None:
            launcher.restore_terminal()
            launcher.stop_follower()
            launcher.children.kill()
    return FAILED
