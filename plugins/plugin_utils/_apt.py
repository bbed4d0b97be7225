# Copyright: RunCVM for Ansible developers
# Apache License 2.0 (see LICENSE)
#
# Note that this plugin util is **PRIVATE** to the collection.
"""Debian packages of one release, fetched with apt under a private configuration.

apt runs as an unprivileged download tool: its own sources list, state and cache directory, an
empty dpkg status (so dependency resolution yields the whole closure), and the host's Debian
archive keyring, so every index is signature-checked and every package checked against it.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import subprocess
import typing as t

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._errors import BuildError
from ansible_collections.runcvm.runcvm.plugins.module_utils._fileutil import sha256_file

ARCHITECTURE = "amd64"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class AptError(BuildError):
    pass


@dataclasses.dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: str = ""

    @property
    def spec(self) -> str:
        return f"{self.name}={self.version}"


def parse_print_uris(output: str) -> list[tuple[str, str]]:
    """(name, version) of every package in `apt-get install --print-uris` output.

    Each line reads 'URL' name_version_arch.deb size hash; the version in the file name has its
    epoch's colon encoded as %3a.
    """
    packages = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 2 or not fields[1].endswith(".deb"):
            continue
        name, version, _arch = fields[1][:-len(".deb")].split("_")
        packages.append((name, version.replace("%3a", ":")))
    return packages


class AptArchive:
    """One Debian release at one mirror, with its own apt state under `workdir`."""

    def __init__(self, release: str, mirror: str, workdir: pathlib.Path, log: t.Callable[[str], None] = print):
        self.release = release
        self.mirror = mirror
        self.root = workdir / release
        self.log = log
        self._updated = False

    @property
    def archives(self) -> pathlib.Path:
        return self.root / "cache" / "archives"

    def options(self) -> list[str]:
        settings = {
            "Dir::State": self.root / "state",
            "Dir::State::status": self.root / "state" / "status",
            "Dir::Cache": self.root / "cache",
            "Dir::Etc::SourceList": self.root / "sources.list",
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::Etc::Preferences": "/dev/null",
            "Dir::Etc::PreferencesParts": "/dev/null",
            "APT::Architecture": ARCHITECTURE,
            "APT::Architectures": ARCHITECTURE,
            "APT::Install-Recommends": "false",
            "Debug::NoLocking": "true",
        }
        return [option for key, value in settings.items() for option in ("-o", f"{key}={value}")]

    def update(self) -> None:
        if self._updated:
            return
        for tool in ("apt-get", "apt-cache"):
            if shutil.which(tool) is None:
                raise AptError(f"{tool} is not installed; the payload is built from Debian packages "
                               "with apt (build on a Debian or Ubuntu machine)")
        (self.root / "state" / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.archives / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        (self.root / "sources.list").write_text(
            f"deb [signed-by={KEYRING}] {self.mirror} {self.release} main\n")
        self.log(f"apt: reading the {self.release} package index from {self.mirror}")
        self._apt("apt-get", "update", what=f"reading the {self.release} index from {self.mirror}")
        self._updated = True

    def resolve(self, names: t.Iterable[str]) -> list[Package]:
        """The packages `names` need to be installed on an empty system, at today's versions."""
        self.update()
        output = self._apt("apt-get", "install", "--print-uris", "-qq", *names,
                           what=f"resolving {', '.join(names)} in {self.release}")
        return [Package(name, version) for name, version in parse_print_uris(output)]

    def fetch(self, packages: t.Iterable[Package]) -> dict[str, pathlib.Path]:
        """Download the exact versions pinned and check each against its pinned sha256."""
        self.update()
        packages = list(packages)
        missing = [package for package in packages if not self._cached_path(package).exists()]
        if missing:
            self._download(missing)
        paths = {}
        for package in packages:
            path = self._cached_path(package)
            actual = sha256_file(path)
            if package.sha256 and actual != package.sha256:
                path.unlink()
                raise AptError(f"checksum mismatch for {package.spec}: pinned sha256 {package.sha256}, "
                               f"downloaded {actual}; the mirror serves a different file under that "
                               "version, refresh the pins only if you trust the change")
            paths[package.name] = path
        return paths

    def _download(self, packages: list[Package]) -> None:
        self.log(f"apt: fetching {len(packages)} packages from {self.release}")
        try:
            self._apt("apt-get", "download", *(package.spec for package in packages), cwd=self.archives,
                      what=f"fetching {', '.join(package.spec for package in packages)}")
        except AptError as error:
            raise AptError(f"{error}\nA pinned version may no longer be on {self.mirror}: refresh the "
                           "pins (runcvm-build lock) to move to the versions it serves") from error
        for package in packages:
            quoted = package.version.replace(":", "%3a")
            downloaded = list(self.archives.glob(f"{package.name}_{quoted}_*.deb"))
            if not downloaded:
                raise AptError(f"apt-get download {package.spec} produced no file in {self.archives}")
            downloaded[0].rename(self._cached_path(package))

    def _cached_path(self, package: Package) -> pathlib.Path:
        return self.archives / f"{package.name}_{package.version.replace(':', '%3a')}.deb"

    def _apt(self, tool: str, *args: str, what: str, cwd: pathlib.Path | None = None) -> str:
        completed = subprocess.run([tool, *self.options(), *args], cwd=cwd, capture_output=True, text=True,
                                   check=False)
        if completed.returncode != 0:
            detail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
            raise AptError(f"apt failed {what}:\n" + "\n".join(detail))
        return completed.stdout


def extract(debs: t.Iterable[pathlib.Path], target: pathlib.Path) -> None:
    """Unpack the data of each .deb into `target`, as dpkg would lay it out (scripts are not run)."""
    target.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        completed = subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], capture_output=True, text=True,
                                   check=False)
        if completed.returncode != 0:
            raise AptError(f"dpkg-deb could not unpack {deb.name}: {completed.stderr.strip()}")
