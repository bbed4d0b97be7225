# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""The pins: exactly which Debian packages and Python wheels the payload and kernels are built from.

`files/build/pins.json` holds them. A build uses only pinned versions and checks each download
against its pinned sha256; `runcvm-build lock` moves the pins to what the mirror serves today.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import typing as t

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError
from ansible_collections.runcvm.runcvm.plugins.module_utils._fileutil import atomic_write, sha256_file
from ansible_collections.runcvm.runcvm.plugins.plugin_utils._apt import AptArchive, Package

COLLECTION_ROOT = pathlib.Path(__file__).resolve().parents[2]
PINS_FILE = COLLECTION_ROOT / "files" / "build" / "pins.json"


class PinError(BuildError):
    pass


@dataclasses.dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    sha256: str


@dataclasses.dataclass(frozen=True)
class KernelPin:
    """A Debian kernel flavour (a metapackage such as linux-image-cloud-amd64) pinned to the
    versioned image package it pulls in."""

    release: str
    metapackage: str
    package: Package


@dataclasses.dataclass
class Pins:
    mirror: str
    payload_release: str
    payload_requested: list[str]
    payload_packages: list[Package]
    wheels: list[Wheel]
    kernels: dict[str, KernelPin]

    def payload_digest(self) -> str:
        material = {"release": self.payload_release, "packages": [dataclasses.asdict(p) for p in self.payload_packages],
                    "wheels": [dataclasses.asdict(w) for w in self.wheels]}
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

    def kernel(self, key: str) -> KernelPin:
        try:
            return self.kernels[key]
        except KeyError:
            raise PinError(f"kernel {key!r} is not pinned; pinned kernels: {', '.join(sorted(self.kernels))}. "
                           "Add it to files/build/pins.json and run runcvm-build lock") from None

    def payload_package(self, name: str) -> Package:
        for package in self.payload_packages:
            if package.name == name:
                return package
        raise PinError(f"{name} is not among the pinned payload packages")


def load(path: pathlib.Path = PINS_FILE) -> Pins:
    try:
        raw = json.loads(path.read_text())
        return Pins(
            mirror=raw["mirror"],
            payload_release=raw["payload"]["release"],
            payload_requested=list(raw["payload"]["requested"]),
            payload_packages=[Package(name, pin["version"], pin["sha256"])
                              for name, pin in sorted(raw["payload"]["packages"].items())],
            wheels=[Wheel(name, pin["version"], pin["sha256"]) for name, pin in sorted(raw["python"].items())],
            kernels={key: KernelPin(pin["release"], pin["metapackage"],
                                    Package(pin["package"], pin["version"], pin["sha256"]))
                     for key, pin in sorted(raw["kernels"].items())},
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PinError(f"cannot read the pins in {path}: {error!r}") from error


def save(pins: Pins, path: pathlib.Path = PINS_FILE) -> None:
    raw = {
        "mirror": pins.mirror,
        "payload": {
            "release": pins.payload_release,
            "requested": pins.payload_requested,
            "packages": {p.name: {"version": p.version, "sha256": p.sha256} for p in pins.payload_packages},
        },
        "python": {w.name: {"version": w.version, "sha256": w.sha256} for w in pins.wheels},
        "kernels": {key: {"release": k.release, "metapackage": k.metapackage, "package": k.package.name,
                          "version": k.package.version, "sha256": k.package.sha256}
                    for key, k in pins.kernels.items()},
    }
    atomic_write(path, (json.dumps(raw, indent=2, sort_keys=True) + "\n").encode())


def wheel_requirements(wheels: t.Iterable[Wheel]) -> str:
    """A pip requirements file that accepts exactly the pinned wheels."""
    return "".join(f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in wheels)


def download_wheels(wheels: t.Sequence[Wheel], dest: pathlib.Path) -> list[pathlib.Path]:
    """Fetch the pinned wheels with pip, which refuses any file whose hash is not pinned."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
        requirements.write(wheel_requirements(wheels))
        requirements.flush()
        completed = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
             "--disable-pip-version-check", "-q", "-d", str(dest), "-r", requirements.name],
            capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise PinError("pip could not fetch the pinned wheels "
                       f"({', '.join(f'{w.name}=={w.version}' for w in wheels)}):\n{completed.stderr.strip()}")
    # A wheel's file name spells its project's name with each run of "-", "_" and "." as "_".
    return [next(dest.glob(f"{re.sub(r'[-_.]+', '_', w.name)}-{w.version}-*.whl")) for w in wheels]


def refresh(pins: Pins, workdir: pathlib.Path, log: t.Callable[[str], None] = print) -> Pins:
    """The same requests pinned to what the mirror and PyPI serve today."""
    archives: dict[str, AptArchive] = {}

    def archive(release: str) -> AptArchive:
        if release not in archives:
            archives[release] = AptArchive(release, pins.mirror, workdir / "apt", log)
        return archives[release]

    def with_hashes(release: str, packages: list[Package]) -> list[Package]:
        paths = archive(release).fetch(packages)
        return [dataclasses.replace(p, sha256=sha256_file(paths[p.name])) for p in packages]

    payload = with_hashes(pins.payload_release, archive(pins.payload_release).resolve(pins.payload_requested))
    kernels = {}
    for key, kernel in pins.kernels.items():
        closure = archive(kernel.release).resolve([kernel.metapackage])
        images = [p for p in closure if p.name.startswith("linux-image-") and p.name != kernel.metapackage]
        if len(images) != 1:
            raise PinError(f"{kernel.metapackage} in {kernel.release} does not pull in exactly one kernel image "
                           f"package: {[p.name for p in images]}")
        kernels[key] = dataclasses.replace(kernel, package=with_hashes(kernel.release, images)[0])
    wheels = []
    for wheel in pins.wheels:
        latest = _latest_wheel(wheel.name, workdir / "wheels")
        wheels.append(latest)
        log(f"pins: {wheel.name} {wheel.version} -> {latest.version}")
    return dataclasses.replace(pins, payload_packages=payload, kernels=kernels, wheels=wheels)


def _latest_wheel(name: str, dest: pathlib.Path) -> Wheel:
    with tempfile.TemporaryDirectory(dir=dest.parent if dest.parent.exists() else None) as scratch:
        completed = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "-q", "-d", scratch, name],
            capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise PinError(f"pip could not fetch {name}: {completed.stderr.strip()}")
        wheel = next(pathlib.Path(scratch).glob("*.whl"))
        version = wheel.name.split("-")[1]
        return Wheel(name, version, sha256_file(wheel))
