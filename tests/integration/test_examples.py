"""The modules' EXAMPLES run as written, in one playbook on this host: what a user copies from
`ansible-doc` works. The images they name (nginx, mariadb) are the factory's, tagged with those
names here, since no registry is reachable; the examples that rewrite daemon.json run last and
the file is put back as it was."""

from __future__ import annotations

import ast
import glob
import json
import pathlib
import shutil

import yaml

from harness.playbooks import run_playbook

from ansible_collections.runcvm.runcvm.plugins.module_utils import _daemon_json
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import HOST_DEFAULTS_FILE

MODULES = pathlib.Path(__file__).parents[2] / "plugins" / "modules"
# In this order: runcvm_tree installs what runcvm_build registered; runcvm_info reports the
# container runcvm_container's examples leave running; runcvm_runtime unregisters the runtime, so
# it comes after the containers; runcvm_defaults's set the host's defaults, then remove them.
ORDER = ("runcvm_build", "runcvm_tree", "runcvm_container", "runcvm_info", "runcvm_runtime", "runcvm_defaults")
# runcvm_tree's example installs this file: the payload built from this tree, as installed.
TREE_EXAMPLE_SOURCE = "/var/tmp/runcvm-payload.tar.gz"
IMAGES = {"nginx": "nginx", "mariadb": "mariadb"}
CONTAINERS, VOLUMES = ("web", "db"), ("db-disks",)


def examples(module: str) -> list[dict]:
    tree = ast.parse((MODULES / f"{module}.py").read_text())
    (text,) = [node.value.value for node in tree.body
               if isinstance(node, ast.Assign) and [target.id for target in node.targets] == ["EXAMPLES"]]
    return yaml.safe_load(text)


def test_every_modules_examples_run_as_written(installed_collection, tmp_path, docker_cli, test_images, payload, runcvm):
    assert sorted(ORDER) == sorted(path.stem for path in MODULES.glob("runcvm_*.py"))
    tasks = [task for module in ORDER for task in examples(module)]
    playbook = tmp_path / "examples.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    daemon_json = pathlib.Path(_daemon_json.DAEMON_JSON)
    kept = daemon_json.read_text()
    shutil.copyfile(payload.tarball, TREE_EXAMPLE_SOURCE)
    for name, tag in IMAGES.items():
        docker_cli.cli("tag", test_images[name], tag)
    try:
        results = run_playbook(installed_collection, playbook)
        web = json.loads(docker_cli.cli("inspect", "web").stdout)[0]
        db_left = docker_cli.cli("ps", "--all", "--quiet", "--filter", "name=^db$").stdout
    finally:
        docker_cli.cli("rm", "--force", *CONTAINERS, check=False)
        docker_cli.cli("volume", "rm", *VOLUMES, check=False)
        docker_cli.cli("rmi", *IMAGES.values(), check=False)
        pathlib.Path(TREE_EXAMPLE_SOURCE).unlink()
        for backup in glob.glob(f"{daemon_json}.*~"):
            pathlib.Path(backup).unlink()
        pathlib.Path(HOST_DEFAULTS_FILE).unlink(missing_ok=True)
        daemon_json.write_text(kept)
        _daemon_json.reload_dockerd()
        assert _daemon_json.wait_for_runtime(runcvm, True)
    assert len(results) == len(tasks)
    for task, result in zip(tasks, results):
        assert not result.get("failed"), (task["name"], result)
    named = dict(zip((task["name"] for task in tasks), results))
    assert named["Build the payload once for all hosts."]["digest"] == payload.manifest["digest"]
    # The VM example: nginx booted, answered, and runs under RunCVM with its port published.
    assert (web["HostConfig"]["Runtime"], web["State"]["Running"]) == (runcvm, True)
    assert web["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == "8080"
    assert db_left == b""
    # runcvm_info lists it, with what RunCVM's helpers take beside its VM.
    (listed,) = [c for c in named["Find out how VMs will run on each host."]["containers"] if c["name"] == "web"]
    overhead = listed["vm_overhead"]
    assert {"qemu-system-x86", "virtiofsd", "runcvm-launcher"} <= set(overhead["by_helper"]), overhead
    assert 0 < overhead["mapped_files_mib"] < overhead["pss_mib"] < 1024, overhead
    assert named["Register it with runc's debug output, keeping a copy of daemon.json as it was."]["changed"]
    assert named["Unregister it."]["changed"]
    assert named["Start every RunCVM container of the host from a warm start's template."]["variables"] == {
        "RUNCVM_WARM_START": "1"}
    assert named["Remove the host's defaults."]["changed"]
