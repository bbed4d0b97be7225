"""What the runtime changes before runc sees it: on `create` the bundle's config.json (with the VM
plan written beside it); on `update` it runs runc itself, with the resources rewritten, and
resizes the VM's memory around it. (`exec` has exec_spec.before_runc, with fewer imports.)"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan
from runcvm import modifiers, protocol
from runcvm.atomic import replace_file
from runcvm.runc_cli import WrapperError, bundle_dir, global_options, subcommand_option, with_subcommand_option

if t.TYPE_CHECKING:
    from runcvm.balloon import Balloon


def before_runc(command: str, argv: list[str], runc: str, payload_dir: str | None) -> int | None:
    """Do what `command` needs before runc runs, with `argv` changed in place where runc is to be
    told more (`create`: a descriptor to preserve); the exit status where it ran runc itself
    (`update`). Whatever stops it is a WrapperError, in words for the user."""
    try:
        if command == "create":
            root, vm_plan = rewrite_bundle(modifiers.Context(bundle=bundle_dir(argv),
                                                             payload_dir=payload_dir or layout.PAYLOAD_DIR))
            if vm_plan.options.virtiofsd_cache == "programs":
                argv[:] = _with_host_watch(argv, root)
        elif command == "update":
            return update(argv, runc)
    except modifiers.SpecError as error:
        raise WrapperError(str(error)) from error
    except (OSError, ValueError, plan.PlanError) as error:
        raise WrapperError(f"cannot prepare the container: {error}") from error
    return None


def rewrite_bundle(context: modifiers.Context) -> tuple[str, plan.VmPlan]:
    """Rewrite the bundle's config.json and write the VM plan beside it; a bundle already
    rewritten is left as it is. The container's root filesystem, and the plan."""
    started = time.monotonic()
    path = os.path.join(context.bundle, "config.json")
    with open(path, encoding="utf-8") as handle:
        original = handle.read()
    config = json.loads(original)
    root = context.root(config)
    if modifiers.rewritten(config) and os.path.isfile(context.plan_path):
        with open(context.plan_path, encoding="utf-8") as handle:
            return root, plan.loads(plan.VmPlan, handle.read(), "the VM's plan")
    vm_plan = modifiers.rewrite(config, context)
    vm_plan = dataclasses.replace(vm_plan, rewrite_seconds=round(time.monotonic() - started, 4))
    # The plan and the state directory first: config.json names them as mount sources. The mount
    # points in it are made here, as the VM's view of it is read-only by the time runc mounts them.
    os.makedirs(context.state_dir, mode=0o700, exist_ok=True)
    for mount_point in (layout.GUEST_DIR, layout.GUEST_DNS_DIR):
        os.makedirs(context.state_dir + mount_point.removeprefix(layout.STATE_DIR), exist_ok=True)
    replace_file(context.plan_path, plan.dumps(vm_plan), mode=0o400)
    replace_file(path, json.dumps(config))
    if vm_plan.options.runtime_debug:
        decided = {"original": json.loads(original), "rewritten": config, "plan": json.loads(plan.dumps(vm_plan))}
        replace_file(debug_log_path(context.bundle), json.dumps(decided, indent=1))
    return root, vm_plan


def _with_host_watch(argv: list[str], root: str) -> list[str]:
    """`create`'s argv with a watch on what the host writes in `root` passed on to the launcher
    (host_watch.py); as it was where none can be made, which the launcher then says."""
    from runcvm import host_watch  # pylint: disable=import-outside-toplevel  # ctypes: for this mode only
    try:
        return host_watch.preserved(argv, host_watch.watch(root))
    except OSError:
        return argv


