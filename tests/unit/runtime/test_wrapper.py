"""The wrapper reads only what it needs from runc's command line."""

from __future__ import annotations

import json

import pytest

from runcvm import wrapper

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
    assert wrapper.subcommand(argv) == command


@pytest.mark.parametrize("argv, bundle", [
    (DOCKER_CREATE, "/t"),
    (["create", "--bundle=/b", "id"], "/b"),
    (["create", "-b", "/c", "id"], "/c"),
    # "create" is the value of --bundle here, not a subcommand.
    (["--log", "/l", "create", "--bundle", "create", "id"], "create"),
])
def test_bundle_dir(argv, bundle):
    assert wrapper.bundle_dir(argv) == bundle


def test_bundle_defaults_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert wrapper.bundle_dir(["create", "id"]) == str(tmp_path)


def test_global_options():
    options, index = wrapper.global_options(DOCKER_CREATE)
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
    monkeypatch.setattr(wrapper, "rewrite_bundle", lambda bundle, payload: calls.append(("rewrite", bundle)))
    monkeypatch.setattr(wrapper, "find_runc", lambda: "/usr/sbin/runc")
    monkeypatch.setattr(wrapper.os, "execv", lambda path, argv: calls.append(("exec", path, argv)))
    wrapper.main(DOCKER_CREATE)
    assert calls == [("rewrite", "/t"), ("exec", "/usr/sbin/runc", ["/usr/sbin/runc", *DOCKER_CREATE])]
    calls.clear()
    wrapper.main(["--root", "/r", "start", "abc"])
    assert calls == [("exec", "/usr/sbin/runc", ["/usr/sbin/runc", "--root", "/r", "start", "abc"])]


DOCKER_EXEC = ["--root", "/r", "--log", "/l", "--log-format", "json", "exec", "--process", "/tmp/runc-process1",
               "--detach", "--pid-file", "/p", "abc"]


@pytest.mark.parametrize("argv, path", [
    (DOCKER_EXEC, "/tmp/runc-process1"),
    (["exec", "--process=/x", "abc"], "/x"),
    (["exec", "-p", "/y", "abc"], "/y"),
    (["exec", "abc", "ls"], None),
])
def test_process_file(argv, path):
    assert wrapper.process_file(argv) == path


def test_exec_rewrites_the_process_then_execs_runc(monkeypatch):
    calls = []
    monkeypatch.setattr(wrapper, "rewrite_process", lambda path: calls.append(("rewrite", path)))
    monkeypatch.setattr(wrapper, "find_runc", lambda: "/usr/sbin/runc")
    monkeypatch.setattr(wrapper.os, "execv", lambda path, argv: calls.append(("exec", path, argv)))
    wrapper.main(DOCKER_EXEC)
    assert calls == [("rewrite", "/tmp/runc-process1"), ("exec", "/usr/sbin/runc", ["/usr/sbin/runc", *DOCKER_EXEC])]
