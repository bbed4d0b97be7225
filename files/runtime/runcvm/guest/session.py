"""One process the launcher asked the VM to run, with its streams."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import struct
import termios

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.plan import Process, TerminalSize, User
from runcvm.events import stop_signal_pipe
from runcvm.guest import system
from runcvm.protocol import exit_status

# The exit statuses docker reports when runc cannot start a process: 127 for a `docker run`
# whose command is not found, 126 for every other failure and for any failed `docker exec`.
NOT_FOUND, NOT_EXECUTABLE = 127, 126


class Session:
    def __init__(self, number: int, process: Process, join: int | None = None, cgroup: str | None = None):
        """`join`: the PID of a workload whose namespaces this process enters (docker exec);
        None makes new ones (the container's workload). `cgroup`: where it runs, if set."""
        self.number = number
        self.process = process
        self.join = join
        self.cgroup = cgroup
        self.pid: int | None = None           # the process that waits for the workload
        self.workload_pid: int | None = None  # the workload, PID 1 of its namespace
        self.status: int | None = None
        self.reported = False
        self._stdin: int | None = None
        self._outputs: dict[str, int] = {}
        self._terminal: int | None = None

    def not_found(self) -> dict | None:
        """What to report (ERROR frame payload) if the process's executable is not there."""
        process = self.process
        return None if _lookup(process.args[0], process.env, process.cwd) else self._missing_executable()

    def _missing_executable(self) -> dict:
        return {"status": NOT_EXECUTABLE if self.join else NOT_FOUND,
                "message": _runc_message(f'exec: "{self.process.args[0]}": executable file not found in $PATH')}

    def adopt_init(self) -> None:
        """The process is the VM's PID 1, started by the init itself: no streams, never reaped here."""
        self.workload_pid = 1

    def start(self) -> dict | None:
        """Fork the workload; None on success, else what to report (ERROR frame payload)."""
        process = self.process
        executable = _lookup(process.args[0], process.env, process.cwd)
        if executable is None:
            return self._missing_executable()
        if process.terminal:
            master, slave = os.openpty()
            if process.size:
                _set_size(master, process.size)
            child_fds = (slave, slave, slave)
            self._terminal = self._stdin = master
            self._outputs = {"stdout": master}
        else:
            stdin_read, stdin_write = os.pipe()
            stdout_read, stdout_write = os.pipe()
            stderr_read, stderr_write = os.pipe()
            child_fds = (stdin_read, stdout_write, stderr_write)
            self._stdin = stdin_write
            self._outputs = {"stdout": stdout_read, "stderr": stderr_read}
        for fd in (self._stdin, *self._outputs.values()):
            os.set_inheritable(fd, False)
        pid_read, pid_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(pid_read)
            _run_in_pid_namespace(process, executable, child_fds, pid_write, self.join, self.cgroup)
        os.close(pid_write)
        for fd in set(child_fds):
            os.close(fd)
        with os.fdopen(pid_read, "rb") as reader:
            reported = reader.read()
        self.workload_pid = int(reported) if reported else None
        return None

    def outputs(self) -> dict[str, int]:
        return dict(self._outputs)

    def read(self, fd: int) -> bytes:
        try:
            return os.read(fd, 1 << 16)
        except OSError as error:
            if error.errno == errno.EIO:  # a terminal whose last holder has gone
                return b""
            raise

    def close_output(self, fd: int) -> None:
        self._outputs = {name: other for name, other in self._outputs.items() if other != fd}
        if fd != self._terminal:
            os.close(fd)

    @property
    def stdin(self) -> int | None:
        """Where the process's input goes: a pipe, or the terminal; None once it has ended."""
        return self._stdin

    def close_stdin(self) -> None:
        """End the process's input; a terminal stays open, as it also carries the output."""
        if self._stdin is not None and self._terminal is None:
            os.close(self._stdin)
        self._stdin = None

    def close(self) -> None:
        """Close what is still open of the process's streams, once it has been reported."""
        self.close_stdin()
        for fd in set(self._outputs.values()) | {self._terminal} - {None}:
            os.close(fd)
        self._outputs, self._terminal = {}, None

    def signal(self, number: int) -> None:
        if self.workload_pid is not None and self.status is None:
            try:
                os.kill(self.workload_pid, number)
            except ProcessLookupError:
                pass

    def resize(self, size: TerminalSize) -> None:
        if self._terminal is not None:
            _set_size(self._terminal, size)

    def exited(self, status: int) -> None:
        self.status = status

    def done(self) -> bool:
        return self.status is not None and not self._outputs


def home_of(uid: int, passwd_path: str = "/etc/passwd") -> str:
    """HOME as runc sets it when the environment has none: the user's passwd entry, or /."""
    try:
        with open(passwd_path, encoding="utf-8", errors="replace") as passwd:
            for line in passwd:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def _runc_message(problem: str) -> str:
    """The words runc uses when it cannot start a process."""
    return f"OCI runtime exec failed: exec failed: unable to start container process: {problem}: unknown\n"


def _lookup(name: str, env: tuple[str, ...], cwd: str) -> str | None:
    if "/" in name:
        return name if os.path.exists(os.path.join(cwd, name)) else None
    path = next((entry[5:] for entry in env if entry.startswith("PATH=")), os.defpath)
    return shutil.which(name, path=path)


def _set_size(fd: int, size: TerminalSize) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.rows, size.cols, 0, 0))


