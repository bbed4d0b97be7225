"""RUNCVM_VIRTIOFSD_CACHE=programs: the runtime hands runc a descriptor to preserve for the launcher."""

from __future__ import annotations

import json
import subprocess
import sys

CREATE = ["--root", "/r", "create", "--bundle", "/b", "--pid-file", "/p", "abc"]


def passed_on(argv: list[str], environ: dict[str, str] | None = None) -> dict:
    """What host_watch.preserved makes of `argv`, in a new interpreter (it moves descriptors): the
    argv, and where the group went."""
    probe = (f"import json, os, sys\nsys.path[:0] = {sys.path!r}\n"
             "from runcvm import host_watch\n"
             "group = os.open('/dev/null', os.O_RDONLY | os.O_CLOEXEC)\n"
             "environ = json.loads(sys.argv[2])\n"
             "environ = {**environ, 'LISTEN_PID': str(os.getpid())} if environ else {}\n"
             "argv = host_watch.preserved(json.loads(sys.argv[1]), group, environ)\n"
             "passed = int(sys.argv[3])\n"
             "print(json.dumps({'argv': argv, 'target': os.readlink(f'/proc/self/fd/{passed}'),"
             " 'inheritable': os.get_inheritable(passed), 'group_closed': group == passed or not os.path.exists(f'/proc/self/fd/{group}')}))\n")
    expected = 3 + int((environ or {}).get("LISTEN_FDS", 0)) + int(next(
        (arg.split("=")[1] for arg in argv if arg.startswith("--preserve-fds=")), 0))
    completed = subprocess.run([sys.executable, "-I", "-c", probe, json.dumps(argv), json.dumps(environ or {}), str(expected)],
                               capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


def test_the_group_is_the_next_descriptor_runc_preserves():
    result = passed_on(CREATE)
    assert result["argv"] == ["--root", "/r", "create", "--preserve-fds=1", "--bundle", "/b", "--pid-file", "/p", "abc"]
    assert result == {**result, "target": "/dev/null", "inheritable": True, "group_closed": True}


def test_after_those_preserved_already_and_socket_activations():
    already = ["--root", "/r", "create", "--preserve-fds=2", "--bundle", "/b", "abc"]
    result = passed_on(already, {"LISTEN_FDS": "1"})  # the group goes to descriptor 6
    assert result["argv"] == ["--root", "/r", "create", "--preserve-fds=3", "--bundle", "/b", "abc"]
    assert result["target"] == "/dev/null" and result["inheritable"]