def update(argv: list[str], runc: str) -> int:
    """runc `update` with its resources (a file, or `-` for standard input, as containerd gives them)
    made the container's, as at create, passed on through a memfd. A new --memory resizes the VM
    too: before the cgroup shrinks, after it grows, so that the cgroup always holds the VM. The
    CPU quota sets how many of the VM's vCPUs are online."""
    source = subcommand_option(argv, ("--resources", "-r"))
    if source is None:
        return subprocess.run([runc, *argv], check=False).returncode
    if source == "-":
        resources = json.load(sys.stdin)
    else:
        with open(source, encoding="utf-8") as handle:
            resources = json.load(handle)
    state = subprocess.run([runc, *argv[:global_options(argv)[1]], "state", argv[-1]], capture_output=True, text=True,
                           check=False)
    if state.returncode != 0:
        raise WrapperError(f"cannot read the container's state from runc: {state.stderr.strip()}")
    state = json.loads(state.stdout)
    with open(os.path.join(state["bundle"], modifiers.PLAN_NAME), encoding="utf-8") as handle:
        vm_plan = plan.loads(plan.VmPlan, handle.read(), "the VM's plan")
    asked_mib = modifiers.update_resources(resources, vm_plan)
    rewritten = os.memfd_create("runcvm-resources", 0)
    os.set_inheritable(rewritten, True)
    os.write(rewritten, json.dumps(resources).encode())
    command = [runc, *with_subcommand_option(argv, ("--resources", "-r"), f"/proc/self/fd/{rewritten}")]
    status = _run(command) if asked_mib is None else _with_memory(command, state["pid"], asked_mib, vm_plan)
    if status == 0 and "cpu" in resources:
        _set_online_vcpus(state["pid"], modifiers.vcpus(resources["cpu"]) or 0)
    return status


def _with_memory(command: list[str], pid: int, asked_mib: int, vm_plan: plan.VmPlan) -> int:
    # Imported here only: the monitor's client brings asyncio, which no other runtime call needs.
    from runcvm.balloon import Balloon, BalloonError, MonitorUnreachable  # pylint: disable=import-outside-toplevel
    try:
        with Balloon(f"/proc/{pid}/root{layout.UPDATE_QMP_SOCKET}") as balloon:
            return _resized_around(command, balloon, asked_mib)
    except BalloonError as error:
        if isinstance(error, MonitorUnreachable) and asked_mib == vm_plan.memory_mib:
            return _run(command)  # a VM started by a RunCVM that did not resize memory: nothing to do
        raise WrapperError(f"--memory {asked_mib}m: {error}; nothing was changed") from error


def _set_online_vcpus(pid: int, wanted: int) -> None:
    """Ask the VM, through the launcher's exec socket, to keep `wanted` vCPUs online (0: all it
    booted with). A VM still booting, or started by a RunCVM that could not, keeps them all; the
    CPU quota holds either way."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as launcher:
        try:
            launcher.connect(f"/proc/{pid}/root{layout.EXEC_SOCKET}")
            launcher.sendall(protocol.encode(protocol.CPUS, 0, json.dumps({"online": wanted}).encode()))
        except OSError:
            pass


def _resized_around(command: list[str], balloon: Balloon, asked_mib: int) -> int:
    """Run `command` (runc update) with the VM's memory moved to `asked_mib` around it: shrunk
    before the cgroup shrinks, grown after it grows, put back if runc fails."""
    before_mib = balloon.size_mib()
    if asked_mib < before_mib:
        balloon.resize(asked_mib)
    status = _run(command)
    if status != 0 and asked_mib < before_mib:
        balloon.resize(before_mib)
    elif status == 0 and asked_mib > before_mib:
        balloon.resize(asked_mib)
    return status


def _run(command: list[str]) -> int:
    """runc, with the rewritten resources' descriptor."""
    return subprocess.run(command, check=False, close_fds=False).returncode


def debug_log_path(bundle: str) -> str:
    """Where RUNCVM_RUNTIME_DEBUG=1 writes what the runtime decided: the bundle's directory is
    named after the container."""
    return f"/tmp/runcvm-{os.path.basename(os.path.normpath(bundle))}.json"
