"""The guest agent: serves the launcher over the agent port, in the guest init's one event loop.

Each session is one process (session 0 the workload, the others docker execs). Nothing blocks:
the port and every session's stdin are written through bounded buffers, and each session's
streams are flow-controlled with CREDIT frames, so a process that does not read its stdin, or a
client that does not read its output, holds back its own session only.
"""

from __future__ import annotations

import json
import os
import signal

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import plan
from runcvm import protocol
from runcvm.events import signal_pipe
from runcvm.guest import log, network, system
from runcvm.guest.session import NOT_EXECUTABLE, Session
from runcvm.relay import Credit, FrameChannel, Loop, Source, Writer, credit_when_written

# The stop signals Docker sends (its default, and the halt and power-off requests systemd images
# name as STOPSIGNAL), and what each init system takes as "power off": in a VM, halting is
# powering off.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGRTMIN + 3, signal.SIGRTMIN + 4)
POWER_OFF_SIGNALS = {"systemd": signal.SIGRTMIN + 4, "busybox": signal.SIGUSR2}


class Output(Source):
    """One output stream of a session, sent to the launcher while the session has credit."""

    def __init__(self, agent: Agent, relay: SessionRelay, fd: int, kind: int):
        super().__init__(agent.loop, fd)
        self.agent = agent
        self.relay = relay
        self.kind = kind

    def _readable(self) -> None:
        try:
            data = self.relay.session.read(self.fd)
        except BlockingIOError:
            return
        if not data:
            self.stop()
            self.relay.session.close_output(self.fd)
            self.agent.report_if_done(self.relay.session)
            return
        self.agent.port.send(self.kind, self.relay.session.number, data)
        self.relay.output_credit.sent(len(data))
        self.feed(self.agent.port.writer)


class SessionRelay:
    """The streams of one session: its outputs read into frames, STDIN frames written to it."""

    def __init__(self, agent: Agent, session: Session):
        self.agent = agent
        self.session = session
        kinds = {"stdout": protocol.STDOUT, "stderr": protocol.STDERR}
        outputs = [Output(agent, self, fd, kinds[stream]) for stream, fd in session.outputs().items()]
        self.output_credit = Credit(outputs)
        self.stdin = Writer(agent.loop, session.stdin) if session.stdin is not None else None
        for output in outputs:
            output.start()

    def write_stdin(self, data: bytes) -> None:
        if self.stdin is None:
            return
        if not data:  # end of input, once what came before has been written
            stdin, self.stdin = self.stdin, None
            stdin.when_drained(self.session.close_stdin)
            return
        self.stdin.write(data)
        credit_when_written(self.agent.port, self.session.number, self.stdin, len(data))

    def close(self) -> None:
        """Drop the input nobody will read now, and close the session's descriptors."""
        if self.stdin is not None:
            self.stdin.close()
            self.stdin = None
        self.session.close()


