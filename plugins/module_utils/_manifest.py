# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this module util is **PRIVATE** to the collection; no Ansible imports here.
"""Manifests: what a built tree holds, file by file, with a digest that names its content."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import typing as t

from ansible_collections.runcvm.runcvm.plugins.module_utils._fileutil import atomic_write, sha256_file

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


def describe_tree(tree: pathlib.Path) -> dict[str, dict[str, t.Any]]:
    """Every file and symlink under `tree`: sha256, size and mode, or the link target."""
    entries = {}
    for path in sorted(tree.rglob("*")):
        relative = path.relative_to(tree).as_posix()
        if relative == MANIFEST_NAME:
            continue
        if path.is_symlink():
            entries[relative] = {"symlink": os.readlink(path)}
        elif path.is_file():
            entries[relative] = {"sha256": sha256_file(path), "size": path.stat().st_size,
                                 "mode": f"{path.stat().st_mode & 0o7777:04o}"}
    return entries


def write_manifest(tree: pathlib.Path, copy: pathlib.Path, metadata: dict[str, t.Any]) -> dict[str, t.Any]:
    """Describe `tree` and write the manifest into it and to `copy`. The digest covers the
    files and the metadata, so equal digests mean equal payloads."""
    files = describe_tree(tree)
    body = {"format_version": FORMAT_VERSION, **metadata, "files": files,
            "total_size": sum(entry.get("size", 0) for entry in files.values())}
    body["digest"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    encoded = (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()
    atomic_write(tree / MANIFEST_NAME, encoded)
    atomic_write(copy, encoded)
    return body


def read_manifest(path: pathlib.Path) -> dict[str, t.Any]:
    return json.loads(path.read_text())


def verify_tree(tree: pathlib.Path) -> list[str]:
    """What differs between `tree` and the manifest it carries: an empty list when it is intact."""
    manifest = read_manifest(tree / MANIFEST_NAME)
    actual = describe_tree(tree)
    problems = [f"{name}: missing" for name in sorted(set(manifest["files"]) - set(actual))]
    problems += [f"{name}: not in the manifest" for name in sorted(set(actual) - set(manifest["files"]))]
    problems += [f"{name}: differs from the manifest" for name in sorted(set(actual) & set(manifest["files"]))
                 if actual[name] != manifest["files"][name]]
    return problems
