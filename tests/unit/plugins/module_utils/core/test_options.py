"""RUNCVM_* options: read by the runtime and written by runcvm_container with the same rules."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

from ansible_collections.runcvm.runcvm.plugins.doc_fragments import vm_options
from ansible_collections.runcvm.runcvm.plugins.module_utils._core.options import (
    BY_VARIABLE, FIRST_VERSION, OPTIONS, Disk, OptionError, Options, argument_spec, defaults_text, from_task, parse,
    parse_defaults, render, workload_env,
)

README = pathlib.Path(__file__).parents[5] / "README.md"


def test_defaults_and_values():
    assert parse({}) == Options()
    parsed = parse({"RUNCVM_ACCEL": "tcg", "RUNCVM_KERNEL_DEBUG": "1", "RUNCVM_KERNEL_APPEND": "a=b",
                    "RUNCVM_KERNEL": "debian/6.1.0-50-cloud-amd64", "PATH": "/bin"})
    assert (parsed.accel, parsed.kernel_debug, parsed.kernel_append) == ("tcg", True, "a=b")
    assert parsed.kernel == "debian/6.1.0-50-cloud-amd64"


@pytest.mark.parametrize("env, message", [
    ({"RUNCVM_KERNEL_DEBUG": "maybe"}, "RUNCVM_KERNEL_DEBUG=maybe is not a boolean"),
    ({"RUNCVM_VIRTIOFSD_CACHE": "nothing"}, "RUNCVM_VIRTIOFSD_CACHE=nothing is not one of auto, always, never, none, programs"),
    ({"RUNCVM_SYS_ADMINS": "1"}, "RUNCVM_SYS_ADMINS is not a RunCVM option"),
    ({"RUNCVM_KERNEL": "debian/../../etc"}, "RUNCVM_KERNEL=debian/../../etc is invalid"),
    ({"RUNCVM_KERNEL": "Debian 12"}, "use <dist> or <dist>/<version>"),
])
def test_bad_options(env, message):
    with pytest.raises(OptionError, match=message):
        parse(env)


def test_disks_parse_with_and_without_size():
    parsed = parse({"RUNCVM_DISKS": "/disks/a.img,/data,ext4,5G; /disks/b.img,/srv/,ext2"})
    assert parsed.disks == (Disk("/disks/a.img", "/data", "ext4", "5G"), Disk("/disks/b.img", "/srv", "ext2"))
    assert parsed.disks[0].size_bytes == 5 << 30 and parsed.disks[1].size_bytes is None


@pytest.mark.parametrize("value, message", [
    ("/disks/a.img,/data", "has 2 fields; the format is <src>,<dst>,<fs>"),
    ("/disks/a.img,/data,ext4,5G,x", "has 5 fields"),
    ("disks/a.img,/data,ext4,1M", "src 'disks/a.img' must be an absolute path"),
    ("/disks/a.img,data,ext4,1M", "dst 'data' must be an absolute path"),
    ("/disks/a.img,/,ext4,1M", "dst / is a path RunCVM or the kernel owns"),
    ("/disks/a.img,/proc/x,ext4,1M", "dst /proc/x is a path RunCVM or the kernel owns"),
    ("/.runcvm/a.img,/data,ext4,1M", "src /.runcvm/a.img is a path RunCVM or the kernel owns"),
    ("/data/a.img,/data,ext4,1M", "the backing file src must lie outside dst"),
    ("/disks/a.img,/data,xfs,1M", "fs 'xfs' is not one of ext4, ext3, ext2"),
    ("/disks/a.img,/data,ext4,lots", "size 'lots' is not a size"),
    ("/disks/a.img,/data,ext4,0", "size '0' is not a size"),
    ("/disks/a.img,/data,ext4,5GB", "size '5GB' is not a size"),
    ("/disks/a.img,/data,ext4,1M;/disks/b.img,/data/,ext4,1M", "mounts two disks at /data"),
    ("/disks/a.img,/a,ext4,1M;/disks/a.img,/b,ext4,1M", "names the same backing file twice"),
])
def test_bad_disks_are_refused_with_the_reason(value, message):
    with pytest.raises(OptionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse({"RUNCVM_DISKS": value})


def test_render_sets_only_what_was_asked_and_reads_back_the_same():
    assert render(Options()) == {}
    options = Options(accel="tcg", disks=(Disk("/disks/a.img", "/data", "ext4", "512M"), Disk("/disks/b", "/b")),
                      kernel="debian", kernel_append="quiet", kernel_debug=True, virtiofsd_cache="never")
    env = render(options)
    assert env == {"RUNCVM_ACCEL": "tcg", "RUNCVM_DISKS": "/disks/a.img,/data,ext4,512M;/disks/b,/b,ext4",
                   "RUNCVM_KERNEL": "debian", "RUNCVM_KERNEL_APPEND": "quiet", "RUNCVM_KERNEL_DEBUG": "1",
                   "RUNCVM_VIRTIOFSD_CACHE": "never"}
    assert parse(env) == options


def test_render_refuses_what_the_runtime_would():
    with pytest.raises(OptionError, match="size '1 G' is not a size"):
        render(Options(disks=(Disk("/disks/a.img", "/data", "ext4", "1 G"),)))


def test_workload_env_drops_runcvm_variables_and_keeps_order():
    assert workload_env(["B=1", "RUNCVM_ACCEL=tcg", "A=2", "RUNCVM_HANDOFF={}"]) == ["B=1", "A=2"]


def test_timing_is_an_option_like_the_others():
    assert render(Options(timing=True)) == {"RUNCVM_TIMING": "1"}
    assert parse({"RUNCVM_TIMING": "yes"}).timing is True


def test_task_arguments_become_the_same_options():
    arguments = {**{option.name: option.default for option in OPTIONS}, "disks": [
        {"src": "/disks/a.img", "dst": "/data/", "fs": "ext4", "size": "1G"}], "kernel": "", "timing": True}
    assert from_task(arguments) == Options(disks=(Disk("/disks/a.img", "/data", "ext4", "1G"),), timing=True)
    with pytest.raises(OptionError, match="mounts two disks at /data"):
        from_task({**arguments, "disks": arguments["disks"] * 2})


def test_the_argument_spec_comes_from_the_table():
    spec = argument_spec()
    assert sorted(spec) == sorted(option.name for option in OPTIONS)
    assert spec["accel"] == {"type": "str", "default": "auto", "choices": ["auto", "kvm", "tcg"]}
    assert spec["kernel"] == {"type": "str"} and spec["kernel_debug"] == {"type": "bool", "default": False}
    assert spec["disks"]["options"]["fs"]["choices"] == ["ext4", "ext3", "ext2"]


def fragment_options():
    return yaml.safe_load(vm_options.ModuleDocFragment.DOCUMENTATION)["options"]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.name)
def test_the_modules_documentation_agrees_with_the_table(option):
    documented = fragment_options()[option.name]
    spec = argument_spec()[option.name]
    assert documented["type"] == spec["type"]
    assert documented.get("choices") == spec.get("choices")
    assert documented.get("default") == spec.get("default")
    assert documented.get("version_added") == (None if option.since == FIRST_VERSION else option.since)
    assert f"C({option.variable})" in " ".join(documented["description"] if isinstance(
        documented["description"], list) else [documented["description"]])
    if option.name == "disks":
        assert {name: {key: value for key, value in sub.items() if key != "description"}
                for name, sub in documented["suboptions"].items()} == spec["options"]


def test_the_module_documents_no_option_the_table_lacks():
    assert sorted(fragment_options()) == sorted(option.name for option in OPTIONS)


def readme_rows():
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        # The first cell may hold escaped bars: `RUNCVM_ACCEL=auto\|kvm\|tcg`.
        match = re.match(r"^\| `(RUNCVM_[A-Z_]+)(?:[^|\\]|\\\|)*\| (.*) \|$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_the_readme_lists_every_option_in_the_tables_words():
    rows = readme_rows()
    assert sorted(rows) == sorted(BY_VARIABLE)
    for option in OPTIONS:
        assert option.doc in rows[option.variable], option.variable


def test_a_defaults_file_reads_back_what_render_gave_it():
    env = render(Options(warm_start=True, kernel_append="quiet splash"))
    assert parse_defaults(defaults_text(env), "/etc/runcvm/defaults.env") == env
    with pytest.raises(OptionError, match="/etc/runcvm/defaults.env: RUNCVM_WARP is not a RunCVM option"):
        parse_defaults("RUNCVM_WARP=1\n", "/etc/runcvm/defaults.env")
