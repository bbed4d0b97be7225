"""The wrapper reads only what it needs from runc's command line."""

from __future__ import annotations

import ast
import io
import json
import pathlib
import subprocess
import sys
import types

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan
from oci_cases import context, load
from runcvm import modifiers, rewrite, runc_cli, wrapper

DOCKER_CREATE = ["--root", "/var/run/docker/runtime-runc/moby", "--log", "/t/log.json", "--log-format", "json",
                 "create", "--bundle", "/t", "--pid-file", "/t/init.pid", "abc"]


@pytest.mark.parametrize("argv, command", [
    (DOCKER_CREATE, "create"),
    (["--root", "/r", "start", "abc"], "start"),
    (["--debug", "--log=/l", "kill", "abc", "9"], "kill"),
    (["--systemd-cgroup", "exec", "--process", "/p", "abc"], "exec"),
    ([], None),
])
def test_subcommand(argv, command):
    assert runc_cli.subcommand(argv) == command


@pytest.mark.parametrize("argv, bundle", [
    (DOCKER_CREATE, "/t"),
    (["create", "--bundle=/b", "id"], "/b"),
    (["create", "-b", "/c", "id"], "/c"),
    # "create" is the value of --bundle here, not a subcommand.
    (["--log", "/l", "create", "--bundle", "create", "id"], "create"),
])
def test_bundle_dir(argv, bundle):
    assert runc_cli.bundle_dir(argv) == bundle


@pytest.mark.parametrize("argv", [["create", "--bundle"], ["exec", "--process"], ["exec", "-p"]])
def test_an_option_without_its_value_fails_with_words_in_the_log(tmp_path, capsys, argv):
    log = tmp_path / "log.json"
    assert wrapper.main(["--log", str(log), "--log-format", "json", *argv]) == 1
    assert json.loads(log.read_text())["msg"] == f"runcvm: {argv[1]} needs a value"
    assert f"runcvm: {argv[1]} needs a value" in capsys.readouterr().err


def test_bundle_defaults_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runc_cli.bundle_dir(["create", "id"]) == str(tmp_path)


def test_global_options():
    options, index = runc_cli.global_options(DOCKER_CREATE)
    assert options == {"--root": "/var/run/docker/runtime-runc/moby", "--log": "/t/log.json", "--log-format": "json"}
    assert DOCKER_CREATE[index] == "create"


def test_errors_follow_the_containerd_log_contract(tmp_path, capsys):
    log = tmp_path / "log.json"
    wrapper.log_error({"--log": str(log), "--log-format": "json"}, "RUNCVM_ACCEL=x is not one of auto, kvm, tcg")
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["level"] == "error" and line["msg"] == "runcvm: RUNCVM_ACCEL=x is not one of auto, kvm, tcg"
    assert "time" in line
    assert "RUNCVM_ACCEL=x" in capsys.readouterr().err


def test_runc_override(tmp_path):
    runc = tmp_path / "runc"
    runc.write_text("#!/bin/sh\n")
    runc.chmod(0o755)
    assert wrapper.find_runc({"RUNCVM_RUNC": str(runc)}) == str(runc)
    with pytest.raises(wrapper.WrapperError, match="RUNCVM_RUNC=/nonexistent is not an executable runc"):
        wrapper.find_runc({"RUNCVM_RUNC": "/nonexistent"})


def test_create_rewrites_the_bundle_then_execs_runc(tmp_path, monkeypatch):
    calls = []
    planned = types.SimpleNamespace(options=types.SimpleNamespace(virtiofsd_cache="auto"))
    monkeypatch.setattr(rewrite, "rewrite_bundle",
                        lambda context: calls.append(("rewrite", context.bundle)) or ("/t/rootfs", planned))
    monkeypatch.setattr(wrapper, "find_runc", lambda: "/usr/sbin/runc")
    monkeypatch.setattr(wrapper.os, "execv", lambda path, argv: calls.append(("exec", path, argv)))
    wrapper.main(DOCKER_CREATE)
    assert calls == [("rewrite", "/t"), ("exec", "/usr/sbin/runc", ["/usr/sbin/runc", *DOCKER_CREATE])]
    calls.clear()
    wrapper.main(["--root", "/r", "start", "abc"])
    assert calls == [("exec", "/usr/sbin/runc", ["/usr/sbin/runc", "--root", "/r", "start", "abc"])]


