# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import json
import os
import pathlib
import tarfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.runcvm.runcvm.plugins.module_utils._manifest import MANIFEST_NAME
from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _pins
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._kernel import build_kernel
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._payload import build_payload

display = Display()

ARGUMENT_SPEC = {
    "artifact": {"type": "str", "choices": ["payload", "kernel"], "required": True},
    "kernel": {"type": "str", "default": "trixie/linux-image-cloud-amd64"},
    "cache_dir": {"type": "path", "default": "~/.cache/runcvm"},
    "pins": {"type": "path"},
    "force": {"type": "bool", "default": False},
    "tarball": {"type": "path"},
}


def read_tarball_manifest(tarball: pathlib.Path) -> dict:
    """The manifest a payload or kernel tarball carries, without unpacking the rest."""
    try:
        with tarfile.open(tarball) as archive:
            member = next((m for m in archive.getmembers() if m.name.removeprefix("./") == MANIFEST_NAME), None)
            if member is None:
                raise BuildError(f"{tarball} holds no {MANIFEST_NAME}; give a tarball runcvm_build made")
            return json.load(archive.extractfile(member))
    except (OSError, tarfile.TarError, ValueError) as error:
        raise BuildError(f"cannot read {tarball}: {error}") from error


class ActionModule(ActionBase):
    """Builds on the controller; the target host is not contacted."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        cache_dir = pathlib.Path(os.path.expanduser(args["cache_dir"]))
        log = []

        def progress(line: str) -> None:
            """A build takes minutes: each step is shown as it starts, at every verbosity."""
            log.append(line)
            display.display(f"runcvm_build: {line}")

        try:
            pins = _pins.load(pathlib.Path(args["pins"]) if args["pins"] else _pins.PINS_FILE)
            if args["tarball"]:
                if args["artifact"] != "payload":
                    raise BuildError("tarball is for artifact=payload only; kernels are built from their pins")
                tarball = pathlib.Path(args["tarball"])
                manifest = read_tarball_manifest(tarball)
                result.update(tarball=str(tarball), digest=manifest["digest"], total_size=manifest["total_size"],
                              built=False)
            elif args["artifact"] == "payload":
                build = build_payload(pins, cache_dir, progress, force=args["force"])
                result.update(tarball=str(build.tarball), digest=build.manifest["digest"],
                              total_size=build.manifest["total_size"], built=build.built)
            else:
                kernel = build_kernel(pins, args["kernel"], cache_dir, progress, force=args["force"])
                result.update(tarball=str(kernel.tarball), digest=kernel.manifest["digest"], built=kernel.built,
                              total_size=kernel.manifest["total_size"], distribution=kernel.distribution,
                              version=kernel.version)
        except BuildError as error:
            raise AnsibleActionFail(f"building the {args['artifact']} failed: {error}") from error
        result["changed"] = result["built"]
        result["log"] = log
        return result
