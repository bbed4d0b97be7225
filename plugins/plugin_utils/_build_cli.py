# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""runcvm-build: build the payload and guest kernels outside Ansible, or refresh the pins."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

from ansible_collections.runcvm.runcvm.plugins.module_utils._tree_install import install_tree, installed_digest
from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _pins
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._kernel import build_kernel
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._payload import build_payload

DEFAULT_CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "runcvm"


def log(line: str) -> None:
    print(line, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="runcvm-build", description=__doc__)
    parser.add_argument("--cache-dir", type=pathlib.Path, default=DEFAULT_CACHE,
                        help=f"where downloads and builds are kept (default: {DEFAULT_CACHE})")
    parser.add_argument("--pins", type=pathlib.Path, default=_pins.PINS_FILE, help="the pins file")
    commands = parser.add_subparsers(dest="command", required=True)
    payload = commands.add_parser("payload", help="build the payload tree, tarball and manifest")
    payload.add_argument("--force", action="store_true", help="rebuild even if cached")
    payload.add_argument("--install", type=pathlib.Path, metavar="DIR",
                         help="also install the payload at DIR (such as /opt/runcvm), keeping its kernels")
    kernel = commands.add_parser("kernel", help="build a guest kernel with RunCVM's initramfs")
    kernel.add_argument("kernel", nargs="?", default="trixie/linux-image-cloud-amd64",
                        help="a pinned kernel: <release>/<package> (default: %(default)s)")
    kernel.add_argument("--force", action="store_true", help="rebuild even if cached")
    commands.add_parser("lock", help="move the pins to the versions the mirror and PyPI serve today")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        pins = _pins.load(args.pins)
        if args.command == "lock":
            _pins.save(_pins.refresh(pins, args.cache_dir, log), args.pins)
            log(f"pins: wrote {args.pins}")
        elif args.command == "payload":
            build = build_payload(pins, args.cache_dir, log, force=args.force)
            log(f"tree:     {build.tree}\ntarball:  {build.tarball}\ndigest:   {build.manifest['digest']}")
            if args.install and installed_digest(args.install) != build.manifest["digest"]:
                install_tree(build.tarball, args.install, build.manifest["digest"], keep=["kernels"])
                log(f"installed at {args.install}")
        else:
            build = build_kernel(pins, args.kernel, args.cache_dir, log, force=args.force)
            log(f"kernel:   {build.distribution}/{build.version}\ntree:     {build.tree}\n"
                f"tarball:  {build.tarball}\ndigest:   {build.manifest['digest']}")
    except BuildError as error:
        print(f"runcvm-build: {error}", file=sys.stderr)
        return 1
    return 0