def modules_loaded_by(tmp_path: pathlib.Path, argv: list[str]) -> list[str]:
    """RunCVM's modules the wrapper has loaded when it execs runc for `argv`, in a new interpreter."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        f"import os, sys\nsys.path[:0] = {sys.path!r}\n"
        "from runcvm import wrapper\n"
        "os.execv = lambda path, argv: print(sorted(name for name in sys.modules if name.startswith(('runcvm', 'ansible'))))\n"
        f"wrapper.main({argv!r})\n")
    loaded = subprocess.run([sys.executable, "-I", str(probe)], capture_output=True, text=True, check=True)
    return ast.literal_eval(loaded.stdout)


def test_runcs_other_subcommands_pass_through_without_the_rewrites_imports(tmp_path):
    """start, state, kill and delete run on the path of every `docker run`: the wrapper execs runc
    for them with none of what create, exec and update need loaded."""
    assert modules_loaded_by(tmp_path, ["--root", "/r", "delete", "--force", "abc"]) == \
        ["runcvm", "runcvm.runc_cli", "runcvm.wrapper"]


def test_an_exec_loads_none_of_creates_machinery(tmp_path):
    """Each `docker exec` runs the wrapper: it rewrites the process without create's imports."""
    process_json = tmp_path / "process.json"
    process_json.write_text(json.dumps({"args": ["true"], "env": [], "cwd": "/"}))
    loaded = modules_loaded_by(tmp_path, ["exec", "--process", str(process_json), "abc"])
    assert "runcvm.exec_spec" in loaded and "runcvm.rewrite" not in loaded and "runcvm.modifiers" not in loaded


def test_a_refused_create_is_an_error_in_the_log(tmp_path, kernels, monkeypatch):
    config = load("plain", tmp_path)
    config["process"]["env"].append("RUNCVM_ACCEL=warp")
    (tmp_path / "config.json").write_text(json.dumps(config))
    made = context(tmp_path, kernels)
    monkeypatch.setattr(modifiers, "Context", lambda bundle, payload_dir: made)
    log = tmp_path / "log.json"
    assert wrapper.main(["--log", str(log), "--log-format", "json", "create", "--bundle", str(tmp_path), "abc"]) == 1
    assert "RUNCVM_ACCEL=warp" in json.loads(log.read_text())["msg"]


DOCKER_EXEC = ["--root", "/r", "--log", "/l", "--log-format", "json", "exec", "--process", "/tmp/runc-process1",
               "--detach", "--pid-file", "/p", "abc"]


@pytest.mark.parametrize("argv, path", [
    (DOCKER_EXEC, "/tmp/runc-process1"),
    (["exec", "--process=/x", "abc"], "/x"),
    (["exec", "-p", "/y", "abc"], "/y"),
    (["exec", "abc", "ls"], None),
])
def test_process_file(argv, path):
    assert runc_cli.process_file(argv) == path


def test_exec_rewrites_the_process_then_execs_runc(monkeypatch, tmp_path):
    process_json = tmp_path / "runc-process1"
    process_json.write_text(json.dumps({"args": ["true"], "env": ["A=1"], "cwd": "/", "user": {"uid": 0, "gid": 0}}))
    process_json.chmod(0o640)
    argv = [part.replace("/tmp/runc-process1", str(process_json)) for part in DOCKER_EXEC]
    calls = []
    monkeypatch.setattr(wrapper, "find_runc", lambda: "/usr/sbin/runc")
    monkeypatch.setattr(wrapper.os, "execv", lambda path, argv: calls.append((path, argv)))
    wrapper.main(argv)
    assert calls == [("/usr/sbin/runc", ["/usr/sbin/runc", *argv])]
    rewritten = json.loads(process_json.read_text())
    assert rewritten["args"][0] == layout.EXEC_CLIENT
    assert plan.loads(plan.Process, "".join(rewritten["args"][1:]), "the request").args == ("true",)
    # Replaced whole, as it was: its mode, and nothing beside it.
    assert process_json.stat().st_mode & 0o777 == 0o640 and [p.name for p in tmp_path.iterdir()] == ["runc-process1"]


def test_an_exec_whose_process_cannot_be_read_is_refused_in_words(tmp_path, capsys):
    argv = [part.replace("/tmp/runc-process1", str(tmp_path / "missing")) for part in DOCKER_EXEC]
    argv = [part.replace("/l", str(tmp_path / "log")) if part == "/l" else part for part in argv]
    assert wrapper.main(argv) == 1
    assert "runcvm: cannot prepare the exec: [Errno 2] No such file or directory" in capsys.readouterr().err
    assert "cannot prepare the exec" in json.loads((tmp_path / "log").read_text())["msg"]


def test_create_writes_the_plan_beside_the_config_it_names(tmp_path, kernels):
    (tmp_path / "config.json").write_text(json.dumps(load("plain", tmp_path)))
    rewrite.rewrite_bundle(context(tmp_path, kernels))
    config = json.loads((tmp_path / "config.json").read_text())
    plan_file = tmp_path / modifiers.PLAN_NAME
    assert {"destination": "/run/runcvm/plan.json", "type": "bind", "source": str(plan_file),
            "options": ["bind", "rprivate", "ro"]} in config["mounts"]
    assert plan.loads(plan.VmPlan, plan_file.read_text(), "plan").workload.args == ("true",)
    assert plan_file.stat().st_mode & 0o777 == 0o400
    assert sorted(path.name for path in (tmp_path / modifiers.STATE_NAME).iterdir()) == ["dns", "guest"]
    before = sorted(path.name for path in tmp_path.iterdir()), (tmp_path / "config.json").read_bytes()
    rewrite.rewrite_bundle(context(tmp_path, kernels))
    assert (sorted(path.name for path in tmp_path.iterdir()), (tmp_path / "config.json").read_bytes()) == before


