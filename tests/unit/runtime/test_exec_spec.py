"""process.json rewriting for docker exec."""

from __future__ import annotations

import json

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout, plan
from runcvm import exec_spec

PROCESS = {"terminal": True, "user": {"uid": 1000, "gid": 1000, "additionalGids": [27]}, "args": ["ls", "-l"],
           "env": ["PATH=/bin", "FOO=exec-value", "RUNCVM_ACCEL=tcg"], "cwd": "/srv", "capabilities": {}}


def test_exec_runs_the_client_which_carries_the_request():
    process = exec_spec.rewrite_exec(json.loads(json.dumps(PROCESS)))
    assert process["args"][0] == layout.EXEC_CLIENT
    assert process["user"] == {"uid": 0, "gid": 0} and process["cwd"] == "/" and process["env"] == []
    assert plan.loads(plan.Process, "".join(process["args"][1:]), "request") == plan.Process(
        args=("ls", "-l"), env=("PATH=/bin", "FOO=exec-value"), cwd="/srv", terminal=True,
        user=plan.User(uid=1000, gid=1000, groups=(27,), umask=None))


def test_rewriting_an_exec_twice_changes_nothing_more():
    once = exec_spec.rewrite_exec(json.loads(json.dumps(PROCESS)))
    assert exec_spec.rewrite_exec(json.loads(json.dumps(once))) == once


def test_the_escape_runs_the_command_in_the_container():
    process = exec_spec.rewrite_exec({**PROCESS, "args": ["---", "ps", "ax"]})
    assert process["args"] == ["ps", "ax"] and process["user"]["uid"] == 1000


def test_a_request_larger_than_linux_takes_in_one_argument_travels_in_pieces():
    longest = "x" * (128 * 1024 - 1)  # the longest argument Linux passes
    process = exec_spec.rewrite_exec({**PROCESS, "args": ["echo", longest], "env": ["BIG=" + longest]})
    pieces = process["args"][1:]
    assert len(pieces) > 4 and all(len(piece.encode()) <= exec_spec.REQUEST_PIECE for piece in pieces)
    request = plan.loads(plan.Process, "".join(pieces), "request")
    assert request.args == ("echo", longest) and request.env == ("BIG=" + longest,)
