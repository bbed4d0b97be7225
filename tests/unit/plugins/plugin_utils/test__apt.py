"""The apt wrapper's parsing and its private configuration."""

from __future__ import annotations

import pathlib

from ansible_collections.runcvm.runcvm.plugins.plugin_utils._apt import AptArchive, Package, parse_print_uris

PRINT_URIS = """\
'http://deb.example/debian/pool/main/g/glibc/libc6_2.41-12%2bdeb13u5_amd64.deb' libc6_2.41-12+deb13u5_amd64.deb 2850108 MD5Sum:3c
'http://deb.example/debian/pool/main/q/qemu/qemu-system-x86_1%3a10.0.13+ds-0+deb13u1_amd64.deb' qemu-system-x86_1%3a10.0.13+ds-0+deb13u1_amd64.deb 9 MD5Sum:aa
'http://deb.example/debian/pool/main/s/seabios/seabios_1.16.3-2_all.deb' seabios_1.16.3-2_all.deb 1 MD5Sum:bb
"""


def test_parse_print_uris():
    assert parse_print_uris(PRINT_URIS) == [
        ("libc6", "2.41-12+deb13u5"), ("qemu-system-x86", "1:10.0.13+ds-0+deb13u1"), ("seabios", "1.16.3-2")]


def test_parse_print_uris_ignores_other_lines():
    assert parse_print_uris("Reading package lists...\n\n") == []


def test_package_spec():
    assert Package("qemu-system-x86", "1:10.0").spec == "qemu-system-x86=1:10.0"


def test_apt_keeps_its_state_and_cache_in_its_own_directory(tmp_path: pathlib.Path):
    options = AptArchive("trixie", "http://deb.example/debian", tmp_path).options()
    settings = dict(option.split("=", 1) for option in options[1::2])
    assert settings["Dir::State"] == str(tmp_path / "trixie" / "state")
    assert settings["Dir::Cache"] == str(tmp_path / "trixie" / "cache")
    assert settings["Dir::Etc::SourceParts"] == "/dev/null"
    assert settings["APT::Install-Recommends"] == "false"
    assert options[0::2] == ["-o"] * len(settings)
