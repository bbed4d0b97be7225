"""An upgrade of the payload while a VM runs: the running VM keeps the payload it started with
(its docker exec goes on working), a new docker run gets the new one, and the old tree goes once
no container uses it."""

from __future__ import annotations

import os
import shutil

from ansible_collections.runcvm.runcvm.plugins.module_utils._manifest import write_manifest
from ansible_collections.runcvm.runcvm.plugins.module_utils._tree_install import (
    install_tree, remove_unused_retired, retired_trees,
)
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._files import reproducible_tarball
from harness.builds import PAYLOAD_DIR
from harness.waiting import wait_for
from test_faults import DEBIAN, started_vm

MARKER = "upgraded"


def another_payload(payload, workdir):
    """The tested payload with one file more: another digest, the same behaviour."""
    tree = workdir / "payload"
    shutil.copytree(payload.tree, tree, symlinks=True, copy_function=os.link)
    (tree / MARKER).write_text("a newer payload\n")
    digest = write_manifest(tree, workdir / "manifest.json", {"name": "runcvm-payload-upgrade-test"})["digest"]
    tarball = workdir / "payload.tar.gz"
    reproducible_tarball(tree, tarball)
    return tarball, digest


def test_an_upgrade_leaves_running_vms_working(docker_cli, runcvm, test_images, payload, tmp_path,
                                               nothing_left_behind):
    old = started_vm(docker_cli, runcvm, test_images)
    tarball, digest = another_payload(payload, tmp_path)
    try:
        install_tree(tarball, PAYLOAD_DIR, digest, keep=["kernels"])
        assert len(retired_trees(PAYLOAD_DIR)) == 1  # the tree the running VM uses
        assert docker_cli.cli("exec", old, "echo", "still here").stdout == b"still here\n"
        assert docker_cli.cli("exec", old, "test", "-e", f"/.runcvm/guest/{MARKER}", check=False).returncode == 1
        new = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", test_images[DEBIAN],
                             "cat", f"/.runcvm/guest/{MARKER}", check=False)
        assert new.stdout == b"a newer payload\n", new.stderr
        docker_cli.cli("rm", "-f", old)
    finally:
        install_tree(payload.tarball, PAYLOAD_DIR, payload.manifest["digest"], keep=["kernels"])

    def all_retired_gone():
        remove_unused_retired(PAYLOAD_DIR)
        return not retired_trees(PAYLOAD_DIR)

    wait_for(all_retired_gone, 30, 1, "the retired payloads to go once no container uses them")
