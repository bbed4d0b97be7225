"""The image factory's pure parts: recipe hashing and the commands it runs."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from image_factory import hashing
from image_factory.builder import build_arguments, debootstrap_command, import_changes, tar_command
from image_factory.recipes import RECIPE_LABEL, RECIPES, RECIPES_DIR, Debootstrap, DockerBuild, lineage


@pytest.fixture
def recipes_copy(tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, copy)
    return copy


def test_every_derived_recipe_has_a_build_context():
    for recipe in RECIPES.values():
        if isinstance(recipe.source, DockerBuild):
            assert (RECIPES_DIR / recipe.source.context / "Dockerfile").is_file(), recipe.name


def test_lineage_lists_ancestors_root_first():
    assert [recipe.name for recipe in lineage("nginx")] == ["debian", "nginx"]
    assert [recipe.name for recipe in lineage("debian")] == ["debian"]


def test_hashes_are_stable_and_distinct(recipes_copy):
    first = {name: hashing.lineage_hashes(name, recipes_copy)[name] for name in RECIPES}
    second = {name: hashing.lineage_hashes(name, recipes_copy)[name] for name in RECIPES}
    assert first == second
    assert len(set(first.values())) == len(RECIPES)


@pytest.mark.parametrize("edit", [
    lambda context: (context / "Dockerfile").write_text((context / "Dockerfile").read_text() + "# changed\n"),
    lambda context: (context / "extra-file").write_text("new\n"),
    lambda context: (context / "Dockerfile").chmod(0o755),
], ids=["content", "new-file", "executable-bit"])
def test_a_changed_context_changes_only_that_images_hash(recipes_copy, edit):
    before = {name: hashing.lineage_hashes(name, recipes_copy)[name] for name in RECIPES}
    edit(recipes_copy / "nginx")
    after = {name: hashing.lineage_hashes(name, recipes_copy)[name] for name in RECIPES}
    assert before["nginx"] != after["nginx"]
    assert {n: h for n, h in before.items() if n != "nginx"} == {n: h for n, h in after.items() if n != "nginx"}


def test_a_new_parent_hash_changes_the_childs():
    nginx = RECIPES["nginx"]
    assert hashing.recipe_hash(nginx, "a" * 64) != hashing.recipe_hash(nginx, "b" * 64)


def test_a_changed_debootstrap_recipe_changes_the_base_hash():
    base = RECIPES["debian"]
    changed = base.__class__(base.name, base.tag, Debootstrap("trixie", "minbase", base.source.changes), base.purpose)
    assert hashing.recipe_hash(base) != hashing.recipe_hash(changed)


def test_a_derived_recipe_cannot_be_hashed_without_its_parent():
    with pytest.raises(ValueError, match="nginx"):
        hashing.recipe_hash(RECIPES["nginx"])


def test_debootstrap_command():
    source = RECIPES["debian"].source
    assert debootstrap_command(source, pathlib.Path("/var/tmp/x/rootfs"), "http://mirror.example/debian") == [
        "debootstrap", "--variant=minbase", "bookworm", "/var/tmp/x/rootfs", "http://mirror.example/debian"]


def test_tar_keeps_numeric_owners():
    command = tar_command(pathlib.Path("/t"), pathlib.Path("/a.tar"))
    assert command[0] == "tar" and "--numeric-owner" in command
    assert command[-5:] == ["-C", "/t", "-cf", "/a.tar", "."]


def test_import_sets_path_cmd_and_recipe_label():
    changes = import_changes(RECIPES["debian"].source, "f" * 64)
    assert any(change.startswith("ENV PATH=/usr/local/sbin:") for change in changes)
    assert 'CMD ["bash"]' in changes
    assert changes[-1] == f"LABEL {RECIPE_LABEL}={'f' * 64}"


def test_build_arguments_name_parent_and_label():
    arguments = build_arguments(RECIPES["nginx"].source, "p/nginx:latest", "p/debian:bookworm", "e" * 64)
    assert arguments["path"] == str(RECIPES_DIR / "nginx")
    assert arguments["tag"] == "p/nginx:latest"
    assert arguments["buildargs"] == {"BASE": "p/debian:bookworm"}
    assert arguments["labels"] == {RECIPE_LABEL: "e" * 64}
    assert arguments["forcerm"] is True