def test_a_refused_create_writes_nothing(tmp_path, kernels):
    config = load("plain", tmp_path)
    config["process"]["env"].append("RUNCVM_ACCEL=warp")
    (tmp_path / "config.json").write_text(json.dumps(config))
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(modifiers.SpecError, match="RUNCVM_ACCEL=warp"):
        rewrite.rewrite_bundle(context(tmp_path, kernels))
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    assert json.loads((tmp_path / "config.json").read_text()) == config


def test_runtime_debug_writes_what_was_decided_on_the_host(tmp_path, kernels):
    config = load("plain", tmp_path)
    config["process"]["env"].append("RUNCVM_RUNTIME_DEBUG=1")
    (tmp_path / "config.json").write_text(json.dumps(config))
    debug_log = pathlib.Path(rewrite.debug_log_path(str(tmp_path)))
    try:
        rewrite.rewrite_bundle(context(tmp_path, kernels))
        decided = json.loads(debug_log.read_text())
    finally:
        debug_log.unlink(missing_ok=True)
    assert debug_log.name == f"runcvm-{tmp_path.name}.json"
    assert decided["original"] == config
    assert decided["rewritten"] == json.loads((tmp_path / "config.json").read_text())
    assert decided["plan"]["workload"]["args"] == ["true"]


@pytest.fixture
def booted(tmp_path, kernels):
    """(a runc that knows the container's bundle and keeps the resources `update` gives it in
    given.json there, the bundle): a VM created with --memory 256m and --pids-limit 100, as
    `runc update` finds it. Its pid has no VM monitor, as a VM started by an older RunCVM."""
    config = load("plain", tmp_path)
    config["linux"].setdefault("resources", {}).update(memory={"limit": 256 * 2**20}, pids={"limit": 100})
    (tmp_path / "config.json").write_text(json.dumps(config))
    rewrite.rewrite_bundle(context(tmp_path, kernels))
    runc = tmp_path / "runc"
    runc.write_text(f"""#!/bin/sh
case " $* " in
*' state abc ') echo '{{"bundle": "{tmp_path}", "pid": 1}}' ;;
*' update '*)
    previous=
    for argument; do
        case $argument in --resources=*) cat "${{argument#--resources=}}" > {tmp_path}/given.json ;; esac
        [ "$previous" = --resources ] && cat "$argument" > {tmp_path}/given.json
        previous=$argument
    done ;;
*) exit 1 ;;
esac
""")
    runc.chmod(0o755)
    return str(runc), tmp_path


def updated(booted, resources: dict) -> dict:
    """The resources runc is given for `resources` (as containerd sends them: a file)."""
    runc, bundle = booted
    path = bundle / "resources.json"
    path.write_text(json.dumps(resources))
    assert rewrite.update(["--root", "/r", "update", "--resources", str(path), "abc"], runc) == 0
    return json.loads((bundle / "given.json").read_text())


def test_an_update_keeps_the_vm_its_memory_and_room_for_its_helpers(booted):
    given = updated(booted, {"memory": {"limit": 256 * 2**20, "swap": 512 * 2**20}, "pids": {"limit": 100},
                             "cpu": {"quota": 150000, "period": 100000}})
    overhead = modifiers.MEMORY_OVERHEAD_MIB * 2**20
    assert given["memory"] == {"limit": 256 * 2**20 + overhead, "swap": 512 * 2**20 + overhead}
    assert given["pids"] == {"limit": 100 + modifiers.PIDS_OVERHEAD}
    assert given["cpu"] == {"quota": 150000, "period": 100000}  # the quota caps QEMU, as runc's caps the container
    assert updated(booted, {"cpu": {"shares": 512}}) == {"cpu": {"shares": 512}}


@pytest.mark.parametrize("resources, message", [
    ({"memory": {"limit": 700 * 2**20, "swap": 2**30}},
     "--memory 700m: the VM booted with 256 MiB, the most it can have while it runs; recreate the container"),
    ({"memory": {"limit": 32 * 2**20}}, "--memory 32m is too small for a VM"),
    ({"pids": {"limit": 50}}, "--pids-limit 50: the VM booted with --pids-limit 100 and keeps it"),
])
def test_an_update_the_vm_cannot_follow_is_refused(booted, resources, message):
    with pytest.raises(modifiers.SpecError, match=message):
        updated(booted, resources)


def test_update_reads_its_resources_from_standard_input_as_containerd_sends_them(booted, monkeypatch):
    runc, bundle = booted
    monkeypatch.setattr(rewrite.sys, "stdin", io.StringIO(json.dumps({"memory": {"limit": 256 * 2**20}})))
    assert rewrite.update(["update", "--resources=-", "abc"], runc) == 0
    assert json.loads((bundle / "given.json").read_text())["memory"]["limit"] == 512 * 2**20


def test_a_vm_that_cannot_be_resized_refuses_another_memory(booted):
    """A VM started by a RunCVM without the update monitor keeps its boot memory, with words."""
    with pytest.raises(wrapper.WrapperError, match="--memory 200m: cannot reach the VM's monitor .*recreate the container"):
        updated(booted, {"memory": {"limit": 200 * 2**20}})
