# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
"""runcvm_container: community.docker.docker_container with runtime runcvm and typed RunCVM options.

The RunCVM options are checked and rendered into RUNCVM_* variables on the controller, by the
same code the runtime reads them back with, before any module runs on the host; everything else
goes to community.docker.docker_container unchanged, which compares, creates, recreates and
reports the container."""

from __future__ import annotations

import math
import time

from ansible.errors import AnsibleActionFail
# Private to ansible-core, and the way its own package and service actions give the module they
# call that module's module_defaults (group/community.docker.docker among them).
from ansible.executor.module_common import _apply_action_arg_defaults
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.formatters import human_to_bytes
from ansible.plugins.action import ActionBase

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout
from ansible_collections.runcvm.runcvm.plugins.module_utils._core import options as runcvm_options
from ansible_collections.runcvm.runcvm.plugins.module_utils._core import refusals

DOCKER_CONTAINER = "community.docker.docker_container"
DOCKER_EXEC = "community.docker.docker_container_exec"
DOCKER_INFO = "community.docker.docker_container_info"
RUNTIME = layout.RUNTIME_NAME
# RunCVM's own options, from its option table, and this action's: taken out of the task's
# arguments before they go to docker_container.
RUNCVM_SPEC = {
    **runcvm_options.argument_spec(),
    "wait": {"type": "bool", "default": False},
    "wait_timeout": {"type": "int", "default": 180},
}
# How community.docker modules reach dockerd; the inspect before and the wait after reuse them.
CONNECTION_OPTIONS = ("docker_host", "tls_hostname", "api_version", "timeout", "ca_path", "ca_cert", "cacert_path",
                      "client_cert", "cert_path", "client_key", "key_path", "tls", "use_ssh_client",
                      "validate_certs", "tls_verify", "debug")
# Exit statuses of `docker exec` that a running guest gives: the command ran, or the VM said it
# could not find (127) or run (126) it. The exec client also exits 126 when no VM answers it, and
# then says so.
GUEST_ANSWERED = (0, 126, 127)
# Lines of the container's log a failed wait shows.
LOG_TAIL_LINES = 20
# How the refusals table reads docker_container's values that are not strings to it.
TASK_VALUES = {"memory": human_to_bytes}


def split_arguments(args: dict) -> tuple[dict, dict]:
    """(RunCVM's options, validated with defaults filled in; docker_container's arguments)."""
    ours = {key: value for key, value in args.items() if key in RUNCVM_SPEC}
    validated = ArgumentSpecValidator(RUNCVM_SPEC).validate(ours)
    if validated.error_messages:
        raise AnsibleActionFail("runcvm_container: " + "; ".join(validated.error_messages))
    return validated.validated_parameters, {key: value for key, value in args.items() if key not in RUNCVM_SPEC}


def docker_container_arguments(ours: dict, theirs: dict) -> tuple[dict, dict[str, str]]:
    """(docker_container's arguments with the runtime and the RunCVM variables set, those variables).

    env is compared strictly unless the task says otherwise, so that a RunCVM option taken out
    of the task recreates the container as one put in does."""
    runtime = theirs.get("runtime", RUNTIME)
    if runtime != RUNTIME:
        raise AnsibleActionFail(f"runcvm_container runs containers with runtime {RUNTIME}, not {runtime}; "
                                f"use {DOCKER_CONTAINER} for other runtimes")
    refused = refusals_of(theirs)
    if refused:
        raise AnsibleActionFail(f"runcvm_container: {refused}; no container was touched")
    env = dict(theirs.get("env") or {})
    smuggled = sorted(name for name in env if name.startswith(runcvm_options.PREFIX))
    if smuggled:
        option = runcvm_options.BY_VARIABLE.get(smuggled[0])
        instead = f"use the runcvm_container option {option.name} instead" if option else "it is not a RunCVM option"
        raise AnsibleActionFail(f"env sets {smuggled[0]}: {instead}")
    try:
        rendered = runcvm_options.render(runcvm_options.from_task(ours))
    except runcvm_options.OptionError as error:
        raise AnsibleActionFail(f"runcvm_container: {error}; no container was touched") from error
    comparisons = {"env": "strict", **(theirs.get("comparisons") or {})}
    return {**theirs, "runtime": RUNTIME, "env": {**env, **rendered}, "comparisons": comparisons}, rendered


def refusals_of(theirs: dict) -> str | None:
    """The words of the first entry of RunCVM's refusals that the task's docker_container options meet."""
    for option in dict.fromkeys(entry.option for entry in refusals.REFUSALS):
        value = theirs.get(option)
        if value is None or value == "":
            continue
        try:
            read = TASK_VALUES.get(option, str)(str(value))
        except ValueError as error:
            raise AnsibleActionFail(f"runcvm_container: {option} {value} is not valid: {error}") from error
        refused = refusals.for_task(option, read, str(value))
        if refused:
            return refused
    return None


