"""Where the tests keep the builders' output."""

from __future__ import annotations

import os
import pathlib

# The builders' cache, shared with scripts/runcvm-build and scripts/quickstart so warm runs reuse it.
BUILD_CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "runcvm"


def quiet(line: str) -> None:
    del line


RUNTIME = "runcvm"
PAYLOAD_DIR = pathlib.Path("/opt/runcvm")


def install_runcvm(payload, kernel) -> None:
    """Install a payload and a kernel built by the builders as the roles would, and register the
    runtime with the running dockerd."""
    from ansible_collections.runcvm.runcvm.plugins.module_utils import _daemon_json
    from ansible_collections.runcvm.runcvm.plugins.module_utils._fileutil import atomic_write
    from ansible_collections.runcvm.runcvm.plugins.module_utils._tree_install import install_tree, installed_digest

    if installed_digest(PAYLOAD_DIR) != payload.manifest["digest"]:
        install_tree(payload.tarball, PAYLOAD_DIR, payload.manifest["digest"], keep=["kernels"])
    kernel_dir = PAYLOAD_DIR / "kernels" / kernel.distribution / kernel.version
    if installed_digest(kernel_dir) != kernel.manifest["digest"]:
        install_tree(kernel.tarball, kernel_dir, kernel.manifest["digest"])
    latest = kernel_dir.parent / "latest"
    if not latest.is_symlink() or latest.resolve() != kernel_dir:
        latest.unlink(missing_ok=True)
        latest.symlink_to(kernel.version)
    daemon_json = pathlib.Path(_daemon_json.DAEMON_JSON)
    before = _daemon_json.load(daemon_json.read_text() if daemon_json.exists() else None)
    after = _daemon_json.with_runtime(before, RUNTIME, str(PAYLOAD_DIR / "bin" / "runcvm-runtime"))
    if after != before:
        daemon_json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(daemon_json, _daemon_json.render(after).encode())
    _daemon_json.reload_dockerd()
    if not _daemon_json.wait_for_runtime(RUNTIME, True):
        raise RuntimeError("dockerd does not list the runcvm runtime after a reload")
