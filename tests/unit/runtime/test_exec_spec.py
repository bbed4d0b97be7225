"""process.json rewriting for docker exec."""

from __future__ import annotations

import json

from runcvm import spec

PROCESS = {"terminal": True, "user": {"uid": 1000, "gid": 1000, "additionalGids": [27]}, "args": ["ls", "-l"],
           "env": ["PATH=/bin", "FOO=exec-value", "RUNCVM_ACCEL=tcg"], "cwd": "/srv", "capabilities": {}}


def test_exec_runs_the_client_which_carries_the_request():
    process = spec.rewrite_exec(json.loads(json.dumps(PROCESS)))
    assert process["args"] == [spec.EXEC_CLIENT]
    assert process["user"] == {"uid": 0, "gid": 0} and process["cwd"] == "/"
    (entry,) = process["env"]
    name, value = entry.split("=", 1)
    assert name == spec.EXEC_REQUEST
    assert json.loads(value) == {"args": ["ls", "-l"], "env": ["PATH=/bin", "FOO=exec-value"], "cwd": "/srv",
                                 "terminal": True,
                                 "user": {"uid": 1000, "gid": 1000, "groups": [27], "umask": None}}


def test_rewriting_an_exec_twice_changes_nothing_more():
    once = spec.rewrite_exec(json.loads(json.dumps(PROCESS)))
    assert spec.rewrite_exec(json.loads(json.dumps(once))) == once


def test_the_escape_runs_the_command_in_the_container():
    process = spec.rewrite_exec({**PROCESS, "args": ["---", "ps", "ax"]})
    assert process["args"] == ["ps", "ax"] and process["user"]["uid"] == 1000