def guest_answered(exec_result: dict) -> bool:
    """Whether a docker_container_exec result came from the VM's guest, not from an exec client
    that found no VM to ask."""
    return exec_result.get("rc") in GUEST_ANSWERED and layout.VM_NOT_UP not in str(exec_result.get("stderr"))


def vm_sizing(container: dict | None, arguments: dict) -> tuple[bool, str | None]:
    """(whether the task's memory or cpus differ from the existing `container`'s; why it must be
    recreated for them, or None where docker_container changes them in place with `docker update`,
    as the runtime follows it: less memory than the container has now, as the VM gives the rest
    back, and a CPU quota that keeps the VM's vCPU count, which is set when it boots)."""
    if not container:
        return False, None
    host_config = container.get("HostConfig") or {}
    memory, current_memory = arguments.get("memory"), host_config.get("Memory") or 0
    cpus, current_cpus = arguments.get("cpus"), (host_config.get("NanoCpus") or 0) / 1e9
    memory = None if memory is None else human_to_bytes(str(memory))
    cpus = None if cpus is None else float(cpus)
    memory_differs = memory is not None and memory != current_memory
    cpus_differ = cpus is not None and round(cpus * 1e9) != round(current_cpus * 1e9)
    if memory_differs and not 0 < memory <= current_memory:
        return True, f"memory {current_memory or 'unset'} -> {memory} bytes: only less memory is given in place"
    if cpus_differ and (not current_cpus or math.ceil(cpus) != math.ceil(current_cpus)):
        return True, f"cpus {current_cpus:g} -> {cpus:g}: the VM's vCPU count changes"
    return memory_differs or cpus_differ, None


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        ours, theirs = split_arguments(dict(self._task.args))
        theirs = _apply_action_arg_defaults(DOCKER_CONTAINER, self._task, theirs, self._templar)
        arguments, rendered = docker_container_arguments(ours, theirs)
        connection = {key: arguments[key] for key in CONNECTION_OPTIONS if key in arguments}
        resized = False
        if arguments.get("state", "started") != "absent" and ("memory" in arguments or "cpus" in arguments):
            existing = self._execute_module(module_name=DOCKER_INFO, module_args={**connection, "name": arguments["name"]},
                                            task_vars=task_vars)
            if existing.get("failed"):
                result.update(existing)
                return result
            try:
                differs, reason = vm_sizing(existing.get("container"), arguments)
            except ValueError as error:
                raise AnsibleActionFail(f"runcvm_container: memory or cpus is not a size: {error}") from error
            if reason:
                arguments["recreate"] = True
                result["recreate_reason"] = reason
            # docker_container's check mode does not report what it would change with docker update.
            resized = differs and not reason and self._task.check_mode
        result.update(self._execute_module(module_name=DOCKER_CONTAINER, module_args=arguments,
                                           task_vars=task_vars))
        if resized and not result.get("failed"):
            result["changed"] = True
        result["runcvm_env"] = rendered
        if result.get("failed") or not ours["wait"] or self._task.check_mode:
            return result
        if arguments.get("state", "started") == "started":
            # The container is there: a VM that does not answer fails the task, and changed stays true.
            problem = self._wait_for_guest(arguments["name"], connection, ours["wait_timeout"], task_vars, result)
            if problem:
                result.update(failed=True, msg=problem)
        return result

    def _wait_for_guest(self, name: str, connection: dict, timeout: int, task_vars: dict, result: dict) -> str | None:
        """Wait until `docker exec` reaches the VM (the launcher holds an exec until the guest is
        up) and record how long it took in `result`; why it did not, or None."""
        exec_arguments = {**connection, "container": name, "argv": ["true"]}
        started = time.monotonic()
        while True:
            answer = self._execute_module(module_name=DOCKER_EXEC, module_args=exec_arguments, task_vars=task_vars)
            if guest_answered(answer):
                result["guest_up_seconds"] = round(time.monotonic() - started, 1)
                return None
            if "is not running" in str(answer.get("msg")):
                return f"{name} stopped before its VM answered{self._log_tail(name, connection, task_vars)}"
            if time.monotonic() - started > timeout:
                return (f"the VM of {name} did not answer within {timeout} s: {answer.get('stderr') or answer.get('msg')}"
                        f"{self._log_tail(name, connection, task_vars)}")
            time.sleep(1)

    def _log_tail(self, name: str, connection: dict, task_vars: dict) -> str:
        """The end of the container's log (its stdout and stderr, and RunCVM's words), to end a
        failure's message with; "" when the host's docker CLI cannot read it."""
        daemon = ["-H", connection["docker_host"]] if "docker_host" in connection else []
        answer = self._execute_module(module_name="ansible.builtin.command", task_vars=task_vars, module_args={
            "argv": ["docker", *daemon, "logs", "--tail", str(LOG_TAIL_LINES), name]})
        lines = "\n".join(text for text in (answer.get("stdout"), answer.get("stderr")) if text)
        return f"; the end of docker logs {name}:\n{lines}" if answer.get("rc") == 0 and lines else f"; see docker logs {name}"
