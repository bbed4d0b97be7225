"""runcvm_runtime, run by ansible as a playbook would: daemon.json merged, checked, never damaged."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

RUNTIME = {"runcvm": {"path": "/opt/runcvm/bin/runcvm-runtime"}}
# A dockerd that knows --validate and rejects any file holding "debug".
FAKE_DOCKERD = """#!/bin/sh
case "$1" in
  --help) echo "      --validate   Validate daemon configuration and exit" ;;
  --validate) grep -q debug "$3" && { echo "unable to configure the Docker daemon: debug is wrong" >&2; exit 1; }
              echo "configuration OK" ;;
esac
"""


def run_module(collections_path, *args, bin_dir=None, check=False):
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections_path), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json"}
    if bin_dir:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    command = [pathlib.Path(sys.executable).parent / "ansible", "localhost", "-m", "runcvm.runcvm.runcvm_runtime",
               "-a", " ".join(args), "-e", f"ansible_python_interpreter={sys.executable}"]
    if check:
        command.append("--check")
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    return json.loads(completed.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_merge_keeps_every_other_key_and_a_rerun_changes_nothing(installed_collection, tmp_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps({"log-level": "warn", "runtimes": {"other": {"path": "/x"}}}))
    first = run_module(installed_collection, f"daemon_json={daemon_json}", "reload=false")
    assert first["changed"] and not first.get("failed")
    assert json.loads(daemon_json.read_text()) == {"log-level": "warn", "runtimes": {"other": {"path": "/x"}, **RUNTIME}}
    assert not run_module(installed_collection, f"daemon_json={daemon_json}", "reload=false")["changed"]


def test_check_mode_reports_the_change_and_writes_nothing(installed_collection, tmp_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text('{"log-level": "warn"}')
    result = run_module(installed_collection, f"daemon_json={daemon_json}", "reload=false", check=True)
    assert result["changed"]
    assert daemon_json.read_text() == '{"log-level": "warn"}'


def test_invalid_json_fails_and_is_left_untouched(installed_collection, tmp_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text("{not json")
    result = run_module(installed_collection, f"daemon_json={daemon_json}", "reload=false")
    assert result["failed"] and "is not valid JSON" in result["msg"] and "left untouched" in result["msg"]
    assert daemon_json.read_text() == "{not json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.json"]


def test_a_file_dockerd_validate_rejects_is_not_written(installed_collection, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dockerd").write_text(FAKE_DOCKERD)
    (bin_dir / "dockerd").chmod(0o755)
    config = tmp_path / "etc"
    config.mkdir()
    rejected, accepted = config / "rejected.json", config / "accepted.json"
    rejected.write_text('{"debug": true}')
    accepted.write_text('{"log-level": "warn"}')
    result = run_module(installed_collection, f"daemon_json={rejected}", "reload=false", bin_dir=bin_dir)
    assert result["failed"] and "dockerd --validate rejects" in result["msg"] and "debug is wrong" in result["msg"]
    assert rejected.read_text() == '{"debug": true}'
    result = run_module(installed_collection, f"daemon_json={accepted}", "reload=false", bin_dir=bin_dir)
    assert result["changed"] and result["validated"]
    # The candidate file dockerd checked is gone either way.
    assert sorted(p.name for p in config.iterdir()) == ["accepted.json", "rejected.json"]


def test_absent_removes_only_the_runtime(installed_collection, tmp_path):
    daemon_json = tmp_path / "daemon.json"
    daemon_json.write_text(json.dumps({"log-level": "warn", "runtimes": RUNTIME}))
    result = run_module(installed_collection, f"daemon_json={daemon_json}", "state=absent", "reload=false")
    assert result["changed"]
    assert json.loads(daemon_json.read_text()) == {"log-level": "warn"}
