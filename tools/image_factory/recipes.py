"""The images the factory knows, declared once."""

from __future__ import annotations

import dataclasses
import pathlib

RECIPES_DIR = pathlib.Path(__file__).parent / "recipes"
DEFAULT_PREFIX = "runcvm-test"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
RECIPE_LABEL = "org.runcvm.image-factory.recipe"


@dataclasses.dataclass(frozen=True)
class Debootstrap:
    """A root filesystem made by debootstrap and imported with `docker import`."""

    suite: str
    variant: str
    # Dockerfile instructions `docker import --change` applies to the imported tree.
    changes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DockerBuild:
    """A `docker build` of a directory under recipes/, FROM the image named `parent`."""

    parent: str
    context: str


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    tag: str
    source: Debootstrap | DockerBuild
    purpose: str


BASE = "debian"

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            name=BASE,
            tag="debian:bookworm",
            source=Debootstrap(
                suite="bookworm",
                variant="minbase",
                changes=(
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    'CMD ["bash"]',
                ),
            ),
            purpose="Debian bookworm minbase; the parent of every other image",
        ),
        Recipe("nginx", "nginx:latest", DockerBuild(BASE, "nginx"), "nginx serving its default page on port 80"),
        Recipe("mariadb", "mariadb:latest", DockerBuild(BASE, "mariadb"),
               "MariaDB server accepting root without a password from the network"),
        Recipe("systemd", "systemd:latest", DockerBuild(BASE, "systemd"),
               "systemd as the image's init, with a service enabled: hello on port 8080"),
        Recipe("systemd-docker", "systemd-docker:latest", DockerBuild("systemd", "systemd-docker"),
               "systemd starting Debian's docker.io at boot, its data on a RUNCVM_DISKS disk"),
        Recipe("kernel", "kernel:latest", DockerBuild(BASE, "kernel"),
               "Debian's cloud kernel installed in the image (/vmlinuz, /initrd.img)"),
        Recipe("python3", "python3:latest", DockerBuild(BASE, "python3"), "Debian's python3"),
        Recipe("dockerhost", "dockerhost:latest", DockerBuild("python3", "dockerhost"),
               "a Docker host for molecule: Debian's docker.io with dockerd as the command, run privileged"),
        Recipe("busybox", "busybox:latest", DockerBuild(BASE, "busybox"),
               "scratch holding only Debian's static busybox: no libc, no /etc/passwd, no os-release"),
    )
}


def image_ref(recipe: Recipe, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{recipe.tag}"


def lineage(name: str) -> list[Recipe]:
    """The recipe and its ancestors, root first: the order they must be built in."""
    chain = []
    recipe = RECIPES[name]
    while True:
        chain.append(recipe)
        if not isinstance(recipe.source, DockerBuild):
            return chain[::-1]
        recipe = RECIPES[recipe.source.parent]
