"""runcvm_build's tarball option: a payload made earlier, known by the manifest it carries."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from ansible_collections.runcvm.runcvm.plugins.action.runcvm_build import read_tarball_manifest
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError


def tarball(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_the_manifest_is_read_from_the_tarball(tmp_path):
    manifest = {"digest": "ab" * 32, "total_size": 3}
    path = tarball(tmp_path / "p.tar.gz", {"./bin/x": b"abc", "./manifest.json": json.dumps(manifest).encode()})
    assert read_tarball_manifest(path) == manifest


def test_a_tarball_without_a_manifest_is_refused(tmp_path):
    path = tarball(tmp_path / "p.tar.gz", {"./bin/x": b"abc"})
    with pytest.raises(BuildError, match="holds no manifest.json; give a tarball runcvm_build made"):
        read_tarball_manifest(path)


def test_a_file_that_is_no_tarball_is_refused(tmp_path):
    path = tmp_path / "p.tar.gz"
    path.write_text("not a tarball")
    with pytest.raises(BuildError, match=f"cannot read {path}"):
        read_tarball_manifest(path)