def _run_in_pid_namespace(process: Process, executable: str, fds: tuple[int, int, int], report: int,
                          join: int | None, cgroup: str | None) -> None:
    """In the forked child: make a PID namespace whose init is the process (or enter the PID and
    mount namespaces of `join`), put the process in `cgroup` (this waiter stays out of it, as it
    is no process of the container's), tell the agent the process's PID on `report`, wait for it
    and exit with its status. Never returns."""
    try:
        stop_signal_pipe()
        _close_all_but((*fds, report))
        procs = os.open(f"{cgroup}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC) if cgroup else None
        if join is None:
            os.unshare(os.CLONE_NEWPID | os.CLONE_NEWNS)
        else:
            for kind, flag in (("pid", os.CLONE_NEWPID), ("mnt", os.CLONE_NEWNS)):
                namespace = os.open(f"/proc/{join}/ns/{kind}", os.O_RDONLY)
                os.setns(namespace, flag)
                os.close(namespace)
        pid = os.fork()
        if pid == 0:
            os.close(report)
            if procs is not None:
                os.write(procs, b"0")
            _exec_workload(process, executable, fds, new_namespace=join is None)
        os.write(report, str(pid).encode())
        os.close(report)
        for fd in set(fds):
            os.close(fd)
        while True:
            waited, status = os.waitpid(pid, 0)
            if waited == pid:
                os._exit(exit_status(status))
    except BaseException:  # pylint: disable=broad-exception-caught
        os._exit(NOT_EXECUTABLE)


def exec_as_init(process: Process) -> None:
    """Become `process` in this very process, PID 1 of the VM, with the console the kernel gave
    init as its standard streams. Returns only if it cannot (it says why on the console)."""
    executable = _lookup(process.args[0], process.env, process.cwd)
    _close_all_but(())
    try:
        env = _environment(process)
        _take_user(process.user)
        os.chdir(process.cwd)
        os.execve(executable, list(process.args), env)
    except (OSError, TypeError) as error:
        os.write(2, f"runcvm: cannot start {process.args[0]} as the VM's init: {error}\n".encode())


def _take_user(user: User) -> None:
    os.setgroups(list(user.groups))
    os.setgid(user.gid)
    os.setuid(user.uid)
    os.umask(user.umask if user.umask is not None else 0o022)


def _environment(process: Process) -> dict[str, str]:
    """The process's environment, with HOME as runc sets it when the environment has none."""
    env = dict(entry.partition("=")[::2] for entry in process.env)
    env.setdefault("HOME", home_of(process.user.uid))
    return env


def _close_all_but(keep: tuple[int, ...]) -> None:
    """Close every descriptor the init holds (the agent port, other sessions' pipes) but `keep`
    and the standard ones: a pipe end left open here would keep a stream from ever ending."""
    start = 3
    for fd in sorted(set(keep)):
        if fd >= start:
            os.closerange(start, fd)
            start = fd + 1
    os.closerange(start, os.sysconf("SC_OPEN_MAX"))


def _exec_workload(process: Process, executable: str, fds: tuple[int, int, int], new_namespace: bool) -> None:
    try:
        if new_namespace:
            # A /proc of the new namespace, so `ps` shows the workload's processes only.
            system.mount("none", "/", None, system.MS_REC | system.MS_PRIVATE)
            system.mount("proc", "/proc", "proc", system.MS_NOSUID | system.MS_NODEV | system.MS_NOEXEC)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        if process.terminal:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        for fd in set(fds):
            if fd > 2:
                os.close(fd)
        env = _environment(process)
        _take_user(process.user)
        try:
            os.chdir(process.cwd)
        except OSError as error:
            os.write(2, _runc_message(f'chdir to cwd ("{process.cwd}") set in config.json failed: '
                                      f"{error.strerror.lower()}").encode())
            os._exit(NOT_EXECUTABLE)
        os.execve(executable, list(process.args), env)
    except PermissionError:
        os.write(2, _runc_message(f'exec: "{process.args[0]}": permission denied').encode())
        os._exit(NOT_EXECUTABLE)
    except BaseException as error:  # pylint: disable=broad-exception-caught
        os.write(2, f"runcvm: cannot start {process.args[0]}: {error}\n".encode())
        os._exit(NOT_EXECUTABLE)
