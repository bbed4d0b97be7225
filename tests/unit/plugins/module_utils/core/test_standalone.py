"""The core is what the runtime shares with the modules, and the only module_utils the payload
holds: it must import nothing but the standard library and itself."""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest

from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _payload

CORE_DIR = pathlib.Path(__file__).parents[5] / "plugins" / "module_utils" / "_core"
CORE_MODULE = "ansible_collections.runcvm.runcvm.plugins.module_utils._core"


def imported(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE_DIR.glob("*.py")), ids=lambda path: path.name)
def test_the_core_imports_only_the_standard_library_and_itself(path):
    for name in imported(path):
        assert name.split(".")[0] in sys.stdlib_module_names or name == CORE_MODULE or \
            name.startswith(CORE_MODULE + "."), f"{path.name} imports {name}"


def test_the_payload_holds_the_core_and_no_other_module_utils():
    targets = [target for _source, target in _payload.runtime_sources() if "/module_utils/" in target]
    assert targets and all("/module_utils/_core/" in target for target in targets)
    assert sorted(pathlib.PurePath(target).name for target in targets) == sorted(p.name for p in CORE_DIR.glob("*.py"))
