"""RUNCVM_VIRTIOFSD_CACHE=programs: the image's program directories reach the VM through a second,
cached virtiofs device, and what the host changes there the next exec sees; the rest of the root,
and a program directory with a volume under it, stay on the root's device and follow what the host
changes, as under `auto`."""

from __future__ import annotations

import io
import os
import tarfile

from ansible_collections.runcvm.runcvm.plugins.module_utils._core.layout import HOST_TEMPLATES_DIR
from harness.waiting import wait_for

PYTHON3, BUSYBOX = "python3", "busybox"
PROGRAMS = ("-e", "RUNCVM_VIRTIOFSD_CACHE=programs")
BOOT_BOUND = 300
# A memory size no other test asks for: the template made here is this module's, removed after the test.
WARM = ("-e", "RUNCVM_WARM_START=1", "-e", "RUNCVM_TIMING=1", "--memory", "704m")
# How long a host change may take to reach the VM: `auto` revalidates after 1 s.
REVALIDATION_BOUND = 30
SCRIPT = "#!/bin/sh\necho %s\n"
MADE_IN_VM = "printf '#!/bin/sh\\necho written in the VM\\n' > /usr/local/bin/made && chmod +x /usr/local/bin/made && made"


def tar_of(name: str, content: bytes, mode: int = 0o644) -> bytes:
    """A tar stream of one file, as `docker cp -` takes it."""
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as archive:
        member = tarfile.TarInfo(name)
        member.size, member.mode = len(content), mode
        archive.addfile(member, io.BytesIO(content))
    return stream.getvalue()


def test_programs_are_served_cached_and_the_rest_follows_the_host(docker_cli, runcvm, test_images):
    cached, with_volume = f"{docker_cli.owner}-cached", f"{docker_cli.owner}-volume"
    volume = docker_cli.owner + "-data"
    docker_cli.cli("volume", "create", volume)
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", *PROGRAMS, "--name", cached, test_images[PYTHON3], "sleep", "infinity")
    docker_cli.cli("run", "-d", f"--runtime={runcvm}", *PROGRAMS, "-v", f"{volume}:/usr/local/share/data",
                   "--name", with_volume, test_images[PYTHON3], "sleep", "infinity")

    def run_in(name: str, script: str) -> str:
        completed = docker_cli.cli("exec", name, "sh", "-c", script, check=False)
        assert completed.returncode == 0, (name, script, completed.stderr)
        return completed.stdout.decode()

    def virtiofs_mounts(name: str) -> list[tuple[str, str]]:
        return [tuple(line.split()[:2]) for line in run_in(name, "cat /proc/mounts").splitlines() if " virtiofs " in line]

    for name in (cached, with_volume):
        wait_for(lambda name=name: docker_cli.cli("exec", name, "true", check=False).returncode == 0, BOOT_BOUND,
                 what=f"{name}'s VM to answer docker exec")

    # /usr is the cached device's; the image's /bin, /lib... are links into it. The root is not.
    assert ("runcvmprograms", "/usr") in virtiofs_mounts(cached)
    assert ("runcvmfs", "/") in virtiofs_mounts(cached)
    # With a volume under /usr, /usr stays on the root's device.
    assert all(source != "runcvmprograms" for source, _mount_point in virtiofs_mounts(with_volume)), virtiofs_mounts(with_volume)
    # The kernel's modules, mounted under /usr/lib/modules, are there through the cached device.
    assert run_in(cached, "ls /lib/modules/$(uname -r)/modules.dep").strip().endswith("modules.dep")

    # A program the VM writes under /usr runs, and the host has it.
    assert run_in(cached, MADE_IN_VM) == "written in the VM\n"
    copied = docker_cli.cli("cp", f"{cached}:/usr/local/bin/made", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(copied)) as archive:
        assert b"echo written in the VM" in archive.extractfile("made").read()

    def seen(name: str, path: str, content: str) -> None:
        # `auto` lets the guest trust what it looked up for a second.
        wait_for(lambda: run_in(name, f"cat {path}") == content, REVALIDATION_BOUND,
                 what=f"{name}'s VM to see {content!r} in {path}")

    # What the host changes in a program directory, the next exec sees: the guest drops what it
    # cached first. A replaced program, and a new one that the shell had looked for in vain.
    for content in ("first", "second"):
        docker_cli.cli("cp", "-", f"{cached}:/usr/local/bin", input=tar_of("made", (SCRIPT % content).encode(), mode=0o755))
        assert run_in(cached, "made") == f"{content}\n"
    assert docker_cli.cli("exec", cached, "sh", "-c", "added", check=False).returncode == 127
    docker_cli.cli("cp", "-", f"{cached}:/usr/local/bin", input=tar_of("added", (SCRIPT % "added").encode(), mode=0o755))
    assert run_in(cached, "added") == "added\n"

    # A file the host replaces outside the program directories is seen anew, as under auto.
    for name in (cached, with_volume):
        for content in ("first\n", "second\n"):
            docker_cli.cli("cp", "-", f"{name}:/etc", input=tar_of("replaced", content.encode()))
            seen(name, "/etc/replaced", content)

    # So is a file another container replaces in the volume under /usr.
    for content in ("one", "two"):
        docker_cli.cli("run", "--rm", "-v", f"{volume}:/data", test_images[BUSYBOX], "sh", "-c",
                       f"echo {content} > /data/new && mv /data/new /data/file")
        seen(with_volume, "/usr/local/share/data/file", f"{content}\n")


def test_a_warm_start_restores_both_devices(docker_cli, runcvm, test_images):
    before = templates()
    try:
        for made in (True, False):  # the first makes the template, the second is restored from it
            vm = docker_cli.cli("run", "--rm", f"--runtime={runcvm}", *PROGRAMS, *WARM, test_images[PYTHON3], "sh", "-c",
                                "grep -c '^runcvmprograms /usr ' /proc/mounts", timeout=BOOT_BOUND)
            assert vm.stdout == b"1\n", vm.stderr
            assert (b" template=" in vm.stderr) == made and b" restore=" in vm.stderr, vm.stderr
    finally:
        for name in templates() - before:
            os.unlink(os.path.join(HOST_TEMPLATES_DIR, name))


def templates() -> set[str]:
    return set(os.listdir(HOST_TEMPLATES_DIR)) if os.path.isdir(HOST_TEMPLATES_DIR) else set()
