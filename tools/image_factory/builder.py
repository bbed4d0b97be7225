"""Builds images from recipes through the Docker Engine API."""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import shutil
import subprocess
import tempfile
import typing as t

import docker
import docker.errors

from image_factory.hashing import lineage_hashes
from image_factory.recipes import (
    DEFAULT_MIRROR, DEFAULT_PREFIX, RECIPE_LABEL, RECIPES_DIR, Debootstrap, DockerBuild, Recipe,
    image_ref, lineage,
)

# Lines of build output kept to explain a failure.
ERROR_CONTEXT_LINES = 15


class ImageBuildError(Exception):
    def __init__(self, ref: str, step: str, detail: str):
        super().__init__(f"building image {ref} failed at step {step!r}:\n{detail}")
        self.ref = ref
        self.step = step


@dataclasses.dataclass(frozen=True)
class BuildResult:
    name: str
    ref: str
    recipe_hash: str
    built: bool


def debootstrap_command(source: Debootstrap, target: pathlib.Path, mirror: str) -> list[str]:
    return ["debootstrap", f"--variant={source.variant}", source.suite, str(target), mirror]


def tar_command(tree: pathlib.Path, archive: pathlib.Path) -> list[str]:
    # Numeric owners: the tree's uids are the image's, not names to map through the host's passwd.
    return ["tar", "--numeric-owner", "--xattrs", "-C", str(tree), "-cf", str(archive), "."]


def import_changes(source: Debootstrap, recipe_hash: str) -> list[str]:
    return [*source.changes, f"LABEL {RECIPE_LABEL}={recipe_hash}"]


def build_arguments(source: DockerBuild, ref: str, parent_ref: str, recipe_hash: str,
                    recipes_dir: pathlib.Path = RECIPES_DIR) -> dict[str, t.Any]:
    """Keyword arguments of the Engine API build call for a derived image."""
    return {
        "path": str(recipes_dir / source.context),
        "tag": ref,
        "buildargs": {"BASE": parent_ref},
        "labels": {RECIPE_LABEL: recipe_hash},
        "rm": True,
        "forcerm": True,
        "decode": True,
    }


class Factory:
    def __init__(self, client: docker.DockerClient | None = None, prefix: str = DEFAULT_PREFIX,
                 mirror: str = DEFAULT_MIRROR, log: t.Callable[[str], None] = print):
        self.client = client or docker.from_env(timeout=600)
        self.prefix = prefix
        self.mirror = mirror
        self.log = log
        # Refs confirmed up to date in this run, so shared ancestors are checked once.
        self._current: set[str] = set()

    def ref(self, name: str) -> str:
        return image_ref(lineage(name)[-1], self.prefix)

    def built_hash(self, ref: str) -> str | None:
        """The recipe hash of the image tagged `ref`, or None when there is no such image."""
        try:
            image = self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return None
        return (image.labels or {}).get(RECIPE_LABEL)

    def ensure(self, name: str, force: bool = False) -> list[BuildResult]:
        """Build `name` and its ancestors where missing or out of date; return what was done."""
        hashes = lineage_hashes(name)
        results = []
        parent_ref = None
        rebuilt_parent = False
        for recipe in lineage(name):
            ref = image_ref(recipe, self.prefix)
            wanted = hashes[recipe.name]
            stale = ref not in self._current and (force or rebuilt_parent or self.built_hash(ref) != wanted)
            if stale:
                self.log(f"image-factory: building {ref} ({recipe.purpose})")
                self._build(recipe, ref, parent_ref, wanted)
            elif ref not in self._current:
                self.log(f"image-factory: {ref} is up to date")
            self._current.add(ref)
            results.append(BuildResult(recipe.name, ref, wanted, built=stale))
            rebuilt_parent = stale
            parent_ref = ref
        return results

    def _build(self, recipe: Recipe, ref: str, parent_ref: str | None, recipe_hash: str) -> None:
        if isinstance(recipe.source, Debootstrap):
            self._build_debootstrap(recipe.source, ref, recipe_hash)
        else:
            self._build_dockerfile(recipe.source, ref, parent_ref or "", recipe_hash)

    def _build_debootstrap(self, source: Debootstrap, ref: str, recipe_hash: str) -> None:
        if shutil.which("debootstrap") is None:
            raise ImageBuildError(ref, "debootstrap", "debootstrap is not installed: apt-get install debootstrap")
        with tempfile.TemporaryDirectory(prefix="image-factory-", dir="/var/tmp") as workdir:
            tree = pathlib.Path(workdir) / "rootfs"
            archive = pathlib.Path(workdir) / "rootfs.tar"
            self.log(f"image-factory:   debootstrap {source.suite} ({source.variant}) from {self.mirror}")
            _run_step(ref, "debootstrap", debootstrap_command(source, tree, self.mirror))
            _run_step(ref, "tar", tar_command(tree, archive))
            self.log(f"image-factory:   docker import ({archive.stat().st_size // 2**20} MiB)")
            repository, tag = ref.rsplit(":", 1)
            try:
                self.client.api.import_image(src=str(archive), repository=repository, tag=tag,
                                             changes=import_changes(source, recipe_hash))
            except docker.errors.APIError as error:
                raise ImageBuildError(ref, "docker import", str(error)) from error
        if self.built_hash(ref) != recipe_hash:
            raise ImageBuildError(ref, "docker import", "the imported image does not carry its recipe label")

    def _build_dockerfile(self, source: DockerBuild, ref: str, parent_ref: str, recipe_hash: str) -> None:
        recent = collections.deque(maxlen=ERROR_CONTEXT_LINES)
        step = "docker build"
        try:
            for chunk in self.client.api.build(**build_arguments(source, ref, parent_ref, recipe_hash)):
                if "error" in chunk:
                    recent.append(chunk["error"])
                    raise ImageBuildError(ref, step, "".join(line if line.endswith("\n") else line + "\n"
                                                             for line in recent))
                text = chunk.get("stream", "")
                if text.startswith("Step "):
                    step = text.strip()
                    self.log(f"image-factory:   {step}")
                if text.strip():
                    recent.append(text)
        except docker.errors.APIError as error:
            raise ImageBuildError(ref, step, str(error)) from error


def _run_step(ref: str, step: str, command: list[str]) -> None:
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.splitlines()[-ERROR_CONTEXT_LINES:])
        raise ImageBuildError(ref, step, f"{' '.join(command)} exited with {completed.returncode}\n{tail}")
