"""Recipe hashes: an image is rebuilt exactly when its hash changes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib

from image_factory.recipes import RECIPES_DIR, Debootstrap, DockerBuild, Recipe, lineage

# Bump to rebuild every image after a change in how the factory builds them.
FACTORY_VERSION = 1


def context_digest(context: pathlib.Path) -> str:
    """sha256 over every file of a build context: relative path, executable bit and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        relative = path.relative_to(context).as_posix()
        executable = bool(path.stat().st_mode & 0o111)
        digest.update(f"{relative}\0{int(executable)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def recipe_hash(recipe: Recipe, parent_hash: str | None = None,
                recipes_dir: pathlib.Path = RECIPES_DIR) -> str:
    """Hash of everything that decides an image's content.

    A derived image's hash covers its parent's, so a new base image rebuilds its children.
    The Debian mirror is deliberately left out: it changes where packages come from, not what
    they are.
    """
    material: dict[str, object] = {"factory": FACTORY_VERSION, "name": recipe.name}
    if isinstance(recipe.source, Debootstrap):
        material["debootstrap"] = dataclasses.asdict(recipe.source)
    elif isinstance(recipe.source, DockerBuild):
        if parent_hash is None:
            raise ValueError(f"recipe {recipe.name} needs its parent's hash")
        material["parent"] = parent_hash
        material["context"] = context_digest(recipes_dir / recipe.source.context)
    encoded = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


def lineage_hashes(name: str, recipes_dir: pathlib.Path = RECIPES_DIR) -> dict[str, str]:
    """Hashes of a recipe and all its ancestors, by recipe name."""
    hashes: dict[str, str] = {}
    parent_hash = None
    for recipe in lineage(name):
        parent_hash = hashes[recipe.name] = recipe_hash(recipe, parent_hash, recipes_dir)
    return hashes