class Agent:
    def __init__(self, port: int, timing: dict, cgroup: str | None = None, disks: tuple[str, ...] = (),
                 init_system: tuple[str, int] | None = None):
        """`cgroup`: where every session's processes run, if not where the agent does; `disks`:
        where the VM's block devices are mounted; `init_system`: (which, a pipe to the VM's PID 1)
        when the workload is an init system that PID 1 becomes, given the request on that pipe."""
        self.loop = Loop()
        self.port = FrameChannel(self.loop, port, self.on_frame, self.on_launcher_gone)
        self.timing = timing
        self.cgroup = cgroup
        self.disks = disks
        self.sessions: dict[int, SessionRelay] = {}
        self.finished = False
        self.init_system = init_system
        self.hot_plugged = network.HotPlugged(self.loop)

    def serve(self) -> None:
        """Until the launcher has seen the workload's exit, or has gone."""
        wakeup = signal_pipe((signal.SIGCHLD,))
        self.loop.set_reader(wakeup, lambda: self.reap(os.read(wakeup, 256)))
        self.port.send_json(protocol.READY, 0, self.timing)
        self.port.start()
        while not self.finished:
            self.loop.run_once()
        self.port.writer.finish()

    def on_launcher_gone(self) -> None:
        self.finished = True

    def on_frame(self, kind: int, number: int, payload: bytes) -> None:
        relay = self.sessions.get(number)
        if kind == protocol.START:
            self.start(number, payload)
        elif kind == protocol.EXIT_SEEN:
            self.finished = number == 0
        elif kind == protocol.NETWORK:
            self.add_network(payload)
        elif kind == protocol.CPUS:
            self.set_cpus(payload)
        elif kind == protocol.HOST_CHANGED:
            system.drop_caches()
        elif relay is None:  # a session that was refused: what its client sends next goes nowhere
            return
        elif kind == protocol.STDIN:
            relay.write_stdin(payload)
        elif kind == protocol.CREDIT:
            relay.output_credit.credited(payload)
        elif kind == protocol.SIGNAL:
            wanted = json.loads(payload)["signal"]
            if number == 0:
                # The workload is being stopped, and a SIGKILL of the VM may follow: what it has
                # written must be on its disks before it even sees the signal. (What it wrote
                # through virtiofs is in the host's page cache already.)
                system.sync_filesystems(self.disks)
                if self.init_system and wanted in STOP_SIGNALS:
                    wanted = POWER_OFF_SIGNALS[self.init_system[0]]
            relay.session.signal(wanted)
        elif kind == protocol.RESIZE:
            relay.session.resize(plan.TerminalSize(**json.loads(payload)))

    def add_network(self, payload: bytes) -> None:
        try:
            self.hot_plugged.add(plan.loads(plan.Network, payload, "a network added"))
        except plan.PlanError as error:
            log(str(error))

    @staticmethod
    def set_cpus(payload: bytes) -> None:
        try:
            system.set_online_cpus(int(json.loads(payload)["online"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            log(f"cannot set the online vCPUs: {error!r}")

    def refuse(self, number: int, message: str) -> None:
        self.port.send_json(protocol.ERROR, number, {"status": NOT_EXECUTABLE, "message": message})

    def start(self, number: int, payload: bytes) -> None:
        main = self.sessions[0].session if 0 in self.sessions else None
        if number and (main is None or main.workload_pid is None or main.status is not None):
            self.refuse(number, "runcvm: the container's workload is not running\n")
            return
        try:
            process = plan.loads(plan.Process, payload, "the request to start a process")
        except plan.PlanError as error:
            self.refuse(number, f"runcvm: {error}\n")
            return
        session = Session(number, process, join=main.workload_pid if number else None, cgroup=self.cgroup)
        if number == 0 and self.init_system:
            self.hand_over(session, payload)
            return
        failure = session.start()
        if failure:
            self.port.send_json(protocol.ERROR, number, failure)
            return
        self.sessions[number] = SessionRelay(self, session)

    def hand_over(self, session: Session, request: bytes) -> None:
        """Pass the workload's request to PID 1, which becomes it; a missing executable is reported
        as for any workload, and PID 1, told nothing, powers the VM off."""
        handoff = self.init_system[1]
        failure = session.not_found()
        if failure:
            os.close(handoff)
            self.port.send_json(protocol.ERROR, 0, failure)
            return
        with os.fdopen(handoff, "wb") as pipe:
            pipe.write(request)
        session.adopt_init()
        self.sessions[0] = SessionRelay(self, session)

    def reap(self, _signals: bytes) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for relay in list(self.sessions.values()):
                if relay.session.pid == pid:
                    relay.session.exited(protocol.exit_status(status))
                    self.report_if_done(relay.session)

    def report_if_done(self, session: Session) -> None:
        if session.done() and not session.reported:
            session.reported = True
            if session.number:  # an exec's session ends here (the workload's is what execs join):
                self.sessions.pop(session.number).close()  # closed before anyone hears it ended
            self.port.send_json(protocol.EXIT, session.number, {"status": session.status})
