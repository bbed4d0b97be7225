"""requirements/collections.yml names exactly the collections galaxy.yml depends on, at the
versions the suite runs with (those the pinned `ansible` package installs in the venv)."""

from __future__ import annotations

import json
import pathlib

import yaml

import ansible_collections

PROJECT = pathlib.Path(__file__).parents[2]


def installed_version(name: str) -> str:
    namespace, collection = name.split(".")
    for root in ansible_collections.__path__:
        manifest = pathlib.Path(root) / namespace / collection / "MANIFEST.json"
        if manifest.exists():
            return json.loads(manifest.read_text())["collection_info"]["version"]
    raise AssertionError(f"{name} is not installed in the venv")


def test_the_collections_file_pins_galaxy_ymls_dependencies_at_the_tested_versions():
    pinned = {entry["name"]: entry["version"]
              for entry in yaml.safe_load((PROJECT / "requirements" / "collections.yml").read_text())["collections"]}
    dependencies = yaml.safe_load((PROJECT / "galaxy.yml").read_text())["dependencies"]
    assert sorted(pinned) == sorted(dependencies)
    assert pinned == {name: installed_version(name) for name in pinned}
