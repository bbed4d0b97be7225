"""daemon.json merged with RunCVM's runtime: every other key kept, bad files refused with words."""

from __future__ import annotations

import signal

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils import _daemon_json
from ansible_collections.runcvm.runcvm.plugins.module_utils._daemon_json import DaemonJsonError, load, render, with_runtime


@pytest.mark.parametrize("text", [None, "", "  \n"])
def test_a_missing_or_empty_file_is_an_empty_config(text):
    assert load(text) == {}


@pytest.mark.parametrize("text, message", [
    ("{not json", "/etc/docker/daemon.json is not valid JSON .*left untouched"),
    ("[1, 2]", "holds a JSON list, not an object; it was left untouched"),
])
def test_a_file_that_is_not_a_json_object_is_refused(text, message):
    with pytest.raises(DaemonJsonError, match=message):
        load(text)


def test_adding_keeps_every_other_key_and_runtime_and_the_runtimes_own_options():
    config = {"log-level": "warn", "runtimes": {"other": {"path": "/x"}, "runcvm": {"path": "/old", "runtimeArgs": ["-d"]}}}
    updated = with_runtime(config, "runcvm", "/opt/runcvm/bin/runcvm-runtime")
    assert updated == {"log-level": "warn", "runtimes": {"other": {"path": "/x"}, "runcvm": {
        "path": "/opt/runcvm/bin/runcvm-runtime", "runtimeArgs": ["-d"]}}}
    assert config["runtimes"]["runcvm"]["path"] == "/old"


def test_runtime_args_are_set_kept_or_removed():
    config = {"runtimes": {"runcvm": {"path": "/p", "runtimeArgs": ["--debug"]}}}
    assert with_runtime(config, "runcvm", "/p", args=["--systemd-cgroup"])["runtimes"]["runcvm"] == {
        "path": "/p", "runtimeArgs": ["--systemd-cgroup"]}
    assert with_runtime(config, "runcvm", "/p")["runtimes"]["runcvm"] == {"path": "/p", "runtimeArgs": ["--debug"]}
    assert with_runtime(config, "runcvm", "/p", args=[])["runtimes"]["runcvm"] == {"path": "/p"}


def test_removing_the_last_runtime_removes_the_key():
    assert with_runtime({"debug": True, "runtimes": {"runcvm": {"path": "/p"}}}, "runcvm", None) == {"debug": True}
    assert with_runtime({"debug": True}, "runcvm", None) == {"debug": True}


def test_dockerds_own_runtime_names_are_refused():
    with pytest.raises(DaemonJsonError, match="the runtime name runc belongs to dockerd"):
        with_runtime({}, "runc", "/x")


def test_render_is_stable_json_with_a_final_newline():
    assert render({"a": 1}) == '{\n  "a": 1\n}\n'
    assert load(render({"b": [1]})) == {"b": [1]}


@pytest.mark.parametrize("config, where", [
    ({"runtimes": ["runcvm"]}, "runtimes is not a JSON object"),
    ({"runtimes": {"runcvm": "/opt/runcvm/bin/runcvm-runtime"}}, "runtimes.runcvm is not a JSON object"),
])
def test_runtimes_dockerd_would_refuse_are_named_not_crashed_on(config, where):
    with pytest.raises(DaemonJsonError, match=f"/etc/docker/daemon.json: {where}, as dockerd requires"):
        with_runtime(config, "runcvm", "/p")


def test_reload_signals_dockerd_and_nothing_else(tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr(_daemon_json.os, "kill", lambda pid, number: sent.append((pid, number)))
    pidfile, proc = tmp_path / "docker.pid", tmp_path / "proc"
    for pid, command in ((100, "dockerd"), (200, "sshd")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(f"{command}\n")
    assert not _daemon_json.reload_dockerd(str(pidfile), str(proc))
    pidfile.write_text("not a pid")
    assert not _daemon_json.reload_dockerd(str(pidfile), str(proc))
    pidfile.write_text("300\n")  # gone
    assert not _daemon_json.reload_dockerd(str(pidfile), str(proc))
    pidfile.write_text("200\n")  # a stale file naming another process
    assert not _daemon_json.reload_dockerd(str(pidfile), str(proc))
    pidfile.write_text("100\n")
    assert _daemon_json.reload_dockerd(str(pidfile), str(proc))
    assert sent == [(100, signal.SIGHUP)]
