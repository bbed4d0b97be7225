"""The launcher: the container's PID 1. It hands the container's network to the VM, serves the
container's root filesystem with virtiofsd, starts QEMU, then relays the workload's standard
streams, signals and terminal size to the guest and exits with the workload's exit status."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import termios
import time
import tty

from ansible_collections.runcvm.runcvm.plugins.module_utils import _vm_options as runcvm_options
from runcvm import protocol
from runcvm.events import signal_pipe
from runcvm.terminal import deliver, terminal_size
from runcvm.launcher import disks, dns, network, qemu
from runcvm.launcher.execs import ExecServer
from runcvm.launcher.qemu import GUEST_DIR
from ansible_collections.runcvm.runcvm.plugins.module_utils._accel import (
    AcceleratorError, choose_accelerator, host_kvm_status,
)

STATE_DIR = "/.runcvm"
VM_ROOT = "/vm"
RUN_DIR = "/run/runcvm"
VIRTIOFS_SOCKET = f"{RUN_DIR}/virtiofs.sock"
AGENT_SOCKET = f"{RUN_DIR}/agent.sock"
CONSOLE_LOG = f"{RUN_DIR}/console.log"
STARTUP_TIMEOUT = 30
POWEROFF_TIMEOUT = 10
# Lines of the VM's console shown when the VM fails (RUNCVM_KERNEL_DEBUG=1 shows it all).
CONSOLE_TAIL_LINES = 15
# Signals the launcher passes on to the workload; SIGKILL and SIGSTOP cannot be caught, and end
# the container as they would under runc.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGALRM, signal.SIGCONT, signal.SIGTSTP)
# The exit status when RunCVM itself fails, as runc's 255 for a container that could not run.
FAILED = 255


class LaunchError(Exception):
    pass


def fail(message: str) -> None:
    print(f"runcvm: {message}", file=sys.stderr, flush=True)


class Launcher:
    def __init__(self) -> None:
        handoff = json.loads(os.environ.get("RUNCVM_HANDOFF", "{}"))
        if not handoff:
            raise LaunchError("the launcher was started without RunCVM's runtime (no RUNCVM_HANDOFF)")
        self.handoff = handoff
        self.options = runcvm_options.parse(os.environ)
        # The environment as Docker gave it: runc and Python have since added to the launcher's own.
        env = list(handoff["env"])
        self.workload = {"args": handoff["args"], "env": env, "cwd": handoff["cwd"], "user": handoff["user"],
                         "terminal": handoff["terminal"]}
        self.children: dict[str, subprocess.Popen] = {}
        self.channel: socket.socket | None = None
        self.status: int | None = None
        self.saved_tty: list | None = None
        self.times = {"launcher": time.monotonic()}
        self.guest_timing: dict = {}

    def run(self) -> int:
        try:
            accelerator = choose_accelerator(self.options.accel, host_kvm_status())
        except AcceleratorError as error:
            raise LaunchError(str(error)) from error
        if accelerator.name == "tcg" and self.options.accel != "tcg":
            fail(f"warning: {accelerator.reason}")
        os.makedirs(RUN_DIR, exist_ok=True)
        net = self._network()
        try:
            attached = disks.prepare(self.options.disks, VM_ROOT)
        except disks.DiskError as error:
            raise LaunchError(str(error)) from error
        self._write_vm_config(net, attached)
        self._start_virtiofsd()
        self._start_qemu(accelerator.name, net, attached)
        self._connect()
        return self._relay()

    def _network(self) -> network.NetState:
        resolv_conf = _read(f"{VM_ROOT}/etc/resolv.conf")
        proxy = dns.needs_proxy(resolv_conf)
        try:
            state = network.hand_over(with_dns_proxy=proxy,
                                      host_namespace=self.handoff.get("host_network_namespace"))
        except (network.NetworkError, OSError) as error:
            raise LaunchError(f"cannot hand the container's network to the VM: {error}") from error
        if state.dns_proxy:
            upstream = next(s for s in dns.nameservers(resolv_conf) if s.startswith("127."))
            dns.DnsProxy(state.dns_proxy, upstream).start()
            with open(f"{STATE_DIR}/resolv.conf", "w", encoding="utf-8") as handle:
                handle.write(dns.for_vm(resolv_conf, state.dns_proxy))
        return state

    def _write_vm_config(self, net: network.NetState, attached: list[disks.AttachedDisk]) -> None:
        config = {"network": net.to_json(), "hostname": socket.gethostname(), "tmpfs": self.handoff.get("tmpfs", []),
                  "resolv_conf": f"{STATE_DIR}/resolv.conf" if net.dns_proxy else None,
                  "disks": [disk.to_json() for disk in attached]}
        with open(f"{STATE_DIR}/vm.json", "w", encoding="utf-8") as handle:
            json.dump(config, handle)

    def _start_virtiofsd(self) -> None:
        self.children["virtiofsd"] = subprocess.Popen(
            [f"{GUEST_DIR}/bin/virtiofsd", f"--socket-path={VIRTIOFS_SOCKET}", f"--shared-dir={VM_ROOT}",
             "--sandbox=chroot", "--announce-submounts", f"--cache={self.options.virtiofsd_cache}",
             "--log-level=error"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._wait_for(VIRTIOFS_SOCKET, "virtiofsd")

    def _start_qemu(self, accelerator: str, net: network.NetState, attached: list[disks.AttachedDisk]) -> None:
        kernel = self.handoff["kernel"]
        if kernel.get("note"):
            fail(kernel["note"])
        vm = qemu.Vm(
            accelerator=accelerator, memory_mib=self.handoff["memory_mib"],
            cpus=self.handoff.get("cpus") or len(os.sched_getaffinity(0)),
            kernel=kernel["kernel"], initrd=kernel["initrd"], root_arguments=kernel["root"],
            taps=tuple((i.tap, i.mac) for i in net.interfaces), virtiofs_socket=VIRTIOFS_SOCKET,
            agent_socket=AGENT_SOCKET, console="/proc/self/fd/2" if self.options.kernel_debug else CONSOLE_LOG,
            kernel_append=self.options.kernel_append, kernel_debug=self.options.kernel_debug,
            disks=tuple((disk.path, disk.serial) for disk in attached))
        for path in (vm.kernel, vm.initrd):
            if not os.path.isfile(path):
                raise LaunchError(f"the kernel file {path} is missing: reinstall the kernels with the "
                                  "runcvm.runcvm.kernels role")
        self.times["qemu"] = time.monotonic()
        self.children["qemu"] = subprocess.Popen(qemu.command(vm), stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.DEVNULL)
        self._wait_for(AGENT_SOCKET, "QEMU")

    def _wait_for(self, path: str, name: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not os.path.exists(path):
            self._check_children()
            if time.monotonic() > deadline:
                raise LaunchError(f"{name} did not start within {STARTUP_TIMEOUT} s")
            time.sleep(0.02)

    def _check_children(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise LaunchError(f"{name} exited unexpectedly ({_describe(child.returncode)})")

    def _connect(self) -> None:
        self.channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.channel.connect(AGENT_SOCKET)

    def _send(self, frame: bytes) -> None:
        self.channel.sendall(frame)

    def _relay(self) -> int:
        selector = selectors.DefaultSelector()
        wakeup_read = signal_pipe((*FORWARDED, signal.SIGCHLD, signal.SIGWINCH))
        selector.register(wakeup_read, selectors.EVENT_READ, "signals")
        selector.register(self.channel, selectors.EVENT_READ, "channel")
        decoder = protocol.Decoder()
        execs = ExecServer(selector, self._send)
        started = False
        while self.status is None:
            for key, _events in selector.select():
                if isinstance(key.data, tuple):  # docker exec
                    if key.data[0] == "exec-listen":
                        execs.accept(key.fileobj)
                    else:
                        execs.from_client(key.data[1])
                elif key.data == "signals":
                    for number in os.read(wakeup_read, 256):
                        self._on_signal(number, started)
                elif key.data == "channel":
                    data = self.channel.recv(1 << 16)
                    if not data:
                        # QEMU closes the channel as it dies: say so if that is why.
                        try:
                            self.children["qemu"].wait(2)
                        except subprocess.TimeoutExpired:
                            pass
                        self._check_children()
                        raise LaunchError("the VM closed its channel before the workload finished")
                    for kind, session, payload in decoder.feed(data):
                        if kind == protocol.READY and not started:
                            started = True
                            self.times["ready"] = time.monotonic()
                            self.guest_timing = json.loads(payload)
                            self._start_workload(selector)
                            execs.listen()
                        elif session:
                            execs.to_client(kind, session, payload)
                        else:
                            status = deliver(kind, payload)
                            if status is not None:
                                self.status = status
                elif key.data == "stdin":
                    data = os.read(0, protocol.MAX_PAYLOAD)
                    self._send(protocol.encode(protocol.STDIN, 0, data))
                    if not data:
                        selector.unregister(0)
        self.times["exit"] = time.monotonic()
        self._send(protocol.encode_json(protocol.EXIT_SEEN, 0, {}))
        self._stop_children(POWEROFF_TIMEOUT)
        if self.options.timing:
            fail(f"timing: {self._timing_line()}")
        return self.status

    def _timing_line(self) -> str:
        """Where a run's time went; RUNCVM_TIMING=1 prints it, bench/ reads it."""
        times, guest = self.times, self.guest_timing
        boot = times["ready"] - times["qemu"]
        phases = {
            "runtime": self.handoff.get("rewrite_seconds", 0.0),
            "launcher": times["qemu"] - times["launcher"],
            "firmware": boot - guest.get("kernel_seconds", 0.0) - guest.get("setup_seconds", 0.0),
            "kernel": guest.get("kernel_seconds", 0.0),
            "init": guest.get("setup_seconds", 0.0),
            "workload": times["exit"] - times["ready"],
            "poweroff": time.monotonic() - times["exit"],
        }
        return " ".join(f"{name}={seconds:.3f}" for name, seconds in phases.items())

    def _start_workload(self, selector: selectors.BaseSelector) -> None:
        workload = dict(self.workload)
        if workload["terminal"] and os.isatty(0):
            workload["size"] = terminal_size(0)
            self.saved_tty = termios.tcgetattr(0)
            tty.setraw(0)
        self._send(protocol.encode_json(protocol.START, 0, workload))
        try:
            selector.register(0, selectors.EVENT_READ, "stdin")
        except (ValueError, OSError):
            self._send(protocol.encode(protocol.STDIN, 0, b""))

    def _on_signal(self, number: int, started: bool) -> None:
        if number == signal.SIGCHLD:
            self._check_children()
        elif number == signal.SIGWINCH:
            if started and self.workload["terminal"] and os.isatty(0):
                self._send(protocol.encode_json(protocol.RESIZE, 0, terminal_size(0)))
        elif started:
            self._send(protocol.encode_json(protocol.SIGNAL, 0, {"signal": number}))
        elif number in (signal.SIGTERM, signal.SIGINT):
            raise LaunchError("stopped before the VM was up")

    def _stop_children(self, timeout: float) -> None:
        """QEMU ends when the guest powers off; virtiofsd when QEMU lets go of it."""
        deadline = time.monotonic() + timeout
        for name in ("qemu", "virtiofsd"):
            child = self.children.get(name)
            if child is None:
                continue
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def restore_terminal(self) -> None:
        if self.saved_tty is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved_tty)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _describe(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


def main() -> int:
    launcher = None
    try:
        launcher = Launcher()
        return launcher.run()
    except (LaunchError, runcvm_options.OptionError) as error:
        fail(str(error))
        for line in _read(CONSOLE_LOG).splitlines()[-CONSOLE_TAIL_LINES:]:
            fail(f"console: {line}")
    finally:
        if launcher is not None:
            launcher.restore_terminal()
            for child in launcher.children.values():
                if child.poll() is None:
                    child.kill()
    return FAILED
