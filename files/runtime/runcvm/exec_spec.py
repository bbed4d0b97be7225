"""`docker exec` under RunCVM: the process.json dockerd gives runc is rewritten to run RunCVM's exec
client in the container, which asks the VM to run the requested process. The wrapper imports this
module alone for an exec, not rewrite's create machinery: every import here is on the path of
each `docker exec`."""

from __future__ import annotations

import json

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.options import workload_env
from runcvm.atomic import replace_file
from runcvm.runc_cli import WrapperError, process_file

# `docker exec CONTAINER --- COMMAND` runs COMMAND in the container itself, not in the VM.
ESCAPE = "---"
# The request travels as the exec client's arguments, in pieces: Linux refuses any one argument
# or variable longer than 128 KiB, and a request holds a whole argv and environment.
REQUEST_PIECE = 64 * 1024


def oci_user(process: dict) -> plan.User:
    """The user of an OCI process, as the VM is to run it."""
    user = process.get("user") or {}
    return plan.User(uid=user.get("uid", 0), gid=user.get("gid", 0), groups=tuple(user.get("additionalGids") or ()),
                     umask=user.get("umask"))


def oci_process(process: dict, args: list[str]) -> plan.Process:
    """The OCI `process` with `args`, as the VM is to run it: RunCVM's variables left out."""
    return plan.Process(args=tuple(args), env=tuple(workload_env(process.get("env") or [])),
                        cwd=process.get("cwd") or "/", user=oci_user(process), terminal=bool(process.get("terminal")))


def rewrite_exec(process: dict) -> dict:
    """The process.json of a `docker exec`, made to run the exec client as root in the container."""
    args = process["args"]
    if args[:1] == [ESCAPE]:
        process["args"] = args[1:]
        return process
    if args[:1] == [layout.EXEC_CLIENT]:
        return process
    request = plan.dumps(oci_process(process, args))
    process["args"] = [layout.EXEC_CLIENT, *(request[at:at + REQUEST_PIECE] for at in range(0, len(request), REQUEST_PIECE))]
    process["env"] = []
    process["user"] = {"uid": 0, "gid": 0}
    # The directory is the VM's to enter; it may exist only there (a tmpfs, a path the workload made).
    process["cwd"] = "/"
    return process


def before_runc(argv: list[str]) -> None:
    """Rewrite the process.json of runc's `exec` command line `argv`, if it names one;
    WrapperError in words for the user."""
    path = process_file(argv)
    if path is None:
        return
    try:
        with open(path, encoding="utf-8") as handle:
            process = json.load(handle)
        replace_file(path, json.dumps(rewrite_exec(process)))
    except (OSError, ValueError, plan.PlanError) as error:
        raise WrapperError(f"cannot prepare the exec: {error}") from error
