"""Every fixed path and name is written once, in layout.py: what must restate one (YAML defaults,
module documentation, the payload's entry scripts) is checked against it here."""

from __future__ import annotations

import pathlib

import yaml

from ansible_collections.runcvm.runcvm.plugins.module_utils._core import layout
from ansible_collections.runcvm.runcvm.plugins.modules import runcvm_defaults, runcvm_info, runcvm_runtime
from ansible_collections.runcvm.runcvm.plugins.plugin_utils import _payload

PROJECT_DIR = pathlib.Path(__file__).parents[5]


def test_the_roles_install_where_the_runtime_looks():
    for role, variable in (("install", "install_payload_dir"), ("kernels", "kernels_payload_dir")):
        defaults = yaml.safe_load((PROJECT_DIR / "roles" / role / "defaults" / "main.yml").read_text())
        spec = yaml.safe_load((PROJECT_DIR / "roles" / role / "meta" / "argument_specs.yml").read_text())
        assert defaults[variable] == layout.PAYLOAD_DIR
        assert spec["argument_specs"]["main"]["options"][variable]["default"] == layout.PAYLOAD_DIR


def test_the_modules_document_the_layouts_paths():
    assert yaml.safe_load(runcvm_info.DOCUMENTATION)["options"]["payload_dir"]["default"] == layout.PAYLOAD_DIR
    assert yaml.safe_load(runcvm_runtime.DOCUMENTATION)["options"]["path"]["default"] == layout.RUNTIME_BINARY
    assert yaml.safe_load(runcvm_defaults.DOCUMENTATION)["options"]["path"]["default"] == layout.HOST_DEFAULTS_FILE


def test_the_entry_scripts_start_each_part_with_the_payloads_python():
    scripts = _payload.entry_scripts()
    assert sorted(scripts) == sorted(f"runtime/{name}" for name in layout.ENTRY_POINTS)
    launcher = scripts["runtime/runcvm-launcher"]
    assert launcher.startswith(f"#!{layout.GUEST_PYTHON} -IS\n")
    assert f'sys.path[:0] = ["{layout.GUEST_RUNTIME_DIR}", "{layout.GUEST_DIR}/lib/python3/dist-packages"]' in launcher
    assert "from runcvm.launcher.main import main" in launcher
    assert layout.LAUNCHER.endswith("/runtime/runcvm-launcher") and layout.GUEST_INIT.endswith("/runtime/runcvm-init")


def test_the_launchers_private_files_stay_out_of_the_vms_view():
    for path in (layout.PLAN_FILE, layout.EXEC_SOCKET, layout.AGENT_SOCKET, layout.VIRTIOFS_SOCKET):
        assert path.startswith(layout.RUN_DIR + "/")
