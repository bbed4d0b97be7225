"""Installing a tree (the payload, a kernel) from its tarball: checked against its manifest, swapped
in whole, what it must keep carried over, and unsafe archives refused."""

from __future__ import annotations

import io
import os
import pathlib
import shutil
import tarfile

import pytest

from ansible_collections.runcvm.runcvm.plugins.module_utils._manifest import write_manifest
from ansible_collections.runcvm.runcvm.plugins.module_utils import _tree_install
from ansible_collections.runcvm.runcvm.plugins.module_utils._tree_install import (
    TreeInstallError, install_tree, installed_digest, remove_tree, retired_trees,
)
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._files import reproducible_tarball


def built(tmp_path: pathlib.Path, name: str, files: dict[str, str]) -> tuple[pathlib.Path, str]:
    tree = tmp_path / name
    for relative, text in files.items():
        (tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (tree / relative).write_text(text)
    digest = write_manifest(tree, tmp_path / f"{name}.manifest.json", {"name": name})["digest"]
    tarball = tmp_path / f"{name}.tar.gz"
    reproducible_tarball(tree, tarball)
    return tarball, digest


def test_install_then_replace_keeping_what_is_asked(tmp_path):
    dest = tmp_path / "opt" / "runcvm"
    first, first_digest = built(tmp_path, "one", {"bin/a": "1"})
    install_tree(first, dest, first_digest)
    assert installed_digest(dest) == first_digest and (dest / "bin" / "a").read_text() == "1"
    (dest / "kernels").mkdir()
    (dest / "kernels" / "k").write_text("kernel")
    second, second_digest = built(tmp_path, "two", {"bin/a": "2"})
    install_tree(second, dest, second_digest, keep=("kernels",))
    assert installed_digest(dest) == second_digest and (dest / "bin" / "a").read_text() == "2"
    assert (dest / "kernels" / "k").read_text() == "kernel"
    assert sorted(path.name for path in dest.parent.iterdir()) == ["runcvm"]
    remove_tree(dest)
    assert not dest.exists() and installed_digest(dest) is None


def test_a_tarball_with_another_digest_changes_nothing(tmp_path):
    dest = tmp_path / "runcvm"
    tarball, digest = built(tmp_path, "one", {"a": "1"})
    install_tree(tarball, dest, digest)
    other, _other_digest = built(tmp_path, "two", {"a": "2"})
    with pytest.raises(TreeInstallError, match=f"not {digest}"):
        install_tree(other, dest, digest)
    assert (dest / "a").read_text() == "1"
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def unsafe_tarball(tmp_path: pathlib.Path, member: tarfile.TarInfo) -> pathlib.Path:
    tarball = tmp_path / "unsafe.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return tarball


def entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("member", [
    entry("../escape"), entry("/abs"), entry("link", tarfile.SYMTYPE, "/etc/passwd"),
    entry("up", tarfile.SYMTYPE, "../x"), entry("hard", tarfile.LNKTYPE, "a"), entry("dev", tarfile.CHRTYPE),
], ids=lambda member: member.name)
def test_unsafe_entries_are_refused_before_anything_is_written(tmp_path, member):
    dest = tmp_path / "runcvm"
    with pytest.raises(TreeInstallError, match="unsafe entry"):
        install_tree(unsafe_tarball(tmp_path, member), dest, "digest")
    assert not dest.exists() and not (tmp_path / ".runcvm.new").exists()


def test_there_is_never_a_moment_without_a_whole_tree(tmp_path, monkeypatch):
    """Checked after every rename and removal the installer makes: a docker run at any moment of
    an upgrade finds a tree at dest."""
    dest = tmp_path / "runcvm"
    first, first_digest = built(tmp_path, "one", {"bin/a": "1"})
    second, second_digest = built(tmp_path, "two", {"bin/a": "2"})
    install_tree(first, dest, first_digest)
    seen = []

    def checked(step):
        def wrapper(*args, **kwargs):
            result = step(*args, **kwargs)
            seen.append((dest / "bin" / "a").exists())
            return result
        return wrapper

    monkeypatch.setattr(os, "rename", checked(os.rename))
    monkeypatch.setattr(shutil, "rmtree", checked(shutil.rmtree))
    install_tree(second, dest, second_digest)
    assert seen and all(seen)
    assert (dest / "bin" / "a").read_text() == "2"


def test_an_old_tree_stays_while_a_container_has_it_mounted(tmp_path, monkeypatch):
    dest = tmp_path / "runcvm"
    trees = [built(tmp_path, name, {"bin/a": name}) for name in ("one", "two", "three")]
    install_tree(trees[0][0], dest, trees[0][1])
    # A container's bind mount holds the directory; mountinfo names it as it is named now.
    held = {dest.stat().st_ino}
    monkeypatch.setattr(_tree_install, "_mounted_trees",
                        lambda: {str(path) for path in tmp_path.iterdir() if path.stat().st_ino in held})
    install_tree(trees[1][0], dest, trees[1][1])
    (kept,) = retired_trees(dest)
    assert (kept / "bin" / "a").read_text() == "one"
    install_tree(trees[2][0], dest, trees[2][1])
    assert retired_trees(dest) == [kept]  # the second tree, mounted by nobody, went at once
    held.clear()
    remove_tree(dest)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []
