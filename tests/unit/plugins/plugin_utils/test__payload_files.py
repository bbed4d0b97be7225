"""Builder helpers: relative RPATHs, manifests, tarballs and the disk-space check."""

from __future__ import annotations

import pathlib
import tarfile

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._fileutil import atomic_write
from ansible_collections.runcvm.runcvm.plugins.module_utils._manifest import describe_tree, verify_tree, write_manifest
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._files import (
    DiskSpaceError, reproducible_tarball, require_free_space,
)
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._payload import _relative_rpath


@pytest.mark.parametrize("relative, expected", [
    ("bin/qemu-system-x86_64", "$ORIGIN/../lib"),
    ("lib/libz.so.1", "$ORIGIN"),
    ("lib/python3.13/lib-dynload/_ssl.so", "$ORIGIN/../.."),
])
def test_relative_rpath(relative, expected):
    tree = pathlib.Path("/payload")
    assert _relative_rpath(tree / relative, tree) == expected


def make_tree(root: pathlib.Path) -> pathlib.Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!tool\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "lib").mkdir()
    (root / "lib" / "data").write_bytes(b"data")
    (root / "lib" / "alias").symlink_to("data")
    return root


def test_manifest_describes_every_file_and_is_stable(tmp_path):
    tree = make_tree(tmp_path / "tree")
    first = write_manifest(tree, tmp_path / "copy.json", {"release": "trixie"})
    assert first["files"]["bin/tool"]["mode"] == "0755"
    assert first["files"]["lib/alias"] == {"symlink": "data"}
    assert first["total_size"] == len(b"#!tool\n") + len(b"data")
    assert "manifest.json" not in describe_tree(tree)
    again = write_manifest(make_tree(tmp_path / "other"), tmp_path / "copy2.json", {"release": "trixie"})
    assert again["digest"] == first["digest"]
    (tree / "lib" / "data").write_bytes(b"DATA")
    assert write_manifest(tree, tmp_path / "copy.json", {"release": "trixie"})["digest"] != first["digest"]


def test_verify_tree_names_what_changed(tmp_path):
    tree = make_tree(tmp_path / "tree")
    write_manifest(tree, tmp_path / "copy.json", {})
    assert verify_tree(tree) == []
    (tree / "lib" / "data").write_bytes(b"changed")
    (tree / "bin" / "tool").unlink()
    (tree / "extra").write_bytes(b"")
    assert verify_tree(tree) == ["bin/tool: missing", "extra: not in the manifest", "lib/data: differs from the manifest"]


def test_tarball_depends_only_on_content(tmp_path):
    one, two = make_tree(tmp_path / "one"), make_tree(tmp_path / "two")
    (two / "lib" / "data").touch()  # a newer timestamp
    reproducible_tarball(one, tmp_path / "one.tar.gz")
    reproducible_tarball(two, tmp_path / "two.tar.gz")
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "one.tar.gz") as archive:
        members = {member.name: member for member in archive.getmembers()}
    assert members["./bin/tool"].mode == 0o755 and members["./bin/tool"].uid == 0
    assert members["./lib/alias"].issym()


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "file"
    atomic_write(target, b"one")
    atomic_write(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two" and target.stat().st_mode & 0o777 == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["file"]


def test_not_enough_disk_space_names_the_directory_and_the_need(tmp_path):
    with pytest.raises(DiskSpaceError, match=f"needs 1073741824 MiB free in {tmp_path}"):
        require_free_space(tmp_path, 2**50, "building the payload")
